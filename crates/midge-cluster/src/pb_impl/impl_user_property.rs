//! v5 User Properties <-> `pb::UserProperty`.

use crate::pb;
use midge_codec::UserProperties;

/// User properties in order, duplicates kept.
pub(crate) fn user_properties_to_pb(props: &UserProperties) -> Vec<pb::UserProperty> {
    props
        .iter()
        .map(|(key, value)| pb::UserProperty {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// The inverse of [`user_properties_to_pb`].
pub(crate) fn user_properties_from_pb(props: Vec<pb::UserProperty>) -> UserProperties {
    props.into_iter().map(|p| (p.key, p.value)).collect()
}

//! `midge_codec::PublishProperties` <-> `pb::PublishProperties`.

use super::impl_user_property::{user_properties_from_pb, user_properties_to_pb};
use super::{byte_from_pb, FieldError};
use crate::pb;
use midge_codec::PublishProperties;
use std::sync::Arc;

impl From<&PublishProperties> for pb::PublishProperties {
    fn from(p: &PublishProperties) -> pb::PublishProperties {
        pb::PublishProperties {
            payload_format_indicator: p.payload_format_indicator.map(u32::from),
            message_expiry_interval: p.message_expiry_interval,
            topic_alias: p.topic_alias.map(u32::from),
            response_topic: p.response_topic.as_deref().map(str::to_string),
            correlation_data: p.correlation_data.clone(),
            user_properties: user_properties_to_pb(&p.user_properties),
            subscription_identifiers: p.subscription_identifiers.clone(),
            content_type: p.content_type.as_deref().map(str::to_string),
        }
    }
}

impl TryFrom<pb::PublishProperties> for PublishProperties {
    type Error = FieldError;

    fn try_from(p: pb::PublishProperties) -> Result<PublishProperties, FieldError> {
        let payload_format_indicator = p
            .payload_format_indicator
            .map(|v| byte_from_pb(v, "PublishProperties.payload_format_indicator"))
            .transpose()?;
        let topic_alias = p
            .topic_alias
            .map(|v| {
                u16::try_from(v)
                    .map_err(|_| FieldError::out_of_range("PublishProperties.topic_alias", v))
            })
            .transpose()?;
        Ok(PublishProperties {
            payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            topic_alias,
            response_topic: p.response_topic.map(Arc::from),
            correlation_data: p.correlation_data,
            user_properties: user_properties_from_pb(p.user_properties),
            subscription_identifiers: p.subscription_identifiers,
            content_type: p.content_type.map(Arc::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::strategies::publish_properties;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(props in publish_properties()) {
            let back = PublishProperties::try_from(pb::PublishProperties::from(&props)).unwrap();
            prop_assert_eq!(back, props);
        }
    }

    #[test]
    fn rejects_out_of_range() {
        let bad = pb::PublishProperties {
            topic_alias: Some(70_000),
            ..Default::default()
        };
        let err = PublishProperties::try_from(bad).unwrap_err();
        assert_eq!(err.field, "PublishProperties.topic_alias");
    }
}

//! `midge_codec::LastWill` <-> `pb::LastWill`.

use super::impl_user_property::{user_properties_from_pb, user_properties_to_pb};
use super::{byte_from_pb, qos_from_pb, FieldError};
use crate::pb;
use midge_codec::{LastWill, WillProperties};
use std::sync::Arc;

impl From<&LastWill> for pb::LastWill {
    fn from(w: &LastWill) -> pb::LastWill {
        let p = &w.properties;
        pb::LastWill {
            topic: w.topic.to_string(),
            payload: w.payload.clone(),
            qos: w.qos as u32,
            retain: w.retain,
            properties: Some(pb::WillProperties {
                will_delay_interval: p.will_delay_interval,
                payload_format_indicator: p.payload_format_indicator.map(u32::from),
                message_expiry_interval: p.message_expiry_interval,
                content_type: p.content_type.clone(),
                response_topic: p.response_topic.clone(),
                correlation_data: p.correlation_data.clone(),
                user_properties: user_properties_to_pb(&p.user_properties),
            }),
        }
    }
}

impl TryFrom<pb::LastWill> for LastWill {
    type Error = FieldError;

    fn try_from(w: pb::LastWill) -> Result<LastWill, FieldError> {
        let p = w.properties.unwrap_or_default();
        let properties = WillProperties {
            will_delay_interval: p.will_delay_interval,
            payload_format_indicator: p
                .payload_format_indicator
                .map(|v| byte_from_pb(v, "WillProperties.payload_format_indicator"))
                .transpose()?,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type,
            response_topic: p.response_topic,
            correlation_data: p.correlation_data,
            user_properties: user_properties_from_pb(p.user_properties),
        };
        Ok(LastWill {
            topic: Arc::from(w.topic),
            payload: w.payload,
            qos: qos_from_pb(w.qos, "LastWill.qos")?,
            retain: w.retain,
            properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::strategies::last_will;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(will in last_will()) {
            prop_assert_eq!(LastWill::try_from(pb::LastWill::from(&will)).unwrap(), will);
        }
    }
}

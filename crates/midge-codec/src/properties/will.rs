//! Will properties in the CONNECT payload (3.1.3.2).

use super::{
    id, not_allowed, push_user, put_binary, put_byte, put_str, put_u32, put_users, set_once,
    Property, PropertySet,
};
use crate::primitives::Sink;
use crate::topic::is_valid_topic_name;
use crate::{DecodeError, EncodeError, UserProperties};
use bytes::Bytes;

/// Properties of the will in CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WillProperties {
    /// 0x18 Will Delay Interval (seconds).
    pub will_delay_interval: Option<u32>,
    /// 0x01 Payload Format Indicator.
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval (seconds).
    pub message_expiry_interval: Option<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<String>,
    /// 0x08 Response Topic.
    pub response_topic: Option<String>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
}

impl PropertySet for WillProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::WillDelayInterval(v) => set_once(&mut self.will_delay_interval, v),
            Property::PayloadFormatIndicator(v) => set_once(&mut self.payload_format_indicator, v),
            Property::MessageExpiryInterval(v) => set_once(&mut self.message_expiry_interval, v),
            Property::ContentType(v) => set_once(&mut self.content_type, v.to_owned()),
            Property::ResponseTopic(v) => {
                // 3.1.3.2.5: the will's Response Topic is a topic name, so no wildcards.
                if !is_valid_topic_name(v) {
                    return Err(DecodeError::Malformed("response topic is not a topic name"));
                }
                set_once(&mut self.response_topic, v.to_owned())
            }
            Property::CorrelationData(v) => set_once(&mut self.correlation_data, v),
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        put_byte(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        put_str(s, id::CONTENT_TYPE, self.content_type.as_deref())?;
        put_str(s, id::RESPONSE_TOPIC, self.response_topic.as_deref())?;
        put_binary(s, id::CORRELATION_DATA, self.correlation_data.as_deref())?;
        put_users(s, &self.user_properties)
    }
}

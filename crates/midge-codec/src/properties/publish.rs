//! Properties of PUBLISH (3.3.2.3).

use super::sparse::empty_set;
use super::{
    id, not_allowed, push_user, put_binary, put_byte, put_str, put_u16, put_u32, put_users,
    put_varint, set_once, Property, PropertySet,
};
use crate::primitives::Sink;
use crate::topic::is_valid_topic_name;
use crate::{DecodeError, EncodeError, UserProperties};
use bytes::Bytes;
use std::sync::Arc;

/// Properties of PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishProperties {
    /// 0x01 Payload Format Indicator.
    pub payload_format_indicator: Option<u8>,
    /// 0x02 Message Expiry Interval (seconds).
    pub message_expiry_interval: Option<u32>,
    /// 0x23 Topic Alias.
    pub topic_alias: Option<u16>,
    /// 0x08 Response Topic.
    pub response_topic: Option<Arc<str>>,
    /// 0x09 Correlation Data.
    pub correlation_data: Option<Bytes>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
    /// 0x0B Subscription Identifier (several allowed server -> client; none client -> server).
    pub subscription_identifiers: Vec<u32>,
    /// 0x03 Content Type.
    pub content_type: Option<Arc<str>>,
}

empty_set!(
    PublishProperties,
    PublishProperties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        topic_alias: None,
        response_topic: None,
        correlation_data: None,
        user_properties: Vec::new(),
        subscription_identifiers: Vec::new(),
        content_type: None,
    }
);

impl PropertySet for PublishProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::PayloadFormatIndicator(v) => set_once(&mut self.payload_format_indicator, v),
            Property::MessageExpiryInterval(v) => set_once(&mut self.message_expiry_interval, v),
            Property::TopicAlias(v) => set_once(&mut self.topic_alias, v),
            Property::ResponseTopic(v) => {
                // MQTT-3.3.2-14: the Response Topic must not contain wildcards.
                if !is_valid_topic_name(v) {
                    return Err(DecodeError::Malformed("response topic is not a topic name"));
                }
                set_once(&mut self.response_topic, Arc::from(v))
            }
            Property::CorrelationData(v) => set_once(&mut self.correlation_data, v),
            Property::ContentType(v) => set_once(&mut self.content_type, Arc::from(v)),
            // 3.3.2.3.8: PUBLISH is the one packet where Subscription Identifier repeats.
            // Whether a client may send it at all (MQTT-3.3.4-6) is the broker's check.
            Property::SubscriptionIdentifier(v) => {
                self.subscription_identifiers.push(v);
                Ok(())
            }
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_byte(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        put_u16(s, id::TOPIC_ALIAS, self.topic_alias);
        put_str(s, id::RESPONSE_TOPIC, self.response_topic.as_deref())?;
        put_binary(s, id::CORRELATION_DATA, self.correlation_data.as_deref())?;
        put_str(s, id::CONTENT_TYPE, self.content_type.as_deref())?;
        for &v in &self.subscription_identifiers {
            put_varint(s, id::SUBSCRIPTION_IDENTIFIER, v)?;
        }
        put_users(s, &self.user_properties)
    }
}

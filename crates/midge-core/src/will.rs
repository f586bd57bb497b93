//! Will messages: turning a CONNECT's will into a publication, and its delay.

use crate::session_store::SessionIdx;
use crate::{Action, Broker};
use midge_codec::{LastWill, Publish, PublishProperties};
use std::time::Instant;

/// The v5 Will Delay Interval in seconds (0 for v3 wills).
pub fn will_delay(will: &LastWill) -> u32 {
    will.properties.will_delay_interval.unwrap_or(0)
}

/// The PUBLISH a will becomes: will properties map to the publish properties of the same name.
pub fn will_publish(will: LastWill) -> Publish {
    let p = will.properties;
    Publish {
        dup: false,
        qos: will.qos,
        retain: will.retain,
        topic: will.topic,
        packet_id: None,
        properties: PublishProperties {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            topic_alias: None,
            response_topic: p.response_topic.map(Into::into),
            correlation_data: p.correlation_data,
            user_properties: p.user_properties,
            subscription_identifiers: Vec::new(),
            content_type: p.content_type.map(Into::into),
        }
        .into(),
        payload: will.payload,
    }
}

impl Broker {
    /// Publishes `will` like a PUBLISH from the session in `publisher` (retain honoured,
    /// MQTT-3.1.2-16, -17); like any client publish, a `$` topic is not routed.
    pub(crate) fn publish_will(
        &mut self,
        now: Instant,
        publisher: Option<SessionIdx>,
        will: LastWill,
        out: &mut Vec<Action>,
    ) {
        if midge_codec::topic::is_sys_topic(&will.topic) {
            return;
        }
        self.publish_message(now, publisher, will_publish(will), out);
    }
}

//! SUBSCRIBE (3.8).

use crate::{PacketId, QoS, SubscribeProperties};

/// v5 Retain Handling subscription option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe,
    /// 1: send retained messages only if the subscription did not exist.
    SendIfNew,
    /// 2: do not send retained messages.
    DoNotSend,
}

/// Subscription options byte (v3 uses only the QoS bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local (v5).
    pub no_local: bool,
    /// Retain As Published (v5).
    pub retain_as_published: bool,
    /// Retain Handling (v5).
    pub retain_handling: RetainHandling,
}

/// One topic filter with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSubscription {
    /// The topic filter as sent (may start with `$share/`); validated by the codec.
    pub filter: String,
    /// Options.
    pub options: SubscriptionOptions,
}

/// A SUBSCRIBE packet; it carries at least one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Filters, in order.
    pub filters: Vec<TopicSubscription>,
    /// v5 properties.
    pub properties: SubscribeProperties,
}

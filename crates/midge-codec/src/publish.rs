//! PUBLISH (3.3).

use crate::{PacketId, PublishProperties, QoS};
use bytes::Bytes;
use std::sync::Arc;

/// A PUBLISH packet. Cloning is cheap: topic and payload are reference counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; may be empty in v5 when a topic alias is used.
    pub topic: Arc<str>,
    /// Packet identifier, present iff qos > 0.
    pub packet_id: Option<PacketId>,
    /// v5 properties (empty for v3).
    pub properties: PublishProperties,
    /// Application payload.
    pub payload: Bytes,
}

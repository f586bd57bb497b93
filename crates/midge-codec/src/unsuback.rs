//! UNSUBACK (3.11).

use crate::{AckProperties, PacketId, ReasonCode};

/// An UNSUBACK. v3 has no payload, so `reasons` is empty when decoded from v3 and ignored when
/// encoding v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// One reason code per filter (v5).
    pub reasons: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: AckProperties,
}

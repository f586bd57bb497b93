//! SUBACK (3.9).

use crate::{AckProperties, PacketId, ReasonCode};

/// A SUBACK. v3 return codes: Success/GrantedQoS1/GrantedQoS2 map to 0/1/2, any error to 0x80.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One reason code per filter, in order.
    pub reasons: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: AckProperties,
}

//! PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7): one shape, four packet types.

use crate::{AckProperties, PacketId, ReasonCode};

/// Which of the four acknowledgement packets this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckKind {
    /// PUBACK (QoS 1).
    PubAck,
    /// PUBREC (QoS 2, step 1).
    PubRec,
    /// PUBREL (QoS 2, step 2; fixed header flags 0b0010).
    PubRel,
    /// PUBCOMP (QoS 2, step 3).
    PubComp,
}

/// An acknowledgement packet. The reason code and properties are v5 only; in v5 a Success code
/// with no properties is encoded in the short 2-byte form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Which acknowledgement.
    pub kind: AckKind,
    /// Packet identifier being acknowledged.
    pub packet_id: PacketId,
    /// v5 reason code (Success for v3).
    pub reason: ReasonCode,
    /// v5 properties.
    pub properties: AckProperties,
}

impl Ack {
    /// A successful acknowledgement with no properties.
    pub fn new(kind: AckKind, packet_id: PacketId) -> Ack {
        Ack {
            kind,
            packet_id,
            reason: ReasonCode::Success,
            properties: AckProperties::default(),
        }
    }
}

//! Protocol versions.

/// The MQTT protocol version a connection speaks, fixed by its CONNECT packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1 (protocol name "MQIsdp", level 3).
    V3_1,
    /// MQTT 3.1.1 (protocol name "MQTT", level 4).
    V3_1_1,
    /// MQTT 5.0 (protocol name "MQTT", level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte on the wire.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// True for MQTT 5.0, which carries properties and reason codes.
    pub fn is_v5(self) -> bool {
        matches!(self, ProtocolVersion::V5)
    }
}

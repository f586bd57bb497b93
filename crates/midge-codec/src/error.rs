//! Codec errors. Cheap to build on the hot path; each maps to the reason code the spec names.

use crate::ReasonCode;

/// Why bytes could not be decoded into a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet is bigger than the negotiated maximum (checked from the fixed header, before
    /// the body is buffered or allocated). Reason code 0x95.
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    PacketTooLarge {
        /// Total packet size announced by the fixed header.
        size: u32,
        /// The limit in force.
        max: u32,
    },
    /// The bytes break the wire format (bad remaining length, truncated field, invalid UTF-8,
    /// reserved flags set, QoS 3, wildcard in a topic name, ...). Reason code 0x81.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The packet is well formed but breaks a protocol rule (duplicate or disallowed property,
    /// AUTH in v3, ...). Reason code 0x82.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// CONNECT with an unknown protocol name or level. CONNACK 0x84 (v5) / return code 1 (v3).
    #[error("unsupported protocol name or level")]
    UnsupportedProtocolVersion,
}

impl DecodeError {
    /// The v5 reason code to send (in CONNACK before CONNECT completes, DISCONNECT after).
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            DecodeError::Malformed(_) => ReasonCode::MalformedPacket,
            DecodeError::Protocol(_) => ReasonCode::ProtocolError,
            DecodeError::UnsupportedProtocolVersion => ReasonCode::UnsupportedProtocolVersion,
        }
    }
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet would exceed the largest remaining length MQTT can express.
    #[error("packet too large to encode")]
    PacketTooLarge,
    /// A field does not fit its wire type (string over 65,535 bytes, ...).
    #[error("field cannot be encoded: {0}")]
    InvalidField(&'static str),
    /// The packet does not exist in this protocol version (AUTH in v3).
    #[error("packet not available in this protocol version")]
    NotInVersion,
}

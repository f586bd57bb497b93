//! CONNACK (3.2).

use crate::{ConnAckProperties, ReasonCode};

/// A CONNACK packet. `reason` is a v5 reason code; for v3 connections the codec maps it to the
/// v3 return code (0x84->1, 0x85->2, 0x88/0x89/others->3, 0x86->4, 0x87->5) and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present flag.
    pub session_present: bool,
    /// Connect reason code.
    pub reason: ReasonCode,
    /// v5 properties (ignored for v3).
    pub properties: ConnAckProperties,
}

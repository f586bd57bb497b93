//! DISCONNECT (3.14).

use crate::{DisconnectProperties, ReasonCode};

/// A DISCONNECT. v3 DISCONNECT has no body; reason and properties are v5 only.
/// In v5, Success with no properties encodes as the 0-length short form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Disconnect reason code.
    pub reason: ReasonCode,
    /// v5 properties.
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: DisconnectProperties::default(),
        }
    }
}

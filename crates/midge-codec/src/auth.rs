//! AUTH (3.15, v5 only).

use crate::{AuthProperties, ReasonCode};

/// An AUTH packet (v5 enhanced authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, ContinueAuthentication or ReAuthenticate.
    pub reason: ReasonCode,
    /// Properties.
    pub properties: AuthProperties,
}

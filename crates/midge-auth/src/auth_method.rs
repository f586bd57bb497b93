//! The seam for MQTT v5 enhanced authentication (the AUTH packet exchange), sans I/O.
//!
//! The server owns the packets: it passes the Authentication Data of CONNECT to
//! [`AuthMethod::start`] and of each client AUTH (reason 0x18) to [`AuthMethod::next`], keeping
//! the opaque [`AuthState`] per connection in between. Each step says what to send back.

use std::any::Any;
use std::fmt;

/// One enhanced-authentication method, named by the Authentication Method property.
pub trait AuthMethod: Send + Sync {
    /// The Authentication Method property value this method answers to (e.g. `SCRAM-SHA-256`).
    fn name(&self) -> &str;

    /// Begins an exchange from CONNECT's username (if any) and Authentication Data.
    fn start(&self, username: Option<&str>, data: &[u8]) -> AuthStep;

    /// Continues an exchange with the client's next Authentication Data and the state returned
    /// by the previous step.
    fn next(&self, state: AuthState, data: &[u8]) -> AuthStep;
}

/// What the server does after one step of an exchange.
#[derive(Debug)]
pub enum AuthStep {
    /// Send AUTH with reason 0x18 (Continue authentication) carrying `data`, and keep `state`
    /// for the client's answer.
    Continue { data: Vec<u8>, state: AuthState },
    /// The client proved it is `username`: send CONNACK 0x00 (or AUTH 0x00 on re-authentication)
    /// carrying `data`.
    Success { data: Vec<u8>, username: String },
    /// Refuse: send CONNACK (or DISCONNECT on re-authentication) with the failure's reason code.
    Failure(AuthFailure),
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// The credentials were wrong, or the user does not exist (indistinguishable on purpose).
    BadCredentials,
    /// The exchange broke the method's protocol or asked for something unsupported.
    Rejected(&'static str),
}

impl AuthFailure {
    /// The MQTT v5 reason code to refuse with: 0x86 Bad User Name or Password, or 0x87 Not
    /// authorized.
    pub fn reason_code(&self) -> u8 {
        match self {
            Self::BadCredentials => 0x86,
            Self::Rejected(_) => 0x87,
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadCredentials => f.write_str("bad credentials"),
            Self::Rejected(reason) => write!(f, "rejected: {reason}"),
        }
    }
}

/// A method's private state between two steps; the server stores it without looking inside.
pub struct AuthState(Box<dyn Any + Send>);

impl AuthState {
    /// Wraps a method's state.
    pub fn new<T: Any + Send>(state: T) -> Self {
        Self(Box::new(state))
    }

    /// Recovers a method's state, or `None` if it was made by a different method.
    pub fn downcast<T: Any>(self) -> Option<T> {
        self.0.downcast::<T>().ok().map(|state| *state)
    }
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthState(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_only_as_its_own_type() {
        let state = AuthState::new(42u32);
        assert_eq!(state.downcast::<u32>(), Some(42));
        assert!(AuthState::new("x").downcast::<u32>().is_none());
    }

    #[test]
    fn reason_codes() {
        assert_eq!(AuthFailure::BadCredentials.reason_code(), 0x86);
        assert_eq!(AuthFailure::Rejected("x").reason_code(), 0x87);
    }
}

//! Properties of DISCONNECT (3.14.2.2).

use super::sparse::empty_set;
use super::{
    id, not_allowed, push_user, put_str, put_u32, put_users, set_once, Property, PropertySet,
};
use crate::primitives::Sink;
use crate::{DecodeError, EncodeError, UserProperties};

/// Properties of DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisconnectProperties {
    /// 0x11 Session Expiry Interval.
    pub session_expiry_interval: Option<u32>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
    /// 0x1C Server Reference.
    pub server_reference: Option<String>,
}

empty_set!(
    DisconnectProperties,
    DisconnectProperties {
        session_expiry_interval: None,
        reason_string: None,
        user_properties: Vec::new(),
        server_reference: None,
    }
);

impl DisconnectProperties {
    /// True when no property is set (lets DISCONNECT use its short form).
    pub fn is_empty(&self) -> bool {
        self.session_expiry_interval.is_none()
            && self.reason_string.is_none()
            && self.user_properties.is_empty()
            && self.server_reference.is_none()
    }
}

impl PropertySet for DisconnectProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => set_once(&mut self.session_expiry_interval, v),
            Property::ReasonString(v) => set_once(&mut self.reason_string, v.to_owned()),
            Property::ServerReference(v) => set_once(&mut self.server_reference, v.to_owned()),
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_deref())?;
        put_users(s, &self.user_properties)
    }
}

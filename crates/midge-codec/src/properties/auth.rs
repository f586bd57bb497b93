//! Properties of AUTH (3.15.2.2).

use super::sparse::empty_set;
use super::{
    id, not_allowed, push_user, put_binary, put_str, put_users, set_once, Property, PropertySet,
};
use crate::primitives::Sink;
use crate::{DecodeError, EncodeError, UserProperties};
use bytes::Bytes;

/// Properties of AUTH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthProperties {
    /// 0x15 Authentication Method.
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data.
    pub authentication_data: Option<Bytes>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
}

empty_set!(
    AuthProperties,
    AuthProperties {
        authentication_method: None,
        authentication_data: None,
        reason_string: None,
        user_properties: Vec::new(),
    }
);

impl AuthProperties {
    /// True when no property is set (lets AUTH use its short form).
    pub fn is_empty(&self) -> bool {
        self.authentication_method.is_none()
            && self.authentication_data.is_none()
            && self.reason_string.is_none()
            && self.user_properties.is_empty()
    }
}

impl PropertySet for AuthProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::AuthenticationMethod(v) => {
                set_once(&mut self.authentication_method, v.to_owned())
            }
            Property::AuthenticationData(v) => set_once(&mut self.authentication_data, v),
            Property::ReasonString(v) => set_once(&mut self.reason_string, v.to_owned()),
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_deref(),
        )?;
        put_binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_deref(),
        )?;
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_users(s, &self.user_properties)
    }
}

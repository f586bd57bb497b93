//! Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK (3.4.2.2 ff.).

use super::sparse::empty_set;
use super::{id, not_allowed, push_user, put_str, put_users, set_once, Property, PropertySet};
use crate::primitives::Sink;
use crate::{DecodeError, EncodeError, UserProperties};

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckProperties {
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
}

empty_set!(
    AckProperties,
    AckProperties {
        reason_string: None,
        user_properties: Vec::new(),
    }
);

impl AckProperties {
    /// True when no property is set (lets acks use their short form).
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }
}

impl PropertySet for AckProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::ReasonString(v) => set_once(&mut self.reason_string, v.to_owned()),
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_users(s, &self.user_properties)
    }
}

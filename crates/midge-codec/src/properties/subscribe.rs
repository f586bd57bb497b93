//! Properties of SUBSCRIBE (3.8.2.1).

use super::{id, not_allowed, push_user, put_users, put_varint, set_once, Property, PropertySet};
use crate::primitives::Sink;
use crate::{DecodeError, EncodeError, UserProperties};

/// Properties of SUBSCRIBE (UNSUBSCRIBE uses only user properties).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeProperties {
    /// 0x0B Subscription Identifier (1 ..= 268,435,455).
    pub subscription_identifier: Option<u32>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
}

impl PropertySet for SubscribeProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            // 3.8.2.1.2: more than one Subscription Identifier is a Protocol Error here
            // (only PUBLISH may repeat it).
            Property::SubscriptionIdentifier(v) => set_once(&mut self.subscription_identifier, v),
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        if let Some(v) = self.subscription_identifier {
            put_varint(s, id::SUBSCRIPTION_IDENTIFIER, v)?;
        }
        put_users(s, &self.user_properties)
    }
}

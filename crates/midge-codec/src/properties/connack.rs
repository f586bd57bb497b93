//! Properties of CONNACK (3.2.2.3).

use super::sparse::empty_set;
use super::{
    id, not_allowed, push_user, put_binary, put_byte, put_str, put_u16, put_u32, put_users,
    set_once, Property, PropertySet,
};
use crate::primitives::Sink;
use crate::{DecodeError, EncodeError, UserProperties};
use bytes::Bytes;

/// Properties of CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAckProperties {
    /// 0x11 Session Expiry Interval.
    pub session_expiry_interval: Option<u32>,
    /// 0x21 Receive Maximum.
    pub receive_maximum: Option<u16>,
    /// 0x24 Maximum QoS.
    pub maximum_qos: Option<u8>,
    /// 0x25 Retain Available.
    pub retain_available: Option<u8>,
    /// 0x27 Maximum Packet Size.
    pub maximum_packet_size: Option<u32>,
    /// 0x12 Assigned Client Identifier.
    pub assigned_client_identifier: Option<String>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x1F Reason String.
    pub reason_string: Option<String>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
    /// 0x28 Wildcard Subscription Available.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29 Subscription Identifier Available.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A Shared Subscription Available.
    pub shared_subscription_available: Option<u8>,
    /// 0x13 Server Keep Alive.
    pub server_keep_alive: Option<u16>,
    /// 0x1A Response Information.
    pub response_information: Option<String>,
    /// 0x1C Server Reference.
    pub server_reference: Option<String>,
    /// 0x15 Authentication Method.
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data.
    pub authentication_data: Option<Bytes>,
}

empty_set!(
    ConnAckProperties,
    ConnAckProperties {
        session_expiry_interval: None,
        receive_maximum: None,
        maximum_qos: None,
        retain_available: None,
        maximum_packet_size: None,
        assigned_client_identifier: None,
        topic_alias_maximum: None,
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    }
);

impl PropertySet for ConnAckProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => set_once(&mut self.session_expiry_interval, v),
            Property::ReceiveMaximum(v) => set_once(&mut self.receive_maximum, v),
            Property::MaximumQoS(v) => set_once(&mut self.maximum_qos, v),
            Property::RetainAvailable(v) => set_once(&mut self.retain_available, v),
            Property::MaximumPacketSize(v) => set_once(&mut self.maximum_packet_size, v),
            Property::AssignedClientIdentifier(v) => {
                set_once(&mut self.assigned_client_identifier, v.to_owned())
            }
            Property::TopicAliasMaximum(v) => set_once(&mut self.topic_alias_maximum, v),
            Property::ReasonString(v) => set_once(&mut self.reason_string, v.to_owned()),
            Property::WildcardSubscriptionAvailable(v) => {
                set_once(&mut self.wildcard_subscription_available, v)
            }
            Property::SubscriptionIdentifierAvailable(v) => {
                set_once(&mut self.subscription_identifier_available, v)
            }
            Property::SharedSubscriptionAvailable(v) => {
                set_once(&mut self.shared_subscription_available, v)
            }
            Property::ServerKeepAlive(v) => set_once(&mut self.server_keep_alive, v),
            Property::ResponseInformation(v) => {
                set_once(&mut self.response_information, v.to_owned())
            }
            Property::ServerReference(v) => set_once(&mut self.server_reference, v.to_owned()),
            Property::AuthenticationMethod(v) => {
                set_once(&mut self.authentication_method, v.to_owned())
            }
            Property::AuthenticationData(v) => set_once(&mut self.authentication_data, v),
            Property::User(k, v) => {
                push_user(&mut self.user_properties, k, v);
                Ok(())
            }
            _ => Err(not_allowed()),
        }
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_u16(s, id::RECEIVE_MAXIMUM, self.receive_maximum);
        put_byte(s, id::MAXIMUM_QOS, self.maximum_qos);
        put_byte(s, id::RETAIN_AVAILABLE, self.retain_available);
        put_u32(s, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        put_str(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_deref(),
        )?;
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_byte(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        put_byte(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifier_available,
        );
        put_byte(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        put_u16(s, id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        put_str(
            s,
            id::RESPONSE_INFORMATION,
            self.response_information.as_deref(),
        )?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_deref())?;
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
        put_users(s, &self.user_properties)
    }
}

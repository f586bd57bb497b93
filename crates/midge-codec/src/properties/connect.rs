//! Properties of CONNECT (3.1.2.11).

use super::{
    id, not_allowed, push_user, put_binary, put_byte, put_str, put_u16, put_u32, put_users,
    set_once, Property, PropertySet,
};
use crate::primitives::Sink;
use crate::{DecodeError, EncodeError, UserProperties};
use bytes::Bytes;

/// Properties of CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectProperties {
    /// 0x11 Session Expiry Interval (seconds).
    pub session_expiry_interval: Option<u32>,
    /// 0x21 Receive Maximum.
    pub receive_maximum: Option<u16>,
    /// 0x27 Maximum Packet Size.
    pub maximum_packet_size: Option<u32>,
    /// 0x22 Topic Alias Maximum.
    pub topic_alias_maximum: Option<u16>,
    /// 0x19 Request Response Information.
    pub request_response_information: Option<u8>,
    /// 0x17 Request Problem Information.
    pub request_problem_information: Option<u8>,
    /// 0x26 User Property.
    pub user_properties: UserProperties,
    /// 0x15 Authentication Method.
    pub authentication_method: Option<String>,
    /// 0x16 Authentication Data.
    pub authentication_data: Option<Bytes>,
}

impl PropertySet for ConnectProperties {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::SessionExpiryInterval(v) => set_once(&mut self.session_expiry_interval, v),
            Property::ReceiveMaximum(v) => set_once(&mut self.receive_maximum, v),
            Property::MaximumPacketSize(v) => set_once(&mut self.maximum_packet_size, v),
            Property::TopicAliasMaximum(v) => set_once(&mut self.topic_alias_maximum, v),
            Property::RequestResponseInformation(v) => {
                set_once(&mut self.request_response_information, v)
            }
            Property::RequestProblemInformation(v) => {
                set_once(&mut self.request_problem_information, v)
            }
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

    fn validate(&self) -> Result<(), DecodeError> {
        // 3.1.2.11.10: Authentication Data without an Authentication Method is a Protocol Error.
        if self.authentication_data.is_some() && self.authentication_method.is_none() {
            return Err(DecodeError::Protocol(
                "authentication data without authentication method",
            ));
        }
        Ok(())
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_u16(s, id::RECEIVE_MAXIMUM, self.receive_maximum);
        put_u32(s, id::MAXIMUM_PACKET_SIZE, self.maximum_packet_size);
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_byte(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        put_byte(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
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

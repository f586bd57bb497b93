//! One decoded v5 property (2.2.2.2): identifier plus typed value, with the value checks that
//! hold whatever packet the property appears on.

use crate::primitives::Reader;
use crate::DecodeError;
use bytes::Bytes;

/// Property identifiers (2.2.2.2, table 2-4).
pub(crate) mod id {
    /// 0x01 Payload Format Indicator (byte).
    pub(crate) const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// 0x02 Message Expiry Interval (four-byte integer).
    pub(crate) const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// 0x03 Content Type (string).
    pub(crate) const CONTENT_TYPE: u8 = 0x03;
    /// 0x08 Response Topic (string).
    pub(crate) const RESPONSE_TOPIC: u8 = 0x08;
    /// 0x09 Correlation Data (binary).
    pub(crate) const CORRELATION_DATA: u8 = 0x09;
    /// 0x0B Subscription Identifier (variable byte integer).
    pub(crate) const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// 0x11 Session Expiry Interval (four-byte integer).
    pub(crate) const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// 0x12 Assigned Client Identifier (string).
    pub(crate) const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// 0x13 Server Keep Alive (two-byte integer).
    pub(crate) const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// 0x15 Authentication Method (string).
    pub(crate) const AUTHENTICATION_METHOD: u8 = 0x15;
    /// 0x16 Authentication Data (binary).
    pub(crate) const AUTHENTICATION_DATA: u8 = 0x16;
    /// 0x17 Request Problem Information (byte).
    pub(crate) const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// 0x18 Will Delay Interval (four-byte integer).
    pub(crate) const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// 0x19 Request Response Information (byte).
    pub(crate) const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// 0x1A Response Information (string).
    pub(crate) const RESPONSE_INFORMATION: u8 = 0x1A;
    /// 0x1C Server Reference (string).
    pub(crate) const SERVER_REFERENCE: u8 = 0x1C;
    /// 0x1F Reason String (string).
    pub(crate) const REASON_STRING: u8 = 0x1F;
    /// 0x21 Receive Maximum (two-byte integer).
    pub(crate) const RECEIVE_MAXIMUM: u8 = 0x21;
    /// 0x22 Topic Alias Maximum (two-byte integer).
    pub(crate) const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// 0x23 Topic Alias (two-byte integer).
    pub(crate) const TOPIC_ALIAS: u8 = 0x23;
    /// 0x24 Maximum QoS (byte).
    pub(crate) const MAXIMUM_QOS: u8 = 0x24;
    /// 0x25 Retain Available (byte).
    pub(crate) const RETAIN_AVAILABLE: u8 = 0x25;
    /// 0x26 User Property (string pair).
    pub(crate) const USER_PROPERTY: u8 = 0x26;
    /// 0x27 Maximum Packet Size (four-byte integer).
    pub(crate) const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// 0x28 Wildcard Subscription Available (byte).
    pub(crate) const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// 0x29 Subscription Identifier Available (byte).
    pub(crate) const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// 0x2A Shared Subscription Available (byte).
    pub(crate) const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// One property as read from the wire. Strings borrow from the packet so a property the
/// packet rejects costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Property<'a> {
    /// 0x01
    PayloadFormatIndicator(u8),
    /// 0x02
    MessageExpiryInterval(u32),
    /// 0x03
    ContentType(&'a str),
    /// 0x08
    ResponseTopic(&'a str),
    /// 0x09
    CorrelationData(Bytes),
    /// 0x0B
    SubscriptionIdentifier(u32),
    /// 0x11
    SessionExpiryInterval(u32),
    /// 0x12
    AssignedClientIdentifier(&'a str),
    /// 0x13
    ServerKeepAlive(u16),
    /// 0x15
    AuthenticationMethod(&'a str),
    /// 0x16
    AuthenticationData(Bytes),
    /// 0x17
    RequestProblemInformation(u8),
    /// 0x18
    WillDelayInterval(u32),
    /// 0x19
    RequestResponseInformation(u8),
    /// 0x1A
    ResponseInformation(&'a str),
    /// 0x1C
    ServerReference(&'a str),
    /// 0x1F
    ReasonString(&'a str),
    /// 0x21
    ReceiveMaximum(u16),
    /// 0x22
    TopicAliasMaximum(u16),
    /// 0x23
    TopicAlias(u16),
    /// 0x24
    MaximumQoS(u8),
    /// 0x25
    RetainAvailable(u8),
    /// 0x26
    User(&'a str, &'a str),
    /// 0x27
    MaximumPacketSize(u32),
    /// 0x28
    WildcardSubscriptionAvailable(u8),
    /// 0x29
    SubscriptionIdentifierAvailable(u8),
    /// 0x2A
    SharedSubscriptionAvailable(u8),
}

/// A byte property whose only legal values are 0 and 1; anything else is a Protocol Error
/// (3.1.2.11.6/7, 3.2.2.3.4/5/11/12/13, 3.3.2.3.2).
fn flag(r: &mut Reader<'_>) -> Result<u8, DecodeError> {
    match r.u8()? {
        v @ (0 | 1) => Ok(v),
        _ => Err(DecodeError::Protocol("property value must be 0 or 1")),
    }
}

/// A two-byte property for which 0 is a Protocol Error.
fn nonzero_u16(r: &mut Reader<'_>, what: &'static str) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Protocol(what)),
        v => Ok(v),
    }
}

impl<'a> Property<'a> {
    /// Reads one identifier/value pair. An unknown identifier is Malformed (the value's length
    /// cannot be known); value checks that apply on every packet are Protocol Errors.
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Property<'a>, DecodeError> {
        // 2.2.2.2: the identifier is a variable byte integer, although every defined one fits
        // in a single byte.
        let id = r.varint()?;
        let Ok(id) = u8::try_from(id) else {
            return Err(DecodeError::Malformed("unknown property identifier"));
        };
        Ok(match id {
            id::PAYLOAD_FORMAT_INDICATOR => Property::PayloadFormatIndicator(flag(r)?),
            id::MESSAGE_EXPIRY_INTERVAL => Property::MessageExpiryInterval(r.u32()?),
            id::CONTENT_TYPE => Property::ContentType(r.str()?),
            id::RESPONSE_TOPIC => Property::ResponseTopic(r.str()?),
            id::CORRELATION_DATA => Property::CorrelationData(r.binary()?),
            id::SUBSCRIPTION_IDENTIFIER => match r.varint()? {
                // 3.3.2.3.8 / 3.8.2.1.2: a Subscription Identifier of 0 is a Protocol Error.
                0 => return Err(DecodeError::Protocol("subscription identifier 0")),
                v => Property::SubscriptionIdentifier(v),
            },
            id::SESSION_EXPIRY_INTERVAL => Property::SessionExpiryInterval(r.u32()?),
            id::ASSIGNED_CLIENT_IDENTIFIER => Property::AssignedClientIdentifier(r.str()?),
            id::SERVER_KEEP_ALIVE => Property::ServerKeepAlive(r.u16()?),
            id::AUTHENTICATION_METHOD => Property::AuthenticationMethod(r.str()?),
            id::AUTHENTICATION_DATA => Property::AuthenticationData(r.binary()?),
            id::REQUEST_PROBLEM_INFORMATION => Property::RequestProblemInformation(flag(r)?),
            id::WILL_DELAY_INTERVAL => Property::WillDelayInterval(r.u32()?),
            id::REQUEST_RESPONSE_INFORMATION => Property::RequestResponseInformation(flag(r)?),
            id::RESPONSE_INFORMATION => Property::ResponseInformation(r.str()?),
            id::SERVER_REFERENCE => Property::ServerReference(r.str()?),
            id::REASON_STRING => Property::ReasonString(r.str()?),
            // 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum 0 is a Protocol Error.
            id::RECEIVE_MAXIMUM => Property::ReceiveMaximum(nonzero_u16(r, "receive maximum 0")?),
            id::TOPIC_ALIAS_MAXIMUM => Property::TopicAliasMaximum(r.u16()?),
            // 3.3.2.3.4: Topic Alias 0 is not permitted, but the receiver answers it with
            // 0x94 Topic Alias invalid (as for an alias above the maximum), so the broker core
            // checks it rather than the codec.
            id::TOPIC_ALIAS => Property::TopicAlias(r.u16()?),
            id::MAXIMUM_QOS => Property::MaximumQoS(flag(r)?),
            id::RETAIN_AVAILABLE => Property::RetainAvailable(flag(r)?),
            id::USER_PROPERTY => {
                let (k, v) = r.pair()?;
                Property::User(k, v)
            }
            // 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size 0 is a Protocol Error.
            id::MAXIMUM_PACKET_SIZE => match r.u32()? {
                0 => return Err(DecodeError::Protocol("maximum packet size 0")),
                v => Property::MaximumPacketSize(v),
            },
            id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                Property::WildcardSubscriptionAvailable(flag(r)?)
            }
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                Property::SubscriptionIdentifierAvailable(flag(r)?)
            }
            id::SHARED_SUBSCRIPTION_AVAILABLE => Property::SharedSubscriptionAvailable(flag(r)?),
            _ => return Err(DecodeError::Malformed("unknown property identifier")),
        })
    }
}

/// The error for a known property on a packet that does not allow it (2.2.2.2).
pub(crate) fn not_allowed() -> DecodeError {
    DecodeError::Protocol("property not allowed on this packet")
}

/// Stores a single-valued property; a second occurrence is a Protocol Error (2.2.2.2).
pub(crate) fn set_once<T>(slot: &mut Option<T>, v: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol("property included more than once"));
    }
    *slot = Some(v);
    Ok(())
}

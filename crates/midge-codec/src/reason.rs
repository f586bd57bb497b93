//! MQTT 5 reason codes. MQTT 3 return codes are mapped to and from these by the codec.

/// An MQTT 5.0 reason code. Values are shared across packet types as in the spec (2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ReasonCode {
    /// 0x00 Success / Normal disconnection / Granted QoS 0.
    Success = 0x00,
    /// 0x01 Granted QoS 1.
    GrantedQoS1 = 0x01,
    /// 0x02 Granted QoS 2.
    GrantedQoS2 = 0x02,
    /// 0x04 Disconnect with Will Message.
    DisconnectWithWill = 0x04,
    /// 0x10 No matching subscribers.
    NoMatchingSubscribers = 0x10,
    /// 0x11 No subscription existed.
    NoSubscriptionExisted = 0x11,
    /// 0x18 Continue authentication.
    ContinueAuthentication = 0x18,
    /// 0x19 Re-authenticate.
    ReAuthenticate = 0x19,
    /// 0x80 Unspecified error.
    UnspecifiedError = 0x80,
    /// 0x81 Malformed Packet.
    MalformedPacket = 0x81,
    /// 0x82 Protocol Error.
    ProtocolError = 0x82,
    /// 0x83 Implementation specific error.
    ImplementationSpecificError = 0x83,
    /// 0x84 Unsupported Protocol Version.
    UnsupportedProtocolVersion = 0x84,
    /// 0x85 Client Identifier not valid.
    ClientIdentifierNotValid = 0x85,
    /// 0x86 Bad User Name or Password.
    BadUserNameOrPassword = 0x86,
    /// 0x87 Not authorized.
    NotAuthorized = 0x87,
    /// 0x88 Server unavailable.
    ServerUnavailable = 0x88,
    /// 0x89 Server busy.
    ServerBusy = 0x89,
    /// 0x8A Banned.
    Banned = 0x8A,
    /// 0x8B Server shutting down.
    ServerShuttingDown = 0x8B,
    /// 0x8C Bad authentication method.
    BadAuthenticationMethod = 0x8C,
    /// 0x8D Keep Alive timeout.
    KeepAliveTimeout = 0x8D,
    /// 0x8E Session taken over.
    SessionTakenOver = 0x8E,
    /// 0x8F Topic Filter invalid.
    TopicFilterInvalid = 0x8F,
    /// 0x90 Topic Name invalid.
    TopicNameInvalid = 0x90,
    /// 0x91 Packet Identifier in use.
    PacketIdentifierInUse = 0x91,
    /// 0x92 Packet Identifier not found.
    PacketIdentifierNotFound = 0x92,
    /// 0x93 Receive Maximum exceeded.
    ReceiveMaximumExceeded = 0x93,
    /// 0x94 Topic Alias invalid.
    TopicAliasInvalid = 0x94,
    /// 0x95 Packet too large.
    PacketTooLarge = 0x95,
    /// 0x96 Message rate too high.
    MessageRateTooHigh = 0x96,
    /// 0x97 Quota exceeded.
    QuotaExceeded = 0x97,
    /// 0x98 Administrative action.
    AdministrativeAction = 0x98,
    /// 0x99 Payload format invalid.
    PayloadFormatInvalid = 0x99,
    /// 0x9A Retain not supported.
    RetainNotSupported = 0x9A,
    /// 0x9B QoS not supported.
    QoSNotSupported = 0x9B,
    /// 0x9C Use another server.
    UseAnotherServer = 0x9C,
    /// 0x9D Server moved.
    ServerMoved = 0x9D,
    /// 0x9E Shared Subscriptions not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// 0x9F Connection rate exceeded.
    ConnectionRateExceeded = 0x9F,
    /// 0xA0 Maximum connect time.
    MaximumConnectTime = 0xA0,
    /// 0xA1 Subscription Identifiers not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// 0xA2 Wildcard Subscriptions not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// Parses a reason code byte; unknown values give `None`.
    pub fn from_u8(v: u8) -> Option<ReasonCode> {
        Some(match v {
            0x00 => ReasonCode::Success,
            0x01 => ReasonCode::GrantedQoS1,
            0x02 => ReasonCode::GrantedQoS2,
            0x04 => ReasonCode::DisconnectWithWill,
            0x10 => ReasonCode::NoMatchingSubscribers,
            0x11 => ReasonCode::NoSubscriptionExisted,
            0x18 => ReasonCode::ContinueAuthentication,
            0x19 => ReasonCode::ReAuthenticate,
            0x80 => ReasonCode::UnspecifiedError,
            0x81 => ReasonCode::MalformedPacket,
            0x82 => ReasonCode::ProtocolError,
            0x83 => ReasonCode::ImplementationSpecificError,
            0x84 => ReasonCode::UnsupportedProtocolVersion,
            0x85 => ReasonCode::ClientIdentifierNotValid,
            0x86 => ReasonCode::BadUserNameOrPassword,
            0x87 => ReasonCode::NotAuthorized,
            0x88 => ReasonCode::ServerUnavailable,
            0x89 => ReasonCode::ServerBusy,
            0x8A => ReasonCode::Banned,
            0x8B => ReasonCode::ServerShuttingDown,
            0x8C => ReasonCode::BadAuthenticationMethod,
            0x8D => ReasonCode::KeepAliveTimeout,
            0x8E => ReasonCode::SessionTakenOver,
            0x8F => ReasonCode::TopicFilterInvalid,
            0x90 => ReasonCode::TopicNameInvalid,
            0x91 => ReasonCode::PacketIdentifierInUse,
            0x92 => ReasonCode::PacketIdentifierNotFound,
            0x93 => ReasonCode::ReceiveMaximumExceeded,
            0x94 => ReasonCode::TopicAliasInvalid,
            0x95 => ReasonCode::PacketTooLarge,
            0x96 => ReasonCode::MessageRateTooHigh,
            0x97 => ReasonCode::QuotaExceeded,
            0x98 => ReasonCode::AdministrativeAction,
            0x99 => ReasonCode::PayloadFormatInvalid,
            0x9A => ReasonCode::RetainNotSupported,
            0x9B => ReasonCode::QoSNotSupported,
            0x9C => ReasonCode::UseAnotherServer,
            0x9D => ReasonCode::ServerMoved,
            0x9E => ReasonCode::SharedSubscriptionsNotSupported,
            0x9F => ReasonCode::ConnectionRateExceeded,
            0xA0 => ReasonCode::MaximumConnectTime,
            0xA1 => ReasonCode::SubscriptionIdentifiersNotSupported,
            0xA2 => ReasonCode::WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }

    /// True for codes 0x80 and above, which signal failure.
    pub fn is_error(self) -> bool {
        (self as u8) >= 0x80
    }

    /// True if the spec's reason code table for `ctx` lists this code.
    pub(crate) fn allowed_in(self, ctx: ReasonContext) -> bool {
        use ReasonCode as R;
        match ctx {
            // 3.2.2.2
            ReasonContext::ConnAck => matches!(
                self,
                R::Success
                    | R::UnspecifiedError
                    | R::MalformedPacket
                    | R::ProtocolError
                    | R::ImplementationSpecificError
                    | R::UnsupportedProtocolVersion
                    | R::ClientIdentifierNotValid
                    | R::BadUserNameOrPassword
                    | R::NotAuthorized
                    | R::ServerUnavailable
                    | R::ServerBusy
                    | R::Banned
                    | R::BadAuthenticationMethod
                    | R::TopicNameInvalid
                    | R::PacketTooLarge
                    | R::QuotaExceeded
                    | R::PayloadFormatInvalid
                    | R::RetainNotSupported
                    | R::QoSNotSupported
                    | R::UseAnotherServer
                    | R::ServerMoved
                    | R::ConnectionRateExceeded
            ),
            // 3.4.2.1 and 3.5.2.1: PUBACK and PUBREC share one table.
            ReasonContext::PubAck => matches!(
                self,
                R::Success
                    | R::NoMatchingSubscribers
                    | R::UnspecifiedError
                    | R::ImplementationSpecificError
                    | R::NotAuthorized
                    | R::TopicNameInvalid
                    | R::PacketIdentifierInUse
                    | R::QuotaExceeded
                    | R::PayloadFormatInvalid
            ),
            // 3.6.2.1 and 3.7.2.1: PUBREL and PUBCOMP share one table.
            ReasonContext::PubRel => matches!(self, R::Success | R::PacketIdentifierNotFound),
            // 3.9.3
            ReasonContext::SubAck => matches!(
                self,
                R::Success
                    | R::GrantedQoS1
                    | R::GrantedQoS2
                    | R::UnspecifiedError
                    | R::ImplementationSpecificError
                    | R::NotAuthorized
                    | R::TopicFilterInvalid
                    | R::PacketIdentifierInUse
                    | R::QuotaExceeded
                    | R::SharedSubscriptionsNotSupported
                    | R::SubscriptionIdentifiersNotSupported
                    | R::WildcardSubscriptionsNotSupported
            ),
            // 3.11.3
            ReasonContext::UnsubAck => matches!(
                self,
                R::Success
                    | R::NoSubscriptionExisted
                    | R::UnspecifiedError
                    | R::ImplementationSpecificError
                    | R::NotAuthorized
                    | R::TopicFilterInvalid
                    | R::PacketIdentifierInUse
            ),
            // 3.14.2.1: every code except the CONNECT/SUBACK/AUTH-only ones.
            ReasonContext::Disconnect => !matches!(
                self,
                R::GrantedQoS1
                    | R::GrantedQoS2
                    | R::NoMatchingSubscribers
                    | R::NoSubscriptionExisted
                    | R::ContinueAuthentication
                    | R::ReAuthenticate
                    | R::UnsupportedProtocolVersion
                    | R::ClientIdentifierNotValid
                    | R::BadUserNameOrPassword
                    | R::ServerUnavailable
                    | R::Banned
                    | R::BadAuthenticationMethod
                    | R::PacketIdentifierInUse
                    | R::PacketIdentifierNotFound
            ),
            // 3.15.2.1
            ReasonContext::Auth => {
                matches!(
                    self,
                    R::Success | R::ContinueAuthentication | R::ReAuthenticate
                )
            }
        }
    }
}

/// The packet whose reason code table applies (the spec gives one table per packet type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReasonContext {
    /// CONNACK.
    ConnAck,
    /// PUBACK and PUBREC.
    PubAck,
    /// PUBREL and PUBCOMP.
    PubRel,
    /// SUBACK.
    SubAck,
    /// UNSUBACK.
    UnsubAck,
    /// DISCONNECT.
    Disconnect,
    /// AUTH.
    Auth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_u8_round_trips_every_code() {
        let mut known = 0;
        for v in 0..=u8::MAX {
            if let Some(code) = ReasonCode::from_u8(v) {
                assert_eq!(code as u8, v);
                known += 1;
            }
        }
        assert_eq!(known, 43);
        assert_eq!(ReasonCode::from_u8(0x03), None);
        assert_eq!(ReasonCode::from_u8(0xA3), None);
    }

    #[test]
    fn disconnect_table_has_the_spec_codes() {
        // 3.14.2.1 lists 29 codes.
        let n = (0..=u8::MAX)
            .filter_map(ReasonCode::from_u8)
            .filter(|c| c.allowed_in(ReasonContext::Disconnect))
            .count();
        assert_eq!(n, 29);
    }
}

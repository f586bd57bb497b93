//! Proptest generators for every packet, valid for a given protocol version: v3 packets get
//! no properties, no v5-only reasons and no v5-only options, so decode(encode(p)) == p holds.

use crate::primitives::MAX_VARINT;
use crate::properties::UserProperties;
use crate::reason::ReasonContext;
use crate::*;
use bytes::Bytes;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::sample::select;

/// Any protocol version.
pub(crate) fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(vec![
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ])
}

/// A UTF-8 string the spec allows (no U+0000), including multi-byte characters.
fn string() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,10}"
}

/// A valid topic name: non-empty, no wildcards.
fn topic_name() -> impl Strategy<Value = String> {
    "[^\u{0}+#]{1,10}"
}

/// A valid topic filter: `+`/`#` only as whole levels, `#` last (invalid ones are Malformed).
fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z/+#]{1,10}",
        "[^\u{0}]{1,10}",
        "\\$share/[a-z]{1,3}/[a-z/+#]{1,5}"
    ]
    .prop_filter("valid topic filter", |f| {
        crate::topic::is_valid_topic_filter(f)
    })
}

fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn flag() -> impl Strategy<Value = u8> {
    0..=1u8
}

fn users() -> impl Strategy<Value = UserProperties> {
    vec((string(), string()), 0..3)
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    1..=u16::MAX
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

/// Every reason code listed for `ctx`.
fn reason(ctx: ReasonContext) -> impl Strategy<Value = ReasonCode> {
    let codes: Vec<ReasonCode> = (0..=u8::MAX)
        .filter_map(ReasonCode::from_u8)
        .filter(|c| c.allowed_in(ctx))
        .collect();
    select(codes)
}

/// `v5` if the version has it, else the default (v3 packets carry no properties).
fn v5_only<T: Default + Clone + std::fmt::Debug + 'static>(
    v: ProtocolVersion,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if v.is_v5() {
        s.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(1..=u32::MAX),
        of(any::<u16>()),
        of(flag()),
        of(flag()),
        users(),
        of(string()),
        of(binary()),
    )
        .prop_map(
            |(sei, rm, mps, tam, rri, rpi, up, am, ad)| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: up,
                // Authentication Data needs an Authentication Method (3.1.2.11.10).
                authentication_data: if am.is_some() { ad } else { None },
                authentication_method: am,
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        of(any::<u32>()),
        of(flag()),
        of(any::<u32>()),
        of(string()),
        of(topic_name()),
        of(binary()),
        users(),
    )
        .prop_map(|(wdi, pfi, mei, ct, rt, cd, up)| WillProperties {
            will_delay_interval: wdi,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
        })
}

/// CONNECT for `v` (the packet names its own version).
pub(crate) fn connect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        v5_only(v, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic: topic.into(),
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        string(),
        of(will),
        of(string()),
        of(binary()),
        v5_only(v, connect_properties()),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // MQTT-3.1.2-22: v3 has no password without a user name.
                let password = if v.is_v5() || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let a = (
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(flag()),
        of(flag()),
        of(1..=u32::MAX),
        of(string()),
        of(any::<u16>()),
        of(string()),
        users(),
    );
    let b = (
        of(flag()),
        of(flag()),
        of(flag()),
        of(any::<u16>()),
        of(string()),
        of(string()),
        of(string()),
        of(binary()),
    );
    (a, b).prop_map(
        |((sei, rm, mq, ra, mps, aci, tam, rs, up), (wsa, sia, ssa, ska, ri, sr, am, ad))| {
            ConnAckProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_qos: mq,
                retain_available: ra,
                maximum_packet_size: mps,
                assigned_client_identifier: aci,
                topic_alias_maximum: tam,
                reason_string: rs,
                user_properties: up,
                wildcard_subscription_available: wsa,
                subscription_identifier_available: sia,
                shared_subscription_available: ssa,
                server_keep_alive: ska,
                response_information: ri,
                server_reference: sr,
                authentication_method: am,
                authentication_data: ad,
            }
        },
    )
}

/// CONNACK for `v`; v3 only has the six reasons that map to return codes.
pub(crate) fn connack(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let reason = if v.is_v5() {
        reason(ReasonContext::ConnAck).boxed()
    } else {
        select(vec![
            ReasonCode::Success,
            ReasonCode::UnsupportedProtocolVersion,
            ReasonCode::ClientIdentifierNotValid,
            ReasonCode::ServerUnavailable,
            ReasonCode::BadUserNameOrPassword,
            ReasonCode::NotAuthorized,
        ])
        .boxed()
    };
    (any::<bool>(), reason, v5_only(v, connack_properties())).prop_map(
        |(session_present, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties: properties.into(),
            })
        },
    )
}

fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        of(flag()),
        of(any::<u32>()),
        of(1..=u16::MAX),
        of(topic_name()),
        of(binary()),
        users(),
        vec(1..=MAX_VARINT, 0..3),
        of(string()),
    )
        .prop_map(|(pfi, mei, ta, rt, cd, up, si, ct)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt.map(Into::into),
            correlation_data: cd,
            user_properties: up,
            subscription_identifiers: si,
            content_type: ct.map(Into::into),
        })
}

/// PUBLISH for `v`: packet id iff QoS > 0, DUP only with QoS > 0, empty topic only in v5.
pub(crate) fn publish(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let topic = if v.is_v5() {
        prop_oneof![Just(String::new()), topic_name()].boxed()
    } else {
        topic_name().boxed()
    };
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic,
        packet_id(),
        v5_only(v, publish_properties()),
        vec(any::<u8>(), 0..64),
    )
        .prop_map(|(dup, qos, retain, topic, id, properties, payload)| {
            let at_most_once = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !at_most_once,
                qos,
                retain,
                topic: topic.into(),
                packet_id: (!at_most_once).then_some(id),
                properties: properties.into(),
                payload: payload.into(),
            })
        })
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (of(string()), users()).prop_map(|(reason_string, user_properties)| AckProperties {
        reason_string,
        user_properties,
    })
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP for `v`.
pub(crate) fn ack(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    select(vec![
        AckKind::PubAck,
        AckKind::PubRec,
        AckKind::PubRel,
        AckKind::PubComp,
    ])
    .prop_flat_map(move |kind| {
        let ctx = match kind {
            AckKind::PubAck | AckKind::PubRec => ReasonContext::PubAck,
            AckKind::PubRel | AckKind::PubComp => ReasonContext::PubRel,
        };
        let reason = if v.is_v5() {
            reason(ctx).boxed()
        } else {
            Just(ReasonCode::Success).boxed()
        };
        (packet_id(), reason, v5_only(v, ack_properties())).prop_map(
            move |(packet_id, reason, properties)| {
                Packet::Ack(Ack {
                    kind,
                    packet_id,
                    reason,
                    properties: properties.into(),
                })
            },
        )
    })
}

fn subscription(v: ProtocolVersion) -> impl Strategy<Value = TopicSubscription> {
    let retain_handling = select(vec![
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendIfNew,
        RetainHandling::DoNotSend,
    ]);
    (
        filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        retain_handling,
    )
        .prop_map(
            move |(filter, qos, no_local, retain_as_published, retain_handling)| {
                let options = if v.is_v5() {
                    SubscriptionOptions {
                        qos,
                        // MQTT-3.8.3-4: No Local is a Protocol Error on a shared subscription.
                        no_local: no_local && !filter.starts_with("$share/"),
                        retain_as_published,
                        retain_handling,
                    }
                } else {
                    SubscriptionOptions {
                        qos,
                        ..Default::default()
                    }
                };
                TopicSubscription { filter, options }
            },
        )
}

/// SUBSCRIBE for `v`, with one to four filters.
pub(crate) fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let properties = (of(1..=MAX_VARINT), users()).prop_map(|(subscription_identifier, u)| {
        SubscribeProperties {
            subscription_identifier,
            user_properties: u,
        }
    });
    (
        packet_id(),
        vec(subscription(v), 1..5),
        v5_only(v, properties),
    )
        .prop_map(|(packet_id, filters, properties)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                filters,
                properties,
            })
        })
}

/// SUBACK for `v`; v3 only has 0x00, 0x01, 0x02 and 0x80.
pub(crate) fn suback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let code = if v.is_v5() {
        reason(ReasonContext::SubAck).boxed()
    } else {
        select(vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ])
        .boxed()
    };
    (packet_id(), vec(code, 1..5), v5_only(v, ack_properties())).prop_map(
        |(packet_id, reasons, properties)| {
            Packet::SubAck(SubAck {
                packet_id,
                reasons,
                properties: properties.into(),
            })
        },
    )
}

/// UNSUBSCRIBE for `v`, with one to four filters.
pub(crate) fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (packet_id(), vec(filter(), 1..5), v5_only(v, users())).prop_map(
        |(packet_id, filters, user_properties)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                filters,
                user_properties,
            })
        },
    )
}

/// UNSUBACK for `v`; v3 carries no reasons.
pub(crate) fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let reasons = v5_only(v, vec(reason(ReasonContext::UnsubAck), 1..5));
    (packet_id(), reasons, v5_only(v, ack_properties())).prop_map(
        |(packet_id, reasons, properties)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                reasons,
                properties: properties.into(),
            })
        },
    )
}

/// PINGREQ or PINGRESP.
pub(crate) fn ping() -> impl Strategy<Value = Packet> {
    select(vec![Packet::PingReq, Packet::PingResp])
}

/// DISCONNECT for `v`; v3 has no body.
pub(crate) fn disconnect(v: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let properties =
        (of(any::<u32>()), of(string()), users(), of(string())).prop_map(|(sei, rs, up, sr)| {
            DisconnectProperties {
                session_expiry_interval: sei,
                reason_string: rs,
                user_properties: up,
                server_reference: sr,
            }
        });
    let reason = if v.is_v5() {
        reason(ReasonContext::Disconnect).boxed()
    } else {
        Just(ReasonCode::Success).boxed()
    };
    (reason, v5_only(v, properties)).prop_map(|(reason, properties)| {
        Packet::Disconnect(Disconnect {
            reason,
            properties: properties.into(),
        })
    })
}

/// AUTH (v5 only).
pub(crate) fn auth() -> impl Strategy<Value = Packet> {
    let properties =
        (of(string()), of(binary()), of(string()), users()).prop_map(|(am, ad, rs, up)| {
            AuthProperties {
                authentication_method: am,
                authentication_data: ad,
                reason_string: rs,
                user_properties: up,
            }
        });
    (reason(ReasonContext::Auth), properties).prop_map(|(reason, properties)| {
        Packet::Auth(Auth {
            reason,
            properties: properties.into(),
        })
    })
}

/// Any packet valid in `v`.
pub(crate) fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let common = prop_oneof![
        connect(v),
        connack(v),
        publish(v),
        ack(v),
        subscribe(v),
        suback(v),
        unsubscribe(v),
        unsuback(v),
        ping(),
        disconnect(v),
    ];
    if v.is_v5() {
        prop_oneof![common, auth()].boxed()
    } else {
        common.boxed()
    }
}

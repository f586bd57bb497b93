//! Proptest strategies for the values the conversions carry.

use crate::WallClock;
use bytes::Bytes;
use midge_codec::{
    LastWill, Publish, PublishProperties, QoS, RetainHandling, SubscriptionOptions, WillProperties,
};
use midge_core::{DurableOp, Message, MessageState, Subscription};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One clock reading shared by every strategy, so generated deadlines are whole milliseconds
/// away from it (the stored precision).
pub(crate) fn clock() -> WallClock {
    static CLOCK: OnceLock<WallClock> = OnceLock::new();
    *CLOCK.get_or_init(WallClock::now)
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9/_é]{0,12}"
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn user_properties() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((text(), text()), 0..3)
}

pub(crate) fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        option::of(any::<u8>()),
        option::of(any::<u32>()),
        option::of(any::<u16>()),
        option::of(text()),
        option::of(bytes()),
        user_properties(),
        vec(1u32..268_435_455, 0..3),
        option::of(text()),
    )
        .prop_map(
            |(pfi, expiry, alias, response, correlation, user, ids, content)| PublishProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: expiry,
                topic_alias: alias,
                response_topic: response.map(Arc::from),
                correlation_data: correlation,
                user_properties: user,
                subscription_identifiers: ids,
                content_type: content.map(Arc::from),
            },
        )
}

pub(crate) fn message() -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        text(),
        option::of(1u16..),
        publish_properties(),
        bytes(),
        option::of(0u64..10_000_000_000),
    )
        .prop_map(
            |(dup, qos, retain, topic, packet_id, properties, payload, expiry)| Message {
                publish: Publish {
                    dup,
                    qos,
                    retain,
                    topic: Arc::from(topic),
                    packet_id,
                    properties: properties.into(),
                    payload,
                },
                expires_at: expiry.map(|ms| clock().instant + Duration::from_millis(ms)),
            },
        )
}

pub(crate) fn last_will() -> impl Strategy<Value = LastWill> {
    (
        text(),
        bytes(),
        qos(),
        any::<bool>(),
        (
            option::of(any::<u32>()),
            option::of(any::<u8>()),
            option::of(any::<u32>()),
            option::of(text()),
            option::of(text()),
            option::of(bytes()),
            user_properties(),
        ),
    )
        .prop_map(|(topic, payload, qos, retain, p)| LastWill {
            topic: Arc::from(topic),
            payload,
            qos,
            retain,
            properties: WillProperties {
                will_delay_interval: p.0,
                payload_format_indicator: p.1,
                message_expiry_interval: p.2,
                content_type: p.3,
                response_topic: p.4,
                correlation_data: p.5,
                user_properties: p.6,
            },
        })
}

pub(crate) fn subscription() -> impl Strategy<Value = Subscription> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(RetainHandling::SendAtSubscribe),
            Just(RetainHandling::SendIfNew),
            Just(RetainHandling::DoNotSend)
        ],
        option::of(1u32..268_435_455),
    )
        .prop_map(|(qos, no_local, rap, rh, identifier)| Subscription {
            options: SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                retain_handling: rh,
            },
            identifier,
        })
}

pub(crate) fn message_state() -> impl Strategy<Value = MessageState> {
    prop_oneof![
        Just(MessageState::Queued),
        (1u16..).prop_map(|packet_id| MessageState::Sent { packet_id }),
        (1u16..).prop_map(|packet_id| MessageState::Released { packet_id }),
    ]
}

pub(crate) fn durable_op() -> impl Strategy<Value = DurableOp> {
    let id = || text().prop_map(Arc::<str>::from);
    prop_oneof![
        (id(), message()).prop_map(|(topic, message)| DurableOp::RetainedSet { topic, message }),
        id().prop_map(|topic| DurableOp::RetainedClear { topic }),
        (id(), any::<u32>(), option::of(last_will()), any::<bool>()).prop_map(
            |(client_id, expiry_interval, will, connected)| DurableOp::SessionPut {
                client_id,
                expiry_interval,
                will,
                connected,
            }
        ),
        id().prop_map(|client_id| DurableOp::SessionDelete { client_id }),
        (id(), text(), subscription()).prop_map(|(client_id, filter, subscription)| {
            DurableOp::SubscriptionPut {
                client_id,
                filter,
                subscription,
            }
        }),
        (id(), text())
            .prop_map(|(client_id, filter)| DurableOp::SubscriptionDelete { client_id, filter }),
        (id(), any::<u64>(), message(), message_state()).prop_map(
            |(client_id, seq, message, state)| DurableOp::MessagePut {
                client_id,
                seq,
                message,
                state,
            }
        ),
        (id(), any::<u64>())
            .prop_map(|(client_id, seq)| DurableOp::MessageDelete { client_id, seq }),
        (id(), 1u16..).prop_map(|(client_id, packet_id)| DurableOp::Qos2ReceivedPut {
            client_id,
            packet_id
        }),
        (id(), 1u16..).prop_map(|(client_id, packet_id)| DurableOp::Qos2ReceivedDelete {
            client_id,
            packet_id
        }),
    ]
}

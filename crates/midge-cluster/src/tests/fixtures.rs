//! Shared test data: durable ops of every kind and the state they should restore to.

use crate::{ClusterConfig, WallClock};
use bytes::Bytes;
use midge_codec::{
    LastWill, Publish, PublishProperties, QoS, RetainHandling, SubscriptionOptions, WillProperties,
};
use midge_core::{DurableOp, Message, MessageState, RestoredSession, RestoredState, Subscription};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A single-node config with short timeouts, rooted at `dir`.
pub(crate) fn config(dir: &Path) -> ClusterConfig {
    let mut c = ClusterConfig::new(1, dir);
    c.heartbeat_interval = Duration::from_millis(50);
    c.election_timeout = (Duration::from_millis(150), Duration::from_millis(300));
    c
}

/// A message on `topic`, expiring `expiry_ms` after `clock` (whole milliseconds, so it
/// round-trips exactly).
pub(crate) fn message(
    topic: &str,
    payload: &str,
    clock: &WallClock,
    expiry_ms: Option<u64>,
) -> Message {
    Message {
        publish: Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: Arc::from(topic),
            packet_id: None,
            properties: PublishProperties {
                message_expiry_interval: expiry_ms.map(|ms| (ms / 1000) as u32),
                content_type: Some(Arc::from("text/plain")),
                user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
                ..PublishProperties::default()
            }
            .into(),
            payload: Bytes::from(payload.to_string()),
        },
        expires_at: expiry_ms.map(|ms| clock.instant + Duration::from_millis(ms)),
    }
}

fn will() -> LastWill {
    LastWill {
        topic: Arc::from("wills/c1"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(5),
            ..WillProperties::default()
        },
    }
}

fn subscription(qos: QoS, identifier: Option<u32>) -> Subscription {
    Subscription {
        options: SubscriptionOptions {
            qos,
            no_local: true,
            retain_as_published: false,
            retain_handling: RetainHandling::SendIfNew,
        },
        identifier,
    }
}

/// Proposals (each a list of ops) covering every `DurableOp` variant, and the state they
/// leave, as restored with `clock` (the same clock they were proposed with).
pub(crate) fn every_kind(clock: &WallClock) -> (Vec<Vec<DurableOp>>, RestoredState) {
    let id = |s: &str| Arc::<str>::from(s);
    let kept = message("r/kept", "kept", clock, Some(90_000));
    let queued = message("a/1", "one", clock, None);
    let sent = Message {
        publish: Publish {
            qos: QoS::ExactlyOnce,
            ..message("a/2", "two", clock, Some(30_000)).publish
        },
        ..message("a/2", "two", clock, Some(30_000))
    };
    let proposals = vec![
        vec![
            DurableOp::RetainedSet {
                topic: id("r/kept"),
                message: kept.clone(),
            },
            DurableOp::RetainedSet {
                topic: id("r/cleared"),
                message: message("r/cleared", "x", clock, None),
            },
        ],
        vec![DurableOp::RetainedClear {
            topic: id("r/cleared"),
        }],
        vec![
            DurableOp::SessionPut {
                client_id: id("c1"),
                expiry_interval: 3_600,
                will: Some(will()),
                connected: true,
            },
            DurableOp::SubscriptionPut {
                client_id: id("c1"),
                filter: "a/+".into(),
                subscription: subscription(QoS::ExactlyOnce, Some(7)),
            },
            DurableOp::SubscriptionPut {
                client_id: id("c1"),
                filter: "$share/g/b/#".into(),
                subscription: subscription(QoS::AtLeastOnce, None),
            },
            DurableOp::SubscriptionPut {
                client_id: id("c1"),
                filter: "gone/#".into(),
                subscription: subscription(QoS::AtMostOnce, None),
            },
        ],
        vec![
            DurableOp::SubscriptionDelete {
                client_id: id("c1"),
                filter: "gone/#".into(),
            },
            DurableOp::MessagePut {
                client_id: id("c1"),
                seq: 2,
                message: sent.clone(),
                state: MessageState::Queued,
            },
            DurableOp::MessagePut {
                client_id: id("c1"),
                seq: 1,
                message: queued.clone(),
                state: MessageState::Queued,
            },
            DurableOp::MessagePut {
                client_id: id("c1"),
                seq: 3,
                message: queued.clone(),
                state: MessageState::Queued,
            },
        ],
        vec![
            DurableOp::MessagePut {
                client_id: id("c1"),
                seq: 2,
                message: sent.clone(),
                state: MessageState::Released { packet_id: 9 },
            },
            DurableOp::MessageDelete {
                client_id: id("c1"),
                seq: 3,
            },
            DurableOp::Qos2ReceivedPut {
                client_id: id("c1"),
                packet_id: 300,
            },
            DurableOp::Qos2ReceivedPut {
                client_id: id("c1"),
                packet_id: 4,
            },
            DurableOp::Qos2ReceivedDelete {
                client_id: id("c1"),
                packet_id: 4,
            },
        ],
        vec![
            DurableOp::SessionPut {
                client_id: id("c2"),
                expiry_interval: 10,
                will: None,
                connected: true,
            },
            DurableOp::SubscriptionPut {
                client_id: id("c2"),
                filter: "x".into(),
                subscription: subscription(QoS::AtLeastOnce, None),
            },
            DurableOp::MessagePut {
                client_id: id("c2"),
                seq: 1,
                message: queued.clone(),
                state: MessageState::Sent { packet_id: 1 },
            },
            DurableOp::Qos2ReceivedPut {
                client_id: id("c2"),
                packet_id: 1,
            },
        ],
        vec![
            DurableOp::SessionDelete {
                client_id: id("c2"),
            },
            DurableOp::SessionPut {
                client_id: id("c3"),
                expiry_interval: 60,
                will: None,
                connected: false,
            },
            DurableOp::SessionPut {
                client_id: id("forever"),
                expiry_interval: u32::MAX,
                will: None,
                connected: false,
            },
        ],
    ];
    let expected = RestoredState {
        retained: vec![(id("r/kept"), kept)],
        sessions: vec![
            RestoredSession {
                client_id: id("c1"),
                expiry_interval: 3_600,
                // Connected when the broker stopped: the countdown starts at restore.
                expires_at: Some(clock.instant + Duration::from_secs(3_600)),
                will: Some(will()),
                was_connected: true,
                subscriptions: vec![
                    ("$share/g/b/#".into(), subscription(QoS::AtLeastOnce, None)),
                    ("a/+".into(), subscription(QoS::ExactlyOnce, Some(7))),
                ],
                messages: vec![
                    (1, queued, MessageState::Queued),
                    (2, sent, MessageState::Released { packet_id: 9 }),
                ],
                qos2_received: vec![300],
            },
            RestoredSession {
                client_id: id("c3"),
                expiry_interval: 60,
                expires_at: Some(clock.instant + Duration::from_secs(60)),
                will: None,
                was_connected: false,
                subscriptions: vec![],
                messages: vec![],
                qos2_received: vec![],
            },
            RestoredSession {
                client_id: id("forever"),
                expiry_interval: u32::MAX,
                expires_at: None,
                will: None,
                was_connected: false,
                subscriptions: vec![],
                messages: vec![],
                qos2_received: vec![],
            },
        ],
    };
    (proposals, expected)
}

/// The state with its lists in a canonical order (key order is the store's business).
pub(crate) fn normalized(mut state: RestoredState) -> RestoredState {
    state.retained.sort_by(|a, b| a.0.cmp(&b.0));
    state.sessions.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    for s in &mut state.sessions {
        s.subscriptions.sort_by(|a, b| a.0.cmp(&b.0));
        s.qos2_received.sort_unstable();
    }
    state
}

//! Persistent sessions: resume, offline queue, re-delivery, expiry.

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{AckKind, Disconnect, DisconnectProperties, Packet, QoS, ReasonCode};

#[test]
fn persistent_session_resumes_with_subscriptions() {
    // MQTT-3.1.2-5 / MQTT-3.2.2-3: Clean Start 0 with a session -> resume, Session Present 1;
    // 3.1.1: MQTT-3.1.2-4 / MQTT-3.2.2-2.
    for version in [V5, V3_1_1] {
        let mut h = H::new();
        if version == V5 {
            h.connect_v5(1, "c", false, 100);
        } else {
            h.connect(1, "c", version, false);
        }
        h.subscribe(1, "t", QoS::AtLeastOnce);
        h.closed(1);
        assert_eq!(h.broker.stats().sessions, 1);
        assert_eq!(h.broker.stats().subscriptions, 1);
        assert!(h.connect(2, "c", version, false).session_present);
        h.connect(3, "pub", version, true);
        let out = publishes(
            &h.publish(3, publish("t", QoS::AtLeastOnce, Some(1), "m")),
            2,
        );
        assert_eq!(out.len(), 1);
    }
}

#[test]
fn clean_start_discards_the_session() {
    // MQTT-3.1.2-4 (v5; 3.1.1 MQTT-3.1.2-6): Clean Start 1 discards any existing session.
    let mut h = H::new();
    h.connect_v5(1, "c", false, 100);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.closed(1);
    assert!(!h.connect(2, "c", V5, true).session_present);
    assert_eq!(h.broker.stats().subscriptions, 0);
    h.connect(3, "pub", V5, true);
    assert!(publishes(
        &h.publish(3, publish("t", QoS::AtLeastOnce, Some(1), "m")),
        2
    )
    .is_empty());
}

#[test]
fn clean_session_ends_with_the_connection() {
    // Session Expiry 0 (v5 default; 3.1.1 CleanSession 1): nothing kept after the connection.
    let mut h = H::new();
    h.connect(1, "a", V5, false);
    h.connect(2, "b", V3_1_1, true);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.subscribe(2, "t", QoS::AtLeastOnce);
    h.closed(1);
    h.disconnect(2, ReasonCode::Success);
    let stats = h.broker.stats();
    assert_eq!((stats.sessions, stats.subscriptions), (0, 0));
    assert!(!h.connect(3, "a", V5, false).session_present);
}

#[test]
fn offline_queue_and_redelivery_of_inflight_on_resume() {
    // MQTT-4.4.0-1: on resume, unacknowledged PUBLISH packets are re-sent with their original
    // packet ids and DUP 1 (MQTT-3.3.1-1), PUBREL for those PUBREC'd, in the original order
    // (MQTT-4.6.0-1); then the queued messages follow.
    let mut h = H::new();
    h.connect_v5(1, "sub", false, 100);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.connect(2, "pub", V5, true);
    let a = publishes(
        &h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "a")),
        1,
    );
    let b = publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(2), "b")),
        1,
    );
    let c = publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(3), "c")),
        1,
    );
    h.ack(1, AckKind::PubRec, b[0].packet_id.unwrap());
    h.closed(1);
    // Offline: QoS 1/2 queued, QoS 0 not (queue_qos0_messages is off).
    h.publish(2, publish("t", QoS::AtMostOnce, None, "d"));
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(4), "e"));
    let (ack, actions) = h.connect_ok(3, connect_packet(V5, "sub", false));
    assert!(ack.session_present);
    let packets = sent(&actions, 3);
    assert_eq!(packets.len(), 4, "{packets:?}");
    match &packets[0] {
        Packet::Publish(p) => {
            assert!(p.dup);
            assert_eq!(p.packet_id, a[0].packet_id);
            assert_eq!(&p.payload[..], b"a");
        }
        other => panic!("{other:?}"),
    }
    match &packets[1] {
        Packet::Ack(r) => {
            assert_eq!(r.kind, AckKind::PubRel);
            assert_eq!(Some(r.packet_id), b[0].packet_id);
        }
        other => panic!("{other:?}"),
    }
    match &packets[2] {
        Packet::Publish(p) => {
            assert!(p.dup);
            assert_eq!(p.packet_id, c[0].packet_id);
        }
        other => panic!("{other:?}"),
    }
    match &packets[3] {
        Packet::Publish(p) => {
            assert!(!p.dup);
            assert_eq!(&p.payload[..], b"e");
            assert_eq!(p.qos, QoS::AtLeastOnce);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v311_persistent_session_queue() {
    let mut h = H::new();
    h.connect(1, "sub", V3_1_1, false);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.disconnect(1, ReasonCode::Success);
    h.connect(2, "pub", V3_1_1, true);
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "x"));
    h.advance_secs(1_000_000);
    h.tick();
    let (ack, actions) = h.connect_ok(3, connect_packet(V3_1_1, "sub", false));
    assert!(
        ack.session_present,
        "3.1.1 persistent sessions never expire"
    );
    assert_eq!(payloads(&actions, 3), vec!["x"]);
}

#[test]
fn qos0_queued_when_configured() {
    let mut h = H::with(BrokerConfig {
        queue_qos0_messages: true,
        ..config()
    });
    h.connect_v5(1, "sub", false, 100);
    h.subscribe(1, "t", QoS::AtMostOnce);
    h.closed(1);
    h.connect(2, "pub", V5, true);
    h.publish(2, publish("t", QoS::AtMostOnce, None, "q0"));
    let (_, actions) = h.connect_ok(3, connect_packet(V5, "sub", false));
    assert_eq!(payloads(&actions, 3), vec!["q0"]);
    assert_eq!(publishes(&actions, 3)[0].packet_id, None);
}

#[test]
fn queue_limit_drops_qos0_first() {
    let mut h = H::with(BrokerConfig {
        queue_qos0_messages: true,
        max_queued_messages: 2,
        ..config()
    });
    h.connect_v5(1, "sub", false, 100);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.closed(1);
    h.connect(2, "pub", V5, true);
    h.publish(2, publish("t", QoS::AtMostOnce, None, "0a"));
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "1a"));
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "1b")); // drops 0a
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(3), "1c")); // dropped itself
    assert_eq!(h.broker.stats().messages_dropped, 2);
    let (_, actions) = h.connect_ok(3, connect_packet(V5, "sub", false));
    assert_eq!(payloads(&actions, 3), vec!["1a", "1b"]);
}

#[test]
fn session_expiry_on_tick() {
    let mut h = H::new();
    h.connect_v5(1, "c", false, 10);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.closed(1);
    h.advance_secs(9);
    h.tick();
    assert_eq!(h.broker.stats().sessions, 1);
    h.advance_secs(1);
    h.tick();
    let stats = h.broker.stats();
    assert_eq!((stats.sessions, stats.subscriptions), (0, 0));
    assert!(!h.connect(2, "c", V5, false).session_present);
}

#[test]
fn session_expiry_capped_by_config() {
    let mut h = H::with(BrokerConfig {
        max_session_expiry: 5,
        ..config()
    });
    h.connect(1, "v3", V3_1_1, false);
    h.connect_v5(2, "v5", false, 1000);
    h.closed(1);
    h.closed(2);
    h.advance_secs(5);
    h.tick();
    assert_eq!(h.broker.stats().sessions, 0);
}

#[test]
fn disconnect_updates_session_expiry() {
    // 3.14.2.2.2: the DISCONNECT's Session Expiry Interval replaces the CONNECT's...
    let mut h = H::new();
    h.connect_v5(1, "c", false, 100);
    let d = Disconnect {
        reason: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..Default::default()
        }
        .into(),
    };
    h.packet(1, Packet::Disconnect(d));
    assert_eq!(h.broker.stats().sessions, 0);
    // ...but raising it from 0 is a Protocol Error.
    h.connect_v5(2, "d", false, 0);
    let d = Disconnect {
        reason: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(60),
            ..Default::default()
        }
        .into(),
    };
    let actions = h.packet(2, Packet::Disconnect(d));
    assert_disconnected(&actions, 2, ReasonCode::ProtocolError);
    assert_eq!(h.broker.stats().sessions, 0);
}

#[test]
fn expired_session_is_not_resumed_by_a_stale_timer() {
    // A session that reconnected and left again expires at its new deadline.
    let mut h = H::new();
    h.connect_v5(1, "c", false, 10);
    h.closed(1);
    h.advance_secs(5);
    h.connect_v5(2, "c", false, 10);
    h.advance_secs(3);
    h.closed(2);
    h.advance_secs(5);
    h.tick();
    assert_eq!(h.broker.stats().sessions, 1, "first deadline is stale");
    h.advance_secs(5);
    h.tick();
    assert_eq!(h.broker.stats().sessions, 0);
}

#[test]
fn queued_bytes_limit_drops_qos0_first_and_counts_by_reason() {
    // broker.max_queued_bytes: 5 bytes per message here ("t" + 4 payload bytes).
    let mut h = H::with(BrokerConfig {
        queue_qos0_messages: true,
        max_queued_bytes: 10,
        ..config()
    });
    h.connect_v5(1, "sub", false, 100);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.closed(1);
    h.connect(2, "pub", V5, true);
    h.publish(2, publish("t", QoS::AtMostOnce, None, "0aaa"));
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "1aaa"));
    h.publish(2, publish("t", QoS::AtMostOnce, None, "0bbb")); // new QoS 0: dropped itself
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "1bbb")); // drops 0aaa
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(3), "1ccc")); // no QoS 0 left: dropped
    let stats = h.broker.stats();
    assert_eq!(stats.messages_dropped, 3);
    assert_eq!(stats.dropped_by.get(crate::DropReason::QueueBytes), 3);
    assert_eq!(stats.dropped_by.get(crate::DropReason::QueueFull), 0);
    let (_, actions) = h.connect_ok(3, connect_packet(V5, "sub", false));
    assert_eq!(payloads(&actions, 3), vec!["1aaa", "1bbb"]);
}

#[test]
fn queued_bytes_limit_applies_beyond_the_inflight_window_too() {
    // A connected client with a full window: messages wait in the same bounded queue.
    let mut h = H::with(BrokerConfig {
        max_inflight: 1,
        max_queued_bytes: 5,
        ..config()
    });
    h.connect_v5(1, "sub", true, 0);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", V5, true);
    let first = h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "1aaa"));
    assert_eq!(payloads(&first, 1), vec!["1aaa"], "in flight");
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "1bbb")); // queued: 5 bytes
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(3), "1ccc")); // over: dropped
    assert_eq!(
        h.broker
            .stats()
            .dropped_by
            .get(crate::DropReason::QueueBytes),
        1
    );
    let id = publishes(&first, 1)[0].packet_id.expect("id");
    let next = h.ack(1, AckKind::PubAck, id);
    assert_eq!(payloads(&next, 1), vec!["1bbb"]);
}

#[test]
fn an_idle_session_holds_none_of_its_optional_parts() {
    // What `on_demand.rs` promises: a client that connects and does nothing, or a persistent
    // session waiting offline with nothing for it, allocates no subscription map, QoS 2 id
    // set, retained replay or shared-message window; using one allocates it.
    let mut h = H::new();
    h.connect_v5(1, "idle", false, 100);
    h.tick();
    h.closed(1);
    h.connect(2, "quiet", V5, true);
    let idx = h.broker.conns[&2].session;
    let s = h.broker.sessions.get(idx).unwrap();
    assert!(s.subscriptions.get().is_none() && s.awaiting_pubrel.get().is_none());
    assert!(s.replay.is_empty() && s.shared_seqs.is_empty());
    let offline = h.broker.sessions.find("idle").unwrap();
    let s = h.broker.sessions.get(offline).unwrap();
    assert!(s.subscriptions.get().is_none() && s.awaiting_pubrel.get().is_none());

    // A subscription and a QoS 2 flow allocate theirs; PUBREL completes the flow.
    h.subscribe(2, "t", QoS::AtMostOnce);
    h.publish(2, publish("u", QoS::ExactlyOnce, Some(5), "m"));
    let idx = h.broker.conns[&2].session;
    let s = h.broker.sessions.get(idx).unwrap();
    assert_eq!(s.subscriptions.get().map(|m| m.len()), Some(1));
    assert!(s.awaiting_pubrel.get().is_some_and(|ids| ids.contains(&5)));
    let out = h.ack(2, AckKind::PubRel, 5);
    assert!(matches!(
        sent(&out, 2).as_slice(),
        [Packet::Ack(a)] if a.kind == AckKind::PubComp && a.reason == ReasonCode::Success
    ));
    let s = h.broker.sessions.get(idx).unwrap();
    assert!(s.awaiting_pubrel.get().is_some_and(|ids| ids.is_empty()));
}

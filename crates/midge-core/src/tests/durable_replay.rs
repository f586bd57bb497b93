//! Restoring durable state: every op a broker emitted, folded with `DurableState`, restored
//! into a new broker, gives the clients back their sessions, messages, subscriptions,
//! retained messages and exactly-once state.

use super::durable::{connect_persistent, sub};
use super::harness::*;
use crate::{
    Broker, BrokerConfig, DurableOp, DurableState, Message, MessageState, RestoredSession,
    RestoredState,
};
use midge_codec::{AckKind, QoS};
use std::time::{Duration, Instant};

/// The state `ops` leave behind.
fn fold(ops: &[(Instant, DurableOp)]) -> DurableState {
    let mut state = DurableState::new();
    for (at, op) in ops {
        state.apply(*at, op.clone());
    }
    state
}

/// A new broker at `now`, restored from `state`.
fn restored(now: Instant, config: BrokerConfig, state: RestoredState) -> H {
    let mut h = H {
        broker: Broker::new(config, now),
        now,
        ops: Vec::new(),
    };
    h.broker.restore(now, state);
    h
}

/// A new broker at `h`'s time, restored from everything `h` persisted.
fn restart(h: &H, config: BrokerConfig) -> H {
    restored(h.now, config, fold(&h.ops).into_restored())
}

fn acked(h: &mut H, conn: u64, kind: AckKind, id: u16) -> Vec<String> {
    trace(&h.ack(conn, kind, id))
}

#[test]
fn replay_restores_sessions_after_a_crash() {
    let config = BrokerConfig {
        max_inflight: 3,
        ..durable_config()
    };
    let mut h = H::with(config.clone());
    connect_persistent(&mut h, 1, "sub", 1000);
    sub(&mut h, 1, "a/#", QoS::ExactlyOnce);
    sub(&mut h, 1, "$share/g/s", QoS::AtLeastOnce);
    connect_persistent(&mut h, 2, "pub", 1000);
    h.publish(2, publish("a/1", QoS::AtLeastOnce, Some(1), "m1"));
    h.publish(2, publish("a/2", QoS::ExactlyOnce, Some(2), "m2"));
    h.ack(2, AckKind::PubRel, 2);
    h.ack(1, AckKind::PubRec, 2);
    h.publish(2, publish("a/3", QoS::AtLeastOnce, Some(3), "m3"));
    h.publish(2, publish("a/4", QoS::ExactlyOnce, Some(4), "m4"));
    h.ack(2, AckKind::PubRel, 4);
    h.publish(2, retained("a/r", QoS::AtLeastOnce, Some(5), "ret"));
    // Routed and PUBREC'd, but the PUBREL never arrives before the crash.
    h.publish(2, publish("a/q", QoS::ExactlyOnce, Some(9), "m6"));
    let snapshot = fold(&h.ops).into_restored();
    assert_eq!(
        DurableState::from(snapshot.clone()).into_restored(),
        snapshot
    );

    // Crash: no Closed events. A bigger window on the new broker lets a queued message follow.
    let mut h = restart(
        &h,
        BrokerConfig {
            max_inflight: 4,
            ..config
        },
    );
    h.ops.clear();
    let stats = h.broker.stats();
    assert_eq!(
        (stats.sessions, stats.subscriptions, stats.retained_messages),
        (2, 2, 1)
    );
    // In flight first, in order, with DUP=1 and their packet ids (PUBREL for the released
    // one), then the queue.
    assert_eq!(
        connect_persistent(&mut h, 11, "sub", 1000),
        [
            "session sub on exp=1000",
            "11! CONNACK sp",
            "11: PUBLISH m1 #1 dup",
            "11: PUBREL 2",
            "11: PUBLISH m3 #3 dup",
            "msg sub #3 m4 sent(4)",
            "11: PUBLISH m4 #4"
        ]
    );
    assert_eq!(
        acked(&mut h, 11, AckKind::PubAck, 1),
        [
            "msg- sub #0",
            "msg sub #4 ret sent(5)",
            "11: PUBLISH ret #5"
        ]
    );
    assert_eq!(
        acked(&mut h, 11, AckKind::PubComp, 2),
        ["msg- sub #1", "msg sub #5 m6 sent(6)", "11: PUBLISH m6 #6"]
    );
    // Exactly once: the publisher's re-sent PUBLISH is acknowledged, not routed again.
    assert_eq!(
        connect_persistent(&mut h, 12, "pub", 1000),
        ["session pub on exp=1000", "12! CONNACK sp"]
    );
    let mut again = publish("a/q", QoS::ExactlyOnce, Some(9), "m6");
    again.dup = true;
    assert_eq!(trace(&h.publish(12, again)), ["12: PUBREC 9"]);
    assert_eq!(
        acked(&mut h, 12, AckKind::PubRel, 9),
        ["qos2- pub 9", "12! PUBCOMP 9"]
    );
    // Subscriptions (shared ones included) route again; seq numbers carry on.
    assert_eq!(
        trace(&h.publish(12, publish("s", QoS::AtLeastOnce, Some(10), "sh"))),
        ["msg sub #6 sh queued", "12! PUBACK 10"]
    );
    assert_eq!(
        acked(&mut h, 11, AckKind::PubAck, 3),
        ["msg- sub #2", "msg sub #6 sh sent(7)", "11: PUBLISH sh #7"]
    );
    // The retained message is back.
    h.connect(13, "late", V5, true);
    let (_, out) = h.subscribe_with(13, "a/#", opts(QoS::AtMostOnce), None);
    assert_eq!(payloads(&out, 13), ["ret"]);
    assert!(publishes(&out, 13)[0].retain);
    // Sessions that reconnected are not persisted as offline by the first Tick.
    assert!(h.tick().is_empty());
}

#[test]
fn replay_continues_across_restarts() {
    let mut h = H::with(durable_config());
    connect_persistent(&mut h, 1, "c", 100);
    sub(&mut h, 1, "t", QoS::AtLeastOnce);
    h.closed(1);
    h.connect(2, "pub", V5, true);
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "a"));
    let mut state = fold(&h.ops);

    let mut h = restart(&h, durable_config());
    assert_eq!(
        connect_persistent(&mut h, 3, "c", 100),
        [
            "session c on exp=100",
            "3! CONNACK sp",
            "msg c #0 a sent(1)",
            "3: PUBLISH a #1"
        ]
    );
    assert_eq!(acked(&mut h, 3, AckKind::PubAck, 1), ["msg- c #0"]);
    assert_eq!(trace(&h.closed(3)), ["session c off exp=100"]);
    // The new broker's ops apply on top of what the first one left.
    for (at, op) in std::mem::take(&mut h.ops) {
        state.apply(at, op);
    }
    let mut h = restored(h.now, durable_config(), state.into_restored());
    assert_eq!(
        connect_persistent(&mut h, 4, "c", 100),
        ["session c on exp=100", "4! CONNACK sp"]
    );
    h.connect(5, "pub", V5, true);
    // Seq numbers restart after the highest one stored: none is, so 0 is free again.
    assert_eq!(
        trace(&h.publish(5, publish("t", QoS::AtLeastOnce, Some(2), "b"))),
        ["msg c #0 b sent(1)", "4: PUBLISH b #1", "5! PUBACK 2"]
    );
}

#[test]
fn restored_will_of_a_lost_connection() {
    let mut h = H::with(durable_config());
    let mut c = connect_packet(V5, "c", false);
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(will("w", "bye", QoS::AtMostOnce, false, Some(10)));
    h.connect_with(1, c);
    let mut c = connect_packet(V5, "d", false);
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(will("w", "now", QoS::AtMostOnce, false, None));
    h.connect_with(2, c);

    // The will waits for its delay, counted from the restart; restore itself emits nothing.
    let mut a = restart(&h, durable_config());
    a.connect(9, "watcher", V5, true);
    a.subscribe(9, "w", QoS::AtMostOnce);
    a.ops.clear();
    assert_eq!(
        trace(&a.tick()),
        [
            "session c off exp=100 will=w",
            "session d off exp=100 will=w",
            "9: PUBLISH now",
            "session d off exp=100"
        ]
    );
    a.advance_secs(9);
    assert!(a.tick().is_empty());
    a.advance_secs(1);
    assert_eq!(
        trace(&a.tick()),
        ["9: PUBLISH bye", "session c off exp=100"]
    );
    // The lost connection's session expires its interval after the restart.
    a.advance_secs(90);
    assert_eq!(trace(&a.tick()), ["session- c", "session- d"]);

    // Resuming before the delay cancels the will; a will without delay was due at once.
    let mut b = restart(&h, durable_config());
    b.connect(9, "watcher", V5, true);
    b.subscribe(9, "w", QoS::AtMostOnce);
    assert_eq!(
        connect_persistent(&mut b, 3, "c", 100),
        ["session c on exp=100", "3! CONNACK sp"]
    );
    assert_eq!(
        connect_persistent(&mut b, 4, "d", 100),
        ["9: PUBLISH now", "session d on exp=100", "4! CONNACK sp"]
    );
    b.advance_secs(10);
    assert!(b.tick().is_empty());
}

fn session(client_id: &str, expires_at: Option<Instant>) -> RestoredSession {
    RestoredSession {
        client_id: client_id.into(),
        expiry_interval: 100,
        expires_at,
        will: None,
        was_connected: false,
        subscriptions: Vec::new(),
        messages: Vec::new(),
        qos2_received: Vec::new(),
    }
}

#[test]
fn restored_sessions_already_expired_end_on_the_first_tick() {
    let mut h = H::with(durable_config());
    let mut old = session("old", Some(h.now));
    old.will = Some(will("w", "gone", QoS::AtMostOnce, false, Some(5)));
    h.broker.restore(
        h.now,
        RestoredState {
            retained: Vec::new(),
            sessions: vec![old.clone()],
        },
    );
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "w", QoS::AtMostOnce);
    assert_eq!(h.broker.stats().sessions, 2);
    assert_eq!(trace(&h.tick()), ["9: PUBLISH gone", "session- old"]);
    assert_eq!(h.broker.stats().sessions, 1);

    // Connecting before that Tick finds no session to resume.
    let mut h = H::with(durable_config());
    h.broker.restore(
        h.now,
        RestoredState {
            retained: Vec::new(),
            sessions: vec![old],
        },
    );
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "w", QoS::AtMostOnce);
    assert_eq!(
        connect_persistent(&mut h, 1, "old", 100),
        [
            "9: PUBLISH gone",
            "session- old",
            "session old on exp=100",
            "1! CONNACK"
        ]
    );
}

#[test]
fn restored_offline_will_counts_from_going_offline() {
    let mut h = H::with(durable_config());
    // Offline for 5 of its 100 seconds, with a will delayed 5 seconds: due now.
    let mut s = session("c", Some(h.now + Duration::from_secs(95)));
    s.will = Some(will("w", "bye", QoS::AtMostOnce, false, Some(5)));
    h.broker.restore(
        h.now,
        RestoredState {
            retained: Vec::new(),
            sessions: vec![s],
        },
    );
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "w", QoS::AtMostOnce);
    assert_eq!(
        trace(&h.tick()),
        ["9: PUBLISH bye", "session c off exp=100"]
    );
    h.advance_secs(95);
    assert_eq!(trace(&h.tick()), ["session- c"]);
}

#[test]
fn restored_retained_messages_keep_their_expiry() {
    let mut h = H::with(durable_config());
    let mut p = retained("t", QoS::AtLeastOnce, None, "x");
    p.properties.make_mut().message_expiry_interval = Some(5);
    let message = Message {
        publish: p,
        expires_at: Some(h.now + Duration::from_secs(5)),
    };
    h.broker.restore(
        h.now,
        RestoredState {
            retained: vec![("t".into(), message)],
            sessions: Vec::new(),
        },
    );
    h.connect(1, "s", V5, true);
    h.advance_secs(2);
    let (_, out) = h.subscribe_with(1, "#", opts(QoS::AtLeastOnce), None);
    let p = &publishes(&out, 1)[0];
    assert_eq!(p.properties.message_expiry_interval, Some(3));
    h.advance_secs(3);
    assert_eq!(trace(&h.tick()), ["unretain t"]);
    assert_eq!(h.broker.stats().retained_messages, 0);
}

#[test]
fn reducer_tracks_the_offline_deadline() {
    let t0 = Instant::now();
    let put = |expiry_interval, connected| DurableOp::SessionPut {
        client_id: "c".into(),
        expiry_interval,
        will: None,
        connected,
    };
    let deadline = |s: &DurableState| s.clone().into_restored().sessions[0].expires_at;
    let mut s = DurableState::new();
    s.apply(t0, put(100, true));
    assert_eq!(deadline(&s), None);
    s.apply(t0 + Duration::from_secs(1), put(100, false));
    assert_eq!(deadline(&s), Some(t0 + Duration::from_secs(101)));
    // A later change to the offline session (its will published) keeps the deadline...
    s.apply(t0 + Duration::from_secs(5), put(100, false));
    assert_eq!(deadline(&s), Some(t0 + Duration::from_secs(101)));
    // ...a new interval does not.
    s.apply(t0 + Duration::from_secs(6), put(10, false));
    assert_eq!(deadline(&s), Some(t0 + Duration::from_secs(16)));
    s.apply(t0 + Duration::from_secs(7), put(u32::MAX, false));
    assert_eq!(deadline(&s), None);
}

#[test]
fn reducer_drops_everything_of_a_deleted_session() {
    let t0 = Instant::now();
    let c = || -> std::sync::Arc<str> { "c".into() };
    let message = Message {
        publish: publish("t", QoS::AtLeastOnce, None, "m"),
        expires_at: None,
    };
    let mut s = DurableState::new();
    // Ops about a session that does not exist are ignored.
    s.apply(
        t0,
        DurableOp::Qos2ReceivedPut {
            client_id: c(),
            packet_id: 1,
        },
    );
    assert_eq!(s.session_count(), 0);
    s.apply(
        t0,
        DurableOp::SessionPut {
            client_id: c(),
            expiry_interval: 100,
            will: None,
            connected: true,
        },
    );
    s.apply(
        t0,
        DurableOp::MessagePut {
            client_id: c(),
            seq: 4,
            message: message.clone(),
            state: MessageState::Queued,
        },
    );
    s.apply(
        t0,
        DurableOp::MessagePut {
            client_id: c(),
            seq: 2,
            message,
            state: MessageState::Sent { packet_id: 9 },
        },
    );
    s.apply(
        t0,
        DurableOp::Qos2ReceivedPut {
            client_id: c(),
            packet_id: 3,
        },
    );
    let restored = s.clone().into_restored();
    let seqs: Vec<u64> = restored.sessions[0].messages.iter().map(|m| m.0).collect();
    assert_eq!(seqs, [2, 4], "seq order");
    assert_eq!(restored.sessions[0].qos2_received, [3]);
    assert!(restored.sessions[0].was_connected);
    s.apply(t0, DurableOp::SessionDelete { client_id: c() });
    assert_eq!(s.session_count(), 0);
    s.apply(
        t0,
        DurableOp::SessionPut {
            client_id: c(),
            expiry_interval: 100,
            will: None,
            connected: true,
        },
    );
    let restored = s.into_restored();
    assert!(restored.sessions[0].messages.is_empty());
    assert!(restored.sessions[0].qos2_received.is_empty());
}

//! Retained messages for a new subscription are handed out as the client's window allows
//! (MQTT-3.3.1-9 sends them all; MQTT-4.9 flow control bounds how many are in flight), and the
//! retained store's limits refuse new retained messages with 0x97.

use super::harness::*;
use crate::{Action, Event};
use midge_codec::{AckKind, Packet, QoS, ReasonCode};
use std::collections::BTreeSet;

fn drains(actions: &[Action], conn: u64) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::NotifyDrained { conn: c } if *c == conn))
        .count()
}

/// A broker holding `n` retained QoS `qos` messages under `r/<i>`, and a v5 subscriber on
/// conn 2 whose Receive Maximum is `receive_max`.
fn setup(n: usize, qos: QoS, receive_max: u16) -> H {
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    for i in 0..n {
        let id = (qos != QoS::AtMostOnce).then_some(1);
        h.publish(1, retained(&format!("r/{i:05}"), qos, id, &i.to_string()));
    }
    let mut c = connect_packet(V5, "sub", true);
    c.properties.receive_maximum = Some(receive_max);
    h.connect_ok(2, c);
    h
}

#[test]
fn qos1_replay_fills_the_window_and_continues_on_each_ack() {
    let mut h = setup(50, QoS::AtLeastOnce, 10);
    let (_, actions) = h.subscribe_with(2, "r/#", opts(QoS::AtLeastOnce), None);
    let first = publishes(&actions, 2);
    // MQTT-4.9.0-2: no more than Receive Maximum unacknowledged QoS 1 PUBLISH packets.
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|p| p.retain && p.qos == QoS::AtLeastOnce));
    assert_eq!(h.broker.sessions.len(), 2);
    let mut got: Vec<String> = payloads(&actions, 2);
    let mut inflight: Vec<u16> = first.iter().filter_map(|p| p.packet_id).collect();
    while let Some(id) = inflight.pop() {
        let actions = h.ack(2, AckKind::PubAck, id);
        let more = publishes(&actions, 2);
        assert!(more.len() <= 1, "one slot freed, at most one more sent");
        inflight.extend(more.iter().filter_map(|p| p.packet_id));
        got.extend(payloads(&actions, 2));
    }
    let want: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "all 50, once each, in topic order");
    // Nothing was queued to get there.
    let idx = h.broker.conns[&2].session;
    assert!(h.broker.sessions.get(idx).unwrap().queue.is_empty());
}

#[test]
fn qos0_replay_goes_out_in_batches_as_the_connection_drains() {
    let n = crate::replay::QOS0_BATCH * 2 + 7;
    let mut h = setup(n, QoS::AtMostOnce, 10);
    let (_, actions) = h.subscribe_with(2, "r/+", opts(QoS::AtMostOnce), None);
    let mut got = payloads(&actions, 2);
    assert_eq!(got.len(), crate::replay::QOS0_BATCH);
    assert_eq!(
        drains(&actions, 2),
        1,
        "asks to hear when the batch is written"
    );
    // Nothing more until the drain is reported, whatever else happens.
    let actions = h.tick();
    assert!(publishes(&actions, 2).is_empty());
    loop {
        let actions = h.event(Event::Drained { conn: 2 });
        let batch = payloads(&actions, 2);
        got.extend(batch);
        if drains(&actions, 2) == 0 {
            break;
        }
    }
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    // A stray drain report afterwards changes nothing.
    assert!(h.event(Event::Drained { conn: 2 }).is_empty());
}

#[test]
fn changes_during_a_replay_are_seen_and_nothing_is_sent_twice() {
    let mut h = setup(30, QoS::AtLeastOnce, 5);
    let (_, actions) = h.subscribe_with(2, "r/#", opts(QoS::AtLeastOnce), None);
    let mut seen: Vec<(String, String)> = publishes(&actions, 2)
        .iter()
        .map(|p| {
            (
                p.topic.to_string(),
                String::from_utf8_lossy(&p.payload).into(),
            )
        })
        .collect();
    let mut inflight: Vec<u16> = publishes(&actions, 2)
        .iter()
        .filter_map(|p| p.packet_id)
        .collect();
    // Meanwhile: a topic not yet sent is replaced, one is deleted, one sent is replaced.
    h.publish(1, retained("r/00020", QoS::AtLeastOnce, Some(2), "new20"));
    h.publish(1, retained("r/00021", QoS::AtLeastOnce, Some(3), ""));
    h.publish(1, retained("r/00001", QoS::AtLeastOnce, Some(4), "new1"));
    // The subscriber gets live copies of those as ordinary messages too; drain everything.
    let mut live = 0;
    while let Some(id) = inflight.pop() {
        let actions = h.ack(2, AckKind::PubAck, id);
        for p in publishes(&actions, 2) {
            inflight.extend(p.packet_id);
            if p.retain {
                seen.push((
                    p.topic.to_string(),
                    String::from_utf8_lossy(&p.payload).into(),
                ));
            } else {
                live += 1;
            }
        }
    }
    // The clearing publish (empty payload) is routed like any other (MQTT-3.3.1-7 only says it
    // is not stored).
    assert_eq!(live, 3, "live copies of the three publishes");
    let topics: BTreeSet<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics.len(), seen.len(), "no retained topic twice");
    assert_eq!(seen.len(), 29, "30 minus the deleted one");
    assert!(seen.contains(&("r/00020".into(), "new20".into())));
    assert!(!topics.contains("r/00021"));
    assert!(
        seen.contains(&("r/00001".into(), "1".into())),
        "sent before it changed"
    );
}

#[test]
fn a_session_resumed_mid_replay_continues_it() {
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    for i in 0..20 {
        h.publish(
            1,
            retained(&format!("r/{i:02}"), QoS::AtLeastOnce, Some(1), "x"),
        );
    }
    let mut c = connect_packet(V5, "sub", false);
    c.properties.session_expiry_interval = Some(600);
    c.properties.receive_maximum = Some(4);
    h.connect_ok(2, c.clone());
    let (_, actions) = h.subscribe_with(2, "r/+", opts(QoS::AtLeastOnce), None);
    assert_eq!(publishes(&actions, 2).len(), 4);
    h.closed(2);
    // Reconnect: the 4 in flight are re-sent (DUP), and the replay goes on from there.
    let (_, actions) = h.connect_ok(3, c);
    let again = publishes(&actions, 3);
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|p| p.dup));
    let mut total = 4;
    let mut inflight: Vec<u16> = again.iter().filter_map(|p| p.packet_id).collect();
    while let Some(id) = inflight.pop() {
        let actions = h.ack(3, AckKind::PubAck, id);
        let more = publishes(&actions, 3);
        total += more.len();
        inflight.extend(more.iter().filter_map(|p| p.packet_id));
    }
    assert_eq!(total, 20);
}

#[test]
fn limits_refuse_new_retained_topics_with_quota_exceeded() {
    let mut config = config();
    config.max_retained_messages = 2;
    config.max_retained_payload = 8;
    let mut h = H::with(config);
    h.connect(1, "pub", V5, true);
    h.connect(3, "v3", V3_1_1, true);
    h.subscribe(3, "#", QoS::AtMostOnce);
    h.publish(1, retained("a", QoS::AtMostOnce, None, "1"));
    h.publish(1, retained("b", QoS::AtMostOnce, None, "2"));
    // A third topic: v5 QoS 1 gets PUBACK 0x97 and nobody receives it.
    let actions = h.publish(1, retained("c", QoS::AtLeastOnce, Some(7), "3"));
    assert_eq!(
        acks(&actions, 1, AckKind::PubAck)[0].reason,
        ReasonCode::QuotaExceeded
    );
    assert!(publishes(&actions, 3).is_empty());
    // QoS 2 likewise, with PUBREC 0x97.
    let actions = h.publish(1, retained("c", QoS::ExactlyOnce, Some(8), "3"));
    assert_eq!(
        acks(&actions, 1, AckKind::PubRec)[0].reason,
        ReasonCode::QuotaExceeded
    );
    // Replacing and deleting stored topics is fine at the limit; so is a plain publish.
    let actions = h.publish(1, retained("a", QoS::AtLeastOnce, Some(9), "1b"));
    assert_eq!(
        acks(&actions, 1, AckKind::PubAck)[0].reason,
        ReasonCode::Success
    );
    h.publish(1, publish("c", QoS::AtMostOnce, None, "live"));
    // Too big a payload, even for a stored topic.
    let actions = h.publish(1, retained("a", QoS::AtLeastOnce, Some(10), "123456789"));
    assert_eq!(
        acks(&actions, 1, AckKind::PubAck)[0].reason,
        ReasonCode::QuotaExceeded
    );
    // v3.1.1 cannot be told: acknowledged, dropped (as Mosquitto does with refused publishes).
    let actions = h.publish(3, retained("d", QoS::AtLeastOnce, Some(1), "x"));
    assert_eq!(
        acks(&actions, 3, AckKind::PubAck)[0].reason,
        ReasonCode::Success
    );
    assert!(publishes(&actions, 3).is_empty());
    let stats = h.broker.stats();
    assert_eq!(stats.retained_messages, 2);
    assert_eq!(stats.retained_bytes, 3, "\"1b\" + \"2\"");
    assert_eq!(stats.retained_refused_count, 3);
    assert_eq!(stats.retained_refused_payload, 1);
    let actions = h.publish(1, retained("b", QoS::AtMostOnce, None, ""));
    assert!(!actions.iter().any(|a| matches!(
        a,
        Action::Send {
            packet: Packet::Disconnect(_),
            ..
        }
    )));
    assert_eq!(h.broker.stats().retained_bytes, 2);
}

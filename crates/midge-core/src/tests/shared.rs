//! Shared subscriptions (4.8.2).

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{AckKind, QoS, ReasonCode};

#[test]
fn round_robin_across_members() {
    // Each message matching a shared subscription goes to one member of the group.
    let mut h = H::new();
    h.connect(1, "m1", V5, true);
    h.connect(2, "m2", V3_1_1, true);
    h.connect(3, "other-group", V5, true);
    h.connect(4, "pub", V5, true);
    h.subscribe(1, "$share/g/t/#", QoS::AtLeastOnce);
    h.subscribe(2, "$share/g/t/#", QoS::AtMostOnce);
    h.subscribe(3, "$share/h/t/#", QoS::AtMostOnce);
    let mut to1 = 0;
    let mut to2 = 0;
    for i in 0..6 {
        let actions = h.publish(4, publish("t/x", QoS::AtLeastOnce, Some(i + 1), "m"));
        let n1 = publishes(&actions, 1).len();
        let n2 = publishes(&actions, 2).len();
        assert_eq!(n1 + n2, 1, "exactly one member of g");
        assert_eq!(publishes(&actions, 3).len(), 1, "the only member of h");
        to1 += n1;
        to2 += n2;
        if n2 == 1 {
            assert_eq!(publishes(&actions, 2)[0].qos, QoS::AtMostOnce);
        }
    }
    assert_eq!((to1, to2), (3, 3));
}

#[test]
fn prefers_connected_members_and_queues_for_offline_ones() {
    let mut h = H::new();
    h.connect_v5(1, "m1", false, 100);
    h.connect_v5(2, "m2", false, 100);
    h.connect(3, "pub", V5, true);
    h.subscribe(1, "$share/g/t", QoS::AtLeastOnce);
    h.subscribe(2, "$share/g/t", QoS::AtLeastOnce);
    h.closed(2);
    for i in 0..4 {
        let actions = h.publish(3, publish("t", QoS::AtLeastOnce, Some(i + 1), "m"));
        assert_eq!(publishes(&actions, 1).len(), 1);
    }
    // With nobody connected, a member's session still gets it (queued).
    h.closed(1);
    h.publish(3, publish("t", QoS::AtLeastOnce, Some(9), "queued"));
    let mut got = Vec::new();
    for (conn, id) in [(4, "m1"), (5, "m2")] {
        let (_, actions) = h.connect_ok(conn, connect_packet(V5, id, false));
        // m1 also gets its four unacknowledged messages again, with DUP set.
        got.extend(
            publishes(&actions, conn)
                .iter()
                .filter(|p| !p.dup)
                .map(|p| String::from_utf8_lossy(&p.payload).into_owned()),
        );
    }
    assert_eq!(got, vec!["queued"]);
}

#[test]
fn no_retained_messages_for_shared_subscriptions() {
    // 4.8.2: retained messages are not sent when a shared subscription is made.
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    h.publish(1, retained("t", QoS::AtMostOnce, None, "r"));
    h.connect(2, "m", V5, true);
    let (reasons, actions) = h.subscribe_with(2, "$share/g/t", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::Success]);
    assert!(actions.is_empty());
}

#[test]
fn unsubscribe_and_leave() {
    let mut h = H::new();
    h.connect(1, "m1", V5, true);
    h.connect(2, "m2", V5, true);
    h.connect(3, "pub", V5, true);
    h.subscribe(1, "$share/g/t", QoS::AtMostOnce);
    h.subscribe(2, "$share/g/t", QoS::AtMostOnce);
    assert_eq!(h.unsubscribe(1, &["$share/g/t"]), vec![ReasonCode::Success]);
    for _ in 0..3 {
        let actions = h.publish(3, publish("t", QoS::AtMostOnce, None, "m"));
        assert_eq!(payloads(&actions, 2), vec!["m"]);
    }
    h.closed(2);
    assert!(h
        .publish(3, publish("t", QoS::AtMostOnce, None, "m"))
        .is_empty());
    assert_eq!(h.broker.stats().subscriptions, 0);
}

#[test]
fn shared_not_available_and_no_local() {
    // 0x9E when shared subscriptions are off; No Local on a shared subscription is a
    // Protocol Error (MQTT-3.8.3-4).
    let mut h = H::with(BrokerConfig {
        shared_subscription_available: false,
        ..config()
    });
    h.connect(1, "a", V5, true);
    let (reasons, _) = h.subscribe_with(1, "$share/g/t", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::SharedSubscriptionsNotSupported]);
    let mut h = H::new();
    h.connect(1, "a", V5, true);
    let mut o = opts(QoS::AtMostOnce);
    o.no_local = true;
    let actions = h.packet(
        1,
        midge_codec::Packet::Subscribe(midge_codec::Subscribe {
            packet_id: 1,
            filters: vec![midge_codec::TopicSubscription {
                filter: "$share/g/t".into(),
                options: o,
            }],
            properties: Default::default(),
        }),
    );
    assert_disconnected(&actions, 1, ReasonCode::ProtocolError);
}

// MQTT 4.8.2: a member whose session ends before it acknowledged a QoS 1 message of the group
// has that message sent to another member.
#[test]
fn unacknowledged_messages_of_a_member_that_leaves_go_to_another_member() {
    let mut h = H::new();
    h.connect(1, "m1", V5, true);
    h.connect(2, "m2", V5, true);
    h.connect(3, "pub", V5, true);
    h.subscribe(1, "$share/g/t", QoS::AtLeastOnce);
    h.subscribe(2, "$share/g/t", QoS::AtLeastOnce);
    // Round-robin: "a" to one member, "b" to the other.
    let out = h.publish(3, publish("t", QoS::AtLeastOnce, Some(1), "a"));
    let first = if payloads(&out, 1).is_empty() { 2 } else { 1 };
    let other = 3 - first;
    h.publish(3, publish("t", QoS::AtLeastOnce, Some(2), "b"));
    // The member that got "a" goes away without acknowledging it: its clean session ends.
    let out = h.closed(first);
    let resent = publishes(&out, other);
    assert_eq!(resent.len(), 1, "{out:?}");
    assert_eq!(&resent[0].payload[..], b"a");
    assert!(!resent[0].dup, "a new delivery to this member");
    // Acknowledged messages are not sent again.
    let id = resent[0].packet_id.expect("QoS 1");
    h.ack(other, midge_codec::AckKind::PubAck, id);
    h.connect(4, "m3", V5, true);
    h.subscribe(4, "$share/g/t", QoS::AtLeastOnce);
    let out = h.closed(other);
    let again: Vec<_> = payloads(&out, 4);
    assert_eq!(again, ["b"], "only the one still unacknowledged");
}

#[test]
fn a_completed_group_message_is_no_longer_owed_to_the_group() {
    // What a member is remembered to owe its group (for MQTT 4.8.2 redelivery) ends with the
    // message's flow, so a long-lived member does not accumulate it.
    let mut h = H::new();
    h.connect(1, "m1", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "$share/g/t", QoS::AtLeastOnce);
    for i in 0..50 {
        let actions = h.publish(2, publish("t", QoS::AtLeastOnce, Some(i + 1), "m"));
        let sent = publishes(&actions, 1);
        assert_eq!(sent.len(), 1);
        let id = sent[0].packet_id.expect("QoS 1");
        h.ack(1, AckKind::PubAck, id);
    }
    let idx = h.broker.conns[&1].session;
    let session = h.broker.sessions.get(idx).expect("session");
    assert_eq!(session.inflight.len(), 0);
    assert!(
        session.shared_seqs.is_empty(),
        "{:?}",
        session.shared_seqs.len()
    );
}

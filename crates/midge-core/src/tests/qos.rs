//! QoS 1 and 2 flows in both directions (MQTT 4.3).

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{Ack, AckKind, Packet, QoS, ReasonCode};

#[test]
fn qos1_both_directions() {
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "a/b", QoS::AtLeastOnce);
    let actions = h.publish(2, publish("a/b", QoS::AtLeastOnce, Some(10), "m"));
    // Delivered to the subscriber with a non-zero packet id of our own (MQTT-2.2.1-4).
    let out = publishes(&actions, 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].qos, QoS::AtLeastOnce);
    assert!(!out[0].dup);
    let id = out[0].packet_id.expect("packet id");
    assert_ne!(id, 0);
    // The publisher gets PUBACK with its packet id (MQTT-2.2.1-5).
    let pubacks = acks(&actions, 2, AckKind::PubAck);
    assert_eq!(pubacks.len(), 1);
    assert_eq!(
        (pubacks[0].packet_id, pubacks[0].reason),
        (10, ReasonCode::Success)
    );
    // The subscriber's PUBACK completes the flow: nothing more to send.
    assert!(h.ack(1, AckKind::PubAck, id).is_empty());
    assert_eq!(h.broker.stats().messages_received, 1);
    assert_eq!(h.broker.stats().messages_sent, 1);
}

#[test]
fn qos1_without_subscribers() {
    // v5: PUBACK 0x10 No matching subscribers; 3.1.1 has no reason codes.
    let mut h = H::new();
    h.connect(1, "a", V5, true);
    h.connect(2, "b", V3_1_1, true);
    let a = acks(
        &h.publish(1, publish("x", QoS::AtLeastOnce, Some(1), "m")),
        1,
        AckKind::PubAck,
    );
    assert_eq!(a[0].reason, ReasonCode::NoMatchingSubscribers);
    let a = acks(
        &h.publish(2, publish("x", QoS::AtLeastOnce, Some(1), "m")),
        2,
        AckKind::PubAck,
    );
    assert_eq!(a[0].reason, ReasonCode::Success);
    let a = acks(
        &h.publish(1, publish("x", QoS::ExactlyOnce, Some(2), "m")),
        1,
        AckKind::PubRec,
    );
    assert_eq!(a[0].reason, ReasonCode::NoMatchingSubscribers);
}

#[test]
fn qos2_inbound_exactly_once() {
    for version in [V5, V3_1_1] {
        let mut h = H::new();
        h.connect(1, "sub", V5, true);
        h.connect(2, "pub", version, true);
        h.subscribe(1, "t", QoS::AtMostOnce);
        let actions = h.publish(2, publish("t", QoS::ExactlyOnce, Some(5), "once"));
        assert_eq!(payloads(&actions, 1), vec!["once"]);
        assert_eq!(acks(&actions, 2, AckKind::PubRec)[0].packet_id, 5);
        // A re-send before PUBREL is acknowledged again but not routed again
        // (MQTT-4.3.3-10; 3.1.1 MQTT-4.3.3-2).
        let mut dup = publish("t", QoS::ExactlyOnce, Some(5), "once");
        dup.dup = true;
        let actions = h.publish(2, dup);
        assert!(payloads(&actions, 1).is_empty());
        assert_eq!(acks(&actions, 2, AckKind::PubRec).len(), 1);
        // PUBREL -> PUBCOMP (MQTT-4.3.3-11).
        let actions = h.ack(2, AckKind::PubRel, 5);
        let comp = acks(&actions, 2, AckKind::PubComp);
        assert_eq!(
            (comp[0].packet_id, comp[0].reason),
            (5, ReasonCode::Success)
        );
        // After PUBCOMP the id starts a new message (MQTT-4.3.3-12).
        let actions = h.publish(2, publish("t", QoS::ExactlyOnce, Some(5), "again"));
        assert_eq!(payloads(&actions, 1), vec!["again"]);
    }
}

#[test]
fn pubrel_for_unknown_id() {
    // v5: PUBCOMP 0x92 Packet Identifier not found; 3.1.1: a plain PUBCOMP.
    let mut h = H::new();
    h.connect(1, "a", V5, true);
    h.connect(2, "b", V3_1_1, true);
    let c = acks(&h.ack(1, AckKind::PubRel, 9), 1, AckKind::PubComp);
    assert_eq!(c[0].reason, ReasonCode::PacketIdentifierNotFound);
    let c = acks(&h.ack(2, AckKind::PubRel, 9), 2, AckKind::PubComp);
    assert_eq!(c[0].reason, ReasonCode::Success);
}

#[test]
fn qos2_outbound_flow() {
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    let out = publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(1), "m")),
        1,
    );
    assert_eq!(out[0].qos, QoS::ExactlyOnce);
    let id = out[0].packet_id.unwrap();
    // PUBREC -> PUBREL (MQTT-4.3.3-4), repeated PUBREC -> PUBREL again.
    for _ in 0..2 {
        let rel = acks(&h.ack(1, AckKind::PubRec, id), 1, AckKind::PubRel);
        assert_eq!((rel[0].packet_id, rel[0].reason), (id, ReasonCode::Success));
    }
    assert!(h.ack(1, AckKind::PubComp, id).is_empty());
    // An unknown PUBREC gets PUBREL 0x92 in v5.
    let rel = acks(&h.ack(1, AckKind::PubRec, id), 1, AckKind::PubRel);
    assert_eq!(rel[0].reason, ReasonCode::PacketIdentifierNotFound);
}

#[test]
fn error_pubrec_ends_the_flow_and_frees_the_window() {
    // A PUBREC >= 0x80 completes the exchange (MQTT-3.3.4-9 counts it as acknowledged).
    let mut h = H::new();
    let mut c = connect_packet(V5, "sub", true);
    c.properties.receive_maximum = Some(1);
    h.connect_ok(1, c);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    let first = publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(1), "1")),
        1,
    );
    assert!(publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(2), "2")),
        1
    )
    .is_empty());
    let mut rec = Ack::new(AckKind::PubRec, first[0].packet_id.unwrap());
    rec.reason = ReasonCode::UnspecifiedError;
    let actions = h.packet(1, Packet::Ack(rec));
    assert!(acks(&actions, 1, AckKind::PubRel).is_empty());
    assert_eq!(payloads(&actions, 1), vec!["2"]);
}

#[test]
fn delivered_qos_is_the_minimum() {
    // The delivered QoS is min(published, granted) (3.8.4 / 4.3).
    let mut h = H::new();
    h.connect(1, "sub1", V5, true);
    h.connect(2, "sub2", V5, true);
    h.connect(3, "pub", V5, true);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    let actions = h.publish(3, publish("t", QoS::ExactlyOnce, Some(1), "m"));
    assert_eq!(publishes(&actions, 1)[0].qos, QoS::AtLeastOnce);
    assert_eq!(publishes(&actions, 2)[0].qos, QoS::ExactlyOnce);
    let actions = h.publish(3, publish("t", QoS::AtMostOnce, None, "m"));
    assert_eq!(publishes(&actions, 1)[0].qos, QoS::AtMostOnce);
    assert_eq!(publishes(&actions, 2)[0].packet_id, None);
}

#[test]
fn receive_maximum_exceeded() {
    // 3.3.4: more unacknowledged QoS 2 publishes than our Receive Maximum -> DISCONNECT 0x93.
    let mut h = H::with(BrokerConfig {
        receive_maximum: 2,
        ..config()
    });
    h.connect(1, "a", V5, true);
    h.publish(1, publish("t", QoS::ExactlyOnce, Some(1), "m"));
    h.publish(1, publish("t", QoS::ExactlyOnce, Some(2), "m"));
    let actions = h.publish(1, publish("t", QoS::ExactlyOnce, Some(3), "m"));
    assert_disconnected(&actions, 1, ReasonCode::ReceiveMaximumExceeded);
}

#[test]
fn qos_and_retain_beyond_capabilities() {
    // 3.2.2.3.4: QoS above Maximum QoS -> DISCONNECT 0x9B; 3.2.2.3.5: RETAIN without
    // retain support -> DISCONNECT 0x9A.
    let mut h = H::with(BrokerConfig {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        ..config()
    });
    h.connect(1, "a", V5, true);
    let actions = h.publish(1, publish("t", QoS::ExactlyOnce, Some(1), "m"));
    assert_disconnected(&actions, 1, ReasonCode::QoSNotSupported);
    h.connect(2, "b", V5, true);
    let actions = h.publish(2, retained("t", QoS::AtMostOnce, None, "m"));
    assert_disconnected(&actions, 2, ReasonCode::RetainNotSupported);
    // 3.1.1 has no DISCONNECT: just closed.
    h.connect(3, "c", V3_1_1, true);
    let actions = h.publish(3, publish("t", QoS::ExactlyOnce, Some(1), "m"));
    assert_eq!(actions, vec![crate::Action::Close { conn: 3 }]);
}

#[test]
fn packet_ids_are_unique_while_in_flight() {
    // MQTT-2.2.1-4: a new PUBLISH gets a non-zero id that is currently unused.
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    let mut ids = Vec::new();
    for i in 0..5 {
        let out = publishes(
            &h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), &i.to_string())),
            1,
        );
        ids.push(out[0].packet_id.unwrap());
    }
    h.ack(1, AckKind::PubAck, ids[1]);
    let out = publishes(
        &h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), "x")),
        1,
    );
    let id = out[0].packet_id.unwrap();
    assert!(!ids.contains(&id) || id == ids[1]);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    assert!(!ids.contains(&0));
}

//! Flow control and size limits: Receive Maximum, Maximum Packet Size, Topic Aliases.

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{AckKind, QoS, ReasonCode};

#[test]
fn inflight_window_respects_client_receive_maximum() {
    // MQTT-3.3.4-9: never more than the client's Receive Maximum QoS 1/2 publishes
    // unacknowledged; the rest wait and follow in order as acknowledgements arrive.
    let mut h = H::new();
    let mut c = connect_packet(V5, "sub", true);
    c.properties.receive_maximum = Some(2);
    h.connect_ok(1, c);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", V5, true);
    let mut ids = Vec::new();
    for (i, qos) in [
        QoS::AtLeastOnce,
        QoS::ExactlyOnce,
        QoS::AtLeastOnce,
        QoS::AtLeastOnce,
    ]
    .into_iter()
    .enumerate()
    {
        let out = publishes(
            &h.publish(2, publish("t", qos, Some(i as u16 + 1), &i.to_string())),
            1,
        );
        ids.extend(out.iter().map(|p| p.packet_id.unwrap()));
    }
    assert_eq!(ids.len(), 2, "window of 2");
    // QoS 0 is not subject to the window.
    assert_eq!(
        payloads(&h.publish(2, publish("t", QoS::AtMostOnce, None, "q0")), 1),
        vec!["q0"]
    );
    let actions = h.ack(1, AckKind::PubAck, ids[0]);
    assert_eq!(payloads(&actions, 1), vec!["2"]);
    // The QoS 2 message went out at the granted QoS 1, so PUBACK completes it too.
    let actions = h.ack(1, AckKind::PubAck, ids[1]);
    assert_eq!(payloads(&actions, 1), vec!["3"]);
}

#[test]
fn inflight_window_capped_by_config() {
    let mut h = H::with(BrokerConfig {
        max_inflight: 1,
        ..config()
    });
    h.connect(1, "sub", V3_1_1, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.connect(2, "pub", V3_1_1, true);
    let first = publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(1), "a")),
        1,
    );
    assert_eq!(first.len(), 1);
    assert!(publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(2), "b")),
        1
    )
    .is_empty());
    let id = first[0].packet_id.unwrap();
    // PUBREC keeps the slot until PUBCOMP.
    assert!(publishes(&h.ack(1, AckKind::PubRec, id), 1).is_empty());
    assert_eq!(payloads(&h.ack(1, AckKind::PubComp, id), 1), vec!["b"]);
}

#[test]
fn maximum_packet_size_of_the_client() {
    // MQTT-3.1.2-24: never send a packet above the client's Maximum Packet Size;
    // MQTT-3.1.2-25: discard it and behave as if it had been sent.
    let mut h = H::new();
    let mut c = connect_packet(V5, "sub", true);
    c.properties.maximum_packet_size = Some(64);
    c.properties.receive_maximum = Some(1);
    h.connect_ok(1, c);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", V5, true);
    let big = "x".repeat(100);
    let actions = h.publish(2, publish("t", QoS::AtLeastOnce, Some(1), &big));
    assert!(publishes(&actions, 1).is_empty());
    assert_eq!(h.broker.stats().messages_dropped, 1);
    // The dropped message took no inflight slot: the next one goes straight out.
    assert_eq!(
        payloads(
            &h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "small")),
            1
        ),
        vec!["small"]
    );
}

#[test]
fn inbound_topic_alias() {
    let mut h = H::with(BrokerConfig {
        topic_alias_maximum: 5,
        ..config()
    });
    h.connect(1, "sub", V5, true);
    h.subscribe(1, "a/b", QoS::AtMostOnce);
    h.connect(2, "pub", V5, true);
    // Topic + alias sets the mapping; empty topic + alias uses it.
    let mut p = publish("a/b", QoS::AtMostOnce, None, "1");
    p.properties.make_mut().topic_alias = Some(5);
    assert_eq!(payloads(&h.publish(2, p), 1), vec!["1"]);
    let mut p = publish("", QoS::AtMostOnce, None, "2");
    p.properties.make_mut().topic_alias = Some(5);
    let out = publishes(&h.publish(2, p), 1);
    assert_eq!(&*out[0].topic, "a/b");
    // MQTT-3.3.2-8, -9 (3.3.2.3.4): alias 0 or above our maximum -> DISCONNECT 0x94.
    for (conn, alias) in [(3, 0), (4, 6)] {
        h.connect(conn, &format!("c{conn}"), V5, true);
        let mut p = publish("a/b", QoS::AtMostOnce, None, "x");
        p.properties.make_mut().topic_alias = Some(alias);
        assert_disconnected(&h.publish(conn, p), conn, ReasonCode::TopicAliasInvalid);
    }
    // An alias never set on this connection -> Protocol Error; aliases are per connection
    // (MQTT-3.3.2-7).
    h.connect(5, "c5", V5, true);
    let mut p = publish("", QoS::AtMostOnce, None, "x");
    p.properties.make_mut().topic_alias = Some(5);
    assert_disconnected(&h.publish(5, p), 5, ReasonCode::ProtocolError);
}

#[test]
fn outbound_topic_alias() {
    // MQTT-3.1.2-26: aliases only up to the client's Topic Alias Maximum; MQTT-3.1.2-27: none
    // if it sent none. (Outgoing aliases are opt-in: `outgoing_topic_aliases`.)
    let mut h = H::with(BrokerConfig {
        outgoing_topic_aliases: true,
        ..config()
    });
    let mut c = connect_packet(V5, "sub", true);
    c.properties.topic_alias_maximum = Some(1);
    h.connect_ok(1, c);
    h.connect(2, "plain", V5, true);
    h.connect(3, "pub", V5, true);
    h.subscribe(1, "#", QoS::AtMostOnce);
    h.subscribe(2, "#", QoS::AtMostOnce);
    let actions = h.publish(3, publish("x/y", QoS::AtMostOnce, None, "1"));
    let p = &publishes(&actions, 1)[0];
    assert_eq!((&*p.topic, p.properties.topic_alias), ("x/y", Some(1)));
    let p = &publishes(&actions, 2)[0];
    assert_eq!((&*p.topic, p.properties.topic_alias), ("x/y", None));
    let p = &publishes(&h.publish(3, publish("x/y", QoS::AtMostOnce, None, "2")), 1)[0];
    assert_eq!((&*p.topic, p.properties.topic_alias), ("", Some(1)));
    let p = &publishes(
        &h.publish(3, publish("other", QoS::AtMostOnce, None, "3")),
        1,
    )[0];
    assert_eq!((&*p.topic, p.properties.topic_alias), ("other", None));
    // A new connection starts without aliases.
    h.closed(1);
    let mut c = connect_packet(V5, "sub", true);
    c.properties.topic_alias_maximum = Some(1);
    h.connect_ok(4, c);
    h.subscribe(4, "#", QoS::AtMostOnce);
    let p = &publishes(&h.publish(3, publish("x/y", QoS::AtMostOnce, None, "4")), 4)[0];
    assert_eq!((&*p.topic, p.properties.topic_alias), ("x/y", Some(1)));
}

#[test]
fn subscription_identifier_from_a_client_is_a_protocol_error() {
    // MQTT-3.3.4-6: a PUBLISH from a client must not carry a Subscription Identifier.
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    let mut p = publish("a", QoS::AtMostOnce, None, "x");
    p.properties.make_mut().subscription_identifiers = vec![7];
    assert_disconnected(&h.publish(1, p), 1, ReasonCode::ProtocolError);
}

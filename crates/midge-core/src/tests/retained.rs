//! Retained messages: store, replace, clear, Retain Handling, expiry.

use super::harness::*;
use midge_codec::{QoS, RetainHandling};
use std::time::Duration;

#[test]
fn set_replace_clear() {
    // MQTT-3.3.1-5: RETAIN 1 replaces the topic's retained message; MQTT-3.3.1-6, -7: an
    // empty payload removes it and is never stored; MQTT-3.3.1-8: RETAIN 0 leaves it alone.
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    h.publish(1, retained("t", QoS::AtMostOnce, None, "one"));
    h.publish(1, retained("t", QoS::AtMostOnce, None, "two"));
    h.publish(1, publish("t", QoS::AtMostOnce, None, "not retained"));
    assert_eq!(h.broker.stats().retained_messages, 1);
    h.connect(2, "sub", V5, true);
    let (_, actions) = h.subscribe_with(2, "t", opts(QoS::AtMostOnce), None);
    assert_eq!(payloads(&actions, 2), vec!["two"]);
    h.publish(1, retained("t", QoS::AtMostOnce, None, ""));
    assert_eq!(h.broker.stats().retained_messages, 0);
    let (_, actions) = h.subscribe_with(2, "t", opts(QoS::AtMostOnce), None);
    assert!(actions.is_empty());
    // An empty retained message on an empty topic is not stored either.
    h.publish(1, retained("u", QoS::AtMostOnce, None, ""));
    assert_eq!(h.broker.stats().retained_messages, 0);
}

#[test]
fn sent_on_subscribe_with_retain_flag_and_min_qos() {
    // 3.1.1 MQTT-3.3.1-8 (v5 3.3.1.3): messages sent because of a new subscription have
    // RETAIN 1; their QoS is min(stored, granted).
    for version in [V5, V3_1_1] {
        let mut h = H::new();
        h.connect(1, "pub", version, true);
        h.publish(1, retained("a/1", QoS::ExactlyOnce, Some(1), "q2"));
        h.publish(1, retained("a/2", QoS::AtMostOnce, None, "q0"));
        h.publish(1, retained("b/1", QoS::AtMostOnce, None, "other"));
        h.connect(2, "sub", version, true);
        let (_, actions) = h.subscribe_with(2, "a/+", opts(QoS::AtLeastOnce), None);
        let mut out = publishes(&actions, 2);
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|p| p.retain));
        assert_eq!(out[0].qos, QoS::AtLeastOnce);
        assert!(out[0].packet_id.is_some());
        assert_eq!(out[1].qos, QoS::AtMostOnce);
    }
}

#[test]
fn retain_handling() {
    // MQTT-3.3.1-9: 0 -> always sent; MQTT-3.3.1-10: 1 -> only for a new subscription;
    // MQTT-3.3.1-11: 2 -> never.
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    h.publish(1, retained("t", QoS::AtMostOnce, None, "r"));
    h.connect(2, "sub", V5, true);
    let mut o = opts(QoS::AtMostOnce);
    for _ in 0..2 {
        let (_, actions) = h.subscribe_with(2, "t", o, None);
        assert_eq!(payloads(&actions, 2), vec!["r"]);
    }
    o.retain_handling = RetainHandling::SendIfNew;
    let (_, actions) = h.subscribe_with(2, "t", o, None);
    assert!(actions.is_empty(), "subscription existed");
    let (_, actions) = h.subscribe_with(2, "#", o, None);
    assert_eq!(payloads(&actions, 2), vec!["r"]);
    o.retain_handling = RetainHandling::DoNotSend;
    let (_, actions) = h.subscribe_with(2, "+", o, None);
    assert!(actions.is_empty());
}

#[test]
fn retained_with_subscription_identifier() {
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    h.publish(1, retained("t", QoS::AtMostOnce, None, "r"));
    h.connect(2, "sub", V5, true);
    let (_, actions) = h.subscribe_with(2, "t", opts(QoS::AtMostOnce), Some(42));
    assert_eq!(
        publishes(&actions, 2)[0]
            .properties
            .subscription_identifiers,
        vec![42]
    );
}

#[test]
fn retained_messages_expire() {
    // MQTT-3.3.2-5: once the Message Expiry Interval passes, the retained copy is not sent;
    // the remaining interval is forwarded (MQTT-3.3.2-6).
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    let mut p = retained("t", QoS::AtMostOnce, None, "r");
    p.properties.make_mut().message_expiry_interval = Some(10);
    h.publish(1, p);
    h.advance_secs(4);
    h.connect(2, "sub", V5, true);
    let (_, actions) = h.subscribe_with(2, "t", opts(QoS::AtMostOnce), None);
    assert_eq!(
        publishes(&actions, 2)[0].properties.message_expiry_interval,
        Some(6)
    );
    h.advance_secs(6);
    let (_, actions) = h.subscribe_with(2, "t", opts(QoS::AtMostOnce), None);
    assert!(actions.is_empty());
    assert_eq!(h.broker.stats().retained_messages, 1, "dropped lazily");
    h.tick();
    assert_eq!(h.broker.stats().retained_messages, 0, "and on Tick");
}

#[test]
fn replacing_an_expiring_retained_message() {
    let mut h = H::new();
    h.connect(1, "pub", V5, true);
    let mut p = retained("t", QoS::AtMostOnce, None, "old");
    p.properties.make_mut().message_expiry_interval = Some(1);
    h.publish(1, p);
    h.publish(1, retained("t", QoS::AtMostOnce, None, "new"));
    h.advance(Duration::from_secs(5));
    h.tick();
    assert_eq!(h.broker.stats().retained_messages, 1);
}

//! Routing: overlapping subscriptions, No Local, Retain As Published, `$` topics, properties,
//! message expiry, unsubscribe.

use super::harness::*;
use bytes::Bytes;
use midge_codec::{AckKind, PublishProperties, QoS, ReasonCode};
use std::time::Duration;

#[test]
fn overlapping_subscriptions_give_one_copy_with_max_qos_and_all_ids() {
    // MQTT-3.3.4-2: max QoS of the matching subscriptions; MQTT-3.3.4-3, -4: one copy carries
    // every matching Subscription Identifier.
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe_with(1, "a/+", opts(QoS::AtMostOnce), Some(1));
    h.subscribe_with(1, "a/#", opts(QoS::AtLeastOnce), Some(2));
    h.subscribe_with(1, "a/b", opts(QoS::AtMostOnce), None);
    let out = publishes(
        &h.publish(2, publish("a/b", QoS::ExactlyOnce, Some(1), "m")),
        1,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].qos, QoS::AtLeastOnce);
    let mut ids = out[0].properties.subscription_identifiers.clone();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    // Only the matching subscriptions' identifiers.
    let out = publishes(
        &h.publish(2, publish("a/b/c", QoS::AtMostOnce, None, "m")),
        1,
    );
    assert_eq!(out[0].properties.subscription_identifiers, vec![2]);
}

#[test]
fn v311_overlapping_subscriptions() {
    // 3.1.1 MQTT-3.3.5-1: respect the maximum QoS of all matching subscriptions.
    let mut h = H::new();
    h.connect(1, "sub", V3_1_1, true);
    h.connect(2, "pub", V3_1_1, true);
    h.subscribe(1, "a/#", QoS::ExactlyOnce);
    h.subscribe(1, "+/b", QoS::AtMostOnce);
    let out = publishes(
        &h.publish(2, publish("a/b", QoS::ExactlyOnce, Some(1), "m")),
        1,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].qos, QoS::ExactlyOnce);
}

#[test]
fn no_local() {
    // MQTT-3.8.3-3: No Local -> not sent to the connection that published it; another
    // overlapping subscription without it still matches.
    let mut h = H::new();
    h.connect(1, "me", V5, true);
    let mut o = opts(QoS::AtMostOnce);
    o.no_local = true;
    h.subscribe_with(1, "t/#", o, None);
    assert!(publishes(&h.publish(1, publish("t/x", QoS::AtMostOnce, None, "m")), 1).is_empty());
    h.connect(2, "other", V5, true);
    assert_eq!(
        payloads(&h.publish(2, publish("t/x", QoS::AtMostOnce, None, "o")), 1),
        vec!["o"]
    );
    h.subscribe_with(1, "t/x", opts(QoS::AtMostOnce), None);
    assert_eq!(
        payloads(&h.publish(1, publish("t/x", QoS::AtMostOnce, None, "m")), 1),
        vec!["m"]
    );
}

#[test]
fn retain_as_published() {
    // MQTT-3.3.1-12: RAP 0 -> RETAIN cleared on forwarding; MQTT-3.3.1-13: RAP 1 -> as received.
    let mut h = H::new();
    h.connect(1, "rap0", V5, true);
    h.connect(2, "rap1", V5, true);
    h.connect(3, "v3", V3_1_1, true);
    h.connect(4, "pub", V5, true);
    h.subscribe(1, "t", QoS::AtMostOnce);
    let mut o = opts(QoS::AtMostOnce);
    o.retain_as_published = true;
    h.subscribe_with(2, "t", o, None);
    h.subscribe(3, "t", QoS::AtMostOnce);
    let actions = h.publish(4, retained("t", QoS::AtMostOnce, None, "m"));
    assert!(!publishes(&actions, 1)[0].retain);
    assert!(publishes(&actions, 2)[0].retain);
    // 3.1.1 MQTT-3.3.1-9: RETAIN 0 for an established subscription.
    assert!(!publishes(&actions, 3)[0].retain);
    let actions = h.publish(4, publish("t", QoS::AtMostOnce, None, "n"));
    assert!(!publishes(&actions, 2)[0].retain);
}

#[test]
fn dollar_topics() {
    // MQTT-4.7.2-1: filters starting with a wildcard don't match topics starting with `$`.
    let mut h = H::new();
    h.connect(1, "hash", V5, true);
    h.connect(2, "plus", V5, true);
    h.connect(3, "dollar", V5, true);
    h.connect(4, "pub", V5, true);
    h.subscribe(1, "#", QoS::AtMostOnce);
    h.subscribe(2, "+/x", QoS::AtMostOnce);
    h.subscribe(3, "$foo/#", QoS::AtMostOnce);
    // A `$` topic other than `$SYS` is an ordinary topic: routed to an explicit `$foo/#`
    // subscription and retained, but never to `#` or `+/x` (MQTT-4.7.2-1).
    let actions = h.publish(4, retained("$foo/x", QoS::AtLeastOnce, Some(1), "m"));
    assert_eq!(
        acks(&actions, 4, AckKind::PubAck)[0].reason,
        ReasonCode::Success
    );
    assert!(publishes(&actions, 1).is_empty());
    assert!(publishes(&actions, 2).is_empty());
    assert_eq!(payloads(&actions, 3), vec!["m"]);
    assert_eq!(h.broker.stats().retained_messages, 1);
    // `$SYS` belongs to the broker: a client's publish is acknowledged (v5: 0x87), never
    // routed or retained.
    h.subscribe(3, "$SYS/#", QoS::AtMostOnce);
    let actions = h.publish(4, retained("$SYS/x", QoS::AtLeastOnce, Some(2), "m"));
    assert_eq!(
        acks(&actions, 4, AckKind::PubAck)[0].reason,
        ReasonCode::NotAuthorized
    );
    assert!(publishes(&actions, 3).is_empty());
    let actions = h.publish(4, publish("$SYS/x", QoS::ExactlyOnce, Some(3), "m"));
    assert_eq!(
        acks(&actions, 4, AckKind::PubRec)[0].reason,
        ReasonCode::NotAuthorized
    );
    assert!(h
        .publish(4, publish("$SYS/x", QoS::AtMostOnce, None, "m"))
        .is_empty());
    assert_eq!(h.broker.stats().retained_messages, 1);
    // Normal topics reach `#` and `+/x`.
    let actions = h.publish(4, publish("a/x", QoS::AtMostOnce, None, "m"));
    assert_eq!(payloads(&actions, 1), vec!["m"]);
    assert_eq!(payloads(&actions, 2), vec!["m"]);
}

#[test]
fn properties_pass_through_and_alias_is_not_forwarded() {
    // MQTT-3.3.2-4 (Payload Format Indicator), -15 (Response Topic), -16 (Correlation Data),
    // -17/-18 (User Properties, in order), -20 (Content Type) are forwarded unaltered; a
    // Topic Alias is per connection and never forwarded.
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "t", QoS::AtMostOnce);
    let mut p = publish("t", QoS::AtMostOnce, None, "m");
    p.properties = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: None,
        topic_alias: Some(3),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(b"\x01\x02")),
        user_properties: vec![("k".into(), "v1".into()), ("k".into(), "v2".into())],
        subscription_identifiers: vec![],
        content_type: Some("text/plain".into()),
    }
    .into();
    let expected = PublishProperties {
        topic_alias: None,
        ..(*p.properties).clone()
    };
    let out = publishes(&h.publish(2, p), 1);
    assert_eq!(&*out[0].topic, "t");
    assert_eq!(out[0].properties, expected.into());
}

#[test]
fn message_expiry_is_decremented_and_expired_messages_dropped() {
    // MQTT-3.3.2-6: the forwarded Message Expiry Interval is the received value minus the
    // time waited; MQTT-3.3.2-5: an expired message is not delivered.
    let mut h = H::new();
    h.connect_v5(1, "sub", true, 1000);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.disconnect(1, ReasonCode::Success);
    h.connect(2, "pub", V5, true);
    let mut long = publish("t", QoS::AtLeastOnce, Some(1), "long");
    long.properties.make_mut().message_expiry_interval = Some(10);
    let mut short = publish("t", QoS::AtLeastOnce, Some(2), "short");
    short.properties.make_mut().message_expiry_interval = Some(2);
    h.publish(2, long);
    h.publish(2, short);
    h.advance(Duration::from_millis(3500));
    let (ack, actions) = h.connect_ok(3, connect_packet(V5, "sub", false));
    assert!(ack.session_present);
    let out = publishes(&actions, 3);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].payload[..], b"long");
    // 10 s minus 3.5 s waited, rounded up.
    assert_eq!(out[0].properties.message_expiry_interval, Some(7));
    assert_eq!(h.broker.stats().messages_dropped, 1);
    // A live subscriber gets the full interval.
    let mut p = publish("t", QoS::AtMostOnce, None, "live");
    p.properties.make_mut().message_expiry_interval = Some(30);
    let out = publishes(&h.publish(2, p), 3);
    assert_eq!(out[0].properties.message_expiry_interval, Some(30));
}

#[test]
fn unsubscribe() {
    // v5 UNSUBACK reasons: Success / 0x11 No subscription existed; an UNSUBACK is sent even
    // when nothing matched (MQTT-3.10.4-5, 3.1.1 too).
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "a/#", QoS::AtMostOnce);
    assert_eq!(h.broker.stats().subscriptions, 1);
    assert_eq!(
        h.unsubscribe(1, &["a/#", "b"]),
        vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    );
    assert_eq!(h.broker.stats().subscriptions, 0);
    assert!(publishes(&h.publish(2, publish("a/x", QoS::AtMostOnce, None, "m")), 1).is_empty());
    h.connect(3, "v3", V3_1_1, true);
    h.unsubscribe(3, &["nothing"]);
}

#[test]
fn zero_length_retained_clear_is_still_forwarded() {
    // MQTT-3.3.1-6: a zero-byte retained message is processed normally (forwarded) and clears
    // the retained message.
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.publish(2, retained("t", QoS::AtMostOnce, None, "keep"));
    h.subscribe_with(1, "t", opts(QoS::AtMostOnce), None);
    let actions = h.publish(2, retained("t", QoS::AtMostOnce, None, ""));
    assert_eq!(payloads(&actions, 1), vec![""]);
    assert_eq!(h.broker.stats().retained_messages, 0);
}

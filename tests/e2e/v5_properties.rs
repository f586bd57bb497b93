//! MQTT 5 properties: topic aliases both ways, pass-through properties, subscription
//! identifiers, No Local, the client's Maximum Packet Size, message expiry, PUBACK 0x10 and the
//! CONNACK properties.

use crate::connect::{connect, connect_ok, connect_packet, publish, subscribe_packet, V3, V5};
use crate::harness::{v5, Midge};
use bytes::Bytes;
use midge_codec::{Ack, AckKind, Packet, PublishProperties, QoS, ReasonCode, SubscriptionOptions};
use std::collections::HashMap;

// MQTT-3.3.2-12 (v5): the server accepts every Topic Alias from 1 to its Topic Alias Maximum;
// a PUBLISH with an empty topic and a known alias is delivered on the aliased topic.
#[tokio::test]
async fn topic_alias_from_client() {
    let m = Midge::start_with(&[("MIDGE__BROKER__TOPIC_ALIAS_MAXIMUM", "5")]);
    let mut sub = connect(&m, V3, "sub").await;
    sub.subscribe("alias/#", QoS::AtLeastOnce).await;
    let (mut c, ack) = connect_ok(&m, connect_packet(V5, "aliaser", true)).await;
    assert_eq!(ack.properties.topic_alias_maximum, Some(5));

    let mut p = publish("alias/one", QoS::AtLeastOnce, Some(1), b"set");
    p.properties.make_mut().topic_alias = Some(5);
    c.send_publish(p).await;
    let mut p = publish("", QoS::AtLeastOnce, Some(2), b"use");
    p.properties.make_mut().topic_alias = Some(5);
    c.send_publish(p).await;
    // Re-map alias 5 to another topic.
    let mut p = publish("alias/two", QoS::AtMostOnce, None, b"remap");
    p.properties.make_mut().topic_alias = Some(5);
    c.send_publish(p).await;
    let mut p = publish("", QoS::AtMostOnce, None, b"use2");
    p.properties.make_mut().topic_alias = Some(5);
    c.send_publish(p).await;

    for (topic, payload) in [
        ("alias/one", "set"),
        ("alias/one", "use"),
        ("alias/two", "remap"),
        ("alias/two", "use2"),
    ] {
        let got = sub.recv_publish().await;
        assert_eq!((&*got.topic, &got.payload[..]), (topic, payload.as_bytes()));
    }
}

// MQTT-3.3.2-9 and the 0x94 entry of 3.14.2.1 (v5): a Topic Alias greater than the server's
// Topic Alias Maximum is answered with DISCONNECT 0x94 (Topic Alias invalid). Alias 0
// (MQTT-3.3.2-8) has no reason code of its own: 0x94 or 0x82 (Protocol Error) both fit.
#[tokio::test]
async fn topic_alias_above_maximum_is_rejected() {
    let m = Midge::start_with(&[("MIDGE__BROKER__TOPIC_ALIAS_MAXIMUM", "5")]);
    for alias in [6u16, 0] {
        let mut c = connect(&m, V5, &format!("alias-{alias}")).await;
        let mut p = publish("alias/x", QoS::AtMostOnce, None, b"x");
        p.properties.make_mut().topic_alias = Some(alias);
        c.send(&Packet::Publish(p)).await;
        let seen = c.expect_closed().await;
        let ok: &[ReasonCode] = if alias == 0 {
            &[ReasonCode::TopicAliasInvalid, ReasonCode::ProtocolError]
        } else {
            &[ReasonCode::TopicAliasInvalid]
        };
        match seen.as_slice() {
            [Packet::Disconnect(d)] => assert!(ok.contains(&d.reason), "alias {alias}: {d:?}"),
            other => panic!("alias {alias}: expected one DISCONNECT, got {other:?}"),
        }
    }
    // An empty topic with an alias that was never set: Protocol Error (3.3.2.3.4).
    let mut c = connect(&m, V5, "unknown-alias").await;
    let mut p = publish("", QoS::AtMostOnce, None, b"x");
    p.properties.make_mut().topic_alias = Some(3);
    c.send(&Packet::Publish(p)).await;
    c.expect_disconnect(ReasonCode::ProtocolError).await;
}

// MQTT-3.1.2-26 / MQTT-3.3.2-11 (v5): the server never sends a Topic Alias above the client's
// Topic Alias Maximum; MQTT-3.1.2-27: none at all to a client that did not set one. Whatever
// aliases it uses must resolve to the right topics.
#[tokio::test]
async fn topic_alias_to_client() {
    let m = Midge::start_with(&[("MIDGE__BROKER__OUTGOING_TOPIC_ALIASES", "true")]);
    let mut conn = connect_packet(V5, "alias-taker", true);
    conn.properties.topic_alias_maximum = Some(2);
    let (mut c, _) = connect_ok(&m, conn).await;
    c.subscribe("to/#", QoS::AtMostOnce).await;
    let mut plain = connect(&m, V5, "no-alias").await;
    plain.subscribe("to/#", QoS::AtMostOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    let topics = [
        "to/a", "to/b", "to/c", "to/a", "to/a", "to/b", "to/c", "to/c",
    ];
    for (i, t) in topics.iter().enumerate() {
        publ.publish(t, QoS::AtMostOnce, &[i as u8]).await;
    }
    let mut map: HashMap<u16, String> = HashMap::new();
    for (i, t) in topics.iter().enumerate() {
        let p = c.recv_publish().await;
        let topic = match p.properties.topic_alias {
            Some(a) => {
                assert!(
                    (1..=2).contains(&a),
                    "alias {a} above the client's maximum 2"
                );
                if p.topic.is_empty() {
                    map.get(&a).cloned().expect("alias used before it was set")
                } else {
                    map.insert(a, p.topic.to_string());
                    p.topic.to_string()
                }
            }
            None => p.topic.to_string(),
        };
        assert_eq!((topic.as_str(), &p.payload[..]), (*t, &[i as u8][..]));

        let q = plain.recv_publish().await;
        assert_eq!(
            q.properties.topic_alias, None,
            "client set no Topic Alias Maximum"
        );
        assert_eq!((&*q.topic, &q.payload[..]), (*t, &[i as u8][..]));
    }
}

// MQTT-3.3.2-4 (payload format indicator), MQTT-3.3.2-15 (response topic), MQTT-3.3.2-16
// (correlation data), MQTT-3.3.2-17 / -18 (user properties unaltered and in order),
// MQTT-3.3.2-20 (content type): all forwarded unaltered.
#[tokio::test]
async fn publish_properties_pass_through() {
    let m = Midge::start();
    let mut sub = connect(&m, V5, "sub").await;
    sub.subscribe("props/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V5, "pub").await;
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("application/json".into()),
        response_topic: Some("reply/here".into()),
        correlation_data: Some(Bytes::from_static(&[0, 1, 2, 255])),
        user_properties: vec![
            ("k".into(), "v1".into()),
            ("a".into(), "b".into()),
            ("k".into(), "v2".into()),
        ],
        ..Default::default()
    };
    let mut p = publish("props/t", QoS::AtLeastOnce, Some(9), br#"{"x":1}"#);
    p.properties = props.clone().into();
    publ.send_publish(p).await;
    let got = sub.recv_publish().await;
    assert_eq!(*got.properties, props);
    assert_eq!(&got.payload[..], br#"{"x":1}"#);

    // The same through rumqttc.
    let (rc, mut rx) = v5::connect(&m, "rumq").await;
    v5::subscribe(&rc, &mut rx, "props/t", v5::QoS::AtMostOnce).await;
    let mut p = publish("props/t", QoS::AtMostOnce, None, b"2");
    p.properties = props.clone().into();
    publ.send_publish(p).await;
    let got = v5::publish(&mut rx).await;
    let gp = got.properties.expect("properties");
    assert_eq!(gp.payload_format_indicator, Some(1));
    assert_eq!(gp.content_type.as_deref(), Some("application/json"));
    assert_eq!(gp.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(gp.correlation_data.as_deref(), Some(&[0u8, 1, 2, 255][..]));
    assert_eq!(gp.user_properties, props.user_properties);
}

fn sub_with_id(packet_id: u16, filter: &str, id: u32, qos: QoS) -> midge_codec::Subscribe {
    let mut s = subscribe_packet(
        packet_id,
        filter,
        SubscriptionOptions {
            qos,
            ..Default::default()
        },
    );
    s.properties.subscription_identifier = Some(id);
    s
}

// MQTT-3.3.4-2 / -3 / -4 (v5): a message matching overlapping subscriptions of one client is
// sent once (the broker merges matches per session), at the highest granted QoS, carrying the
// Subscription Identifiers of all matching subscriptions that have one.
#[tokio::test]
async fn subscription_identifiers() {
    let m = Midge::start();
    let mut c = connect(&m, V5, "ids").await;
    c.subscribe_with(sub_with_id(1, "sid/+", 1, QoS::AtMostOnce))
        .await;
    c.subscribe_with(sub_with_id(2, "sid/b", 2, QoS::AtLeastOnce))
        .await;
    c.subscribe_with(subscribe_packet(3, "sid/#", Default::default()))
        .await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("sid/b", QoS::ExactlyOnce, b"both").await;
    publ.publish("sid/a", QoS::ExactlyOnce, b"one").await;
    publ.publish("sid/a/deeper", QoS::ExactlyOnce, b"none")
        .await;

    // "sid/b" matches all three subscriptions.
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"both");
    assert_eq!(
        p.qos,
        QoS::AtLeastOnce,
        "highest granted QoS of the matches"
    );
    let mut ids = p.properties.subscription_identifiers.clone();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    // "sid/a" matches "sid/+" (id 1) and "sid/#" (no id).
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"one");
    assert_eq!(p.qos, QoS::AtMostOnce);
    assert_eq!(p.properties.subscription_identifiers, vec![1]);
    // "sid/a/deeper" matches only "sid/#": no identifier.
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"none");
    assert!(p.properties.subscription_identifiers.is_empty(), "{p:?}");
    c.expect_silence().await;

    // A retained message sent on subscribe carries the new subscription's identifier.
    let mut r = publish("sid/r", QoS::AtMostOnce, None, b"ret");
    r.retain = true;
    publ.send_publish(r).await;
    c.recv_publish().await; // live copy through "sid/+" and "sid/#"
    let mut c2 = connect(&m, V5, "ids2").await;
    c2.subscribe_with(sub_with_id(1, "sid/r", 77, QoS::AtMostOnce))
        .await;
    let p = c2.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"ret"[..], true));
    assert_eq!(p.properties.subscription_identifiers, vec![77]);
}

// MQTT-3.8.3-3 (v5): with No Local the server does not forward a client's own messages back
// to it; other clients' messages still arrive.
#[tokio::test]
async fn no_local() {
    let m = Midge::start();
    let mut c = connect(&m, V5, "self").await;
    let opts = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: true,
        ..Default::default()
    };
    c.subscribe_with(subscribe_packet(1, "nl/t", opts)).await;
    c.publish("nl/t", QoS::AtLeastOnce, b"mine").await;
    c.expect_silence().await;
    let mut other = connect(&m, V5, "other").await;
    other.publish("nl/t", QoS::AtLeastOnce, b"theirs").await;
    assert_eq!(&c.recv_publish().await.payload[..], b"theirs");
    // Without No Local the client gets its own message.
    let mut echo = connect(&m, V5, "echo").await;
    echo.subscribe("nl/t", QoS::AtMostOnce).await;
    echo.publish("nl/t", QoS::AtMostOnce, b"echo").await;
    assert_eq!(&echo.expect_publish().await.payload[..], b"echo");
}

// MQTT-3.1.2-24 / MQTT-3.1.2-25 (v5): the server does not send a packet larger than the client's
// Maximum Packet Size: it discards it and carries on with the next message.
#[tokio::test]
async fn client_maximum_packet_size() {
    let m = Midge::start();
    let mut conn = connect_packet(V5, "small", true);
    conn.properties.maximum_packet_size = Some(200);
    let (mut c, _) = connect_ok(&m, conn).await;
    c.subscribe("mps/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V5, "pub").await;
    publ.publish("mps/t", QoS::AtLeastOnce, &[7u8; 1000]).await;
    publ.publish("mps/t", QoS::AtLeastOnce, &[8u8; 150]).await;
    publ.publish("mps/t", QoS::AtLeastOnce, b"small").await;
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], &[8u8; 150][..]);
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"small");
    c.expect_silence().await;
}

// MQTT-3.3.2-6 (v5): a message forwarded at once carries the Message Expiry Interval (minus
// the time it waited, here < 1 s), and a message without one carries none.
#[tokio::test]
async fn message_expiry_forwarded() {
    let m = Midge::start();
    let mut sub = connect(&m, V5, "sub").await;
    sub.subscribe("me/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V5, "pub").await;
    let mut p = publish("me/t", QoS::AtLeastOnce, Some(1), b"e");
    p.properties.make_mut().message_expiry_interval = Some(100);
    publ.send_publish(p).await;
    publ.publish("me/t", QoS::AtLeastOnce, b"n").await;
    let got = sub.recv_publish().await;
    let e = got.properties.message_expiry_interval.expect("expiry");
    assert!((99..=100).contains(&e), "{e}");
    let got = sub.recv_publish().await;
    assert_eq!(got.properties.message_expiry_interval, None);

    // A retained message's expiry keeps counting down; once it passes the message is gone.
    let mut r = publish("me/r", QoS::AtMostOnce, None, b"r");
    r.retain = true;
    r.properties.make_mut().message_expiry_interval = Some(1);
    publ.send_publish(r).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut late = connect(&m, V5, "late").await;
    late.subscribe("me/r", QoS::AtMostOnce).await;
    late.expect_silence().await;

    // A retained message still alive is sent with the remaining interval (MQTT-3.3.2-6).
    let mut r = publish("me/r2", QoS::AtMostOnce, None, b"r2");
    r.retain = true;
    r.properties.make_mut().message_expiry_interval = Some(30);
    publ.send_publish(r).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    late.subscribe("me/r2", QoS::AtMostOnce).await;
    let p = late.expect_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"r2"[..], true));
    let e = p.properties.message_expiry_interval.expect("expiry");
    assert!((27..=28).contains(&e), "30 s after ~2.1 s, got {e}");
}

// 3.4.2.1 (v5): PUBACK 0x10 (No matching subscribers) when nobody is subscribed; 0x00 when
// somebody is. Same for PUBREC.
#[tokio::test]
async fn puback_no_matching_subscribers() {
    let m = Midge::start();
    let mut c = connect(&m, V5, "lonely").await;
    c.send(&Packet::Publish(publish(
        "nobody/t",
        QoS::AtLeastOnce,
        Some(1),
        b"?",
    )))
    .await;
    let a = c.expect_ack(AckKind::PubAck, 1).await;
    assert_eq!(a.reason, ReasonCode::NoMatchingSubscribers);
    c.send(&Packet::Publish(publish(
        "nobody/t",
        QoS::ExactlyOnce,
        Some(2),
        b"?",
    )))
    .await;
    let a = c.expect_ack(AckKind::PubRec, 2).await;
    assert_eq!(a.reason, ReasonCode::NoMatchingSubscribers);
    c.send(&Packet::Ack(Ack::new(AckKind::PubRel, 2))).await;
    c.expect_ack(AckKind::PubComp, 2).await;

    let mut s = connect(&m, V3, "listener").await;
    s.subscribe("nobody/#", QoS::AtMostOnce).await;
    c.send(&Packet::Publish(publish(
        "nobody/t",
        QoS::AtLeastOnce,
        Some(3),
        b"!",
    )))
    .await;
    let a = c.expect_ack(AckKind::PubAck, 3).await;
    assert_eq!(a.reason, ReasonCode::Success);
}

// 3.2.2.3 (v5): CONNACK advertises the configured Receive Maximum, Topic Alias Maximum and
// Maximum Packet Size; Maximum QoS is absent when QoS 2 is supported (3.2.2.3.4), and the
// availability flags are absent or 1.
#[tokio::test]
async fn connack_properties() {
    let m = Midge::start_with(&[
        ("MIDGE__BROKER__RECEIVE_MAXIMUM", "100"),
        ("MIDGE__BROKER__TOPIC_ALIAS_MAXIMUM", "7"),
        ("MIDGE__BROKER__MAX_PACKET_SIZE", "5000"),
    ]);
    let (_c, ack) = connect_ok(&m, connect_packet(V5, "props", true)).await;
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(100));
    assert_eq!(p.topic_alias_maximum, Some(7));
    assert_eq!(p.maximum_packet_size, Some(5000));
    assert_eq!(p.maximum_qos, None);
    for (name, flag) in [
        ("retain available", p.retain_available),
        ("wildcard", p.wildcard_subscription_available),
        ("subscription ids", p.subscription_identifier_available),
        ("shared", p.shared_subscription_available),
    ] {
        assert!(matches!(flag, None | Some(1)), "{name}: {flag:?}");
    }
    assert_eq!(p.assigned_client_identifier, None);

    // The same values through rumqttc.
    let (_c, ack, _rx) = v5::connect_with(v5::options(&m, "rumq", true)).await;
    let p = ack.properties.expect("CONNACK properties");
    assert_eq!(p.receive_max, Some(100));
    assert_eq!(p.topic_alias_max, Some(7));
    assert_eq!(p.max_packet_size, Some(5000));
}

// 3.2.2.3.2 (v5): with the broker's Receive Maximum 2, a client sending a third unacknowledged
// QoS 2 PUBLISH exceeds it: DISCONNECT 0x93 (Receive Maximum exceeded).
#[tokio::test]
async fn receive_maximum_exceeded() {
    let m = Midge::start_with(&[("MIDGE__BROKER__RECEIVE_MAXIMUM", "2")]);
    let mut c = connect(&m, V5, "flooder").await;
    for id in 1..=3u16 {
        c.send(&Packet::Publish(publish(
            "flood/t",
            QoS::ExactlyOnce,
            Some(id),
            b"f",
        )))
        .await;
    }
    let seen = c.expect_closed().await;
    let recs = seen
        .iter()
        .filter(|p| matches!(p, Packet::Ack(a) if a.kind == AckKind::PubRec))
        .count();
    assert_eq!(recs, 2, "{seen:?}");
    match seen.last() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::ReceiveMaximumExceeded),
        other => panic!("expected DISCONNECT 0x93 last, got {other:?}"),
    }
    let s = crate::metrics::scrape(&m).await;
    let counted = crate::metrics::value(
        &s,
        "midge_limit_rejections_total",
        &[("reason", "receive_maximum")],
    );
    assert_eq!(counted, 1.0);
}

// 3.2.2.3.5 (v5): with retain_available = false the CONNACK says Retain Available 0; a PUBLISH
// with RETAIN=1 gets DISCONNECT 0x9A (Retain not supported), and a CONNECT with Will Retain 1
// gets CONNACK 0x9A (MQTT-3.2.2-13).
#[tokio::test]
async fn retain_not_available() {
    let m = Midge::start_with(&[("MIDGE__BROKER__RETAIN_AVAILABLE", "false")]);
    let (mut c, ack) = connect_ok(&m, connect_packet(V5, "nr", true)).await;
    assert_eq!(ack.properties.retain_available, Some(0));
    let mut p = publish("nr/t", QoS::AtMostOnce, None, b"r");
    p.retain = true;
    c.send(&Packet::Publish(p)).await;
    c.expect_disconnect(ReasonCode::RetainNotSupported).await;

    let mut conn = connect_packet(V5, "nr-will", true);
    conn.will = Some(crate::connect::will("nr/w", b"w", QoS::AtMostOnce, true));
    let (mut c, ack) = crate::connect::connect_with(&m, conn).await;
    assert_eq!(ack.reason, ReasonCode::RetainNotSupported);
    assert!(c.expect_closed().await.is_empty());
}

// MQTT-3.3.4-3 with rumqttc v5: a subscription made with a Subscription Identifier property
// gets it back on every matching PUBLISH.
#[tokio::test]
async fn rumqttc_subscription_identifier() {
    let m = Midge::start();
    let (c, mut rx) = v5::connect(&m, "rumq-ids").await;
    let props = v5::SubscribeProperties {
        id: Some(4242),
        user_properties: vec![],
    };
    c.subscribe_with_properties("rid/#", v5::QoS::AtLeastOnce, props)
        .await
        .unwrap();
    crate::harness::next_matching(&mut rx, |p| {
        matches!(p, v5::Packet::SubAck(_)).then_some(())
    })
    .await
    .unwrap();
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("rid/x", QoS::AtLeastOnce, b"id").await;
    let p = v5::publish(&mut rx).await;
    assert_eq!(
        p.properties.expect("properties").subscription_identifiers,
        vec![4242]
    );
}

// MQTT-3.3.2-7 (v5): topic alias mappings do not outlive the network connection: after the
// client reconnects (resuming its session) the server's first PUBLISH on a topic carries the
// full topic name again.
#[tokio::test]
async fn topic_aliases_reset_on_reconnect() {
    let m = Midge::start_with(&[("MIDGE__BROKER__OUTGOING_TOPIC_ALIASES", "true")]);
    let conn = || {
        let mut c = crate::connect::persistent(V5, "alias-resume");
        c.properties.topic_alias_maximum = Some(5);
        c
    };
    let (mut c, _) = connect_ok(&m, conn()).await;
    c.subscribe("ar/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    for _ in 0..3 {
        publ.publish("ar/t", QoS::AtLeastOnce, b"x").await;
    }
    for _ in 0..3 {
        c.recv_publish().await;
    }
    c.disconnect().await;
    publ.publish("ar/t", QoS::AtLeastOnce, b"queued").await;
    let (mut c, _) = connect_ok(&m, conn()).await;
    let p = c.recv_publish().await;
    assert_eq!((&*p.topic, &p.payload[..]), ("ar/t", &b"queued"[..]));
    publ.publish("ar/t", QoS::AtLeastOnce, b"live").await;
    let p = c.recv_publish().await;
    let ok = &*p.topic == "ar/t" || (p.topic.is_empty() && p.properties.topic_alias.is_some());
    assert!(ok, "{p:?}");
}

// 3.15 / 4.12 (v5): an AUTH packet when the CONNECT had no Authentication Method is a
// Protocol Error (0x82). In 3.1.1 packet type 15 is reserved: the server closes.
#[tokio::test]
async fn unexpected_auth_packet() {
    let m = Midge::start();
    let mut c = connect(&m, V5, "auth-v5").await;
    c.send_bytes(&[0xF0, 0x00]).await;
    c.expect_disconnect(ReasonCode::ProtocolError).await;
    let mut c = connect(&m, V3, "auth-v3").await;
    c.send_bytes(&[0xF0, 0x00]).await;
    assert!(c.expect_closed().await.is_empty());
}

// 3.3.2.1 (v5): a zero-length Topic Name without a Topic Alias is a Protocol Error (0x82);
// MQTT-4.7.3-1 (3.1.1): topic names are at least one character long: the server closes.
#[tokio::test]
async fn empty_topic_without_alias() {
    let m = Midge::start();
    for v in [V3, V5] {
        let mut c = connect(&m, v, "empty-topic").await;
        // PUBLISH QoS 0, topic length 0, (v5: no properties), payload "x".
        let bytes: &[u8] = if v.is_v5() {
            &[0x30, 4, 0, 0, 0, b'x']
        } else {
            &[0x30, 3, 0, 0, b'x']
        };
        c.send_bytes(bytes).await;
        c.expect_disconnect(ReasonCode::ProtocolError).await;
    }
}

// Outgoing topic aliases are off by default (as in Mosquitto), so a v5 client that allows
// aliases still gets every PUBLISH with its full topic name and no Topic Alias property.
#[tokio::test]
async fn no_outgoing_topic_aliases_by_default() {
    let m = Midge::start();
    let mut conn = connect_packet(V5, "alias-default", true);
    conn.properties.topic_alias_maximum = Some(10);
    let (mut c, _) = connect_ok(&m, conn).await;
    c.subscribe("plain/#", QoS::AtMostOnce).await;
    for _ in 0..2 {
        c.publish("plain/t", QoS::AtMostOnce, b"x").await;
        let p = c.recv_publish().await;
        assert_eq!(&*p.topic, "plain/t");
        assert_eq!(p.properties.topic_alias, None);
    }
}

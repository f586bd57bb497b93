//! QoS 0/1/2 flows in both directions, downgrade, exactly-once across reconnects, ordering and
//! the outgoing inflight window.

use crate::connect::{connect, connect_ok, connect_packet, persistent, publish, Client, V3, V5};
use crate::harness::{self, v4, v5, Midge};
use midge_codec::{Ack, AckKind, Packet, ProtocolVersion, QoS, ReasonCode};

const ALL_QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

async fn flows_at_every_qos(v: ProtocolVersion) {
    let m = Midge::start();
    let mut sub = connect(&m, v, "sub").await;
    let mut publ = connect(&m, v, "pub").await;
    sub.subscribe("q/+", QoS::ExactlyOnce).await;
    for (i, qos) in ALL_QOS.into_iter().enumerate() {
        let topic = format!("q/{i}");
        let id = (qos != QoS::AtMostOnce).then_some(10 + i as u16);
        // Client -> server: PUBACK / PUBREC, PUBREL, PUBCOMP carry the publisher's packet id.
        publ.send_publish(publish(&topic, qos, id, format!("m{i}").as_bytes()))
            .await;
        // Server -> client: the subscriber gets the message at the publish QoS.
        let p = sub.expect_publish().await;
        assert_eq!(&*p.topic, topic);
        assert_eq!(p.payload, format!("m{i}").as_bytes());
        assert_eq!(p.qos, qos);
        assert!(!p.dup && !p.retain, "{p:?}");
        assert_eq!(p.packet_id.is_some(), qos != QoS::AtMostOnce, "{p:?}");
        match (qos, p.packet_id) {
            (QoS::AtMostOnce, _) => {}
            (QoS::AtLeastOnce, Some(id)) => {
                sub.send(&Packet::Ack(Ack::new(AckKind::PubAck, id))).await;
            }
            (QoS::ExactlyOnce, Some(id)) => {
                sub.send(&Packet::Ack(Ack::new(AckKind::PubRec, id))).await;
                let rel = sub.expect_ack(AckKind::PubRel, id).await;
                assert_eq!(rel.reason, ReasonCode::Success);
                sub.send(&Packet::Ack(Ack::new(AckKind::PubComp, id))).await;
            }
            _ => unreachable!(),
        }
    }
    sub.expect_silence().await;
}

// MQTT-4.3.1-1, MQTT-4.3.2-1/-2, MQTT-4.3.3-1/-2 (3.1.1): the QoS 0/1/2 protocol flows in both
// directions with a 3.1.1 publisher and subscriber; MQTT-3.3.1-2: DUP is 0 on first delivery.
#[tokio::test]
async fn v3_qos_flows_both_directions() {
    flows_at_every_qos(V3).await;
}

// MQTT-4.3.1-1, MQTT-4.3.2-1 .. -5, MQTT-4.3.3-1 .. -11 (v5): the QoS 0/1/2 protocol flows in
// both directions; MQTT-3.3.1-2: DUP is 0 on first delivery.
#[tokio::test]
async fn v5_qos_flows_both_directions() {
    flows_at_every_qos(V5).await;
}

// 4.3 with a real client library: rumqttc (3.1.1) publishes and receives at every QoS.
#[tokio::test]
async fn rumqttc_v4_qos_round_trip() {
    let m = Midge::start();
    let (sub, mut sub_rx) = v4::connect(&m, "r4-sub").await;
    let (publ, _pub_rx) = v4::connect(&m, "r4-pub").await;
    v4::subscribe(&sub, &mut sub_rx, "r4/#", v4::QoS::ExactlyOnce).await;
    for qos in [
        v4::QoS::AtMostOnce,
        v4::QoS::AtLeastOnce,
        v4::QoS::ExactlyOnce,
    ] {
        let topic = format!("r4/{qos:?}");
        publ.publish(topic.clone(), qos, false, format!("{qos:?}"))
            .await
            .unwrap();
        let p = crate::harness::next_matching(&mut sub_rx, |p| match p {
            v4::Incoming::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
        .expect("PUBLISH");
        assert_eq!(p.topic, topic);
        assert_eq!(p.qos, qos);
        assert_eq!(p.payload, format!("{qos:?}").as_bytes());
    }
}

// 4.3 with rumqttc (v5): publishes and receives at every QoS.
#[tokio::test]
async fn rumqttc_v5_qos_round_trip() {
    let m = Midge::start();
    let (sub, mut sub_rx) = v5::connect(&m, "r5-sub").await;
    let (publ, _pub_rx) = v5::connect(&m, "r5-pub").await;
    v5::subscribe(&sub, &mut sub_rx, "r5/#", v5::QoS::ExactlyOnce).await;
    for qos in [
        v5::QoS::AtMostOnce,
        v5::QoS::AtLeastOnce,
        v5::QoS::ExactlyOnce,
    ] {
        let topic = format!("r5/{qos:?}");
        publ.publish(topic.clone(), qos, false, format!("{qos:?}"))
            .await
            .unwrap();
        let p = v5::publish(&mut sub_rx).await;
        assert_eq!(p.topic, topic.as_bytes());
        assert_eq!(p.qos, qos);
        assert_eq!(p.payload, format!("{qos:?}").as_bytes());
    }
}

async fn downgrade(v: ProtocolVersion) {
    let m = Midge::start();
    let mut publ = connect(&m, v, "pub").await;
    let mut subs = Vec::new();
    for (i, qos) in ALL_QOS.into_iter().enumerate() {
        let mut s = connect(&m, v, &format!("sub{i}")).await;
        s.subscribe("down/t", qos).await;
        subs.push((s, qos));
    }
    for pub_qos in ALL_QOS {
        publ.publish("down/t", pub_qos, b"d").await;
        for (s, sub_qos) in subs.iter_mut() {
            let p = s.recv_publish().await;
            assert_eq!(
                p.qos,
                pub_qos.min(*sub_qos),
                "published {pub_qos:?}, sub {sub_qos:?}"
            );
        }
    }
}

// MQTT-3.8.4-6 (3.1.1): delivered QoS = min(published QoS, granted QoS).
#[tokio::test]
async fn v3_qos_downgrade() {
    downgrade(V3).await;
}

// MQTT-3.8.4-8 (v5): delivered QoS = min(published QoS, granted QoS).
#[tokio::test]
async fn v5_qos_downgrade() {
    downgrade(V5).await;
}

async fn qos2_exactly_once_across_publisher_reconnect(v: ProtocolVersion) {
    let m = Midge::start();
    let mut sub = connect(&m, V3, "sub").await;
    sub.subscribe("eo/t", QoS::ExactlyOnce).await;

    let (mut p1, _) = connect_ok(&m, persistent(v, "eo-pub")).await;
    p1.send(&Packet::Publish(publish(
        "eo/t",
        QoS::ExactlyOnce,
        Some(7),
        b"once",
    )))
    .await;
    let rec = p1.expect_ack(AckKind::PubRec, 7).await;
    assert_eq!(rec.reason, ReasonCode::Success);
    drop(p1); // connection lost before PUBREL

    let (mut p2, ack) = connect_ok(&m, persistent(v, "eo-pub")).await;
    assert!(ack.session_present);
    let mut again = publish("eo/t", QoS::ExactlyOnce, Some(7), b"once");
    again.dup = true;
    p2.send(&Packet::Publish(again)).await;
    p2.expect_ack(AckKind::PubRec, 7).await;
    p2.send(&Packet::Ack(Ack::new(AckKind::PubRel, 7))).await;
    let comp = p2.expect_ack(AckKind::PubComp, 7).await;
    assert_eq!(comp.reason, ReasonCode::Success);

    let got = sub.recv_publish().await;
    assert_eq!(&got.payload[..], b"once");
    sub.expect_silence().await;
}

// MQTT-4.3.3-2 (3.1.1): until it has received PUBREL the receiver acknowledges a re-sent
// PUBLISH with the same packet id with PUBREC and MUST NOT deliver it twice onward;
// MQTT-4.4.0-1: the client re-sends the unacknowledged PUBLISH (DUP=1) after reconnecting.
#[tokio::test]
async fn v3_qos2_exactly_once_across_publisher_reconnect() {
    qos2_exactly_once_across_publisher_reconnect(V3).await;
}

// MQTT-4.3.3-9 (v5): until PUBREL, a re-sent PUBLISH with the same packet id is answered with
// PUBREC and MUST NOT cause a duplicate onward delivery; MQTT-4.4.0-1: same for a v5 publisher.
#[tokio::test]
async fn v5_qos2_exactly_once_across_publisher_reconnect() {
    qos2_exactly_once_across_publisher_reconnect(V5).await;
}

async fn pubrel_resent_to_reconnecting_subscriber(v: ProtocolVersion) {
    let m = Midge::start();
    let (mut s1, _) = connect_ok(&m, persistent(v, "rel-sub")).await;
    s1.subscribe("rel/t", QoS::ExactlyOnce).await;
    let mut publ = connect(&m, V3, "rel-pub").await;
    publ.publish("rel/t", QoS::ExactlyOnce, b"r").await;

    let p = s1.expect_publish().await;
    let id = p.packet_id.expect("packet id");
    s1.send(&Packet::Ack(Ack::new(AckKind::PubRec, id))).await;
    s1.expect_ack(AckKind::PubRel, id).await;
    drop(s1); // connection lost before PUBCOMP

    let (mut s2, ack) = connect_ok(&m, persistent(v, "rel-sub")).await;
    assert!(ack.session_present);
    // MQTT-4.4.0-1: the PUBREL is re-sent with the original packet id, and the PUBLISH is not.
    let rel = s2.expect_ack(AckKind::PubRel, id).await;
    assert_eq!(rel.reason, ReasonCode::Success);
    s2.send(&Packet::Ack(Ack::new(AckKind::PubComp, id))).await;
    s2.expect_silence().await;
}

// MQTT-4.4.0-1 (3.1.1): on reconnect with CleanSession=0 the server re-sends unacknowledged
// PUBREL packets; MQTT-4.3.3-1: it must not re-send the PUBLISH once PUBREL was sent.
#[tokio::test]
async fn v3_pubrel_resent_to_reconnecting_subscriber() {
    pubrel_resent_to_reconnecting_subscriber(V3).await;
}

// MQTT-4.4.0-1 (v5): same for v5 with clean start 0 and a session expiry interval.
#[tokio::test]
async fn v5_pubrel_resent_to_reconnecting_subscriber() {
    pubrel_resent_to_reconnecting_subscriber(V5).await;
}

// MQTT-4.6.0-5 / MQTT-4.6.0-6 (3.1.1): a topic is ordered by default; 1,000 QoS 1 messages
// from one publisher arrive in order, once each (rumqttc 3.1.1 and v5).
#[tokio::test]
async fn qos1_stream_of_1000_is_ordered() {
    let m = Midge::start();
    let (sub4, mut rx4) = v4::connect(&m, "o-sub4").await;
    v4::subscribe(&sub4, &mut rx4, "order/t", v4::QoS::AtLeastOnce).await;
    let (sub5, mut rx5) = v5::connect(&m, "o-sub5").await;
    v5::subscribe(&sub5, &mut rx5, "order/t", v5::QoS::AtLeastOnce).await;
    let (publ, _prx) = v4::connect(&m, "o-pub").await;
    let sender = tokio::spawn(async move {
        for i in 0..1000u32 {
            publ.publish("order/t", v4::QoS::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
        }
        publ
    });
    for i in 0..1000u32 {
        let p = v4::publish(&mut rx4).await;
        assert_eq!(
            p.payload,
            i.to_string().as_bytes(),
            "3.1.1 subscriber, message {i}"
        );
        assert_eq!(p.qos, v4::QoS::AtLeastOnce);
        let p = v5::publish(&mut rx5).await;
        assert_eq!(
            p.payload,
            i.to_string().as_bytes(),
            "v5 subscriber, message {i}"
        );
    }
    let _publ = sender.await.unwrap();
    harness::nothing_matching(&mut rx4, |p| matches!(p, v4::Packet::Publish(_))).await;
}

// MQTT-4.6.0-5 / MQTT-4.6.0-6 with the broker lock contended: eight publishers send at once
// while the subscriber's PUBACKs come in, so reads can find the lock busy and be left for its
// holder (`SharedBroker::packets`). Each publisher's 500 QoS 1 messages still arrive in its
// order, once each (rumqttc 3.1.1).
#[tokio::test]
async fn concurrent_qos1_publishers_each_stay_in_order() {
    const PUBLISHERS: usize = 8;
    const EACH: usize = 500;
    let m = Midge::start();
    let (sub, mut rx) = v4::connect(&m, "c-sub").await;
    v4::subscribe(&sub, &mut rx, "conc/#", v4::QoS::AtLeastOnce).await;
    let mut senders = Vec::new();
    for j in 0..PUBLISHERS {
        let (publ, prx) = v4::connect(&m, &format!("c-pub{j}")).await;
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                publ.publish(
                    format!("conc/{j}"),
                    v4::QoS::AtLeastOnce,
                    false,
                    i.to_string(),
                )
                .await
                .unwrap();
            }
            (publ, prx)
        }));
    }
    let mut next = [0usize; PUBLISHERS];
    for _ in 0..PUBLISHERS * EACH {
        let p = v4::publish(&mut rx).await;
        let j: usize = p.topic.trim_start_matches("conc/").parse().unwrap();
        let i: usize = std::str::from_utf8(&p.payload).unwrap().parse().unwrap();
        assert_eq!(i, next[j], "publisher {j}: message {i} out of order");
        next[j] += 1;
    }
    assert_eq!(next, [EACH; PUBLISHERS]);
    for sender in senders {
        sender.await.unwrap();
    }
    harness::nothing_matching(&mut rx, |p| matches!(p, v4::Packet::Publish(_))).await;
}

// MQTT-3.3.4-9 (v5): the server MUST NOT send more than the client's Receive Maximum QoS 1/2
// PUBLISH packets without acknowledgement; MQTT-3.3.4-10: other packets (PINGRESP) are not
// delayed.
#[tokio::test]
async fn v5_receive_maximum_limits_inflight() {
    let m = Midge::start();
    let mut conn = connect_packet(V5, "slow-acker", true);
    conn.properties.receive_maximum = Some(2);
    let (mut sub, _) = connect_ok(&m, conn).await;
    sub.subscribe("win/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V3, "win-pub").await;
    for i in 0..5u16 {
        publ.send_publish(publish(
            "win/t",
            QoS::AtLeastOnce,
            Some(i + 1),
            &[b'0' + i as u8],
        ))
        .await;
    }
    let first = sub.expect_publish().await;
    let second = sub.expect_publish().await;
    assert_eq!(
        (&first.payload[..], &second.payload[..]),
        (&b"0"[..], &b"1"[..])
    );
    sub.expect_silence().await;
    // Not a PUBLISH: answered while the window is full.
    sub.send(&Packet::PingReq).await;
    assert_eq!(sub.next().await, Packet::PingResp);

    let mut expected = 2u8;
    let mut outstanding = vec![second];
    sub.ack(&first).await;
    while expected < 5 {
        let p = sub.expect_publish().await;
        assert_eq!(&p.payload[..], &[b'0' + expected]);
        expected += 1;
        sub.expect_silence().await;
        outstanding.push(p);
        let oldest = outstanding.remove(0);
        sub.ack(&oldest).await;
    }
    sub.ack(&outstanding.remove(0)).await;
    sub.expect_silence().await;
}

// 3.1.2.11.3 / MQTT-3.3.4-9 (v5): a client that does not set Receive Maximum has 65,535, so 20
// unacknowledged messages all arrive at once.
#[tokio::test]
async fn v5_default_receive_maximum_sends_everything() {
    let m = Midge::start();
    let mut sub: Client = connect(&m, V5, "fast").await;
    sub.subscribe("all/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V5, "all-pub").await;
    for i in 0..20u16 {
        publ.send_publish(publish(
            "all/t",
            QoS::AtLeastOnce,
            Some(i + 1),
            &i.to_be_bytes(),
        ))
        .await;
    }
    for i in 0..20u16 {
        let p = sub.expect_publish().await;
        assert_eq!(&p.payload[..], &i.to_be_bytes());
    }
    sub.expect_silence().await;
}

async fn resubscribe_replaces(v: ProtocolVersion) {
    let m = Midge::start();
    let mut s = connect(&m, v, "resub").await;
    s.subscribe("re/t", QoS::AtMostOnce).await;
    s.subscribe("re/t", QoS::ExactlyOnce).await;
    let mut publ = connect(&m, v, "pub").await;
    publ.publish("re/t", QoS::ExactlyOnce, b"once").await;
    let p = s.recv_publish().await;
    assert_eq!((&p.payload[..], p.qos), (&b"once"[..], QoS::ExactlyOnce));
    s.expect_silence().await;
}

// MQTT-3.8.4-3: a SUBSCRIBE whose filter equals an existing subscription's replaces it (new
// QoS), and a matching message is delivered once.
#[tokio::test]
async fn v3_resubscribe_replaces_subscription() {
    resubscribe_replaces(V3).await;
}

// MQTT-3.8.4-3 (v5): same for v5.
#[tokio::test]
async fn v5_resubscribe_replaces_subscription() {
    resubscribe_replaces(V5).await;
}

// 3.10.4 (MQTT-3.10.4-1 .. -5): UNSUBSCRIBE removes the subscription and is answered with an
// UNSUBACK with the same packet id; in v5 the reason is 0x00, or 0x11 (No subscription existed).
#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let m = Midge::start();
    let mut publ = connect(&m, V3, "pub").await;
    for v in [V3, V5] {
        let mut s = connect(&m, v, &format!("unsub-{v:?}")).await;
        s.subscribe("un/t", QoS::AtLeastOnce).await;
        s.send(&Packet::Unsubscribe(midge_codec::Unsubscribe {
            packet_id: 42,
            filters: vec!["un/t".into(), "never/subscribed".into()],
            user_properties: vec![],
        }))
        .await;
        match s.next().await {
            Packet::UnsubAck(u) => {
                assert_eq!(u.packet_id, 42);
                if v.is_v5() {
                    assert_eq!(
                        u.reasons,
                        vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
                    );
                }
            }
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
        publ.publish("un/t", QoS::AtLeastOnce, b"x").await;
        s.expect_silence().await;
    }
}

// PUBREL for a packet id the server does not know: v5 answers PUBCOMP 0x92 (Packet Identifier
// not found, 3.7.2.1); 3.1.1 answers PUBCOMP (MQTT-4.3.3-2: the receiver MUST respond to a
// PUBREL with PUBCOMP containing the same packet id).
#[tokio::test]
async fn pubrel_for_unknown_packet_id() {
    let m = Midge::start();
    for v in [V3, V5] {
        let mut c = connect(&m, v, "stray").await;
        c.send(&Packet::Ack(Ack::new(AckKind::PubRel, 99))).await;
        let comp = c.expect_ack(AckKind::PubComp, 99).await;
        if v.is_v5() {
            assert_eq!(comp.reason, ReasonCode::PacketIdentifierNotFound);
        }
        c.send(&Packet::PingReq).await;
        assert_eq!(c.next().await, Packet::PingResp);
    }
}

// 4.7.1.2 / 4.7.1.3 / 4.7.3: topic filter matching: `#` also matches the parent level, `+`
// matches exactly one (possibly empty) level, a leading `/` makes an empty first level.
#[tokio::test]
async fn topic_filter_matching() {
    let m = Midge::start();
    let cases: &[(&str, &[&str])] = &[
        (
            "sport/tennis/#",
            &["sport/tennis", "sport/tennis/p1", "sport/tennis/p1/r"],
        ),
        ("sport/+", &["sport/", "sport/tennis"]),
        (
            "+/+",
            &["sport/", "sport/tennis", "/finance", "a/b", "Sport/tennis"],
        ),
        ("/+", &["/finance"]),
        ("+", &["sport"]),
        ("a//b", &["a//b"]),
        ("a/+/b", &["a//b", "a/x/b"]),
    ];
    let topics = [
        "sport",
        "sport/",
        "sport/tennis",
        "sport/tennis/p1",
        "sport/tennis/p1/r",
        "/finance",
        "a/b",
        "a//b",
        "a/x/b",
        "a/x/y/b",
        "Sport/tennis",
    ];
    let mut subs = Vec::new();
    for (i, (filter, _)) in cases.iter().enumerate() {
        let mut s = connect(&m, V5, &format!("m{i}")).await;
        s.subscribe(filter, QoS::AtMostOnce).await;
        subs.push(s);
    }
    let mut publ = connect(&m, V3, "pub").await;
    for t in topics {
        publ.publish(t, QoS::AtLeastOnce, t.as_bytes()).await;
    }
    for ((filter, want), s) in cases.iter().zip(subs.iter_mut()) {
        let mut got = Vec::new();
        while let Ok(Some(Packet::Publish(p))) = s
            .raw
            .recv_within(std::time::Duration::from_millis(300))
            .await
        {
            assert_eq!(p.payload, p.topic.as_bytes());
            got.push(p.topic.to_string());
        }
        assert_eq!(got, want.to_vec(), "filter {filter}");
    }
}

// A payload of 512 KiB (below the default 1 MiB maximum packet size) round trips intact at
// QoS 1 in both versions.
#[tokio::test]
async fn large_payload_round_trip() {
    let m = Midge::start();
    let payload: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
    for v in [V3, V5] {
        let mut s = connect(&m, v, "big-sub").await;
        s.subscribe("big/t", QoS::AtLeastOnce).await;
        let mut publ = connect(&m, v, "big-pub").await;
        publ.publish("big/t", QoS::AtLeastOnce, &payload).await;
        let p = s.recv_publish().await;
        assert!(
            p.payload == payload,
            "payload corrupted ({} bytes)",
            p.payload.len()
        );
    }
}

// broker.max_inflight caps unacknowledged outgoing QoS 1 messages for every client (3.1.1
// has no Receive Maximum): with max_inflight 2 a non-acking subscriber gets exactly 2.
#[tokio::test]
async fn max_inflight_applies_to_v3_clients() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAX_INFLIGHT", "2")]);
    let mut s = connect(&m, V3, "v3-slow").await;
    s.subscribe("mi/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    for i in 0..4u16 {
        publ.send_publish(publish("mi/t", QoS::AtLeastOnce, Some(i + 1), &[i as u8]))
            .await;
    }
    let a = s.expect_publish().await;
    let b = s.expect_publish().await;
    assert_eq!((&a.payload[..], &b.payload[..]), (&[0u8][..], &[1u8][..]));
    s.expect_silence().await;
    s.ack(&a).await;
    s.ack(&b).await;
    assert_eq!(&s.recv_publish().await.payload[..], &[2u8]);
    assert_eq!(&s.recv_publish().await.payload[..], &[3u8]);
    s.expect_silence().await;
}

// 3.2.2.3.4 (v5): with maximum_qos = 1 the CONNACK carries Maximum QoS 1, a QoS 2 subscription
// is granted QoS 1, a QoS 2 PUBLISH gets DISCONNECT 0x9B (QoS not supported), and a will with
// QoS 2 is refused with CONNACK 0x9B (MQTT-3.2.2-12).
#[tokio::test]
async fn v5_maximum_qos_1() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAXIMUM_QOS", "1")]);
    let (mut c, ack) = connect_ok(&m, connect_packet(V5, "mq", true)).await;
    assert_eq!(ack.properties.maximum_qos, Some(1));
    let s = c
        .subscribe_with(crate::connect::subscribe_packet(
            1,
            "mq/t",
            crate::connect::qos_opts(QoS::ExactlyOnce),
        ))
        .await;
    assert_eq!(s.reasons, vec![ReasonCode::GrantedQoS1]);
    c.send(&Packet::Publish(publish(
        "mq/t",
        QoS::ExactlyOnce,
        Some(1),
        b"2",
    )))
    .await;
    c.expect_disconnect(ReasonCode::QoSNotSupported).await;

    let mut conn = connect_packet(V5, "mq-will", true);
    conn.will = Some(crate::connect::will("mq/w", b"w", QoS::ExactlyOnce, false));
    let (mut c, ack) = crate::connect::connect_with(&m, conn).await;
    assert_eq!(ack.reason, ReasonCode::QoSNotSupported);
    assert!(c.expect_closed().await.is_empty());
}

// MQTT-4.3.3-2 (3.1.1) / MQTT-4.3.3-11 (v5): after sending PUBCOMP the receiver treats a
// PUBLISH with the same packet id as a new message: it is delivered again.
#[tokio::test]
async fn qos2_packet_id_reusable_after_pubrel() {
    let m = Midge::start();
    for v in [V3, V5] {
        let mut sub = connect(&m, V3, "sub").await;
        sub.subscribe("reuse/t", QoS::ExactlyOnce).await;
        let mut publ = connect(&m, v, "pub").await;
        publ.send_publish(publish("reuse/t", QoS::ExactlyOnce, Some(5), b"first"))
            .await;
        publ.send_publish(publish("reuse/t", QoS::ExactlyOnce, Some(5), b"second"))
            .await;
        assert_eq!(&sub.recv_publish().await.payload[..], b"first");
        assert_eq!(&sub.recv_publish().await.payload[..], b"second");
        sub.expect_silence().await;
    }
}

// MQTT-3.3.4-9 / 4.3.3 (v5): a PUBREC with a failure reason (>= 0x80) ends the QoS 2 flow
// (no PUBREL follows) and frees the Receive Maximum slot for the next message.
#[tokio::test]
async fn v5_pubrec_error_ends_flow_and_frees_slot() {
    let m = Midge::start();
    let mut conn = connect_packet(V5, "refuser", true);
    conn.properties.receive_maximum = Some(1);
    let (mut sub, _) = connect_ok(&m, conn).await;
    sub.subscribe("rej/t", QoS::ExactlyOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("rej/t", QoS::ExactlyOnce, b"a").await;
    publ.publish("rej/t", QoS::ExactlyOnce, b"b").await;
    let a = sub.expect_publish().await;
    assert_eq!(&a.payload[..], b"a");
    let mut rec = Ack::new(AckKind::PubRec, a.packet_id.unwrap());
    rec.reason = ReasonCode::UnspecifiedError;
    sub.send(&Packet::Ack(rec)).await;
    // Next comes message "b" (not a PUBREL for "a").
    let b = sub.expect_publish().await;
    assert_eq!(&b.payload[..], b"b");
    sub.ack(&b).await;
    sub.expect_silence().await;
}

// MQTT-3.3.4-9 (v5): an outgoing QoS 2 message occupies its Receive Maximum slot until PUBCOMP,
// not just until PUBREC: with Receive Maximum 1 the second message waits for the first's
// PUBCOMP.
#[tokio::test]
async fn v5_qos2_slot_held_until_pubcomp() {
    let m = Midge::start();
    let mut conn = connect_packet(V5, "one-at-a-time", true);
    conn.properties.receive_maximum = Some(1);
    let (mut sub, _) = connect_ok(&m, conn).await;
    sub.subscribe("slot/t", QoS::ExactlyOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("slot/t", QoS::ExactlyOnce, b"1").await;
    publ.publish("slot/t", QoS::ExactlyOnce, b"2").await;
    let first = sub.expect_publish().await;
    assert_eq!(&first.payload[..], b"1");
    let id = first.packet_id.unwrap();
    sub.send(&Packet::Ack(Ack::new(AckKind::PubRec, id))).await;
    sub.expect_ack(AckKind::PubRel, id).await;
    sub.expect_silence().await;
    sub.send(&Packet::Ack(Ack::new(AckKind::PubComp, id))).await;
    let second = sub.recv_publish().await;
    assert_eq!(&second.payload[..], b"2");
}

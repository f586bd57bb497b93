//! Retained messages: set, replace, clear, the RETAIN flag on delivery, Retain As Published,
//! Retain Handling, wildcards and `$SYS`.

use crate::connect::{connect, publish, subscribe_packet, Client, V3, V5};
use crate::harness::{v4, v5, Midge};
use bytes::Bytes;
use midge_codec::{ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
use std::collections::BTreeSet;
use std::time::Duration;

async fn retain(c: &mut Client, topic: &str, qos: QoS, payload: &[u8]) {
    let mut p = publish(topic, qos, (qos != QoS::AtMostOnce).then_some(1), payload);
    p.retain = true;
    c.send_publish(p).await;
}

async fn set_replace_clear(v: ProtocolVersion) {
    let m = Midge::start();
    let mut publ = connect(&m, v, "pub").await;

    retain(&mut publ, "ret/a", QoS::AtLeastOnce, b"first").await;
    let mut s = connect(&m, v, "s1").await;
    s.subscribe("ret/a", QoS::AtLeastOnce).await;
    let p = s.recv_publish().await;
    assert_eq!((&*p.topic, &p.payload[..]), ("ret/a", &b"first"[..]));
    assert!(p.retain, "retained message sent on subscribe has RETAIN=1");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    s.expect_silence().await;

    // Replace.
    retain(&mut publ, "ret/a", QoS::AtMostOnce, b"second").await;
    let live = s.recv_publish().await;
    assert_eq!(&live.payload[..], b"second");
    let mut s2 = connect(&m, v, "s2").await;
    s2.subscribe("ret/a", QoS::AtLeastOnce).await;
    let p = s2.recv_publish().await;
    assert_eq!(&p.payload[..], b"second");
    assert!(p.retain);
    assert_eq!(
        p.qos,
        QoS::AtMostOnce,
        "retained QoS is the stored message's"
    );
    s2.expect_silence().await;

    // A retained publish with RETAIN=0 neither replaces nor clears.
    publ.publish("ret/a", QoS::AtMostOnce, b"not retained")
        .await;
    for c in [&mut s, &mut s2] {
        let p = c.recv_publish().await;
        assert_eq!((&p.payload[..], p.retain), (&b"not retained"[..], false));
    }
    let mut s3 = connect(&m, v, "s3").await;
    s3.subscribe("ret/a", QoS::AtLeastOnce).await;
    assert_eq!(&s3.recv_publish().await.payload[..], b"second");
    s3.expect_silence().await;

    // Clear with an empty payload: delivered normally to existing subscribers, then gone.
    retain(&mut publ, "ret/a", QoS::AtLeastOnce, b"").await;
    let live = s2.recv_publish().await;
    assert!(live.payload.is_empty());
    let mut s4 = connect(&m, v, "s4").await;
    s4.subscribe("ret/a", QoS::AtLeastOnce).await;
    s4.expect_silence().await;
}

// 3.1.1: MQTT-3.3.1-5 (store), MQTT-3.3.1-6 (sent on new subscription), MQTT-3.3.1-8
// (RETAIN=1 when sent for a new subscription), MQTT-3.3.1-10 / -11 (empty payload removes it and
// is not stored), MQTT-3.3.1-12 (RETAIN=0 publish does not touch the retained message).
#[tokio::test]
async fn v3_retained_set_replace_clear() {
    set_replace_clear(V3).await;
}

// v5: MQTT-3.3.1-5 (store/replace), MQTT-3.3.1-6 / -7 (empty payload removes and is not
// stored), MQTT-3.3.1-8 (RETAIN=0 does not touch it), MQTT-3.3.1-9 (sent on subscribe).
#[tokio::test]
async fn v5_retained_set_replace_clear() {
    set_replace_clear(V5).await;
}

// MQTT-3.3.1-9 (3.1.1): a message forwarded to an established subscription has RETAIN=0,
// however it was published; MQTT-3.3.1-8: RETAIN=1 for a message sent because of a new
// subscription. Checked with rumqttc.
#[tokio::test]
async fn v3_retain_flag_on_normal_delivery_is_cleared() {
    let m = Midge::start();
    let (sub, mut rx) = v4::connect(&m, "flag-sub").await;
    v4::subscribe(&sub, &mut rx, "flag/t", v4::QoS::AtLeastOnce).await;
    let (publ, _prx) = v4::connect(&m, "flag-pub").await;
    publ.publish("flag/t", v4::QoS::AtLeastOnce, true, "kept")
        .await
        .unwrap();
    let p = v4::publish(&mut rx).await;
    assert_eq!(&p.payload[..], b"kept");
    assert!(!p.retain, "live delivery must have RETAIN=0");

    let (late, mut late_rx) = v4::connect(&m, "flag-late").await;
    v4::subscribe(&late, &mut late_rx, "flag/t", v4::QoS::AtLeastOnce).await;
    let p = v4::publish(&mut late_rx).await;
    assert_eq!(&p.payload[..], b"kept");
    assert!(
        p.retain,
        "delivery for a new subscription must have RETAIN=1"
    );
}

// MQTT-3.3.1-12 (v5): Retain As Published 0 -> RETAIN=0 on forwarded messages;
// MQTT-3.3.1-13: Retain As Published 1 -> RETAIN as published.
#[tokio::test]
async fn v5_retain_as_published() {
    let m = Midge::start();
    let mut rap0 = connect(&m, V5, "rap0").await;
    rap0.subscribe("rap/t", QoS::AtLeastOnce).await;
    let mut rap1 = connect(&m, V5, "rap1").await;
    let opts = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_as_published: true,
        ..Default::default()
    };
    rap1.subscribe_with(subscribe_packet(1, "rap/t", opts))
        .await;

    let mut publ = connect(&m, V5, "rap-pub").await;
    retain(&mut publ, "rap/t", QoS::AtLeastOnce, b"r").await;
    publ.publish("rap/t", QoS::AtLeastOnce, b"n").await;

    let (a, b) = (rap0.recv_publish().await, rap0.recv_publish().await);
    assert_eq!((&a.payload[..], a.retain), (&b"r"[..], false));
    assert_eq!((&b.payload[..], b.retain), (&b"n"[..], false));
    let (a, b) = (rap1.recv_publish().await, rap1.recv_publish().await);
    assert_eq!((&a.payload[..], a.retain), (&b"r"[..], true));
    assert_eq!((&b.payload[..], b.retain), (&b"n"[..], false));

    // rumqttc with preserve_retain agrees.
    let (c, mut rx) = v5::connect(&m, "rap-rumq").await;
    let mut f = rumqttc::v5::mqttbytes::v5::Filter::new("rap/t", v5::QoS::AtMostOnce);
    f.preserve_retain = true;
    f.retain_forward_rule = rumqttc::v5::mqttbytes::v5::RetainForwardRule::Never;
    c.subscribe_many(vec![f]).await.unwrap();
    crate::harness::next_matching(&mut rx, |p| {
        matches!(p, v5::Packet::SubAck(_)).then_some(())
    })
    .await
    .unwrap();
    retain(&mut publ, "rap/t", QoS::AtMostOnce, b"r2").await;
    let p = v5::publish(&mut rx).await;
    assert_eq!((&p.payload[..], p.retain), (&b"r2"[..], true));
}

fn rh(handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_handling: handling,
        ..Default::default()
    }
}

// MQTT-3.3.1-9 (Retain Handling 0: sent on every subscribe), MQTT-3.3.1-10 (1: only if the
// subscription did not exist), MQTT-3.3.1-11 (2: never).
#[tokio::test]
async fn v5_retain_handling() {
    let m = Midge::start();
    let mut publ = connect(&m, V5, "rh-pub").await;
    retain(&mut publ, "rh/t", QoS::AtLeastOnce, b"ret").await;

    let mut c = connect(&m, V5, "rh0").await;
    for _ in 0..2 {
        c.subscribe_with(subscribe_packet(
            1,
            "rh/t",
            rh(RetainHandling::SendAtSubscribe),
        ))
        .await;
        let p = c.recv_publish().await;
        assert_eq!((&p.payload[..], p.retain), (&b"ret"[..], true));
    }
    c.expect_silence().await;

    let mut c = connect(&m, V5, "rh1").await;
    c.subscribe_with(subscribe_packet(1, "rh/t", rh(RetainHandling::SendIfNew)))
        .await;
    let p = c.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"ret"[..], true));
    c.subscribe_with(subscribe_packet(2, "rh/t", rh(RetainHandling::SendIfNew)))
        .await;
    c.expect_silence().await;

    let mut c = connect(&m, V5, "rh2").await;
    c.subscribe_with(subscribe_packet(1, "rh/t", rh(RetainHandling::DoNotSend)))
        .await;
    c.expect_silence().await;
    // The subscription itself works.
    publ.publish("rh/t", QoS::AtLeastOnce, b"live").await;
    let p = c.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"live"[..], false));
}

/// Collects PUBLISH packets until none arrives for the quiet period.
async fn drain_publishes(c: &mut Client) -> Vec<midge_codec::Publish> {
    let mut out = Vec::new();
    loop {
        match c.raw.recv_within(Duration::from_millis(700)).await {
            Err(()) => return out,
            Ok(Some(midge_codec::Packet::Publish(p))) => {
                c.ack(&p).await;
                out.push(p)
            }
            Ok(other) => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

async fn wildcard_gets_all_matching(v: ProtocolVersion) {
    let m = Midge::start();
    let mut publ = connect(&m, v, "pub").await;
    for t in ["w/a", "w/b", "w/c/d", "x/a", "w"] {
        retain(&mut publ, t, QoS::AtLeastOnce, t.as_bytes()).await;
    }
    let mut c = connect(&m, v, "wild").await;
    c.subscribe("w/#", QoS::AtLeastOnce).await;
    let got: BTreeSet<(String, Bytes)> = drain_publishes(&mut c)
        .await
        .into_iter()
        .map(|p| {
            assert!(p.retain);
            (p.topic.to_string(), p.payload)
        })
        .collect();
    let want: BTreeSet<(String, Bytes)> = ["w", "w/a", "w/b", "w/c/d"]
        .into_iter()
        .map(|t| (t.to_string(), Bytes::from(t)))
        .collect();
    assert_eq!(got, want);

    let mut c = connect(&m, v, "plus").await;
    c.subscribe("+/a", QoS::AtMostOnce).await;
    let got: BTreeSet<String> = drain_publishes(&mut c)
        .await
        .into_iter()
        .map(|p| p.topic.to_string())
        .collect();
    assert_eq!(got, BTreeSet::from(["w/a".to_string(), "x/a".to_string()]));
}

// MQTT-3.3.1-6 (3.1.1) / 4.7.1.2: a wildcard subscription gets every matching retained message
// (`w/#` also matches the parent `w`), exactly once each.
#[tokio::test]
async fn v3_wildcard_subscribe_gets_all_matching_retained() {
    wildcard_gets_all_matching(V3).await;
}

// MQTT-3.3.1-9 (v5) / 4.7.1.2: as above for v5.
#[tokio::test]
async fn v5_wildcard_subscribe_gets_all_matching_retained() {
    wildcard_gets_all_matching(V5).await;
}

// MQTT-4.7.2-1: a filter starting with a wildcard does not match topics starting with `$`, so
// `#` gets no `$SYS` retained messages (nor live ones), while `$SYS/#` does.
#[tokio::test]
async fn hash_never_gets_sys_retained() {
    let m = Midge::start_with(&[("MIDGE__BROKER__SYS_INTERVAL_SECS", "1")]);
    let mut sys = connect(&m, V3, "sys").await;
    sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let p = sys.expect_publish().await;
    assert!(p.topic.starts_with("$SYS/"), "{p:?}");

    let mut publ = connect(&m, V3, "pub").await;
    retain(&mut publ, "normal/t", QoS::AtMostOnce, b"n").await;
    for filter in ["#", "+/broker/#"] {
        let mut c = connect(&m, V5, &format!("all {filter}")).await;
        c.subscribe(filter, QoS::AtMostOnce).await;
        // Wait past a $SYS interval.
        let mut got = drain_publishes(&mut c).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        got.extend(drain_publishes(&mut c).await);
        let topics: Vec<String> = got.iter().map(|p| p.topic.to_string()).collect();
        assert!(
            topics.iter().all(|t| !t.starts_with('$')),
            "{filter}: {topics:?}"
        );
        if filter == "#" {
            assert_eq!(topics, vec!["normal/t".to_string()]);
        }
    }
}

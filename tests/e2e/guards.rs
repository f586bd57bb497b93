//! Sandbox guards over real sockets: connections per IP address, shallow wildcards, topic
//! depth and subscription quota (each counted), publish rates and overload mode, each with the reason code
//! the client sees and the metric that counts it.

use crate::connect::{
    connect, connect_packet, connect_with, publish, qos_opts, subscribe_packet, V3, V5,
};
use crate::harness::{Midge, WAIT};
use midge_codec::{AckKind, Packet, QoS, ReasonCode};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn connections_beyond_the_per_ip_limit_are_closed_and_the_rest_carry_on() {
    let m = Midge::start_with(&[("MIDGE__LIMITS__MAX_CONNECTIONS_PER_IP", "2")]);
    let mut a = connect(&m, V5, "a").await;
    let b = connect(&m, V5, "b").await;
    // The third is accepted and closed at once, before any CONNACK.
    let mut third = tokio::net::TcpStream::connect(m.addr()).await.expect("tcp");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, third.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "no bytes, just the close");
    // When one leaves, a new one gets in.
    b.disconnect().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut probe = crate::harness::RawClient::connect(m.addr(), V5).await;
        probe
            .send(&Packet::Connect(Box::new(crate::connect::connect_packet(
                V5, "c", true,
            ))))
            .await;
        if let Some(Packet::ConnAck(ack)) = probe.recv().await {
            assert_eq!(ack.reason, ReasonCode::Success);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never admitted again"
        );
    }
    a.publish("still/working", QoS::AtLeastOnce, b"yes").await;
    assert!(m.log().contains("max_connections_per_ip"), "{}", m.log());
}

#[tokio::test]
async fn shallow_wildcards_deep_topics_and_too_many_subscriptions_are_refused() {
    let m = Midge::start_with(&[
        ("MIDGE__BROKER__MIN_WILDCARD_DEPTH", "1"),
        ("MIDGE__BROKER__MAX_TOPIC_LEVELS", "4"),
        ("MIDGE__BROKER__MAX_SUBSCRIPTIONS_PER_CLIENT", "2"),
    ]);
    let mut c = connect(&m, V5, "c").await;
    let mut sub = subscribe_packet(1, "#", qos_opts(QoS::AtMostOnce));
    for filter in ["+/x", "a/b/c/d/e", "ok/#", "ok2/#", "third"] {
        sub.filters
            .push(subscribe_packet(1, filter, qos_opts(QoS::AtMostOnce)).filters[0].clone());
    }
    let suback = c.subscribe_with(sub).await;
    assert_eq!(
        suback.reasons,
        vec![
            ReasonCode::NotAuthorized,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::Success,
            ReasonCode::Success,
            ReasonCode::QuotaExceeded,
        ]
    );
    // A publish deeper than max_topic_levels: PUBACK 0x90 Topic Name invalid.
    c.send(&Packet::Publish(publish(
        "ok/1/2/3/4",
        QoS::AtLeastOnce,
        Some(9),
        b"x",
    )))
    .await;
    let ack = c.expect_ack(AckKind::PubAck, 9).await;
    assert_eq!(ack.reason, ReasonCode::TopicNameInvalid);
    // v3 clients get 0x80 for the refused filter.
    let mut v3 = connect(&m, V3, "v3").await;
    let suback = v3
        .subscribe_with(subscribe_packet(2, "#", qos_opts(QoS::AtMostOnce)))
        .await;
    assert_eq!(suback.reasons, vec![ReasonCode::UnspecifiedError]);
    // Each refusal is counted under its guard: shallow "#", "+/x" and v3's "#"; the deep
    // filter and the deep topic; the filter over quota.
    let counters = |s: &prometheus_parse::Scrape| {
        [
            "min_wildcard_depth",
            "max_topic_levels",
            "max_subscriptions_per_client",
        ]
        .map(|r| crate::metrics::value(s, "midge_limit_rejections_total", &[("reason", r)]))
    };
    let s =
        crate::metrics::scrape_until(&m, "the guard counters", |s| counters(s) == [3.0, 2.0, 1.0])
            .await;
    assert_eq!(counters(&s), [3.0, 2.0, 1.0]);
}

// A v5 client publishing faster than `limits.max_publish_rate` with `publish_rate_action =
// "disconnect"` gets DISCONNECT 0x96 Message rate too high (MQTT 5, 3.14.2.1); a client within
// its rate carries on and its messages arrive.
#[tokio::test]
async fn a_v5_client_over_its_publish_rate_is_disconnected_with_0x96() {
    let m = Midge::start_with(&[
        ("MIDGE__LIMITS__MAX_PUBLISH_RATE", "10"),
        ("MIDGE__LIMITS__PUBLISH_BURST_SECS", "1"),
        ("MIDGE__LIMITS__PUBLISH_RATE_ACTION", "disconnect"),
    ]);
    let mut sub = connect(&m, V5, "rate-sub").await;
    sub.subscribe("rate/#", QoS::AtLeastOnce).await;
    let mut calm = connect(&m, V5, "calm").await;
    crate::guards_more::flood_until_0x96(&m, "flood", "rate/flood", b"x", 100).await;
    calm.publish("rate/calm", QoS::AtLeastOnce, b"still here")
        .await;
    let mut got_calm = false;
    while !got_calm {
        let p = sub.recv_publish().await;
        got_calm = &*p.topic == "rate/calm";
    }
    let s = crate::metrics::scrape(&m).await;
    let disconnected = crate::metrics::value(
        &s,
        "midge_limit_rejections_total",
        &[("reason", "publish_rate_disconnected")],
    );
    assert_eq!(disconnected, 1.0);
}

// With the default `publish_rate_action = "throttle"` a client over its rate is slowed by
// pausing reads, not refused: all 120 QoS 1 messages are acknowledged and delivered in order,
// and the throttle shows in the metrics.
#[tokio::test]
async fn a_client_over_its_publish_rate_is_throttled_and_loses_nothing() {
    let m = Midge::start_with(&[
        ("MIDGE__LIMITS__MAX_PUBLISH_RATE", "40"),
        ("MIDGE__LIMITS__PUBLISH_BURST_SECS", "1"),
    ]);
    let mut sub = connect(&m, V5, "throttle-sub").await;
    sub.subscribe("throttle/#", QoS::AtLeastOnce).await;
    let mut fast = connect(&m, V3, "fast").await;
    for id in 1..=120u16 {
        fast.send(&Packet::Publish(publish(
            "throttle/t",
            QoS::AtLeastOnce,
            Some(id),
            &id.to_be_bytes(),
        )))
        .await;
    }
    for id in 1..=120u16 {
        fast.expect_ack(AckKind::PubAck, id).await;
    }
    for id in 1..=120u16 {
        let p = sub.recv_publish().await;
        assert_eq!(&p.payload[..], id.to_be_bytes(), "in order, none lost");
        sub.ack(&p).await;
    }
    let s = crate::metrics::scrape(&m).await;
    let throttled = crate::metrics::value(
        &s,
        "midge_limit_rejections_total",
        &[("reason", "publish_rate_throttled")],
    );
    assert!(throttled >= 1.0, "throttled {throttled} times");
}

// Overload mode: while the event loop lags more than `limits.overload_lag_ms` (here: the
// process is stopped with SIGSTOP for a second), new clients get CONNACK 0x89 Server busy
// (v3: return code 3, Server unavailable) and connected ones are still served; once the loop
// keeps up again new clients are admitted.
#[tokio::test]
async fn an_overloaded_broker_refuses_new_clients_with_server_busy() {
    let m = Midge::start_with(&[("MIDGE__LIMITS__OVERLOAD_LAG_MS", "300")]);
    let mut old = connect(&m, V5, "old").await;
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &m.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    signal("-STOP");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    signal("-CONT");
    crate::metrics::scrape_until(&m, "overload mode", |s| {
        crate::metrics::value(s, "midge_overloaded", &[]) == 1.0
    })
    .await;
    let (_, ack) = connect_with(&m, connect_packet(V5, "new-v5", true)).await;
    assert_eq!(ack.reason, ReasonCode::ServerBusy);
    let (_, ack) = connect_with(&m, connect_packet(V3, "new-v3", true)).await;
    assert_eq!(
        ack.reason,
        ReasonCode::ServerUnavailable,
        "v3 return code 3"
    );
    old.publish("overload/old", QoS::AtLeastOnce, b"served")
        .await;
    crate::metrics::scrape_until(&m, "overload over", |s| {
        crate::metrics::value(s, "midge_overloaded", &[]) == 0.0
    })
    .await;
    connect(&m, V5, "after").await;
    let s = crate::metrics::scrape(&m).await;
    assert_eq!(
        crate::metrics::value(
            &s,
            "midge_limit_rejections_total",
            &[("reason", "overload")]
        ),
        2.0
    );
    assert_eq!(
        crate::metrics::value(&s, "midge_overload_entered_total", &[]),
        1.0
    );
    assert!(m.log().contains("Overload"), "{}", m.log());
}

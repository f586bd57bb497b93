//! Sandbox guards over real sockets: connections per IP address, shallow wildcards, topic
//! depth and subscription quota, each with the reason code the client sees.

use crate::connect::{connect, publish, qos_opts, subscribe_packet, V3, V5};
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
}

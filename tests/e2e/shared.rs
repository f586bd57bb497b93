//! Shared subscriptions (`$share/{group}/{filter}`, MQTT 5 section 4.8.2).

use crate::connect::{connect, publish, subscribe_packet, Client, V3, V5};
use crate::harness::{v5, Midge};
use midge_codec::{QoS, ReasonCode, SubscriptionOptions};
use std::collections::BTreeSet;
use std::time::Duration;

/// Collects PUBLISH packets (acknowledging them) until none arrives for 700 ms.
async fn drain(c: &mut Client) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match c.raw.recv_within(Duration::from_millis(700)).await {
            Err(()) => return out,
            Ok(Some(midge_codec::Packet::Publish(p))) => {
                c.ack(&p).await;
                out.push(p.payload.to_vec());
            }
            Ok(other) => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

// 4.8.2 (v5): each message published to a shared subscription's topic is sent to exactly one
// member of the group; with three members and 30 messages every member gets some, the total
// is exactly 30 and no message is delivered twice.
#[tokio::test]
async fn shared_subscription_spreads_messages() {
    let m = Midge::start();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut c = connect(&m, V5, &format!("member{i}")).await;
        c.subscribe("$share/g/sh/t", QoS::AtLeastOnce).await;
        members.push(c);
    }
    let mut publ = connect(&m, V5, "pub").await;
    const N: u16 = 30;
    for i in 0..N {
        publ.send_publish(publish(
            "sh/t",
            QoS::AtLeastOnce,
            Some(i + 1),
            &i.to_be_bytes(),
        ))
        .await;
    }
    let mut all = Vec::new();
    let mut counts = Vec::new();
    for c in members.iter_mut() {
        let got = drain(c).await;
        counts.push(got.len());
        all.extend(got);
    }
    let distinct: BTreeSet<Vec<u8>> = all.iter().cloned().collect();
    assert_eq!(
        all.len(),
        N as usize,
        "total deliveries, per member {counts:?}"
    );
    assert_eq!(
        distinct.len(),
        N as usize,
        "duplicates delivered: {counts:?}"
    );
    assert!(
        counts.iter().all(|&n| n > 0),
        "a member got nothing: {counts:?}"
    );
}

// 4.8.2 (v5): two different share groups each get every message once; a member with QoS 0
// gets its messages at QoS 0 (MQTT-3.8.4-8).
#[tokio::test]
async fn each_group_gets_every_message() {
    let m = Midge::start();
    let mut a = connect(&m, V5, "a").await;
    a.subscribe("$share/ga/grp/t", QoS::AtLeastOnce).await;
    let mut b = connect(&m, V5, "b").await;
    b.subscribe("$share/gb/grp/+", QoS::AtMostOnce).await;
    let mut publ = connect(&m, V5, "pub").await;
    for i in 0..5u8 {
        publ.send_publish(publish("grp/t", QoS::AtLeastOnce, Some(i as u16 + 1), &[i]))
            .await;
    }
    for i in 0..5u8 {
        let p = a.recv_publish().await;
        assert_eq!((&p.payload[..], p.qos), (&[i][..], QoS::AtLeastOnce));
        let p = b.recv_publish().await;
        assert_eq!((&p.payload[..], p.qos), (&[i][..], QoS::AtMostOnce));
    }
    a.expect_silence().await;
    b.expect_silence().await;
}

// 4.8.2 (v5): a shared subscription and a normal subscription to the same topic each get a
// copy; the shared copy goes to exactly one member.
#[tokio::test]
async fn shared_and_normal_both_get_a_copy() {
    let m = Midge::start();
    let mut shared1 = connect(&m, V5, "shared1").await;
    shared1.subscribe("$share/g/mix/t", QoS::AtLeastOnce).await;
    let mut shared2 = connect(&m, V5, "shared2").await;
    shared2.subscribe("$share/g/mix/t", QoS::AtLeastOnce).await;
    let mut normal = connect(&m, V3, "normal").await;
    normal.subscribe("mix/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("mix/t", QoS::AtLeastOnce, b"both").await;

    assert_eq!(&normal.recv_publish().await.payload[..], b"both");
    let n1 = drain(&mut shared1).await;
    let n2 = drain(&mut shared2).await;
    assert_eq!(n1.len() + n2.len(), 1, "shared copies: {n1:?} {n2:?}");
    normal.expect_silence().await;
}

// 4.8.2 (v5): retained messages are not sent to a session when it establishes a shared
// subscription; the subscription still receives new messages.
#[tokio::test]
async fn no_retained_to_shared_subscription() {
    let m = Midge::start();
    let mut publ = connect(&m, V5, "pub").await;
    let mut r = publish("kept/t", QoS::AtLeastOnce, Some(1), b"retained");
    r.retain = true;
    publ.send_publish(r).await;

    let mut c = connect(&m, V5, "member").await;
    c.subscribe("$share/g/kept/t", QoS::AtLeastOnce).await;
    c.expect_silence().await;
    publ.publish("kept/t", QoS::AtLeastOnce, b"live").await;
    let p = c.recv_publish().await;
    assert_eq!((&p.payload[..], p.retain), (&b"live"[..], false));
}

// MQTT-3.8.3-4 (v5): No Local on a shared subscription is a Protocol Error: DISCONNECT 0x82.
#[tokio::test]
async fn no_local_on_shared_subscription_is_protocol_error() {
    let m = Midge::start();
    let mut c = connect(&m, V5, "nl").await;
    let opts = SubscriptionOptions {
        qos: QoS::AtMostOnce,
        no_local: true,
        ..Default::default()
    };
    c.send(&midge_codec::Packet::Subscribe(subscribe_packet(
        1,
        "$share/g/nl/t",
        opts,
    )))
    .await;
    c.expect_disconnect(ReasonCode::ProtocolError).await;
}

// 4.8.2 (v5) with rumqttc v5 members: an unsubscribed member no longer gets messages.
#[tokio::test]
async fn rumqttc_shared_unsubscribe_leaves_group() {
    let m = Midge::start();
    let (c1, mut rx1) = v5::connect(&m, "rm1").await;
    v5::subscribe(&c1, &mut rx1, "$share/g/u/t", v5::QoS::AtMostOnce).await;
    let (c2, mut rx2) = v5::connect(&m, "rm2").await;
    v5::subscribe(&c2, &mut rx2, "$share/g/u/t", v5::QoS::AtMostOnce).await;
    c2.unsubscribe("$share/g/u/t").await.unwrap();
    crate::harness::next_matching(&mut rx2, |p| {
        matches!(p, v5::Packet::UnsubAck(_)).then_some(())
    })
    .await
    .unwrap();
    let mut publ = connect(&m, V5, "pub").await;
    for i in 0..6u8 {
        publ.publish("u/t", QoS::AtMostOnce, &[i]).await;
    }
    for i in 0..6u8 {
        let p = v5::publish(&mut rx1).await;
        assert_eq!(&p.payload[..], &[i]);
    }
    crate::harness::nothing_matching(&mut rx2, |p| matches!(p, v5::Packet::Publish(_))).await;
}

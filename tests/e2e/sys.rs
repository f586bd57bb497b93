//! `$SYS` topics, published every `broker.sys_interval` seconds.

use crate::connect::{connect, Client, V3, V5};
use crate::harness::{v4, Midge};
use midge_codec::{Packet, QoS};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const VERSION: &str = "$SYS/broker/version";
const UPTIME: &str = "$SYS/broker/uptime";
const CONNECTED: &str = "$SYS/broker/clients/connected";
const RECEIVED: &str = "$SYS/broker/messages/received";
const SENT: &str = "$SYS/broker/messages/sent";
const SUBSCRIPTIONS: &str = "$SYS/broker/subscriptions/count";

/// Reads `$SYS` messages until every topic in `want` was seen at least once since the call and
/// `done` accepts the latest values; returns the latest value of every topic.
async fn sys_values(
    c: &mut Client,
    want: &[&str],
    mut done: impl FnMut(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut seen: HashMap<String, String> = HashMap::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.raw.recv_within(left).await {
            Ok(Some(Packet::Publish(p))) => {
                assert!(p.topic.starts_with("$SYS/"), "{p:?}");
                let v = String::from_utf8(p.payload.to_vec()).expect("$SYS payload is UTF-8");
                seen.insert(p.topic.to_string(), v);
                if want.iter().all(|t| seen.contains_key(*t)) && done(&seen) {
                    return seen;
                }
            }
            Ok(other) => panic!("expected a $SYS PUBLISH, got {other:?}"),
            Err(()) => panic!("timed out; $SYS values seen: {seen:?}"),
        }
    }
}

/// The leading integer of a `$SYS` value ("12" or "12 seconds").
fn num(values: &HashMap<String, String>, topic: &str) -> u64 {
    let v = &values[topic];
    v.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{topic} = {v:?} is not a number"))
}

// MQTT 4.7.2 (`$` topics are the server's) with sys_interval = 1: the broker publishes its
// version, uptime, connected clients, message counters and subscription count with sane values.
#[tokio::test]
async fn sys_topics_have_sane_values() {
    let m = Midge::start_with(&[("MIDGE__BROKER__SYS_INTERVAL_SECS", "1")]);
    let mut c = connect(&m, V3, "sys-watch").await;
    c.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let all = [VERSION, UPTIME, CONNECTED, RECEIVED, SENT, SUBSCRIPTIONS];
    // Values are retained and re-published when they change, so the first ones seen may predate
    // this client: wait until they show it (the only client, with one subscription).
    let v = sys_values(&mut c, &all, |s| {
        num(s, CONNECTED) == 1 && num(s, SUBSCRIPTIONS) == 1
    })
    .await;
    let version = &v[VERSION];
    assert!(version.starts_with("midge"), "version {version:?}");
    assert_eq!(num(&v, RECEIVED), 0, "{v:?}");
    let up1 = num(&v, UPTIME);
    assert!(up1 < 60, "uptime {up1} for a broker started seconds ago");

    // Traffic moves the counters: 5 messages published to a subscriber.
    let before_tx = num(&v, SENT);
    let mut sub = connect(&m, V5, "counted-sub").await;
    sub.subscribe("count/t", QoS::AtMostOnce).await;
    let mut publ = connect(&m, V5, "counted-pub").await;
    for _ in 0..5 {
        publ.publish("count/t", QoS::AtLeastOnce, b"c").await;
        sub.expect_publish().await;
    }
    let v = sys_values(&mut c, &[RECEIVED, SENT, UPTIME, CONNECTED], |s| {
        num(s, RECEIVED) == 5 && num(s, SENT) >= before_tx + 5 && num(s, CONNECTED) == 3
    })
    .await;
    assert!(num(&v, UPTIME) >= up1);
}

// clients/connected follows connects and disconnects.
#[tokio::test]
async fn sys_clients_connected_tracks_connections() {
    let m = Midge::start_with(&[("MIDGE__BROKER__SYS_INTERVAL_SECS", "1")]);
    let mut c = connect(&m, V3, "sys-watch").await;
    c.subscribe("$SYS/broker/clients/connected", QoS::AtMostOnce)
        .await;
    // The first value seen may be a retained one from before this client connected.
    sys_values(&mut c, &[CONNECTED], |s| num(s, CONNECTED) == 1).await;
    let n = 1;
    let (extra, _rx) = v4::connect(&m, "extra").await;
    let (extra2, _rx2) = v4::connect(&m, "extra2").await;
    sys_values(&mut c, &[CONNECTED], |s| num(s, CONNECTED) == n + 2).await;
    extra.disconnect().await.unwrap();
    extra2.disconnect().await.unwrap();
    sys_values(&mut c, &[CONNECTED], |s| num(s, CONNECTED) == n).await;
}

// subscriptions/count follows SUBSCRIBE and UNSUBSCRIBE.
#[tokio::test]
async fn sys_subscription_count_tracks_subscriptions() {
    let m = Midge::start_with(&[("MIDGE__BROKER__SYS_INTERVAL_SECS", "1")]);
    let mut c = connect(&m, V3, "sys-watch").await;
    c.subscribe(SUBSCRIPTIONS, QoS::AtMostOnce).await;
    // Only this client's subscription exists (the first value seen may predate it).
    sys_values(&mut c, &[SUBSCRIPTIONS], |s| num(s, SUBSCRIPTIONS) == 1).await;
    let n = 1;
    let mut other = connect(&m, V5, "subscriber").await;
    for f in ["a/1", "a/2", "a/+"] {
        other.subscribe(f, QoS::AtMostOnce).await;
    }
    sys_values(&mut c, &[SUBSCRIPTIONS], |s| num(s, SUBSCRIPTIONS) == n + 3).await;
    other
        .send(&Packet::Unsubscribe(midge_codec::Unsubscribe {
            packet_id: 9,
            filters: vec!["a/1".into()],
            user_properties: vec![],
        }))
        .await;
    match other.next().await {
        Packet::UnsubAck(u) => assert_eq!(u.packet_id, 9),
        p => panic!("expected UNSUBACK, got {p:?}"),
    }
    sys_values(&mut c, &[SUBSCRIPTIONS], |s| num(s, SUBSCRIPTIONS) == n + 2).await;
}

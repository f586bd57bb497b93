//! `$SYS` topics.

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{Publish, QoS, ReasonCode};
use std::time::Duration;

fn sys_config() -> BrokerConfig {
    BrokerConfig {
        sys_interval: Duration::from_secs(10),
        version: "midge 0.1.0".into(),
        ..config()
    }
}

/// The payload published on `topic` among `out`, as text; fails if there is none.
fn payload_of(out: &[Publish], topic: &str) -> String {
    out.iter()
        .find(|p| &*p.topic == topic)
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .unwrap_or_else(|| panic!("{topic} not published"))
}

#[test]
fn published_retained_on_first_tick_to_sys_subscribers_only() {
    // MQTT-4.7.2-1: `#` does not match `$SYS/...`; `$SYS/#` does.
    let mut h = H::with(sys_config());
    h.connect(1, "sys", V5, true);
    h.connect(2, "all", V5, true);
    h.subscribe(1, "$SYS/#", QoS::AtMostOnce);
    h.subscribe(2, "#", QoS::AtMostOnce);
    let actions = h.tick();
    assert!(publishes(&actions, 2).is_empty());
    let out = publishes(&actions, 1);
    let get = |topic: &str| {
        out.iter()
            .find(|p| &*p.topic == topic)
            .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
    };
    assert_eq!(get("$SYS/broker/version").as_deref(), Some("midge 0.1.0"));
    assert_eq!(get("$SYS/broker/uptime").as_deref(), Some("0 seconds"));
    assert_eq!(get("$SYS/broker/clients/connected").as_deref(), Some("2"));
    assert_eq!(get("$SYS/broker/clients/total").as_deref(), Some("2"));
    assert_eq!(get("$SYS/broker/clients/maximum").as_deref(), Some("2"));
    assert_eq!(get("$SYS/broker/subscriptions/count").as_deref(), Some("2"));
    assert_eq!(get("$SYS/broker/messages/received").as_deref(), Some("0"));
    assert!(get("$SYS/broker/messages/sent").is_some());
    assert!(get("$SYS/broker/retained messages/count").is_some());
    // Retained: a later subscriber gets them.
    h.connect(3, "late", V5, true);
    let (_, actions) = h.subscribe_with(3, "$SYS/broker/version", opts(QoS::AtMostOnce), None);
    assert_eq!(payloads(&actions, 3), vec!["midge 0.1.0"]);
}

#[test]
fn republished_every_interval_only_when_changed() {
    let mut h = H::with(sys_config());
    h.connect(1, "sys", V5, true);
    h.subscribe(1, "$SYS/#", QoS::AtMostOnce);
    h.tick();
    h.advance_secs(5);
    assert!(h.tick().is_empty(), "not due yet");
    h.advance_secs(5);
    let topics: Vec<String> = publishes(&h.tick(), 1)
        .iter()
        .map(|p| p.topic.to_string())
        .collect();
    assert!(topics.contains(&"$SYS/broker/uptime".to_string()));
    assert!(
        topics.contains(&"$SYS/broker/messages/sent".to_string()),
        "changed"
    );
    assert!(
        !topics.contains(&"$SYS/broker/version".to_string()),
        "unchanged"
    );
}

#[test]
fn disabled_with_zero_interval() {
    let mut h = H::new();
    h.connect(1, "sys", V5, true);
    h.subscribe(1, "$SYS/#", QoS::AtMostOnce);
    assert!(h.tick().is_empty());
    assert_eq!(h.broker.stats().retained_messages, 0);
}

#[test]
fn load_averages_follow_the_message_rate_under_mosquittos_names() {
    let mut h = H::with(sys_config());
    h.connect(1, "sys", V5, true);
    h.connect(2, "pub", V5, true);
    h.tick();
    // Granted, followed by the retained replay of the first (zero) averages.
    let (granted, _replay) = h.subscribe_with(1, "$SYS/broker/load/#", opts(QoS::AtMostOnce), None);
    assert_eq!(granted, vec![ReasonCode::Success]);
    for _ in 0..60 {
        h.publish(2, publish("t", QoS::AtMostOnce, None, "x"));
    }
    h.connect(3, "late", V5, true);
    h.advance_secs(10);
    let out = publishes(&h.tick(), 1);
    let get = |topic: &str| -> f64 { payload_of(&out, topic).parse().expect("number") };
    // 60 messages in 10 s is 360 a minute; the 1-minute average moves 1 - e^(-1/6) of the
    // way there from 0, the 15-minute one far less.
    let one = get("$SYS/broker/load/messages/received/1min");
    assert!((50.0..60.0).contains(&one), "{one}");
    assert!(get("$SYS/broker/load/messages/received/15min") < one);
    assert!(get("$SYS/broker/load/bytes/received/1min") > 0.0);
    assert!(get("$SYS/broker/load/connections/1min") > 0.0);
}

#[test]
fn the_cluster_view_is_published_under_sys_cluster() {
    let mut h = H::with(sys_config());
    h.broker.set_cluster_sys(crate::ClusterSys {
        node_id: 2,
        nodes: 3,
        voters: 3,
        leader: Some(1),
        term: 4,
    });
    h.connect(1, "sys", V5, true);
    h.subscribe(1, "$SYS/cluster/#", QoS::AtMostOnce);
    let out = publishes(&h.tick(), 1);
    let value = |topic: &str| payload_of(&out, topic);
    assert_eq!(value("$SYS/cluster/node_id"), "2");
    assert_eq!(value("$SYS/cluster/nodes"), "3");
    assert_eq!(value("$SYS/cluster/voters"), "3");
    assert_eq!(value("$SYS/cluster/leader"), "1");
    assert_eq!(value("$SYS/cluster/term"), "4");
}

#[test]
fn store_and_expiry_values_follow_queued_retained_and_expired_sessions() {
    // Mosquitto's store/messages/count: retained messages plus messages queued for offline
    // sessions; clients/expired: sessions whose expiry passed.
    let mut h = H::with(sys_config());
    h.connect_v5(1, "sleeper", false, 5);
    h.subscribe(1, "q", QoS::AtLeastOnce);
    h.closed(1);
    h.connect(2, "pub", V5, true);
    h.publish(2, publish("q", QoS::AtLeastOnce, Some(1), "abc"));
    h.publish(2, publish("q", QoS::AtLeastOnce, Some(2), "def"));
    let mut r = publish("r", QoS::AtMostOnce, None, "xy");
    r.retain = true;
    h.publish(2, r);
    h.tick();
    let value = |h: &H, topic: &str| -> String {
        let values = h.broker.sys_values(h.now);
        let (_, v) = values
            .into_iter()
            .find(|(t, _)| *t == topic)
            .unwrap_or_else(|| panic!("{topic}"));
        v
    };
    assert_eq!(value(&h, "$SYS/broker/store/messages/count"), "3");
    assert_eq!(value(&h, "$SYS/broker/messages/stored"), "3");
    // Queued: 3-byte payloads with their 1-byte topic; retained: the 2-byte payload.
    assert_eq!(value(&h, "$SYS/broker/store/messages/bytes"), "10");
    assert_eq!(value(&h, "$SYS/broker/clients/expired"), "0");
    h.advance_secs(6);
    h.tick();
    assert_eq!(value(&h, "$SYS/broker/clients/expired"), "1");
    assert_eq!(value(&h, "$SYS/broker/store/messages/count"), "1");
}

#[test]
fn traffic_totals_and_socket_load_are_published() {
    let mut h = H::with(sys_config());
    h.connect(1, "sys", V5, true);
    h.subscribe(1, "$SYS/broker/#", QoS::AtMostOnce);
    h.broker.set_traffic_sys(crate::TrafficSys {
        bytes_received: 0,
        bytes_sent: 0,
        sockets: 0,
    });
    h.tick();
    h.broker.set_traffic_sys(crate::TrafficSys {
        bytes_received: 1234,
        bytes_sent: 99,
        sockets: 60,
    });
    h.advance_secs(10);
    let out = publishes(&h.tick(), 1);
    let value = |topic: &str| payload_of(&out, topic);
    assert_eq!(value("$SYS/broker/bytes/received"), "1234");
    assert_eq!(value("$SYS/broker/bytes/sent"), "99");
    // 60 sockets in 10 s is 360 a minute; the 1-minute average moves 1 - e^(-1/6) of the way.
    let sockets: f64 = value("$SYS/broker/load/sockets/1min")
        .parse()
        .expect("number");
    let expected = 360.0 * (1.0 - (-10.0f64 / 60.0).exp());
    assert!((sockets - expected).abs() < 0.01, "{sockets} vs {expected}");
}

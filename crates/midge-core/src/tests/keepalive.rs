//! Keep alive enforcement (MQTT-3.1.2-22 in v5, MQTT-3.1.2-24 in 3.1.1).

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{Packet, QoS, ReasonCode};
use std::time::Duration;

#[test]
fn keep_alive_timeout_after_one_and_a_half_times() {
    // No packet within 1.5 x Keep Alive: closed as if the network failed, so the will is
    // published; v5 gets DISCONNECT 0x8D first.
    let mut h = H::new();
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "will/#", QoS::AtMostOnce);
    let mut c = connect_packet(V5, "a", true);
    c.keep_alive = 10;
    c.will = Some(will("will/a", "timeout", QoS::AtMostOnce, false, None));
    h.connect_ok(1, c);
    h.advance(Duration::from_millis(14_900));
    assert!(h.tick().is_empty());
    h.advance(Duration::from_millis(100));
    let actions = h.tick();
    assert_disconnected(&actions, 1, ReasonCode::KeepAliveTimeout);
    assert_eq!(payloads(&actions, 9), vec!["timeout"]);
    assert_eq!(h.broker.stats().clients_connected, 1);
}

#[test]
fn any_packet_resets_the_keep_alive() {
    let mut h = H::new();
    let mut c = connect_packet(V3_1_1, "a", true);
    c.keep_alive = 2;
    h.connect_ok(1, c);
    for _ in 0..5 {
        h.advance(Duration::from_millis(2_500));
        assert!(h.tick().is_empty());
        h.packet(1, Packet::PingReq);
    }
    h.advance(Duration::from_millis(3_000));
    // 3.1.1 has no server DISCONNECT: only the close.
    assert_eq!(h.tick(), vec![crate::Action::Close { conn: 1 }]);
}

#[test]
fn keep_alive_zero_never_times_out() {
    let mut h = H::new();
    h.connect(1, "a", V3_1_1, true);
    h.advance(Duration::from_secs(1_000_000));
    assert!(h.tick().is_empty());
}

#[test]
fn server_keep_alive_is_enforced() {
    // MQTT-3.2.2-21: the client uses our Server Keep Alive, and so do we.
    let mut h = H::with(BrokerConfig {
        max_keep_alive: 4,
        ..config()
    });
    let mut c = connect_packet(V5, "a", true);
    c.keep_alive = 0;
    let (ack, _) = h.connect_ok(1, c);
    assert_eq!(ack.properties.server_keep_alive, Some(4));
    h.advance(Duration::from_secs(6));
    assert_disconnected(&h.tick(), 1, ReasonCode::KeepAliveTimeout);
}

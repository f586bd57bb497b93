//! `BrokerStats`.

use super::harness::*;
use crate::{BrokerConfig, BrokerStats, DropCounts, DropReason};
use midge_codec::{QoS, ReasonCode};

#[test]
fn counters() {
    let mut h = H::with(BrokerConfig {
        max_queued_messages: 1,
        ..config()
    });
    h.connect(1, "sub", V5, true);
    h.connect_v5(2, "offline", false, 100);
    h.connect(3, "pub", V3_1_1, true);
    h.subscribe(1, "t/#", QoS::AtMostOnce);
    h.subscribe(1, "t/1", QoS::AtLeastOnce);
    h.subscribe(2, "t/#", QoS::AtLeastOnce);
    h.disconnect(2, ReasonCode::Success);
    h.publish(3, retained("t/1", QoS::AtLeastOnce, Some(1), "a"));
    h.publish(3, publish("t/2", QoS::AtLeastOnce, Some(2), "b")); // queue of 1 is full
    let mut dropped_by = DropCounts::default();
    dropped_by.add(DropReason::QueueFull);
    assert_eq!(
        h.broker.stats(),
        BrokerStats {
            clients_connected: 2,
            sessions: 3,
            subscriptions: 3,
            retained_messages: 1,
            retained_bytes: 1,
            messages_received: 2,
            messages_sent: 2,
            messages_dropped: 1,
            dropped_by,
            messages_received_qos: [0, 2, 0],
            bytes_received: 2,
            messages_sent_qos: [1, 1, 0],
            bytes_sent: 2,
            sessions_clean: 2,
            sessions_persistent: 1,
            // Distinct filters: t/# (two sessions) and t/1.
            routes: 2,
            ..BrokerStats::default()
        }
    );
}

#[test]
fn drops_are_counted_by_reason() {
    let mut h = H::with(BrokerConfig {
        max_queued_messages: 1,
        ..config()
    });
    h.connect_v5(1, "offline", false, 100);
    h.subscribe(1, "t", QoS::AtLeastOnce);
    h.disconnect(1, ReasonCode::Success);
    h.connect(2, "pub", V3_1_1, true);
    let mut expiring = publish("t", QoS::AtLeastOnce, Some(1), "x");
    expiring.properties.make_mut().message_expiry_interval = Some(1);
    h.publish(2, expiring);
    h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "y")); // queue of 1 is full
    h.advance_secs(2);
    h.connect_v5(1, "offline", false, 100); // the queued message has expired
    let stats = h.broker.stats();
    assert_eq!(stats.dropped_by.get(DropReason::QueueFull), 1);
    assert_eq!(stats.dropped_by.get(DropReason::Expired), 1);
    assert_eq!(stats.dropped_by.total(), stats.messages_dropped);
}

//! `BrokerStats`.

use super::harness::*;
use crate::{BrokerConfig, BrokerStats};
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
    assert_eq!(
        h.broker.stats(),
        BrokerStats {
            clients_connected: 2,
            sessions: 3,
            subscriptions: 3,
            retained_messages: 1,
            messages_received: 2,
            messages_sent: 2,
            messages_dropped: 1,
        }
    );
}

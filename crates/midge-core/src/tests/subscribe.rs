//! SUBSCRIBE: reason codes, replacement, capabilities.

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{Packet, QoS, ReasonCode, Subscribe, SubscribeProperties, TopicSubscription};

fn subscribe_many(h: &mut H, conn: u64, filters: &[(&str, QoS)]) -> Vec<ReasonCode> {
    let actions = h.packet(
        conn,
        Packet::Subscribe(Subscribe {
            packet_id: 3,
            filters: filters
                .iter()
                .map(|(f, q)| TopicSubscription {
                    filter: f.to_string(),
                    options: opts(*q),
                })
                .collect(),
            properties: SubscribeProperties::default(),
        }),
    );
    match sent(&actions, conn).as_slice() {
        [Packet::SubAck(ack)] => {
            assert_eq!(ack.packet_id, 3);
            ack.reasons.clone()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_reason_per_filter_in_order() {
    // MQTT-3.9.3-1 (3.1.1 MQTT-3.8.4-5/-6): one return code per filter, in order; invalid
    // filters get 0x8F (v5) / 0x80 (3.1.1, mapped by the codec).
    let mut h = H::new();
    h.connect(1, "a", V5, true);
    let reasons = subscribe_many(
        &mut h,
        1,
        &[
            ("a", QoS::ExactlyOnce),
            ("a/#/b", QoS::AtMostOnce),
            ("b", QoS::AtLeastOnce),
        ],
    );
    assert_eq!(
        reasons,
        vec![
            ReasonCode::GrantedQoS2,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::GrantedQoS1
        ]
    );
    assert_eq!(h.broker.stats().subscriptions, 2);
}

#[test]
fn granted_qos_capped_by_maximum_qos() {
    // MQTT-3.2.2-10: SUBSCRIBE with any requested QoS is accepted; we grant at most ours.
    let mut h = H::with(BrokerConfig {
        maximum_qos: QoS::AtLeastOnce,
        ..config()
    });
    h.connect(1, "a", V5, true);
    assert_eq!(
        subscribe_many(&mut h, 1, &[("a", QoS::ExactlyOnce)]),
        vec![ReasonCode::GrantedQoS1]
    );
}

#[test]
fn resubscribe_replaces() {
    // MQTT-3.8.4-3: a subscription to an existing filter replaces it.
    let mut h = H::new();
    h.connect(1, "sub", V5, true);
    h.connect(2, "pub", V5, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.subscribe(1, "t", QoS::AtMostOnce);
    assert_eq!(h.broker.stats().subscriptions, 1);
    let out = publishes(
        &h.publish(2, publish("t", QoS::ExactlyOnce, Some(1), "m")),
        1,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].qos, QoS::AtMostOnce);
}

#[test]
fn wildcards_not_available() {
    let mut h = H::with(BrokerConfig {
        wildcard_subscription_available: false,
        ..config()
    });
    h.connect(1, "a", V5, true);
    assert_eq!(
        subscribe_many(
            &mut h,
            1,
            &[
                ("a/+", QoS::AtMostOnce),
                ("$share/g/#", QoS::AtMostOnce),
                ("a", QoS::AtMostOnce)
            ]
        ),
        vec![
            ReasonCode::WildcardSubscriptionsNotSupported,
            ReasonCode::WildcardSubscriptionsNotSupported,
            ReasonCode::Success
        ]
    );
}

#[test]
fn subscription_identifiers_not_available() {
    // 3.2.2.3.12: a Subscription Identifier when we said they are not supported ->
    // DISCONNECT 0xA1.
    let mut h = H::with(BrokerConfig {
        subscription_identifiers_available: false,
        ..config()
    });
    h.connect(1, "a", V5, true);
    let actions = h.packet(
        1,
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![TopicSubscription {
                filter: "t".into(),
                options: opts(QoS::AtMostOnce),
            }],
            properties: SubscribeProperties {
                subscription_identifier: Some(5),
                ..Default::default()
            },
        }),
    );
    assert_disconnected(&actions, 1, ReasonCode::SubscriptionIdentifiersNotSupported);
}

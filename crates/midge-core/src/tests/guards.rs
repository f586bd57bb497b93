//! Sandbox guards: topic depth, wildcard depth, subscriptions per client.

use super::harness::*;
use crate::BrokerConfig;
use midge_codec::{AckKind, QoS, ReasonCode};

fn h(tweak: impl FnOnce(&mut BrokerConfig)) -> H {
    let mut c = config();
    tweak(&mut c);
    H::with(c)
}

#[test]
fn too_deep_topics_and_filters_are_refused() {
    let mut h = h(|c| c.max_topic_levels = 3);
    h.connect(1, "c", V5, true);
    let (reasons, _) = h.subscribe_with(1, "a/b/c/d", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::TopicFilterInvalid]);
    h.subscribe(1, "a/b/#", QoS::AtLeastOnce);
    let out = h.publish(1, publish("a/b/c/d", QoS::AtLeastOnce, Some(1), "deep"));
    assert_eq!(
        acks(&out, 1, AckKind::PubAck)[0].reason,
        ReasonCode::TopicNameInvalid
    );
    assert!(publishes(&out, 1).is_empty());
    let out = h.publish(1, publish("a/b/c", QoS::AtLeastOnce, Some(2), "ok"));
    assert_eq!(payloads(&out, 1), vec!["ok"]);
    assert_eq!(h.broker.stats().topic_too_deep, 2);
}

#[test]
fn subscriptions_beyond_the_quota_get_0x97_but_replacing_one_is_fine() {
    let mut h = h(|c| c.max_subscriptions_per_client = 2);
    h.connect(1, "c", V5, true);
    h.subscribe(1, "a", QoS::AtMostOnce);
    h.subscribe(1, "b", QoS::AtMostOnce);
    let (reasons, _) = h.subscribe_with(1, "c", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::QuotaExceeded]);
    h.subscribe(1, "a", QoS::AtLeastOnce);
    assert_eq!(h.broker.stats().subscription_quota_refused, 1);
}

#[test]
fn shallow_wildcards_are_refused_or_granted_without_retained() {
    let mut deny = h(|c| c.min_wildcard_depth = 1);
    deny.connect(1, "c", V5, true);
    for filter in ["#", "+/x", "$share/g/#"] {
        let (reasons, _) = deny.subscribe_with(1, filter, opts(QoS::AtMostOnce), None);
        assert_eq!(reasons, vec![ReasonCode::NotAuthorized], "{filter}");
    }
    deny.subscribe(1, "a/#", QoS::AtMostOnce);
    assert_eq!(deny.broker.stats().shallow_wildcard_refused, 3);

    let mut quiet = h(|c| {
        c.min_wildcard_depth = 1;
        c.shallow_wildcard_without_retained = true;
    });
    quiet.connect(1, "p", V5, true);
    quiet.publish(1, retained("r/t", QoS::AtMostOnce, None, "kept"));
    quiet.connect(2, "s", V5, true);
    let (reasons, rest) = quiet.subscribe_with(2, "#", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::Success]);
    assert!(publishes(&rest, 2).is_empty(), "no retained replay for #");
    let out = quiet.publish(1, publish("live/t", QoS::AtMostOnce, None, "live"));
    assert_eq!(payloads(&out, 2), vec!["live"]);
    assert_eq!(quiet.broker.stats().shallow_wildcard_replay_skipped, 1);
}

//! The access policy seam: publish, subscribe, delivery (live, queued, retained), wills and
//! refused CONNECTs.

use super::harness::*;
use crate::{Action, Authorizer, ClientIdentity, Event};
use midge_codec::{AckKind, Packet, QoS, ReasonCode};
use std::sync::Arc;

/// `public/#` is open to everyone; `private/<user>/#` only to that user; `secret/#` may be
/// published by anyone but read by no one.
struct Policy;

fn owns(who: &ClientIdentity<'_>, topic: &str) -> bool {
    if topic.starts_with("public/") {
        return true;
    }
    match (who.username, topic.strip_prefix("private/")) {
        (Some(user), Some(rest)) => rest.split('/').next() == Some(user),
        _ => false,
    }
}

impl Authorizer for Policy {
    fn can_publish(&self, who: &ClientIdentity<'_>, topic: &str) -> bool {
        owns(who, topic) || topic.starts_with("secret/")
    }
    fn can_subscribe(&self, who: &ClientIdentity<'_>, filter: &str) -> bool {
        owns(who, filter) || filter == "#"
    }
    fn can_receive(&self, who: &ClientIdentity<'_>, topic: &str) -> bool {
        owns(who, topic)
    }
}

fn h() -> H {
    let mut h = H::new();
    h.broker.set_authorizer(Some(Arc::new(Policy)));
    h
}

fn connect_as(h: &mut H, conn: u64, id: &str, v: midge_codec::ProtocolVersion, user: &str) {
    let mut c = connect_packet(v, id, true);
    c.username = Some(user.to_string());
    h.connect_ok(conn, c);
}

#[test]
fn denied_publish_gets_0x87_in_v5_and_is_neither_routed_nor_retained() {
    let mut h = h();
    connect_as(&mut h, 1, "sub", V5, "alice");
    h.subscribe(1, "private/alice/#", QoS::AtLeastOnce);
    connect_as(&mut h, 2, "mallory", V5, "mallory");
    let out = h.publish(
        2,
        retained("private/alice/x", QoS::AtLeastOnce, Some(5), "evil"),
    );
    let pubacks = acks(&out, 2, AckKind::PubAck);
    assert_eq!(pubacks.len(), 1);
    assert_eq!(pubacks[0].reason, ReasonCode::NotAuthorized);
    assert!(publishes(&out, 1).is_empty());
    let out = h.publish(
        2,
        publish("private/alice/x", QoS::ExactlyOnce, Some(6), "evil"),
    );
    assert_eq!(
        acks(&out, 2, AckKind::PubRec)[0].reason,
        ReasonCode::NotAuthorized
    );
    // Nothing was retained: a fresh subscriber of alice's gets nothing.
    connect_as(&mut h, 3, "alice2", V5, "alice");
    let (reasons, rest) = h.subscribe_with(3, "private/alice/#", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::Success]);
    assert!(publishes(&rest, 3).is_empty());
    assert_eq!(h.broker.stats().publish_denied, 2);
}

#[test]
fn denied_publish_is_acknowledged_plainly_in_v3() {
    let mut h = h();
    connect_as(&mut h, 1, "sub", V3_1_1, "alice");
    h.subscribe(1, "private/alice/#", QoS::AtLeastOnce);
    connect_as(&mut h, 2, "mallory", V3_1_1, "mallory");
    let out = h.publish(
        2,
        publish("private/alice/x", QoS::AtLeastOnce, Some(5), "evil"),
    );
    assert_eq!(
        acks(&out, 2, AckKind::PubAck)[0].reason,
        ReasonCode::Success
    );
    assert!(publishes(&out, 1).is_empty());
}

#[test]
fn denied_subscribe_gets_0x87_per_filter() {
    let mut h = h();
    connect_as(&mut h, 1, "c", V5, "alice");
    let (reasons, _) = h.subscribe_with(1, "private/bob/#", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::NotAuthorized]);
    let (reasons, _) = h.subscribe_with(1, "$share/g/private/bob/#", opts(QoS::AtMostOnce), None);
    assert_eq!(reasons, vec![ReasonCode::NotAuthorized]);
    let (reasons, _) = h.subscribe_with(1, "private/alice/+", opts(QoS::AtLeastOnce), None);
    assert_eq!(reasons, vec![ReasonCode::GrantedQoS1]);
    assert_eq!(h.broker.stats().subscribe_denied, 2);
    assert_eq!(h.broker.stats().subscriptions, 1);
}

#[test]
fn deliveries_are_checked_per_receiver() {
    let mut h = h();
    // "#" may be subscribed, but each message is still checked on the way out.
    connect_as(&mut h, 1, "alice", V5, "alice");
    h.subscribe(1, "#", QoS::AtMostOnce);
    connect_as(&mut h, 2, "bob", V5, "bob");
    h.subscribe(2, "#", QoS::AtMostOnce);
    let out = h.publish(2, publish("private/bob/x", QoS::AtMostOnce, None, "b"));
    assert!(
        publishes(&out, 1).is_empty(),
        "alice must not see bob's topic"
    );
    assert_eq!(payloads(&out, 2), vec!["b"]);
    let out = h.publish(2, publish("secret/x", QoS::AtMostOnce, None, "s"));
    assert!(publishes(&out, 1).is_empty() && publishes(&out, 2).is_empty());
    let out = h.publish(2, publish("public/x", QoS::AtMostOnce, None, "p"));
    assert_eq!(payloads(&out, 1), vec!["p"]);
    assert_eq!(h.broker.stats().delivery_denied, 3);
}

#[test]
fn will_on_a_forbidden_topic_refuses_the_connect() {
    let mut h = h();
    let mut c = connect_packet(V5, "c", true);
    c.username = Some("alice".into());
    c.will = Some(will(
        "private/bob/status",
        "gone",
        QoS::AtMostOnce,
        false,
        None,
    ));
    let out = h.connect_with(1, c);
    match &out[..] {
        [Action::Send {
            packet: Packet::ConnAck(ack),
            ..
        }, Action::Close { conn: 1 }] => assert_eq!(ack.reason, ReasonCode::NotAuthorized),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(h.broker.stats().will_denied, 1);
}

#[test]
fn refuse_event_answers_with_connack_and_closes_without_a_session() {
    let mut h = h();
    for reason in [
        ReasonCode::BadUserNameOrPassword,
        ReasonCode::NotAuthorized,
        ReasonCode::ConnectionRateExceeded,
    ] {
        let out = h.event(Event::Refuse {
            conn: 9,
            connect: Box::new(connect_packet(V3_1_1, "c", true)),
            reason,
        });
        match &out[..] {
            [Action::Send {
                conn: 9,
                packet: Packet::ConnAck(ack),
            }, Action::Close { conn: 9 }] => assert_eq!(ack.reason, reason),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(h.broker.stats().sessions, 0);
    assert_eq!(h.broker.client_id(9), None);
}

#[test]
fn queued_messages_are_checked_again_when_the_session_resumes() {
    let mut h = h();
    let mut c = connect_packet(V3_1_1, "alice", false);
    c.username = Some("alice".into());
    h.connect_ok(1, c);
    h.subscribe(1, "#", QoS::AtLeastOnce);
    h.disconnect(1, ReasonCode::Success);
    connect_as(&mut h, 2, "pub", V5, "bob");
    h.publish(2, publish("public/a", QoS::AtLeastOnce, Some(1), "one"));
    h.publish(
        2,
        publish("private/alice/b", QoS::AtLeastOnce, Some(2), "two"),
    );
    // The client comes back under another user name: what it may not read is dropped.
    let mut c = connect_packet(V3_1_1, "alice", false);
    c.username = Some("carol".into());
    let (_, rest) = h.connect_ok(3, c);
    assert_eq!(payloads(&rest, 3), vec!["one"]);
}

//! Durable state: with `BrokerConfig::durable`, every change to a persistent session or a
//! retained message is emitted as `Persist`, in order, before the acknowledgement that depends
//! on it, which is `SendDurable`. Clean sessions and QoS 0 emit nothing.

use super::harness::*;
use crate::{Action, BrokerConfig, ConnId, DurableOp, Subscription};
use bytes::Bytes;
use midge_codec::{
    Ack, AckKind, Disconnect, DisconnectProperties, Packet, QoS, ReasonCode, Subscribe,
    SubscribeProperties, TopicSubscription, Unsubscribe,
};
use std::time::Duration;

/// Connects `client_id` (v5, Clean Start 0) with a Session Expiry Interval.
pub(super) fn connect_persistent(
    h: &mut H,
    conn: ConnId,
    client_id: &str,
    expiry: u32,
) -> Vec<String> {
    let mut c = connect_packet(V5, client_id, false);
    c.properties.session_expiry_interval = Some(expiry);
    trace(&h.connect_with(conn, c))
}

fn subscribe_packet(filters: &[(&str, QoS)], identifier: Option<u32>) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: 77,
        filters: filters
            .iter()
            .map(|(filter, qos)| TopicSubscription {
                filter: filter.to_string(),
                options: opts(*qos),
            })
            .collect(),
        properties: SubscribeProperties {
            subscription_identifier: identifier,
            ..Default::default()
        },
    })
}

pub(super) fn sub(h: &mut H, conn: ConnId, filter: &str, qos: QoS) -> Vec<String> {
    trace(&h.packet(conn, subscribe_packet(&[(filter, qos)], None)))
}

fn unsub(h: &mut H, conn: ConnId, filters: &[&str]) -> Vec<String> {
    let packet = Packet::Unsubscribe(Unsubscribe {
        packet_id: 88,
        filters: filters.iter().map(|f| f.to_string()).collect(),
        user_properties: vec![],
    });
    trace(&h.packet(conn, packet))
}

fn pubs(h: &mut H, conn: ConnId, p: midge_codec::Publish) -> Vec<String> {
    trace(&h.publish(conn, p))
}

fn acked(h: &mut H, conn: ConnId, kind: AckKind, id: u16) -> Vec<String> {
    trace(&h.ack(conn, kind, id))
}

#[test]
fn clean_sessions_and_qos0_emit_nothing() {
    let mut h = H::with(durable_config());
    let mut all: Vec<Action> = Vec::new();
    h.connect(1, "a", V5, false); // v5 without Session Expiry Interval: clean
    h.connect(2, "b", V3_1_1, true);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.subscribe(2, "t", QoS::ExactlyOnce);
    all.extend(h.publish(2, publish("t", QoS::AtMostOnce, None, "0")));
    all.extend(h.publish(2, retained("r", QoS::AtLeastOnce, Some(1), "")));
    let out = h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "1"));
    let id = publishes(&out, 1)[0].packet_id.unwrap();
    all.extend(out);
    all.extend(h.ack(1, AckKind::PubAck, id));
    let out = h.publish(2, publish("t", QoS::ExactlyOnce, Some(3), "2"));
    let id = publishes(&out, 1)[0].packet_id.unwrap();
    all.extend(out);
    all.extend(h.ack(2, AckKind::PubRel, 3));
    all.extend(h.ack(1, AckKind::PubRec, id));
    all.extend(h.ack(1, AckKind::PubComp, id));
    all.extend(h.closed(1));
    all.extend(h.disconnect(2, ReasonCode::Success));
    assert!(!any_durable(&all), "{:?}", trace(&all));

    // QoS 0 to a persistent session, online and (queued) offline.
    let mut h = H::with(BrokerConfig {
        queue_qos0_messages: true,
        ..durable_config()
    });
    connect_persistent(&mut h, 1, "p", 100);
    sub(&mut h, 1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", V5, true);
    let mut all = h.publish(2, publish("t", QoS::AtMostOnce, None, "x"));
    assert_eq!(trace(&all), ["1: PUBLISH x"]);
    h.closed(1);
    all.extend(h.publish(2, publish("t", QoS::AtMostOnce, None, "y")));
    assert!(!any_durable(&all), "{:?}", trace(&all));
}

#[test]
fn without_durability_nothing_changes() {
    let mut h = H::new();
    h.connect_v5(1, "c", false, 100);
    h.subscribe(1, "t", QoS::ExactlyOnce);
    h.connect_v5(2, "p", false, 100);
    let mut all = h.publish(2, retained("t", QoS::ExactlyOnce, Some(1), "m"));
    all.extend(h.ack(2, AckKind::PubRel, 1));
    all.extend(h.ack(1, AckKind::PubRec, 1));
    all.extend(h.ack(1, AckKind::PubComp, 1));
    all.extend(h.closed(1));
    all.extend(h.publish(2, publish("t", QoS::AtLeastOnce, Some(2), "q")));
    all.extend(h.connect_with(3, connect_packet(V5, "c", false)));
    all.extend(h.disconnect(2, ReasonCode::Success));
    assert!(!any_durable(&all), "{:?}", trace(&all));
    assert!(h.ops.is_empty());
}

#[test]
fn session_put_on_create_resume_and_takeover() {
    let mut h = H::with(durable_config());
    let mut c = connect_packet(V5, "c", false);
    c.properties.session_expiry_interval = Some(100);
    let w = will("w", "bye", QoS::AtLeastOnce, false, Some(30));
    c.will = Some(w.clone());
    let out = h.connect_with(1, c);
    assert_eq!(trace(&out), ["session c on exp=100 will=w", "1! CONNACK"]);
    assert_eq!(
        persisted(&out),
        [DurableOp::SessionPut {
            client_id: "c".into(),
            expiry_interval: 100,
            will: Some(w),
            connected: true,
        }]
    );
    // The will waits for its delay: it is part of the offline session.
    assert_eq!(trace(&h.closed(1)), ["session c off exp=100 will=w"]);
    assert_eq!(
        connect_persistent(&mut h, 2, "c", 100),
        ["session c on exp=100", "2! CONNACK sp"]
    );
    assert_eq!(
        connect_persistent(&mut h, 3, "c", 200),
        [
            "2: DISCONNECT SessionTakenOver",
            "close 2",
            "session c on exp=200",
            "3! CONNACK sp"
        ]
    );
    // 3.1.1 Clean Session 0: never expires.
    assert_eq!(
        trace(&h.connect_with(4, connect_packet(V3_1_1, "v3", false))),
        ["session v3 on exp=4294967295", "4! CONNACK"]
    );
}

#[test]
fn session_delete_when_a_session_ends() {
    let mut h = H::with(durable_config());
    // Clean Start over a stored session, as a clean session...
    connect_persistent(&mut h, 1, "a", 100);
    h.closed(1);
    let out = h.connect_with(2, connect_packet(V5, "a", true));
    assert_eq!(trace(&out), ["session- a", "2! CONNACK"]);
    assert!(h.closed(2).is_empty());
    // ...or as a new persistent one.
    connect_persistent(&mut h, 3, "b", 100);
    let mut c = connect_packet(V5, "b", true);
    c.properties.session_expiry_interval = Some(50);
    assert_eq!(
        trace(&h.connect_with(4, c)),
        [
            "3: DISCONNECT SessionTakenOver",
            "close 3",
            "session- b",
            "session b on exp=50",
            "4! CONNACK"
        ]
    );
    // Resumed with Session Expiry 0: no longer persistent.
    connect_persistent(&mut h, 5, "c", 100);
    h.closed(5);
    let out = h.connect_with(6, connect_packet(V5, "c", false));
    assert_eq!(trace(&out), ["session- c", "6! CONNACK sp"]);
    assert!(h.closed(6).is_empty());
    // DISCONNECT setting the expiry to 0.
    connect_persistent(&mut h, 7, "d", 100);
    let d = Disconnect {
        reason: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            ..Default::default()
        }
        .into(),
    };
    assert_eq!(
        trace(&h.packet(7, Packet::Disconnect(d))),
        ["session- d", "close 7"]
    );
    // Expiry.
    connect_persistent(&mut h, 8, "e", 10);
    h.closed(8);
    h.advance_secs(10);
    assert_eq!(trace(&h.tick()), ["session- e"]);
    assert_eq!(h.broker.stats().sessions, 1, "only b is left");
}

#[test]
fn disconnect_persists_the_new_expiry_once() {
    let mut h = H::with(durable_config());
    connect_persistent(&mut h, 1, "c", 100);
    let d = Disconnect {
        reason: ReasonCode::Success,
        properties: DisconnectProperties {
            session_expiry_interval: Some(50),
            ..Default::default()
        }
        .into(),
    };
    assert_eq!(
        trace(&h.packet(1, Packet::Disconnect(d))),
        ["close 1", "session c off exp=50"]
    );
}

#[test]
fn wills_are_persisted_until_published() {
    let mut h = H::with(durable_config());
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "w", QoS::AtMostOnce);
    let mut c = connect_packet(V5, "c", false);
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(will("w", "bye", QoS::AtLeastOnce, true, Some(5)));
    h.connect_with(1, c);
    assert_eq!(trace(&h.closed(1)), ["session c off exp=100 will=w"]);
    h.advance_secs(5);
    // The will's own changes first, then the session without it.
    assert_eq!(
        trace(&h.tick()),
        ["retain w=bye", "9: PUBLISH bye", "session c off exp=100"]
    );
    // No delay: published at once, before the session is persisted as offline.
    let mut c = connect_packet(V5, "d", false);
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(will("w", "now", QoS::AtMostOnce, false, None));
    h.connect_with(2, c);
    assert_eq!(
        trace(&h.disconnect(2, ReasonCode::DisconnectWithWill)),
        ["close 2", "9: PUBLISH now", "session d off exp=100"]
    );
    // A will outliving the session goes out as it expires, then the session is deleted.
    let mut c = connect_packet(V5, "e", false);
    c.properties.session_expiry_interval = Some(10);
    c.will = Some(will("w", "late", QoS::AtMostOnce, false, Some(60)));
    h.connect_with(3, c);
    h.closed(3);
    h.advance_secs(10);
    assert_eq!(trace(&h.tick()), ["9: PUBLISH late", "session- e"]);
}

#[test]
fn subscriptions_are_persisted_before_the_ack() {
    let mut h = H::with(durable_config());
    connect_persistent(&mut h, 1, "c", 100);
    assert_eq!(
        sub(&mut h, 1, "t", QoS::AtLeastOnce),
        ["sub c t q1", "1! SUBACK"]
    );
    assert_eq!(
        sub(&mut h, 1, "$share/g/x", QoS::ExactlyOnce),
        ["sub c $share/g/x q2", "1! SUBACK"]
    );
    let packet = subscribe_packet(
        &[("a/#/b", QoS::AtMostOnce), ("ok", QoS::AtMostOnce)],
        Some(7),
    );
    let out = h.packet(1, packet);
    assert_eq!(trace(&out), ["sub c ok q0", "1! SUBACK"]);
    assert_eq!(
        persisted(&out),
        [DurableOp::SubscriptionPut {
            client_id: "c".into(),
            filter: "ok".into(),
            subscription: Subscription {
                options: opts(QoS::AtMostOnce),
                identifier: Some(7),
            },
        }]
    );
    assert_eq!(
        unsub(&mut h, 1, &["t", "nope"]),
        ["unsub c t", "1! UNSUBACK"]
    );
    assert_eq!(unsub(&mut h, 1, &["nope"]), ["1! UNSUBACK"]);
    // A clean session's subscriptions are not durable.
    h.connect(2, "clean", V5, true);
    assert_eq!(sub(&mut h, 2, "t", QoS::AtLeastOnce), ["2: SUBACK"]);
    assert_eq!(unsub(&mut h, 2, &["t"]), ["2: UNSUBACK"]);
}

#[test]
fn retained_changes_are_persisted() {
    let mut h = H::with(durable_config());
    h.connect(1, "pub", V5, true);
    assert_eq!(
        pubs(&mut h, 1, retained("t", QoS::AtMostOnce, None, "x")),
        ["retain t=x"]
    );
    assert_eq!(
        pubs(&mut h, 1, retained("t", QoS::AtLeastOnce, Some(1), "y")),
        ["retain t=y", "1! PUBACK 1"]
    );
    assert_eq!(
        pubs(&mut h, 1, retained("t", QoS::ExactlyOnce, Some(2), "")),
        ["unretain t", "1! PUBREC 2"]
    );
    // Clearing nothing changes nothing.
    assert_eq!(
        pubs(&mut h, 1, retained("t", QoS::AtLeastOnce, Some(3), "")),
        ["1: PUBACK 3"]
    );
    let mut p = retained("e", QoS::AtMostOnce, None, "z");
    p.properties.make_mut().message_expiry_interval = Some(1);
    let out = h.publish(1, p);
    match persisted(&out).as_slice() {
        [DurableOp::RetainedSet { topic, message }] => {
            assert_eq!(&**topic, "e");
            assert_eq!(message.expires_at, Some(h.now + Duration::from_secs(1)));
        }
        other => panic!("{other:?}"),
    }
    h.advance_secs(1);
    assert_eq!(trace(&h.tick()), ["unretain e"]);
    // A persistent subscriber gets the retained copy after its SUBACK.
    pubs(&mut h, 1, retained("r/1", QoS::AtLeastOnce, Some(4), "ret"));
    connect_persistent(&mut h, 2, "c", 100);
    assert_eq!(
        sub(&mut h, 2, "r/#", QoS::AtLeastOnce),
        [
            "sub c r/# q1",
            "2! SUBACK",
            "msg c #0 ret sent(1)",
            "2: PUBLISH ret #1"
        ]
    );
}

#[test]
fn sys_topics_are_not_persisted() {
    let mut h = H::with(BrokerConfig {
        sys_interval: Duration::from_secs(10),
        ..durable_config()
    });
    connect_persistent(&mut h, 1, "c", 100);
    assert!(persisted(&h.tick()).is_empty());
    assert!(h.broker.stats().retained_messages > 0);
}

#[test]
fn will_retained_by_a_clean_session_is_persisted() {
    let mut h = H::with(durable_config());
    let mut c = connect_packet(V5, "c", true);
    c.will = Some(will("w", "bye", QoS::AtMostOnce, true, None));
    h.connect_with(1, c);
    assert_eq!(trace(&h.closed(1)), ["retain w=bye"]);
}

#[test]
fn qos1_messages_of_a_persistent_session() {
    let mut h = H::with(BrokerConfig {
        max_inflight: 1,
        ..durable_config()
    });
    connect_persistent(&mut h, 1, "c", 100);
    sub(&mut h, 1, "t", QoS::AtLeastOnce);
    h.connect(2, "pub", V5, true);
    assert_eq!(
        pubs(&mut h, 2, publish("t", QoS::AtLeastOnce, Some(1), "a")),
        ["msg c #0 a sent(1)", "1: PUBLISH a #1", "2! PUBACK 1"]
    );
    assert_eq!(
        pubs(&mut h, 2, publish("t", QoS::AtLeastOnce, Some(2), "b")),
        ["msg c #1 b queued", "2! PUBACK 2"]
    );
    // Sent again under the same seq when it leaves the queue.
    assert_eq!(
        acked(&mut h, 1, AckKind::PubAck, 1),
        ["msg- c #0", "msg c #1 b sent(2)", "1: PUBLISH b #2"]
    );
    assert_eq!(trace(&h.closed(1)), ["session c off exp=100"]);
    assert_eq!(
        pubs(&mut h, 2, publish("t", QoS::AtLeastOnce, Some(3), "c")),
        ["msg c #2 c queued", "2! PUBACK 3"]
    );
    assert_eq!(
        connect_persistent(&mut h, 3, "c", 100),
        [
            "session c on exp=100",
            "3! CONNACK sp",
            "3: PUBLISH b #2 dup"
        ]
    );
    assert_eq!(
        acked(&mut h, 3, AckKind::PubAck, 2),
        ["msg- c #1", "msg c #2 c sent(3)", "3: PUBLISH c #3"]
    );
    // QoS 0 to the same session: nothing durable.
    assert_eq!(
        pubs(&mut h, 2, publish("t", QoS::AtMostOnce, None, "z")),
        ["3: PUBLISH z"]
    );
}

#[test]
fn qos2_messages_of_a_persistent_session() {
    let mut h = H::with(durable_config());
    connect_persistent(&mut h, 1, "c", 100);
    sub(&mut h, 1, "t", QoS::ExactlyOnce);
    h.connect(2, "pub", V5, true);
    assert_eq!(
        pubs(&mut h, 2, publish("t", QoS::ExactlyOnce, Some(7), "m")),
        ["msg c #0 m sent(1)", "1: PUBLISH m #1", "2! PUBREC 7"]
    );
    // The publisher is a clean session: its QoS 2 state is not durable.
    assert_eq!(acked(&mut h, 2, AckKind::PubRel, 7), ["2: PUBCOMP 7"]);
    assert_eq!(
        acked(&mut h, 1, AckKind::PubRec, 1),
        ["msg c #0 m released(1)", "1! PUBREL 1"]
    );
    assert_eq!(acked(&mut h, 1, AckKind::PubRec, 1), ["1: PUBREL 1"]);
    assert_eq!(acked(&mut h, 1, AckKind::PubComp, 1), ["msg- c #0"]);
    // An error PUBREC ends the flow.
    pubs(&mut h, 2, publish("t", QoS::ExactlyOnce, Some(8), "n"));
    let mut rec = Ack::new(AckKind::PubRec, 2);
    rec.reason = ReasonCode::UnspecifiedError;
    assert_eq!(trace(&h.packet(1, Packet::Ack(rec))), ["msg- c #1"]);
}

#[test]
fn incoming_qos2_state_of_a_persistent_session() {
    let mut h = H::with(durable_config());
    connect_persistent(&mut h, 1, "p", 100);
    assert_eq!(
        pubs(&mut h, 1, publish("t", QoS::ExactlyOnce, Some(5), "x")),
        ["qos2 p 5", "1! PUBREC 5"]
    );
    let mut again = publish("t", QoS::ExactlyOnce, Some(5), "x");
    again.dup = true;
    assert_eq!(pubs(&mut h, 1, again), ["1: PUBREC 5"]);
    assert_eq!(
        acked(&mut h, 1, AckKind::PubRel, 5),
        ["qos2- p 5", "1! PUBCOMP 5"]
    );
    assert_eq!(acked(&mut h, 1, AckKind::PubRel, 5), ["1: PUBCOMP 5"]);
    // Routed to a persistent subscriber first, then the packet id is remembered.
    connect_persistent(&mut h, 2, "s", 100);
    sub(&mut h, 2, "t", QoS::ExactlyOnce);
    assert_eq!(
        pubs(&mut h, 1, publish("t", QoS::ExactlyOnce, Some(6), "y")),
        [
            "msg s #0 y sent(1)",
            "2: PUBLISH y #1",
            "qos2 p 6",
            "1! PUBREC 6"
        ]
    );
}

#[test]
fn dropped_messages_are_deleted() {
    let big = "x".repeat(100);
    let mut h = H::with(durable_config());
    h.connect(9, "pub", V5, true);
    for (conn, id) in [(1, "exp"), (2, "big"), (3, "fly")] {
        connect_persistent(&mut h, conn, id, 100);
        sub(&mut h, conn, id, QoS::AtLeastOnce);
    }
    h.closed(1);
    h.closed(2);
    let mut p = publish("exp", QoS::AtLeastOnce, Some(1), "e");
    p.properties.make_mut().message_expiry_interval = Some(1);
    assert_eq!(pubs(&mut h, 9, p), ["msg exp #0 e queued", "9! PUBACK 1"]);
    pubs(&mut h, 9, publish("big", QoS::AtLeastOnce, Some(2), &big));
    pubs(&mut h, 9, publish("fly", QoS::AtLeastOnce, Some(3), &big));
    h.closed(3);
    h.advance_secs(1);
    // Expired in the queue.
    assert_eq!(
        connect_persistent(&mut h, 4, "exp", 100),
        ["session exp on exp=100", "4! CONNACK sp", "msg- exp #0"]
    );
    // Too large for the client's Maximum Packet Size: queued, and in flight.
    for (conn, id) in [(5, "big"), (6, "fly")] {
        let mut c = connect_packet(V5, id, false);
        c.properties.session_expiry_interval = Some(100);
        c.properties.maximum_packet_size = Some(50);
        assert_eq!(
            trace(&h.connect_with(conn, c)),
            [
                format!("session {id} on exp=100"),
                format!("{conn}! CONNACK sp"),
                format!("msg- {id} #0"),
            ]
        );
    }
    // The queue is full: the new message is dropped before it is stored.
    let mut h = H::with(BrokerConfig {
        max_queued_messages: 1,
        ..durable_config()
    });
    h.connect(9, "pub", V5, true);
    connect_persistent(&mut h, 1, "c", 100);
    sub(&mut h, 1, "t", QoS::AtLeastOnce);
    h.closed(1);
    pubs(&mut h, 9, publish("t", QoS::AtLeastOnce, Some(1), "a"));
    assert_eq!(
        pubs(&mut h, 9, publish("t", QoS::AtLeastOnce, Some(2), "b")),
        ["9: PUBACK 2"]
    );
}

#[test]
fn persisted_messages_carry_the_delivered_copy() {
    let mut h = H::with(durable_config());
    connect_persistent(&mut h, 1, "c", 100);
    h.packet(1, subscribe_packet(&[("t", QoS::AtLeastOnce)], Some(3)));
    h.closed(1);
    h.connect(2, "pub", V5, true);
    let out = h.publish(2, publish("t", QoS::ExactlyOnce, Some(1), "m"));
    match persisted(&out).as_slice() {
        [DurableOp::MessagePut {
            client_id,
            seq: 0,
            message,
            state: crate::MessageState::Queued,
        }] => {
            assert_eq!(&**client_id, "c");
            assert_eq!(message.publish.qos, QoS::AtLeastOnce, "granted QoS");
            assert_eq!(message.publish.properties.subscription_identifiers, [3]);
            assert_eq!(message.publish.payload, Bytes::from_static(b"m"));
            assert_eq!(message.publish.packet_id, None);
        }
        other => panic!("{other:?}"),
    }
}

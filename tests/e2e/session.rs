//! Persistent sessions: offline queueing, Session Present, clean sessions, v5 session expiry,
//! redelivery with DUP, the offline queue limit and message expiry.

use crate::connect::{connect, connect_ok, connect_packet, persistent, publish, V3, V5};
use crate::harness::{v4, v5, Midge};
use midge_codec::{Connect, ProtocolVersion, QoS};
use std::time::Duration;

async fn offline_messages_are_queued(v: ProtocolVersion) {
    let m = Midge::start();
    let (mut s, ack) = connect_ok(&m, persistent(v, "sleeper")).await;
    assert!(!ack.session_present);
    s.subscribe("off/q1", QoS::AtLeastOnce).await;
    s.subscribe("off/q2", QoS::ExactlyOnce).await;
    s.subscribe("off/q0", QoS::AtMostOnce).await;
    s.disconnect().await;

    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("off/q1", QoS::AtLeastOnce, b"one").await;
    publ.publish("off/q2", QoS::ExactlyOnce, b"two").await;
    publ.publish("off/q1", QoS::ExactlyOnce, b"three").await;
    // QoS 0 for an offline session is not queued by default (queue_qos0_messages = false).
    publ.publish("off/q0", QoS::AtMostOnce, b"zero").await;

    let (mut s, ack) = connect_ok(&m, persistent(v, "sleeper")).await;
    assert!(ack.session_present);
    let got: Vec<(String, Vec<u8>, QoS)> = [
        s.recv_publish().await,
        s.recv_publish().await,
        s.recv_publish().await,
    ]
    .into_iter()
    .map(|p| (p.topic.to_string(), p.payload.to_vec(), p.qos))
    .collect();
    assert_eq!(
        got,
        vec![
            ("off/q1".to_string(), b"one".to_vec(), QoS::AtLeastOnce),
            ("off/q2".to_string(), b"two".to_vec(), QoS::ExactlyOnce),
            ("off/q1".to_string(), b"three".to_vec(), QoS::AtLeastOnce),
        ]
    );
    s.expect_silence().await;
    // The subscriptions survived too.
    publ.publish("off/q1", QoS::AtLeastOnce, b"live").await;
    assert_eq!(&s.recv_publish().await.payload[..], b"live");
}

// MQTT-3.1.2-4 / MQTT-3.1.2-5 (3.1.1): CleanSession=0 resumes the session; QoS 1 and 2
// messages for it are stored while it is disconnected; MQTT-3.2.2-2: Session Present 1.
#[tokio::test]
async fn v3_persistent_session_receives_offline_messages() {
    offline_messages_are_queued(V3).await;
}

// MQTT-3.1.2-5 / MQTT-3.1.2-23 / MQTT-3.2.2-3 (v5): clean start 0 with a session expiry
// interval keeps the session and its queued messages.
#[tokio::test]
async fn v5_persistent_session_receives_offline_messages() {
    offline_messages_are_queued(V5).await;
}

// rumqttc 3.1.1 client with clean session false: Session Present and queued delivery.
#[tokio::test]
async fn rumqttc_v4_persistent_session() {
    let m = Midge::start();
    let (c, present, mut rx) = v4::connect_with(v4::options(&m, "r4-persist", false)).await;
    assert!(!present);
    v4::subscribe(&c, &mut rx, "r4p/t", v4::QoS::AtLeastOnce).await;
    c.disconnect().await.unwrap();
    let _ = crate::harness::next_matching(&mut rx, |_| None::<()>).await;

    let mut publ = connect(&m, V5, "pub").await;
    publ.publish("r4p/t", QoS::AtLeastOnce, b"while away").await;

    let (_c, present, mut rx) = v4::connect_with(v4::options(&m, "r4-persist", false)).await;
    assert!(present);
    let p = v4::publish(&mut rx).await;
    assert_eq!(&p.payload[..], b"while away");
}

async fn clean_session_discards(v: ProtocolVersion) {
    let m = Midge::start();
    let (mut s, _) = connect_ok(&m, persistent(v, "cleaner")).await;
    s.subscribe("clean/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("clean/t", QoS::AtLeastOnce, b"queued").await;

    let (mut s, ack) = connect_ok(&m, connect_packet(v, "cleaner", true)).await;
    assert!(!ack.session_present);
    s.expect_silence().await;
    publ.publish("clean/t", QoS::AtLeastOnce, b"after").await;
    s.expect_silence().await;
    s.disconnect().await;

    // The clean session is not kept either: the next persistent connect starts fresh.
    let (s, ack) = connect_ok(&m, persistent(v, "cleaner")).await;
    assert!(!ack.session_present);
    s.disconnect().await;
}

// MQTT-3.1.2-6 (3.1.1): CleanSession=1 discards any previous session and the new session
// lasts only as long as the connection; MQTT-3.2.2-1: Session Present 0.
#[tokio::test]
async fn v3_clean_session_discards() {
    clean_session_discards(V3).await;
}

// MQTT-3.1.2-4 (v5): clean start 1 discards the existing session; MQTT-3.2.2-2.
#[tokio::test]
async fn v5_clean_start_discards() {
    clean_session_discards(V5).await;
}

fn expiring(id: &str, secs: Option<u32>) -> Connect {
    let mut c = connect_packet(V5, id, false);
    c.properties.session_expiry_interval = secs;
    c
}

// MQTT-3.1.2-23 (v5): the session is kept only for the Session Expiry Interval; after it the
// session (and its subscriptions) are gone: Session Present 0 and no queued messages.
#[tokio::test]
async fn v5_session_expires() {
    let m = Midge::start();
    let (mut s, _) = connect_ok(&m, expiring("brief", Some(1))).await;
    s.subscribe("exp/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publ = connect(&m, V5, "pub").await;
    publ.publish("exp/t", QoS::AtLeastOnce, b"lost").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (mut s, ack) = connect_ok(&m, expiring("brief", Some(60))).await;
    assert!(!ack.session_present);
    s.expect_silence().await;

    // Within the interval the session is still there.
    s.subscribe("exp/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    publ.publish("exp/t", QoS::AtLeastOnce, b"kept").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (mut s, ack) = connect_ok(&m, expiring("brief", Some(60))).await;
    assert!(ack.session_present);
    assert_eq!(&s.recv_publish().await.payload[..], b"kept");
}

// 3.1.2.11.2 (v5): an absent Session Expiry Interval means 0: the session ends when the
// network connection closes, even with clean start 0.
#[tokio::test]
async fn v5_session_expiry_zero_ends_with_connection() {
    let m = Midge::start();
    let (mut s, _) = connect_ok(&m, expiring("zero", None)).await;
    s.subscribe("zero/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let (_s, ack) = connect_ok(&m, expiring("zero", Some(60))).await;
    assert!(!ack.session_present);
}

// 3.14.2.2.2 (v5): the client may set a session expiry in DISCONNECT if it
// was non-zero in CONNECT; here it shortens 300 s to 0, ending the session.
#[tokio::test]
async fn v5_disconnect_can_shorten_session_expiry() {
    let m = Midge::start();
    let (mut s, _) = connect_ok(&m, persistent(V5, "shorten")).await;
    s.subscribe("sh/t", QoS::AtLeastOnce).await;
    let mut d = midge_codec::Disconnect::new(midge_codec::ReasonCode::Success);
    d.properties.make_mut().session_expiry_interval = Some(0);
    s.send(&midge_codec::Packet::Disconnect(d)).await;
    assert!(s.expect_closed().await.is_empty());
    let (_s, ack) = connect_ok(&m, persistent(V5, "shorten")).await;
    assert!(!ack.session_present);
}

async fn unacked_resent_with_dup(v: ProtocolVersion) {
    let m = Midge::start();
    let (mut s, _) = connect_ok(&m, persistent(v, "forgetful")).await;
    s.subscribe("dup/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("dup/t", QoS::AtLeastOnce, b"ack me").await;
    let first = s.expect_publish().await;
    assert!(!first.dup);
    drop(s); // never acknowledged

    let (mut s, ack) = connect_ok(&m, persistent(v, "forgetful")).await;
    assert!(ack.session_present);
    let again = s.expect_publish().await;
    assert!(again.dup, "re-sent PUBLISH must have DUP=1: {again:?}");
    assert_eq!(again.packet_id, first.packet_id, "original packet id");
    assert_eq!(&again.payload[..], b"ack me");
    assert_eq!(again.qos, QoS::AtLeastOnce);
    s.ack(&again).await;
    s.expect_silence().await;
    drop(s);
    // Acknowledged: not sent a third time.
    let (mut s, _) = connect_ok(&m, persistent(v, "forgetful")).await;
    s.expect_silence().await;
}

// MQTT-4.4.0-1 (3.1.1): unacknowledged QoS 1 PUBLISH packets are re-sent on reconnect with
// the original packet id; MQTT-3.3.1-1: DUP=1 on re-delivery.
#[tokio::test]
async fn v3_unacked_message_resent_with_dup() {
    unacked_resent_with_dup(V3).await;
}

// MQTT-4.4.0-1 / MQTT-3.3.1-1 (v5): same for v5.
#[tokio::test]
async fn v5_unacked_message_resent_with_dup() {
    unacked_resent_with_dup(V5).await;
}

// max_queued_messages: an offline session queues at most that many messages; the rest are
// dropped, and what is kept is delivered in order.
#[tokio::test]
async fn offline_queue_limit_drops_excess() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAX_QUEUED_MESSAGES", "5")]);
    for v in [V3, V5] {
        let id = format!("limited-{v:?}");
        let (mut s, _) = connect_ok(&m, persistent(v, &id)).await;
        s.subscribe("lim/t", QoS::AtLeastOnce).await;
        s.disconnect().await;
        let mut publ = connect(&m, V5, "pub").await;
        for i in 0..12u16 {
            publ.send_publish(publish("lim/t", QoS::AtLeastOnce, Some(i + 1), &[i as u8]))
                .await;
        }
        let (mut s, ack) = connect_ok(&m, persistent(v, &id)).await;
        assert!(ack.session_present);
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(s.recv_publish().await.payload[0]);
        }
        s.expect_silence().await;
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        s.disconnect().await;
    }
}

// MQTT-3.3.2-5 (v5): a queued message whose Message Expiry Interval has passed is not
// delivered; MQTT-3.3.2-6: a delivered one carries the interval minus the time it waited.
#[tokio::test]
async fn v5_message_expiry_while_queued() {
    let m = Midge::start();
    let (mut s, _) = connect_ok(&m, persistent(V5, "exp-sub")).await;
    s.subscribe("mexp/t", QoS::AtLeastOnce).await;
    s.disconnect().await;

    let mut publ = connect(&m, V5, "exp-pub").await;
    let mut short = publish("mexp/t", QoS::AtLeastOnce, Some(1), b"short");
    short.properties.make_mut().message_expiry_interval = Some(1);
    publ.send_publish(short).await;
    let mut long = publish("mexp/t", QoS::AtLeastOnce, Some(2), b"long");
    long.properties.make_mut().message_expiry_interval = Some(30);
    publ.send_publish(long).await;
    publ.send_publish(publish("mexp/t", QoS::AtLeastOnce, Some(3), b"forever"))
        .await;
    tokio::time::sleep(Duration::from_millis(2300)).await;

    let (mut s, _) = connect_ok(&m, persistent(V5, "exp-sub")).await;
    let p = s.recv_publish().await;
    assert_eq!(&p.payload[..], b"long");
    let left = p
        .properties
        .message_expiry_interval
        .expect("expiry interval");
    assert!(
        (26..=28).contains(&left),
        "30 s after waiting ~2.3 s, got {left}"
    );
    let p = s.recv_publish().await;
    assert_eq!(&p.payload[..], b"forever");
    assert_eq!(p.properties.message_expiry_interval, None);
    s.expect_silence().await;
}

// MQTT-3.3.2-5 via rumqttc v5: a QoS 1 message with expiry 1 s published while the v5
// subscriber is away is gone when it comes back 2 s later.
#[tokio::test]
async fn rumqttc_v5_expired_message_not_delivered() {
    let m = Midge::start();
    let mut o = v5::options(&m, "r5-exp", false);
    o.set_session_expiry_interval(Some(60));
    let (c, _, mut rx) = v5::connect_with(o.clone()).await;
    v5::subscribe(&c, &mut rx, "r5exp/t", v5::QoS::AtLeastOnce).await;
    c.disconnect().await.unwrap();
    let _ = crate::harness::next_matching(&mut rx, |_| None::<()>).await;

    let (publ, _prx) = v5::connect(&m, "r5-exp-pub").await;
    let props = v5::PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    publ.publish_with_properties("r5exp/t", v5::QoS::AtLeastOnce, false, "gone", props)
        .await
        .unwrap();
    publ.publish("r5exp/t", v5::QoS::AtLeastOnce, false, "stays")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (_c, ack, mut rx) = v5::connect_with(o).await;
    assert!(ack.session_present);
    let p = v5::publish(&mut rx).await;
    assert_eq!(&p.payload[..], b"stays");
    crate::harness::nothing_matching(&mut rx, |p| matches!(p, v5::Packet::Publish(_))).await;
}

// 3.2.2.3.2 (v5): a server that grants less than the requested Session Expiry Interval
// (max_session_expiry = 1) says so in CONNACK, and the session ends after the granted time.
#[tokio::test]
async fn v5_session_expiry_capped_by_server() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAX_SESSION_EXPIRY", "1")]);
    let (mut s, ack) = connect_ok(&m, persistent(V5, "capped")).await;
    assert_eq!(ack.properties.session_expiry_interval, Some(1));
    s.subscribe("cap/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (_s, ack) = connect_ok(&m, persistent(V5, "capped")).await;
    assert!(!ack.session_present);
}

// 3.14.2.2.2 (v5): a non-zero Session Expiry Interval in DISCONNECT after CONNECT had 0 is a
// Protocol Error: the server answers DISCONNECT 0x82, and since the client's DISCONNECT was
// not valid the will is published (MQTT-3.1.2-8).
#[tokio::test]
async fn v5_disconnect_with_expiry_after_zero_is_protocol_error() {
    let m = Midge::start();
    let mut w = connect(&m, V5, "watch").await;
    w.subscribe("gone/#", QoS::AtMostOnce).await;
    let mut conn = connect_packet(V5, "zero-then-some", true);
    conn.will = Some(crate::connect::will(
        "gone/z",
        b"bye",
        QoS::AtMostOnce,
        false,
    ));
    let (mut c, _) = connect_ok(&m, conn).await;
    let mut d = midge_codec::Disconnect::new(midge_codec::ReasonCode::Success);
    d.properties.make_mut().session_expiry_interval = Some(60);
    c.send(&midge_codec::Packet::Disconnect(d)).await;
    c.expect_disconnect(midge_codec::ReasonCode::ProtocolError)
        .await;
    let p = w.recv_publish().await;
    assert_eq!((&*p.topic, &p.payload[..]), ("gone/z", &b"bye"[..]));
}

// queue_qos0_messages = true: QoS 0 messages are queued for an offline persistent session too.
#[tokio::test]
async fn qos0_queued_when_configured() {
    let m = Midge::start_with(&[("MIDGE__BROKER__QUEUE_QOS0_MESSAGES", "true")]);
    let (mut s, _) = connect_ok(&m, persistent(V3, "q0")).await;
    s.subscribe("q0/t", QoS::AtMostOnce).await;
    s.disconnect().await;
    let mut publ = connect(&m, V3, "pub").await;
    publ.publish("q0/t", QoS::AtMostOnce, b"zero").await;
    publ.publish("q0/t", QoS::AtLeastOnce, b"one").await;
    let (mut s, ack) = connect_ok(&m, persistent(V3, "q0")).await;
    assert!(ack.session_present);
    let p = s.recv_publish().await;
    assert_eq!((&p.payload[..], p.qos), (&b"zero"[..], QoS::AtMostOnce));
    let p = s.recv_publish().await;
    assert_eq!((&p.payload[..], p.qos), (&b"one"[..], QoS::AtMostOnce));
    s.expect_silence().await;
}

// A broker restarted on the same port (SIGKILL, then start again) accepts clients again at
// once and routes messages; persistent clients reconnect with clean session 0 and work.
#[tokio::test]
async fn clients_reconnect_after_broker_restart() {
    let mut m = Midge::start();
    let (mut s, _) = connect_ok(&m, persistent(V3, "survivor")).await;
    s.subscribe("rs/t", QoS::AtLeastOnce).await;
    m.restart();
    assert!(s.expect_closed().await.is_empty(), "SIGKILL sends nothing");
    let (mut s, _) = connect_ok(&m, persistent(V3, "survivor")).await;
    s.subscribe("rs/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V5, "pub").await;
    publ.publish("rs/t", QoS::AtLeastOnce, b"after restart")
        .await;
    assert_eq!(&s.recv_publish().await.payload[..], b"after restart");
    assert!(m.is_running());
}

// MQTT-4.4.0-1 and 4.6 (v5): with Receive Maximum 2, five QoS 1 messages: two are in flight
// and unacknowledged when the client goes away, three are queued. On reconnect the two are
// re-sent first (DUP=1, same ids), then the three queued ones, in order, never more than the
// new connection's Receive Maximum at a time.
#[tokio::test]
async fn v5_inflight_and_queued_resume_in_order() {
    let m = Midge::start();
    let conn = |rm: u16| {
        let mut c = persistent(V5, "resumer");
        c.properties.receive_maximum = Some(rm);
        c
    };
    let (mut s, _) = connect_ok(&m, conn(2)).await;
    s.subscribe("res/t", QoS::AtLeastOnce).await;
    let mut publ = connect(&m, V3, "pub").await;
    for i in 0..5u16 {
        publ.send_publish(publish("res/t", QoS::AtLeastOnce, Some(i + 1), &[i as u8]))
            .await;
    }
    let a = s.expect_publish().await;
    let b = s.expect_publish().await;
    assert_eq!((&a.payload[..], &b.payload[..]), (&[0u8][..], &[1u8][..]));
    s.expect_silence().await;
    drop(s);

    let (mut s, ack) = connect_ok(&m, conn(2)).await;
    assert!(ack.session_present);
    let a2 = s.expect_publish().await;
    let b2 = s.expect_publish().await;
    assert_eq!(
        (a2.dup, a2.packet_id, &a2.payload[..]),
        (true, a.packet_id, &[0u8][..])
    );
    assert_eq!(
        (b2.dup, b2.packet_id, &b2.payload[..]),
        (true, b.packet_id, &[1u8][..])
    );
    s.expect_silence().await;
    s.ack(&a2).await;
    s.ack(&b2).await;
    for i in 2..5u8 {
        let p = s.recv_publish().await;
        assert_eq!((p.dup, &p.payload[..]), (false, &[i][..]));
    }
    s.expect_silence().await;
}

// MQTT-3.1.4-3 / MQTT-4.4.0-1: when a persistent session is taken over while a QoS 1 message
// is unacknowledged, the new connection gets it again with DUP=1.
#[tokio::test]
async fn takeover_resends_unacked() {
    let m = Midge::start();
    for v in [V3, V5] {
        let id = format!("taken-{v:?}");
        let (mut old, _) = connect_ok(&m, persistent(v, &id)).await;
        old.subscribe("tk/t", QoS::AtLeastOnce).await;
        let mut publ = connect(&m, V3, "pub").await;
        publ.publish("tk/t", QoS::AtLeastOnce, b"pending").await;
        let first = old.expect_publish().await;
        let (mut new, ack) = connect_ok(&m, persistent(v, &id)).await;
        assert!(ack.session_present);
        old.expect_disconnect(midge_codec::ReasonCode::SessionTakenOver)
            .await;
        let again = new.expect_publish().await;
        assert_eq!(
            (again.dup, again.packet_id, &again.payload[..]),
            (true, first.packet_id, &b"pending"[..])
        );
        new.ack(&again).await;
        new.expect_silence().await;
        new.disconnect().await;
    }
}

//! Will messages: abrupt close, DISCONNECT, v5 DISCONNECT 0x04, will retain, will delay,
//! keep alive timeout and protocol errors.

use crate::connect::{connect, connect_ok, connect_packet, will, Client, V3, V5};
use crate::harness::{v4, v5, Midge};
use midge_codec::{Connect, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};
use std::time::{Duration, Instant};

fn with_will(v: ProtocolVersion, id: &str, topic: &str, qos: QoS, retain: bool) -> Connect {
    let mut c = connect_packet(v, id, true);
    c.will = Some(will(topic, format!("{id} is gone").as_bytes(), qos, retain));
    c
}

async fn watcher(m: &Midge, filter: &str) -> Client {
    let mut w = connect(m, V5, "watcher").await;
    w.subscribe(filter, QoS::ExactlyOnce).await;
    w
}

async fn expect_will(w: &mut Client, topic: &str, id: &str, qos: QoS) {
    let p = w.recv_publish().await;
    assert_eq!(&*p.topic, topic);
    assert_eq!(p.payload, format!("{id} is gone").as_bytes());
    assert_eq!(p.qos, qos);
}

async fn will_on_abrupt_close(v: ProtocolVersion) {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let id = format!("dying-{}", qos as u8);
        let topic = format!("will/{}", qos as u8);
        let (c, _) = connect_ok(&m, with_will(v, &id, &topic, qos, false)).await;
        drop(c); // TCP close without DISCONNECT
        expect_will(&mut w, &topic, &id, qos).await;
    }
    w.expect_silence().await;
}

// MQTT-3.1.2-8 (3.1.1): the will is published when the network connection is closed without
// DISCONNECT, at the will QoS.
#[tokio::test]
async fn v3_will_on_abrupt_close() {
    will_on_abrupt_close(V3).await;
}

// MQTT-3.1.2-8 (v5): the will is published after the network connection closes (no delay set).
#[tokio::test]
async fn v5_will_on_abrupt_close() {
    will_on_abrupt_close(V5).await;
}

// MQTT-3.1.2-8 with rumqttc: a 3.1.1 client whose event loop is killed (the task and socket
// dropped) has its will published.
#[tokio::test]
async fn rumqttc_client_killed_publishes_will() {
    let m = Midge::start();
    let (sub, mut rx) = v4::connect(&m, "rw-sub").await;
    v4::subscribe(&sub, &mut rx, "rw/t", v4::QoS::AtLeastOnce).await;
    let mut o = v4::options(&m, "rw-dying", true);
    o.set_last_will(v4::LastWill::new(
        "rw/t",
        "rumqttc gone",
        v4::QoS::AtLeastOnce,
        false,
    ));
    let (client, mut el) = v4::AsyncClient::new(o, 10);
    let task = tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                return;
            }
        }
    });
    // Let it connect, then kill the task (drops the event loop and its socket).
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();
    drop(client);
    let p = v4::publish(&mut rx).await;
    assert_eq!(p.topic, "rw/t");
    assert_eq!(&p.payload[..], b"rumqttc gone");
    assert_eq!(p.qos, v4::QoS::AtLeastOnce);
}

async fn no_will_after_disconnect(v: ProtocolVersion) {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let (c, _) = connect_ok(
        &m,
        with_will(v, "polite", "will/p", QoS::AtLeastOnce, false),
    )
    .await;
    c.disconnect().await;
    w.expect_silence().await;
}

// MQTT-3.1.2-10 (3.1.1): the will is removed on receipt of DISCONNECT and not published.
#[tokio::test]
async fn v3_no_will_after_disconnect() {
    no_will_after_disconnect(V3).await;
}

// MQTT-3.14.4-3 / MQTT-3.1.2-10 (v5): DISCONNECT 0x00 discards the will.
#[tokio::test]
async fn v5_no_will_after_normal_disconnect() {
    no_will_after_disconnect(V5).await;
}

// 3.14.2.1 (v5): DISCONNECT with reason 0x04 (Disconnect with Will Message) publishes the will.
#[tokio::test]
async fn v5_disconnect_with_will_message() {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let (mut c, _) = connect_ok(
        &m,
        with_will(V5, "wants-will", "will/x", QoS::AtLeastOnce, false),
    )
    .await;
    c.send(&Packet::Disconnect(Disconnect::new(
        ReasonCode::DisconnectWithWill,
    )))
    .await;
    assert!(c.expect_closed().await.is_empty());
    expect_will(&mut w, "will/x", "wants-will", QoS::AtLeastOnce).await;
    w.expect_silence().await;
}

// rumqttc v5 client: DISCONNECT (0x00) via the client API sends no will.
#[tokio::test]
async fn rumqttc_v5_disconnect_sends_no_will() {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let mut o = v5::options(&m, "r5-polite", true);
    o.set_last_will(v5::LastWill::new(
        "will/r5",
        "x",
        v5::QoS::AtLeastOnce,
        false,
        None,
    ));
    let (c, _ack, mut rx) = v5::connect_with(o).await;
    c.disconnect().await.unwrap();
    // The event loop ends once the broker closes.
    let end = crate::harness::next_matching(&mut rx, |_| None::<()>).await;
    assert!(end.is_err());
    w.expect_silence().await;
}

async fn will_retain(v: ProtocolVersion) {
    let m = Midge::start();
    let (c, _) = connect_ok(
        &m,
        with_will(v, "ret-will", "will/ret", QoS::AtLeastOnce, true),
    )
    .await;
    drop(c);
    // Nobody was subscribed; a later subscriber gets it as a retained message.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut late = connect(&m, v, "late").await;
        late.subscribe("will/ret", QoS::AtLeastOnce).await;
        match late.raw.recv_within(Duration::from_millis(300)).await {
            Ok(Some(Packet::Publish(p))) => {
                assert!(p.retain);
                assert_eq!(&p.payload[..], b"ret-will is gone");
                assert_eq!(p.qos, QoS::AtLeastOnce);
                late.ack(&p).await;
                return;
            }
            Ok(other) => panic!("expected the retained will, got {other:?}"),
            Err(()) => assert!(Instant::now() < deadline, "retained will never appeared"),
        }
        late.disconnect().await;
    }
}

// MQTT-3.1.2-17 (3.1.1): Will Retain 1 publishes the will as a retained message.
#[tokio::test]
async fn v3_will_retain() {
    will_retain(V3).await;
}

// MQTT-3.1.2-15 (v5): Will Retain 1 publishes the will as a retained message.
#[tokio::test]
async fn v5_will_retain() {
    will_retain(V5).await;
}

fn delayed(id: &str, delay: u32, expiry: u32) -> Connect {
    let mut c = with_will(V5, id, "will/d", QoS::AtLeastOnce, false);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(expiry);
    c.will.as_mut().unwrap().properties.will_delay_interval = Some(delay);
    c
}

// MQTT-3.1.2-8 (v5): with a Will Delay Interval the will is published only after the delay.
#[tokio::test]
async fn v5_will_delay() {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let (c, _) = connect_ok(&m, delayed("delayed", 2, 60)).await;
    let closed = Instant::now();
    drop(c);
    // Nothing for the first ~1.5 s.
    match w.raw.recv_within(Duration::from_millis(1500)).await {
        Err(()) => {}
        Ok(p) => panic!("will published before its delay: {p:?}"),
    }
    expect_will(&mut w, "will/d", "delayed", QoS::AtLeastOnce).await;
    let took = closed.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_secs(4),
        "will after {took:?}, delay was 2 s"
    );
}

// MQTT-3.1.3-9 (v5): if a new network connection to the session is made before the Will Delay
// Interval has passed, the will MUST NOT be sent.
#[tokio::test]
async fn v5_will_delay_cancelled_by_reconnect() {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let (c, _) = connect_ok(&m, delayed("back", 2, 60)).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_c, ack) = connect_ok(&m, delayed("back", 2, 60)).await;
    assert!(ack.session_present);
    match w.raw.recv_within(Duration::from_millis(2500)).await {
        Err(()) => {}
        Ok(p) => panic!("will published although the client came back: {p:?}"),
    }
}

// MQTT-3.1.2-8 (v5): "...after the Will Delay Interval has elapsed or the Session ends": a
// session expiry (1 s) shorter than the will delay (60 s) publishes the will when the session
// ends.
#[tokio::test]
async fn v5_will_published_when_session_ends_before_delay() {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let (c, _) = connect_ok(&m, delayed("short-session", 60, 1)).await;
    let closed = Instant::now();
    drop(c);
    expect_will(&mut w, "will/d", "short-session", QoS::AtLeastOnce).await;
    let took = closed.elapsed();
    assert!(took <= Duration::from_secs(4), "will after {took:?}");
}

async fn will_on_keepalive_timeout(v: ProtocolVersion) {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let mut conn = with_will(v, "mute", "will/ka", QoS::AtLeastOnce, false);
    conn.keep_alive = 1;
    let (mut c, _) = connect_ok(&m, conn).await;
    let start = Instant::now();
    expect_will(&mut w, "will/ka", "mute", QoS::AtLeastOnce).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took <= Duration::from_secs(4),
        "will after {took:?}"
    );
    c.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
}

// MQTT-3.1.2-8 / MQTT-3.1.2-24 (3.1.1): a keep alive timeout closes the connection and
// publishes the will.
#[tokio::test]
async fn v3_will_on_keepalive_timeout() {
    will_on_keepalive_timeout(V3).await;
}

// MQTT-3.1.2-8 / MQTT-3.1.2-22 (v5): same for v5.
#[tokio::test]
async fn v5_will_on_keepalive_timeout() {
    will_on_keepalive_timeout(V5).await;
}

async fn will_on_protocol_error(v: ProtocolVersion) {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let (mut c, _) = connect_ok(&m, with_will(v, "bad", "will/err", QoS::AtMostOnce, false)).await;
    // PUBLISH with QoS 3: malformed.
    c.send_bytes(&[0x36, 0x05, 0x00, 0x01, b'a', 0x00, 0x01])
        .await;
    c.expect_disconnect(ReasonCode::MalformedPacket).await;
    expect_will(&mut w, "will/err", "bad", QoS::AtMostOnce).await;
}

// 3.1.2.5 (3.1.1): the will is published when the server closes the connection because of a
// protocol error (MQTT-3.1.2-8).
#[tokio::test]
async fn v3_will_on_protocol_error() {
    will_on_protocol_error(V3).await;
}

// 3.1.2.5 (v5): same, the v5 client first gets DISCONNECT 0x81.
#[tokio::test]
async fn v5_will_on_protocol_error() {
    will_on_protocol_error(V5).await;
}

// 3.1.3.2 (v5): the will's properties (Payload Format Indicator, Content Type, Response Topic,
// Correlation Data, User Properties, Message Expiry) go out with the will message (MQTT-3.3.2-4,
// -15, -16, -17, -20 apply to the published will); the Will Delay Interval does not.
#[tokio::test]
async fn v5_will_properties_pass_through() {
    let m = Midge::start();
    let mut w = watcher(&m, "will/#").await;
    let mut conn = with_will(V5, "rich", "will/props", QoS::AtLeastOnce, false);
    {
        let props = &mut conn.will.as_mut().unwrap().properties;
        props.payload_format_indicator = Some(1);
        props.content_type = Some("text/plain".into());
        props.response_topic = Some("will/reply".into());
        props.correlation_data = Some(bytes::Bytes::from_static(b"\x01\x02"));
        props.user_properties = vec![("a".into(), "1".into()), ("a".into(), "2".into())];
        props.message_expiry_interval = Some(120);
    }
    let (c, _) = connect_ok(&m, conn).await;
    drop(c);
    let p = w.recv_publish().await;
    assert_eq!(&p.payload[..], b"rich is gone");
    let got = &p.properties;
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.response_topic.as_deref(), Some("will/reply"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"\x01\x02"[..]));
    assert_eq!(
        got.user_properties,
        vec![
            ("a".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string())
        ]
    );
    let e = got.message_expiry_interval.expect("message expiry");
    assert!((119..=120).contains(&e), "{e}");
}

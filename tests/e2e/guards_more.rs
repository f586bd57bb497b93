//! More sandbox guards over real sockets (docs/security.md, "Limits and sandbox guards"): the
//! per-address connection rate, a connection flood from one address, the publish byte rate with
//! `publish_rate_action = "disconnect"`, shallow wildcards granted without the retained replay,
//! and the counters of the subscription guards.
//!
//! Clients of "another address" bind a different loopback address (127.0.0.2, ...) before
//! connecting: on Linux the whole of 127.0.0.0/8 reaches a listener bound to 127.0.0.1.

use crate::connect::{
    connect, connect_packet, publish, qos_opts, subscribe_packet, Client, V3, V5,
};
use crate::harness::{Midge, WAIT};
use crate::metrics::{scrape, scrape_until, value};
use bytes::BytesMut;
use midge_codec::{ConnAck, Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// The address the tests' flooding or rate-limited clients come from.
const LOCAL: [u8; 4] = [127, 0, 0, 1];
/// Another client address, which the guards must treat separately.
const OTHER: [u8; 4] = [127, 0, 0, 2];

const LIMIT_REJECTIONS: &str = "midge_limit_rejections_total";

/// Opens a TCP connection to `addr` from the local address `from` (port chosen by the OS).
pub(crate) async fn tcp_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .unwrap_or_else(|e| panic!("bind {from:?}: {e}"));
    let stream = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("TCP connect in time")
        .expect("TCP connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads packets of `version` from `s` until the broker closes the connection (end of stream
/// or a reset), or until `stop` accepts one; returns them. Fails after [`WAIT`], on
/// undecodable bytes, and on a packet cut short by the close.
pub(crate) async fn read_packets(
    s: &mut TcpStream,
    version: ProtocolVersion,
    mut stop: impl FnMut(&Packet) -> bool,
) -> Vec<Packet> {
    let deadline = Instant::now() + WAIT;
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    loop {
        while let Some(p) = midge_codec::decode(&mut buf, version, midge_codec::MAX_PACKET_SIZE)
            .unwrap_or_else(|e| panic!("broker sent undecodable bytes: {e}"))
        {
            let done = stop(&p);
            seen.push(p);
            if done {
                return seen;
            }
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("neither closed nor done within WAIT; got {seen:?}"));
        match read {
            Ok(0) | Err(_) => {
                assert!(buf.is_empty(), "connection closed inside a packet: {buf:?}");
                return seen;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends `connect` on `s` and returns the CONNACK, or `None` if the broker closed the
/// connection without sending a byte. A write error (the broker already closed) counts as
/// closed too.
pub(crate) async fn send_connect(s: &mut TcpStream, connect: Connect) -> Option<ConnAck> {
    let version = connect.protocol;
    let mut out = BytesMut::new();
    midge_codec::encode(&Packet::Connect(Box::new(connect)), version, &mut out).expect("encode");
    // A refused connection may be closed (or reset) before or while we write.
    let _ = s.write_all(&out).await;
    let seen = read_packets(s, version, |_| true).await;
    match seen.as_slice() {
        [] => None,
        [Packet::ConnAck(ack)] => Some(ack.clone()),
        other => panic!("expected CONNACK or a bare close, got {other:?}"),
    }
}

/// Connects a v5 client `id` and sends `count` QoS 0 publishes of `payload` to `topic` in one
/// write; asserts the broker answers with exactly DISCONNECT 0x96 Message rate too high, then
/// closes. The write may fail part-way: the broker can close before it has read everything.
pub(crate) async fn flood_until_0x96(
    m: &Midge,
    id: &str,
    topic: &str,
    payload: &[u8],
    count: usize,
) {
    let mut s = tcp_from(LOCAL, m.addr()).await;
    let ack = send_connect(&mut s, connect_packet(V5, id, true))
        .await
        .expect("CONNACK");
    assert_eq!(ack.reason, ReasonCode::Success);
    let mut out = BytesMut::new();
    for _ in 0..count {
        let p = publish(topic, QoS::AtMostOnce, None, payload);
        midge_codec::encode(&Packet::Publish(p), V5, &mut out).expect("encode");
    }
    let _ = s.write_all(&out).await;
    let seen = read_packets(&mut s, V5, |_| false).await;
    match seen.as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason, ReasonCode::MessageRateTooHigh),
        other => panic!(
            "expected DISCONNECT 0x96 then close, got {other:?}; log:\n{}",
            m.log()
        ),
    }
}

/// A clean CONNECT with client id `id` from a fresh connection; its CONNACK reason, or `None`
/// for a bare close. The connection is returned so an admitted client stays connected.
async fn try_connect(
    from: [u8; 4],
    addr: SocketAddr,
    version: ProtocolVersion,
    id: &str,
) -> (TcpStream, Option<ReasonCode>) {
    let mut s = tcp_from(from, addr).await;
    let ack = send_connect(&mut s, connect_packet(version, id, true)).await;
    (s, ack.map(|a| a.reason))
}

// `limits.max_connection_rate_per_ip = 5`: the sixth and later connections one address opens
// within a second are accepted and closed at once without a byte (before CONNECT is even read,
// so no CONNACK reason can be given; docs/security.md), counted as
// `midge_limit_rejections_total{reason="connection_rate"}`. Another address is admitted
// meanwhile (CONNACK 0x00, MQTT 5 3.2.2.2), and the first one is admitted again once its
// one-second window has passed.
#[tokio::test]
async fn connections_over_the_per_ip_rate_are_closed_and_other_addresses_get_in() {
    let m = Midge::start_with(&[("MIDGE__LIMITS__MAX_CONNECTION_RATE_PER_IP", "5")]);
    // Eight connections back to back, well within one second; the broker accepts them in
    // the order they were made (the kernel's accept queue is FIFO).
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(tcp_from(LOCAL, m.addr()).await);
    }
    let mut refused = streams.split_off(5);
    for (i, s) in refused.iter_mut().enumerate() {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("closed promptly")
            .unwrap_or(0);
        assert_eq!(n, 0, "connection #{} must be closed with no bytes", i + 6);
    }
    // The first five were admitted and are served normally.
    for (i, s) in streams.iter_mut().enumerate() {
        let ack = send_connect(s, connect_packet(V5, &format!("rate-{i}"), true)).await;
        assert_eq!(
            ack.map(|a| a.reason),
            Some(ReasonCode::Success),
            "connection #{} within the rate; log:\n{}",
            i + 1,
            m.log()
        );
    }
    // Meanwhile another address gets in at once.
    let (_other, reason) = try_connect(OTHER, m.addr(), V5, "other-address").await;
    assert_eq!(reason, Some(ReasonCode::Success));
    let s = scrape(&m).await;
    assert_eq!(
        value(&s, LIMIT_REJECTIONS, &[("reason", "connection_rate")]),
        3.0
    );
    assert_eq!(
        value(
            &s,
            LIMIT_REJECTIONS,
            &[("reason", "max_connections_per_ip")]
        ),
        0.0
    );
    assert!(
        m.log().contains("max_connection_rate_per_ip"),
        "the refusal is logged with the key that caused it:\n{}",
        m.log()
    );
    // Once the window has passed, 127.0.0.1 is admitted again.
    let deadline = Instant::now() + WAIT;
    let _back = loop {
        let (s, reason) = try_connect(LOCAL, m.addr(), V5, "back-again").await;
        if reason == Some(ReasonCode::Success) {
            break s;
        }
        assert_eq!(reason, None, "refused ones are closed bare");
        assert!(Instant::now() < deadline, "127.0.0.1 never admitted again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
}

/// What became of one connection of a flood.
enum Flooded {
    /// CONNACK 0x00; the connection is kept open until the end of the test.
    Admitted(TcpStream),
    /// Closed without a byte.
    Closed,
}

// A bounded flood (300 concurrent connections with CONNECT, each bounded by WAIT) from one
// address with `max_connections_per_ip = 50` and `max_connection_rate_per_ip = 20`: most are
// closed bare, the rest get CONNACK 0x00; meanwhile a client connected before the flood keeps
// getting its PUBACKs (MQTT-4.3.2-2 / MQTT 5 4.3.2) and a new client from another address gets
// CONNACK 0x00 within WAIT. Every refusal is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_address_does_not_lock_out_anyone_else() {
    const FLOOD: usize = 300;
    let m = Midge::start_with(&[
        ("MIDGE__LIMITS__MAX_CONNECTIONS_PER_IP", "50"),
        ("MIDGE__LIMITS__MAX_CONNECTION_RATE_PER_IP", "20"),
    ]);
    let mut old = connect(&m, V5, "before-the-flood").await;
    let addr = m.addr();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            tokio::spawn(async move {
                let (s, reason) = try_connect(LOCAL, addr, V3, &format!("flood-{i}")).await;
                match reason {
                    Some(ReasonCode::Success) => Flooded::Admitted(s),
                    None => Flooded::Closed,
                    Some(other) => panic!("flood client {i}: CONNACK {other:?}"),
                }
            })
        })
        .collect();
    // While it runs: a client of another address is admitted within WAIT ...
    let (_other, reason) =
        tokio::time::timeout(WAIT, try_connect(OTHER, addr, V5, "other-address"))
            .await
            .expect("the other address got an answer within WAIT");
    assert_eq!(reason, Some(ReasonCode::Success));
    // ... and the client from before the flood goes on being served: each PUBACK within WAIT.
    for id in 1..=20u16 {
        old.send_publish(publish(
            "flood/old",
            QoS::AtLeastOnce,
            Some(id),
            b"still served",
        ))
        .await;
    }
    let mut admitted = Vec::new();
    let mut closed = 0usize;
    for task in flood {
        match task.await.expect("flood task") {
            Flooded::Admitted(s) => admitted.push(s),
            Flooded::Closed => closed += 1,
        }
    }
    assert_eq!(admitted.len() + closed, FLOOD);
    assert!(closed > 0, "the guards never refused anything");
    assert!(
        !admitted.is_empty() && admitted.len() < 50,
        "{} admitted: the rate and the per-address cap bound it",
        admitted.len()
    );
    let s = scrape(&m).await;
    let counted = value(&s, LIMIT_REJECTIONS, &[("reason", "connection_rate")])
        + value(
            &s,
            LIMIT_REJECTIONS,
            &[("reason", "max_connections_per_ip")],
        );
    assert_eq!(counted, closed as f64, "every refusal counted once");
    assert!(value(&s, LIMIT_REJECTIONS, &[("reason", "connection_rate")]) >= 1.0);
    // And the old client still works after the flood.
    old.publish("flood/after", QoS::AtLeastOnce, b"yes").await;
}

// `limits.max_publish_bytes_rate = 10000` with `publish_burst_secs = 1` and
// `publish_rate_action = "disconnect"`: a v5 client sending 10 QoS 0 PUBLISHes of 5000 bytes
// at once (50 kB against a 10 kB bucket) gets DISCONNECT 0x96 Message rate too high (MQTT 5,
// 3.14.2.1) and nothing else before the close; a client within its budget is not affected.
#[tokio::test]
async fn a_v5_client_over_its_publish_byte_rate_is_disconnected_with_0x96() {
    let m = Midge::start_with(&[
        ("MIDGE__LIMITS__MAX_PUBLISH_BYTES_RATE", "10000"),
        ("MIDGE__LIMITS__PUBLISH_BURST_SECS", "1"),
        ("MIDGE__LIMITS__PUBLISH_RATE_ACTION", "disconnect"),
    ]);
    let mut sub = connect(&m, V5, "bytes-sub").await;
    sub.subscribe("bytes/#", QoS::AtLeastOnce).await;
    let mut calm = connect(&m, V5, "bytes-calm").await;
    flood_until_0x96(&m, "bytes-flood", "bytes/flood", &vec![b'x'; 5000], 10).await;
    calm.publish("bytes/calm", QoS::AtLeastOnce, b"within budget")
        .await;
    // The subscriber may get some of the flood's first messages (they were within budget)
    // before the calm one.
    loop {
        let p = sub.recv_publish().await;
        if &*p.topic == "bytes/calm" {
            break;
        }
        assert_eq!(&*p.topic, "bytes/flood");
    }
    let s = scrape_until(&m, "the disconnect counted", |s| {
        value(
            s,
            LIMIT_REJECTIONS,
            &[("reason", "publish_rate_disconnected")],
        ) >= 1.0
    })
    .await;
    assert_eq!(
        value(
            &s,
            LIMIT_REJECTIONS,
            &[("reason", "publish_rate_disconnected")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            LIMIT_REJECTIONS,
            &[("reason", "publish_rate_throttled")]
        ),
        0.0
    );
}

/// Publishes a retained QoS 1 message and completes its flow.
async fn retain(c: &mut Client, topic: &str, payload: &[u8]) {
    let mut p = publish(topic, QoS::AtLeastOnce, Some(1), payload);
    p.retain = true;
    c.send_publish(p).await;
}

// `broker.min_wildcard_depth = 1` with `shallow_wildcard_without_retained = true` (the
// deploy/sandbox.toml setting): "#" is granted (SUBACK 0x00, MQTT 5 3.9.3; v3.1.1 return code
// 0x00) but the retained replay a new subscription normally gets (MQTT-3.3.1-9 in MQTT 5,
// MQTT-3.3.1-6 in 3.1.1) is skipped on purpose, so nobody downloads a whole public broker's
// retained store; live messages still arrive, a deep enough filter still gets the replay, and
// each such grant is counted as `{reason="min_wildcard_depth_replay"}`.
#[tokio::test]
async fn shallow_wildcards_are_granted_without_the_retained_replay() {
    let m = Midge::start_with(&[
        ("MIDGE__BROKER__MIN_WILDCARD_DEPTH", "1"),
        ("MIDGE__BROKER__SHALLOW_WILDCARD_WITHOUT_RETAINED", "true"),
    ]);
    let mut publ = connect(&m, V5, "shallow-pub").await;
    retain(&mut publ, "a/b", b"kept").await;

    let mut v5 = connect(&m, V5, "shallow-v5").await;
    let suback = v5
        .subscribe_with(subscribe_packet(1, "#", qos_opts(QoS::AtMostOnce)))
        .await;
    assert_eq!(suback.reasons, vec![ReasonCode::Success]);
    v5.expect_silence().await;
    let mut v3 = connect(&m, V3, "shallow-v3").await;
    let suback = v3
        .subscribe_with(subscribe_packet(1, "#", qos_opts(QoS::AtMostOnce)))
        .await;
    assert_eq!(suback.reasons, vec![ReasonCode::Success]);
    v3.expect_silence().await;

    // Live traffic flows to both.
    publ.publish("a/b", QoS::AtLeastOnce, b"live").await;
    for c in [&mut v5, &mut v3] {
        let p = c.recv_publish().await;
        assert_eq!(
            (&*p.topic, &p.payload[..], p.retain),
            ("a/b", &b"live"[..], false)
        );
    }
    // A filter with a level before its wildcard is not shallow: it gets the replay.
    let mut deep = connect(&m, V5, "deep").await;
    deep.subscribe("a/+", QoS::AtMostOnce).await;
    let p = deep.recv_publish().await;
    assert_eq!(
        (&*p.topic, &p.payload[..], p.retain),
        ("a/b", &b"kept"[..], true)
    );
    let s = scrape(&m).await;
    assert_eq!(
        value(
            &s,
            LIMIT_REJECTIONS,
            &[("reason", "min_wildcard_depth_replay")]
        ),
        2.0
    );
    assert_eq!(
        value(&s, LIMIT_REJECTIONS, &[("reason", "min_wildcard_depth")]),
        0.0
    );
}

// A listener's own `max_connections` caps that listener only: a second client on it is closed
// without a reply and counted as `listener_max_connections`, while the default listener, which
// has no cap of its own, keeps admitting clients.
#[tokio::test]
async fn a_listeners_own_connection_cap_leaves_the_other_listeners_alone() {
    let m = Midge::start_with(&[
        ("MIDGE__LISTENERS__CAPPED__PORT", "0"),
        ("MIDGE__LISTENERS__CAPPED__MAX_CONNECTIONS", "1"),
    ]);
    let capped = m.listener("tcp", 1);
    let mut first = tcp_from([127, 0, 0, 1], capped).await;
    let ack = send_connect(&mut first, connect_packet(V5, "capped-1", true)).await;
    assert_eq!(ack.map(|a| a.reason), Some(ReasonCode::Success));
    let mut second = tcp_from([127, 0, 0, 1], capped).await;
    assert_eq!(
        send_connect(&mut second, connect_packet(V5, "capped-2", true)).await,
        None,
        "closed without a CONNACK"
    );
    for id in ["main-1", "main-2"] {
        connect(&m, V5, id).await;
    }
    let s = scrape_until(&m, "the listener refusal counted", |s| {
        value(
            s,
            LIMIT_REJECTIONS,
            &[("reason", "listener_max_connections")],
        ) == 1.0
    })
    .await;
    assert_eq!(
        value(&s, LIMIT_REJECTIONS, &[("reason", "max_connections")]),
        0.0
    );
}

/// Queues `QoS 0, 1, 0, 1, 1` messages (10 bytes each: topic `q/t` and a 7-byte payload)
/// for the offline persistent session `id` of `m`, then resumes it and returns the payloads
/// delivered.
async fn queue_five_and_resume(m: &Midge, id: &str) -> Vec<Vec<u8>> {
    use crate::connect::{connect_ok, persistent};
    let (mut s, _) = connect_ok(m, persistent(V5, id)).await;
    s.subscribe("q/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut p = connect(m, V5, &format!("{id}-pub")).await;
    for (qos, payload) in [
        (QoS::AtMostOnce, b"a-qos-0"),
        (QoS::AtLeastOnce, b"b-qos-1"),
        (QoS::AtMostOnce, b"c-qos-0"),
        (QoS::AtLeastOnce, b"d-qos-1"),
        (QoS::AtLeastOnce, b"e-qos-1"),
    ] {
        p.publish("q/t", qos, payload).await;
    }
    let (mut s, ack) = connect_ok(m, persistent(V5, id)).await;
    assert!(ack.session_present);
    let mut got = Vec::new();
    while let Ok(Some(Packet::Publish(p))) =
        tokio::time::timeout(crate::harness::QUIET, s.recv()).await
    {
        s.ack(&p).await;
        got.push(p.payload.to_vec());
    }
    got
}

// `broker.max_queued_messages` and `broker.max_queued_bytes` bound an offline session's
// queue; when full, queued QoS 0 messages are dropped first to make room for QoS 1 ones, and
// each drop is counted under its reason.
#[tokio::test]
async fn full_queues_drop_qos_0_first_by_count_and_by_bytes() {
    let expected: Vec<Vec<u8>> = vec![
        b"b-qos-1".to_vec(),
        b"d-qos-1".to_vec(),
        b"e-qos-1".to_vec(),
    ];
    for (key, limit, reason) in [
        ("MIDGE__BROKER__MAX_QUEUED_MESSAGES", "3", "queue_full"),
        ("MIDGE__BROKER__MAX_QUEUED_BYTES", "30", "queue_bytes"),
    ] {
        let m = Midge::start_with(&[(key, limit), ("MIDGE__BROKER__QUEUE_QOS0_MESSAGES", "true")]);
        assert_eq!(queue_five_and_resume(&m, "queued").await, expected, "{key}");
        let s = scrape(&m).await;
        assert_eq!(
            value(&s, "midge_messages_dropped_total", &[("reason", reason)]),
            2.0,
            "{key}"
        );
    }
}

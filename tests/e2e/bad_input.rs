//! Malformed and hostile input, written as raw bytes. Each case checks the exact v5 DISCONNECT
//! reason code (or the bare close for v3.1.1) and that clients connected before it still
//! exchange messages afterwards.

use crate::connect::{connect, connect_packet, read_to_close, Client, Witness, V3, V5};
use crate::harness::{Midge, RawClient};
use midge_codec::{Packet, ProtocolVersion, QoS, ReasonCode};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// A packet: first byte, variable-length remaining length, body.
fn pkt(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed string (bytes taken as they are, valid UTF-8 or not).
fn s(x: &[u8]) -> Vec<u8> {
    let mut out = (x.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(x);
    out
}

/// A QoS 0 PUBLISH on `topic` (raw bytes), with an empty property block for v5.
fn raw_publish(v: ProtocolVersion, topic: &[u8], props: &[u8]) -> Vec<u8> {
    let mut body = s(topic);
    if v.is_v5() {
        body.push(props.len() as u8);
        body.extend_from_slice(props);
    }
    body.extend_from_slice(b"payload");
    pkt(0x30, &body)
}

/// A SUBSCRIBE (packet id 1) for the given filters and options bytes, with flags `flags`.
fn raw_subscribe(v: ProtocolVersion, flags: u8, filters: &[(&[u8], u8)]) -> Vec<u8> {
    let mut body = vec![0, 1];
    if v.is_v5() {
        body.push(0);
    }
    for (f, o) in filters {
        body.extend(s(f));
        body.push(*o);
    }
    pkt(0x80 | flags, &body)
}

/// Connects a client of version `v`, sends `bytes`, and asserts the broker answers with
/// DISCONNECT `reason` (v5) or a bare close (v3); then checks the witnesses.
async fn rejects(m: &Midge, w: &mut Witness, v: ProtocolVersion, bytes: &[u8], reason: ReasonCode) {
    let mut c = connect(m, v, "offender").await;
    c.send_bytes(bytes).await;
    c.expect_disconnect(reason).await;
    w.check().await;
}

/// What the broker did after a client of version `v` sent `bytes`: "DISCONNECT 0x.." then
/// close, "close", or "open" (still connected 2 s later, with any packets it sent).
async fn reaction(m: &Midge, v: ProtocolVersion, bytes: &[u8]) -> String {
    let mut c = connect(m, v, "offender").await;
    c.send_bytes(bytes).await;
    let mut seen = Vec::new();
    loop {
        match c.raw.recv_within(Duration::from_secs(2)).await {
            Err(()) => return format!("open after {seen:?}"),
            Ok(Some(p)) => seen.push(p),
            Ok(None) => break,
        }
    }
    match seen.as_slice() {
        [] => "close".to_string(),
        [Packet::Disconnect(d)] => format!("DISCONNECT 0x{:02X}", d.reason as u8),
        other => format!("{other:?} then close"),
    }
}

async fn setup() -> (Midge, Witness) {
    let m = Midge::start();
    let w = Witness::new(&m).await;
    (m, w)
}

// MQTT-3.1.0-1: the first packet from the client MUST be CONNECT; anything else closes the
// connection without a CONNACK.
#[tokio::test]
async fn packet_before_connect() {
    let (m, mut w) = setup().await;
    for bytes in [
        vec![0xC0, 0x00],
        raw_publish(V3, b"a/b", &[]),
        raw_subscribe(V3, 0x02, &[(b"a", 0)]),
    ] {
        let mut c = RawClient::connect(m.addr(), V5).await;
        c.send_bytes(&bytes).await;
        assert!(c.expect_closed().await.is_empty(), "{bytes:?}");
        w.check().await;
    }
}

// MQTT-3.1.0-2: a second CONNECT is a protocol error: v5 DISCONNECT 0x82, v3 close.
#[tokio::test]
async fn second_connect() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        let mut c = connect(&m, v, "twice").await;
        c.send(&Packet::Connect(Box::new(connect_packet(v, "twice", true))))
            .await;
        c.expect_disconnect(ReasonCode::ProtocolError).await;
        w.check().await;
    }
}

// MQTT-2.1.3-1 (v5) / MQTT-2.2.2-2 (3.1.1): reserved fixed-header flags set wrongly make a
// malformed packet: SUBSCRIBE with flags 0000, PINGREQ with flags 0001, PUBREL with 0000.
#[tokio::test]
async fn reserved_fixed_header_flags() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        for bytes in [
            raw_subscribe(v, 0x00, &[(b"a", 0)]),
            vec![0xC1, 0x00],
            vec![0x60, 0x02, 0x00, 0x01],
        ] {
            rejects(&m, &mut w, v, &bytes, ReasonCode::MalformedPacket).await;
        }
    }
}

// MQTT-3.1.2-3: the reserved flag of CONNECT's Connect Flags must be 0; otherwise the server
// closes the connection (a v5 server may first send CONNACK 0x81).
#[tokio::test]
async fn connect_reserved_flag() {
    let (m, mut w) = setup().await;
    for (level, props) in [(4u8, &[][..]), (5u8, &[0u8][..])] {
        let mut body = s(b"MQTT");
        body.extend_from_slice(&[level, 0x03, 0, 30]);
        body.extend_from_slice(props);
        body.extend(s(b"resv"));
        let mut st = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
        st.write_all(&pkt(0x10, &body)).await.unwrap();
        let got = read_to_close(&mut st).await;
        assert!(
            got.is_empty() || got == [0x20, 0x03, 0x00, 0x81, 0x00],
            "level {level}: {got:02x?}"
        );
        w.check().await;
    }
}

// MQTT-3.3.1-4: a PUBLISH with both QoS bits set is malformed.
#[tokio::test]
async fn publish_qos_3() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        // The body of a valid QoS 1/2 PUBLISH (with packet id), flags 0110.
        let mut body = s(b"q/3");
        body.extend_from_slice(&[0, 1]);
        if v.is_v5() {
            body.push(0);
        }
        body.extend_from_slice(b"x");
        rejects(
            &m,
            &mut w,
            v,
            &pkt(0x36, &body),
            ReasonCode::MalformedPacket,
        )
        .await;
    }
}

// MQTT-3.3.2-2: the Topic Name in a PUBLISH MUST NOT contain wildcards.
#[tokio::test]
async fn wildcard_in_publish_topic() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        for topic in [&b"a/+"[..], b"a/#", b"#"] {
            let bytes = raw_publish(v, topic, &[]);
            rejects(&m, &mut w, v, &bytes, ReasonCode::MalformedPacket).await;
        }
    }
}

// MQTT-1.5.4-1 / MQTT-1.5.4-2 (v5), MQTT-1.5.3-1 / MQTT-1.5.3-2 (3.1.1): ill-formed UTF-8 or
// U+0000 in a topic is a malformed packet.
#[tokio::test]
async fn invalid_utf8_and_nul_in_topic() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        for topic in [&b"a/\xC3\x28"[..], b"\xFF", b"a\x00b", b"\xED\xA0\x80"] {
            let bytes = raw_publish(v, topic, &[]);
            rejects(&m, &mut w, v, &bytes, ReasonCode::MalformedPacket).await;
        }
        // The same in a SUBSCRIBE filter.
        let bytes = raw_subscribe(v, 0x02, &[(b"a/\xC3\x28", 0)]);
        rejects(&m, &mut w, v, &bytes, ReasonCode::MalformedPacket).await;
    }
}

// 1.5.5 / 2.1.4: a Variable Byte Integer has at most 4 bytes; a remaining length with a fifth
// continuation byte is malformed.
#[tokio::test]
async fn malformed_remaining_length() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        let bytes = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        rejects(&m, &mut w, v, &bytes, ReasonCode::MalformedPacket).await;
    }
}

// 3.3.2.3.2 (v5): including the Payload Format Indicator (or any single-valued property) more
// than once is a Protocol Error: DISCONNECT 0x82.
#[tokio::test]
async fn duplicate_v5_property() {
    let (m, mut w) = setup().await;
    let pfi_twice = raw_publish(V5, b"d/t", &[0x01, 0x00, 0x01, 0x01]);
    rejects(&m, &mut w, V5, &pfi_twice, ReasonCode::ProtocolError).await;
    let expiry_twice = raw_publish(V5, b"d/t", &[0x02, 0, 0, 0, 10, 0x02, 0, 0, 0, 20]);
    rejects(&m, &mut w, V5, &expiry_twice, ReasonCode::ProtocolError).await;
    // A property that PUBLISH may not carry (0x11 Session Expiry Interval).
    let foreign = raw_publish(V5, b"d/t", &[0x11, 0, 0, 0, 10]);
    rejects(&m, &mut w, V5, &foreign, ReasonCode::ProtocolError).await;
}

// 3.2.2.3.6 / 4.13 (v5): a packet larger than the server's Maximum Packet Size is answered with
// DISCONNECT 0x95 (Packet too large); the size is judged from the fixed header, so the broker
// answers before the body is sent. v3 clients are just disconnected.
#[tokio::test]
async fn oversized_packet_rejected_from_header() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAX_PACKET_SIZE", "1000")]);
    let mut w = Witness::new(&m).await;
    for v in [V3, V5] {
        let mut c = connect(&m, v, "big").await;
        // PUBLISH announcing 10,000,000 bytes of body; only the header is sent.
        c.send_bytes(&[0x30, 0x80, 0xAD, 0xE2, 0x04]).await;
        let start = Instant::now();
        c.expect_disconnect(ReasonCode::PacketTooLarge).await;
        assert!(start.elapsed() < Duration::from_secs(5));
        w.check().await;
    }
    // A packet within the limit is fine.
    let mut c = connect(&m, V5, "fits").await;
    c.subscribe("fits/t", QoS::AtMostOnce).await;
    c.publish("fits/t", QoS::AtMostOnce, &[1u8; 900]).await;
    assert_eq!(c.expect_publish().await.payload.len(), 900);
    // Both refusals are counted.
    let s = crate::metrics::scrape(&m).await;
    let counted = crate::metrics::value(
        &s,
        "midge_limit_rejections_total",
        &[("reason", "packet_too_large")],
    );
    assert_eq!(counted, 2.0);
}

// 3.1 (non-normative: "If the Server does not receive a CONNECT packet within a reasonable
// amount of time after the Network Connection is established, the Server SHOULD close the
// Network Connection"): limits.connect_timeout_secs = 1 closes idle and half-sent CONNECTs.
#[tokio::test]
async fn no_connect_is_closed_after_timeout() {
    let m = Midge::start_with(&[("MIDGE__LIMITS__CONNECT_TIMEOUT_SECS", "1")]);
    let mut w = Witness::new(&m).await;
    let mut idle = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
    let mut partial = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
    partial
        .write_all(&[0x10, 0x10, 0x00, 0x04, b'M'])
        .await
        .unwrap();
    let start = Instant::now();
    assert!(read_to_close(&mut idle).await.is_empty());
    assert!(read_to_close(&mut partial).await.is_empty());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took <= Duration::from_secs(3),
        "closed after {took:?}"
    );
    w.check().await;
}

// MQTT-4.7.1-2 (`#` on its own and last) and MQTT-4.7.1-3 (`+` a whole level): a SUBSCRIBE or
// UNSUBSCRIBE whose filter breaks them is a Malformed Packet: v5 DISCONNECT 0x81 (4.13), 3.1.1
// close (MQTT-4.8.0-1), as Mosquitto does. Other clients carry on.
#[tokio::test]
async fn subscribe_invalid_filter() {
    let (m, mut w) = setup().await;
    for filter in [&b"a/#/b"[..], b"a+", b"$share/g+/t"] {
        let sub = raw_subscribe(V5, 0x02, &[(b"ok/t", 1), (filter, 1)]);
        rejects(&m, &mut w, V5, &sub, ReasonCode::MalformedPacket).await;
        let sub = raw_subscribe(V3, 0x02, &[(b"ok/t", 1), (filter, 1)]);
        rejects(&m, &mut w, V3, &sub, ReasonCode::MalformedPacket).await;
    }
    // UNSUBSCRIBE: packet id 1, (v5: no properties), filter `a/#/b`.
    for v in [V3, V5] {
        let mut body = vec![0, 1];
        if v.is_v5() {
            body.push(0);
        }
        body.extend(s(b"a/#/b"));
        rejects(
            &m,
            &mut w,
            v,
            &pkt(0xA2, &body),
            ReasonCode::MalformedPacket,
        )
        .await;
    }
    w.check().await;
}

// Resource limits (limits.max_pending_bytes): a subscriber that never reads while ~50 MB of
// QoS 0 traffic is published to it must not make the broker buffer the traffic: its RSS stays
// far below the volume sent, the publisher is never blocked, and other clients keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_does_not_grow_memory() {
    // mimalloc keeps freed pages for up to a second before returning them (its purge delay):
    // with it at 0 the RSS sampled below follows what the broker holds, not what it just freed.
    let m = Midge::start_with(&[
        ("MIDGE__LIMITS__MAX_PENDING_BYTES", "1048576"),
        ("MIMALLOC_PURGE_DELAY", "0"),
    ]);
    let mut w = Witness::new(&m).await;
    let mut slow: Client = connect(&m, V3, "slow").await;
    slow.subscribe("flood/t", QoS::AtMostOnce).await;
    // From here on `slow` never reads its socket.
    let mut publ = connect(&m, V3, "flooder").await;

    let baseline = m.rss_kib();
    let payload = vec![0x5Au8; 64 * 1024];
    let one = {
        let mut body = s(b"flood/t");
        body.extend_from_slice(&payload);
        pkt(0x30, &body)
    };
    let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 16).collect();
    let sent_mib = batch.len() * 50 / (1024 * 1024);

    let pid = m.pid();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kib) = crate::harness::rss_kib_of(pid) {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let flood = tokio::time::timeout(Duration::from_secs(90), async {
        for _ in 0..50 {
            publ.send_bytes(&batch).await;
        }
    })
    .await;
    // Give the broker a moment to process what it has read.
    publ.send(&Packet::PingReq).await;
    let pong = publ.raw.recv_within(Duration::from_secs(30)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert!(
        flood.is_ok(),
        "the publisher was blocked by a slow subscriber"
    );
    assert_eq!(pong, Ok(Some(Packet::PingResp)), "publisher still served");

    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!("slow reader: baseline {baseline} KiB, peak {peak} KiB, sent {sent_mib} MiB");
    assert!(
        growth_mib < 20,
        "broker RSS grew by {growth_mib} MiB (baseline {baseline} KiB, peak {peak} KiB) while \
         {sent_mib} MiB were published to a subscriber that does not read"
    );
    w.check().await;
    // The slow reader now reads what reached it: some of the flood (the broker did route it),
    // but far from all 800 messages (the rest was dropped, not buffered). It may also have
    // been disconnected.
    let start = Instant::now();
    let mut delivered = 0usize;
    while let Ok(Some(p)) = slow.raw.recv_within(Duration::from_secs(1)).await {
        if let Packet::Publish(p) = p {
            assert_eq!(p.payload.len(), payload.len());
            delivered += 1;
        }
        assert!(start.elapsed() < Duration::from_secs(30));
    }
    eprintln!("slow reader: {delivered} of 800 messages delivered");
    assert!(
        delivered > 0 && delivered < 400,
        "{delivered} of 800 delivered"
    );
    drop(slow);
    w.check().await;
}

// MQTT-3.8.3-2 / MQTT-3.10.3-2 (v5): "A SUBSCRIBE [UNSUBSCRIBE] packet with no Payload is a
// Protocol Error" (0x82); in 3.1.1 (MQTT-3.8.3-3, MQTT-3.10.3-2) a protocol violation: close.
#[tokio::test]
async fn subscribe_and_unsubscribe_without_filters() {
    let (m, mut w) = setup().await;
    let mut got = Vec::new();
    let mut want = Vec::new();
    for v in [V3, V5] {
        let props: &[u8] = if v.is_v5() { &[0] } else { &[] };
        let mut body = vec![0, 1];
        body.extend_from_slice(props);
        for (first, name) in [(0x82u8, "SUBSCRIBE"), (0xA2, "UNSUBSCRIBE")] {
            got.push((v, name, reaction(&m, v, &pkt(first, &body)).await));
            let expected = if v.is_v5() {
                "DISCONNECT 0x82"
            } else {
                "close"
            };
            want.push((v, name, expected.to_string()));
            w.check().await;
        }
    }
    assert_eq!(got, want);
}

// MQTT-3.8.3-5 (v5): reserved bits 6-7 of the subscription options must be 0 (Malformed);
// Retain Handling 3 is a Protocol Error (3.8.3.1). MQTT-3.8.3-4 (3.1.1): the upper 6 bits of
// the requested QoS byte must be 0, and QoS 3 is malformed: the server closes.
#[tokio::test]
async fn bad_subscription_options() {
    let (m, mut w) = setup().await;
    let reserved = raw_subscribe(V5, 0x02, &[(b"o/t", 0xC0)]);
    rejects(&m, &mut w, V5, &reserved, ReasonCode::MalformedPacket).await;
    let rh3 = raw_subscribe(V5, 0x02, &[(b"o/t", 0x30)]);
    rejects(&m, &mut w, V5, &rh3, ReasonCode::ProtocolError).await;
    let qos3 = raw_subscribe(V5, 0x02, &[(b"o/t", 0x03)]);
    rejects(&m, &mut w, V5, &qos3, ReasonCode::MalformedPacket).await;
    for opts in [0x04u8, 0x03] {
        let bad = raw_subscribe(V3, 0x02, &[(b"o/t", opts)]);
        rejects(&m, &mut w, V3, &bad, ReasonCode::MalformedPacket).await;
    }
}

// MQTT-2.2.1-3: a QoS 1/2 PUBLISH (and SUBSCRIBE, UNSUBSCRIBE) carries a non-zero packet id;
// id 0 is invalid. The spec names no reason code: 0x81 or 0x82.
#[tokio::test]
async fn packet_id_zero() {
    let (m, mut w) = setup().await;
    for v in [V3, V5] {
        let mut body = s(b"z/t");
        body.extend_from_slice(&[0, 0]);
        if v.is_v5() {
            body.push(0);
        }
        body.extend_from_slice(b"x");
        for bytes in [pkt(0x32, &body), {
            let mut sb = raw_subscribe(v, 0x02, &[(b"z/t", 0)]);
            sb[3] = 0; // packet id 0x0001 -> 0x0000
            sb
        }] {
            let mut c = connect(&m, v, "zero-id").await;
            c.send_bytes(&bytes).await;
            let seen = c.expect_closed().await;
            if v.is_v5() {
                match seen.as_slice() {
                    [Packet::Disconnect(d)] => assert!(
                        matches!(
                            d.reason,
                            ReasonCode::MalformedPacket | ReasonCode::ProtocolError
                        ),
                        "{d:?}"
                    ),
                    other => panic!("expected DISCONNECT 0x81/0x82, got {other:?}"),
                }
            } else {
                assert!(seen.is_empty(), "{seen:?}");
            }
            w.check().await;
        }
    }
}

// 3.8.2.1.2 (v5): a Subscription Identifier of 0 is a Protocol Error; MQTT-3.3.4-6: a PUBLISH
// from a client MUST NOT carry a Subscription Identifier, so one that does is a Protocol Error
// (1.2 / 4.13) and must not reach subscribers.
#[tokio::test]
async fn subscription_identifier_misuse() {
    let (m, mut w) = setup().await;
    let mut body = vec![0, 1, 2, 0x0B, 0x00];
    body.extend(s(b"si/t"));
    body.push(0);
    assert_eq!(reaction(&m, V5, &pkt(0x82, &body)).await, "DISCONNECT 0x82");
    w.check().await;

    let mut sub = connect(&m, V5, "si-sub").await;
    sub.subscribe("si/t", QoS::AtMostOnce).await;
    let with_id = raw_publish(V5, b"si/t", &[0x0B, 0x05]);
    let r = reaction(&m, V5, &with_id).await;
    let leaked = match sub.raw.recv_within(Duration::from_millis(300)).await {
        Ok(Some(Packet::Publish(p))) => Some(p.properties.subscription_identifiers.clone()),
        _ => None,
    };
    assert_eq!(
        (r.as_str(), leaked),
        ("DISCONNECT 0x82", None),
        "PUBLISH with a Subscription Identifier from a client: broker reaction, and the ids the \
         subscriber saw"
    );
    w.check().await;
}

// MQTT-3.1.2-22 (3.1.1): a password without a user name is invalid; MQTT-3.1.2-13 / -14
// (3.1.1), MQTT-3.1.2-11 / -12 (v5): will QoS must be 0 without a will, and never 3;
// MQTT-3.1.4-1: the server closes without CONNACK (a v5 server may send CONNACK 0x81/0x82).
// 3.1.2.11.3 / 3.1.2.11.4 (v5): Receive Maximum 0 and Maximum Packet Size 0 are Protocol Errors.
#[tokio::test]
async fn invalid_connect_packets() {
    let (m, mut w) = setup().await;
    let connect_body = |level: u8, flags: u8, props: &[u8], will: bool, tail: &[u8]| {
        let mut b = s(b"MQTT");
        b.extend_from_slice(&[level, flags, 0, 30]);
        if level == 5 {
            b.push(props.len() as u8);
            b.extend_from_slice(props);
        }
        b.extend(s(b"badconn"));
        if will {
            if level == 5 {
                b.push(0);
            }
            b.extend(s(b"w/t"));
            b.extend(s(b"w"));
        }
        b.extend_from_slice(tail);
        b
    };
    let pw = s(b"secret");
    let cases: Vec<(u8, Vec<u8>)> = vec![
        // Password without user name.
        (4, connect_body(4, 0x42, &[], false, &pw)),
        // Will QoS 1 without the will flag.
        (4, connect_body(4, 0x0A, &[], false, &[])),
        (5, connect_body(5, 0x0A, &[], false, &[])),
        // Will QoS 3.
        (4, connect_body(4, 0x1E, &[], true, &[])),
        (5, connect_body(5, 0x1E, &[], true, &[])),
        // Receive Maximum 0, Maximum Packet Size 0.
        (5, connect_body(5, 0x02, &[0x21, 0, 0], false, &[])),
        (5, connect_body(5, 0x02, &[0x27, 0, 0, 0, 0], false, &[])),
    ];
    for (level, body) in cases {
        let mut st = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
        st.write_all(&pkt(0x10, &body)).await.unwrap();
        let got = read_to_close(&mut st).await;
        let ok = got.is_empty()
            || (level == 5
                && (got == [0x20, 0x03, 0x00, 0x81, 0x00]
                    || got == [0x20, 0x03, 0x00, 0x82, 0x00]));
        assert!(ok, "level {level} body {body:02x?}: got {got:02x?}");
        w.check().await;
    }
}

// limits.max_connections: connections beyond the limit are accepted and closed at once; the
// existing ones keep working.
#[tokio::test]
async fn max_connections() {
    let m = Midge::start_with(&[("MIDGE__LIMITS__MAX_CONNECTIONS", "3")]);
    let mut w = Witness::new(&m).await;
    let _third = connect(&m, V3, "third").await;
    let mut st = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
    let mut conn = s(b"MQTT");
    conn.extend_from_slice(&[4, 0x02, 0, 30]);
    conn.extend(s(b"fourth"));
    let _ = st.write_all(&pkt(0x10, &conn)).await;
    assert!(read_to_close(&mut st).await.is_empty());
    w.check().await;
}

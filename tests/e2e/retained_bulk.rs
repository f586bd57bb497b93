//! Many retained messages through a real process: 100,000 retained messages survive `kill -9`
//! (restored from a Raft snapshot plus the log after it), and a `#` subscriber gets them paced
//! through its Receive Maximum (MQTT-4.9.0-2) rather than queued or dropped, at QoS 1 and QoS 0.
//! Also the retained limits: a retained publish beyond them gets PUBACK 0x97.

use crate::connect::{connect, connect_ok, connect_packet, publish, Client, V5};
use crate::harness::{Midge, QUIET};
use bytes::BytesMut;
use midge_codec::{AckKind, Packet, ProtocolVersion, QoS, ReasonCode};
use std::collections::BTreeSet;

const COUNT: usize = 100_000;

/// Publishes `COUNT` retained QoS 1 messages `bulk/<i / 1000>/<i>`, pipelined 10,000 at a
/// time, plus `bulk/last`; every one acknowledged, so committed.
async fn fill(m: &Midge) {
    const CHUNK: usize = 10_000;
    let mut c = connect(m, V5, "bulk-pub").await;
    let mut buf = BytesMut::new();
    for chunk in 0..COUNT / CHUNK {
        for j in 0..CHUNK {
            let i = chunk * CHUNK + j;
            let id = u16::try_from(j + 1).expect("id");
            let topic = format!("bulk/{}/{i}", i / 1000);
            let mut p = publish(&topic, QoS::AtLeastOnce, Some(id), b"v");
            p.retain = true;
            midge_codec::encode(&Packet::Publish(p), ProtocolVersion::V5, &mut buf)
                .expect("encode");
        }
        c.send_bytes(&buf.split()).await;
        for _ in 0..CHUNK {
            match c.next().await {
                Packet::Ack(a) if a.kind == AckKind::PubAck => assert!(!a.reason.is_error()),
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
    }
    let mut last = publish("bulk/last", QoS::AtLeastOnce, Some(1), b"end");
    last.retain = true;
    c.send_publish(last).await;
    c.disconnect().await;
}

/// Subscribes to `bulk/#` at `qos` with Receive Maximum `window`, and returns every topic
/// received (asserting RETAIN=1 and no duplicates). At QoS 1 it first checks that exactly
/// `window` messages arrive while none is acknowledged.
async fn replay(m: &Midge, qos: QoS, window: u16) -> BTreeSet<String> {
    let mut c = connect_packet(V5, &format!("bulk-sub-{qos:?}"), true);
    c.properties.receive_maximum = Some(window);
    let (mut s, _) = connect_ok(m, c).await;
    s.subscribe("bulk/#", qos).await;
    let mut topics = BTreeSet::new();
    if qos != QoS::AtMostOnce {
        let mut held = Vec::new();
        while let Ok(Some(p)) = tokio::time::timeout(QUIET, s.recv()).await {
            match p {
                Packet::Publish(p) => held.push(p),
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
        assert_eq!(held.len(), usize::from(window), "paced by Receive Maximum");
        for p in held {
            s.ack(&p).await;
            assert!(p.retain);
            assert!(topics.insert(p.topic.to_string()), "{} twice", p.topic);
        }
    }
    while topics.len() < COUNT + 1 {
        let p = s.recv_publish().await;
        assert!(p.retain);
        assert!(topics.insert(p.topic.to_string()), "{} twice", p.topic);
    }
    s.expect_silence().await;
    topics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_retained_survive_kill_9_and_replay_paced() {
    // Group commit packs many publishes into one log entry (each pipelined chunk of 10,000
    // becomes a handful): snapshot often enough that the restart goes through a snapshot
    // plus the log after it.
    let mut m = Midge::start_with(&[("MIDGE__STORAGE__SNAPSHOT_LOGS", "4")]);
    fill(&m).await;
    // Openraft builds snapshots in the background: wait for one.
    m.wait_for_log(&["snapshot built"]);
    m.restart();
    assert!(
        m.log()
            .contains(&format!("Restored {} retained message(s)", COUNT + 1)),
        "{}",
        m.log()
    );
    let qos1 = replay(&m, QoS::AtLeastOnce, 32).await;
    let qos0 = replay(&m, QoS::AtMostOnce, 32).await;
    assert_eq!(qos1, qos0);
    assert!(qos1.contains("bulk/99/99999") && qos1.contains("bulk/last"));
    // The broker kept going for everyone else.
    let mut other = connect(&m, V5, "bulk-other").await;
    other.publish("x", QoS::AtLeastOnce, b"y").await;
}

#[tokio::test]
async fn retained_limits_refuse_with_quota_exceeded() {
    let m = Midge::start_with(&[
        ("MIDGE__BROKER__MAX_RETAINED_MESSAGES", "2"),
        ("MIDGE__BROKER__MAX_RETAINED_PAYLOAD", "4"),
    ]);
    let mut c: Client = connect(&m, V5, "lim").await;
    for (topic, payload, want) in [
        ("l/a", b"1".as_slice(), ReasonCode::Success),
        ("l/b", b"2", ReasonCode::Success),
        // A third topic: over max_retained_messages.
        ("l/c", b"3", ReasonCode::QuotaExceeded),
        // Replacing a stored one is fine; too big a payload is not.
        ("l/a", b"4", ReasonCode::Success),
        ("l/a", b"12345", ReasonCode::QuotaExceeded),
    ] {
        let mut p = publish(topic, QoS::AtLeastOnce, Some(5), payload);
        p.retain = true;
        c.send(&Packet::Publish(p)).await;
        let ack = c.expect_ack(AckKind::PubAck, 5).await;
        if want == ReasonCode::Success {
            // Stored: 0x00, or 0x10 No matching subscribers (also a success).
            assert!(
                !ack.reason.is_error(),
                "{topic} {payload:?}: {:?}",
                ack.reason
            );
        } else {
            assert_eq!(ack.reason, want, "{topic} {payload:?}");
        }
    }
    let mut s = connect(&m, V5, "lim-sub").await;
    s.subscribe("l/#", QoS::AtMostOnce).await;
    let mut got = Vec::new();
    while let Ok(Some(Packet::Publish(p))) = tokio::time::timeout(QUIET, s.recv()).await {
        got.push((p.topic.to_string(), p.payload.to_vec()));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("l/a".to_string(), b"4".to_vec()),
            ("l/b".into(), b"2".to_vec())
        ]
    );
}

// `broker.max_retained_bytes` bounds the payload of all retained messages together: a v5
// publisher gets PUBACK 0x97 Quota exceeded for the one that would go over, replacing a
// message counts only the difference, and the refusal is counted.
#[tokio::test]
async fn retained_bytes_in_all_are_bounded() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAX_RETAINED_BYTES", "10")]);
    let mut c: Client = connect(&m, V5, "bytes").await;
    for (topic, payload, ok) in [
        ("b/a", b"12345".as_slice(), true),
        ("b/b", b"1234", true),
        ("b/c", b"12", false),
        ("b/a", b"123456", true),
        ("b/a", b"1234567", false),
    ] {
        let mut p = publish(topic, QoS::AtLeastOnce, Some(6), payload);
        p.retain = true;
        c.send(&Packet::Publish(p)).await;
        let ack = c.expect_ack(AckKind::PubAck, 6).await;
        if ok {
            assert!(!ack.reason.is_error(), "{topic}: {:?}", ack.reason);
        } else {
            assert_eq!(ack.reason, ReasonCode::QuotaExceeded, "{topic}");
        }
    }
    let s = crate::metrics::scrape(&m).await;
    let refused = crate::metrics::value(
        &s,
        "midge_limit_rejections_total",
        &[("reason", "retained_bytes")],
    );
    assert_eq!(refused, 2.0);
    assert_eq!(
        crate::metrics::value(&s, "midge_retained_bytes", &[]),
        10.0,
        "6 + 4 stored"
    );
}

//! Durable state across `kill -9`: retained messages, persistent sessions with their queued and
//! in-flight messages, session expiry while the broker is down, acknowledged messages under load,
//! a damaged data directory, and the in-memory mode (`storage.enabled = false`).

use crate::connect::{connect, connect_ok, persistent, publish, Client, V3, V5};
use crate::harness::{v4, Midge, QUIET, WAIT};
use midge_codec::{Ack, AckKind, Packet, ProtocolVersion, Publish, QoS};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Publishes a retained message and completes its QoS flow (so it is committed).
async fn retain(c: &mut Client, topic: &str, qos: QoS, payload: &[u8]) {
    let mut p = publish(topic, qos, (qos != QoS::AtMostOnce).then_some(1), payload);
    p.retain = true;
    c.send_publish(p).await;
}

/// Every PUBLISH arriving within `QUIET` of the previous one, acknowledged.
async fn drain(c: &mut Client) -> Vec<Publish> {
    let mut got = Vec::new();
    while let Ok(Some(p)) = tokio::time::timeout(QUIET, c.recv()).await {
        match p {
            Packet::Publish(p) => {
                c.ack(&p).await;
                got.push(p);
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

// Retained messages set, replaced and cleared with acknowledged publishes survive `kill -9`: a
// new `#` subscriber after the restart gets exactly the surviving set, each with RETAIN=1.
#[tokio::test]
async fn retained_messages_survive_kill_9() {
    let mut m = Midge::start();
    let mut publ = connect(&m, V3, "ret-pub").await;
    retain(&mut publ, "dur/a", QoS::AtLeastOnce, b"first a").await;
    retain(&mut publ, "dur/b", QoS::ExactlyOnce, b"b").await;
    retain(&mut publ, "dur/c/deep", QoS::AtLeastOnce, b"deep").await;
    retain(&mut publ, "dur/gone", QoS::AtLeastOnce, b"cleared soon").await;
    retain(&mut publ, "dur/a", QoS::AtLeastOnce, b"second a").await;
    retain(&mut publ, "dur/gone", QoS::AtLeastOnce, b"").await;

    m.restart();
    let mut s = connect(&m, V5, "ret-sub").await;
    s.subscribe("#", QoS::ExactlyOnce).await;
    let got: BTreeMap<String, (Vec<u8>, bool, QoS)> = drain(&mut s)
        .await
        .into_iter()
        .map(|p| (p.topic.to_string(), (p.payload.to_vec(), p.retain, p.qos)))
        .collect();
    let want: BTreeMap<String, (Vec<u8>, bool, QoS)> = [
        ("dur/a", b"second a".as_slice(), QoS::AtLeastOnce),
        ("dur/b", b"b".as_slice(), QoS::ExactlyOnce),
        ("dur/c/deep", b"deep".as_slice(), QoS::AtLeastOnce),
    ]
    .into_iter()
    .map(|(t, p, q)| (t.to_string(), (p.to_vec(), true, q)))
    .collect();
    assert_eq!(got, want);
    assert!(
        m.log().contains("Restored 3 retained message(s)"),
        "{}",
        m.log()
    );
}

async fn session_survives_kill_9(m: &mut Midge, v: ProtocolVersion) {
    let id = format!("dur-{v:?}");
    let topic = format!("dur/{v:?}/t");
    let (mut s, ack) = connect_ok(m, persistent(v, &id)).await;
    assert!(!ack.session_present);
    s.subscribe(&topic, QoS::ExactlyOnce).await;
    s.disconnect().await;

    let mut publ = connect(m, V5, &format!("dur-pub-{v:?}")).await;
    let sent = [
        (QoS::AtLeastOnce, "m1"),
        (QoS::ExactlyOnce, "m2"),
        (QoS::AtLeastOnce, "m3"),
        (QoS::ExactlyOnce, "m4"),
    ];
    for (qos, payload) in sent {
        publ.publish(&topic, qos, payload.as_bytes()).await;
    }

    m.restart();
    let (mut s, ack) = connect_ok(m, persistent(v, &id)).await;
    assert!(ack.session_present, "{v:?}: the session survived");
    let got: Vec<(QoS, String)> = drain(&mut s)
        .await
        .into_iter()
        .map(|p| (p.qos, String::from_utf8_lossy(&p.payload).into_owned()))
        .collect();
    let want: Vec<(QoS, String)> = sent.iter().map(|(q, p)| (*q, p.to_string())).collect();
    assert_eq!(
        got, want,
        "{v:?}: every acknowledged message once, in order"
    );

    let mut publ = connect(m, V3, &format!("dur-pub2-{v:?}")).await;
    publ.publish(&topic, QoS::AtLeastOnce, b"after restart")
        .await;
    let p = s.recv_publish().await;
    assert_eq!(&p.payload[..], b"after restart", "{v:?}: subscription kept");
    s.disconnect().await;
}

// A persistent session (v3.1.1 clean session 0; v5 clean start 0 with a session expiry) with
// QoS 1 and QoS 2 messages queued while it was offline survives `kill -9`: the client resumes
// with Session Present 1, gets every acknowledged message exactly once and in order, and its
// subscription still delivers new messages.
#[tokio::test]
async fn persistent_sessions_and_queued_messages_survive_kill_9() {
    let mut m = Midge::start();
    session_survives_kill_9(&mut m, V3).await;
    session_survives_kill_9(&mut m, V5).await;
}

async fn inflight_resent(m: &mut Midge, v: ProtocolVersion) {
    let id = format!("inflight-{v:?}");
    let topic = format!("inflight/{v:?}");
    let (mut s, _) = connect_ok(m, persistent(v, &id)).await;
    s.subscribe(&topic, QoS::ExactlyOnce).await;
    let mut publ = connect(m, V3, &format!("inflight-pub-{v:?}")).await;
    publ.publish(&topic, QoS::AtLeastOnce, b"one").await;
    publ.publish(&topic, QoS::ExactlyOnce, b"two").await;
    publ.publish(&topic, QoS::ExactlyOnce, b"three").await;
    let one = s.expect_publish().await;
    let two = s.expect_publish().await;
    let three = s.expect_publish().await;
    let id_of = |p: &Publish| p.packet_id.expect("QoS > 0 has a packet id");
    assert_eq!(&one.payload[..], b"one");
    assert_eq!(&two.payload[..], b"two");
    assert_eq!(&three.payload[..], b"three");
    // "two" gets as far as PUBREL; "one" and "three" are never acknowledged. The PUBREL is a
    // durable acknowledgement, so once it arrives, everything before it is committed.
    s.send(&Packet::Ack(Ack::new(AckKind::PubRec, id_of(&two))))
        .await;
    s.expect_ack(AckKind::PubRel, id_of(&two)).await;

    m.restart();
    let (mut s, ack) = connect_ok(m, persistent(v, &id)).await;
    assert!(ack.session_present, "{v:?}");
    let again = s.expect_publish().await;
    assert_eq!(
        (again.dup, again.packet_id, &again.payload[..], again.qos),
        (true, one.packet_id, &b"one"[..], QoS::AtLeastOnce),
        "{v:?}"
    );
    match s.next().await {
        Packet::Ack(a) if a.kind == AckKind::PubRel => assert_eq!(a.packet_id, id_of(&two)),
        other => panic!("{v:?}: expected the PUBREL of \"two\" again, got {other:?}"),
    }
    let again3 = s.expect_publish().await;
    assert_eq!(
        (
            again3.dup,
            again3.packet_id,
            &again3.payload[..],
            again3.qos
        ),
        (true, three.packet_id, &b"three"[..], QoS::ExactlyOnce),
        "{v:?}"
    );
    s.send(&Packet::Ack(Ack::new(AckKind::PubAck, id_of(&one))))
        .await;
    s.send(&Packet::Ack(Ack::new(AckKind::PubComp, id_of(&two))))
        .await;
    s.ack(&again3).await;
    s.expect_silence().await;
    s.disconnect().await;
}

// In-flight state survives `kill -9`: QoS 1 and QoS 2 messages a subscriber received but did
// not acknowledge are re-sent with DUP=1 and their packet ids after the restart, and a QoS 2
// message already past PUBREC gets its PUBREL again (not the message).
#[tokio::test]
async fn inflight_messages_are_resent_with_dup_after_kill_9() {
    let mut m = Midge::start();
    inflight_resent(&mut m, V3).await;
    inflight_resent(&mut m, V5).await;
}

// Nothing unacknowledged is invented: publishes killed before their PUBACK may or may not be
// delivered after the restart, but the subscriber only ever sees payloads the publisher sent,
// and every acknowledged one. A retained publish cut off the same way leaves the old or the new
// value, nothing else.
#[tokio::test]
async fn nothing_unacknowledged_is_invented() {
    let mut m = Midge::start();
    let (mut s, _) = connect_ok(&m, persistent(V3, "witness")).await;
    s.subscribe("maybe/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publ = connect(&m, V3, "maybe-pub").await;
    publ.publish("maybe/t", QoS::AtLeastOnce, b"acked").await;
    retain(&mut publ, "maybe/r", QoS::AtLeastOnce, b"old").await;
    let mut sent = BTreeSet::from([b"acked".to_vec()]);
    for i in 0..50u16 {
        let payload = format!("unacked {i}").into_bytes();
        publ.send(&Packet::Publish(publish(
            "maybe/t",
            QoS::AtLeastOnce,
            Some(i + 10),
            &payload,
        )))
        .await;
        sent.insert(payload);
    }
    let mut r = publish("maybe/r", QoS::AtLeastOnce, Some(99), b"new");
    r.retain = true;
    publ.send(&Packet::Publish(r)).await;

    m.restart();
    let (mut s, ack) = connect_ok(&m, persistent(V3, "witness")).await;
    assert!(ack.session_present);
    let got: BTreeSet<Vec<u8>> = drain(&mut s)
        .await
        .into_iter()
        .map(|p| p.payload.to_vec())
        .collect();
    assert!(got.contains(&b"acked"[..]), "the acknowledged one survives");
    let invented: Vec<_> = got.difference(&sent).collect();
    assert!(invented.is_empty(), "never sent: {invented:?}");
    let mut r = connect(&m, V3, "maybe-r").await;
    r.subscribe("maybe/r", QoS::AtLeastOnce).await;
    let retained = r.recv_publish().await;
    assert!(
        [&b"old"[..], &b"new"[..]].contains(&&retained.payload[..]),
        "{retained:?}"
    );
    r.expect_silence().await;
}

// Session expiry keeps counting while the broker is down: a v5 session with a 2 s expiry that
// went offline before a `kill -9` is gone after 2.5 s of downtime (Session Present 0, its queued
// message dropped), while one with 60 s is still there.
#[tokio::test]
async fn session_expiry_counts_while_the_broker_is_down() {
    let mut m = Midge::start();
    let sessions = [("short", 2u32), ("long", 60)];
    for (id, expiry) in sessions {
        let mut c = persistent(V5, id);
        c.properties.session_expiry_interval = Some(expiry);
        let (mut s, _) = connect_ok(&m, c).await;
        s.subscribe("exp/t", QoS::AtLeastOnce).await;
        s.disconnect().await;
    }
    let mut publ = connect(&m, V3, "exp-pub").await;
    publ.publish("exp/t", QoS::AtLeastOnce, b"queued").await;

    m.kill();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    m.restart();
    for (id, expiry) in sessions {
        let mut c = persistent(V5, id);
        c.properties.session_expiry_interval = Some(expiry);
        let (mut s, ack) = connect_ok(&m, c).await;
        let got = drain(&mut s).await;
        if expiry == 2 {
            assert!(
                !ack.session_present,
                "{id} expired while the broker was down"
            );
            assert!(got.is_empty(), "{got:?}");
        } else {
            assert!(ack.session_present, "{id} is still within its expiry");
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(&got[0].payload[..], b"queued");
        }
    }
}

/// A seeded xorshift generator: the kill points of a failing run can be replayed by setting
/// `MIDGE_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Publishes QoS 1 messages `r{round}-{n}` through rumqttc until the connection dies, adding
/// each payload to `acked` once its PUBACK arrives.
async fn publish_until_killed(port: u16, round: u32, acked: Arc<Mutex<Vec<String>>>) {
    let mut opts = rumqttc::MqttOptions::new(format!("load-pub-{round}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(50);
    let (client, mut eventloop) = v4::AsyncClient::new(opts, 64);
    // rumqttc reports `Outgoing::Publish(pkid)` in the order publishes were requested, so the
    // requested payloads, in order, tell which payload each packet id carries.
    let requested: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let queue = requested.clone();
    let events = tokio::spawn(async move {
        let mut by_id: HashMap<u16, String> = HashMap::new();
        while let Ok(event) = eventloop.poll().await {
            match event {
                v4::Event::Outgoing(rumqttc::Outgoing::Publish(pkid)) => {
                    if let Some(payload) = queue.lock().unwrap().pop_front() {
                        by_id.insert(pkid, payload);
                    }
                }
                v4::Event::Incoming(v4::Packet::PubAck(ack)) => {
                    if let Some(payload) = by_id.remove(&ack.pkid) {
                        acked.lock().unwrap().push(payload);
                    }
                }
                _ => {}
            }
        }
    });
    // A steady 2,000 messages/s (20 every 10 ms): enough to be caught mid-flight by the kill,
    // few enough that draining them after each restart stays quick in a debug build.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut n = 0u64;
    'load: loop {
        tick.tick().await;
        for _ in 0..20 {
            let payload = format!("r{round}-{n}");
            n += 1;
            requested.lock().unwrap().push_back(payload.clone());
            let sent = client.publish("load/t", v4::QoS::AtLeastOnce, false, payload);
            if sent.await.is_err() || events.is_finished() {
                break 'load;
            }
        }
    }
    let _ = events.await;
}

/// Receives (and acknowledges) publishes until the connection closes, recording payloads.
async fn receive_until_closed(mut s: Client, received: Arc<Mutex<BTreeSet<String>>>) {
    loop {
        match s.raw.recv_within(Duration::from_secs(1)).await {
            Err(()) => {}
            Ok(None) => return,
            Ok(Some(Packet::Publish(p))) => {
                received
                    .lock()
                    .unwrap()
                    .insert(String::from_utf8_lossy(&p.payload).into_owned());
                s.ack(&p).await;
            }
            Ok(Some(other)) => panic!("expected PUBLISH, got {other:?}"),
        }
    }
}

// `kill -9` at random points of a steady QoS 1 load (3 rounds of up to a second, a rumqttc
// publisher, a persistent subscriber that is offline during rounds 0 and 2, so what it gets
// comes out of storage, and online during round 1): after each restart the subscriber gets every
// payload the broker acknowledged to the publisher. Duplicates are allowed (QoS 1); a missing one
// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kills_under_load() {
    let seed = std::env::var("MIDGE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6d69_6467_6521_u64);
    eprintln!("kill points seeded with MIDGE_TEST_SEED={seed}");
    let mut rng = Rng(seed.max(1));
    // The subscriber's queue must not be the limit: a dropped message would look lost.
    let mut m = Midge::start_with(&[("MIDGE__BROKER__MAX_QUEUED_MESSAGES", "1000000")]);
    let (mut sub, _) = connect_ok(&m, persistent(V3, "load-sub")).await;
    sub.subscribe("load/t", QoS::AtLeastOnce).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let received: Arc<Mutex<BTreeSet<String>>> = Arc::default();

    for round in 0..3u32 {
        let online = round == 1;
        let receiving = if online {
            Some(tokio::spawn(receive_until_closed(sub, received.clone())))
        } else {
            sub.disconnect().await;
            None
        };
        let publishing = tokio::spawn(publish_until_killed(m.port(), round, acked.clone()));
        // The load is running once the first PUBACK of the round is back.
        let before = acked.lock().unwrap().len();
        let started = Instant::now();
        while acked.lock().unwrap().len() == before {
            assert!(started.elapsed() < WAIT, "round {round}: no PUBACK");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let kill_after = Duration::from_millis(100 + rng.next() % 900);
        tokio::time::sleep(kill_after).await;
        tokio::task::block_in_place(|| m.restart());
        publishing.await.expect("publisher task");
        if let Some(receiving) = receiving {
            receiving.await.expect("subscriber task");
        }

        let (mut s, ack) = connect_ok(&m, persistent(V3, "load-sub")).await;
        assert!(ack.session_present, "round {round}");
        let want: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
        let deadline = Instant::now() + 3 * WAIT;
        loop {
            let missing = want.difference(&received.lock().unwrap()).count();
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round} (killed after {kill_after:?}): {missing} of {} acknowledged \
                 message(s) never arrived",
                want.len()
            );
            let arrived = match s.raw.recv_within(Duration::from_secs(1)).await {
                Err(()) => None,
                Ok(Some(Packet::Publish(p))) => Some(p),
                other => panic!("round {round}: expected PUBLISH, got {other:?}"),
            };
            if let Some(p) = arrived {
                received
                    .lock()
                    .unwrap()
                    .insert(String::from_utf8_lossy(&p.payload).into_owned());
                s.ack(&p).await;
            }
        }
        eprintln!(
            "round {round} (subscriber {}): killed after {kill_after:?}, {} acknowledged so \
             far, all received",
            if online { "online" } else { "offline" },
            want.len()
        );
        sub = s;
    }
    assert!(
        acked.lock().unwrap().len() >= 30,
        "too little load to mean anything"
    );
}

/// `midge` on `data` with every port picked by the system, so tests run side by side.
fn midge_on(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_midge"));
    cmd.args(["-p", "0", "--bind", "127.0.0.1", "--data-dir"])
        .arg(data)
        .env("MIDGE__ADMIN__PORT", "0")
        .env("MIDGE__CLUSTER__BIND", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `midge` on `data` and kills it (SIGKILL) once it listens.
fn start_and_kill(data: &Path) {
    let mut child = midge_on(data).spawn().expect("spawn midge");
    let stderr = child.stderr.take().expect("stderr");
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("listening on tcp://"));
    assert!(listening, "midge exited before listening");
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `midge` on `data`, which must exit on its own; returns its status and stderr.
fn run_to_exit(data: &Path) -> (ExitStatus, String) {
    let mut child = midge_on(data).spawn().expect("spawn midge");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            return (status, err);
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("midge kept running on a damaged data directory");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one `MANIFEST-*` file of a store.
fn manifest(store: &Path) -> PathBuf {
    std::fs::read_dir(store)
        .expect("store dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("MANIFEST-"))
        })
        .expect("a MANIFEST file")
}

/// Truncates the store's MANIFEST to `len(len)` bytes; returns its file name.
fn truncate_manifest(store: &Path, len: fn(u64) -> u64) -> String {
    let path = manifest(store);
    let size = std::fs::metadata(&path).expect("metadata").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(len(size)).expect("truncate");
    path.file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned()
}

// A damaged data directory makes `midge` exit non-zero with one error line naming the damaged
// file, never a panic and never a silently fresh start: garbage in `raft/CURRENT`, a
// `raft/MANIFEST-*` truncated inside its first record (RocksDB refuses it), and one truncated
// to a quarter, which loses the records of the column families (RocksDB would recreate them
// empty; the server refuses a store that existed but has no Raft log).
#[test]
fn damaged_data_dir_is_refused_naming_the_file() {
    type Damage = fn(&Path) -> String;
    let cases: [(&str, Damage); 3] = [
        ("garbage CURRENT", |store| {
            std::fs::write(store.join("CURRENT"), b"\x00garbage\xff").expect("write");
            "CURRENT".to_string()
        }),
        ("MANIFEST cut in its first record", |store| {
            truncate_manifest(store, |_| 64)
        }),
        ("MANIFEST cut to a quarter", |store| {
            truncate_manifest(store, |len| len / 4)
        }),
    ];
    for (what, damage) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        start_and_kill(&data);
        let file = damage(&data.join("raft"));
        let (status, stderr) = run_to_exit(&data);
        assert_eq!(status.code(), Some(1), "{what}: {status}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("midge: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{what}: one error line\n{stderr}");
        // A MANIFEST cut after its first column family record reads as a database missing
        // our tables: refused as such (never opened with empty tables), naming the directory.
        assert!(
            errors[0].contains(&file) || errors[0].contains("Column family not found"),
            "{what}: names {file}: {stderr}"
        );
        assert!(
            errors[0].contains("raft"),
            "{what}: names the path: {stderr}"
        );
        assert!(!stderr.contains("listening on"), "{what}: {stderr}");
    }
}

// With `storage.enabled = false` the broker runs in memory as before: persistent sessions and
// retained messages work while it runs, and a restart forgets them.
#[tokio::test]
async fn storage_disabled_keeps_state_in_memory_only() {
    let mut m = Midge::start_with(&[("MIDGE__STORAGE__ENABLED", "false")]);
    assert!(m.log().contains("Storage is disabled"), "{}", m.log());
    let (mut s, _) = connect_ok(&m, persistent(V5, "mem")).await;
    s.subscribe("mem/t", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publ = connect(&m, V3, "mem-pub").await;
    publ.publish("mem/t", QoS::AtLeastOnce, b"queued").await;
    retain(&mut publ, "mem/r", QoS::AtLeastOnce, b"retained").await;
    let (mut s, ack) = connect_ok(&m, persistent(V5, "mem")).await;
    assert!(ack.session_present);
    assert_eq!(&s.recv_publish().await.payload[..], b"queued");
    s.disconnect().await;

    m.restart();
    let (mut s, ack) = connect_ok(&m, persistent(V5, "mem")).await;
    assert!(!ack.session_present, "in memory only: the session is gone");
    s.subscribe("mem/#", QoS::AtLeastOnce).await;
    assert!(
        drain(&mut s).await.is_empty(),
        "and so is the retained message"
    );
}

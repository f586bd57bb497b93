//! Eclipse Mosquitto's command line clients (`mosquitto_pub`, `mosquitto_sub`) as real
//! processes against a real broker, for MQTT 3.1, 3.1.1 and 5.0.
//!
//! Nothing waits on fixed sleeps: a subscriber that must be subscribed before a publish is
//! started with an extra subscription to a retained "probe" topic, and counts as ready once
//! it has printed the probe (the broker only sends it after handling the SUBSCRIBE).
//! Every process runs with a time limit.

use crate::harness::{have_tool, Midge, QUIET, WAIT};
use crate::paho::{output_with_input, output_within};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const V31: &str = "mqttv31";
const V311: &str = "mqttv311";
const V5: &str = "mqttv5";

/// Limit for a `mosquitto_pub` run or a `mosquitto_sub` expected to exit by itself.
const PROCESS_LIMIT: Duration = Duration::from_secs(20);
/// Topic prefix of readiness probes.
const PROBE_PREFIX: &str = "midge-probe/";

fn have_clients() -> bool {
    let hint = "apt-get install mosquitto-clients";
    have_tool("mosquitto_sub", hint) && have_tool("mosquitto_pub", hint)
}

/// `tool -h 127.0.0.1 -p PORT -V version`.
fn client(m: &Midge, tool: &str, version: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &m.port().to_string(),
        "-V",
        version,
    ]);
    cmd
}

fn describe(out: &Output, timed_out: bool, m: &Midge) -> String {
    format!(
        "status {}{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- broker log ---\n{}",
        out.status,
        if timed_out {
            " (killed after the time limit)"
        } else {
            ""
        },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        m.log()
    )
}

/// Runs `mosquitto_pub` with `args` and asserts it succeeded.
fn publish(m: &Midge, version: &str, args: &[&str]) {
    let (out, timed_out) = output_within(
        client(m, "mosquitto_pub", version).args(args),
        PROCESS_LIMIT,
    );
    assert!(
        out.status.success() && !timed_out,
        "mosquitto_pub {args:?} failed: {}",
        describe(&out, timed_out, m)
    );
}

/// Runs a `mosquitto_sub` that exits by itself (`-C`, `-W`, `-E`) and returns its stdout lines
/// and output.
fn run_sub(m: &Midge, version: &str, args: &[&str]) -> (Vec<String>, Output) {
    let (out, timed_out) = output_within(
        client(m, "mosquitto_sub", version).args(args),
        PROCESS_LIMIT,
    );
    assert!(
        !timed_out,
        "mosquitto_sub {args:?} did not exit: {}",
        describe(&out, timed_out, m)
    );
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    (lines, out)
}

/// A long-running `mosquitto_sub`, killed (SIGKILL) on drop.
struct Sub {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    probe: String,
}

impl Sub {
    /// Starts `mosquitto_sub` with `args` (whose output must start with the topic: `-v`, or a
    /// `-F` format starting with `%t`) plus a subscription to a fresh retained probe topic,
    /// and waits until the probe is printed, i.e. the broker has handled its subscriptions.
    fn ready(m: &Midge, version: &str, args: &[&str]) -> Sub {
        static PROBES: AtomicUsize = AtomicUsize::new(0);
        let probe = format!(
            "{PROBE_PREFIX}{}-{}",
            std::process::id(),
            PROBES.fetch_add(1, Ordering::Relaxed)
        );
        publish(m, version, &["-q", "1", "-r", "-t", &probe, "-m", "ready"]);
        let mut child = client(m, "mosquitto_sub", version)
            .args(args)
            .args(["-t", &probe])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    return;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let sub = Sub {
            child,
            lines: rx,
            stderr,
            probe,
        };
        // Nothing else is retained on the subscriber's filters, so the probe comes first.
        match sub.lines.recv_timeout(WAIT) {
            Ok(line) if line.starts_with(&sub.probe) => sub,
            Ok(line) => panic!(
                "mosquitto_sub {args:?} printed {line:?} before its probe\n{}",
                sub.context(m)
            ),
            Err(_) => panic!(
                "mosquitto_sub {args:?} never printed its probe {}\n{}",
                sub.probe,
                sub.context(m)
            ),
        }
    }

    fn context(&self, m: &Midge) -> String {
        format!(
            "--- mosquitto_sub stderr ---\n{}\n--- broker log ---\n{}",
            self.stderr.lock().map(|s| s.clone()).unwrap_or_default(),
            m.log()
        )
    }

    /// The next printed line that is not a probe, within `d`.
    fn line_within(&self, d: Duration) -> Result<String, RecvTimeoutError> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left)?;
            if !line.starts_with(PROBE_PREFIX) {
                return Ok(line);
            }
        }
    }

    /// The next printed line (not a probe); fails after `WAIT`.
    fn next(&self, m: &Midge) -> String {
        self.line_within(WAIT).unwrap_or_else(|e| {
            panic!(
                "mosquitto_sub printed nothing more ({e:?})\n{}",
                self.context(m)
            )
        })
    }

    /// Asserts nothing (but probes) is printed within `QUIET`.
    fn nothing(&self, m: &Midge) {
        if let Ok(line) = self.line_within(QUIET) {
            panic!(
                "mosquitto_sub unexpectedly printed {line:?}\n{}",
                self.context(m)
            );
        }
    }

    /// Waits for the process to exit by itself; returns whether it exited successfully.
    fn wait_exit(&mut self, m: &Midge) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto_sub did not exit\n{}",
                self.context(m)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL: no DISCONNECT is sent.
    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The issue's acceptance check: `mosquitto_sub -t '#' -v` receives a
/// `mosquitto_pub -q 2 -r` message. Started first, the subscriber gets it live or, if its
/// SUBSCRIBE is handled after the publish, as the retained message: either way exactly once.
fn acceptance(version: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let mut sub = client(&m, "mosquitto_sub", version);
    sub.args(["-t", "#", "-v", "-C", "1", "-W", "10"]);
    let mut publisher = client(&m, "mosquitto_pub", version);
    publisher.args([
        "-q",
        "2",
        "-r",
        "-t",
        "acceptance/topic",
        "-m",
        "hello midge",
    ]);
    let publisher = std::thread::spawn(move || output_within(&mut publisher, PROCESS_LIMIT));
    let (out, timed_out) = output_within(&mut sub, PROCESS_LIMIT);
    let (pub_out, pub_timed_out) = publisher.join().expect("publisher thread");
    assert!(
        pub_out.status.success() && !pub_timed_out,
        "mosquitto_pub failed: {}",
        describe(&pub_out, pub_timed_out, &m)
    );
    assert!(
        out.status.success() && !timed_out,
        "mosquitto_sub failed: {}",
        describe(&out, timed_out, &m)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "acceptance/topic hello midge\n",
        "{}",
        describe(&out, timed_out, &m)
    );
}

#[test]
fn acceptance_pub_qos2_retained_to_sub_hash_v311() {
    acceptance(V311);
}

#[test]
fn acceptance_pub_qos2_retained_to_sub_hash_v5() {
    acceptance(V5);
}

#[test]
fn acceptance_pub_qos2_retained_to_sub_hash_v31() {
    acceptance(V31);
}

/// Live QoS 0/1/2 delivery to a subscribed `mosquitto_sub`, with the delivered QoS.
fn live_qos(version: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let sub = Sub::ready(
        &m,
        version,
        &["-t", "live/+", "-q", "2", "-F", "%t %q %r %p"],
    );
    for qos in ["0", "1", "2"] {
        let topic = format!("live/q{qos}");
        publish(
            &m,
            version,
            &["-q", qos, "-t", &topic, "-m", &format!("payload {qos}")],
        );
        assert_eq!(sub.next(&m), format!("{topic} {qos} 0 payload {qos}"));
    }
    // The subscription's QoS caps the delivered QoS.
    let sub1 = Sub::ready(
        &m,
        version,
        &["-t", "live/cap", "-q", "1", "-F", "%t %q %p"],
    );
    publish(&m, version, &["-q", "2", "-t", "live/cap", "-m", "capped"]);
    assert_eq!(sub1.next(&m), "live/cap 1 capped");
    assert_eq!(sub.next(&m), "live/cap 2 0 capped");
    sub.nothing(&m);
}

#[test]
fn live_qos_levels_v311() {
    live_qos(V311);
}

#[test]
fn live_qos_levels_v5() {
    live_qos(V5);
}

/// A retained message reaches a later `mosquitto_sub -C 1`; `-r -n` clears it so a later
/// `mosquitto_sub -C 1 -W 1` gets nothing.
fn retained_set_and_clear(version: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    publish(&m, version, &["-q", "1", "-r", "-t", "ret/t", "-m", "kept"]);
    let (lines, out) = run_sub(
        &m,
        version,
        &[
            "-t",
            "ret/t",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%t %r %q %p",
        ],
    );
    assert!(out.status.success(), "{}", describe(&out, false, &m));
    assert_eq!(lines, ["ret/t 1 1 kept"], "{}", describe(&out, false, &m));

    // Replace, then check the new value is the only one.
    publish(
        &m,
        version,
        &["-q", "1", "-r", "-t", "ret/t", "-m", "replaced"],
    );
    let (lines, out) = run_sub(&m, version, &["-t", "ret/t", "-C", "1", "-W", "10", "-v"]);
    assert_eq!(lines, ["ret/t replaced"], "{}", describe(&out, false, &m));

    // Clear with a zero-length retained message (QoS 1 so it is handled before we go on).
    publish(&m, version, &["-q", "1", "-r", "-n", "-t", "ret/t"]);
    let (lines, out) = run_sub(&m, version, &["-t", "ret/t", "-C", "1", "-W", "1", "-v"]);
    assert!(
        lines.is_empty(),
        "retained message still there after -r -n: {}",
        describe(&out, false, &m)
    );
    // mosquitto_sub exits with 27 (MOSQ_ERR_TIMEOUT) when -W expires; anything else means
    // it did not get as far as waiting (e.g. could not connect).
    assert_eq!(
        out.status.code(),
        Some(27),
        "expected a -W timeout: {}",
        describe(&out, false, &m)
    );
}

#[test]
fn retained_set_replace_clear_v311() {
    retained_set_and_clear(V311);
}

#[test]
fn retained_set_replace_clear_v5() {
    retained_set_and_clear(V5);
}

/// 100 KB of pseudo-random bytes (every byte value, including NUL and newline).
fn big_payload() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..100 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 100 KB file payload (`-f`) arrives byte for byte at QoS 1 and 2.
fn big_file_payload(version: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let payload = big_payload();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, &payload).expect("write payload");
    let file = file.to_str().expect("utf-8 temp path");
    let want_hex = hex(&payload);
    let sub = Sub::ready(
        &m,
        version,
        &["-t", "big/+", "-q", "2", "-F", "%t %q %l %x"],
    );
    for qos in ["1", "2"] {
        let topic = format!("big/q{qos}");
        publish(&m, version, &["-q", qos, "-t", &topic, "-f", file]);
        let line = sub.next(&m);
        let mut parts = line.splitn(4, ' ');
        assert_eq!(parts.next(), Some(topic.as_str()));
        assert_eq!(parts.next(), Some(qos), "delivered QoS");
        assert_eq!(parts.next(), Some("102400"), "payload length");
        let got = parts.next().unwrap_or("");
        assert!(
            got == want_hex,
            "QoS {qos} payload differs (got {} hex chars, first difference at byte {})",
            got.len(),
            got.as_bytes()
                .chunks(2)
                .zip(want_hex.as_bytes().chunks(2))
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want_hex.len()) / 2)
        );
    }
    sub.nothing(&m);
}

#[test]
fn big_file_payload_qos1_qos2_v311() {
    big_file_payload(V311);
}

#[test]
fn big_file_payload_qos1_qos2_v5() {
    big_file_payload(V5);
}

/// `mosquitto_sub -c -i id -q 1` gets, on reconnecting, what was published while it was away.
fn persistent_session(version: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let id = format!("mosq-persist-{version}");
    // -E: exit (with a normal DISCONNECT) once the SUBSCRIBE is acknowledged.
    let (_, out) = run_sub(
        &m,
        version,
        &["-c", "-i", &id, "-q", "1", "-t", "persist/t", "-E"],
    );
    assert!(
        out.status.success(),
        "first session: {}",
        describe(&out, false, &m)
    );
    let sent: Vec<String> = (0..5).map(|i| format!("offline-{i}")).collect();
    for p in &sent {
        publish(&m, version, &["-q", "1", "-t", "persist/t", "-m", p]);
    }
    let (lines, out) = run_sub(
        &m,
        version,
        &[
            "-c",
            "-i",
            &id,
            "-q",
            "1",
            "-t",
            "persist/t",
            "-C",
            "5",
            "-W",
            "10",
            "-F",
            "%q %p",
        ],
    );
    let want: Vec<String> = sent.iter().map(|p| format!("1 {p}")).collect();
    assert_eq!(lines, want, "{}", describe(&out, false, &m));
    assert!(out.status.success(), "{}", describe(&out, false, &m));
}

#[test]
fn persistent_session_v311() {
    persistent_session(V311);
}

#[test]
fn persistent_session_v5() {
    persistent_session(V5);
}

/// A subscriber with `--will-*` killed with SIGKILL: its will is published. One that exits
/// normally (DISCONNECT) leaves no will.
fn will_on_sigkill(version: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let observer = Sub::ready(&m, version, &["-t", "will/+", "-q", "1", "-F", "%t %q %p"]);
    let mut victim = Sub::ready(
        &m,
        version,
        &[
            "-i",
            "victim",
            "-t",
            "victim/unused",
            "-v",
            "--will-topic",
            "will/victim",
            "--will-payload",
            "victim died",
            "--will-qos",
            "1",
        ],
    );
    victim.sigkill();
    assert_eq!(observer.next(&m), "will/victim 1 victim died");

    // -C 2 counts the probe and one message: it then disconnects cleanly.
    let mut polite = Sub::ready(
        &m,
        version,
        &[
            "-i",
            "polite",
            "-t",
            "polite/stop",
            "-v",
            "-C",
            "2",
            "--will-topic",
            "will/polite",
            "--will-payload",
            "must not be sent",
        ],
    );
    publish(&m, version, &["-q", "1", "-t", "polite/stop", "-m", "bye"]);
    assert_eq!(polite.next(&m), "polite/stop bye");
    assert!(polite.wait_exit(&m), "polite mosquitto_sub failed");
    observer.nothing(&m);
}

#[test]
fn will_on_sigkill_v311() {
    will_on_sigkill(V311);
}

#[test]
fn will_on_sigkill_v5() {
    will_on_sigkill(V5);
}

/// With a 1 s `$SYS` interval, `mosquitto_sub -t '$SYS/#' -C 3 -v` gets `$SYS/broker/...`.
#[test]
fn sys_topics() {
    if !have_clients() {
        return;
    }
    let m = Midge::start_with(&[("MIDGE__BROKER__SYS_INTERVAL_SECS", "1")]);
    // The retained replay gives every topic at once: the names dashboards built for
    // Mosquitto read, with values of the right form.
    const EXPECTED: [&str; 8] = [
        "$SYS/broker/version",
        "$SYS/broker/bytes/received",
        "$SYS/broker/load/sockets/1min",
        "$SYS/broker/uptime",
        "$SYS/broker/clients/connected",
        "$SYS/broker/messages/received",
        "$SYS/broker/load/messages/received/1min",
        "$SYS/broker/retained messages/count",
    ];
    for version in [V311, V5] {
        let (lines, out) = run_sub(
            &m,
            version,
            &["-t", "$SYS/#", "--retained-only", "-v", "-W", "10"],
        );
        assert!(out.status.success(), "{}", describe(&out, false, &m));
        assert!(
            lines.len() >= EXPECTED.len(),
            "{}",
            describe(&out, false, &m)
        );
        for line in &lines {
            assert!(
                line.starts_with("$SYS/broker/") || line.starts_with("$SYS/cluster/"),
                "not a $SYS/broker or $SYS/cluster line: {line:?}"
            );
        }
        let value = |topic: &str| -> &str {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(topic)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{topic} missing from {lines:?}"))
        };
        for topic in EXPECTED {
            assert!(!value(topic).is_empty(), "{topic}");
        }
        assert!(value("$SYS/broker/version").starts_with("midge "));
        assert!(value("$SYS/broker/uptime").ends_with(" seconds"));
        assert!(value("$SYS/broker/clients/connected")
            .parse::<u64>()
            .is_ok());
        assert!(value("$SYS/broker/retained messages/count")
            .parse::<u64>()
            .is_ok());
        assert!(value("$SYS/broker/load/messages/received/1min")
            .parse::<f64>()
            .is_ok());
        assert_eq!(
            value("$SYS/cluster/nodes"),
            "1",
            "a single node is a one-member cluster"
        );
    }
    // `#` must not match topics starting with `$` ([MQTT-4.7.2-1]).
    let (lines, out) = run_sub(&m, V311, &["-t", "#", "-C", "1", "-W", "2", "-v"]);
    assert!(
        lines.is_empty(),
        "'#' matched a $ topic: {}",
        describe(&out, false, &m)
    );
}

/// `mosquitto_pub -l` sends each stdin line as a message over one connection: 1000 QoS 1 or 2
/// messages arrive complete and in publish order (ordered topic, 3.1.1 / 5.0 section 4.6).
fn burst(version: &str, qos: &str) {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let sub = Sub::ready(&m, version, &["-t", "burst/t", "-q", "2", "-F", "%t %q %p"]);
    let sent: Vec<String> = (0..1000).map(|i| format!("line-{i:04}")).collect();
    let mut input = sent.join("\n");
    input.push('\n');
    let (out, timed_out) = output_with_input(
        client(&m, "mosquitto_pub", version).args(["-l", "-q", qos, "-t", "burst/t"]),
        Some(input.into_bytes()),
        PROCESS_LIMIT,
    );
    assert!(
        out.status.success() && !timed_out,
        "mosquitto_pub -l failed: {}",
        describe(&out, timed_out, &m)
    );
    for (i, want) in sent.iter().enumerate() {
        let line = sub.next(&m);
        assert_eq!(line, format!("burst/t {qos} {want}"), "message {i}");
    }
    sub.nothing(&m);
}

#[test]
fn burst_1000_qos1_in_order_v311() {
    burst(V311, "1");
}

#[test]
fn burst_1000_qos2_in_order_v311() {
    burst(V311, "2");
}

#[test]
fn burst_1000_qos1_in_order_v5() {
    burst(V5, "1");
}

#[test]
fn burst_1000_qos2_in_order_v5() {
    burst(V5, "2");
}

/// `-D publish user-property k v` reaches `mosquitto_sub -V mqttv5 -F '%P'` as `k:v`.
#[test]
fn v5_user_property() {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let sub = Sub::ready(&m, V5, &["-t", "up/t", "-F", "%t %P %p"]);
    publish(
        &m,
        V5,
        &[
            "-t",
            "up/t",
            "-q",
            "1",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-m",
            "with property",
        ],
    );
    assert_eq!(sub.next(&m), "up/t k:v with property");
}

/// Other MQTT 5 publish properties pass through: content type, response topic, correlation
/// data, payload format indicator and a (decremented, so at most the sent) message expiry.
#[test]
fn v5_publish_properties() {
    if !have_clients() {
        return;
    }
    let m = Midge::start();
    let sub = Sub::ready(&m, V5, &["-t", "props/t", "-F", "%t|%C|%R|%D|%F|%E|%p"]);
    publish(
        &m,
        V5,
        &[
            "-t",
            "props/t",
            "-q",
            "1",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "reply/here",
            "-D",
            "publish",
            "correlation-data",
            "req-42",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
            "-D",
            "publish",
            "message-expiry-interval",
            "60",
            "-m",
            "body",
        ],
    );
    let line = sub.next(&m);
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 7, "{line:?}");
    assert_eq!(
        &fields[..5],
        ["props/t", "text/plain", "reply/here", "req-42", "1"],
        "{line:?}"
    );
    let expiry: u32 = fields[5]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no message expiry in {line:?}"));
    assert!((1..=60).contains(&expiry), "message expiry {expiry}");
    assert_eq!(fields[6], "body");
}

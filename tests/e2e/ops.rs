//! Operating a node: graceful shutdown on SIGTERM followed by a restart, and configuration
//! reloads on SIGHUP.

use crate::connect::{connect, connect_ok, persistent, publish, Client, V3, V5};
use crate::harness::Midge;
use midge_codec::{Packet, QoS, ReasonCode};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

/// Opens a TCP connection and reports whether the broker closed it at once (nothing sent).
fn closed_at_once(m: &Midge) -> bool {
    let mut s = TcpStream::connect(m.addr()).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let mut buf = [0u8; 1];
    matches!(s.read(&mut buf), Ok(0))
}

/// A PINGREQ answered: the client's connection is alive.
async fn still_connected(c: &mut Client) {
    c.send(&Packet::PingReq).await;
    assert_eq!(c.next().await, Packet::PingResp);
}

// SIGTERM with clients connected: the v5 clients get DISCONNECT 0x8B "Server shutting down"
// (MQTT 5 3.14.2.1, 4.13.2) and the process exits 0. After a restart every persistent session
// resumes with nothing that was acknowledged lost: the connected v5 subscriber's unacknowledged
// in-flight messages come again with DUP=1 (MQTT-4.4.0-1), the offline v3.1.1 subscriber's
// queued ones arrive in order (MQTT-4.6.0-6), and both subscriptions still match.
#[tokio::test]
async fn sigterm_then_restart_resumes_every_persistent_session() {
    let mut m = Midge::start();
    let (mut offline, _) = connect_ok(&m, persistent(V3, "ops-offline")).await;
    offline.subscribe("ops/t", QoS::AtLeastOnce).await;
    offline.disconnect().await;
    let (mut online, _) = connect_ok(&m, persistent(V5, "ops-online")).await;
    online.subscribe("ops/t", QoS::AtLeastOnce).await;
    let mut publisher = connect(&m, V5, "ops-publisher").await;
    for i in 1..=10u16 {
        // Each one is acknowledged with PUBACK: from here on, it must not be lost.
        let payload = format!("m{i}");
        publisher
            .send_publish(publish(
                "ops/t",
                QoS::AtLeastOnce,
                Some(i),
                payload.as_bytes(),
            ))
            .await;
    }
    for i in 1..=10 {
        // Received but never acknowledged: still in flight at shutdown.
        let p = online.expect_publish().await;
        assert_eq!(&p.payload[..], format!("m{i}").as_bytes());
    }

    let code = m.terminate();
    online
        .expect_disconnect(ReasonCode::ServerShuttingDown)
        .await;
    publisher
        .expect_disconnect(ReasonCode::ServerShuttingDown)
        .await;
    assert_eq!(code, Some(0), "log:\n{}", m.log());
    assert!(m.log().contains("Shutdown complete."), "log:\n{}", m.log());

    m.restart();
    let (mut online, ack) = connect_ok(&m, persistent(V5, "ops-online")).await;
    assert!(ack.session_present, "MQTT-3.2.2-2: the session was resumed");
    for i in 1..=10 {
        let p = online.expect_publish().await;
        assert!(p.dup, "MQTT-4.4.0-1: re-sent with DUP=1: {p:?}");
        assert_eq!(&p.payload[..], format!("m{i}").as_bytes());
        online.ack(&p).await;
    }
    let (mut offline, ack) = connect_ok(&m, persistent(V3, "ops-offline")).await;
    assert!(ack.session_present, "MQTT-3.2.2-2: the session was resumed");
    for i in 1..=10 {
        let p = offline.recv_publish().await;
        assert_eq!(&p.payload[..], format!("m{i}").as_bytes());
    }
    let mut publisher = connect(&m, V5, "ops-publisher").await;
    publisher.publish("ops/t", QoS::AtLeastOnce, b"after").await;
    assert_eq!(&online.recv_publish().await.payload[..], b"after");
    assert_eq!(&offline.recv_publish().await.payload[..], b"after");
}

// SIGHUP re-reads the `-c` file: a higher `limits.max_connections` and a `debug` log level
// apply at once, one line names what was reloaded, and connected clients stay connected. A
// file with an invalid value changes nothing and the error names the key; a change that needs
// a restart is reported as such.
#[tokio::test]
async fn sighup_reloads_limits_and_log_level_without_dropping_clients() {
    let m = Midge::start_with_config(
        "[limits]\nmax_connections = 2\n[log]\nlevel = \"info\"\n",
        &[],
    );
    let mut a = connect(&m, V5, "reload-a").await;
    let mut b = connect(&m, V3, "reload-b").await;
    assert!(closed_at_once(&m), "a third connection is over the limit");

    std::fs::write(
        m.config_file(),
        "[limits]\nmax_connections = 4\n[log]\nlevel = \"debug\"\n",
    )
    .expect("rewrite config");
    m.sighup();
    m.wait_for_log(&["Configuration reloaded: log level, limits"]);
    let mut c = connect(&m, V5, "reload-c").await;
    still_connected(&mut a).await;
    still_connected(&mut b).await;
    still_connected(&mut c).await;
    // Debug lines now show: a connection that closes before CONNECT is logged at debug.
    drop(TcpStream::connect(m.addr()).expect("tcp connect"));
    m.wait_for_log(&["closed its connection before CONNECT"]);

    // Invalid: nothing changes, and the error names the key.
    std::fs::write(m.config_file(), "[limits]\nmax_connections = 0\n").expect("rewrite");
    m.sighup();
    m.wait_for_log(&[
        "Configuration reload failed, keeping the running configuration",
        "limits.max_connections",
    ]);
    let mut d = connect(&m, V3, "reload-d").await;
    assert!(closed_at_once(&m), "the limit of 4 still holds");
    still_connected(&mut a).await;

    // Valid again, with a key that only a restart applies.
    std::fs::write(
        m.config_file(),
        "[limits]\nmax_connections = 4\n[log]\nlevel = \"debug\"\n[broker]\nmax_keep_alive = 100\n",
    )
    .expect("rewrite");
    m.sighup();
    m.wait_for_log(&["broker.max_keep_alive changed but only take(s) effect after a restart"]);
    still_connected(&mut a).await;
    still_connected(&mut b).await;
    still_connected(&mut c).await;
    still_connected(&mut d).await;
}

/// Runs `midge` with `env` on a fresh data directory until it exits (it must, within a
/// bound); returns its exit code and stderr.
fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = crate::paho::output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_midge"))
            .args(["-p", "0", "--bind", "127.0.0.1", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("MIDGE__ADMIN__PORT", "0")
            .env("MIDGE__CLUSTER__BIND", "127.0.0.1:0")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied()),
        Duration::from_secs(20),
    );
    assert!(!out.1, "midge kept running with a bad configuration");
    (
        out.0.status.code(),
        String::from_utf8_lossy(&out.0.stderr).into_owned(),
    )
}

// An invalid setting stops the process before it listens, with one error line that names
// the key (here from the environment, the same checks apply to files and flags).
#[test]
fn an_invalid_setting_is_one_error_naming_the_key() {
    for (var, value, key) in [
        ("MIDGE__BROKER__MAXIMUM_QOS", "3", "broker.maximum_qos"),
        (
            "MIDGE__LIMITS__MAX_CONNECTIONS",
            "lots",
            "limits.max_connections",
        ),
        ("MIDGE__BROKER__NO_SUCH_KEY", "1", "no_such_key"),
    ] {
        let (code, stderr) = run_to_exit(&[(var, value)]);
        assert_eq!(code, Some(1), "{var}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("midge: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{var}: {stderr}");
        assert!(errors[0].contains(key), "{var}: {stderr}");
        assert!(!stderr.contains("listening on"), "{var}: {stderr}");
    }
}

// `log.format = "json"`: every line the broker writes is one JSON object, and connection
// events read like Mosquitto's ("New client connected from ADDR as ID (p5, c1, k30,
// u'USER').") in its message.
#[tokio::test]
async fn json_logs_are_one_object_per_line_with_mosquitto_style_events() {
    let m = Midge::start_with(&[("MIDGE__LOG__FORMAT", "json")]);
    let mut login = crate::connect::connect_packet(V5, "json-client", true);
    login.username = Some("alice".into());
    let (c, _) = connect_ok(&m, login).await;
    c.disconnect().await;
    let log = m.wait_for_log(&[
        "json-client (p5, c1, k30, u'alice')",
        "json-client disconnected",
    ]);
    for line in log.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object.is_object(), "{line}");
        assert!(object["level"].is_string(), "{line}");
    }
}

// Graceful shutdown has one deadline, `limits.shutdown_grace_secs`: a subscriber that never
// reads (its socket buffers full of QoS 0 messages) cannot hold the process past it.
#[tokio::test]
async fn shutdown_ends_within_the_grace_period_with_a_client_that_never_reads() {
    let mut m = Midge::start_with(&[("MIDGE__LIMITS__SHUTDOWN_GRACE_SECS", "1")]);
    let mut stuck = connect(&m, V3, "never-reads").await;
    stuck.subscribe("flood/t", QoS::AtMostOnce).await;
    let mut publisher = connect(&m, V5, "flooder").await;
    let payload = vec![7u8; 64 * 1024];
    for _ in 0..400 {
        publisher
            .send(&Packet::Publish(publish(
                "flood/t",
                QoS::AtMostOnce,
                None,
                &payload,
            )))
            .await;
    }
    // A QoS 1 round trip: everything before it was read and routed.
    publisher.publish("other", QoS::AtLeastOnce, b"sync").await;
    let started = std::time::Instant::now();
    assert_eq!(m.terminate(), Some(0));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "exited after {took:?} with a 1 s grace period"
    );
    assert!(
        m.log().contains("still open after the 1 s grace period"),
        "{}",
        m.log()
    );
}

// The admin API lists this node's clients; `midge ctl clients kick` disconnects one with v5
// DISCONNECT 0x98 (Administrative action) and the others carry on.
#[tokio::test]
async fn the_admin_api_lists_clients_and_kicks_one_with_0x98() {
    let m = Midge::start();
    let (mut kept, _) = connect_ok(&m, persistent(V5, "kept")).await;
    kept.subscribe("adm/#", QoS::AtLeastOnce).await;
    let mut kicked = connect(&m, V5, "kick me/äö").await;
    let (status, body) = crate::metrics::get(m.admin_addr(), "/api/v1/clients").await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let ids: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .collect();
    assert_eq!(ids, ["kept", "kick me/äö"]);
    assert_eq!(list[0]["persistent"], true);
    assert_eq!(list[0]["subscriptions"], 1);
    assert_eq!(list[1]["protocol"], "5.0");

    let admin = format!("http://{}", m.admin_addr());
    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_midge"))
            .args(["ctl", "--admin", &admin, "clients"])
            .args(args)
            .output()
            .expect("run midge ctl")
    };
    let out = ctl(&["kick", "kick me/äö"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = kicked.expect_closed().await;
    assert!(
        seen.contains(&Packet::Disconnect(midge_codec::Disconnect::new(
            ReasonCode::AdministrativeAction
        ))),
        "{seen:?}"
    );
    // Kicking a client that is not connected fails and says so.
    let out = ctl(&["kick", "kick me/äö"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    still_connected(&mut kept).await;
    let out = ctl(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"kept\""));
}

/// The `THP_enabled` flag of `/proc/PID/status` (`None` on a kernel that does not report it).
fn thp_enabled(pid: &str) -> Option<u8> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    line["THP_enabled:".len()..].trim().parse().ok()
}

// The broker turns transparent huge pages off for itself (`src/main.rs`): backed 2 MiB at a
// time, mimalloc's arenas cost idle connections 0.3-0.7 KiB each. With `MIMALLOC_ALLOW_THP`
// set, mimalloc decides instead, and the broker keeps what it inherited.
#[test]
fn transparent_huge_pages_are_off_unless_mimalloc_allow_thp_is_set() {
    let Some(inherited) = thp_enabled("self") else {
        eprintln!("skipped: this kernel does not report THP_enabled in /proc/PID/status");
        return;
    };
    let off = Midge::start();
    assert_eq!(thp_enabled(&off.pid().to_string()), Some(0));
    let left = Midge::start_with(&[("MIMALLOC_ALLOW_THP", "1")]);
    assert_eq!(thp_enabled(&left.pid().to_string()), Some(inherited));
}

//! Listeners and security: TLS and mTLS with the mosquitto clients, password files made by the
//! real `mosquitto_passwd`, ACL files with the exact reason codes, retained replay hidden by a
//! subscribe-deny, and certificate reload on SIGHUP.
//!
//! Certificates come from `deploy/gen-certs.sh` (openssl), so the script is tested too.

use crate::connect::{
    connect_packet, connect_with, publish, qos_opts, subscribe_packet, Client, V3, V5,
};
use crate::harness::{have_tool, Midge, RawClient, WAIT};
use crate::paho::output_within;
use bytes::Bytes;
use midge_codec::{AckKind, Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Limit for one client process.
pub(crate) const PROCESS_LIMIT: Duration = Duration::from_secs(20);

pub(crate) fn have_tools() -> bool {
    have_tool("mosquitto_pub", "apt-get install mosquitto-clients")
        && have_tool("mosquitto_passwd", "apt-get install mosquitto")
        && have_tool("openssl", "apt-get install openssl")
}

/// Runs `deploy/gen-certs.sh` into `dir` with client CN `cn`.
pub(crate) fn gen_certs(dir: &Path, cn: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gen-certs.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(cn)
        .output()
        .expect("run gen-certs.sh");
    assert!(out.status.success(), "gen-certs.sh: {out:?}");
    dir.to_owned()
}

pub(crate) fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// A broker with a TLS listener `[listeners.secure]` serving `dir`'s `server.crt` and
/// `server.key` (from [`gen_certs`]); `m.listener("tls", 0)` is its address.
pub(crate) fn tls_broker(dir: &Path) -> Midge {
    Midge::start_with(&[
        ("MIDGE__LISTENERS__SECURE__PROTOCOL", "tls"),
        ("MIDGE__LISTENERS__SECURE__PORT", "0"),
        (
            "MIDGE__LISTENERS__SECURE__CERTFILE",
            &path(dir, "server.crt"),
        ),
        (
            "MIDGE__LISTENERS__SECURE__KEYFILE",
            &path(dir, "server.key"),
        ),
    ])
}

/// `mosquitto_passwd -c -b FILE USER PASSWORD` (a `$7$` hash), then more users with `-b`.
pub(crate) fn passwd_file(dir: &Path, users: &[(&str, &str)]) -> String {
    let file = path(dir, "passwd");
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let out = cmd
            .args(["-b", &file, user, password])
            .output()
            .expect("mosquitto_passwd");
        assert!(out.status.success(), "mosquitto_passwd: {out:?}");
    }
    file
}

pub(crate) fn describe(out: &Output, timed_out: bool, m: &Midge) -> String {
    format!(
        "status {} {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- broker log ---\n{}",
        out.status,
        if timed_out { "(killed)" } else { "" },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        m.log()
    )
}

/// Runs a mosquitto client to completion.
pub(crate) fn run(m: &Midge, tool: &str, args: &[&str]) -> Output {
    let (out, timed_out) = output_within(Command::new(tool).args(args), PROCESS_LIMIT);
    assert!(!timed_out, "{tool} hung: {}", describe(&out, timed_out, m));
    out
}

/// `mosquitto_sub` waiting for one message while `mosquitto_pub` sends it; the subscriber
/// is started with `-R`-free retained delivery, so the message is published retained and the
/// subscriber cannot miss it. Returns the subscriber's output.
pub(crate) fn pub_then_sub(m: &Midge, common: &[&str], topic: &str, payload: &str) -> Output {
    let mut args = common.to_vec();
    args.extend(["-t", topic, "-m", payload, "-q", "1", "-r"]);
    let out = run(m, "mosquitto_pub", &args);
    assert!(
        out.status.success(),
        "publish: {}",
        describe(&out, false, m)
    );
    let mut args = common.to_vec();
    args.extend(["-t", topic, "-C", "1", "-W", "10"]);
    run(m, "mosquitto_sub", &args)
}

pub(crate) fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn tls_listener_serves_mosquitto_clients_and_plain_tcp_keeps_working() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let certs = gen_certs(dir.path(), "unused");
    let m = tls_broker(&certs);
    let tls = m.listener("tls", 0);
    let port = tls.port().to_string();
    let cafile = path(&certs, "ca.crt");
    let common = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &cafile,
        "-V",
        "mqttv311",
    ];
    let out = pub_then_sub(&m, &common, "tls/hello", "over tls");
    assert_eq!(text(&out), "over tls", "{}", describe(&out, false, &m));
    // TLS 1.2 too (the minimum), with v5.
    let common = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &cafile,
        "-V",
        "mqttv5",
        "--tls-version",
        "tlsv1.2",
    ];
    let out = pub_then_sub(&m, &common, "tls/v12", "tls 1.2");
    assert_eq!(text(&out), "tls 1.2", "{}", describe(&out, false, &m));
    // A plain-text client on the TLS port gets nowhere, and the broker carries on.
    let plain = ["-h", "127.0.0.1", "-p", &port, "-t", "x", "-m", "y"];
    let out = run(&m, "mosquitto_pub", &plain);
    assert!(!out.status.success(), "{}", describe(&out, false, &m));
    // The plain listener still serves, and sees what came in over TLS.
    let tcp = m.port().to_string();
    let out = run(
        &m,
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &tcp,
            "-t",
            "tls/hello",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    assert_eq!(text(&out), "over tls");
}

#[test]
fn mtls_requires_a_certificate_and_its_cn_is_the_username_for_acls() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let certs = gen_certs(dir.path(), "alice");
    let acl = path(dir.path(), "acl");
    std::fs::write(&acl, "user alice\ntopic readwrite alice/#\n").expect("acl");
    let m = Midge::start_with(&[
        ("MIDGE__AUTH__ACL_FILE", &acl),
        ("MIDGE__LISTENERS__MTLS__PROTOCOL", "tls"),
        ("MIDGE__LISTENERS__MTLS__PORT", "0"),
        (
            "MIDGE__LISTENERS__MTLS__CERTFILE",
            &path(&certs, "server.crt"),
        ),
        (
            "MIDGE__LISTENERS__MTLS__KEYFILE",
            &path(&certs, "server.key"),
        ),
        ("MIDGE__LISTENERS__MTLS__CAFILE", &path(&certs, "ca.crt")),
        ("MIDGE__LISTENERS__MTLS__REQUIRE_CERTIFICATE", "true"),
        ("MIDGE__LISTENERS__MTLS__USE_IDENTITY_AS_USERNAME", "true"),
        ("MIDGE__LISTENERS__MTLS__ALLOW_ANONYMOUS", "false"),
    ]);
    let port = m.listener("tls", 0).port().to_string();
    let (cafile, cert, key) = (
        path(&certs, "ca.crt"),
        path(&certs, "client.crt"),
        path(&certs, "client.key"),
    );
    let common = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &cafile,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let out = pub_then_sub(&m, &common, "alice/state", "mine");
    assert_eq!(text(&out), "mine", "{}", describe(&out, false, &m));
    // Without a certificate the handshake fails.
    let out = run(
        &m,
        "mosquitto_pub",
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            &cafile,
            "-t",
            "alice/x",
            "-m",
            "no",
        ],
    );
    assert!(!out.status.success(), "{}", describe(&out, false, &m));
    // With it, a topic outside alice/# is refused: mosquitto_pub reports the v5 PUBACK's
    // 0x87 Not authorized.
    let mut args = common.to_vec();
    args.extend(["-V", "mqttv5", "-q", "1", "-t", "bob/x", "-m", "no"]);
    let out = run(&m, "mosquitto_pub", &args);
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("not authorized"),
        "{}",
        describe(&out, false, &m)
    );
}

/// A CONNECT with credentials.
pub(crate) fn login(
    version: ProtocolVersion,
    id: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Connect {
    let mut c = connect_packet(version, id, true);
    c.username = user.map(str::to_string);
    c.password = password.map(|p| Bytes::copy_from_slice(p.as_bytes()));
    c
}

pub(crate) async fn connack(addr: SocketAddr, connect: Connect) -> (RawClient, ReasonCode) {
    let mut c = RawClient::connect(addr, connect.protocol).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Some(Packet::ConnAck(a)) => (c, a.reason),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn mosquitto_passwd_files_work_and_bad_credentials_get_0x86_or_rc_4() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = passwd_file(dir.path(), &[("alice", "s3cret"), ("bob", "hunter2")]);
    // `-H sha512` makes the older `$6$` form; both must work unchanged.
    let out = Command::new("mosquitto_passwd")
        .args(["-H", "sha512", "-b", &file, "carol", "old-style"])
        .output()
        .expect("mosquitto_passwd");
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read_to_string(&file)
        .expect("read")
        .contains("carol:$6$"));
    let m = Midge::start_with(&[
        ("MIDGE__LISTENER__ALLOW_ANONYMOUS", "false"),
        ("MIDGE__LISTENER__PASSWORD_FILE", &file),
    ]);
    let a = m.addr();
    for (v, user, pw) in [
        (V5, "alice", "s3cret"),
        (V3, "bob", "hunter2"),
        (V5, "carol", "old-style"),
    ] {
        let (_c, reason) = connack(a, login(v, user, Some(user), Some(pw))).await;
        assert_eq!(reason, ReasonCode::Success, "{user}");
    }
    // Wrong password or unknown user: v5 0x86 Bad User Name or Password (MQTT-3.1.4-2 lets
    // the server refuse; 3.2.2.2), v3.1.1 return code 4 (decoded to the same code).
    for (v, user, pw) in [(V5, "alice", "wrong"), (V3, "mallory", "s3cret")] {
        let (mut c, reason) = connack(a, login(v, "x", Some(user), Some(pw))).await;
        assert_eq!(reason, ReasonCode::BadUserNameOrPassword, "{user} {v:?}");
        assert!(c.recv().await.is_none(), "closed after the refusal");
    }
    // Anonymous on a listener that does not allow it: 0x87 Not authorized / return code 5.
    for v in [V5, V3] {
        let (_c, reason) = connack(a, login(v, "anon", None, None)).await;
        assert_eq!(reason, ReasonCode::NotAuthorized, "{v:?}");
    }
    // mosquitto_pub, as a real v3 client, reports the v3 return code's text.
    let port = m.port().to_string();
    let pub_as_bob = |password: &str| {
        run(
            &m,
            "mosquitto_pub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "bob",
                "-P",
                password,
                "-t",
                "t",
                "-m",
                "x",
            ],
        )
    };
    let out = pub_as_bob("nope");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(err.contains("bad user name or password"), "{err}");
    let out = pub_as_bob("hunter2");
    assert!(out.status.success(), "{}", describe(&out, false, &m));
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_rate_limited() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = passwd_file(dir.path(), &[("alice", "s3cret")]);
    let m = Midge::start_with(&[
        ("MIDGE__LISTENER__PASSWORD_FILE", &file),
        ("MIDGE__AUTH__LOGIN_FAILURES_BURST", "2"),
        ("MIDGE__AUTH__LOGIN_FAILURES_REFILL_SECS", "3600"),
    ]);
    for _ in 0..2 {
        let (_c, reason) = connack(m.addr(), login(V5, "g", Some("alice"), Some("guess"))).await;
        assert_eq!(reason, ReasonCode::BadUserNameOrPassword);
    }
    // Held off now, even with the right password: 0x9F Connection rate exceeded.
    let (_c, reason) = connack(m.addr(), login(V5, "g", Some("alice"), Some("s3cret"))).await;
    assert_eq!(reason, ReasonCode::ConnectionRateExceeded);
    // Anonymous clients (nothing to guess) are not affected.
    let (_c, reason) = connack(m.addr(), login(V5, "anon", None, None)).await;
    assert_eq!(reason, ReasonCode::Success);
}

fn acl_broker(dir: &Path) -> Midge {
    let file = passwd_file(dir, &[("alice", "a"), ("admin", "b")]);
    let acl = path(dir, "acl");
    std::fs::write(
        &acl,
        "# anonymous clients\ntopic read public/#\n\n\
         user alice\ntopic readwrite alice/#\ntopic read sensors/#\ntopic deny sensors/secret\n\n\
         user admin\ntopic readwrite #\n\n\
         pattern readwrite clients/%c/#\n",
    )
    .expect("acl");
    Midge::start_with(&[
        ("MIDGE__LISTENER__PASSWORD_FILE", &file),
        ("MIDGE__AUTH__ACL_FILE", &acl),
    ])
}

pub(crate) async fn client(
    m: &Midge,
    v: ProtocolVersion,
    id: &str,
    user: &str,
    pw: &str,
) -> Client {
    let (c, ack) = connect_with(m, login(v, id, Some(user), Some(pw))).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    c
}

#[tokio::test]
async fn acl_denies_publish_and_subscribe_with_the_exact_reason_codes() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let m = acl_broker(dir.path());
    let mut admin = client(&m, V5, "admin", "admin", "b").await;
    admin.subscribe("#", QoS::AtLeastOnce).await;

    // v5: PUBACK / PUBREC 0x87 Not authorized (3.4.2.1, 3.5.2.1), and nothing is routed.
    let mut alice = client(&m, V5, "alice5", "alice", "a").await;
    alice
        .send(&Packet::Publish(publish(
            "bob/x",
            QoS::AtLeastOnce,
            Some(3),
            b"no",
        )))
        .await;
    let ack = alice.expect_ack(AckKind::PubAck, 3).await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    alice
        .send(&Packet::Publish(publish(
            "bob/x",
            QoS::ExactlyOnce,
            Some(4),
            b"no",
        )))
        .await;
    let ack = alice.expect_ack(AckKind::PubRec, 4).await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    // SUBACK 0x87 for the forbidden filter, the other one granted (3.9.3).
    let mut sub = subscribe_packet(5, "bob/#", qos_opts(QoS::AtLeastOnce));
    sub.filters
        .push(subscribe_packet(5, "alice/#", qos_opts(QoS::AtLeastOnce)).filters[0].clone());
    let suback = alice.subscribe_with(sub).await;
    assert_eq!(
        suback.reasons,
        vec![ReasonCode::NotAuthorized, ReasonCode::GrantedQoS1]
    );
    // Allowed traffic flows, and is the first thing the admin sees.
    alice.publish("alice/ok", QoS::AtLeastOnce, b"fine").await;
    let p = admin.recv_publish().await;
    assert_eq!(&*p.topic, "alice/ok");

    // v3.1.1: the PUBACK is a plain one and the message is dropped; SUBACK says 0x80.
    let mut alice3 = client(&m, V3, "alice3", "alice", "a").await;
    alice3.publish("bob/y", QoS::AtLeastOnce, b"dropped").await;
    let suback = alice3
        .subscribe_with(subscribe_packet(6, "bob/#", qos_opts(QoS::AtMostOnce)))
        .await;
    // The codec decodes v3's 0x80 as Unspecified error (it has no finer codes).
    assert_eq!(suback.reasons, vec![ReasonCode::UnspecifiedError]);
    // `pattern ... %c` lets every client use its own subtree.
    alice3
        .publish("clients/alice3/up", QoS::AtLeastOnce, b"1")
        .await;
    let p = admin.recv_publish().await;
    assert_eq!(
        &*p.topic, "clients/alice3/up",
        "bob/y must not have been routed"
    );
    admin.expect_silence().await;
}

#[tokio::test]
async fn a_subscribe_deny_hides_retained_replay_and_live_messages() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let m = acl_broker(dir.path());
    let mut admin = client(&m, V5, "admin", "admin", "b").await;
    for (topic, payload) in [("sensors/public", "p"), ("sensors/secret", "s")] {
        let mut p = publish(topic, QoS::AtLeastOnce, Some(1), payload.as_bytes());
        p.retain = true;
        admin.send_publish(p).await;
    }
    let mut alice = client(&m, V5, "alice", "alice", "a").await;
    alice.subscribe("sensors/#", QoS::AtLeastOnce).await;
    let p = alice.recv_publish().await;
    assert_eq!((&*p.topic, p.retain), ("sensors/public", true));
    alice.expect_silence().await;
    admin
        .send_publish(publish(
            "sensors/secret",
            QoS::AtLeastOnce,
            Some(2),
            b"live",
        ))
        .await;
    admin
        .send_publish(publish(
            "sensors/public",
            QoS::AtLeastOnce,
            Some(3),
            b"live",
        ))
        .await;
    let p = alice.recv_publish().await;
    assert_eq!(&*p.topic, "sensors/public");
    alice.expect_silence().await;
}

#[tokio::test]
async fn sighup_reloads_certificates_without_dropping_connections() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let old = gen_certs(&dir.path().join("old"), "c");
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).expect("dir");
    for f in ["server.crt", "server.key"] {
        std::fs::copy(old.join(f), live.join(f)).expect("copy");
    }
    let m = tls_broker(&live);
    let port = m.listener("tls", 0).port().to_string();
    // A long-lived TLS subscriber from before the reload.
    let old_ca = path(&old, "ca.crt");
    let mut sub = Command::new("mosquitto_sub");
    sub.args([
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &old_ca,
        "-t",
        "reload/#",
        "-C",
        "2",
        "-W",
        "30",
        "-q",
        "1",
    ]);
    let sub = std::thread::spawn(move || output_within(&mut sub, PROCESS_LIMIT + WAIT));
    // Wait until it is subscribed: a retained probe comes back to it.
    let common = ["-h", "localhost", "-p", &port, "--cafile", &old_ca];
    let mut args = common.to_vec();
    args.extend(["-t", "reload/1", "-m", "before", "-q", "1", "-r"]);
    assert!(run(&m, "mosquitto_pub", &args).status.success());

    // A new CA and server certificate replace the files; SIGHUP loads them.
    let new = gen_certs(&dir.path().join("new"), "c");
    for f in ["server.crt", "server.key"] {
        std::fs::copy(new.join(f), live.join(f)).expect("copy");
    }
    m.sighup();
    let new_ca = path(&new, "ca.crt");
    let fresh = ["-h", "localhost", "-p", &port, "--cafile", &new_ca];
    let mut args = fresh.to_vec();
    args.extend(["-t", "reload/2", "-m", "after", "-q", "1", "-r"]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let out = run(&m, "mosquitto_pub", &args);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never served: {}",
            describe(&out, false, &m)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Clients trusting only the old CA are now refused ...
    let mut args = common.to_vec();
    args.extend(["-t", "reload/3", "-m", "x"]);
    assert!(!run(&m, "mosquitto_pub", &args).status.success());
    // ... while the subscriber connected before the reload got both messages.
    let (out, timed_out) = sub.join().expect("subscriber");
    assert!(!timed_out, "{}", describe(&out, timed_out, &m));
    assert_eq!(text(&out), "before\nafter", "{}", describe(&out, false, &m));
}

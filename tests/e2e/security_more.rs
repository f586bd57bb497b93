//! More listener and ACL security over real sockets: `pattern` rules with `%u`, retained
//! messages on denied topics, bad TLS handshakes (plain MQTT on a TLS port, a client
//! certificate of a foreign CA, an expired client certificate, TLS 1.1) refused, logged and
//! counted while good clients carry on, and paho-mqtt over TLS (tests/paho/tls.py).
//!
//! Certificates come from `deploy/gen-certs.sh`, the expired one from `openssl ca`, passwords
//! from the real `mosquitto_passwd` (helpers in security.rs).

use crate::connect::{connect_packet, publish, qos_opts, read_to_close, subscribe_packet, V3, V5};
use crate::harness::{have_tool, Midge};
use crate::metrics::{scrape, scrape_until, value};
use crate::paho::{have_paho, output_within};
use crate::security::{
    client, connack, describe, gen_certs, have_tools, login, passwd_file, path, pub_then_sub, run,
    text, tls_broker,
};
use bytes::BytesMut;
use midge_codec::{AckKind, Packet, QoS, ReasonCode};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Upper bound for one paho script run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

const AUTH_REJECTIONS: &str = "midge_auth_rejections_total";
const HANDSHAKE_FAILURES: &str = "midge_handshake_failures_total";

/// Runs `python3 tests/paho/<script> ARGS...` and asserts it exits 0 within [`SCRIPT_LIMIT`]
/// without a FAIL line. The scripts print one PASS/FAIL line per check.
pub(crate) fn paho_script(m: &Midge, script: &str, args: &[&str]) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/paho")
        .join(script);
    let (out, timed_out) = output_within(
        Command::new("python3")
            .arg("-u")
            .arg(&file)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SCRIPT_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !timed_out && !stdout.lines().any(|l| l.starts_with("FAIL")),
        "{script} {args:?}: {}{}\n--- script output ---\n{stdout}\n--- script stderr ---\n{}\n\
         --- broker log ---\n{}",
        out.status,
        if timed_out { " (killed)" } else { "" },
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
}

/// A broker with a password file (alice, bob, admin, reader) and the ACL `acl`.
fn broker_with_acl(dir: &Path, acl: &str) -> Midge {
    let file = passwd_file(
        dir,
        &[
            ("alice", "a"),
            ("bob", "b"),
            ("admin", "x"),
            ("reader", "r"),
        ],
    );
    let acl_file = path(dir, "acl");
    std::fs::write(&acl_file, acl).expect("acl");
    Midge::start_with(&[
        ("MIDGE__LISTENER__PASSWORD_FILE", &file),
        ("MIDGE__AUTH__ACL_FILE", &acl_file),
    ])
}

// `pattern readwrite users/%u/#` (Mosquitto's acl_file: %u is replaced by the client's
// username) gives every user its own subtree and nothing more: alice's SUBSCRIBE to
// users/alice/# is granted, users/bob/# gets SUBACK 0x87 Not authorized in MQTT 5 (3.9.3)
// and 0x80 Failure in 3.1.1 (3.9.3, MQTT-3.9.3-2 allows a failure per filter); a publish to
// another user's subtree gets PUBACK 0x87 (MQTT 5 3.4.2.1) and is not routed.
#[tokio::test]
async fn acl_pattern_with_percent_u_gives_each_user_its_own_subtree() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let m = broker_with_acl(dir.path(), "pattern readwrite users/%u/#\n");

    let mut alice = client(&m, V5, "alice5", "alice", "a").await;
    alice.subscribe("users/alice/#", QoS::AtLeastOnce).await;
    let suback = alice
        .subscribe_with(subscribe_packet(
            2,
            "users/bob/#",
            qos_opts(QoS::AtLeastOnce),
        ))
        .await;
    assert_eq!(suback.reasons, vec![ReasonCode::NotAuthorized]);

    let mut alice3 = client(&m, V3, "alice3", "alice", "a").await;
    alice3.subscribe("users/alice/v3/#", QoS::AtLeastOnce).await;
    let suback = alice3
        .subscribe_with(subscribe_packet(
            3,
            "users/bob/#",
            qos_opts(QoS::AtLeastOnce),
        ))
        .await;
    // The codec decodes v3's 0x80 Failure as Unspecified error (it has no finer codes).
    assert_eq!(suback.reasons, vec![ReasonCode::UnspecifiedError]);

    // bob may not write into alice's subtree; alice may.
    let mut bob = client(&m, V5, "bob5", "bob", "b").await;
    bob.send(&Packet::Publish(publish(
        "users/alice/intruder",
        QoS::AtLeastOnce,
        Some(7),
        b"no",
    )))
    .await;
    let ack = bob.expect_ack(AckKind::PubAck, 7).await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    bob.publish("users/bob/mine", QoS::AtLeastOnce, b"ok").await;
    alice
        .publish("users/alice/hello", QoS::AtLeastOnce, b"hi")
        .await;
    let p = alice.recv_publish().await;
    assert_eq!(
        &*p.topic, "users/alice/hello",
        "bob's publish was not routed"
    );
    alice.expect_silence().await;

    let s = scrape(&m).await;
    assert_eq!(
        value(&s, AUTH_REJECTIONS, &[("reason", "subscribe_denied")]),
        2.0
    );
    assert_eq!(
        value(&s, AUTH_REJECTIONS, &[("reason", "publish_denied")]),
        1.0
    );
}

// A retained message is checked against the ACL when it is replayed, as every delivery is
// (Mosquitto checks read access per message): a user with `topic read #` and
// `topic deny secret/#` may subscribe to "#" (the deny covers only part of it), and then gets
// the retained open/x but never secret/x, retained or live. Each withheld message is counted
// as `midge_auth_rejections_total{reason="delivery_denied"}`.
#[tokio::test]
async fn a_retained_message_on_a_denied_topic_never_reaches_a_hash_subscriber() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let m = broker_with_acl(
        dir.path(),
        "user admin\ntopic readwrite #\n\n\
         user reader\ntopic read #\ntopic deny secret/#\n",
    );
    assert_eq!(
        value(
            &scrape(&m).await,
            AUTH_REJECTIONS,
            &[("reason", "delivery_denied")]
        ),
        0.0
    );
    let mut admin = client(&m, V5, "admin", "admin", "x").await;
    for (topic, payload) in [("secret/x", "hidden"), ("open/x", "visible")] {
        let mut p = publish(topic, QoS::AtLeastOnce, Some(1), payload.as_bytes());
        p.retain = true;
        admin.send_publish(p).await;
    }
    // Both readers stay connected, so each withheld message is counted once per reader.
    let mut readers = Vec::new();
    for (v, id) in [(V5, "reader5"), (V3, "reader3")] {
        let mut reader = client(&m, v, id, "reader", "r").await;
        reader.subscribe("#", QoS::AtLeastOnce).await;
        let p = reader.recv_publish().await;
        assert_eq!(
            (&*p.topic, &p.payload[..], p.retain),
            ("open/x", &b"visible"[..], true),
            "{v:?}"
        );
        reader.expect_silence().await;
        readers.push(reader);
    }
    // Live messages are filtered the same way.
    admin
        .publish("secret/live", QoS::AtLeastOnce, b"hidden")
        .await;
    admin.publish("open/live", QoS::AtLeastOnce, b"seen").await;
    for reader in &mut readers {
        let p = reader.recv_publish().await;
        assert_eq!((&*p.topic, p.retain), ("open/live", false));
        reader.expect_silence().await;
    }
    // Per reader: the retained secret/x and the live secret/live.
    let s = scrape_until(&m, "four withheld deliveries", |s| {
        value(s, AUTH_REJECTIONS, &[("reason", "delivery_denied")]) >= 4.0
    })
    .await;
    assert_eq!(
        value(&s, AUTH_REJECTIONS, &[("reason", "delivery_denied")]),
        4.0
    );
    assert_eq!(
        value(&s, AUTH_REJECTIONS, &[("reason", "subscribe_denied")]),
        0.0
    );
}

/// The minimal `openssl ca` configuration [`expired_client_cert`] signs with.
const CA_CONFIG: &str = "\
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
";

/// A client certificate with CN `cn`, signed by the CA in `ca_dir` (from gen-certs.sh) but
/// valid only on 2020-01-01, written to `out`; returns its (certificate, key) paths.
/// `openssl x509 -req` cannot backdate a certificate; `openssl ca -startdate -enddate` can.
pub(crate) fn expired_client_cert(ca_dir: &Path, out: &Path, cn: &str) -> (String, String) {
    std::fs::create_dir_all(out).expect("dir");
    std::fs::write(out.join("index.txt"), "").expect("index.txt");
    std::fs::write(out.join("serial"), "01\n").expect("serial");
    std::fs::write(out.join("ca.cnf"), CA_CONFIG).expect("ca.cnf");
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(out)
            .output()
            .expect("run openssl");
        assert!(o.status.success(), "openssl {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "expired.key",
    ]);
    let subject = format!("/O=Midge/CN={cn}");
    openssl(&[
        "req",
        "-new",
        "-key",
        "expired.key",
        "-subj",
        &subject,
        "-out",
        "expired.csr",
    ]);
    let (ca_crt, ca_key) = (path(ca_dir, "ca.crt"), path(ca_dir, "ca.key"));
    openssl(&[
        "ca",
        "-batch",
        "-config",
        "ca.cnf",
        "-cert",
        &ca_crt,
        "-keyfile",
        &ca_key,
        "-in",
        "expired.csr",
        "-out",
        "expired.crt",
        "-startdate",
        "20200101000000Z",
        "-enddate",
        "20200102000000Z",
        "-extensions",
        "client_ext",
        "-notext",
    ]);
    // Sound apart from its dates: it chains to the CA when the time is not checked.
    let verified = openssl(&[
        "verify",
        "-no_check_time",
        "-CAfile",
        &ca_crt,
        "expired.crt",
    ]);
    assert!(verified.contains("OK"), "{verified}");
    (path(out, "expired.crt"), path(out, "expired.key"))
}

// Bad TLS clients are refused during the handshake, each with a log line "TLS handshake with
// PEER failed: ..." and one count in midge_handshake_failures_total{transport="tls"}, and the
// listeners go on serving good clients: plain MQTT bytes on a TLS port (no CONNACK, at most a
// TLS alert record), a client certificate signed by another CA and an expired client
// certificate on a listener with `require_certificate` (RFC 8446 4.4.2.4 / RFC 5246 7.4.6:
// the server aborts on a bad certificate), and a TLS 1.1-only client (the broker speaks TLS
// 1.2 and 1.3 only).
//
// Note: `mosquitto_pub --tls-version tlsv1.1` does NOT make a TLS 1.1 client - libmosquitto
// treats it as a minimum and negotiates TLS 1.3 - so `openssl s_client -tls1_1` is used.
#[tokio::test]
async fn bad_tls_handshakes_are_refused_logged_and_counted_while_good_clients_connect() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let certs = gen_certs(&dir.path().join("certs"), "alice");
    let foreign = gen_certs(&dir.path().join("foreign"), "alice");
    let (expired_crt, expired_key) =
        expired_client_cert(&certs, &dir.path().join("expired"), "alice");
    let (server_crt, server_key, cafile) = (
        path(&certs, "server.crt"),
        path(&certs, "server.key"),
        path(&certs, "ca.crt"),
    );
    let m = Midge::start_with(&[
        ("MIDGE__LISTENERS__MTLS__PROTOCOL", "tls"),
        ("MIDGE__LISTENERS__MTLS__PORT", "0"),
        ("MIDGE__LISTENERS__MTLS__CERTFILE", &server_crt),
        ("MIDGE__LISTENERS__MTLS__KEYFILE", &server_key),
        ("MIDGE__LISTENERS__MTLS__CAFILE", &cafile),
        ("MIDGE__LISTENERS__MTLS__REQUIRE_CERTIFICATE", "true"),
        ("MIDGE__LISTENERS__SECURE__PROTOCOL", "tls"),
        ("MIDGE__LISTENERS__SECURE__PORT", "0"),
        ("MIDGE__LISTENERS__SECURE__CERTFILE", &server_crt),
        ("MIDGE__LISTENERS__SECURE__KEYFILE", &server_key),
    ]);
    // `[listeners.NAME]` start in name order: mtls, then secure.
    let mtls = m.listener("tls", 0);
    let secure = m.listener("tls", 1);
    let failures =
        |s: &prometheus_parse::Scrape| value(s, HANDSHAKE_FAILURES, &[("transport", "tls")]);
    assert_eq!(failures(&scrape(&m).await), 0.0);

    // 1. A plain MQTT CONNECT on the TLS port.
    let mut plain = tokio::net::TcpStream::connect(secure).await.expect("tcp");
    let mut bytes = BytesMut::new();
    let connect = Packet::Connect(Box::new(connect_packet(V3, "plain-on-tls", true)));
    midge_codec::encode(&connect, V3, &mut bytes).expect("encode");
    let _ = plain.write_all(&bytes).await;
    let reply = read_to_close(&mut plain).await;
    // 0x15 is a TLS alert record; a CONNACK would start with 0x20.
    assert!(
        reply.is_empty() || reply[0] == 0x15,
        "expected a close or a TLS alert, got {reply:?}"
    );

    // 2. and 3. Client certificates the mTLS listener must not accept.
    let mtls_port = mtls.port().to_string();
    for (what, cert, key) in [
        (
            "a foreign CA's certificate",
            path(&foreign, "client.crt"),
            path(&foreign, "client.key"),
        ),
        ("an expired certificate", expired_crt, expired_key),
    ] {
        let out = run(
            &m,
            "mosquitto_pub",
            &[
                "-h",
                "localhost",
                "-p",
                &mtls_port,
                "--cafile",
                &cafile,
                "--cert",
                &cert,
                "--key",
                &key,
                "-t",
                "alice/x",
                "-m",
                "no",
            ],
        );
        assert!(
            !out.status.success(),
            "{what}: {}",
            describe(&out, false, &m)
        );
    }

    // 4. A client that speaks TLS 1.1 at most (SECLEVEL=0 lets OpenSSL 3 offer it at all).
    let connect_to = secure.to_string();
    let out = run(
        &m,
        "openssl",
        &[
            "s_client",
            "-connect",
            &connect_to,
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-CAfile",
            &cafile,
        ],
    );
    assert!(
        !out.status.success(),
        "TLS 1.1: {}",
        describe(&out, false, &m)
    );

    let s = scrape_until(&m, "four failed TLS handshakes", |s| failures(s) >= 4.0).await;
    assert_eq!(failures(&s), 4.0, "one count per bad client");
    // The wording after "failed:" is rustls's error text.
    let log = m.wait_for_log(&[
        "corrupt message",
        "invalid peer certificate",
        "expired",
        "peer is incompatible",
    ]);
    assert_eq!(
        log.matches("TLS handshake with ").count(),
        4,
        "one log line per bad client:\n{log}"
    );

    // Good clients still get in on both listeners.
    let secure_port = secure.port().to_string();
    let common = ["-h", "localhost", "-p", &secure_port, "--cafile", &cafile];
    let out = pub_then_sub(&m, &common, "tls/after", "still served");
    assert_eq!(text(&out), "still served", "{}", describe(&out, false, &m));
    let (cert, key) = (path(&certs, "client.crt"), path(&certs, "client.key"));
    let common = [
        "-h",
        "localhost",
        "-p",
        &mtls_port,
        "--cafile",
        &cafile,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let out = pub_then_sub(&m, &common, "mtls/after", "with a good certificate");
    assert_eq!(
        text(&out),
        "with a good certificate",
        "{}",
        describe(&out, false, &m)
    );
    assert_eq!(
        failures(&scrape(&m).await),
        4.0,
        "good clients are not counted"
    );
}

// paho-mqtt (Python) over MQTT-over-TLS with the plain TCP transport, MQTT 3.1.1 and 5.0:
// the server certificate verifies against the gen-certs.sh CA (and not against another CA),
// TLS 1.2 or 1.3 is negotiated, and QoS 1 and 2 messages (one of 100 kB, more than a TLS
// record) arrive intact and in order.
#[test]
fn paho_over_tls_for_v311_and_v5() {
    if !have_paho() || !have_tool("openssl", "apt-get install openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let certs = gen_certs(&dir.path().join("certs"), "paho");
    let other = gen_certs(&dir.path().join("other"), "paho");
    let m = tls_broker(&certs);
    let port = m.listener("tls", 0).port().to_string();
    let (ca, other_ca) = (path(&certs, "ca.crt"), path(&other, "ca.crt"));
    for proto in ["3", "5"] {
        paho_script(&m, "tls.py", &["localhost", &port, &ca, proto, &other_ca]);
    }
}

// SIGHUP re-reads the password file: a changed password applies to new logins at once (old
// one: CONNACK 0x86, new one: 0x00) while clients already logged in stay connected and
// served.
#[tokio::test]
async fn sighup_reloads_a_changed_password_without_dropping_clients() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = passwd_file(dir.path(), &[("alice", "old"), ("bob", "bobs")]);
    let m = Midge::start_with(&[
        ("MIDGE__LISTENER__ALLOW_ANONYMOUS", "false"),
        ("MIDGE__LISTENER__PASSWORD_FILE", &file),
    ]);
    let (mut alice, reason) =
        connack(m.addr(), login(V5, "alice-1", Some("alice"), Some("old"))).await;
    assert_eq!(reason, ReasonCode::Success);
    let (mut bob, reason) = connack(m.addr(), login(V3, "bob-1", Some("bob"), Some("bobs"))).await;
    assert_eq!(reason, ReasonCode::Success);

    let out = Command::new("mosquitto_passwd")
        .args(["-b", &file, "alice", "new"])
        .output()
        .expect("mosquitto_passwd");
    assert!(out.status.success(), "{out:?}");
    m.sighup();
    m.wait_for_log(&["Configuration reloaded: certificates, password and ACL files"]);

    let (_c, reason) = connack(m.addr(), login(V5, "alice-2", Some("alice"), Some("old"))).await;
    assert_eq!(
        reason,
        ReasonCode::BadUserNameOrPassword,
        "the old password is gone"
    );
    let (_c, reason) = connack(m.addr(), login(V5, "alice-3", Some("alice"), Some("new"))).await;
    assert_eq!(reason, ReasonCode::Success, "the new one works");
    for (client, v) in [(&mut alice, V5), (&mut bob, V3)] {
        client
            .send(&Packet::Publish(publish(
                "reload/t",
                QoS::AtLeastOnce,
                Some(3),
                b"x",
            )))
            .await;
        match client.recv().await {
            Some(Packet::Ack(ack)) => {
                assert_eq!(ack.kind, AckKind::PubAck, "{v:?}");
                assert!(!ack.reason.is_error(), "{v:?}: {:?}", ack.reason);
            }
            other => panic!("{v:?} client still served: expected PUBACK, got {other:?}"),
        }
    }
}

// SIGHUP re-reads the ACL file: the next access check of a client already connected uses the
// new rules (v5 PUBACK 0x87 where it is now denied), and the client stays connected.
#[tokio::test]
async fn sighup_reloads_the_acl_for_connected_clients() {
    let dir = tempfile::tempdir().expect("dir");
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "topic readwrite a/#\n").expect("acl");
    let acl_path = acl.display().to_string();
    let m = Midge::start_with(&[("MIDGE__AUTH__ACL_FILE", &acl_path)]);
    let (mut c, reason) = connack(m.addr(), login(V5, "acl-reload", None, None)).await;
    assert_eq!(reason, ReasonCode::Success);
    let verdict = async |c: &mut crate::harness::RawClient, topic: &str, id: u16| {
        c.send(&Packet::Publish(publish(
            topic,
            QoS::AtLeastOnce,
            Some(id),
            b"x",
        )))
        .await;
        match c.recv().await {
            Some(Packet::Ack(ack)) if ack.kind == AckKind::PubAck => ack.reason,
            other => panic!("expected PUBACK for {topic}, got {other:?}"),
        }
    };
    assert!(!verdict(&mut c, "a/x", 1).await.is_error());
    assert_eq!(verdict(&mut c, "b/x", 2).await, ReasonCode::NotAuthorized);
    std::fs::write(&acl, "topic readwrite b/#\n").expect("rewrite acl");
    m.sighup();
    m.wait_for_log(&["Configuration reloaded: certificates, password and ACL files"]);
    assert_eq!(verdict(&mut c, "a/x", 3).await, ReasonCode::NotAuthorized);
    assert!(!verdict(&mut c, "b/x", 4).await.is_error());
}

//! `midge -c deploy/sandbox.toml` runs the whole sandbox matrix: the file as shipped, with only
//! its `/etc/midge/...` and `/var/lib/midge` paths pointed at a temporary directory and every
//! listener moved to 127.0.0.1 and a free port through the environment (the layer above the
//! file), checked port by port the way a test.mosquitto.org user would: mosquitto_pub/sub on
//! the plain, password and TLS ports, a client certificate on the mTLS port, paho-mqtt over
//! WebSocket, secure WebSocket and TLS.
//!
//! The sandbox allows 20 new connections per second from one address. The checks of each port
//! come from their own loopback address (mosquitto's `-A`, a bound socket for raw clients), so
//! the test as a whole stays well within that from any one address.

use crate::connect::{connect_packet, connect_with, qos_opts, subscribe_packet, V3, V5};
use crate::guards_more::{send_connect, tcp_from};
use crate::harness::{have_tool, Midge};
use crate::metrics::{scrape, value};
use crate::paho::have_paho;
use crate::security::{describe, gen_certs, login, passwd_file, path, pub_then_sub, run, text};
use crate::security_more::paho_script;
use midge_codec::{QoS, ReasonCode};

/// deploy/sandbox.toml as shipped.
const SANDBOX: &str = include_str!("../../deploy/sandbox.toml");

/// The sandbox's listeners, as `MIDGE__<NAME>__...` environment prefixes.
const LISTENERS: [&str; 6] = [
    "LISTENER",
    "LISTENERS__PASSWORD",
    "LISTENERS__TLS",
    "LISTENERS__MTLS",
    "LISTENERS__WS",
    "LISTENERS__WSS",
];

/// What deploy/sandbox.toml sets `broker.max_packet_size` to.
const SANDBOX_MAX_PACKET: u32 = 1_048_576;

#[tokio::test]
async fn midge_with_deploy_sandbox_toml_serves_the_whole_port_matrix() {
    if !have_tool("mosquitto_pub", "apt-get install mosquitto-clients")
        || !have_tool("mosquitto_passwd", "apt-get install mosquitto")
        || !have_tool("openssl", "apt-get install openssl")
        || !have_paho()
    {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let certs = gen_certs(&dir.path().join("certs"), "sandbox-user");
    let passwd = passwd_file(dir.path(), &[("alice", "s3cret")]);
    let data = dir.path().join("data");
    let config = SANDBOX
        .replace("/etc/midge/certs", &certs.display().to_string())
        .replace("/etc/midge/passwd", &passwd)
        .replace("/var/lib/midge", &data.display().to_string());
    for line in config.lines() {
        let line = line.trim_start();
        assert!(
            line.starts_with('#')
                || !(line.contains("/etc/midge") || line.contains("/var/lib/midge")),
            "deploy/sandbox.toml has a path this test does not replace: {line}"
        );
    }
    let env: Vec<(String, &str)> = LISTENERS
        .iter()
        .flat_map(|l| {
            [
                (format!("MIDGE__{l}__PORT"), "0"),
                (format!("MIDGE__{l}__BIND"), "127.0.0.1"),
            ]
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let m = Midge::start_with_config(&config, &env);

    // `[listener]` first, then `[listeners.NAME]` in name order: mtls, password, tls, ws, wss.
    let tcp = m.listener("tcp", 0);
    let password = m.listener("tcp", 1);
    let mtls = m.listener("tls", 0);
    let tls = m.listener("tls", 1);
    let ws = m.listener("ws", 0);
    let wss = m.listener("wss", 0);
    assert_eq!(tcp, m.addr());
    let cafile = path(&certs, "ca.crt");

    // 1883-style: anonymous MQTT. v5 clients are told the sandbox's packet size limit
    // (MQTT 5 3.2.2.3.6), and "#" is granted without the retained replay (min_wildcard_depth
    // = 1 with shallow_wildcard_without_retained).
    let tcp_port = tcp.port().to_string();
    let common = ["-h", "127.0.0.1", "-A", "127.0.0.2", "-p", &tcp_port];
    let out = pub_then_sub(&m, &common, "sandbox/tcp", "anonymous");
    assert_eq!(text(&out), "anonymous", "{}", describe(&out, false, &m));
    let (mut watcher, ack) = connect_with(&m, connect_packet(V5, "watcher", true)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(ack.properties.maximum_packet_size, Some(SANDBOX_MAX_PACKET));
    let suback = watcher
        .subscribe_with(subscribe_packet(1, "#", qos_opts(QoS::AtMostOnce)))
        .await;
    assert_eq!(suback.reasons, vec![ReasonCode::Success]);
    watcher.expect_silence().await;
    // It would get everything below; it has shown what it had to.
    watcher.disconnect().await;

    // 1884-style: username and password required.
    const PW_CLIENTS: [u8; 4] = [127, 0, 0, 3];
    for v in [V5, V3] {
        // MQTT 5 3.2.2.2: 0x87 Not authorized; 3.1.1 return code 5 (decoded the same).
        let mut s = tcp_from(PW_CLIENTS, password).await;
        let ack = send_connect(&mut s, login(v, "anon", None, None))
            .await
            .expect("CONNACK");
        assert_eq!(ack.reason, ReasonCode::NotAuthorized, "{v:?}");
    }
    // 0x86 Bad User Name or Password.
    let mut s = tcp_from(PW_CLIENTS, password).await;
    let ack = send_connect(&mut s, login(V5, "guess", Some("alice"), Some("wrong")))
        .await
        .expect("CONNACK");
    assert_eq!(ack.reason, ReasonCode::BadUserNameOrPassword);
    let pw_port = password.port().to_string();
    let anonymous = [
        "-h",
        "127.0.0.1",
        "-A",
        "127.0.0.3",
        "-p",
        &pw_port,
        "-t",
        "x",
        "-m",
        "y",
    ];
    let out = run(&m, "mosquitto_pub", &anonymous);
    assert!(!out.status.success(), "{}", describe(&out, false, &m));
    let common = [
        "-h",
        "127.0.0.1",
        "-A",
        "127.0.0.3",
        "-p",
        &pw_port,
        "-u",
        "alice",
        "-P",
        "s3cret",
    ];
    let out = pub_then_sub(&m, &common, "sandbox/password", "with a password");
    assert_eq!(
        text(&out),
        "with a password",
        "{}",
        describe(&out, false, &m)
    );

    // 8883-style: TLS, server certificate verified against the published ca.crt.
    let tls_port = tls.port().to_string();
    let common = [
        "-h",
        "127.0.0.1",
        "-A",
        "127.0.0.4",
        "-p",
        &tls_port,
        "--cafile",
        &cafile,
    ];
    let out = pub_then_sub(&m, &common, "sandbox/tls", "over tls");
    assert_eq!(text(&out), "over tls", "{}", describe(&out, false, &m));

    // 8884-style: TLS with a client certificate of the same CA required.
    let mtls_port = mtls.port().to_string();
    let (cert, key) = (path(&certs, "client.crt"), path(&certs, "client.key"));
    let common = [
        "-h",
        "127.0.0.1",
        "-A",
        "127.0.0.5",
        "-p",
        &mtls_port,
        "--cafile",
        &cafile,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let out = pub_then_sub(&m, &common, "sandbox/mtls", "with a certificate");
    assert_eq!(
        text(&out),
        "with a certificate",
        "{}",
        describe(&out, false, &m)
    );
    let no_cert = [
        "-h",
        "127.0.0.1",
        "-A",
        "127.0.0.5",
        "-p",
        &mtls_port,
        "--cafile",
        &cafile,
        "-t",
        "x",
        "-m",
        "no",
    ];
    let out = run(&m, "mosquitto_pub", &no_cert);
    assert!(!out.status.success(), "{}", describe(&out, false, &m));
    m.wait_for_log(&["TLS handshake with 127.0.0.5:"]);

    // 8080 and 8081-style: WebSocket and secure WebSocket (path /mqtt), and paho over TLS.
    let (ws_port, wss_port) = (ws.port().to_string(), wss.port().to_string());
    for proto in ["3", "5"] {
        paho_script(
            &m,
            "websocket.py",
            &["localhost", &ws_port, "ws", "", proto],
        );
        paho_script(
            &m,
            "websocket.py",
            &["localhost", &wss_port, "wss", &cafile, proto],
        );
        paho_script(&m, "tls.py", &["localhost", &tls_port, &cafile, proto]);
    }

    // What went wrong on purpose was counted, and nothing else was refused.
    let s = scrape(&m).await;
    let limit = |r: &str| value(&s, "midge_limit_rejections_total", &[("reason", r)]);
    let auth = |r: &str| value(&s, "midge_auth_rejections_total", &[("reason", r)]);
    assert_eq!(auth("anonymous"), 3.0, "two raw clients and mosquitto_pub");
    assert_eq!(auth("bad_credentials"), 1.0);
    assert_eq!(
        value(
            &s,
            "midge_handshake_failures_total",
            &[("transport", "tls")]
        ),
        1.0,
        "the mTLS client without a certificate"
    );
    assert_eq!(limit("connection_rate"), 0.0, "{}", m.log());
    assert_eq!(limit("max_connections_per_ip"), 0.0);
    assert_eq!(
        limit("min_wildcard_depth_replay"),
        1.0,
        "the watcher's \"#\""
    );
}

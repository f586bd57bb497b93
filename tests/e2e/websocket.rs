//! MQTT over WebSocket and secure WebSocket, with paho-mqtt's websockets transport (the one
//! browsers' MQTT.js speaks too: path `/mqtt`, subprotocol `mqtt`), MQTT 3.1.1 and 5.0.

use crate::harness::{have_tool, Midge};
use crate::paho::{have_paho, output_within};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SCRIPT_LIMIT: Duration = Duration::from_secs(60);

fn run_script(m: &Midge, scheme: &str, port: u16, cafile: &str, proto: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/paho/websocket.py");
    let (out, timed_out) = output_within(
        Command::new("python3").arg(script).args([
            "localhost",
            &port.to_string(),
            scheme,
            cafile,
            proto,
        ]),
        SCRIPT_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !timed_out && !stdout.contains("FAIL"),
        "{scheme} v{proto}: {}\n{stdout}\n{}\n--- broker log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        m.log()
    );
}

#[test]
fn paho_over_ws_and_wss_for_v311_and_v5() {
    if !have_paho() || !have_tool("openssl", "apt-get install openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gen-certs.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("gen-certs.sh");
    assert!(out.status.success(), "{out:?}");
    let file = |f: &str| dir.path().join(f).display().to_string();
    let m = Midge::start_with(&[
        ("MIDGE__LISTENERS__WEB__PROTOCOL", "ws"),
        ("MIDGE__LISTENERS__WEB__PORT", "0"),
        ("MIDGE__LISTENERS__WEBS__PROTOCOL", "wss"),
        ("MIDGE__LISTENERS__WEBS__PORT", "0"),
        ("MIDGE__LISTENERS__WEBS__CERTFILE", &file("server.crt")),
        ("MIDGE__LISTENERS__WEBS__KEYFILE", &file("server.key")),
    ]);
    let ws = m.listener("ws", 0).port();
    let wss = m.listener("wss", 0).port();
    for proto in ["3", "5"] {
        run_script(&m, "ws", ws, "", proto);
        run_script(&m, "wss", wss, &file("ca.crt"), proto);
    }
}

#[tokio::test]
async fn wrong_path_and_plain_http_are_refused_and_the_broker_carries_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = Midge::start_with(&[
        ("MIDGE__LISTENERS__WEB__PROTOCOL", "ws"),
        ("MIDGE__LISTENERS__WEB__PORT", "0"),
    ]);
    let addr = m.listener("ws", 0);
    for request in [
        "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(crate::harness::WAIT, s.read_to_end(&mut reply)).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with("HTTP/1.1 4"),
            "expected a 4xx refusal, got {reply:?}"
        );
    }
    // The plain listener still serves.
    crate::connect::connect(&m, crate::connect::V5, "after").await;
}

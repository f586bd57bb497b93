//! MQTT v5 enhanced authentication (AUTH packets, MQTT 5 section 4.12) with SCRAM-SHA-256,
//! driven by the `scram` crate's client (crates.io; an implementation nobody here wrote) over
//! a raw v5 connection. Credentials come from `midge passwd --scram`, in the listener's
//! ordinary password file beside a `mosquitto_passwd` entry.

use crate::connect::{connect_packet, V3, V5};
use crate::harness::{have_tool, Midge, RawClient};
use bytes::Bytes;
use midge_codec::{Auth, AuthProperties, Connect, Packet, ReasonCode};
use std::process::Command;

const METHOD: &str = "SCRAM-SHA-256";

/// A password file with `carol` in SCRAM form (made by `midge passwd --scram`) and `bob` as
/// `mosquitto_passwd` writes him.
fn password_file(dir: &std::path::Path) -> String {
    let file = dir.join("passwd").display().to_string();
    let out = Command::new("mosquitto_passwd")
        .args(["-c", "-b", &file, "bob", "hunter2"])
        .output()
        .expect("mosquitto_passwd");
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_midge"))
        .args(["passwd", "-b", "--scram", &file, "carol", "pencil"])
        .output()
        .expect("midge passwd");
    assert!(out.status.success(), "{out:?}");
    file
}

fn scram_connect(id: &str, client_first: &str) -> Connect {
    let mut c = connect_packet(V5, id, true);
    c.properties.authentication_method = Some(METHOD.into());
    c.properties.authentication_data = Some(Bytes::copy_from_slice(client_first.as_bytes()));
    c
}

/// The Authentication Data of an AUTH 0x18 under SCRAM-SHA-256 (MQTT-4.12.0-2).
async fn expect_continue(c: &mut RawClient) -> String {
    match c.recv().await {
        Some(Packet::Auth(a)) => {
            assert_eq!(a.reason, ReasonCode::ContinueAuthentication);
            assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
            let data = a
                .properties
                .authentication_data
                .clone()
                .expect("server-first data");
            String::from_utf8(data.to_vec()).expect("UTF-8")
        }
        other => panic!("expected AUTH 0x18, got {other:?}"),
    }
}

fn auth_continue(data: &str) -> Packet {
    Packet::Auth(Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some(METHOD.into()),
            authentication_data: Some(Bytes::copy_from_slice(data.as_bytes())),
            ..AuthProperties::default()
        }
        .into(),
    })
}

/// Runs the whole exchange as `user`/`password`; returns the client and its CONNACK.
async fn scram_login(m: &Midge, user: &str, password: &str) -> (RawClient, midge_codec::ConnAck) {
    let client = scram::ScramClient::new(user, password, None);
    let (server_first_state, client_first) = client.client_first();
    let mut c = RawClient::connect(m.addr(), V5).await;
    c.send(&Packet::Connect(Box::new(scram_connect(
        user,
        &client_first,
    ))))
    .await;
    let server_first = expect_continue(&mut c).await;
    let client_final_state = server_first_state
        .handle_server_first(&server_first)
        .expect("a well-formed server-first-message");
    let (server_final_state, client_final) = client_final_state.client_final();
    c.send(&auth_continue(&client_final)).await;
    let ack = match c.recv().await {
        Some(Packet::ConnAck(ack)) => ack,
        other => panic!("expected CONNACK, got {other:?}"),
    };
    if ack.reason == ReasonCode::Success {
        // MQTT-4.12.0-5: the CONNACK carries the method; its data is server-final-message,
        // which proves the broker knew the credentials too.
        assert_eq!(
            ack.properties.authentication_method.as_deref(),
            Some(METHOD)
        );
        let server_final = ack
            .properties
            .authentication_data
            .clone()
            .expect("server-final-message");
        let server_final = String::from_utf8(server_final.to_vec()).expect("UTF-8");
        server_final_state
            .handle_server_final(&server_final)
            .expect("the server signature verifies");
    }
    (c, ack)
}

#[tokio::test]
async fn scram_sha_256_logs_in_and_wrong_or_unknown_methods_are_refused() {
    if !have_tool("mosquitto_passwd", "apt-get install mosquitto") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let file = password_file(dir.path());
    let m = Midge::start_with(&[
        ("MIDGE__LISTENER__ALLOW_ANONYMOUS", "false"),
        ("MIDGE__LISTENER__PASSWORD_FILE", &file),
    ]);

    let (mut carol, ack) = scram_login(&m, "carol", "pencil").await;
    assert_eq!(ack.reason, ReasonCode::Success);
    // Logged in: the session works.
    carol.send(&Packet::PingReq).await;
    assert!(matches!(carol.recv().await, Some(Packet::PingResp)));

    // A wrong password: CONNACK 0x86 Bad User Name or Password, then close.
    let (mut c, ack) = scram_login(&m, "carol", "pencils").await;
    assert_eq!(ack.reason, ReasonCode::BadUserNameOrPassword);
    assert!(c.recv().await.is_none(), "closed after the refusal");
    // A user whose entry is a mosquitto_passwd hash cannot answer SCRAM: refused the same way.
    let (_c, ack) = scram_login(&m, "bob", "hunter2").await;
    assert_eq!(ack.reason, ReasonCode::BadUserNameOrPassword);

    // A method the broker does not have: CONNACK 0x8C Bad authentication method
    // (MQTT-4.12.0-1), without any AUTH.
    let mut c = RawClient::connect(m.addr(), V5).await;
    let mut connect = scram_connect("sha1", "n,,n=carol,r=abc");
    connect.properties.authentication_method = Some("SCRAM-SHA-1".into());
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Some(Packet::ConnAck(ack)) => {
            assert_eq!(ack.reason, ReasonCode::BadAuthenticationMethod)
        }
        other => panic!("expected CONNACK 0x8C, got {other:?}"),
    }

    // Something other than AUTH in the middle of the exchange: 0x82 Protocol Error.
    let client = scram::ScramClient::new("carol", "pencil", None);
    let (_, client_first) = client.client_first();
    let mut c = RawClient::connect(m.addr(), V5).await;
    c.send(&Packet::Connect(Box::new(scram_connect(
        "odd",
        &client_first,
    ))))
    .await;
    expect_continue(&mut c).await;
    c.send(&Packet::PingReq).await;
    match c.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, ReasonCode::ProtocolError),
        other => panic!("expected CONNACK 0x82, got {other:?}"),
    }

    // The SCRAM entry checks a plain username and password too, for v3 clients.
    let mut plain = connect_packet(V3, "carol-v3", true);
    plain.username = Some("carol".into());
    plain.password = Some(Bytes::from_static(b"pencil"));
    let mut c = RawClient::connect(m.addr(), V3).await;
    c.send(&Packet::Connect(Box::new(plain))).await;
    match c.recv().await {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, ReasonCode::Success),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

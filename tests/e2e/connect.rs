//! CONNECT / CONNACK, client identifiers, session takeover, keep alive and protocol versions.
//!
//! The first half of this file holds the raw-packet helpers the other e2e files share.

use crate::harness::{v4, v5, Midge, RawClient, QUIET, WAIT};
use bytes::Bytes;
use midge_codec::{
    Ack, AckKind, ConnAck, Connect, ConnectProperties, Disconnect, LastWill, Packet,
    ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscribeProperties,
    SubscriptionOptions, TopicSubscription,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Shared raw-packet helpers.
// ---------------------------------------------------------------------------------------------

pub const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
pub const V5: ProtocolVersion = ProtocolVersion::V5;

/// A CONNECT with keep alive 30 s and nothing else set.
pub fn connect_packet(version: ProtocolVersion, id: &str, clean: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: 30,
        client_id: id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

/// A CONNECT that keeps its session: clean session 0 (v3) / clean start 0 with a session expiry
/// interval of 300 s (v5).
pub fn persistent(version: ProtocolVersion, id: &str) -> Connect {
    let mut c = connect_packet(version, id, false);
    if version.is_v5() {
        c.properties.session_expiry_interval = Some(300);
    }
    c
}

/// A will message.
pub fn will(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload),
        qos,
        retain,
        properties: Default::default(),
    }
}

/// A raw connection that keeps packets it skipped over (a PUBLISH that arrives while waiting
/// for an acknowledgement) for later.
pub struct Client {
    /// The underlying raw client.
    pub raw: RawClient,
    pending: VecDeque<Packet>,
}

impl Client {
    /// Wraps an open raw connection.
    pub fn new(raw: RawClient) -> Client {
        Client {
            raw,
            pending: VecDeque::new(),
        }
    }

    /// The protocol version of the connection.
    pub fn version(&self) -> ProtocolVersion {
        self.raw.version
    }

    /// Sends a packet.
    pub async fn send(&mut self, p: &Packet) {
        self.raw.send(p).await;
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, b: &[u8]) {
        self.raw.send_bytes(b).await;
    }

    /// The next packet (kept ones first); `None` if the broker closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        match self.pending.pop_front() {
            Some(p) => Some(p),
            None => self.raw.recv().await,
        }
    }

    /// The next packet; panics if the connection closes.
    pub async fn next(&mut self) -> Packet {
        self.recv()
            .await
            .expect("connection closed while waiting for a packet")
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.next().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Waits for the given acknowledgement, keeping any PUBLISH that arrives first.
    pub async fn expect_ack(&mut self, kind: AckKind, packet_id: u16) -> Ack {
        let mut skipped = Vec::new();
        let found = loop {
            let p = match self.pending.pop_front() {
                Some(p) => p,
                None => self.raw.recv().await.unwrap_or_else(|| {
                    panic!("connection closed while waiting for {kind:?} {packet_id}")
                }),
            };
            match p {
                Packet::Ack(a) if a.kind == kind && a.packet_id == packet_id => break a,
                Packet::Publish(_) => skipped.push(p),
                other => panic!("expected {kind:?} {packet_id}, got {other:?}"),
            }
        };
        for p in skipped.into_iter().rev() {
            self.pending.push_front(p);
        }
        found
    }

    /// Asserts nothing arrives within `QUIET` and the connection stays open.
    pub async fn expect_silence(&mut self) {
        if let Some(p) = self.pending.pop_front() {
            panic!("expected nothing, got {p:?}");
        }
        match self.raw.recv_within(QUIET).await {
            Err(()) => {}
            Ok(Some(p)) => panic!("expected nothing, got {p:?}"),
            Ok(None) => panic!("expected nothing, but the connection closed"),
        }
    }

    /// Everything received until the broker closes the connection.
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut seen: Vec<Packet> = self.pending.drain(..).collect();
        seen.extend(self.raw.expect_closed().await);
        seen
    }

    /// Asserts the broker ends the connection: a v5 client gets exactly one DISCONNECT with
    /// `reason` first; a v3 client gets nothing before the close.
    pub async fn expect_disconnect(&mut self, reason: ReasonCode) {
        let seen = self.expect_closed().await;
        if self.version().is_v5() {
            match seen.as_slice() {
                [Packet::Disconnect(d)] => assert_eq!(d.reason, reason, "DISCONNECT {d:?}"),
                other => panic!("expected DISCONNECT {reason:?} then close, got {other:?}"),
            }
        } else {
            assert!(seen.is_empty(), "expected a bare close, got {seen:?}");
        }
    }

    /// Sends a SUBSCRIBE and returns its SUBACK, which must come before any other packet
    /// except PUBLISH (kept for later).
    pub async fn subscribe_with(&mut self, sub: Subscribe) -> SubAck {
        let id = sub.packet_id;
        self.send(&Packet::Subscribe(sub)).await;
        let mut skipped = Vec::new();
        let found = loop {
            match self.next().await {
                Packet::SubAck(s) => break s,
                p @ Packet::Publish(_) => skipped.push(p),
                other => panic!("expected SUBACK, got {other:?}"),
            }
        };
        for p in skipped.into_iter().rev() {
            self.pending.push_front(p);
        }
        assert_eq!(found.packet_id, id, "SUBACK packet id");
        found
    }

    /// Subscribes to one filter and asserts the granted QoS equals the requested one.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        let s = self
            .subscribe_with(subscribe_packet(1, filter, qos_opts(qos)))
            .await;
        assert_eq!(s.reasons, vec![granted(qos)], "SUBACK for {filter}");
    }

    /// Sends `p` and completes the sender side of its QoS flow.
    pub async fn send_publish(&mut self, p: Publish) {
        let qos = p.qos;
        let id = p.packet_id;
        self.send(&Packet::Publish(p)).await;
        match (qos, id) {
            (QoS::AtMostOnce, _) => {}
            (QoS::AtLeastOnce, Some(id)) => {
                let a = self.expect_ack(AckKind::PubAck, id).await;
                assert!(!a.reason.is_error(), "PUBACK {a:?}");
            }
            (QoS::ExactlyOnce, Some(id)) => {
                let a = self.expect_ack(AckKind::PubRec, id).await;
                assert!(!a.reason.is_error(), "PUBREC {a:?}");
                self.send(&Packet::Ack(Ack::new(AckKind::PubRel, id))).await;
                self.expect_ack(AckKind::PubComp, id).await;
            }
            _ => panic!("QoS > 0 needs a packet id"),
        }
    }

    /// Publishes `payload` on `topic` with `qos` (packet id 1) and completes the flow.
    pub async fn publish(&mut self, topic: &str, qos: QoS, payload: &[u8]) {
        let id = (qos != QoS::AtMostOnce).then_some(1);
        self.send_publish(publish(topic, qos, id, payload)).await;
    }

    /// Completes the receiver side of the QoS flow of a PUBLISH the broker sent.
    pub async fn ack(&mut self, p: &Publish) {
        match (p.qos, p.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtLeastOnce, Some(id)) => {
                self.send(&Packet::Ack(Ack::new(AckKind::PubAck, id))).await
            }
            (QoS::ExactlyOnce, Some(id)) => {
                self.send(&Packet::Ack(Ack::new(AckKind::PubRec, id))).await;
                self.expect_ack(AckKind::PubRel, id).await;
                self.send(&Packet::Ack(Ack::new(AckKind::PubComp, id)))
                    .await;
            }
            _ => panic!("PUBLISH with a packet id that does not fit its QoS: {p:?}"),
        }
    }

    /// Waits for the next PUBLISH, acknowledges it and returns it.
    pub async fn recv_publish(&mut self) -> Publish {
        let p = self.expect_publish().await;
        self.ack(&p).await;
        p
    }

    /// Sends a DISCONNECT (Success) and waits for the broker to close.
    pub async fn disconnect(mut self) {
        self.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .await;
        let rest = self.expect_closed().await;
        assert!(
            rest.iter().all(|p| matches!(p, Packet::Publish(_))),
            "unexpected packets after DISCONNECT: {rest:?}"
        );
    }
}

/// Opens a connection, sends `connect` and returns the client with the CONNACK it got.
pub async fn connect_with(m: &Midge, connect: Connect) -> (Client, ConnAck) {
    let mut c = RawClient::connect(m.addr(), connect.protocol).await;
    c.send(&Packet::Connect(Box::new(connect))).await;
    match c.recv().await {
        Some(Packet::ConnAck(a)) => (Client::new(c), a),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// Connects and asserts the CONNACK is a success.
pub async fn connect_ok(m: &Midge, connect: Connect) -> (Client, ConnAck) {
    let (c, ack) = connect_with(m, connect).await;
    assert_eq!(ack.reason, ReasonCode::Success, "CONNACK {ack:?}");
    (c, ack)
}

/// Connects with a clean session and asserts success.
pub async fn connect(m: &Midge, version: ProtocolVersion, id: &str) -> Client {
    connect_ok(m, connect_packet(version, id, true)).await.0
}

/// A PUBLISH with no properties.
pub fn publish(topic: &str, qos: QoS, packet_id: Option<u16>, payload: &[u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        properties: Default::default(),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// A SUBSCRIBE for one filter.
pub fn subscribe_packet(packet_id: u16, filter: &str, options: SubscriptionOptions) -> Subscribe {
    Subscribe {
        packet_id,
        filters: vec![TopicSubscription {
            filter: filter.to_string(),
            options,
        }],
        properties: SubscribeProperties::default(),
    }
}

/// Subscription options with only a maximum QoS.
pub fn qos_opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

/// The SUBACK reason code granting `qos`.
pub fn granted(qos: QoS) -> ReasonCode {
    match qos {
        QoS::AtMostOnce => ReasonCode::Success,
        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
    }
}

/// Two clients connected before a test does something nasty, to show the broker still routes
/// messages afterwards.
pub struct Witness {
    sub: Client,
    publ: Client,
    n: u16,
}

impl Witness {
    /// Connects a v3.1.1 subscriber (QoS 1 on `witness/t`) and a v5 publisher.
    pub async fn new(m: &Midge) -> Witness {
        let mut sub = connect(m, V3, "witness-sub").await;
        sub.subscribe("witness/t", QoS::AtLeastOnce).await;
        let publ = connect(m, V5, "witness-pub").await;
        Witness { sub, publ, n: 0 }
    }

    /// Asserts one QoS 1 message still flows from the publisher to the subscriber.
    pub async fn check(&mut self) {
        self.n += 1;
        let payload = format!("witness {}", self.n);
        self.publ
            .send_publish(publish(
                "witness/t",
                QoS::AtLeastOnce,
                Some(self.n),
                payload.as_bytes(),
            ))
            .await;
        let p = self.sub.recv_publish().await;
        assert_eq!(&*p.topic, "witness/t");
        assert_eq!(p.payload, payload.as_bytes());
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }
}

/// Reads raw bytes until the peer closes (or `WAIT` passes, which fails).
pub async fn read_to_close(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("broker did not close the connection");
    out
}

// ---------------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------------

// MQTT-3.2.2-2 (v5) / MQTT-3.2.2-1 (3.1.1): a clean connection gets CONNACK success with
// Session Present 0, for raw clients and for rumqttc.
#[tokio::test]
async fn connack_success_both_versions() {
    let m = Midge::start();
    for v in [V3, V5] {
        let (_c, ack) = connect_with(&m, connect_packet(v, &format!("ok-{v:?}"), true)).await;
        assert_eq!(ack.reason, ReasonCode::Success);
        assert!(!ack.session_present);
    }
    let (_c, present, _rx) = v4::connect_with(v4::options(&m, "rumq4", true)).await;
    assert!(!present);
    let (_c, ack, _rx) = v5::connect_with(v5::options(&m, "rumq5", true)).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    assert!(!ack.session_present);
}

// MQTT-3.1.3-6 / MQTT-3.1.3-7 (v5): a zero-length client id gets a unique assigned id, returned
// in the CONNACK's Assigned Client Identifier, and the connection works.
#[tokio::test]
async fn v5_zero_length_client_id_gets_assigned_id() {
    let m = Midge::start();
    let (mut a, ack_a) = connect_ok(&m, connect_packet(V5, "", true)).await;
    let (_b, ack_b) = connect_ok(&m, connect_packet(V5, "", true)).await;
    let id_a = ack_a
        .properties
        .assigned_client_identifier
        .clone()
        .expect("Assigned Client Identifier");
    let id_b = ack_b
        .properties
        .assigned_client_identifier
        .clone()
        .expect("Assigned Client Identifier");
    assert!(!id_a.is_empty());
    assert_ne!(id_a, id_b, "assigned ids must be unique");
    // The first connection is still alive (the second did not take it over) and works.
    a.subscribe("assigned/t", QoS::AtMostOnce).await;
    a.publish("assigned/t", QoS::AtMostOnce, b"hi").await;
    let p = a.expect_publish().await;
    assert_eq!(p.payload, &b"hi"[..]);
    // A client that names its id gets no assigned id.
    let (_c, ack) = connect_ok(&m, connect_packet(V5, "named", true)).await;
    assert_eq!(ack.properties.assigned_client_identifier, None);
}

// MQTT-3.1.3-6 (3.1.1): a zero-byte ClientId with CleanSession=1 is accepted.
// MQTT-3.1.3-8 (3.1.1): with CleanSession=0 the server answers CONNACK 0x02 (Identifier
// rejected) and closes. MQTT-3.2.2-4 (3.1.1): Session Present is 0 on a non-zero return code.
#[tokio::test]
async fn v3_zero_length_client_id() {
    let m = Midge::start();
    let (mut c, ack) = connect_with(&m, connect_packet(V3, "", true)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert!(!ack.session_present);
    c.subscribe("anon/t", QoS::AtLeastOnce).await;

    let (mut c, ack) = connect_with(&m, connect_packet(V3, "", false)).await;
    // The codec maps v3 return code 2 to 0x85.
    assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid);
    assert!(!ack.session_present);
    assert!(c.expect_closed().await.is_empty());

    // Byte-exact: 20 02 00 02, then close.
    let mut s = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
    s.write_all(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x00, 0, 30, 0, 0])
        .await
        .unwrap();
    assert_eq!(read_to_close(&mut s).await, vec![0x20, 0x02, 0x00, 0x02]);
}

// MQTT-3.1.4-3 (v5): a CONNECT with a client id already connected makes the server send the
// existing connection DISCONNECT 0x8E (Session taken over) and close it; the new one works.
#[tokio::test]
async fn v5_session_takeover() {
    let m = Midge::start();
    let (mut old, _) = connect_ok(&m, connect_packet(V5, "dup", true)).await;
    let (mut new, ack) = connect_ok(&m, connect_packet(V5, "dup", true)).await;
    assert!(!ack.session_present);
    old.expect_disconnect(ReasonCode::SessionTakenOver).await;
    new.subscribe("takeover/t", QoS::AtLeastOnce).await;
    new.publish("takeover/t", QoS::AtMostOnce, b"x").await;
    let p = new.expect_publish().await;
    assert_eq!(p.payload, &b"x"[..]);
}

// MQTT-3.1.4-2 (3.1.1): if the ClientId represents a client already connected, the server
// MUST disconnect the existing client (v3 has no DISCONNECT from the server: a bare close).
#[tokio::test]
async fn v3_session_takeover() {
    let m = Midge::start();
    let (mut old, _) = connect_ok(&m, connect_packet(V3, "dup3", true)).await;
    let (mut new, _) = connect_ok(&m, connect_packet(V3, "dup3", true)).await;
    old.expect_disconnect(ReasonCode::SessionTakenOver).await;
    new.subscribe("takeover/t", QoS::AtLeastOnce).await;
    new.publish("takeover/t", QoS::AtLeastOnce, b"y").await;
    let p = new.recv_publish().await;
    assert_eq!(p.payload, &b"y"[..]);
}

// MQTT-3.1.2-4 / MQTT-3.2.2-2 (3.1.1) and MQTT-3.1.2-5 / MQTT-3.2.2-3 (v5): a takeover with
// a persistent session resumes it: Session Present 1, subscriptions kept.
#[tokio::test]
async fn takeover_of_persistent_session_keeps_it() {
    let m = Midge::start();
    let mut p = connect(&m, V3, "keep-pub").await;
    for v in [V3, V5] {
        let id = format!("keep-{v:?}");
        let (mut old, _) = connect_ok(&m, persistent(v, &id)).await;
        old.subscribe("keep/t", QoS::AtLeastOnce).await;
        let (mut new, ack) = connect_ok(&m, persistent(v, &id)).await;
        assert!(ack.session_present, "{v:?}");
        old.expect_disconnect(ReasonCode::SessionTakenOver).await;
        p.publish("keep/t", QoS::AtLeastOnce, b"kept").await;
        let got = new.recv_publish().await;
        assert_eq!(got.payload, &b"kept"[..]);
        new.disconnect().await;
    }
}

async fn silent_client_is_closed(v: ProtocolVersion, env: &[(&str, &str)], keep_alive: u16) {
    let m = Midge::start_with(env);
    let mut conn = connect_packet(v, "silent", true);
    conn.keep_alive = keep_alive;
    let (mut c, _) = connect_ok(&m, conn).await;
    let start = Instant::now();
    c.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took <= Duration::from_secs(3),
        "closed after {took:?}, expected about 1.5 s"
    );
}

// MQTT-3.1.2-22 (v5): no packet within 1.5 x Keep Alive closes the connection; the server
// sends DISCONNECT 0x8D (Keep Alive timeout) first.
#[tokio::test]
async fn v5_keepalive_timeout() {
    silent_client_is_closed(V5, &[], 1).await;
}

// MQTT-3.1.2-24 (3.1.1): no packet within 1.5 x Keep Alive closes the connection.
#[tokio::test]
async fn v3_keepalive_timeout() {
    silent_client_is_closed(V3, &[], 1).await;
}

// MQTT-3.12.4-1: the server answers PINGREQ with PINGRESP; a client that pings every 0.5 s
// with keep alive 1 s stays connected well past 1.5 s.
#[tokio::test]
async fn pingreq_pingresp_keeps_connection_alive() {
    let m = Midge::start();
    let ping = |v: ProtocolVersion| {
        let m = &m;
        async move {
            let mut conn = connect_packet(v, &format!("pinger-{v:?}"), true);
            conn.keep_alive = 1;
            let (mut c, _) = connect_ok(m, conn).await;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                c.send(&Packet::PingReq).await;
                assert_eq!(c.next().await, Packet::PingResp, "{v:?}");
            }
        }
    };
    tokio::join!(ping(V3), ping(V5));
}

// MQTT-3.2.2-21 / MQTT-3.1.2-21 (v5): when the server's maximum keep alive is lower than the
// client's, CONNACK carries Server Keep Alive with the server's value.
#[tokio::test]
async fn v5_server_keep_alive() {
    let m = Midge::start_with(&[("MIDGE__BROKER__MAX_KEEP_ALIVE", "10")]);
    let mut conn = connect_packet(V5, "ska", true);
    conn.keep_alive = 60;
    let (_c, ack) = connect_ok(&m, conn).await;
    assert_eq!(ack.properties.server_keep_alive, Some(10));
    // Keep alive 0 (disabled) is also above the maximum.
    let mut conn = connect_packet(V5, "ska0", true);
    conn.keep_alive = 0;
    let (_c, ack) = connect_ok(&m, conn).await;
    assert_eq!(ack.properties.server_keep_alive, Some(10));
    // Within the maximum the client's value stands.
    let mut conn = connect_packet(V5, "ska5", true);
    conn.keep_alive = 5;
    let (_c, ack) = connect_ok(&m, conn).await;
    assert!(
        matches!(ack.properties.server_keep_alive, None | Some(5)),
        "{ack:?}"
    );
}

// MQTT-3.2.2-21 (v5): the server enforces its own Server Keep Alive (1 s) on a client that
// asked for 60 s: silence closes it after ~1.5 s with DISCONNECT 0x8D.
#[tokio::test]
async fn v5_server_keep_alive_is_enforced() {
    silent_client_is_closed(V5, &[("MIDGE__BROKER__MAX_KEEP_ALIVE", "1")], 60).await;
}

// MQTT-3.1.2-2 (3.1.1): an unsupported protocol level gets CONNACK return code 0x01
// (unacceptable protocol level) and the connection is closed. For level 6 the server cannot
// know the client's dialect, so it answers in the 3.1.1 form: 20 02 00 01.
#[tokio::test]
async fn unsupported_protocol_level() {
    let m = Midge::start();
    let mut w = Witness::new(&m).await;
    for level in [6u8, 3] {
        // Level 3 with the 3.1.1 name "MQTT" is not a protocol either (3.1 is "MQIsdp").
        let mut s = tokio::net::TcpStream::connect(m.addr()).await.unwrap();
        s.write_all(&[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 30, 0, 1, b'x',
        ])
        .await
        .unwrap();
        assert_eq!(
            read_to_close(&mut s).await,
            vec![0x20, 0x02, 0x00, 0x01],
            "level {level}"
        );
    }
    w.check().await;
}

// MQTT 3.1 (protocol name "MQIsdp", level 3) is supported: a 3.1 client connects, subscribes
// and publishes at every QoS, and interoperates with v5 clients (QoS downgraded to the
// subscription's, MQTT-3.8.4-6 of 3.1.1).
#[tokio::test]
async fn mqtt31_client_pub_sub() {
    let m = Midge::start();
    let v31 = ProtocolVersion::V3_1;
    let (mut c, ack) = connect_with(&m, connect_packet(v31, "old-client", true)).await;
    assert_eq!(ack.reason, ReasonCode::Success);
    assert!(!ack.session_present);
    c.subscribe("legacy/+", QoS::AtLeastOnce).await;

    c.publish("legacy/self", QoS::AtLeastOnce, b"from 3.1")
        .await;
    let p = c.recv_publish().await;
    assert_eq!(
        (&*p.topic, &p.payload[..]),
        ("legacy/self", &b"from 3.1"[..])
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);

    let mut other = connect(&m, V5, "modern").await;
    other.subscribe("legacy/#", QoS::ExactlyOnce).await;
    other
        .publish("legacy/v5", QoS::ExactlyOnce, b"from v5")
        .await;
    let p = c.recv_publish().await;
    assert_eq!((&*p.topic, &p.payload[..]), ("legacy/v5", &b"from v5"[..]));
    assert_eq!(p.qos, QoS::AtLeastOnce);
    let p = other.recv_publish().await;
    assert_eq!(&*p.topic, "legacy/v5");

    c.publish("legacy/x", QoS::ExactlyOnce, b"q2 from 3.1")
        .await;
    let p = other.recv_publish().await;
    assert_eq!(
        (&*p.topic, &p.payload[..]),
        ("legacy/x", &b"q2 from 3.1"[..])
    );
    assert_eq!(p.qos, QoS::ExactlyOnce);
    let p = c.recv_publish().await;
    assert_eq!((&*p.topic, p.qos), ("legacy/x", QoS::AtLeastOnce));
    c.send(&Packet::PingReq).await;
    assert_eq!(c.next().await, Packet::PingResp);
    c.disconnect().await;
}

// MQTT-3.1.3-8 (v5): a server that rejects a zero-length ClientID answers CONNACK 0x85
// (Client Identifier not valid) and closes; MQTT-3.1.3-9 (3.1.1): return code 0x02.
#[tokio::test]
async fn zero_length_client_id_refused_when_disallowed() {
    let m = Midge::start_with(&[("MIDGE__BROKER__ALLOW_ZERO_LENGTH_CLIENT_ID", "false")]);
    for v in [V3, V5] {
        let (mut c, ack) = connect_with(&m, connect_packet(v, "", true)).await;
        assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid, "{v:?}");
        assert!(!ack.session_present);
        assert_eq!(ack.properties.assigned_client_identifier, None);
        assert!(c.expect_closed().await.is_empty());
    }
    connect(&m, V5, "has-an-id").await;
}

// 3.1.2.10: a Keep Alive of 0 turns the mechanism off: a silent client is not disconnected.
#[tokio::test]
async fn keepalive_zero_never_times_out() {
    let m = Midge::start();
    let mut conn = connect_packet(V3, "no-ka", true);
    conn.keep_alive = 0;
    let (mut c, _) = connect_ok(&m, conn).await;
    match c.raw.recv_within(Duration::from_millis(2500)).await {
        Err(()) => {}
        Ok(p) => panic!("silent keep-alive-0 client got {p:?}"),
    }
    c.send(&Packet::PingReq).await;
    assert_eq!(c.next().await, Packet::PingResp);
}

// 4.13 / 3.14.2.1 (v5): on shutdown (SIGTERM) the server sends v5 clients DISCONNECT 0x8B
// (Server shutting down) and closes v3 connections; the process exits with status 0.
#[tokio::test]
async fn shutdown_disconnects_clients() {
    let mut m = Midge::start();
    let mut a = connect(&m, V5, "v5-client").await;
    let mut b = connect(&m, V3, "v3-client").await;
    let code = m.terminate();
    a.expect_disconnect(ReasonCode::ServerShuttingDown).await;
    b.expect_disconnect(ReasonCode::ServerShuttingDown).await;
    assert_eq!(code, Some(0));
    assert!(!m.is_running());
}

// MQTT 5, 4.11 / 3.14.2.2.7: with `broker.shutdown_server_reference` set, v5 clients are told
// 0x9C Server moved with that Server Reference instead; v3 clients are just closed.
#[tokio::test]
async fn shutdown_with_a_server_reference_sends_server_moved() {
    let mut m = Midge::start_with(&[(
        "MIDGE__BROKER__SHUTDOWN_SERVER_REFERENCE",
        "other.example:1883",
    )]);
    let mut a = connect(&m, V5, "v5-moved").await;
    let mut b = connect(&m, V3, "v3-moved").await;
    assert_eq!(m.terminate(), Some(0));
    match a.expect_closed().await.as_slice() {
        [Packet::Disconnect(d)] => {
            assert_eq!(d.reason, ReasonCode::ServerMoved);
            assert_eq!(
                d.properties.server_reference.as_deref(),
                Some("other.example:1883")
            );
        }
        other => panic!("expected DISCONNECT 0x9C, got {other:?}"),
    }
    b.expect_disconnect(ReasonCode::ServerMoved).await;
}

// MQTT-3.1.2-22 (v5) / MQTT-3.1.2-24 (3.1.1): any control packet counts for keep alive, not just
// PINGREQ: a keep-alive-1 client that only publishes every 0.5 s stays connected.
#[tokio::test]
async fn any_packet_resets_keepalive() {
    let m = Midge::start();
    let chat = |v: ProtocolVersion| {
        let m = &m;
        async move {
            let mut conn = connect_packet(v, &format!("chatty-{v:?}"), true);
            conn.keep_alive = 1;
            let (mut c, _) = connect_ok(m, conn).await;
            for i in 0..5u8 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                c.publish("chatty/t", QoS::AtMostOnce, &[i]).await;
            }
            c.send(&Packet::PingReq).await;
            assert_eq!(c.next().await, Packet::PingResp, "{v:?}");
        }
    };
    tokio::join!(chat(V3), chat(V5));
}

// 4.12 / MQTT-4.12.0-1 (v5): a CONNECT with an Authentication Method the server does not
// support is refused (CONNACK 0x8C Bad authentication method or 0x87 Not authorized, or just
// a close) and the connection is closed.
#[tokio::test]
async fn v5_unsupported_authentication_method() {
    let m = Midge::start();
    let mut conn = connect_packet(V5, "auth", true);
    conn.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let mut c = RawClient::connect(m.addr(), V5).await;
    c.send(&Packet::Connect(Box::new(conn))).await;
    let seen = c.expect_closed().await;
    match seen.as_slice() {
        [] => {}
        [Packet::ConnAck(a)] => assert!(
            matches!(
                a.reason,
                ReasonCode::BadAuthenticationMethod | ReasonCode::NotAuthorized
            ),
            "{a:?}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

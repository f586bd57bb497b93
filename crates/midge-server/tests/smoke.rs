//! In-process server tests over real sockets: a server bound to an ephemeral port, driven with
//! raw MQTT bytes so every byte the server sends can be checked.

use midge_codec::{
    Ack, AckKind, Connect, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
    Subscribe, SubscriptionOptions, TopicSubscription,
};
use midge_server::{Config, Server, ServerError};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// MQTT 3.1.1 CONNECT: client id "c1", clean session, keep alive 60.
const CONNECT_V311: &[u8] = &[
    0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'c', b'1',
];
/// MQTT 5 CONNECT: client id "c5", clean start, keep alive 60, no properties.
const CONNECT_V5: &[u8] = &[
    0x10, 15, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 2, b'c', b'5',
];
const PINGREQ: &[u8] = &[0xC0, 0];
const DISCONNECT: &[u8] = &[0xE0, 0];

struct TestServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
    dir: PathBuf,
    /// Left in place on drop (a restart reuses it).
    keep_dir: bool,
}

impl TestServer {
    async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "midge-smoke-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        TestServer::start_in(dir, tweak).await
    }

    async fn start_in(dir: PathBuf, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::default();
        config.listener.port = 0;
        config.admin.port = 0;
        config.cluster.bind = "127.0.0.1:0".to_string();
        config.data_dir = dir.clone();
        tweak(&mut config);
        let bound = Server::bind(config).await.expect("bind");
        let addr = bound.local_addr();
        assert_ne!(addr.port(), 0);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
            dir,
            keep_dir: false,
        }
    }

    /// Stops gracefully, then starts a new server on the same data directory.
    async fn restart(mut self) -> TestServer {
        let dir = self.dir.clone();
        self.keep_dir = true;
        self.stop().await;
        TestServer::start_in(dir, |_| {}).await
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// Triggers shutdown without waiting for it.
    fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits for `run` to return.
    async fn stop(mut self) {
        self.begin_shutdown();
        let task = &mut self.task;
        timeout(WAIT, task)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server run");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Reads one packet: (first byte, body). `None` on EOF before a packet starts.
async fn read_packet(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let read = async {
        let mut first = [0u8; 1];
        if stream.read(&mut first).await.ok()? == 0 {
            return None;
        }
        let mut len = 0usize;
        for shift in 0..4 {
            let byte = stream.read_u8().await.ok()?;
            len |= usize::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.ok()?;
        Some((first[0], body))
    };
    timeout(WAIT, read).await.expect("packet or EOF in time")
}

async fn expect_eof(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let n = timeout(WAIT, stream.read(&mut byte))
        .await
        .expect("EOF in time")
        .unwrap_or(0);
    assert_eq!(
        n, 0,
        "expected the server to close, got byte {:#x}",
        byte[0]
    );
}

#[tokio::test]
async fn v311_connect_gets_connack_and_pings_work() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect().await;
    // CONNECT and PINGREQ in one segment: bytes behind the CONNECT must not be lost.
    client
        .write_all(&[CONNECT_V311, PINGREQ].concat())
        .await
        .expect("write");
    assert_eq!(read_packet(&mut client).await, Some((0x20, vec![0, 0])));
    assert_eq!(read_packet(&mut client).await, Some((0xD0, vec![])));
    client.write_all(DISCONNECT).await.expect("write");
    expect_eof(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn unsupported_protocol_level_gets_return_code_1() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect().await;
    let mut connect = CONNECT_V311.to_vec();
    connect[8] = 6;
    client.write_all(&connect).await.expect("write");
    assert_eq!(read_packet(&mut client).await, Some((0x20, vec![0, 1])));
    expect_eof(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn first_packet_other_than_connect_is_closed() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect().await;
    client.write_all(PINGREQ).await.expect("write");
    expect_eof(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn silent_client_is_closed_after_connect_timeout() {
    let server = TestServer::start(|c| c.limits.connect_timeout_secs = 1).await;
    let mut client = server.connect().await;
    let started = std::time::Instant::now();
    expect_eof(&mut client).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let server = TestServer::start(|c| c.limits.max_connections = 1).await;
    let mut first = server.connect().await;
    first.write_all(CONNECT_V311).await.expect("write");
    assert_eq!(read_packet(&mut first).await, Some((0x20, vec![0, 0])));
    let mut second = server.connect().await;
    expect_eof(&mut second).await;
    // The first one is unaffected.
    first.write_all(PINGREQ).await.expect("write");
    assert_eq!(read_packet(&mut first).await, Some((0xD0, vec![])));
    server.stop().await;
}

#[tokio::test]
async fn v5_malformed_packet_after_connect_gets_disconnect_0x81() {
    let server = TestServer::start(|_| {}).await;
    let mut client = server.connect().await;
    client.write_all(CONNECT_V5).await.expect("write");
    let (kind, _) = read_packet(&mut client).await.expect("CONNACK");
    assert_eq!(kind, 0x20);
    // PUBLISH with QoS bits 11: malformed.
    client
        .write_all(&[0x36, 5, 0, 1, b'a', 0, 1])
        .await
        .expect("write");
    let (kind, body) = read_packet(&mut client).await.expect("DISCONNECT");
    assert_eq!(kind, 0xE0);
    assert_eq!(body.first(), Some(&0x81));
    expect_eof(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_sends_v5_clients_disconnect_0x8b_and_drains() {
    let mut server = TestServer::start(|_| {}).await;
    let mut v5 = server.connect().await;
    v5.write_all(CONNECT_V5).await.expect("write");
    assert_eq!(read_packet(&mut v5).await.map(|p| p.0), Some(0x20));
    let mut v3 = server.connect().await;
    v3.write_all(CONNECT_V311).await.expect("write");
    assert_eq!(read_packet(&mut v3).await, Some((0x20, vec![0, 0])));
    let mut silent = server.connect().await;

    server.begin_shutdown();
    let (kind, body) = read_packet(&mut v5).await.expect("DISCONNECT");
    assert_eq!(kind, 0xE0);
    assert_eq!(body.first(), Some(&0x8B));
    expect_eof(&mut v5).await;
    expect_eof(&mut v3).await;
    expect_eof(&mut silent).await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_with_no_clients_is_immediate() {
    let server = TestServer::start(|_| {}).await;
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn binding_a_port_in_use_names_the_address() {
    let server = TestServer::start(|_| {}).await;
    let mut config = Config::default();
    config.listener.port = server.addr.port();
    config.admin.port = 0;
    config.cluster.bind = "127.0.0.1:0".to_string();
    config.data_dir = server.dir.clone();
    match Server::bind(config).await {
        Err(err @ ServerError::Bind { .. }) => {
            assert!(err.to_string().contains(&server.addr.to_string()), "{err}")
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    server.stop().await;
}

/// docs/configuration.md embeds the default configuration verbatim, so the documentation of
/// every key cannot drift from what `midge --print-default-config` prints.
#[test]
fn configuration_doc_matches_the_embedded_defaults() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/configuration.md")).expect("read doc");
    let defaults = include_str!("../default.toml");
    let begin = "<!-- default-config:begin -->\n```toml\n";
    let start = doc.find(begin).expect("begin marker") + begin.len();
    let end = doc[start..]
        .find("```\n<!-- default-config:end -->")
        .expect("end marker");
    assert_eq!(&doc[start..start + end], defaults);
}

/// A client speaking packets through `midge_codec`.
struct Mqtt {
    stream: TcpStream,
    buf: bytes::BytesMut,
    version: ProtocolVersion,
}

impl Mqtt {
    /// Connects as `id` (v3.1.1) and returns the client with its CONNACK's session-present.
    async fn connect(server: &TestServer, id: &str, clean: bool) -> (Mqtt, bool) {
        let mut c = Mqtt {
            stream: server.connect().await,
            buf: bytes::BytesMut::new(),
            version: ProtocolVersion::V3_1_1,
        };
        c.send(Packet::Connect(Box::new(Connect {
            protocol: c.version,
            clean_start: clean,
            keep_alive: 60,
            client_id: id.into(),
            will: None,
            username: None,
            password: None,
            properties: Default::default(),
        })))
        .await;
        match c.recv().await {
            Packet::ConnAck(ack) if ack.reason == ReasonCode::Success => (c, ack.session_present),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = bytes::BytesMut::new();
        midge_codec::encode(&packet, self.version, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
    }

    async fn recv(&mut self) -> Packet {
        let read = async {
            loop {
                let decoded = midge_codec::decode(&mut self.buf, self.version, 1 << 20);
                if let Some(p) = decoded.expect("decodable") {
                    return p;
                }
                let n = self.stream.read_buf(&mut self.buf).await.expect("read");
                assert_ne!(n, 0, "connection closed");
            }
        };
        timeout(WAIT, read).await.expect("packet in time")
    }

    async fn subscribe(&mut self, filter: &str) {
        self.send(Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: vec![TopicSubscription {
                filter: filter.into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    ..Default::default()
                },
            }],
            properties: Default::default(),
        }))
        .await;
        assert!(matches!(self.recv().await, Packet::SubAck(_)));
    }

    async fn publish(&mut self, topic: &str, retain: bool, payload: &'static [u8]) {
        self.send(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain,
            topic: topic.into(),
            packet_id: Some(7),
            properties: Default::default(),
            payload: bytes::Bytes::from_static(payload),
        }))
        .await;
        assert_eq!(
            self.recv().await,
            Packet::Ack(Ack::new(AckKind::PubAck, 7)),
            "PUBACK"
        );
    }

    async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .await;
    }
}

#[tokio::test]
async fn a_clean_stop_keeps_retained_messages_and_persistent_sessions() {
    let server = TestServer::start(|_| {}).await;
    let (mut sub, present) = Mqtt::connect(&server, "keeper", false).await;
    assert!(!present);
    sub.subscribe("kept/t").await;
    sub.disconnect().await;
    let (mut publ, _) = Mqtt::connect(&server, "pub", true).await;
    publ.publish("kept/t", false, b"queued").await;
    publ.publish("kept/r", true, b"retained").await;

    let server = server.restart().await;
    let (mut sub, present) = Mqtt::connect(&server, "keeper", false).await;
    assert!(present, "the session survived the restart");
    match sub.recv().await {
        Packet::Publish(p) => {
            assert_eq!((&*p.topic, &p.payload[..]), ("kept/t", &b"queued"[..]));
            assert_eq!(p.qos, QoS::AtLeastOnce);
        }
        other => panic!("expected the queued message, got {other:?}"),
    }
    let (mut fresh, _) = Mqtt::connect(&server, "fresh", true).await;
    fresh.subscribe("kept/r").await;
    match fresh.recv().await {
        Packet::Publish(p) => {
            assert_eq!(&p.payload[..], b"retained");
            assert!(p.retain);
        }
        other => panic!("expected the retained message, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn without_storage_a_restart_forgets_everything() {
    let server = TestServer::start(|c| c.storage.enabled = false).await;
    let (sub, _) = Mqtt::connect(&server, "keeper", false).await;
    sub.disconnect().await;
    let dir = server.dir.clone();
    let mut server = server;
    server.keep_dir = true;
    server.stop().await;
    let server = TestServer::start_in(dir, |c| c.storage.enabled = false).await;
    assert!(!server.dir.join("raft").exists(), "nothing written to disk");
    let (_sub, present) = Mqtt::connect(&server, "keeper", false).await;
    assert!(!present);
    server.stop().await;
}

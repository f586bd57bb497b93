//! Starts a real `midge` process on an ephemeral port and gives tests clients for it.
//!
//! Every test gets its own broker process and data directory, so tests run in parallel
//! without sharing state.

use anyhow::{bail, Context, Result};
use bytes::BytesMut;
use midge_codec::{Packet, ProtocolVersion};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long a test waits for something it expects before failing.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test waits to be sure something does NOT arrive.
pub const QUIET: Duration = Duration::from_millis(500);

/// The `-c` file's name in a test broker's directory.
const CONFIG_FILE: &str = "midge.toml";

/// A running broker process, killed on drop.
pub struct Midge {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Every `listening on SCHEME://ADDR` line seen, in order.
    listeners: Listeners,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Midge {
    /// Starts `midge -p 0` with default settings.
    pub fn start() -> Midge {
        Midge::start_with(&[])
    }

    /// Starts `midge -p 0` with extra `MIDGE__...` environment settings.
    pub fn start_with(env: &[(&str, &str)]) -> Midge {
        Midge::start_in(tempfile::tempdir().expect("temp dir"), env)
    }

    /// Starts `midge -c FILE -p 0` where FILE holds `config` (TOML); the test may rewrite it
    /// ([`Midge::config_file`]) and send SIGHUP.
    pub fn start_with_config(config: &str, env: &[(&str, &str)]) -> Midge {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(CONFIG_FILE), config).expect("write config file");
        Midge::start_in(dir, env)
    }

    /// The `-c` file of a broker started with [`Midge::start_with_config`].
    pub fn config_file(&self) -> std::path::PathBuf {
        self.dir.path().join(CONFIG_FILE)
    }

    fn start_in(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Midge {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, addr, log, listeners) = spawn(dir.path(), &env, 0).expect("start midge");
        Midge {
            child,
            addr,
            log,
            listeners,
            dir,
            env,
        }
    }

    /// Stops the broker with SIGKILL and starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        self.kill();
        let (child, addr, log, listeners) =
            spawn(self.dir.path(), &self.env, self.addr.port()).expect("restart midge");
        self.child = child;
        self.addr = addr;
        self.log = log;
        self.listeners = listeners;
    }

    /// The broker's MQTT address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker's MQTT port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address of the `n`-th listener (0-based, in the order the broker logs them) whose
    /// scheme is `scheme` (`tcp`, `tls`, `ws` or `wss`). `[listener]` is the first `tcp` one;
    /// `[listeners.NAME]` follow in name order.
    pub fn listener(&self, scheme: &str, n: usize) -> SocketAddr {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let found = self.listeners.lock().ok().and_then(|l| {
                l.iter()
                    .filter(|(s, _)| s == scheme)
                    .nth(n)
                    .map(|(_, a)| *a)
            });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {scheme}:// listener #{n}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The admin HTTP listener's address (`/metrics`, `/healthz`, `/readyz`), from the
    /// broker's `admin listening on http://ADDR` line of its current run.
    pub fn admin_addr(&self) -> SocketAddr {
        const LINE: &str = "admin listening on http://";
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let log = self.log();
            let found = log.lines().rev().find_map(|l| {
                let rest = &l[l.find(LINE)? + LINE.len()..];
                rest.split_whitespace().next()?.parse().ok()
            });
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no admin listening line; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The cluster gRPC listener's address, from the broker's `cluster listening on
    /// grpc://ADDR` line.
    pub fn cluster_addr(&self) -> SocketAddr {
        self.listener("grpc", 0)
    }

    /// Sends SIGHUP (reload) to the broker.
    pub fn sighup(&self) {
        let _ = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until the broker's log contains every one of `needles`; returns the log.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let log = self.log();
            if needles.iter().all(|n| log.contains(n)) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "log never showed {needles:?}; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|s| s.code())
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Midge {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Listener addresses by scheme, filled in as the broker logs them.
type Listeners = Arc<Mutex<Vec<(String, SocketAddr)>>>;

/// The scheme and address of a `listening on SCHEME://ADDR` log line.
fn listening_on(line: &str) -> Option<(String, SocketAddr)> {
    let pos = line.find("listening on ")?;
    let rest = &line[pos + "listening on ".len()..];
    let (scheme, rest) = rest.split_once("://")?;
    Some((scheme.to_string(), address_at(rest).parse().ok()?))
}

/// The socket address `text` starts with (text or JSON log lines go on after it).
fn address_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')))
        .unwrap_or(text.len());
    &text[..end]
}

fn spawn(
    dir: &std::path::Path,
    env: &[(String, String)],
    port: u16,
) -> Result<(Child, SocketAddr, Arc<Mutex<String>>, Listeners)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_midge"));
    let config = dir.join(CONFIG_FILE);
    if config.exists() {
        cmd.arg("-c").arg(config);
    }
    cmd.args(["-p", &port.to_string(), "--bind", "127.0.0.1", "--data-dir"])
        .arg(dir.join("data"))
        .env_remove("RUST_LOG")
        // Tests run in parallel: every broker's admin HTTP listener gets a free port too.
        .env("MIDGE__ADMIN__PORT", "0")
        // And its cluster gRPC listener.
        .env("MIDGE__CLUSTER__BIND", "127.0.0.1:0")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawn midge")?;
    let stderr = child.stderr.take().context("stderr")?;
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    let listeners: Listeners = Arc::default();
    let found = listeners.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if let Some(listener) = listening_on(&line) {
                if let Ok(mut l) = found.lock() {
                    l.push(listener);
                }
            }
            if let Some(pos) = line.find("listening on tcp://") {
                let rest = &line[pos + "listening on tcp://".len()..];
                let addr = address_at(rest).to_string();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr);
                }
            }
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let l = log.lock().map(|l| l.clone()).unwrap_or_default();
            bail!("midge did not report a listening address; log:\n{l}");
        }
    };
    let addr: SocketAddr = addr
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .with_context(|| format!("parse listening address {addr:?}"))?;
    Ok((child, addr, log, listeners))
}

/// A hand-driven MQTT connection speaking raw packets, for malformed input and exact
/// assertions on what the broker sends.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// The protocol version used to encode and decode.
    pub version: ProtocolVersion,
}

impl RawClient {
    /// Opens a TCP connection.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion) -> RawClient {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    /// Sends a packet.
    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        midge_codec::encode(packet, self.version, &mut out).expect("encode");
        self.stream.write_all(&out).await.expect("write");
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Receives the next packet; `None` if the broker closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, self.recv_inner())
            .await
            .expect("timed out waiting for a packet")
    }

    /// Receives the next packet within `d`; `Err` on timeout.
    pub async fn recv_within(&mut self, d: Duration) -> Result<Option<Packet>, ()> {
        tokio::time::timeout(d, self.recv_inner())
            .await
            .map_err(|_| ())
    }

    async fn recv_inner(&mut self) -> Option<Packet> {
        loop {
            match midge_codec::decode(&mut self.buf, self.version, midge_codec::MAX_PACKET_SIZE) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("broker sent undecodable bytes: {e}"),
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Asserts the broker closes the connection (after any packets, which are returned).
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut seen = Vec::new();
        while let Some(p) = self.recv().await {
            seen.push(p);
        }
        seen
    }
}

/// Incoming traffic of a rumqttc client: every packet, or the error that ended the loop.
pub type Inbox<P> = mpsc::UnboundedReceiver<Result<P, String>>;

/// Waits for the next item of an inbox matching `pick`, skipping others.
pub async fn next_matching<P, T>(
    inbox: &mut Inbox<P>,
    mut pick: impl FnMut(&P) -> Option<T>,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Err(_) => return Err("timed out".into()),
            Ok(None) => return Err("event loop ended".into()),
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(p))) => {
                if let Some(t) = pick(&p) {
                    return Ok(t);
                }
            }
        }
    }
}

/// Asserts nothing matching `pick` arrives within `QUIET`.
pub async fn nothing_matching<P: std::fmt::Debug>(
    inbox: &mut Inbox<P>,
    mut pick: impl FnMut(&P) -> bool,
) {
    let deadline = tokio::time::Instant::now() + QUIET;
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, inbox.recv()).await {
        if let Ok(p) = &item {
            assert!(!pick(p), "unexpected {p:?}");
        } else {
            return;
        }
    }
}

/// MQTT 3.1.1 clients built on rumqttc.
pub mod v4 {
    use super::*;
    pub use rumqttc::{AsyncClient, Event, Incoming, LastWill, MqttOptions, Packet, QoS};

    /// Options for a client of `m` with the given id and clean-session flag.
    pub fn options(m: &Midge, id: &str, clean: bool) -> MqttOptions {
        let mut o = MqttOptions::new(id, "127.0.0.1", m.port());
        o.set_clean_session(clean);
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    /// Connects with `opts`, waits for CONNACK, and returns the client, the CONNACK's
    /// session-present flag and an inbox of everything received afterwards.
    pub async fn connect_with(opts: MqttOptions) -> (AsyncClient, bool, Inbox<Packet>) {
        try_connect_with(opts).await.expect("CONNACK")
    }

    /// [`connect_with`], returning the error that ended the connection before its CONNACK.
    pub async fn try_connect_with(
        opts: MqttOptions,
    ) -> Result<(AsyncClient, bool, Inbox<Packet>), String> {
        let (client, mut el) = AsyncClient::new(opts, 1000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        let present = next_matching(&mut rx, |p| match p {
            Packet::ConnAck(c) => Some(c.session_present),
            _ => None,
        })
        .await?;
        Ok((client, present, rx))
    }

    /// Connects a client with a clean session.
    pub async fn connect(m: &Midge, id: &str) -> (AsyncClient, Inbox<Packet>) {
        let (c, _, rx) = connect_with(options(m, id, true)).await;
        (c, rx)
    }

    /// Waits for the next PUBLISH.
    pub async fn publish(inbox: &mut Inbox<Packet>) -> rumqttc::Publish {
        next_matching(inbox, |p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
        .expect("PUBLISH")
    }

    /// Waits for the SUBACK.
    pub async fn suback(inbox: &mut Inbox<Packet>) -> rumqttc::SubAck {
        next_matching(inbox, |p| match p {
            Packet::SubAck(s) => Some(s.clone()),
            _ => None,
        })
        .await
        .expect("SUBACK")
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(
        client: &AsyncClient,
        inbox: &mut Inbox<Packet>,
        filter: &str,
        qos: QoS,
    ) {
        client.subscribe(filter, qos).await.expect("subscribe");
        suback(inbox).await;
    }
}

/// MQTT 5 clients built on rumqttc.
pub mod v5 {
    use super::*;
    pub use rumqttc::v5::mqttbytes::v5::{
        ConnectReturnCode, LastWill, Packet, PublishProperties, SubscribeProperties,
    };
    pub use rumqttc::v5::mqttbytes::QoS;
    pub use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    /// Options for a client of `m` with the given id and clean-start flag.
    pub fn options(m: &Midge, id: &str, clean: bool) -> MqttOptions {
        let mut o = MqttOptions::new(id, "127.0.0.1", m.port());
        o.set_clean_start(clean);
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    /// Connects with `opts`; returns the client, the CONNACK and an inbox of what follows.
    pub async fn connect_with(
        opts: MqttOptions,
    ) -> (
        AsyncClient,
        rumqttc::v5::mqttbytes::v5::ConnAck,
        Inbox<Packet>,
    ) {
        let (client, mut el) = AsyncClient::new(opts, 1000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:?}")));
                        return;
                    }
                }
            }
        });
        let ack = next_matching(&mut rx, |p| match p {
            Packet::ConnAck(c) => Some(c.clone()),
            _ => None,
        })
        .await
        .expect("CONNACK");
        (client, ack, rx)
    }

    /// Connects a client with a clean start.
    pub async fn connect(m: &Midge, id: &str) -> (AsyncClient, Inbox<Packet>) {
        let (c, _, rx) = connect_with(options(m, id, true)).await;
        (c, rx)
    }

    /// Waits for the next PUBLISH.
    pub async fn publish(inbox: &mut Inbox<Packet>) -> rumqttc::v5::mqttbytes::v5::Publish {
        next_matching(inbox, |p| match p {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
        .expect("PUBLISH")
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(
        client: &AsyncClient,
        inbox: &mut Inbox<Packet>,
        filter: &str,
        qos: QoS,
    ) {
        client.subscribe(filter, qos).await.expect("subscribe");
        next_matching(inbox, |p| match p {
            Packet::SubAck(s) => Some(s.clone()),
            _ => None,
        })
        .await
        .expect("SUBACK");
    }
}

/// True if an external tool is installed. Under CI a missing tool fails the test; elsewhere the
/// test is skipped with a message saying what to install.
pub fn have_tool(tool: &str, install_hint: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required under CI: {install_hint}");
        }
        eprintln!("SKIPPED: {tool} not installed ({install_hint})");
    }
    found
}

impl Midge {
    /// The broker's process id (for reading `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The broker's resident set size in KiB (VmRSS from `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(self.pid()).expect("VmRSS in /proc/PID/status")
    }
}

/// VmRSS of process `pid` in KiB, if it is readable.
pub fn rss_kib_of(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `GET /api/v1/cluster` of one node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ClusterView {
    /// The node answering.
    pub node_id: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Its Raft term.
    pub term: u64,
    /// The highest Raft log index it applied.
    pub applied_index: Option<u64>,
    /// Every member.
    pub members: Vec<ClusterMember>,
}

/// One member in a [`ClusterView`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ClusterMember {
    /// Its node id.
    pub node_id: u64,
    /// `voter` or `learner`.
    pub role: String,
    /// Its cluster (gRPC) address.
    pub cluster_addr: String,
    /// Its MQTT address.
    pub mqtt_addr: String,
}

impl ClusterView {
    /// The voters' ids, in order.
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.role == "voter")
            .map(|m| m.node_id)
            .collect()
    }
}

/// Several `midge` processes forming one cluster on 127.0.0.1, every port ephemeral: node 1
/// starts alone (no seeds), the others join through node 1's cluster address. Node `i` (from
/// 1) is `nodes[i - 1]`. Each process is killed on drop.
pub struct MidgeCluster {
    /// The nodes, by id - 1; `None` once killed with [`MidgeCluster::kill`].
    pub nodes: Vec<Option<Midge>>,
}

impl MidgeCluster {
    /// Starts `n` nodes and waits until node 1 sees all of them as members.
    pub fn start(n: u64) -> MidgeCluster {
        MidgeCluster::start_with(n, &[])
    }

    /// [`MidgeCluster::start`] with extra `MIDGE__...` settings for every node.
    pub fn start_with(n: u64, env: &[(&str, &str)]) -> MidgeCluster {
        // `$SYS` every second, so `$SYS/cluster/...` follows membership changes quickly.
        let sys = ("MIDGE__BROKER__SYS_INTERVAL_SECS", "1");
        let mut first_env = vec![("MIDGE__CLUSTER__NODE_ID", "1"), sys];
        first_env.extend_from_slice(env);
        let first = Midge::start_with(&first_env);
        let seed = first.cluster_addr().to_string();
        let mut nodes = vec![Some(first)];
        for id in 2..=n {
            let id = id.to_string();
            let mut node_env = vec![
                ("MIDGE__CLUSTER__NODE_ID", id.as_str()),
                ("MIDGE__CLUSTER__SEEDS", seed.as_str()),
                sys,
            ];
            node_env.extend_from_slice(env);
            nodes.push(Some(Midge::start_with(&node_env)));
        }
        let cluster = MidgeCluster { nodes };
        cluster.wait_for(1, "every node a member", |v| v.members.len() as u64 == n);
        cluster
    }

    /// Node `id`; panics if it was killed.
    pub fn node(&self, id: u64) -> &Midge {
        self.nodes[(id - 1) as usize]
            .as_ref()
            .expect("node was killed")
    }

    /// Kills node `id` with SIGKILL.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut node) = self.nodes[(id - 1) as usize].take() {
            node.kill();
        }
    }

    /// The ids of the nodes still running.
    pub fn alive(&self) -> Vec<u64> {
        (1..=self.nodes.len() as u64)
            .filter(|id| self.nodes[(id - 1) as usize].is_some())
            .collect()
    }

    /// `GET /api/v1/cluster` of node `id`; `None` while it does not answer.
    pub fn view(&self, id: u64) -> Option<ClusterView> {
        let url = format!("http://{}/api/v1/cluster", self.node(id).admin_addr());
        let mut response = ureq::get(&url).call().ok()?;
        let body = response.body_mut().read_to_string().ok()?;
        serde_json::from_str(&body).ok()
    }

    /// Runs `midge ctl cluster leave --node-id GONE` against node `via`'s admin API and
    /// asserts it succeeded.
    pub fn ctl_leave(&self, via: u64, gone: u64) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_midge"))
            .args(["ctl", "--admin"])
            .arg(format!("http://{}", self.node(via).admin_addr()))
            .args(["cluster", "leave", "--node-id", &gone.to_string()])
            .output()
            .expect("run midge ctl");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until node `id`'s view satisfies `pred`; returns that view.
    pub fn wait_for(
        &self,
        id: u64,
        what: &str,
        pred: impl Fn(&ClusterView) -> bool,
    ) -> ClusterView {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let view = self.view(id);
            if let Some(view) = view.as_ref().filter(|v| pred(v)) {
                return view.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} never saw {what}; last view {view:?}; log:\n{}",
                self.node(id).log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node knows the same leader, one of the running nodes;
    /// returns it.
    pub fn agreed_leader(&self) -> u64 {
        let alive = self.alive();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<Option<u64>> = alive
                .iter()
                .map(|id| self.view(*id).and_then(|v| v.leader))
                .collect();
            if let Some(Some(leader)) = leaders.first() {
                if alive.contains(leader) && leaders.iter().all(|l| *l == Some(*leader)) {
                    return *leader;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nodes {alive:?} never agreed on a leader: {leaders:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts `mosquitto_sub` (QoS 1, `-C 1 -W 30`, line-buffered through `stdbuf` so its `-d`
/// output arrives as it happens) on `host:port` for `topic`, and returns once it printed that
/// it received its SUBACK; the rest of its output follows in the returned lines.
pub fn mosquitto_sub_subscribed(
    host: &str,
    port: &str,
    topic: &str,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    use std::io::BufRead;
    let mut sub = std::process::Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub", "-h", host, "-p", port, "-t", topic])
        .args(["-q", "1", "-v", "-d", "-C", "1", "-W", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_sub");
    let mut lines = std::io::BufReader::new(sub.stdout.take().expect("stdout")).lines();
    loop {
        match lines.next().and_then(Result::ok) {
            Some(line) if line.contains("received SUBACK") => return (sub, lines),
            Some(_) => {}
            None => {
                let _ = sub.kill();
                let _ = sub.wait();
                panic!("mosquitto_sub on {host}:{port} ended before its SUBACK");
            }
        }
    }
}

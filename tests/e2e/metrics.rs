//! The admin HTTP listener: `/metrics` scraped with a real HTTP client (ureq) and parsed with a
//! Prometheus text-format parser, `/healthz`, `/readyz`, and a real Prometheus server (run with
//! the shipped `deploy/prometheus.yml`) scraping a node.

use crate::harness::{have_tool, v4, Midge, WAIT};
use prometheus_parse::{Sample, Scrape, Value};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `GET http://addr/path` with a real HTTP client: (status, body). Blocking, so async tests
/// call it through [`get`].
fn get_blocking(addr: SocketAddr, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WAIT))
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {path} body: {e}"));
    (status, body)
}

/// [`get_blocking`] off the test's async runtime (the rumqttc event loops run on it).
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || get_blocking(addr, &path))
        .await
        .expect("HTTP client thread")
}

/// Scrapes `/metrics` and parses it as the Prometheus text format.
pub(crate) async fn scrape(m: &Midge) -> Scrape {
    let (status, body) = get(m.admin_addr(), "/metrics").await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// The value of the sample `name{labels}`; a histogram's value is its sample count.
pub(crate) fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matches =
        |s: &&Sample| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v));
    let sample = scrape.samples.iter().find(matches).unwrap_or_else(|| {
        let names: Vec<_> = scrape.samples.iter().map(|s| &s.metric).collect();
        panic!("no sample {name}{labels:?} among {names:?}")
    });
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map_or(0.0, |b| b.count),
        Value::Summary(_) => panic!("{name} is a summary"),
    }
}

/// Scrapes until `done` accepts the scrape (counters are read at scrape time, but clients'
/// packets may still be on their way); fails with the last scrape after [`WAIT`].
pub(crate) async fn scrape_until(
    m: &Midge,
    what: &str,
    mut done: impl FnMut(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = scrape(m).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// A subscriber at QoS 2 and a publisher sending 10 QoS 0, 20 QoS 1 and 5 QoS 2 messages of 100
// bytes: the message counters move by exactly that per QoS, the byte counters by 3,500 each
// way, and the latency histogram gets one sample per PUBLISH.
#[tokio::test]
async fn counters_move_by_the_published_amounts() {
    let m = Midge::start();
    let before = scrape(&m).await;
    let (sub, mut sub_inbox) = v4::connect(&m, "metrics-sub").await;
    v4::subscribe(&sub, &mut sub_inbox, "load/#", v4::QoS::ExactlyOnce).await;
    let (publ, _publ_inbox) = v4::connect(&m, "metrics-pub").await;
    let payload = vec![b'x'; 100];
    let plan = [
        (v4::QoS::AtMostOnce, 10),
        (v4::QoS::AtLeastOnce, 20),
        (v4::QoS::ExactlyOnce, 5),
    ];
    for (qos, n) in plan {
        for i in 0..n {
            publ.publish(format!("load/{i}"), qos, false, payload.clone())
                .await
                .expect("publish");
        }
    }
    for _ in 0..35 {
        v4::publish(&mut sub_inbox).await;
    }
    let during = scrape(&m).await;
    assert_eq!(value(&during, "midge_connections", &[]), 2.0);
    assert_eq!(value(&during, "midge_subscriptions", &[]), 1.0);
    assert_eq!(value(&during, "midge_sessions", &[("kind", "clean")]), 2.0);
    assert_eq!(
        value(&during, "midge_sessions", &[("kind", "persistent")]),
        0.0
    );

    // The publisher's last QoS 2 exchange may still be completing: disconnect it, which also
    // flushes its connection's latency samples.
    publ.disconnect().await.expect("disconnect");
    let after = scrape_until(&m, "the publisher's samples", |s| {
        value(s, "midge_connections", &[]) == 1.0
            && value(s, "midge_publish_latency_seconds", &[]) >= 35.0
    })
    .await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    for (qos, n) in [("0", 10.0), ("1", 20.0), ("2", 5.0)] {
        assert_eq!(
            delta("midge_messages_received_total", &[("qos", qos)]),
            n,
            "qos {qos}"
        );
        assert_eq!(
            delta("midge_messages_sent_total", &[("qos", qos)]),
            n,
            "qos {qos}"
        );
    }
    assert_eq!(delta("midge_messages_received_bytes_total", &[]), 3500.0);
    assert_eq!(delta("midge_messages_sent_bytes_total", &[]), 3500.0);
    assert_eq!(delta("midge_publish_latency_seconds", &[]), 35.0);
    for reason in [
        "queue_full",
        "expired",
        "too_large",
        "not_authorized",
        "slow_reader",
    ] {
        assert_eq!(
            delta("midge_messages_dropped_total", &[("reason", reason)]),
            0.0
        );
    }
    // Single node: its forward latency histogram exists without samples.
    assert_eq!(value(&after, "midge_forward_latency_seconds", &[]), 0.0);
}

// An offline persistent session with a queue of 2 (`broker.max_queued_messages`) is sent 5
// messages: 3 are dropped with reason "queue_full"; one retained message counts as stored
// (`$SYS` is off: its topics are retained messages too).
#[tokio::test]
async fn drops_and_retained_messages_are_counted() {
    let m = Midge::start_with(&[
        ("MIDGE__BROKER__MAX_QUEUED_MESSAGES", "2"),
        ("MIDGE__BROKER__SYS_INTERVAL_SECS", "0"),
    ]);
    let (sub, _, mut inbox) = v4::connect_with(v4::options(&m, "metrics-offline", false)).await;
    v4::subscribe(&sub, &mut inbox, "drop/t", v4::QoS::AtLeastOnce).await;
    sub.disconnect().await.expect("disconnect");
    // Its session stays, offline.
    scrape_until(&m, "the subscriber to go offline", |s| {
        value(s, "midge_connections", &[]) == 0.0
            && value(s, "midge_sessions", &[("kind", "persistent")]) == 1.0
    })
    .await;
    let (publ, mut publ_inbox) = v4::connect(&m, "metrics-dropper").await;
    for i in 0..5 {
        publ.publish("drop/t", v4::QoS::AtLeastOnce, false, vec![b'0' + i])
            .await
            .expect("publish");
    }
    publ.publish(
        "drop/retained",
        v4::QoS::AtLeastOnce,
        true,
        b"kept".to_vec(),
    )
    .await
    .expect("publish");
    // Six PUBACKs: the broker handled every publish.
    for _ in 0..6 {
        crate::harness::next_matching(&mut publ_inbox, |p| match p {
            v4::Packet::PubAck(_) => Some(()),
            _ => None,
        })
        .await
        .expect("PUBACK");
    }
    let s = scrape(&m).await;
    assert_eq!(
        value(
            &s,
            "midge_messages_dropped_total",
            &[("reason", "queue_full")]
        ),
        3.0
    );
    assert_eq!(value(&s, "midge_retained_messages", &[]), 1.0);
    assert_eq!(value(&s, "midge_retained_bytes", &[]), 4.0);
}

// `limits.max_connections = 1`: a second connection is closed at once and counted as a limit
// rejection with reason "max_connections"; the first client carries on.
#[tokio::test]
async fn refused_connections_are_counted_by_reason() {
    let m = Midge::start_with(&[("MIDGE__LIMITS__MAX_CONNECTIONS", "1")]);
    let (first, mut first_inbox) = v4::connect(&m, "only-one").await;
    let mut second = TcpStream::connect(m.addr()).expect("tcp connect");
    second.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut buf = [0u8; 1];
    let n = std::io::Read::read(&mut second, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the connection over the limit is closed");
    let s = scrape_until(&m, "the refusal to be counted", |s| {
        value(
            s,
            "midge_limit_rejections_total",
            &[("reason", "max_connections")],
        ) >= 1.0
    })
    .await;
    assert_eq!(
        value(
            &s,
            "midge_limit_rejections_total",
            &[("reason", "max_connections")]
        ),
        1.0
    );
    v4::subscribe(&first, &mut first_inbox, "still/here", v4::QoS::AtLeastOnce).await;
}

// `/healthz` answers while the process runs; `/readyz` once the listener accepts and the
// one-node Raft group leads and has applied everything committed; the Raft gauges say so too.
#[tokio::test]
async fn health_and_readiness_endpoints() {
    let m = Midge::start();
    let admin = m.admin_addr();
    assert_eq!(get(admin, "/healthz").await, (200, "ok\n".to_string()));
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = get(admin, "/readyz").await;
        if status == 200 {
            assert_eq!(body, "ready\n");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(admin, "/nothing-here").await.0, 404);
    let s = scrape(&m).await;
    assert_eq!(value(&s, "midge_raft_is_leader", &[]), 1.0);
    assert_eq!(value(&s, "midge_raft_leader", &[]), 1.0);
    assert_eq!(value(&s, "midge_raft_apply_lag", &[]), 0.0);
    assert!(value(&s, "midge_raft_term", &[]) >= 1.0);
    assert!(value(&s, "midge_raft_commit_index", &[]) >= 0.0);
}

/// A Prometheus server of our own (not Debian's service on :9090), killed on drop.
struct PrometheusServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts `prometheus` on a free loopback port with the shipped `deploy/prometheus.yml`,
    /// its target replaced by `target` and its intervals by one second.
    fn start(target: SocketAddr) -> PrometheusServer {
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("prometheus.yml");
        let shipped = include_str!("../../deploy/prometheus.yml");
        let default_target = "'127.0.0.1:8888'";
        assert!(shipped.contains(default_target), "{shipped}");
        let adapted = shipped
            .replace(default_target, &format!("'{target}'"))
            .replace("interval: 15s", "interval: 1s");
        std::fs::write(&config, adapted).expect("write prometheus.yml");
        // A free port: bind one, release it, and hand it to Prometheus.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        PrometheusServer {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The Debian `prometheus` server scrapes a node (its own instance, config and storage on a
// free loopback port); its query API then returns midge_connections = 1 for the one client.
#[tokio::test]
async fn a_prometheus_server_scrapes_a_node() {
    if !have_tool("prometheus", "apt-get install prometheus") {
        return;
    }
    let m = Midge::start();
    let (_client, _inbox) = v4::connect(&m, "scraped").await;
    let prometheus = PrometheusServer::start(m.admin_addr());
    // Prometheus needs a moment to start and a scrape or two; query until the value shows.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = tokio::task::spawn_blocking({
            let addr = prometheus.addr;
            move || {
                ureq::get(&format!("http://{addr}/api/v1/query"))
                    .query("query", "midge_connections{job=\"midge\"}")
                    .call()
                    .ok()
                    .and_then(|mut r| r.body_mut().read_to_string().ok())
            }
        })
        .await
        .expect("HTTP client thread");
        if let Some(body) = &answer {
            // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},
            //  "value":[<time>,"1"]}]}}
            let found = body.contains("\"status\":\"success\"")
                && body.contains("\"__name__\":\"midge_connections\"");
            if found {
                // The sample's value is the last element of "value": [time, "1"].
                assert!(body.contains(",\"1\"]"), "{body}");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned midge_connections; last answer: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

//! `deploy/compose.yaml` with a real Docker: the image built by `deploy/local-image.sh` from
//! this test's `midge` binary, three containers forming a cluster, a retained QoS 1 message
//! published on node 1 and received on node 2, live QoS 1 messages published on one node and
//! received on another (mosquitto clients over ports published on 127.0.0.1), then one
//! container stopped and the other two still serving both.
//!
//! Skipped with a message when Docker, Docker Compose or the mosquitto clients are missing.
//! The Compose project and the image are removed at the end, whatever happens.

use crate::harness::{have_tool, mosquitto_sub_subscribed, ClusterView};
use crate::paho::output_within;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Containers start in a second, but joining, electing and the healthcheck's start period add
/// up; every wait below is bounded by this.
const CLUSTER_WAIT: Duration = Duration::from_secs(120);
/// One docker command (build, up, down) may take this long.
const DOCKER_LIMIT: Duration = Duration::from_secs(300);
/// One mosquitto client run.
const CLIENT_LIMIT: Duration = Duration::from_secs(15);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `docker compose` (the plugin) or `docker-compose` (the standalone tool), whichever works.
fn compose_command() -> Option<Vec<String>> {
    let works = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if works(&["docker", "compose", "version"]) {
        Some(vec!["docker".into(), "compose".into()])
    } else if works(&["docker-compose", "version"]) {
        Some(vec!["docker-compose".into()])
    } else {
        None
    }
}

/// True when a Docker daemon answers.
fn docker_works() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One Compose project of `deploy/compose.yaml`; `down -v` and the image removal run on drop.
struct Project {
    compose: Vec<String>,
    name: String,
    image: String,
}

impl Project {
    /// A command `compose -f deploy/compose.yaml -p NAME ARGS...` with the image and
    /// ephemeral host ports set through the file's variables.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("-f")
            .arg(repo().join("deploy").join("compose.yaml"))
            .args(["-p", &self.name])
            .args(args)
            .current_dir(repo())
            .env("MIDGE_IMAGE", &self.image)
            .env("MIDGE_HOST_ADDR", "127.0.0.1");
        // Empty: Docker picks a free host port (read back with `port`).
        for node in 1..=3 {
            cmd.env(format!("MIDGE{node}_MQTT_PORT"), "");
            cmd.env(format!("MIDGE{node}_ADMIN_PORT"), "");
        }
        cmd
    }

    /// Runs a compose command within [`DOCKER_LIMIT`] and panics, with the logs, if it fails.
    fn run(&self, args: &[&str]) -> Output {
        let (out, timed_out) = output_within(&mut self.command(args), DOCKER_LIMIT);
        if !out.status.success() || timed_out {
            panic!(
                "compose {args:?} failed ({}{})\n{}\n{}\n--- logs ---\n{}",
                out.status,
                if timed_out { ", timed out" } else { "" },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
        }
        out
    }

    /// Every container's log so far (for failure messages).
    fn logs(&self) -> String {
        let (out, _) = output_within(
            &mut self.command(&["logs", "--no-color", "--tail", "200"]),
            Duration::from_secs(30),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The host address that `service`'s container port is published on.
    fn published(&self, service: &str, port: u16) -> String {
        let out = self.run(&["port", service, &port.to_string()]);
        let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "{service}:{port} published on {addr:?}"
        );
        addr
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = output_within(
            &mut self.command(&["down", "-v", "--remove-orphans", "--timeout", "20"]),
            DOCKER_LIMIT,
        );
        let _ = output_within(
            Command::new("docker").args(["image", "rm", "-f", &self.image]),
            Duration::from_secs(60),
        );
    }
}

/// `GET /api/v1/cluster` through a published admin port; `None` while it does not answer.
fn view(admin: &str) -> Option<ClusterView> {
    let mut response = ureq::get(&format!("http://{admin}/api/v1/cluster"))
        .call()
        .ok()?;
    let body = response.body_mut().read_to_string().ok()?;
    serde_json::from_str(&body).ok()
}

/// Waits until every admin address in `admins` sees `voters` as the voters and one leader
/// among them, the same for all; returns the leader.
fn wait_for_cluster(project: &Project, admins: &[String], voters: &[u64]) -> u64 {
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let views: Vec<Option<ClusterView>> = admins.iter().map(|a| view(a)).collect();
        let leaders: Vec<Option<u64>> = views
            .iter()
            .map(|v| v.as_ref().and_then(|v| v.leader))
            .collect();
        let agreed = views
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| v.voters() == voters))
            && leaders.windows(2).all(|w| w[0] == w[1]);
        if let (true, Some(Some(leader))) = (agreed, leaders.first()) {
            return *leader;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never agreed on voters {voters:?} and a leader; views {views:?}\n\
             --- logs ---\n{}",
            project.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `mosquitto_pub` of a retained QoS 1 message, retried until it succeeds (it exits 0 only
/// after the PUBACK, which a node sends once the cluster committed the message).
fn publish_retained(project: &Project, mqtt: &str, topic: &str, payload: &str) {
    let (host, port) = mqtt.rsplit_once(':').expect("host:port");
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let (out, timed_out) = output_within(
            Command::new("mosquitto_pub").args([
                "-h", host, "-p", port, "-t", topic, "-m", payload, "-r", "-q", "1",
            ]),
            CLIENT_LIMIT,
        );
        if out.status.success() && !timed_out {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto_pub to {mqtt} never succeeded: {}\n--- logs ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            project.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Subscribes with `mosquitto_sub` until the retained message of `topic` is `payload` (the
/// node applies what the leader committed a moment after the PUBACK).
fn expect_retained(project: &Project, mqtt: &str, topic: &str, payload: &str) {
    let (host, port) = mqtt.rsplit_once(':').expect("host:port");
    let deadline = Instant::now() + CLUSTER_WAIT;
    loop {
        let (out, _) = output_within(
            Command::new("mosquitto_sub").args([
                "-h", host, "-p", port, "-t", topic, "-q", "1", "-C", "1", "-W", "3",
            ]),
            CLIENT_LIMIT,
        );
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && got == payload {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{mqtt} never served {payload:?} on {topic} (last: {got:?}, {})\n--- logs ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            project.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until every node in `admins` has broker links up to `peers` other nodes (its
/// `midge_cluster_peers{state="up"}` metric), so a SUBACK waits for all of them.
fn wait_for_links(project: &Project, admins: &[String], peers: usize) {
    let deadline = Instant::now() + CLUSTER_WAIT;
    let want = format!("midge_cluster_peers{{state=\"up\"}} {peers}");
    for a in admins {
        loop {
            let body = ureq::get(&format!("http://{a}/metrics"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .unwrap_or_default();
            if body.lines().any(|l| l == want) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{a} never had {peers} broker links up\n--- logs ---\n{}",
                project.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A live (not retained) QoS 1 message across nodes: `mosquitto_sub` on `sub_mqtt` (its
/// SUBACK comes once the other nodes know the route), then `mosquitto_pub` on `pub_mqtt`.
fn live_message(project: &Project, sub_mqtt: &str, pub_mqtt: &str, topic: &str, payload: &str) {
    let (sh, sp) = sub_mqtt.rsplit_once(':').expect("host:port");
    let (ph, pp) = pub_mqtt.rsplit_once(':').expect("host:port");
    let (mut sub, lines) = mosquitto_sub_subscribed(sh, sp, topic);
    let (out, timed_out) = output_within(
        Command::new("mosquitto_pub")
            .args(["-h", ph, "-p", pp, "-t", topic, "-m", payload, "-q", "1"]),
        CLIENT_LIMIT,
    );
    assert!(
        out.status.success() && !timed_out,
        "mosquitto_pub to {pub_mqtt}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = lines.map_while(Result::ok).collect();
    let status = sub.wait().expect("wait for mosquitto_sub");
    assert!(
        status.success() && got.iter().any(|l| *l == format!("{topic} {payload}")),
        "{sub_mqtt} did not get {payload:?} published on {pub_mqtt}: {got:?}\n--- logs ---\n{}",
        project.logs()
    );
}

/// Builds the image from this test's binary with `deploy/local-image.sh`.
fn build_image(tag: &str) {
    let script = repo().join("deploy").join("local-image.sh");
    let binary = Path::new(env!("CARGO_BIN_EXE_midge"));
    let (out, timed_out) = output_within(
        Command::new("bash").arg(&script).arg(binary).arg(tag),
        DOCKER_LIMIT,
    );
    assert!(
        out.status.success() && !timed_out,
        "deploy/local-image.sh failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Compose project named `{prefix}-<unique>` using an image built from this test's binary,
/// not started yet; `None` (with a SKIPPED line) where Docker, Compose or the mosquitto clients
/// are missing.
fn new_project(prefix: &str) -> Option<Project> {
    if !docker_works() {
        eprintln!("SKIPPED: no Docker daemon answers `docker info`");
        return None;
    }
    let Some(compose) = compose_command() else {
        eprintln!("SKIPPED: neither `docker compose` nor `docker-compose` is installed");
        return None;
    };
    if !have_tool("mosquitto_pub", "apt-get install mosquitto-clients")
        || !have_tool("mosquitto_sub", "apt-get install mosquitto-clients")
    {
        return None;
    }
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let project = Project {
        compose,
        name: format!("{prefix}-{unique}"),
        image: format!("{prefix}:{unique}"),
    };
    build_image(&project.image);
    Some(project)
}

#[test]
fn three_containers_form_a_cluster_and_survive_one_stopping() {
    let Some(project) = new_project("midge-e2e") else {
        return;
    };
    project.run(&["up", "-d"]);

    let mqtt: Vec<String> = (1..=3)
        .map(|n| project.published(&format!("midge{n}"), 1883))
        .collect();
    let admin: Vec<String> = (1..=3)
        .map(|n| project.published(&format!("midge{n}"), 8888))
        .collect();
    let leader = wait_for_cluster(&project, &admin, &[1, 2, 3]);
    println!("cluster formed: voters 1, 2, 3; leader {leader}");

    publish_retained(&project, &mqtt[0], "compose/greeting", "hello from node 1");
    expect_retained(&project, &mqtt[1], "compose/greeting", "hello from node 1");
    println!("retained message published on node 1 received on node 2");
    wait_for_links(&project, &admin, 2);
    live_message(
        &project,
        &mqtt[1],
        &mqtt[0],
        "compose/live",
        "live from node 1",
    );
    live_message(
        &project,
        &mqtt[2],
        &mqtt[1],
        "compose/live",
        "live from node 2",
    );
    println!("live QoS 1 messages published on one node received on another");

    // Stop node 3 (SIGTERM, drained); nodes 1 and 2 are still a majority of the voters.
    project.run(&["stop", "midge3"]);
    wait_for_cluster(&project, &admin[..2], &[1, 2, 3]);
    publish_retained(&project, &mqtt[1], "compose/greeting", "node 3 is away");
    expect_retained(&project, &mqtt[0], "compose/greeting", "node 3 is away");
    for a in &admin[..2] {
        let status = ureq::get(&format!("http://{a}/healthz"))
            .call()
            .map(|r| r.status().as_u16());
        assert_eq!(status.ok(), Some(200), "/healthz of {a}");
    }
    live_message(
        &project,
        &mqtt[0],
        &mqtt[1],
        "compose/live",
        "node 3 is still away",
    );
    println!("with node 3 stopped, nodes 1 and 2 commit and serve retained and live messages");
}

/// The id of `service`'s container.
fn container(project: &Project, service: &str) -> String {
    let out = project.run(&["ps", "-q", service]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `midge-bench ARGS` (image `bench`) in the network namespace of container `cid`, so it
/// reaches that node on 127.0.0.1:1883 even while the node is cut off from the cluster network;
/// returns its JSON summary.
fn bench_in(bench: &str, cid: &str, args: &[&str]) -> serde_json::Value {
    let network = format!("container:{cid}");
    let (out, timed_out) = output_within(
        Command::new("docker")
            .args(["run", "--rm", "--network", &network])
            .args(["--entrypoint", "/usr/local/bin/midge", bench])
            .args(args)
            .args(["-h", "127.0.0.1", "-p", "1883", "--quiet"]),
        DOCKER_LIMIT,
    );
    assert!(!timed_out, "midge-bench {args:?} did not finish");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "midge-bench {args:?} printed no summary ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

// The brief's partition policy: node 3 cut off from the others (`docker network disconnect`)
// refuses what needs a quorum (a retained QoS 1 publish gets v5 DISCONNECT 0x89 Server busy and
// no PUBACK), keeps serving QoS 0 among its own clients, while the majority keeps full service;
// after `docker network connect` node 3 converges by itself to the majority's retained state.
#[test]
fn a_partitioned_node_refuses_quorum_writes_and_converges_after_healing() {
    let bench_bin = Path::new(env!("CARGO_BIN_EXE_midge")).with_file_name("midge-bench");
    assert!(
        bench_bin.exists(),
        "{} is built by `cargo test --workspace`",
        bench_bin.display()
    );
    let Some(project) = new_project("midge-part") else {
        return;
    };
    let bench = format!("{}-bench", project.image);
    let (out, timed_out) = output_within(
        Command::new("bash")
            .arg(repo().join("deploy").join("local-image.sh"))
            .arg(&bench_bin)
            .arg(&bench),
        DOCKER_LIMIT,
    );
    assert!(
        out.status.success() && !timed_out,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    project.run(&["up", "-d"]);
    let admin: Vec<String> = (1..=3)
        .map(|n| project.published(&format!("midge{n}"), 8888))
        .collect();
    wait_for_cluster(&project, &admin, &[1, 2, 3]);
    let mqtt1 = project.published("midge1", 1883);
    let node3 = container(&project, "midge3");
    let network = format!("{}_cluster", project.name);

    run_docker(&["network", "disconnect", &network, &node3]);
    // The minority refuses a retained QoS 1 publish: no PUBACK, DISCONNECT 0x89.
    let refused = bench_in(
        &bench,
        &node3,
        &[
            "pub",
            "-c",
            "1",
            "-q",
            "1",
            "-r",
            "-t",
            "part/r",
            "--count",
            "1",
            "--duration",
            "4",
        ],
    );
    assert_eq!(refused["messages"]["acked"], 0, "{refused}");
    assert!(
        refused["errors"].to_string().contains("ServerBusy"),
        "{refused}"
    );
    // ... and keeps serving QoS 0 among its own clients.
    let local = bench_in(
        &bench,
        &node3,
        &[
            "pubsub",
            "--pubs",
            "1",
            "--subs",
            "1",
            "-q",
            "0",
            "--count",
            "20",
            "--duration",
            "4",
        ],
    );
    assert_eq!(local["messages"]["received"], 20, "{local}");
    // The majority keeps full service.
    publish_retained(&project, &mqtt1, "part/r", "from the majority");

    run_docker(&["network", "connect", "--alias", "midge3", &network, &node3]);
    let mqtt3 = project.published("midge3", 1883);
    expect_retained(&project, &mqtt3, "part/r", "from the majority");
    let _ = output_within(
        Command::new("docker").args(["image", "rm", "-f", &bench]),
        Duration::from_secs(60),
    );
}

/// Runs a docker command that must succeed.
fn run_docker(args: &[&str]) {
    let (out, timed_out) = output_within(Command::new("docker").args(args), DOCKER_LIMIT);
    assert!(
        out.status.success() && !timed_out,
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Three `midge` processes forming one cluster on 127.0.0.1 (every port ephemeral): joining
//! through seeds, the admin API's view, retained messages shared by every node, failover after
//! `kill -9` of the leader, and removing a node with `midge ctl cluster leave`.

use crate::harness::v4::{self, QoS};
use crate::harness::{next_matching, Midge, MidgeCluster, WAIT};
use std::process::Command;
use std::time::Duration;

/// Publishes a retained QoS 1 message on `node` and waits for its PUBACK (sent only once the
/// cluster committed it).
async fn publish_retained(node: &Midge, client_id: &str, topic: &str, payload: &str) {
    let (client, mut inbox) = v4::connect(node, client_id).await;
    client
        .publish(topic, QoS::AtLeastOnce, true, payload.as_bytes().to_vec())
        .await
        .expect("publish");
    next_matching(&mut inbox, |p| match p {
        v4::Packet::PubAck(_) => Some(()),
        _ => None,
    })
    .await
    .expect("PUBACK for the retained publish");
    let _ = client.disconnect().await;
}

/// Subscribes on `node` as a new client until the retained message of `topic` arrives with
/// `payload` (the node applies what the leader committed a moment after the PUBACK).
async fn expect_retained(node: &Midge, client_id: &str, topic: &str, payload: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (client, mut inbox) = v4::connect(node, &format!("{client_id}-{attempt}")).await;
        v4::subscribe(&client, &mut inbox, topic, QoS::AtLeastOnce).await;
        let got = tokio::time::timeout(Duration::from_millis(500), v4::publish(&mut inbox)).await;
        let _ = client.disconnect().await;
        if let Ok(p) = got {
            assert!(p.retain, "a retained message is delivered with RETAIN set");
            assert_eq!(p.topic, topic);
            assert_eq!(&p.payload[..], payload.as_bytes());
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retained message on {topic} at this node; log:\n{}",
            node.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_join_through_seeds_and_agree_on_a_leader() {
    let cluster = MidgeCluster::start(3);
    let leader = cluster.agreed_leader();
    for id in 1..=3 {
        let view = cluster.wait_for(id, "three voters", |v| v.voters() == [1, 2, 3]);
        assert_eq!(view.node_id, id);
        assert_eq!(view.leader, Some(leader));
        for member in &view.members {
            let node = cluster.node(member.node_id);
            assert_eq!(member.cluster_addr, node.cluster_addr().to_string());
            assert_eq!(member.mqtt_addr, node.addr().to_string());
        }
    }
    // `midge ctl` shows the same view.
    let out = Command::new(env!("CARGO_BIN_EXE_midge"))
        .args(["ctl", "--admin"])
        .arg(format!("http://{}", cluster.node(2).admin_addr()))
        .args(["cluster", "status"])
        .output()
        .expect("run midge ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON status");
    assert_eq!(status["leader"], leader);
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
    // And `$SYS/cluster/...`, retained, to an MQTT client of node 2.
    let (client, mut inbox) = v4::connect(cluster.node(2), "sys-cluster").await;
    v4::subscribe(&client, &mut inbox, "$SYS/cluster/#", QoS::AtMostOnce).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let (mut nodes, mut seen_leader) = (String::new(), String::new());
    while nodes != "3" || seen_leader != leader.to_string() {
        let p = tokio::time::timeout_at(deadline, v4::publish(&mut inbox))
            .await
            .unwrap_or_else(|_| panic!("$SYS/cluster: nodes {nodes:?}, leader {seen_leader:?}"));
        let value = String::from_utf8_lossy(&p.payload).into_owned();
        match p.topic.as_str() {
            "$SYS/cluster/nodes" => nodes = value,
            "$SYS/cluster/leader" => seen_leader = value,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_message_set_on_node_1_reaches_a_new_subscriber_on_node_3() {
    let cluster = MidgeCluster::start(3);
    cluster.agreed_leader();
    publish_retained(cluster.node(1), "pub-1", "cluster/retained", "from node 1").await;
    expect_retained(cluster.node(3), "sub-3", "cluster/retained", "from node 1").await;
    // Published on a follower (forwarded to the leader), cleared everywhere.
    let follower = (1..=3).find(|id| Some(*id) != cluster.view(1).and_then(|v| v.leader));
    let follower = follower.expect("a follower");
    publish_retained(
        cluster.node(follower),
        "pub-f",
        "cluster/other",
        "from a follower",
    )
    .await;
    for id in 1..=3 {
        expect_retained(
            cluster.node(id),
            "sub-all",
            "cluster/other",
            "from a follower",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_of_the_leader_the_survivors_elect_one_and_keep_retained_state() {
    let mut cluster = MidgeCluster::start(3);
    cluster.wait_for(1, "three voters", |v| v.voters().len() == 3);
    let old = cluster.agreed_leader();
    cluster.kill(old);
    let new = cluster.agreed_leader();
    assert_ne!(new, old);
    let survivors = cluster.alive();
    let (a, b) = (survivors[0], survivors[1]);
    publish_retained(
        cluster.node(a),
        "pub-a",
        "failover/retained",
        "after failover",
    )
    .await;
    expect_retained(
        cluster.node(b),
        "sub-b",
        "failover/retained",
        "after failover",
    )
    .await;
    expect_retained(
        cluster.node(a),
        "sub-a",
        "failover/retained",
        "after failover",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_cluster_leave_removes_a_node_from_the_membership() {
    let mut cluster = MidgeCluster::start(3);
    cluster.wait_for(1, "three voters", |v| v.voters().len() == 3);
    cluster.agreed_leader();
    // A dead node is removed the same way as a live one.
    cluster.kill(3);
    cluster.ctl_leave(2, 3);
    for id in [1, 2] {
        let view = cluster.wait_for(id, "node 3 gone", |v| {
            v.members.iter().all(|m| m.node_id != 3)
        });
        assert_eq!(view.voters(), [1, 2]);
    }
    // Two voters still commit.
    publish_retained(cluster.node(1), "pub-1", "after/leave", "two voters").await;
    expect_retained(cluster.node(2), "sub-2", "after/leave", "two voters").await;
}

// `/readyz` follows the cluster: every member of a healthy cluster answers 200; a node that
// lost its leader and the quorum to elect another answers 503 and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_on_a_node_left_without_a_leader() {
    let mut cluster = MidgeCluster::start(3);
    cluster.wait_for(1, "three voters", |v| v.voters().len() == 3);
    let leader = cluster.agreed_leader();
    let readyz = |addr| crate::metrics::get(addr, "/readyz");
    for id in 1..=3 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (status, body) = readyz(cluster.node(id).admin_addr()).await;
            if status == 200 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {id} never ready: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    cluster.kill(leader);
    cluster.kill(followers[0]);
    let survivor = cluster.node(followers[1]).admin_addr();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = readyz(survivor).await;
        if status == 503 {
            assert!(body.contains("no Raft leader"), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {} still ready without a quorum: {status} {body}",
            followers[1]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// A new node whose seeds do not answer waits to join; SIGTERM ends that wait (a Kubernetes pod
// being deleted mid-join must not hang until it is killed): the process exits 0 promptly.
#[test]
fn sigterm_ends_a_node_still_waiting_to_join() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_midge"))
        .args(["-p", "0", "--bind", "127.0.0.1", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("MIDGE__ADMIN__PORT", "0")
        .env("MIDGE__CLUSTER__BIND", "127.0.0.1:0")
        .env("MIDGE__CLUSTER__NODE_ID", "2")
        // Nothing listens on port 1: the seed never answers.
        .env("MIDGE__CLUSTER__SEEDS", "127.0.0.1:1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn midge");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + WAIT;
    let mut log = String::new();
    while !log.contains("joining the cluster through its seeds") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(_) => {
                let _ = child.kill();
                panic!("never started joining; log:\n{log}");
            }
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert_eq!(status.code(), Some(0), "{log}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 5 s after SIGTERM; log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

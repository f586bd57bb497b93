//! Three `ClusterNode`s on `MemStore`s talking gRPC over 127.0.0.1: joining through a seed,
//! proposals forwarded from a follower, other nodes' retained changes reported, a late joiner
//! brought up to date by a streamed snapshot, and leaving.

use super::fixtures::{config, message};
use crate::{ClusterNode, NodeInfo, WallClock};
use midge_core::DurableOp;
use midge_store::MemStore;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;

struct Node {
    node: ClusterNode,
    addr: String,
    _dir: TempDir,
}

async fn start(id: u64, seeds: &[&str], tweak: impl FnOnce(&mut crate::ClusterConfig)) -> Node {
    let dir = TempDir::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut cfg = config(dir.path());
    cfg.node_id = id;
    cfg.node = NodeInfo {
        raft_addr: addr.clone(),
        mqtt_addr: format!("mqtt-{id}"),
    };
    cfg.seeds = seeds.iter().map(|s| s.to_string()).collect();
    cfg.commit_timeout = Duration::from_secs(5);
    tweak(&mut cfg);
    let store = Arc::new(MemStore::new());
    let node = ClusterNode::start_serving(cfg, store.clone(), store, Some(listener))
        .await
        .unwrap();
    Node {
        node,
        addr,
        _dir: dir,
    }
}

fn retained(topic: &str, clock: &WallClock) -> DurableOp {
    DurableOp::RetainedSet {
        topic: Arc::from(topic),
        message: message(topic, "p", clock, None),
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_forward_replicate_snapshot_and_leave() {
    // Small snapshot interval: the third node joins after the log was purged behind one.
    let small = |c: &mut crate::ClusterConfig| {
        c.snapshot_logs = 5;
        c.keep_logs_after_snapshot = 0;
    };
    let mut n1 = start(1, &[], small).await;
    let mut n2 = start(2, &[&n1.addr], small).await;
    let status = n1.node.control().status();
    assert_eq!(status.voters(), vec![1, 2], "{status:?}");
    assert_eq!(status.leader, Some(1));

    // A proposal on the follower goes to the leader; the leader's broker learns about it.
    let clock = WallClock::now();
    let mut from_others_1 = n1.node.take_remote_commands().unwrap();
    n2.node
        .proposer()
        .propose(vec![retained("from/2", &clock)], clock)
        .await
        .unwrap();
    let ops = tokio::time::timeout(Duration::from_secs(5), from_others_1.next(WallClock::now))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        &ops[..],
        [crate::Remote::Retained(DurableOp::RetainedSet { topic, .. })] if &**topic == "from/2"
    ));

    // Enough entries on the leader for a snapshot and a purge.
    let mut from_others_2 = n2.node.take_remote_commands().unwrap();
    for i in 0..20 {
        let topic = format!("from/1/{i}");
        n1.node
            .proposer()
            .propose(vec![retained(&topic, &clock)], clock)
            .await
            .unwrap();
    }
    let mut seen = 0;
    while seen < 20 {
        let ops = tokio::time::timeout(Duration::from_secs(5), from_others_2.next(WallClock::now))
            .await
            .unwrap()
            .unwrap();
        seen += ops.len();
    }
    assert_eq!(seen, 20, "node 2 never reports its own proposal");
    wait_until("a snapshot on node 1", || {
        n1.node.metrics().snapshot_index.is_some()
    })
    .await;
    wait_until("a purged log on node 1", || {
        n1.node.metrics().purged_index.is_some()
    })
    .await;

    // Node 3 can only be caught up by the snapshot, streamed over gRPC.
    let n3 = start(3, &[&n2.addr], small).await;
    let status = n3.node.control().status();
    assert_eq!(status.voters(), vec![1, 2, 3], "{status:?}");
    wait_until("node 3 applied the snapshot", || {
        n3.node.metrics().last_applied >= n1.node.metrics().snapshot_index
    })
    .await;
    let restored = n3.node.restored_state(&WallClock::now()).unwrap();
    assert_eq!(restored.retained.len(), 21);

    // Node 3 leaves (asked through node 2, carried out by the leader).
    n2.node.control().leave(3).await.unwrap();
    wait_until("node 3 gone", || {
        n1.node
            .control()
            .status()
            .members
            .iter()
            .all(|m| m.node_id != 3)
    })
    .await;
    n3.node.shutdown().await.unwrap();
    n2.node.shutdown().await.unwrap();
    n1.node.shutdown().await.unwrap();
    drop(from_others_1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_without_a_leader_fails_proposals_as_transient() {
    let n1 = start(1, &[], |_| {}).await;
    let n2 = start(2, &[&n1.addr], |c| {
        c.commit_timeout = Duration::from_secs(1)
    })
    .await;
    n1.node.shutdown().await.unwrap();
    let clock = WallClock::now();
    let err = n2
        .node
        .proposer()
        .propose(vec![retained("x", &clock)], clock)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        err.reason_code(),
        midge_codec::ReasonCode::ServerUnavailable
    );
    n2.node.shutdown().await.unwrap();
}

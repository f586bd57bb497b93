//! `ClusterNode` on `RocksStore`: restarts on the same directory.

use super::fixtures::{config, every_kind, message, normalized};
use crate::{ClusterConfig, ClusterNode, WallClock};
use midge_core::DurableOp;
use midge_store::{FsyncPolicy, LogStore, RocksStore};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

async fn start(cfg: &ClusterConfig) -> ClusterNode {
    let store = Arc::new(RocksStore::open(&cfg.store_dir(), FsyncPolicy::Always).unwrap());
    ClusterNode::start(cfg.clone(), store.clone(), store)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_the_same_state() {
    let dir = TempDir::new().unwrap();
    let cfg = config(dir.path());
    let clock = WallClock::now();
    let (proposals, expected) = every_kind(&clock);
    let node = start(&cfg).await;
    let proposer = node.proposer();
    for ops in proposals {
        proposer.propose(ops, clock).await.unwrap();
    }
    let before = node.restored_state(&clock).unwrap();
    assert_eq!(normalized(before.clone()), normalized(expected));
    node.shutdown().await.unwrap();

    let node = start(&cfg).await;
    assert_eq!(node.restored_state(&clock).unwrap(), before);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_100k_retained_messages_survives_restart() {
    const COUNT: usize = 100_000;
    const PER_PROPOSAL: usize = 1_000;
    let dir = TempDir::new().unwrap();
    let mut cfg = config(dir.path());
    cfg.snapshot_logs = 1_000_000;
    cfg.keep_logs_after_snapshot = 0;
    let clock = WallClock::now();
    let node = start(&cfg).await;
    let proposer = node.proposer();
    let topic = |i: usize| format!("sensors/{}/{i}", i % 97);
    let pending: Vec<_> = (0..COUNT / PER_PROPOSAL)
        .map(|chunk| {
            let ops = (chunk * PER_PROPOSAL..(chunk + 1) * PER_PROPOSAL)
                .map(|i| DurableOp::RetainedSet {
                    topic: Arc::from(topic(i).as_str()),
                    message: message(&topic(i), &format!("value {i}"), &clock, Some(3_600_000)),
                })
                .collect();
            tokio::spawn(proposer.propose(ops, clock))
        })
        .collect();
    for p in pending {
        p.await.unwrap().unwrap();
    }
    let applied = node.metrics().last_applied.unwrap();
    node.raft().trigger().snapshot().await.unwrap();
    let wait = node.raft().wait(Some(Duration::from_secs(120)));
    let m = wait
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= applied) && m.purged == m.snapshot,
            "snapshot built and log purged",
        )
        .await
        .unwrap();
    let purged = m.purged.unwrap().index;
    node.shutdown().await.unwrap();

    let store = Arc::new(RocksStore::open(&cfg.store_dir(), FsyncPolicy::Always).unwrap());
    assert!(
        store.range(0, purged + 1).unwrap().is_empty(),
        "log not purged"
    );
    let node = ClusterNode::start(cfg.clone(), store.clone(), store)
        .await
        .unwrap();
    assert_eq!(node.metrics().snapshot_index, Some(purged));
    let restored = node.restored_state(&clock).unwrap();
    assert_eq!(restored.retained.len(), COUNT);
    for i in [0, 4_242, COUNT - 1] {
        let t = topic(i);
        let (_, m) = restored.retained.iter().find(|(k, _)| **k == *t).unwrap();
        assert_eq!(
            *m,
            message(&t, &format!("value {i}"), &clock, Some(3_600_000))
        );
    }
    node.shutdown().await.unwrap();
}

//! `ClusterNode` on `MemStore` (shared through an `Arc`, so a "restart" reuses its contents).

use super::fixtures::{config, every_kind, message, normalized};
use crate::{restore_state, ClusterError, ClusterNode, WallClock};
use midge_core::DurableOp;
use midge_store::{LogStore, MemStore, StateStore, StateWrite};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

async fn start(dir: &TempDir, store: &Arc<MemStore>) -> ClusterNode {
    ClusterNode::start(config(dir.path()), store.clone(), store.clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposes_every_kind_and_restores_it() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(MemStore::new());
    let node = start(&dir, &store).await;
    let clock = WallClock::now();
    let (proposals, expected) = every_kind(&clock);
    let proposer = node.proposer();
    for ops in proposals {
        proposer.propose(ops, clock).await.unwrap();
    }
    let restored = node.restored_state(&clock).unwrap();
    assert_eq!(normalized(restored), normalized(expected));

    let m = node.metrics();
    assert!(m.is_leader && m.leader == Some(1) && m.term >= 1, "{m:?}");
    assert_eq!(m.voters, vec![1]);
    assert_eq!(m.proposals, 7);
    assert!(
        m.commit_index.is_some() && m.commit_index == m.last_applied,
        "{m:?}"
    );
    assert_eq!(m.apply_lag(), 0);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_are_batched() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(MemStore::new());
    let mut cfg = config(dir.path());
    cfg.max_inflight_batches = 2;
    cfg.max_batch_commands = 256;
    let node = ClusterNode::start(cfg, store.clone(), store.clone())
        .await
        .unwrap();
    let clock = WallClock::now();
    let proposer = node.proposer();
    let tasks: Vec<_> = (0..2_000)
        .map(|i| {
            let topic = format!("t/{i}");
            let op = DurableOp::RetainedSet {
                topic: Arc::from(topic.as_str()),
                message: message(&topic, "p", &clock, None),
            };
            tokio::spawn(proposer.propose(vec![op], clock))
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let m = node.metrics();
    assert_eq!(m.proposals, 2_000);
    assert_eq!(m.commands, 2_000);
    assert!(
        m.batches < 2_000 / 4,
        "group commit merged too little: {m:?}"
    );
    let restored = node.restored_state(&clock).unwrap();
    assert_eq!(restored.retained.len(), 2_000);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_respect_the_command_bound_and_keep_proposals_whole() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(MemStore::new());
    let mut cfg = config(dir.path());
    cfg.max_batch_commands = 4;
    cfg.max_inflight_batches = 1;
    let node = ClusterNode::start(cfg, store.clone(), store.clone())
        .await
        .unwrap();
    let clock = WallClock::now();
    let proposer = node.proposer();
    let ops = |n: usize, tag: usize| -> Vec<DurableOp> {
        (0..n)
            .map(|i| {
                let topic = format!("b/{tag}/{i}");
                DurableOp::RetainedSet {
                    topic: Arc::from(topic.as_str()),
                    message: message(&topic, "p", &clock, None),
                }
            })
            .collect()
    };
    let mut tasks: Vec<_> = (0..50)
        .map(|tag| tokio::spawn(proposer.propose(ops(3, tag), clock)))
        .collect();
    // Larger than the bound: it still goes in one entry, alone.
    tasks.push(tokio::spawn(proposer.propose(ops(10, 99), clock)));
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let m = node.metrics();
    assert_eq!((m.proposals, m.commands, m.batches), (51, 160, 51), "{m:?}");
    assert_eq!(node.restored_state(&clock).unwrap().retained.len(), 160);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_and_shutdown_fails_later_proposals() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(MemStore::new());
    let clock = WallClock::now();
    let (proposals, expected) = every_kind(&clock);
    let node = start(&dir, &store).await;
    let proposer = node.proposer();
    for ops in proposals {
        proposer.propose(ops, clock).await.unwrap();
    }
    node.shutdown().await.unwrap();
    let late = DurableOp::RetainedClear {
        topic: Arc::from("r/kept"),
    };
    let err = proposer.propose(vec![late], clock).await.unwrap_err();
    assert!(matches!(err, ClusterError::Shutdown), "{err}");

    let node = start(&dir, &store).await;
    // A sole voter whose committed vote survived leads again at once.
    assert!(node.metrics().is_leader);
    let restored = node.restored_state(&clock).unwrap();
    assert_eq!(normalized(restored), normalized(expected));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_session_expires_from_when_it_went_offline() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(MemStore::new());
    let node = start(&dir, &store).await;
    let t0 = WallClock::now();
    let put = |connected| DurableOp::SessionPut {
        client_id: Arc::from("c"),
        expiry_interval: 100,
        will: None,
        connected,
    };
    let proposer = node.proposer();
    proposer.propose(vec![put(false)], t0).await.unwrap();
    // Rewritten while offline (e.g. its will was published): the countdown keeps running.
    let t5 = WallClock {
        instant: t0.instant + Duration::from_secs(5),
        unix_ms: t0.unix_ms + 5_000,
    };
    proposer.propose(vec![put(false)], t5).await.unwrap();
    let restored = node.restored_state(&t5).unwrap();
    assert_eq!(
        restored.sessions[0].expires_at,
        Some(t0.instant + Duration::from_secs(100))
    );
    // Reconnected and gone again: counts from the new disconnect.
    proposer.propose(vec![put(true)], t5).await.unwrap();
    proposer.propose(vec![put(false)], t5).await.unwrap();
    let restored = node.restored_state(&t5).unwrap();
    assert_eq!(
        restored.sessions[0].expires_at,
        Some(t5.instant + Duration::from_secs(100))
    );
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_by_policy_purge_the_log_and_survive_restart() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(MemStore::new());
    let mut cfg = config(dir.path());
    cfg.snapshot_logs = 10;
    cfg.keep_logs_after_snapshot = 0;
    let node = ClusterNode::start(cfg.clone(), store.clone(), store.clone())
        .await
        .unwrap();
    let clock = WallClock::now();
    let proposer = node.proposer();
    for i in 0..60 {
        let topic = format!("s/{i}");
        let op = DurableOp::RetainedSet {
            topic: Arc::from(topic.as_str()),
            message: message(&topic, "p", &clock, Some(60_000)),
        };
        proposer.propose(vec![op], clock).await.unwrap();
    }
    let m = node
        .raft()
        .wait(Some(Duration::from_secs(60)))
        .metrics(|m| m.purged.is_some_and(|p| p.index >= 40), "purged")
        .await
        .unwrap();
    let purged = m.purged.unwrap().index;
    assert!(store.range(0, purged + 1).unwrap().is_empty());
    node.shutdown().await.unwrap();
    // Only the newest snapshot is kept (checked once no build is running).
    let files: Vec<String> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let count = |suffix: &str| files.iter().filter(|f| f.ends_with(suffix)).count();
    assert_eq!((count(".snap"), count(".meta")), (1, 1), "{files:?}");

    let node = ClusterNode::start(cfg, store.clone(), store.clone())
        .await
        .unwrap();
    let restored = node.restored_state(&clock).unwrap();
    assert_eq!(restored.retained.len(), 60);
    node.shutdown().await.unwrap();
}

#[test]
fn restore_names_the_table_and_key_of_a_corrupt_row() {
    let store = MemStore::new();
    store
        .apply(&[StateWrite::RetainedPut {
            topic: "bad/topic".into(),
            value: vec![0xff, 0xff, 0xff],
        }])
        .unwrap();
    let err = restore_state(&store, &WallClock::now(), crate::Sessions::OwnedBy(1)).unwrap_err();
    match &err {
        ClusterError::Corrupt { table, key, .. } => {
            assert_eq!((*table, key.as_str()), ("retained", "bad/topic"));
        }
        other => panic!("unexpected {other}"),
    }
    let store = MemStore::new();
    store
        .apply(&[
            StateWrite::SessionPut {
                client_id: "c".into(),
                value: Vec::new(),
            },
            StateWrite::MessagePut {
                client_id: "c".into(),
                seq: 42,
                // A SessionMessage whose state is out of range.
                value: vec![0x10, 0x07],
            },
        ])
        .unwrap();
    let err = restore_state(&store, &WallClock::now(), crate::Sessions::OwnedBy(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("messages") && err.contains("c/42"), "{err}");
}

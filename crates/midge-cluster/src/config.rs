//! Configuration of a cluster node.

use crate::{ClusterError, NodeInfo};
use midge_store::FsyncPolicy;
use std::path::PathBuf;
use std::time::Duration;

/// How a node runs its Raft group. Validated once by [`ClusterConfig::validate`] (called by
/// `ClusterNode::start`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's id in the group (stable across restarts, unique in the cluster).
    pub node_id: u64,
    /// This node's addresses, recorded in the membership.
    pub node: NodeInfo,
    /// The node's data directory: snapshots live in `<data_dir>/snapshots/`, and the caller
    /// opens its store in [`ClusterConfig::store_dir`].
    pub data_dir: PathBuf,
    /// When log appends reach the disk (the caller opens the log store with it; kept here so
    /// one struct describes the node).
    pub fsync: FsyncPolicy,
    /// Build a snapshot (and purge the log behind it) every this many applied entries.
    pub snapshot_logs: u64,
    /// Log entries kept behind the latest snapshot (lets a lagging follower catch up from the
    /// log instead of a snapshot).
    pub keep_logs_after_snapshot: u64,
    /// Most commands merged into one Raft entry by the proposer (a single larger proposal
    /// still goes whole).
    pub max_batch_commands: usize,
    /// Raft entries the proposer keeps in flight at once (pipelining).
    pub max_inflight_batches: usize,
    /// Proposals queued towards the batching task before `propose` waits (back-pressure).
    pub proposal_queue: usize,
    /// How long a proposal waits to be committed before failing with
    /// `ClusterError::CommitTimeout` (no quorum).
    pub commit_timeout: Duration,
    /// Leader heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Election timeout range: a follower that hears nothing for a random time in it stands.
    pub election_timeout: (Duration, Duration),
    /// Peers' cluster addresses (`host:port`; a name may resolve to several). A fresh node
    /// joins through them unless it [bootstraps](ClusterConfig::bootstraps).
    pub seeds: Vec<String>,
    /// Most voters; nodes joining beyond it stay learners.
    pub max_voters: usize,
    /// A broker link sends forwarded publishes to its peer at most once per this interval,
    /// unless a batch is full: gathering them cuts the CPU of forwarding at moderate rates and
    /// adds up to this (rounded up to the timer's millisecond) to cross-node latency. Zero:
    /// each batch goes as soon as it can.
    pub forward_batch_interval: Duration,
}

impl ClusterConfig {
    /// A single-node configuration with the defaults.
    pub fn new(node_id: u64, data_dir: impl Into<PathBuf>) -> ClusterConfig {
        ClusterConfig {
            node_id,
            node: NodeInfo::default(),
            data_dir: data_dir.into(),
            fsync: FsyncPolicy::Always,
            snapshot_logs: 10_000,
            keep_logs_after_snapshot: 1_000,
            max_batch_commands: 4_096,
            max_inflight_batches: 4,
            proposal_queue: 65_536,
            commit_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            seeds: Vec::new(),
            max_voters: 3,
            forward_batch_interval: Duration::from_millis(2),
        }
    }

    /// Whether a fresh node (empty log) starts a one-member group instead of joining: it has
    /// no seeds, or the first seed is its own advertised address, so every node of a cluster
    /// can be given the same list and exactly one of them starts it.
    pub fn bootstraps(&self) -> bool {
        self.seeds
            .first()
            .is_none_or(|first| *first == self.node.raft_addr)
    }

    /// The seeds to join through: every one but this node's own address.
    pub fn peer_seeds(&self) -> Vec<String> {
        self.seeds
            .iter()
            .filter(|seed| **seed != self.node.raft_addr)
            .cloned()
            .collect()
    }

    /// Where the caller should open the RocksDB store (`<data_dir>/raft`), beside the
    /// snapshot directory.
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("raft")
    }

    /// Checks the values; every error names the field.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |field: &str, why: &str| Err(ClusterError::Config(format!("{field}: {why}")));
        if self.snapshot_logs == 0 {
            return bad("snapshot_logs", "must be at least 1");
        }
        if self.max_batch_commands == 0 {
            return bad("max_batch_commands", "must be at least 1");
        }
        if self.max_inflight_batches == 0 {
            return bad("max_inflight_batches", "must be at least 1");
        }
        if self.proposal_queue == 0 {
            return bad("proposal_queue", "must be at least 1");
        }
        if self.commit_timeout.is_zero() {
            return bad("commit_timeout", "must be positive");
        }
        if self.max_voters == 0 {
            return bad("max_voters", "must be at least 1");
        }
        if self.heartbeat_interval.is_zero() {
            return bad("heartbeat_interval", "must be positive");
        }
        if self.forward_batch_interval > Duration::from_secs(1) {
            return bad("forward_batch_interval", "must be at most 1 s");
        }
        let (min, max) = self.election_timeout;
        if min <= self.heartbeat_interval || max <= min {
            return bad("election_timeout", "needs heartbeat_interval < min < max");
        }
        Ok(())
    }

    /// The openraft configuration this maps to.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, ClusterError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let config = openraft::Config {
            cluster_name: "midge".to_string(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout.0),
            election_timeout_max: ms(self.election_timeout.1),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs),
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            // Purging only ever follows a snapshot, so it is already batched by the policy.
            purge_batch_size: 1,
            ..openraft::Config::default()
        };
        config
            .validate()
            .map_err(|e| ClusterError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_map_to_openraft() {
        let config = ClusterConfig::new(1, "/tmp/x");
        config.validate().unwrap();
        let raft = config.raft_config().unwrap();
        assert_eq!(raft.max_in_snapshot_log_to_keep, 1_000);
        let mut bad = config.clone();
        bad.election_timeout = (Duration::from_millis(50), Duration::from_millis(60));
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("election_timeout"), "{err}");
    }

    #[test]
    fn the_first_seed_naming_this_node_bootstraps_and_the_rest_join() {
        let mut c = ClusterConfig::new(1, "/tmp/x");
        assert!(c.bootstraps(), "no seeds");
        c.node.raft_addr = "midge-0.midge:7946".into();
        c.seeds = vec!["midge-0.midge:7946".into(), "midge-1.midge:7946".into()];
        assert!(c.bootstraps());
        assert_eq!(c.peer_seeds(), ["midge-1.midge:7946"]);
        c.node.raft_addr = "midge-1.midge:7946".into();
        assert!(!c.bootstraps());
        assert_eq!(c.peer_seeds(), ["midge-0.midge:7946"]);
    }
}

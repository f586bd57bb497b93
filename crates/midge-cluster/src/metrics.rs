//! Numbers a node exposes about its Raft group (for Prometheus and readiness checks).

use crate::NodeInfo;
use openraft::{RaftMetrics, ServerState};
use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time view of a node's Raft state and proposal counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMetrics {
    /// This node's id.
    pub node_id: u64,
    /// Current Raft term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// True while this node is the leader.
    pub is_leader: bool,
    /// Highest log index known committed.
    pub commit_index: Option<u64>,
    /// Highest log index applied to the state machine.
    pub last_applied: Option<u64>,
    /// Highest log index in the log.
    pub last_log_index: Option<u64>,
    /// Last log index covered by the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Highest purged log index.
    pub purged_index: Option<u64>,
    /// Voter ids of the current membership.
    pub voters: Vec<u64>,
    /// Ids of every member, voters and learners.
    pub members: Vec<u64>,
    /// `propose` calls accepted by the batching task.
    pub proposals: u64,
    /// Commands carried by those proposals.
    pub commands: u64,
    /// Raft entries written for them (`client_write` calls): proposals / batches is the
    /// group-commit factor.
    pub batches: u64,
}

impl ClusterMetrics {
    /// Committed entries not yet applied.
    pub fn apply_lag(&self) -> u64 {
        match (self.commit_index, self.last_applied) {
            (Some(c), Some(a)) => c.saturating_sub(a),
            (Some(c), None) => c + 1,
            _ => 0,
        }
    }

    pub(crate) fn new(raft: &RaftMetrics<u64, NodeInfo>, counters: &SharedCounters) -> Self {
        ClusterMetrics {
            node_id: raft.id,
            term: raft.current_term,
            leader: raft.current_leader,
            is_leader: raft.state == ServerState::Leader,
            commit_index: counters.committed(),
            last_applied: raft.last_applied.map(|id| id.index),
            last_log_index: raft.last_log_index,
            snapshot_index: raft.snapshot.map(|id| id.index),
            purged_index: raft.purged.map(|id| id.index),
            voters: raft.membership_config.membership().voter_ids().collect(),
            members: raft
                .membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect(),
            proposals: counters.proposals.load(Ordering::Relaxed),
            commands: counters.commands.load(Ordering::Relaxed),
            batches: counters.batches.load(Ordering::Relaxed),
        }
    }
}

/// Reads a node's [`ClusterMetrics`] without borrowing the node: a metrics exporter keeps one
/// while the node itself is owned by the server's storage. It holds no store handles, so it
/// never delays [`crate::ClusterNode::shutdown`]; after shutdown it reports the last values.
#[derive(Clone)]
pub struct ClusterMetricsSource {
    pub(crate) raft: tokio::sync::watch::Receiver<RaftMetrics<u64, NodeInfo>>,
    pub(crate) counters: std::sync::Arc<SharedCounters>,
}

impl std::fmt::Debug for ClusterMetricsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterMetricsSource")
            .finish_non_exhaustive()
    }
}

impl ClusterMetricsSource {
    /// The node's metrics now.
    pub fn metrics(&self) -> ClusterMetrics {
        let raft = self.raft.borrow().clone();
        ClusterMetrics::new(&raft, &self.counters)
    }
}

/// Counters shared by the log storage and the proposer.
#[derive(Debug)]
pub(crate) struct SharedCounters {
    /// Committed index + 1 (0: nothing committed), as openraft has no commit-index metric.
    committed: AtomicU64,
    pub(crate) proposals: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) batches: AtomicU64,
}

impl Default for SharedCounters {
    fn default() -> Self {
        SharedCounters {
            committed: AtomicU64::new(0),
            proposals: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }
}

impl SharedCounters {
    pub(crate) fn set_committed(&self, index: Option<u64>) {
        let v = index.map_or(0, |i| i.saturating_add(1));
        self.committed.fetch_max(v, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self) -> Option<u64> {
        self.committed.load(Ordering::Relaxed).checked_sub(1)
    }
}

//! What `/readyz` checks: the listeners accept and the node has caught up with its group.

use midge_cluster::ClusterMetricsSource;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this node should receive traffic now.
#[derive(Debug)]
pub(crate) struct Readiness {
    accepting: AtomicBool,
    /// `None` with storage disabled: then there is no group to join.
    cluster: Option<ClusterMetricsSource>,
    node_id: u64,
}

impl Readiness {
    /// Not ready until [`Readiness::set_accepting`] says the listeners run.
    pub(crate) fn new(cluster: Option<ClusterMetricsSource>, node_id: u64) -> Readiness {
        Readiness {
            accepting: AtomicBool::new(false),
            cluster,
            node_id,
        }
    }

    /// The listeners started (`true`) or stopped accepting at shutdown (`false`).
    pub(crate) fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::Release);
    }

    /// `Ok` when ready, else every reason it is not.
    pub(crate) fn check(&self) -> Result<(), Vec<String>> {
        let mut why = Vec::new();
        if !self.accepting.load(Ordering::Acquire) {
            why.push("listeners are not accepting connections".to_string());
        }
        if let Some(cluster) = &self.cluster {
            let m = cluster.metrics();
            if !m.members.contains(&self.node_id) {
                why.push(format!(
                    "node {} is not a member of the Raft group (members {:?})",
                    self.node_id, m.members
                ));
            }
            if m.leader.is_none() {
                why.push("no Raft leader is known".to_string());
            }
            let lag = m.apply_lag();
            if lag > 0 {
                why.push(format!("{lag} committed Raft entries are not applied yet"));
            }
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_accepting_and_after_stopping() {
        let ready = Readiness::new(None, 1);
        assert_eq!(ready.check().expect_err("not yet").len(), 1);
        ready.set_accepting(true);
        assert_eq!(ready.check(), Ok(()));
        ready.set_accepting(false);
        assert!(ready.check().is_err());
    }
}

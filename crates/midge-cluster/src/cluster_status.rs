//! What a node knows about its cluster, for the admin API and `midge ctl cluster status`.

use crate::NodeInfo;
use openraft::RaftMetrics;

/// One member of the Raft group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// Its node id.
    pub node_id: u64,
    /// True for a voter, false for a learner.
    pub voter: bool,
    /// Its addresses.
    pub node: NodeInfo,
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The node answering.
    pub node_id: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Its current term.
    pub term: u64,
    /// The highest log index it applied.
    pub applied_index: Option<u64>,
    /// Every member, voters and learners, by id.
    pub members: Vec<MemberStatus>,
}

impl ClusterStatus {
    pub(crate) fn of(m: &RaftMetrics<u64, NodeInfo>) -> ClusterStatus {
        let membership = m.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| MemberStatus {
                node_id: *id,
                voter: voters.contains(id),
                node: node.clone(),
            })
            .collect();
        ClusterStatus {
            node_id: m.id,
            leader: m.current_leader,
            term: m.current_term,
            applied_index: m.last_applied.map(|id| id.index),
            members,
        }
    }

    /// The voters' ids.
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.node_id)
            .collect()
    }
}

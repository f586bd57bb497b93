//! `openraft::Membership` / `StoredMembership` <-> `pb::Membership` / `pb::StoredMembership`.

use crate::{pb, NodeInfo};
use openraft::{LogId, Membership, StoredMembership};
use std::collections::{BTreeMap, BTreeSet};

impl From<&Membership<u64, NodeInfo>> for pb::Membership {
    fn from(m: &Membership<u64, NodeInfo>) -> pb::Membership {
        pb::Membership {
            configs: m
                .get_joint_config()
                .iter()
                .map(|set| pb::NodeIdSet {
                    ids: set.iter().copied().collect(),
                })
                .collect(),
            nodes: m.nodes().map(|(id, node)| (*id, node.into())).collect(),
        }
    }
}

impl From<pb::Membership> for Membership<u64, NodeInfo> {
    fn from(m: pb::Membership) -> Membership<u64, NodeInfo> {
        let configs: Vec<BTreeSet<u64>> = m
            .configs
            .into_iter()
            .map(|set| set.ids.into_iter().collect())
            .collect();
        let nodes: BTreeMap<u64, NodeInfo> = m
            .nodes
            .into_iter()
            .map(|(id, node)| (id, node.into()))
            .collect();
        Membership::new(configs, nodes)
    }
}

impl From<&StoredMembership<u64, NodeInfo>> for pb::StoredMembership {
    fn from(m: &StoredMembership<u64, NodeInfo>) -> pb::StoredMembership {
        pb::StoredMembership {
            log_id: m.log_id().as_ref().map(pb::LogId::from),
            membership: Some(m.membership().into()),
        }
    }
}

impl From<pb::StoredMembership> for StoredMembership<u64, NodeInfo> {
    fn from(m: pb::StoredMembership) -> StoredMembership<u64, NodeInfo> {
        StoredMembership::new(
            m.log_id.map(LogId::from),
            m.membership.map(Membership::from).unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    #[test]
    fn round_trips_joint_config_with_learners() {
        let node = |n: u64| NodeInfo {
            raft_addr: format!("n{n}:7000"),
            mqtt_addr: format!("n{n}:1883"),
        };
        let nodes: BTreeMap<u64, NodeInfo> = (1..=4).map(|n| (n, node(n))).collect();
        let m = Membership::new(
            vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3])],
            nodes,
        );
        let stored = StoredMembership::new(Some(LogId::new(CommittedLeaderId::new(2, 1), 9)), m);
        let back = StoredMembership::from(pb::StoredMembership::from(&stored));
        assert_eq!(back, stored);
        assert_eq!(back.membership().learner_ids().collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn empty_round_trips() {
        let stored = StoredMembership::<u64, NodeInfo>::default();
        assert_eq!(
            StoredMembership::from(pb::StoredMembership::from(&stored)),
            stored
        );
    }
}

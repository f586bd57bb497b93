//! `openraft::SnapshotMeta` <-> `pb::SnapshotMeta`.

use crate::{pb, NodeInfo};
use openraft::{LogId, SnapshotMeta, StoredMembership};

impl From<&SnapshotMeta<u64, NodeInfo>> for pb::SnapshotMeta {
    fn from(m: &SnapshotMeta<u64, NodeInfo>) -> pb::SnapshotMeta {
        pb::SnapshotMeta {
            last_log_id: m.last_log_id.as_ref().map(pb::LogId::from),
            last_membership: Some((&m.last_membership).into()),
            snapshot_id: m.snapshot_id.clone(),
        }
    }
}

impl From<pb::SnapshotMeta> for SnapshotMeta<u64, NodeInfo> {
    fn from(m: pb::SnapshotMeta) -> SnapshotMeta<u64, NodeInfo> {
        SnapshotMeta {
            last_log_id: m.last_log_id.map(LogId::from),
            last_membership: m
                .last_membership
                .map(StoredMembership::from)
                .unwrap_or_default(),
            snapshot_id: m.snapshot_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Membership};
    use std::collections::BTreeSet;

    #[test]
    fn round_trips() {
        let log_id = LogId::new(CommittedLeaderId::new(4, 1), 77);
        let meta = SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(
                Some(log_id),
                Membership::new(vec![BTreeSet::from([1u64])], ()),
            ),
            snapshot_id: "4-1-77-123".to_string(),
        };
        assert_eq!(SnapshotMeta::from(pb::SnapshotMeta::from(&meta)), meta);
    }
}

//! `openraft::LogId` <-> `pb::LogId`.

use crate::pb;
use openraft::{CommittedLeaderId, LogId};

impl From<&LogId<u64>> for pb::LogId {
    fn from(id: &LogId<u64>) -> pb::LogId {
        pb::LogId {
            term: id.leader_id.term,
            leader_node_id: id.leader_id.node_id,
            index: id.index,
        }
    }
}

impl From<pb::LogId> for LogId<u64> {
    fn from(id: pb::LogId) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(id.term, id.leader_node_id), id.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(term in any::<u64>(), node in any::<u64>(), index in any::<u64>()) {
            let id = LogId::new(CommittedLeaderId::new(term, node), index);
            prop_assert_eq!(LogId::from(pb::LogId::from(&id)), id);
        }
    }
}

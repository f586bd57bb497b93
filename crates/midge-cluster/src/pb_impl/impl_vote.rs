//! `openraft::Vote` <-> `pb::Vote`.

use crate::pb;
use openraft::{LeaderId, Vote};

impl From<&Vote<u64>> for pb::Vote {
    fn from(v: &Vote<u64>) -> pb::Vote {
        pb::Vote {
            term: v.leader_id.term,
            node_id: v.leader_id.node_id,
            committed: v.committed,
        }
    }
}

impl From<pb::Vote> for Vote<u64> {
    fn from(v: pb::Vote) -> Vote<u64> {
        Vote {
            leader_id: LeaderId::new(v.term, v.node_id),
            committed: v.committed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for vote in [Vote::new(3, 7), Vote::new_committed(9, 1), Vote::default()] {
            assert_eq!(Vote::from(pb::Vote::from(&vote)), vote);
        }
    }
}

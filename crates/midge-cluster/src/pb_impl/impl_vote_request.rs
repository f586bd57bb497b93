//! `VoteRequest` / `VoteResponse` <-> `pb::VoteRpc` / `pb::VoteReply`.

use super::FieldError;
use crate::pb;
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{LogId, Vote};

impl From<&VoteRequest<u64>> for pb::VoteRpc {
    fn from(r: &VoteRequest<u64>) -> pb::VoteRpc {
        pb::VoteRpc {
            vote: Some((&r.vote).into()),
            last_log_id: r.last_log_id.as_ref().map(pb::LogId::from),
        }
    }
}

impl TryFrom<pb::VoteRpc> for VoteRequest<u64> {
    type Error = FieldError;

    fn try_from(r: pb::VoteRpc) -> Result<VoteRequest<u64>, FieldError> {
        Ok(VoteRequest {
            vote: Vote::from(r.vote.ok_or(FieldError::missing("VoteRpc.vote"))?),
            last_log_id: r.last_log_id.map(LogId::from),
        })
    }
}

impl From<&VoteResponse<u64>> for pb::VoteReply {
    fn from(r: &VoteResponse<u64>) -> pb::VoteReply {
        pb::VoteReply {
            vote: Some((&r.vote).into()),
            vote_granted: r.vote_granted,
            last_log_id: r.last_log_id.as_ref().map(pb::LogId::from),
        }
    }
}

impl TryFrom<pb::VoteReply> for VoteResponse<u64> {
    type Error = FieldError;

    fn try_from(r: pb::VoteReply) -> Result<VoteResponse<u64>, FieldError> {
        Ok(VoteResponse {
            vote: Vote::from(r.vote.ok_or(FieldError::missing("VoteReply.vote"))?),
            vote_granted: r.vote_granted,
            last_log_id: r.last_log_id.map(LogId::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    #[test]
    fn round_trip() {
        let id = LogId::new(CommittedLeaderId::new(3, 2), 11);
        let request = VoteRequest::new(Vote::new(4, 2), Some(id));
        assert_eq!(
            VoteRequest::try_from(pb::VoteRpc::from(&request)).unwrap(),
            request
        );
        let response = VoteResponse::new(Vote::new(4, 2), None, true);
        assert_eq!(
            VoteResponse::try_from(pb::VoteReply::from(&response)).unwrap(),
            response
        );
        assert!(VoteRequest::try_from(pb::VoteRpc::default()).is_err());
    }
}

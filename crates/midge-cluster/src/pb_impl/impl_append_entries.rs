//! `AppendEntriesRequest` / `AppendEntriesResponse` <-> `pb::AppendEntriesRpc` /
//! `pb::AppendEntriesReply`.

use super::FieldError;
use crate::pb::append_entries_reply::Result as Reply;
use crate::{pb, TypeConfig};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{Entry, LogId, Vote};

impl From<AppendEntriesRequest<TypeConfig>> for pb::AppendEntriesRpc {
    fn from(r: AppendEntriesRequest<TypeConfig>) -> pb::AppendEntriesRpc {
        pb::AppendEntriesRpc {
            vote: Some((&r.vote).into()),
            prev_log_id: r.prev_log_id.as_ref().map(pb::LogId::from),
            entries: r.entries.into_iter().map(pb::LogEntry::from).collect(),
            leader_commit: r.leader_commit.as_ref().map(pb::LogId::from),
        }
    }
}

impl TryFrom<pb::AppendEntriesRpc> for AppendEntriesRequest<TypeConfig> {
    type Error = FieldError;

    fn try_from(r: pb::AppendEntriesRpc) -> Result<AppendEntriesRequest<TypeConfig>, FieldError> {
        let entries = r
            .entries
            .into_iter()
            .map(Entry::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AppendEntriesRequest {
            vote: Vote::from(r.vote.ok_or(FieldError::missing("AppendEntriesRpc.vote"))?),
            prev_log_id: r.prev_log_id.map(LogId::from),
            entries,
            leader_commit: r.leader_commit.map(LogId::from),
        })
    }
}

impl From<AppendEntriesResponse<u64>> for pb::AppendEntriesReply {
    fn from(r: AppendEntriesResponse<u64>) -> pb::AppendEntriesReply {
        let result = match r {
            AppendEntriesResponse::Success => Reply::Success(pb::Blank {}),
            AppendEntriesResponse::PartialSuccess(id) => Reply::PartialSuccess(pb::OptionalLogId {
                log_id: id.as_ref().map(pb::LogId::from),
            }),
            AppendEntriesResponse::Conflict => Reply::Conflict(pb::Blank {}),
            AppendEntriesResponse::HigherVote(v) => Reply::HigherVote((&v).into()),
        };
        pb::AppendEntriesReply {
            result: Some(result),
        }
    }
}

impl TryFrom<pb::AppendEntriesReply> for AppendEntriesResponse<u64> {
    type Error = FieldError;

    fn try_from(r: pb::AppendEntriesReply) -> Result<AppendEntriesResponse<u64>, FieldError> {
        Ok(
            match r
                .result
                .ok_or(FieldError::missing("AppendEntriesReply.result"))?
            {
                Reply::Success(_) => AppendEntriesResponse::Success,
                Reply::PartialSuccess(id) => {
                    AppendEntriesResponse::PartialSuccess(id.log_id.map(LogId::from))
                }
                Reply::Conflict(_) => AppendEntriesResponse::Conflict,
                Reply::HigherVote(v) => AppendEntriesResponse::HigherVote(v.into()),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::command_from_op;
    use crate::pb_impl::strategies::{clock, durable_op};
    use openraft::entry::RaftEntry;
    use openraft::{CommittedLeaderId, EntryPayload};
    use proptest::prelude::*;

    fn wire<T: prost::Message + Default>(m: T) -> T {
        T::decode(m.encode_to_vec().as_slice()).unwrap()
    }

    proptest! {
        #[test]
        fn requests_round_trip(ops in proptest::collection::vec(durable_op(), 0..3), term in 1u64..9) {
            let commands = ops.iter().map(|op| command_from_op(op, &clock())).collect();
            let log_id = |i| LogId::new(CommittedLeaderId::new(term, 2), i);
            let request = AppendEntriesRequest::<TypeConfig> {
                vote: Vote::new_committed(term, 2),
                prev_log_id: Some(log_id(4)),
                entries: vec![
                    Entry::new_blank(log_id(5)),
                    Entry { log_id: log_id(6), payload: EntryPayload::Normal(pb::Request { commands, origin_id: 3 }) },
                ],
                leader_commit: None,
            };
            let back = AppendEntriesRequest::try_from(wire(pb::AppendEntriesRpc::from(request.clone()))).unwrap();
            prop_assert_eq!(back.vote, request.vote);
            prop_assert_eq!(back.prev_log_id, request.prev_log_id);
            prop_assert_eq!(back.leader_commit, request.leader_commit);
            prop_assert_eq!(back.entries.len(), 2);
            match (&back.entries[1].payload, &request.entries[1].payload) {
                (EntryPayload::Normal(a), EntryPayload::Normal(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "payload kind changed"),
            }
        }
    }

    #[test]
    fn every_response_round_trips() {
        let id = LogId::new(CommittedLeaderId::new(2, 1), 7);
        for r in [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(Some(id)),
            AppendEntriesResponse::PartialSuccess(None),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(Vote::new(5, 3)),
        ] {
            let expected = format!("{r:?}");
            let back =
                AppendEntriesResponse::try_from(wire(pb::AppendEntriesReply::from(r))).unwrap();
            assert_eq!(format!("{back:?}"), expected);
        }
        assert!(AppendEntriesResponse::try_from(pb::AppendEntriesReply::default()).is_err());
        assert!(AppendEntriesRequest::try_from(pb::AppendEntriesRpc::default()).is_err());
    }
}

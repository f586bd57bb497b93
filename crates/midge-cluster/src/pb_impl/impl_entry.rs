//! `openraft::Entry` <-> `pb::LogEntry` (the bytes of one Raft log record).

use super::FieldError;
use crate::pb::log_entry::Payload;
use crate::{pb, TypeConfig};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

impl From<Entry<TypeConfig>> for pb::LogEntry {
    fn from(e: Entry<TypeConfig>) -> pb::LogEntry {
        let payload = match e.payload {
            EntryPayload::Blank => Payload::Blank(pb::Blank {}),
            EntryPayload::Normal(request) => Payload::Normal(request),
            EntryPayload::Membership(m) => Payload::Membership((&m).into()),
        };
        pb::LogEntry {
            term: e.log_id.leader_id.term,
            leader_node_id: e.log_id.leader_id.node_id,
            index: e.log_id.index,
            payload: Some(payload),
        }
    }
}

impl TryFrom<pb::LogEntry> for Entry<TypeConfig> {
    type Error = FieldError;

    fn try_from(e: pb::LogEntry) -> Result<Entry<TypeConfig>, FieldError> {
        let payload = match e.payload.ok_or(FieldError::missing("LogEntry.payload"))? {
            Payload::Blank(_) => EntryPayload::Blank,
            Payload::Normal(request) => EntryPayload::Normal(request),
            Payload::Membership(m) => EntryPayload::Membership(m.into()),
        };
        Ok(Entry {
            log_id: LogId::new(CommittedLeaderId::new(e.term, e.leader_node_id), e.index),
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::command_from_op;
    use crate::pb_impl::strategies::{clock, durable_op};
    use openraft::entry::RaftEntry;
    use openraft::Membership;
    use proptest::prelude::*;
    use prost::Message as _;
    use std::collections::BTreeSet;

    fn round_trip(entry: Entry<TypeConfig>) -> Entry<TypeConfig> {
        let bytes = pb::LogEntry::from(entry).encode_to_vec();
        Entry::try_from(pb::LogEntry::decode(bytes.as_slice()).unwrap()).unwrap()
    }

    proptest! {
        #[test]
        fn normal_entries_round_trip(ops in proptest::collection::vec(durable_op(), 0..4), index in any::<u64>()) {
            let commands = ops.iter().map(|op| command_from_op(op, &clock())).collect();
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(3, 2), index),
                payload: EntryPayload::Normal(pb::Request { commands, origin_id: 1 }),
            };
            let back = round_trip(entry.clone());
            prop_assert_eq!(back.log_id, entry.log_id);
            match (back.payload, entry.payload) {
                (EntryPayload::Normal(a), EntryPayload::Normal(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "payload kind changed"),
            }
        }
    }

    #[test]
    fn blank_and_membership_entries_round_trip() {
        let log_id = LogId::new(CommittedLeaderId::new(1, 1), 0);
        let blank = round_trip(Entry::new_blank(log_id));
        assert!(matches!(blank.payload, EntryPayload::Blank));
        assert_eq!(blank.log_id, log_id);
        let m = Membership::new(vec![BTreeSet::from([1u64, 2])], ());
        let back = round_trip(Entry::new_membership(log_id, m.clone()));
        match back.payload {
            EntryPayload::Membership(got) => assert_eq!(got, m),
            _ => panic!("expected a membership entry"),
        }
    }

    #[test]
    fn rejects_an_entry_without_payload() {
        let err = Entry::<TypeConfig>::try_from(pb::LogEntry::default()).unwrap_err();
        assert_eq!(err.field, "LogEntry.payload");
    }
}

//! The openraft log storage over any [`midge_store::LogStore`].

use crate::blocking::{blocking, storage_error};
use crate::metrics::SharedCounters;
use crate::{pb, TypeConfig};
use midge_store::{LogRecord, LogStore, StoreError};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, StorageError, Vote};
use prost::Message;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// Raft log entries, encoded as `pb::LogEntry`, in a [`LogStore`]; the vote, the committed
/// log id and the last purged log id in its metadata. Cloning shares the store (the clone is
/// the log reader openraft's replication uses).
pub struct LogStorage<L: LogStore> {
    store: Arc<L>,
    counters: Arc<SharedCounters>,
}

impl<L: LogStore> Clone for LogStorage<L> {
    fn clone(&self) -> Self {
        LogStorage {
            store: self.store.clone(),
            counters: self.counters.clone(),
        }
    }
}

impl<L: LogStore> LogStorage<L> {
    /// Wraps a log store.
    pub fn new(store: Arc<L>) -> LogStorage<L> {
        LogStorage::with_counters(store, Arc::default())
    }

    pub(crate) fn with_counters(store: Arc<L>, counters: Arc<SharedCounters>) -> LogStorage<L> {
        LogStorage { store, counters }
    }

    async fn read_meta<M: Message + Default + 'static>(
        &self,
        key: &'static str,
        subject: ErrorSubject<u64>,
    ) -> Result<Option<M>, StorageError<u64>> {
        let store = self.store.clone();
        let bytes = blocking(move || store.get_meta(key))
            .await
            .map_err(|e| storage_error(subject.clone(), ErrorVerb::Read, &e))?;
        bytes
            .map(|b| M::decode(b.as_slice()))
            .transpose()
            .map_err(|e| storage_error(subject, ErrorVerb::Read, &corrupt(key, e)))
    }

    async fn write_meta(
        &self,
        key: &'static str,
        value: Vec<u8>,
        subject: ErrorSubject<u64>,
        synced: bool,
    ) -> Result<(), StorageError<u64>> {
        let store = self.store.clone();
        blocking(move || {
            if synced {
                store.put_meta(key, &value)
            } else {
                store.put_meta_relaxed(key, &value)
            }
        })
        .await
        .map_err(|e| storage_error(subject, ErrorVerb::Write, &e))
    }
}

fn corrupt(key: impl ToString, e: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table: "raft_log",
        key: key.to_string(),
        reason: e.to_string(),
    }
}

/// Decodes one log record into an entry, checking it sits at its own index.
fn decode_record(record: &LogRecord) -> Result<Entry<TypeConfig>, StoreError> {
    let entry = pb::LogEntry::decode(record.bytes.as_slice())
        .map_err(|e| corrupt(record.index, e))
        .and_then(|pb| Entry::try_from(pb).map_err(|e| corrupt(record.index, e)))?;
    if entry.log_id.index != record.index {
        return Err(corrupt(
            record.index,
            format!("entry claims index {}", entry.log_id.index),
        ));
    }
    Ok(entry)
}

fn range_to_indexes<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&n) => n.saturating_add(1),
        Bound::Excluded(&n) => n,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<L: LogStore> RaftLogReader<TypeConfig> for LogStorage<L> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let (start, end) = range_to_indexes(&range);
        if start >= end {
            return Ok(Vec::new());
        }
        let store = self.store.clone();
        blocking(move || {
            store
                .range(start, end)?
                .iter()
                .map(decode_record)
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl<L: LogStore> RaftLogStorage<TypeConfig> for LogStorage<L> {
    type LogReader = LogStorage<L>;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let last_purged_log_id = self
            .read_meta::<pb::LogId>(LAST_PURGED, ErrorSubject::Store)
            .await?
            .map(LogId::from);
        let store = self.store.clone();
        let last = blocking(move || store.last()?.as_ref().map(decode_record).transpose())
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        let last_log_id = last.map(|e| e.log_id).or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogStorage<L> {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let bytes = pb::Vote::from(vote).encode_to_vec();
        self.write_meta(VOTE, bytes, ErrorSubject::Vote, true).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self
            .read_meta::<pb::Vote>(VOTE, ErrorSubject::Vote)
            .await?
            .map(Vote::from))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.counters.set_committed(committed.map(|id| id.index));
        // Saving it lets a restart re-apply committed entries before an election. Not synced:
        // it rides on the next synced append (one fsync per commit, not two), and a restart
        // that lost it re-commits those entries once elected, as Raft allows.
        let bytes = pb::OptionalLogId {
            log_id: committed.as_ref().map(pb::LogId::from),
        }
        .encode_to_vec();
        self.write_meta(COMMITTED, bytes, ErrorSubject::Store, false)
            .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let committed = self
            .read_meta::<pb::OptionalLogId>(COMMITTED, ErrorSubject::Store)
            .await?
            .and_then(|c| c.log_id)
            .map(LogId::from);
        self.counters.set_committed(committed.map(|id| id.index));
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let store = self.store.clone();
        // Encoding happens on the blocking pool too: large batches stay off the Raft core task.
        let result = blocking(move || {
            let records: Vec<LogRecord> = entries
                .into_iter()
                .map(|e| LogRecord {
                    index: e.log_id.index,
                    bytes: pb::LogEntry::from(e).encode_to_vec(),
                })
                .collect();
            if records.is_empty() {
                return Ok(());
            }
            store.append(&records)
        })
        .await;
        // The store's append returns once its fsync policy is honoured: only then is the
        // entry flushed as far as Raft is concerned.
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(storage_error(ErrorSubject::Logs, ErrorVerb::Write, &e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let store = self.store.clone();
        let index = log_id.index;
        blocking(move || store.truncate(index))
            .await
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // Record the purge point first: a crash between the two steps leaves entries that are
        // merely unreachable, never a log whose start is unknown.
        let bytes = pb::LogId::from(&log_id).encode_to_vec();
        self.write_meta(LAST_PURGED, bytes, ErrorSubject::Store, true)
            .await?;
        let store = self.store.clone();
        let index = log_id.index;
        blocking(move || store.purge(index))
            .await
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }
}

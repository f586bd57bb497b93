//! The Raft log and Raft metadata.

use crate::StoreError;

/// One log entry: its index and its encoded bytes (the encoding, including the term, is the
/// cluster layer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Log index (0 is allowed: openraft puts its initial membership entry there).
    pub index: u64,
    /// Encoded entry.
    pub bytes: Vec<u8>,
}

/// The Raft log. Implemented on RocksDB (`RocksStore`) and in memory (`MemStore`, a test
/// double); one test suite runs against both.
pub trait LogStore: Send + Sync + 'static {
    /// Appends records with consecutive indexes in one atomic batch, replacing any existing
    /// records at those indexes; durable per the fsync policy when it returns.
    fn append(&self, records: &[LogRecord]) -> Result<(), StoreError>;
    /// Records with `start <= index < end`, in order (stops at the first gap).
    fn range(&self, start: u64, end: u64) -> Result<Vec<LogRecord>, StoreError>;
    /// The record with the highest index, if any.
    fn last(&self) -> Result<Option<LogRecord>, StoreError>;
    /// Deletes every record with `index >= from` (conflicting entries after a leader change).
    fn truncate(&self, from: u64) -> Result<(), StoreError>;
    /// Deletes every record with `index <= upto` (compaction after a snapshot).
    fn purge(&self, upto: u64) -> Result<(), StoreError>;
    /// Stores a small named value (vote, committed log id, last purged log id), synced.
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Like [`LogStore::put_meta`] but not synced itself: it becomes durable with the next
    /// synced write (a crash may lose it, never reorder it after later writes). For values a
    /// restart can do without, such as the committed log id.
    fn put_meta_relaxed(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_meta(key, value)
    }
    /// Reads a named value.
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Checks that `records` have consecutive indexes.
pub(crate) fn check_consecutive(records: &[LogRecord]) -> Result<(), StoreError> {
    for pair in records.windows(2) {
        if pair[0].index.checked_add(1) != Some(pair[1].index) {
            return Err(StoreError::Invalid(format!(
                "appended log indexes are not consecutive: {} then {}",
                pair[0].index, pair[1].index
            )));
        }
    }
    Ok(())
}

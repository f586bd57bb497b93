//! `MemStore`: an in-memory double of the RocksDB store, for tests of the layers above.
//!
//! It uses the same key encoding and snapshot format as `RocksStore`, so both scan in the same
//! order and a snapshot exported from one imports into the other. Nothing is durable.

use crate::keys::decode_state_key;
use crate::log_store::check_consecutive;
use crate::snapshot_format::{SnapshotReader, SnapshotWriter};
use crate::state_ops::{lower, StateOp};
use crate::{LogRecord, LogStore, RowVisitor, StateStore, StateTable, StateWrite, StoreError};
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::sync::{Mutex, MutexGuard};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory `LogStore` and `StateStore` (BTreeMaps behind a mutex).
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    log: BTreeMap<u64, Vec<u8>>,
    raft_meta: BTreeMap<String, Vec<u8>>,
    tables: BTreeMap<StateTable, Table>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write (every write is
        // validated before it mutates), so the data is still consistent: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogStore for MemStore {
    fn append(&self, records: &[LogRecord]) -> Result<(), StoreError> {
        check_consecutive(records)?;
        let mut inner = self.lock();
        for r in records {
            inner.log.insert(r.index, r.bytes.clone());
        }
        Ok(())
    }

    fn range(&self, start: u64, end: u64) -> Result<Vec<LogRecord>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<LogRecord> = Vec::new();
        if start >= end {
            return Ok(out);
        }
        for (index, bytes) in inner.log.range(start..end) {
            if out.last().is_some_and(|prev| prev.index + 1 != *index) {
                break;
            }
            out.push(LogRecord {
                index: *index,
                bytes: bytes.clone(),
            });
        }
        Ok(out)
    }

    fn last(&self) -> Result<Option<LogRecord>, StoreError> {
        Ok(self
            .lock()
            .log
            .last_key_value()
            .map(|(index, bytes)| LogRecord {
                index: *index,
                bytes: bytes.clone(),
            }))
    }

    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        self.lock().log.split_off(&from);
        Ok(())
    }

    fn purge(&self, upto: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.log = match upto.checked_add(1) {
            Some(first_kept) => inner.log.split_off(&first_kept),
            None => BTreeMap::new(),
        };
        Ok(())
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock()
            .raft_meta
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().raft_meta.get(key).cloned())
    }
}

impl StateStore for MemStore {
    fn apply(&self, writes: &[StateWrite]) -> Result<(), StoreError> {
        // Lowering is the only step that can fail, and it runs before anything changes.
        let ops = lower(writes)?;
        let mut inner = self.lock();
        for op in ops {
            match op {
                StateOp::Put { table, key, value } => {
                    inner
                        .tables
                        .entry(table)
                        .or_default()
                        .insert(key, value.to_vec());
                }
                StateOp::Delete { table, key } => {
                    inner.tables.entry(table).or_default().remove(&key);
                }
                StateOp::DeleteRange { table, start, end } => {
                    let rows = inner.tables.entry(table).or_default();
                    let doomed: Vec<Vec<u8>> =
                        rows.range(start..end).map(|(k, _)| k.clone()).collect();
                    for key in doomed {
                        rows.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .tables
            .get(&StateTable::Meta)
            .and_then(|rows| rows.get(key.as_bytes()))
            .cloned())
    }

    fn scan(&self, table: StateTable, f: &mut RowVisitor<'_>) -> Result<(), StoreError> {
        // Copy first so `f` may call back into the store without deadlocking.
        let rows = self.lock().tables.get(&table).cloned().unwrap_or_default();
        for (key, value) in &rows {
            let (first, second) = decode_state_key(table, key)?;
            f(first, second, value)?;
        }
        Ok(())
    }

    fn export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        // A copy is the point-in-time view; fine for a test double.
        let tables = self.lock().tables.clone();
        let mut writer = SnapshotWriter::new(BufWriter::new(out))?;
        for table in StateTable::ALL {
            for (key, value) in tables.get(&table).into_iter().flatten() {
                writer.record(table, key, value)?;
            }
        }
        writer.finish()
    }

    fn import(&self, input: &mut dyn Read) -> Result<(), StoreError> {
        let mut reader = SnapshotReader::new(BufReader::new(input))?;
        let mut tables: BTreeMap<StateTable, Table> = BTreeMap::new();
        while let Some(row) = reader.next_record()? {
            tables
                .entry(row.table)
                .or_default()
                .insert(row.key, row.value);
        }
        self.lock().tables = tables;
        Ok(())
    }
}

//! `StateStore` for `RocksStore`: applies, reads, scans and exports the state tables.
//!
//! State writes are not synced: the Raft log they derive from is, and it shares the WAL, so a
//! crash loses at most writes the log can replay. Reads take the state lock only while they
//! pin a view (an iterator or a snapshot), so a callback may write to the store.

use crate::keys::{client_prefix, decode_state_key};
use crate::snapshot_format::SnapshotWriter;
use crate::state_ops::{lower, StateOp};
use crate::{RocksStore, RowVisitor, StateStore, StateTable, StateWrite, StoreError};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch};
use std::io::{BufWriter, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::RwLockReadGuard;

impl RocksStore {
    /// The state lock for reading, or an error while a failed import waits for a reopen.
    pub(crate) fn state_read(&self) -> Result<RwLockReadGuard<'_, ()>, StoreError> {
        // Poisoning only means another thread panicked; RocksDB batches are atomic, so the
        // tables are consistent either way.
        let guard = self.state_lock.read().unwrap_or_else(|e| e.into_inner());
        if self.import_broken.load(Ordering::Acquire) {
            return Err(StoreError::Rocks {
                path: self.dir.display().to_string(),
                message: "an import failed midway; reopen the store to finish it".into(),
            });
        }
        Ok(guard)
    }
}

impl StateStore for RocksStore {
    fn apply(&self, writes: &[StateWrite]) -> Result<(), StoreError> {
        let ops = lower(writes)?;
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                StateOp::Put { table, key, value } => {
                    batch.put_cf(self.cf(table.name())?, key, value)
                }
                StateOp::Delete { table, key } => batch.delete_cf(self.cf(table.name())?, key),
                StateOp::DeleteRange { table, start, end } => {
                    batch.delete_range_cf(self.cf(table.name())?, start, end)
                }
            }
        }
        let _guard = self.state_read()?;
        self.write(batch, false)
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _guard = self.state_read()?;
        self.db
            .get_cf(self.cf(StateTable::Meta.name())?, key.as_bytes())
            .map_err(|e| self.err(e))
    }

    fn scan(&self, table: StateTable, f: &mut RowVisitor<'_>) -> Result<(), StoreError> {
        let iter = {
            let _guard = self.state_read()?;
            // The iterator pins an implicit snapshot when created.
            self.db
                .iterator_cf(self.cf(table.name())?, IteratorMode::Start)
        };
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let (first, second) = decode_state_key(table, &key)?;
            f(first, second, &value)?;
        }
        Ok(())
    }

    fn scan_client(
        &self,
        table: StateTable,
        client_id: &str,
        f: &mut RowVisitor<'_>,
    ) -> Result<(), StoreError> {
        let prefix = client_prefix(client_id)?;
        let iter = {
            let _guard = self.state_read()?;
            self.db.iterator_cf(
                self.cf(table.name())?,
                IteratorMode::From(&prefix, rocksdb::Direction::Forward),
            )
        };
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (first, second) = decode_state_key(table, &key)?;
            // The prefix carries the id's length: a longer id never shares it.
            if first == client_id {
                f(first, second, &value)?;
            }
        }
        Ok(())
    }

    fn export(&self, out: &mut dyn Write) -> Result<u64, StoreError> {
        let snapshot = {
            let _guard = self.state_read()?;
            self.db.snapshot()
        };
        let mut writer = SnapshotWriter::new(BufWriter::new(out))?;
        for table in StateTable::ALL {
            let mut opts = ReadOptions::default();
            // A full scan would evict the working set from the block cache for nothing.
            opts.fill_cache(false);
            let iter = snapshot.iterator_cf_opt(self.cf(table.name())?, opts, IteratorMode::Start);
            for item in iter {
                let (key, value) = item.map_err(|e| self.err(e))?;
                // Refuse to export a row no import would accept.
                decode_state_key(table, &key)?;
                writer.record(table, &key, &value)?;
            }
        }
        writer.finish()
    }

    fn import(&self, input: &mut dyn Read) -> Result<(), StoreError> {
        self.import_stream(input)
    }
}

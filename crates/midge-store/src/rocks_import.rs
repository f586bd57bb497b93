//! `RocksStore::import`: verify the whole stream before changing anything, then replace the
//! tables in bounded batches in a way that survives a crash.
//!
//! 1. The stream is copied to `<dir>/midge-import.spool.tmp` while it is parsed and verified
//!    (magic, every record and key, count, crc, end of stream). On any error the copy is
//!    removed and the store is unchanged.
//! 2. The copy is synced and renamed to `midge-import.spool`, then a marker is written (synced)
//!    to the `default` column family.
//! 3. Under the state write lock the spool is replayed: the first batch clears every table,
//!    rows follow in batches of about 4 MiB, and the last batch removes the marker (synced).
//! 4. The spool is removed.
//!
//! A crash during step 3 leaves the marker, and `open` replays the spool from the start (the
//! replay clears the tables first, so it is idempotent). Memory stays at one batch plus one
//! row whatever the snapshot's size; the cost is one extra sequential write and read of it.

use crate::snapshot_format::SnapshotReader;
use crate::{RocksStore, StateTable, StoreError};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch, DEFAULT_COLUMN_FAMILY_NAME};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

/// The verified copy of the stream being imported.
pub(crate) const SPOOL_FILE: &str = "midge-import.spool";
/// The copy while it is still being written and verified.
const SPOOL_TMP_FILE: &str = "midge-import.spool.tmp";
/// Present in the `default` column family from step 2 until the import completed.
pub(crate) const IMPORT_MARKER: &[u8] = b"midge-store/import-pending";
/// Rows are written in batches of about this many bytes.
const BATCH_BYTES: usize = 4 << 20;

/// Copies everything read from `input` to `copy`.
struct Tee<'a> {
    input: &'a mut dyn Read,
    copy: BufWriter<File>,
    path: &'a Path,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.input.read(buf)?;
        self.copy.write_all(&buf[..n]).map_err(|e| {
            std::io::Error::new(e.kind(), format!("writing {}: {e}", self.path.display()))
        })?;
        Ok(n)
    }
}

impl RocksStore {
    /// Steps 1 to 4 above.
    pub(crate) fn import_stream(&self, input: &mut dyn Read) -> Result<(), StoreError> {
        let _one_import = self.import_lock.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = self.dir.join(SPOOL_TMP_FILE);
        let spool = self.dir.join(SPOOL_FILE);
        if let Err(e) = self.spool_verified(input, &tmp, &spool) {
            // Best effort: a leftover copy is also removed by the next open.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }

        let _exclusive = self.state_lock.write().unwrap_or_else(|e| e.into_inner());
        let mut marker = WriteBatch::default();
        marker.put_cf(self.cf(DEFAULT_COLUMN_FAMILY_NAME)?, IMPORT_MARKER, b"");
        if let Err(e) = self.write(marker, true) {
            let _ = std::fs::remove_file(&spool);
            return Err(e);
        }
        if let Err(e) = self.replay_spool(&spool) {
            self.import_broken.store(true, Ordering::Release);
            return Err(e);
        }
        self.import_broken.store(false, Ordering::Release);
        let _ = std::fs::remove_file(&spool);
        Ok(())
    }

    /// Step 1 and 2's rename: the verified, synced copy ends up at `spool`.
    fn spool_verified(
        &self,
        input: &mut dyn Read,
        tmp: &Path,
        spool: &Path,
    ) -> Result<(), StoreError> {
        let file = File::create(tmp)
            .map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
        let tee = Tee {
            input,
            copy: BufWriter::with_capacity(1 << 20, file),
            path: tmp,
        };
        let mut reader = SnapshotReader::new(BufReader::with_capacity(1 << 20, tee))?;
        while reader.next_record()?.is_some() {}
        let file = reader
            .into_inner()
            .into_inner()
            .copy
            .into_inner()
            .map_err(|e| StoreError::io(format!("writing {}", tmp.display()), e.into_error()))?;
        file.sync_all()
            .map_err(|e| StoreError::io(format!("syncing {}", tmp.display()), e))?;
        std::fs::rename(tmp, spool).map_err(|e| {
            StoreError::io(
                format!("renaming {} to {}", tmp.display(), spool.display()),
                e,
            )
        })?;
        sync_dir(&self.dir)
    }

    /// Step 3. The caller holds the state write lock (or is `open`, before anyone else can).
    fn replay_spool(&self, spool: &Path) -> Result<(), StoreError> {
        let in_spool = |e: StoreError| match e {
            StoreError::Snapshot(reason) => StoreError::Snapshot(format!(
                "{} (the verified import copy) is damaged: {reason}",
                spool.display()
            )),
            other => other,
        };
        let file = File::open(spool)
            .map_err(|e| StoreError::io(format!("opening {}", spool.display()), e))?;
        let mut reader =
            SnapshotReader::new(BufReader::with_capacity(1 << 20, file)).map_err(in_spool)?;
        let mut batch = WriteBatch::default();
        for table in StateTable::ALL {
            self.clear_table(&mut batch, table)?;
        }
        while let Some(row) = reader.next_record().map_err(in_spool)? {
            batch.put_cf(self.cf(row.table.name())?, &row.key, &row.value);
            if batch.size_in_bytes() >= BATCH_BYTES {
                self.write(std::mem::take(&mut batch), false)?;
            }
        }
        batch.delete_cf(self.cf(DEFAULT_COLUMN_FAMILY_NAME)?, IMPORT_MARKER);
        self.write(batch, true)
    }

    /// Adds deletes of every row of `table` (from its first to its last key, whatever they
    /// hold) to `batch`.
    fn clear_table(&self, batch: &mut WriteBatch, table: StateTable) -> Result<(), StoreError> {
        let cf = self.cf(table.name())?;
        let edge = |mode: IteratorMode| -> Result<Option<Box<[u8]>>, StoreError> {
            let mut opts = ReadOptions::default();
            opts.fill_cache(false);
            match self.db.iterator_cf_opt(cf, opts, mode).next() {
                None => Ok(None),
                Some(item) => item.map(|(key, _)| Some(key)).map_err(|e| self.err(e)),
            }
        };
        if let (Some(first), Some(last)) = (edge(IteratorMode::Start)?, edge(IteratorMode::End)?) {
            batch.delete_range_cf(cf, &first, &last);
            batch.delete_cf(cf, &last);
        }
        Ok(())
    }

    /// Called by `open`: completes an import a crash interrupted, and removes leftover copies.
    pub(crate) fn finish_interrupted_import(&self) -> Result<(), StoreError> {
        let spool = self.dir.join(SPOOL_FILE);
        let pending = self
            .db
            .get_cf(self.cf(DEFAULT_COLUMN_FAMILY_NAME)?, IMPORT_MARKER)
            .map_err(|e| self.err(e))?
            .is_some();
        if pending {
            if !spool.exists() {
                return Err(StoreError::Rocks {
                    path: spool.display().to_string(),
                    message: "an interrupted import must be finished from this file, \
                              but it is missing; the state tables are incomplete"
                        .into(),
                });
            }
            self.replay_spool(&spool)?;
        }
        for leftover in [spool, self.dir.join(SPOOL_TMP_FILE)] {
            if leftover.exists() {
                std::fs::remove_file(&leftover)
                    .map_err(|e| StoreError::io(format!("removing {}", leftover.display()), e))?;
            }
        }
        Ok(())
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing directory {}", dir.display()), e))
}

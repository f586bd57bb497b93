//! `RocksStore`: the Raft log, Raft metadata and the state machine in one RocksDB instance.
//!
//! One instance means one WAL: a synced log append also makes every earlier state write
//! durable, which is why state writes themselves are not synced. Column families: `log`
//! (big-endian u64 index keys), `raft_meta`, one per `StateTable`, and `default`, which only
//! holds this crate's own bookkeeping (the import marker, see `rocks_import`).

use crate::keys::{decode_log_key, log_key, LOG_TABLE};
use crate::log_store::check_consecutive;
use crate::wal_syncer::WalSyncer;
use crate::{FsyncPolicy, LogRecord, LogStore, StateTable, StoreError};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode, Direction,
    IteratorMode, Options, ReadOptions, WriteBatch, WriteBufferManager, WriteOptions, DB,
    DEFAULT_COLUMN_FAMILY_NAME,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Column family of the Raft metadata.
const RAFT_META: &str = "raft_meta";
/// Hard bound on all memtables together (writes stall while flushes catch up), so memory does
/// not grow with the number of column families or with the size of an import.
const MEMTABLE_BUDGET: usize = 64 << 20;
/// One column family's memtable: small enough that a flush frees memory in steps.
const MEMTABLE_SIZE: usize = 16 << 20;

/// The RocksDB-backed `LogStore` and `StateStore`.
pub struct RocksStore {
    pub(crate) db: Arc<DB>,
    pub(crate) dir: PathBuf,
    sync_appends: bool,
    /// Held for writing while an import replaces the tables, so readers and `apply` see the
    /// state before or after it, never half of it.
    pub(crate) state_lock: RwLock<()>,
    /// Set when an import failed after it started replacing the tables: state operations
    /// refuse until a reopen finishes the import.
    pub(crate) import_broken: AtomicBool,
    /// Serializes imports, which share one spool file.
    pub(crate) import_lock: Mutex<()>,
    wal_syncer: Option<WalSyncer>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("dir", &self.dir)
            .field("sync_appends", &self.sync_appends)
            .finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Opens (or creates, if `dir` holds no database) the store in `dir`.
    ///
    /// A damaged directory (missing `CURRENT`, corrupt `MANIFEST` or table files) is an error
    /// naming the path, never a silently fresh database.
    pub fn open(dir: &Path, fsync: FsyncPolicy) -> Result<RocksStore, StoreError> {
        let interval = match fsync {
            FsyncPolicy::Always => None,
            FsyncPolicy::IntervalMs(0) => {
                return Err(StoreError::Invalid(
                    "fsync interval must be at least 1 ms".into(),
                ))
            }
            FsyncPolicy::IntervalMs(ms) => Some(Duration::from_millis(ms)),
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::io(format!("creating data dir {}", dir.display()), e))?;
        let fresh = is_fresh(dir)?;

        let mut opts = Options::default();
        opts.create_if_missing(fresh);
        // Only a new database gets its column families made: an existing one lacking any
        // (a damaged MANIFEST) must fail to open, not come up with empty tables.
        opts.create_missing_column_families(fresh);
        opts.set_paranoid_checks(true);
        // A torn write at the WAL tail after a power loss is dropped rather than refusing to
        // open: with `Always` those writes were never acknowledged.
        opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(
            MEMTABLE_BUDGET,
            true,
        ));
        opts.set_keep_log_file_num(4);

        let mut cf_opts = Options::default();
        cf_opts.set_compression_type(DBCompressionType::Lz4);
        cf_opts.set_write_buffer_size(MEMTABLE_SIZE);
        let names = [DEFAULT_COLUMN_FAMILY_NAME, LOG_TABLE, RAFT_META]
            .into_iter()
            .chain(StateTable::ALL.iter().map(|t| t.name()));
        let cfs = names.map(|name| ColumnFamilyDescriptor::new(name, cf_opts.clone()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(|e| StoreError::rocks(dir, e))?;
        let db = Arc::new(db);

        let wal_syncer = match interval {
            None => None,
            Some(every) => Some(WalSyncer::start(Arc::clone(&db), dir.to_path_buf(), every)?),
        };
        let store = RocksStore {
            db,
            dir: dir.to_path_buf(),
            sync_appends: interval.is_none(),
            state_lock: RwLock::new(()),
            import_broken: AtomicBool::new(false),
            import_lock: Mutex::new(()),
            wal_syncer,
        };
        store.finish_interrupted_import()?;
        Ok(store)
    }

    /// Writes the memtables to table files (for tests and a controlled shutdown; recovery
    /// does not need it).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true).map_err(|e| self.err(e))?;
        for name in [LOG_TABLE, RAFT_META]
            .into_iter()
            .chain(StateTable::ALL.iter().map(|t| t.name()))
        {
            self.db.flush_cf(self.cf(name)?).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::Rocks {
            path: self.dir.display().to_string(),
            message: format!("column family {name} is missing"),
        })
    }

    pub(crate) fn err(&self, e: rocksdb::Error) -> StoreError {
        StoreError::rocks(&self.dir, e)
    }

    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts).map_err(|e| self.err(e))
    }

    fn decode_record(key: &[u8], value: &[u8]) -> Result<LogRecord, StoreError> {
        Ok(LogRecord {
            index: decode_log_key(key)?,
            bytes: value.to_vec(),
        })
    }
}

impl Drop for RocksStore {
    fn drop(&mut self) {
        // Stop (and finally sync) before the last handle to the DB goes away.
        self.wal_syncer.take();
    }
}

/// Whether `dir` holds no database yet. RocksDB with `create_if_missing` would make a new,
/// empty database when `CURRENT` is lost, so a lost `CURRENT` beside other RocksDB files is
/// refused here instead.
fn is_fresh(dir: &Path) -> Result<bool, StoreError> {
    let current = dir.join("CURRENT");
    if current.exists() {
        return Ok(false);
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| StoreError::io(format!("listing data dir {}", dir.display()), e))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| StoreError::io(format!("listing data dir {}", dir.display()), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("MANIFEST-")
            || name.starts_with("OPTIONS-")
            || name.ends_with(".sst")
            || name.ends_with(".log")
        {
            return Err(StoreError::Rocks {
                path: current.display().to_string(),
                message: format!(
                    "file is missing but the directory holds database files (e.g. {name}): \
                     the data directory is damaged; restore it from a backup or move it away"
                ),
            });
        }
    }
    Ok(true)
}

impl LogStore for RocksStore {
    fn append(&self, records: &[LogRecord]) -> Result<(), StoreError> {
        check_consecutive(records)?;
        if let Some(syncer) = &self.wal_syncer {
            syncer.check()?;
        }
        if records.is_empty() {
            return Ok(());
        }
        let log = self.cf(LOG_TABLE)?;
        let mut batch = WriteBatch::default();
        for r in records {
            batch.put_cf(log, log_key(r.index), &r.bytes);
        }
        self.write(batch, self.sync_appends)
    }

    fn range(&self, start: u64, end: u64) -> Result<Vec<LogRecord>, StoreError> {
        let mut out: Vec<LogRecord> = Vec::new();
        if start >= end {
            return Ok(out);
        }
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_key(end).to_vec());
        let from = log_key(start);
        let iter = self.db.iterator_cf_opt(
            self.cf(LOG_TABLE)?,
            opts,
            IteratorMode::From(&from, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let record = Self::decode_record(&key, &value)?;
            if out
                .last()
                .is_some_and(|prev| prev.index + 1 != record.index)
            {
                break;
            }
            out.push(record);
        }
        Ok(out)
    }

    fn last(&self) -> Result<Option<LogRecord>, StoreError> {
        let mut iter = self.db.iterator_cf(self.cf(LOG_TABLE)?, IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item.map_err(|e| self.err(e))?;
                Self::decode_record(&key, &value).map(Some)
            }
        }
    }

    fn truncate(&self, from: u64) -> Result<(), StoreError> {
        let log = self.cf(LOG_TABLE)?;
        let mut batch = WriteBatch::default();
        // The range end is exclusive, so the last possible index is deleted on its own.
        batch.delete_range_cf(log, log_key(from), log_key(u64::MAX));
        batch.delete_cf(log, log_key(u64::MAX));
        self.write(batch, self.sync_appends)
    }

    fn purge(&self, upto: u64) -> Result<(), StoreError> {
        let log = self.cf(LOG_TABLE)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(log, log_key(0), log_key(upto));
        batch.delete_cf(log, log_key(upto));
        self.write(batch, self.sync_appends)
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(RAFT_META)?, key.as_bytes(), value);
        // Votes must survive a power loss whatever the append policy: voting twice in a term
        // breaks Raft's safety.
        self.write(batch, true)
    }

    fn put_meta_relaxed(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(RAFT_META)?, key.as_bytes(), value);
        self.write(batch, false)
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(RAFT_META)?, key.as_bytes())
            .map_err(|e| self.err(e))
    }
}

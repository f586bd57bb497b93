//! `WalSyncer`: the background thread behind `FsyncPolicy::IntervalMs`.
//!
//! Appends under that policy return once the WAL write reached the OS; this thread makes them
//! durable every interval. A failed sync is kept and reported by every later append: after a
//! failed fsync the kernel may have dropped the dirty pages, so pretending later writes are
//! safe would lose acknowledged entries silently.

use crate::StoreError;
use rocksdb::DB;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Syncs the WAL every interval until dropped; the drop syncs once more and joins the thread.
pub(crate) struct WalSyncer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<String>>>,
    dir: PathBuf,
}

impl WalSyncer {
    /// Starts the thread.
    pub(crate) fn start(
        db: Arc<DB>,
        dir: PathBuf,
        interval: Duration,
    ) -> Result<WalSyncer, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let failure = Arc::new(Mutex::new(None));
        let failure_slot = Arc::clone(&failure);
        let thread = std::thread::Builder::new()
            .name("midge-wal-sync".into())
            .spawn(move || loop {
                let last_round = match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => false,
                    // The store is closing (sender dropped): sync what is left, then exit.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                };
                if let Err(e) = db.flush_wal(true) {
                    let mut slot = failure_slot.lock().unwrap_or_else(|e| e.into_inner());
                    slot.get_or_insert(e.into_string());
                }
                if last_round {
                    return;
                }
            })
            .map_err(|e| StoreError::io("starting the WAL sync thread", e))?;
        Ok(WalSyncer {
            stop: Some(stop),
            thread: Some(thread),
            failure,
            dir,
        })
    }

    /// The first background sync failure, if there was one.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            None => Ok(()),
            Some(message) => Err(StoreError::Rocks {
                path: self.dir.display().to_string(),
                message: format!("an earlier background WAL sync failed: {message}"),
            }),
        }
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only panics if RocksDB does; nothing useful to do with that here.
            let _ = thread.join();
        }
    }
}

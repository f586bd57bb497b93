//! Snapshot files under `<data_dir>/snapshots/`.
//!
//! A snapshot is two files: `<stem>.snap` (what `StateStore::export` wrote) and `<stem>.meta`
//! (a `pb::SnapshotMeta`). Both are written as `*.tmp`, synced and renamed, data first: a
//! `.meta` file exists only beside complete data. Only the newest snapshot is kept.

use crate::{pb, ClusterError, NodeInfo, TypeConfig};
use openraft::{Snapshot, SnapshotMeta};
use prost::Message;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

type Meta = SnapshotMeta<u64, NodeInfo>;

/// The snapshot directory and which snapshot in it is current.
#[derive(Debug)]
pub(crate) struct SnapshotFiles {
    dir: PathBuf,
    /// The current snapshot's file stem and metadata.
    current: Mutex<Option<(String, Meta)>>,
    /// Makes file names unique within a process.
    counter: AtomicU64,
    /// Files begun by `incoming` and not yet cleaned up.
    incoming: Mutex<Vec<PathBuf>>,
}

impl SnapshotFiles {
    /// Opens (creating) the directory, drops leftovers of interrupted writes and finds the
    /// newest complete snapshot.
    pub(crate) fn open(dir: PathBuf) -> Result<SnapshotFiles, ClusterError> {
        fs::create_dir_all(&dir).map_err(|e| ClusterError::io(dir.display(), e))?;
        let mut newest: Option<(String, Meta)> = None;
        let entries = fs::read_dir(&dir).map_err(|e| ClusterError::io(dir.display(), e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| ClusterError::io(dir.display(), e))?
                .path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".tmp") {
                remove(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".meta") else {
                continue;
            };
            if !dir.join(format!("{stem}.snap")).exists() {
                remove(&path);
                continue;
            }
            let meta = read_meta(&path)?;
            let newer = newest
                .as_ref()
                .is_none_or(|(s, m)| (meta.last_log_id, stem) > (m.last_log_id, s.as_str()));
            if newer {
                newest = Some((stem.to_string(), meta));
            }
        }
        let files = SnapshotFiles {
            dir,
            current: Mutex::new(None),
            counter: AtomicU64::new(0),
            incoming: Mutex::new(Vec::new()),
        };
        if let Some((stem, meta)) = newest {
            files.set_current(stem, meta);
        }
        Ok(files)
    }

    /// A new unique file stem for a snapshot covering up to `meta`'s last log index.
    pub(crate) fn new_stem(&self, last_index: Option<u64>) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        match last_index {
            Some(i) => format!("snapshot-{i:020}-{ms}-{n}"),
            None => format!("snapshot-none-{ms}-{n}"),
        }
    }

    /// The current snapshot, its data opened for streaming.
    pub(crate) async fn open_current(&self) -> Result<Option<Snapshot<TypeConfig>>, ClusterError> {
        let Some((stem, meta)) = lock(&self.current).clone() else {
            return Ok(None);
        };
        let path = self.data_path(&stem);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ClusterError::io(path.display(), e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }

    /// Writes a snapshot: `fill` streams the data; then the metadata; then it becomes current
    /// and the previous one is deleted. `check` runs on the complete data before it is
    /// published (installing imports it there). Blocking.
    pub(crate) fn write(
        &self,
        stem: &str,
        meta: &Meta,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), ClusterError>,
        check: impl FnOnce(&Path) -> Result<(), ClusterError>,
    ) -> Result<(), ClusterError> {
        let data = self.data_path(stem);
        let data_tmp = self.dir.join(format!("{stem}.snap.tmp"));
        let io = |path: &Path| {
            let p = path.display().to_string();
            move |e: io::Error| ClusterError::io(p, e)
        };
        let result = (|| {
            let file = File::create(&data_tmp).map_err(io(&data_tmp))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            fill(&mut out)?;
            let file = out
                .into_inner()
                .map_err(|e| ClusterError::io(data_tmp.display(), e.into_error()))?;
            file.sync_all().map_err(io(&data_tmp))?;
            drop(file);
            check(&data_tmp)?;
            fs::rename(&data_tmp, &data).map_err(io(&data))?;
            let meta_path = self.dir.join(format!("{stem}.meta"));
            let meta_tmp = self.dir.join(format!("{stem}.meta.tmp"));
            let bytes = pb::SnapshotMeta::from(meta).encode_to_vec();
            write_synced(&meta_tmp, &bytes).map_err(io(&meta_tmp))?;
            fs::rename(&meta_tmp, &meta_path).map_err(io(&meta_path))?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))
        })();
        if result.is_err() {
            remove(&data_tmp);
            return result;
        }
        self.set_current(stem.to_string(), meta.clone());
        Ok(())
    }

    /// A new file to receive a snapshot from the leader into.
    pub(crate) async fn incoming(&self) -> Result<tokio::fs::File, ClusterError> {
        let path = self
            .dir
            .join(format!("incoming-{}.tmp", self.new_stem(None)));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| ClusterError::io(path.display(), e))?;
        lock(&self.incoming).push(path);
        Ok(file)
    }

    /// Deletes the files begun by `incoming`.
    pub(crate) fn clear_incoming(&self) {
        for path in lock(&self.incoming).drain(..) {
            remove(&path);
        }
    }

    fn data_path(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.snap"))
    }

    fn set_current(&self, stem: String, meta: Meta) {
        let previous = lock(&self.current).replace((stem.clone(), meta));
        // Delete every other snapshot, including leftovers of a crash before this cleanup.
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let file_stem = name
                .strip_suffix(".snap")
                .or_else(|| name.strip_suffix(".meta"));
            if file_stem.is_some_and(|s| s != stem) {
                remove(&path);
            }
        }
        drop(previous);
    }
}

fn read_meta(path: &Path) -> Result<Meta, ClusterError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| ClusterError::io(path.display(), e))?;
    let meta = pb::SnapshotMeta::decode(bytes.as_slice()).map_err(|e| ClusterError::Corrupt {
        table: "snapshot meta",
        key: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(meta.into())
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn remove(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove snapshot file");
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (file
/// names) is still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

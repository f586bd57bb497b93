//! Building a snapshot file from the state store.

use crate::blocking::{blocking, storage_error};
use crate::snapshot_files::SnapshotFiles;
use crate::{ClusterError, NodeInfo, TypeConfig};
use midge_store::StateStore;
use openraft::storage::RaftSnapshotBuilder;
use openraft::{
    ErrorSubject, ErrorVerb, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership,
};
use std::sync::Arc;

/// Builds a snapshot: streams `StateStore::export` into a file under `<data_dir>/snapshots/`.
/// Openraft runs it beside ongoing applies; the metadata is captured when the builder is
/// made, before the export starts, so the data is never older than the metadata says (applying
/// the entries after it again is harmless: every write is a put or delete of whole rows).
pub struct SnapshotBuilder<S: StateStore> {
    pub(crate) store: Arc<S>,
    pub(crate) files: Arc<SnapshotFiles>,
    pub(crate) last_applied: Option<LogId<u64>>,
    pub(crate) membership: StoredMembership<u64, NodeInfo>,
}

impl<S: StateStore> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let stem = self.files.new_stem(self.last_applied.map(|id| id.index));
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: stem.clone(),
        };
        let fail = |e: &ClusterError| {
            storage_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let (store, files, written) = (self.store.clone(), self.files.clone(), meta.clone());
        blocking(move || {
            files.write(
                &stem,
                &written,
                |out| {
                    let bytes = store.export(out)?;
                    tracing::info!(bytes, "snapshot exported");
                    Ok(())
                },
                |_| Ok(()),
            )
        })
        .await
        .map_err(|e| fail(&e))?;
        tracing::info!(snapshot = %meta, "snapshot built");
        let current = self.files.open_current().await.map_err(|e| fail(&e))?;
        match current {
            Some(snapshot) if snapshot.meta == meta => Ok(snapshot),
            _ => Err(fail(&ClusterError::Raft(
                "snapshot replaced while being built".to_string(),
            ))),
        }
    }
}

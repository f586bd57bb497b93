//! The openraft state machine over any [`midge_store::StateStore`].

use crate::apply::command_writes;
use crate::blocking::{blocking, storage_error};
use crate::offline_sessions::OfflineSessions;
use crate::remote_commands::{is_for_every_node, is_shared, RemoteSender};
use crate::snapshot_files::SnapshotFiles;
use crate::{pb, ClusterError, NodeInfo, SnapshotBuilder, TypeConfig};
use midge_store::{StateStore, StateWrite, StoreError};
use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, Snapshot, SnapshotMeta, StorageError,
    StoredMembership,
};
use prost::Message;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

const LAST_APPLIED: &str = "last_applied";
/// What openraft calls the applied state: the last applied log id and the membership.
type AppliedState = (Option<LogId<u64>>, StoredMembership<u64, NodeInfo>);
const MEMBERSHIP: &str = "membership";

/// Applies committed entries to a [`StateStore`]: each call to `apply` becomes one atomic
/// `StateStore::apply` holding the writes of every command of every entry plus the new
/// `last_applied` and membership. Snapshots are files (see `SnapshotFiles`).
pub struct StateMachine<S: StateStore> {
    store: Arc<S>,
    files: Arc<SnapshotFiles>,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, NodeInfo>,
    offline: OfflineSessions,
    /// This process's origin id and where commands of other origins go once applied.
    remote: Option<(u64, RemoteSender)>,
}

impl<S: StateStore> StateMachine<S> {
    /// Opens the state machine: reads its applied state and the snapshots under
    /// `<data_dir>/snapshots/`.
    pub async fn open(store: Arc<S>, data_dir: &Path) -> Result<StateMachine<S>, ClusterError> {
        let dir = data_dir.join("snapshots");
        let files = blocking(move || SnapshotFiles::open(dir)).await?;
        let reader = store.clone();
        let (last_applied, membership, offline) = blocking(move || {
            let (last_applied, membership) = read_applied(&*reader)?;
            let offline = OfflineSessions::load(&*reader)?;
            Ok::<_, ClusterError>((last_applied, membership, offline))
        })
        .await?;
        Ok(StateMachine {
            store,
            files: Arc::new(files),
            last_applied,
            membership,
            offline,
            remote: None,
        })
    }

    /// Reports every applied shared command (retained set and clear) whose entry came from
    /// another origin than `origin_id` to `tx`, after it is written.
    pub(crate) fn with_remote_commands(mut self, origin_id: u64, tx: RemoteSender) -> Self {
        self.remote = Some((origin_id, tx));
        self
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

/// Reads `last_applied` and the membership from the store's metadata.
fn read_applied(store: &dyn StateStore) -> Result<AppliedState, StoreError> {
    let corrupt = |key: &str, e: prost::DecodeError| StoreError::Corrupt {
        table: "meta",
        key: key.to_string(),
        reason: e.to_string(),
    };
    let last_applied = match store.get_meta(LAST_APPLIED)? {
        Some(b) => pb::OptionalLogId::decode(b.as_slice())
            .map_err(|e| corrupt(LAST_APPLIED, e))?
            .log_id
            .map(LogId::from),
        None => None,
    };
    let membership = match store.get_meta(MEMBERSHIP)? {
        Some(b) => pb::StoredMembership::decode(b.as_slice())
            .map_err(|e| corrupt(MEMBERSHIP, e))?
            .into(),
        None => StoredMembership::default(),
    };
    Ok((last_applied, membership))
}

/// The metadata writes that record `last_applied` and `membership`.
fn applied_writes(
    last_applied: Option<LogId<u64>>,
    membership: Option<&StoredMembership<u64, NodeInfo>>,
) -> Vec<StateWrite> {
    let mut writes = Vec::with_capacity(2);
    if let Some(m) = membership {
        writes.push(StateWrite::MetaPut {
            key: MEMBERSHIP.to_string(),
            value: pb::StoredMembership::from(m).encode_to_vec(),
        });
    }
    writes.push(StateWrite::MetaPut {
        key: LAST_APPLIED.to_string(),
        value: pb::OptionalLogId {
            log_id: last_applied.as_ref().map(pb::LogId::from),
        }
        .encode_to_vec(),
    });
    writes
}

impl<S: StateStore> RaftStateMachine<TypeConfig> for StateMachine<S> {
    type SnapshotBuilder = SnapshotBuilder<S>;

    async fn applied_state(&mut self) -> Result<AppliedState, StorageError<u64>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<pb::Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut writes = Vec::new();
        let mut responses = Vec::new();
        let mut last = None;
        let mut membership_changed = false;
        let mut remote = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            last = Some(log_id);
            let applied_commands = match entry.payload {
                EntryPayload::Blank => 0,
                EntryPayload::Normal(request) => {
                    let n = request.commands.len();
                    if let Some((origin, _)) = &self.remote {
                        let mine = request.origin_id == *origin;
                        remote.extend(
                            request
                                .commands
                                .iter()
                                .filter(|c| {
                                    if mine {
                                        is_for_every_node(c)
                                    } else {
                                        is_shared(c)
                                    }
                                })
                                .cloned(),
                        );
                    }
                    for command in request.commands {
                        command_writes(command, &mut self.offline, &mut writes).map_err(|e| {
                            storage_error(ErrorSubject::Apply(log_id), ErrorVerb::Write, &e)
                        })?;
                    }
                    u32::try_from(n).unwrap_or(u32::MAX)
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(log_id), m);
                    membership_changed = true;
                    0
                }
            };
            responses.push(pb::Response { applied_commands });
        }
        let Some(last) = last else {
            return Ok(responses);
        };
        writes.extend(applied_writes(
            Some(last),
            membership_changed.then_some(&self.membership),
        ));
        let store = self.store.clone();
        blocking(move || store.apply(&writes))
            .await
            .map_err(|e| storage_error(ErrorSubject::Apply(last), ErrorVerb::Write, &e))?;
        self.last_applied = Some(last);
        if let (Some((_, tx)), false) = (&self.remote, remote.is_empty()) {
            // The receiver is gone only while the server stops.
            let _ = tx.send(remote);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder<S> {
        SnapshotBuilder {
            store: self.store.clone(),
            files: self.files.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<u64>> {
        let file = self
            .files
            .incoming()
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, NodeInfo>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<u64>> {
        let fail = |e: &ClusterError| {
            storage_error(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let mut received = *snapshot;
        received
            .flush()
            .await
            .map_err(|e| fail(&ClusterError::io("received snapshot", e)))?;
        let mut received = received.into_std().await;
        let (store, files) = (self.store.clone(), self.files.clone());
        // The leader's snapshot id is kept in the metadata; the file name is ours.
        let installed = meta.clone();
        let stem = files.new_stem(meta.last_log_id.map(|id| id.index));
        let result = blocking(move || {
            received
                .seek(SeekFrom::Start(0))
                .map_err(|e| ClusterError::io("received snapshot", e))?;
            files.write(
                &stem,
                &installed,
                |out| {
                    std::io::copy(&mut received, out)
                        .map_err(|e| ClusterError::io("received snapshot", e))?;
                    Ok(())
                },
                |data| {
                    let file = std::fs::File::open(data)
                        .map_err(|e| ClusterError::io(data.display(), e))?;
                    store.import(&mut BufReader::with_capacity(1 << 20, file))?;
                    // The exported metadata may be ahead of the snapshot's (it is built
                    // beside applies): record exactly what the snapshot claims, so openraft
                    // and the store agree; later entries are applied again, harmlessly.
                    store.apply(&applied_writes(
                        installed.last_log_id,
                        Some(&installed.last_membership),
                    ))?;
                    Ok(())
                },
            )?;
            let offline = OfflineSessions::load(&*store)?;
            files.clear_incoming();
            Ok::<_, ClusterError>(offline)
        })
        .await;
        self.offline = result.map_err(|e| fail(&e))?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        tracing::info!(snapshot = %meta, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        self.files
            .open_current()
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e))
    }
}

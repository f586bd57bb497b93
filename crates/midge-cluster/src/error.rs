//! Errors of the cluster layer, each mapped to the MQTT 5 reason code a client should see.

use midge_codec::ReasonCode;
use midge_store::StoreError;
use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// This node is not the Raft leader, so it cannot commit (`leader`: the one it knows of).
    #[error("not the Raft leader (leader: {leader:?})")]
    NotLeader {
        /// The current leader's id, if known.
        leader: Option<u64>,
    },
    /// A proposal was not committed in time: no quorum is reachable. Its outcome is unknown
    /// (it may still commit later).
    #[error("not committed within {0:?}: no quorum")]
    CommitTimeout(std::time::Duration),
    /// The node is shutting down (or has stopped); nothing more is committed.
    #[error("the cluster node is shutting down")]
    Shutdown,
    /// The disk is full: writes are refused until space is freed.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record could not be decoded.
    #[error("corrupt record in {table} at key {key}: {reason}")]
    Corrupt {
        /// The table (column family) or file.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot file or the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Openraft stopped with a fatal error (storage failure or panic).
    #[error("raft failed: {0}")]
    Raft(String),
    /// A membership change was rejected.
    #[error("membership change rejected: {0}")]
    Membership(String),
    /// The configuration is invalid.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
}

impl ClusterError {
    /// The MQTT 5 reason code for a client whose request needed this operation. Unavailable
    /// quorum maps to 0x88 (Server unavailable), a full disk to 0x97 (Quota exceeded), a
    /// stopping node to 0x8B (Server shutting down); everything else to 0x80. The server picks
    /// what the packet at hand allows (PUBACK has no 0x88: it withholds the ack or uses 0x80).
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            ClusterError::NotLeader { .. } | ClusterError::CommitTimeout(_) => {
                ReasonCode::ServerUnavailable
            }
            ClusterError::Shutdown => ReasonCode::ServerShuttingDown,
            ClusterError::StorageFull(_) => ReasonCode::QuotaExceeded,
            ClusterError::Store(e) if is_storage_full(&e.to_string()) => ReasonCode::QuotaExceeded,
            ClusterError::Raft(m) if is_storage_full(m) => ReasonCode::QuotaExceeded,
            ClusterError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                ReasonCode::QuotaExceeded
            }
            ClusterError::Store(_)
            | ClusterError::Corrupt { .. }
            | ClusterError::Io { .. }
            | ClusterError::Raft(_)
            | ClusterError::Membership(_)
            | ClusterError::Config(_) => ReasonCode::UnspecifiedError,
        }
    }

    /// True if the same request may succeed later on this node or another (no leader, no
    /// quorum); false if the node or its storage is broken or stopping.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClusterError::NotLeader { .. } | ClusterError::CommitTimeout(_)
        )
    }

    /// The same error for another waiter of the same batch (I/O and store errors, which
    /// cannot be cloned, become their message with the same reason code).
    pub(crate) fn duplicate(&self) -> ClusterError {
        match self {
            ClusterError::NotLeader { leader } => ClusterError::NotLeader { leader: *leader },
            ClusterError::CommitTimeout(d) => ClusterError::CommitTimeout(*d),
            ClusterError::Shutdown => ClusterError::Shutdown,
            ClusterError::Corrupt { table, key, reason } => ClusterError::Corrupt {
                table,
                key: key.clone(),
                reason: reason.clone(),
            },
            ClusterError::Membership(m) => ClusterError::Membership(m.clone()),
            ClusterError::Config(m) => ClusterError::Config(m.clone()),
            other if other.reason_code() == ReasonCode::QuotaExceeded => {
                ClusterError::StorageFull(other.to_string())
            }
            other => ClusterError::Raft(other.to_string()),
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> ClusterError {
        ClusterError::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// Storage errors arrive as text once openraft has wrapped them; ENOSPC reads the same on
/// every Linux libc and in RocksDB's messages.
fn is_storage_full(message: &str) -> bool {
    message.contains("No space left on device") || message.contains("storage full")
}

impl From<Fatal<u64>> for ClusterError {
    fn from(e: Fatal<u64>) -> ClusterError {
        match e {
            Fatal::Stopped => ClusterError::Shutdown,
            other => {
                let message = other.to_string();
                if is_storage_full(&message) {
                    ClusterError::StorageFull(message)
                } else {
                    ClusterError::Raft(message)
                }
            }
        }
    }
}

impl From<ClientWriteError<u64, crate::NodeInfo>> for ClusterError {
    fn from(e: ClientWriteError<u64, crate::NodeInfo>) -> ClusterError {
        match e {
            ClientWriteError::ForwardToLeader(f) => ClusterError::NotLeader {
                leader: f.leader_id,
            },
            ClientWriteError::ChangeMembershipError(m) => ClusterError::Membership(m.to_string()),
        }
    }
}

impl<E> From<RaftError<u64, E>> for ClusterError
where
    E: Into<ClusterError> + std::fmt::Debug,
{
    fn from(e: RaftError<u64, E>) -> ClusterError {
        match e {
            RaftError::APIError(api) => api.into(),
            RaftError::Fatal(fatal) => fatal.into(),
        }
    }
}

impl From<InitializeError<u64, crate::NodeInfo>> for ClusterError {
    fn from(e: InitializeError<u64, crate::NodeInfo>) -> ClusterError {
        ClusterError::Membership(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_follow_the_partition_policy() {
        assert_eq!(
            ClusterError::NotLeader { leader: Some(2) }.reason_code(),
            ReasonCode::ServerUnavailable
        );
        assert_eq!(
            ClusterError::CommitTimeout(std::time::Duration::from_secs(1)).reason_code(),
            ReasonCode::ServerUnavailable
        );
        assert_eq!(
            ClusterError::StorageFull("x".into()).reason_code(),
            ReasonCode::QuotaExceeded
        );
        let enospc = StoreError::Rocks {
            path: "/data".into(),
            message: "IO error: No space left on device".into(),
        };
        assert_eq!(
            ClusterError::from(enospc).reason_code(),
            ReasonCode::QuotaExceeded
        );
        assert_eq!(
            ClusterError::Shutdown.reason_code(),
            ReasonCode::ServerShuttingDown
        );
        let corrupt = ClusterError::Corrupt {
            table: "retained",
            key: "a/b".into(),
            reason: "bad".into(),
        };
        assert_eq!(corrupt.reason_code(), ReasonCode::UnspecifiedError);
        assert!(corrupt.to_string().contains("retained"));
        assert!(ClusterError::NotLeader { leader: None }.is_transient());
        assert!(!ClusterError::Shutdown.is_transient());
    }

    #[test]
    fn fatal_stopped_is_shutdown() {
        assert!(matches!(
            ClusterError::from(Fatal::<u64>::Stopped),
            ClusterError::Shutdown
        ));
    }
}

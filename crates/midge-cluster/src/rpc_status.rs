//! Mapping between gRPC statuses and the errors of openraft and of this crate.

use crate::{ClusterError, NodeInfo, TypeConfig};
use openraft::error::{NetworkError, RPCError, RaftError, StreamingError, Timeout, Unreachable};
use openraft::network::RPCTypes;
use std::time::Duration;
use tonic::{Code, Status};

/// gRPC metadata set on a request one member forwarded to the leader: the leader answers it
/// itself or fails, never forwards it again (no loops while leadership moves).
pub(crate) const FORWARDED: &str = "midge-forwarded";

/// What a failed RPC to `target` means to openraft's replication.
pub(crate) fn rpc_error<E: std::error::Error>(
    status: &Status,
    rpc: (RPCTypes, u64, u64, Duration),
) -> RPCError<u64, NodeInfo, E> {
    let (action, id, target, timeout) = rpc;
    match status.code() {
        // Connection refused or reset, or the peer is stopping: back off before retrying.
        Code::Unavailable => RPCError::Unreachable(Unreachable::new(status)),
        Code::DeadlineExceeded | Code::Cancelled => RPCError::Timeout(Timeout {
            action,
            id,
            target,
            timeout,
        }),
        _ => RPCError::Network(NetworkError::new(status)),
    }
}

/// The same for a snapshot stream.
pub(crate) fn streaming_error<E: std::error::Error>(
    status: &Status,
) -> StreamingError<TypeConfig, E> {
    match status.code() {
        Code::Unavailable => StreamingError::Unreachable(Unreachable::new(status)),
        _ => StreamingError::Network(NetworkError::new(status)),
    }
}

/// The status a peer gets when its request failed here.
pub(crate) fn status_from_cluster(e: &ClusterError) -> Status {
    let message = e.to_string();
    match e {
        ClusterError::NotLeader { .. } => Status::failed_precondition(message),
        ClusterError::CommitTimeout(_) => Status::deadline_exceeded(message),
        ClusterError::Shutdown => Status::unavailable(message),
        ClusterError::Membership(_) | ClusterError::Config(_) => Status::invalid_argument(message),
        ClusterError::StorageFull(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

/// The status for an openraft error raised while serving a peer's RPC.
pub(crate) fn status_from_raft<E: std::fmt::Display>(e: &RaftError<u64, E>) -> Status {
    match e {
        RaftError::Fatal(f) => Status::unavailable(format!("raft stopped: {f}")),
        RaftError::APIError(api) => Status::internal(api.to_string()),
    }
}

/// What a failed call to the leader means here (the reason code a client gets follows).
pub(crate) fn cluster_from_status(status: &Status) -> ClusterError {
    let message = status.message().to_string();
    match status.code() {
        Code::FailedPrecondition | Code::Unavailable => ClusterError::NotLeader { leader: None },
        Code::DeadlineExceeded | Code::Cancelled => ClusterError::CommitTimeout(Duration::ZERO),
        Code::ResourceExhausted => ClusterError::StorageFull(message),
        Code::InvalidArgument => ClusterError::Membership(message),
        _ => ClusterError::Raft(format!("leader answered {:?}: {message}", status.code())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midge_codec::ReasonCode;
    use openraft::error::Infallible;

    #[test]
    fn unreachable_peers_back_off_and_slow_ones_time_out() {
        let rpc = (RPCTypes::Vote, 1, 2, Duration::from_millis(50));
        let e: RPCError<u64, NodeInfo, Infallible> =
            rpc_error(&Status::unavailable("refused"), rpc);
        assert!(matches!(e, RPCError::Unreachable(_)));
        let rpc = (RPCTypes::Vote, 1, 2, Duration::from_millis(50));
        let e: RPCError<u64, NodeInfo, Infallible> =
            rpc_error(&Status::deadline_exceeded("slow"), rpc);
        assert!(matches!(e, RPCError::Timeout(_)));
    }

    #[test]
    fn forwarded_failures_keep_their_reason_code() {
        for e in [
            ClusterError::NotLeader { leader: Some(3) },
            ClusterError::CommitTimeout(Duration::from_secs(1)),
            ClusterError::StorageFull("disk".into()),
        ] {
            let back = cluster_from_status(&status_from_cluster(&e));
            assert_eq!(back.reason_code(), e.reason_code(), "{e}");
            assert_eq!(back.is_transient(), e.is_transient(), "{e}");
        }
        assert_eq!(
            cluster_from_status(&Status::internal("x")).reason_code(),
            ReasonCode::UnspecifiedError
        );
    }
}

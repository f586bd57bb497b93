//! The Raft network: the seam where gRPC transport plugs in.
//!
//! Today a node runs alone, so every peer is unreachable. The cluster issue replaces
//! [`UnreachableNetwork`] with a factory that keeps one gRPC channel per peer (created in
//! `new_client` from `NodeInfo::raft_addr`, reused for every RPC) and maps
//! `AppendEntries` / `Vote` / snapshot streaming onto it; nothing else in this crate changes.

use crate::{NodeInfo, TypeConfig};
use openraft::error::{
    Fatal, InstallSnapshotError, RPCError, RaftError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{Snapshot, Vote};
use std::future::Future;

/// Why a peer could not be reached.
#[derive(Debug, Clone, thiserror::Error)]
#[error("node {target} is unreachable: no Raft transport yet (single-node mode)")]
pub struct PeerUnreachable {
    /// The peer's node id.
    pub target: u64,
}

/// A network factory for a node without transport: every RPC fails as unreachable.
#[derive(Debug, Clone, Default)]
pub struct UnreachableNetwork;

/// The "connection" to one unreachable peer.
#[derive(Debug, Clone)]
pub struct UnreachablePeer {
    target: u64,
}

impl UnreachablePeer {
    fn unreachable(&self) -> Unreachable {
        Unreachable::new(&PeerUnreachable {
            target: self.target,
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for UnreachableNetwork {
    type Network = UnreachablePeer;

    async fn new_client(&mut self, target: u64, _node: &NodeInfo) -> UnreachablePeer {
        UnreachablePeer { target }
    }
}

impl RaftNetwork<TypeConfig> for UnreachablePeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(RPCError::Unreachable(self.unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote<u64>,
        _snapshot: Snapshot<TypeConfig>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        Err(StreamingError::Unreachable(self.unreachable()))
    }
}

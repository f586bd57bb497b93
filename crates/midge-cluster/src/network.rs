//! The Raft network over gRPC: openraft's `RaftNetworkFactory` and `RaftNetwork` mapped onto
//! the `RaftService` of `proto/cluster.proto`.
//!
//! Every peer is reached through one long-lived channel (`PeerChannels`), connected lazily and
//! reconnected by tonic; openraft backs off exponentially from an unreachable peer. Each RPC
//! carries openraft's deadline (`RPCOption::hard_ttl`) as its gRPC timeout and is abandoned
//! locally when it passes. Snapshots are streamed from their file in chunks.

use crate::pb::raft_service_client::RaftServiceClient;
use crate::peer_channels::PeerChannels;
use crate::rpc_status::{rpc_error, streaming_error};
use crate::snapshot_stream::snapshot_chunks;
use crate::{pb, ClusterError, NodeInfo, TypeConfig};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{Snapshot, Vote};
use std::future::Future;
use std::time::Duration;
use tonic::transport::Channel;

/// First pause before retrying an unreachable peer; doubled per failure up to `BACKOFF_MAX`.
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Creates the connection to each peer openraft replicates to or asks for votes.
#[derive(Debug, Clone)]
pub struct GrpcNetwork {
    node_id: u64,
    channels: PeerChannels,
}

impl GrpcNetwork {
    /// The network of node `node_id`, sharing `channels` with the rest of the node.
    pub fn new(node_id: u64, channels: PeerChannels) -> GrpcNetwork {
        GrpcNetwork { node_id, channels }
    }
}

/// openraft's connection to one peer: a client on the peer's shared channel.
#[derive(Debug)]
pub struct GrpcPeer {
    node_id: u64,
    target: u64,
    /// `Err` when the peer's address cannot be used (every RPC then fails as unreachable).
    client: Result<RaftServiceClient<Channel>, String>,
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcPeer;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> GrpcPeer {
        let client = self
            .channels
            .client(&node.raft_addr)
            .map_err(|e: ClusterError| e.to_string());
        GrpcPeer {
            node_id: self.node_id,
            target,
            client,
        }
    }
}

/// Why a peer cannot be reached at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error("node {target}: {reason}")]
pub struct PeerUnreachable {
    /// The peer's node id.
    pub target: u64,
    /// What is wrong with its address.
    pub reason: String,
}

impl GrpcPeer {
    fn client(&self) -> Result<RaftServiceClient<Channel>, Unreachable> {
        self.client.clone().map_err(|reason| {
            Unreachable::new(&PeerUnreachable {
                target: self.target,
                reason,
            })
        })
    }

    /// Runs `call` with openraft's deadline; maps a failed status for `action`.
    async fn call<T, E, F>(
        &self,
        action: RPCTypes,
        ttl: Duration,
        call: F,
    ) -> Result<T, RPCError<u64, NodeInfo, E>>
    where
        E: std::error::Error,
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let rpc = (action, self.node_id, self.target, ttl);
        match tokio::time::timeout(ttl, call).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => Err(rpc_error(&status, rpc)),
            Err(_) => Err(rpc_error(
                &tonic::Status::deadline_exceeded("deadline"),
                rpc,
            )),
        }
    }
}

fn with_deadline<T>(message: T, ttl: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(ttl);
    request
}

fn bad_reply<E: std::error::Error>(
    e: &(impl std::error::Error + 'static),
) -> RPCError<u64, NodeInfo, E> {
    RPCError::Network(NetworkError::new(e))
}

impl RaftNetwork<TypeConfig> for GrpcPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let mut client = self.client()?;
        let ttl = option.hard_ttl();
        let request = with_deadline(pb::AppendEntriesRpc::from(rpc), ttl);
        let reply = self
            .call(RPCTypes::AppendEntries, ttl, client.append_entries(request))
            .await?;
        AppendEntriesResponse::try_from(reply).map_err(|e| bad_reply(&e))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        // Only reached through openraft's default `full_snapshot`, which this type replaces.
        Err(RPCError::Network(NetworkError::new(&PeerUnreachable {
            target: self.target,
            reason: "chunked snapshots are not used: snapshots go as one stream".to_string(),
        })))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let mut client = self.client()?;
        let ttl = option.hard_ttl();
        let request = with_deadline(pb::VoteRpc::from(&rpc), ttl);
        let reply = self.call(RPCTypes::Vote, ttl, client.vote(request)).await?;
        VoteResponse::try_from(reply).map_err(|e| bad_reply(&e))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<u64>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        let mut client = self.client()?;
        tracing::info!(target = self.target, snapshot = %snapshot.meta, "sending a snapshot");
        // No overall deadline: a large snapshot takes as long as it takes. HTTP/2 keepalive
        // ends the stream when the peer goes silent, and openraft cancels it when replication
        // to this peer stops.
        let chunks = snapshot_chunks(&vote, &snapshot.meta, *snapshot.snapshot);
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            reply = client.install_snapshot(chunks) => match reply {
                Ok(reply) => {
                    let vote = reply
                        .into_inner()
                        .vote
                        .map(Vote::from)
                        .ok_or_else(|| StreamingError::Network(NetworkError::new(
                            &PeerUnreachable {
                                target: self.target,
                                reason: "snapshot reply without a vote".to_string(),
                            },
                        )))?;
                    Ok(SnapshotResponse::new(vote))
                }
                Err(status) => Err(streaming_error(&status)),
            },
        }
    }

    fn backoff(&self) -> Backoff {
        let delays =
            std::iter::successors(Some(BACKOFF_START), |d| Some((*d * 2).min(BACKOFF_MAX)));
        Backoff::new(delays)
    }
}

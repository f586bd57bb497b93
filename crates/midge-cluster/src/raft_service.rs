//! The gRPC service a node serves on its cluster address: peers' Raft RPCs go to the local
//! openraft instance; membership changes and forwarded proposals go through
//! [`ClusterControl`].

use crate::control::ClusterControl;
use crate::pb::raft_service_server::{RaftService, RaftServiceServer};
use crate::pb::snapshot_chunk::Part;
use crate::peer_channels::MAX_MESSAGE_BYTES;
use crate::rpc_status::{status_from_cluster, status_from_raft, FORWARDED};
use crate::{pb, MidgeRaft, NodeInfo};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{Snapshot, SnapshotMeta, Vote};
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

/// Serves one node's `RaftService`.
pub(crate) struct RaftRpcServer {
    raft: MidgeRaft,
    control: ClusterControl,
}

impl RaftRpcServer {
    /// The tonic service of `control`'s node.
    pub(crate) fn service(control: ClusterControl) -> RaftServiceServer<RaftRpcServer> {
        RaftServiceServer::new(RaftRpcServer {
            raft: control.raft.clone(),
            control,
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

fn bad_request(e: &impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

fn forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED)
}

#[tonic::async_trait]
impl RaftService for RaftRpcServer {
    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRpc>,
    ) -> Result<Response<pb::AppendEntriesReply>, Status> {
        let rpc =
            AppendEntriesRequest::try_from(request.into_inner()).map_err(|e| bad_request(&e))?;
        let reply = self
            .raft
            .append_entries(rpc)
            .await
            .map_err(|e| status_from_raft(&e))?;
        Ok(Response::new(reply.into()))
    }

    async fn vote(&self, request: Request<pb::VoteRpc>) -> Result<Response<pb::VoteReply>, Status> {
        let rpc = VoteRequest::try_from(request.into_inner()).map_err(|e| bad_request(&e))?;
        let reply = self
            .raft
            .vote(rpc)
            .await
            .map_err(|e| status_from_raft(&e))?;
        Ok(Response::new((&reply).into()))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotReply>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await?.and_then(|c| c.part) {
            Some(Part::Header(h)) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "a snapshot stream starts with its header",
                ))
            }
        };
        let vote = Vote::from(
            header
                .vote
                .ok_or_else(|| Status::invalid_argument("snapshot header without a vote"))?,
        );
        let meta: SnapshotMeta<u64, NodeInfo> = header
            .meta
            .ok_or_else(|| Status::invalid_argument("snapshot header without metadata"))?
            .into();
        tracing::info!(snapshot = %meta, "receiving a snapshot");
        let mut file = self
            .raft
            .begin_receiving_snapshot()
            .await
            .map_err(|e| status_from_raft(&e))?;
        let mut received = 0u64;
        loop {
            match stream.message().await?.and_then(|c| c.part) {
                Some(Part::Data(data)) => {
                    file.write_all(&data)
                        .await
                        .map_err(|e| Status::internal(format!("writing the snapshot: {e}")))?;
                    received += data.len() as u64;
                }
                Some(Part::End(end)) if end.total_bytes == received => break,
                Some(Part::End(end)) => {
                    return Err(Status::data_loss(format!(
                        "snapshot stream ended after {received} of {} bytes",
                        end.total_bytes
                    )))
                }
                Some(Part::Header(_)) => {
                    return Err(Status::invalid_argument("a second snapshot header"))
                }
                None => return Err(Status::aborted("the snapshot stream ended early")),
            }
        }
        let reply = self
            .raft
            .install_full_snapshot(
                vote,
                Snapshot {
                    meta,
                    snapshot: file,
                },
            )
            .await
            .map_err(|e| Status::unavailable(format!("installing the snapshot: {e}")))?;
        Ok(Response::new(pb::SnapshotReply {
            vote: Some((&reply.vote).into()),
        }))
    }

    async fn join(&self, request: Request<pb::JoinRpc>) -> Result<Response<pb::JoinReply>, Status> {
        let forwarded = forwarded(&request);
        let rpc = request.into_inner();
        let node = rpc
            .node
            .ok_or_else(|| Status::invalid_argument("join without the node's addresses"))?;
        if rpc.node_id == 0 {
            return Err(Status::invalid_argument("node id 0 is not valid"));
        }
        let joined = self
            .control
            .join_routed(rpc.node_id, node.into(), forwarded)
            .await
            .map_err(|e| status_from_cluster(&e))?;
        Ok(Response::new(pb::JoinReply {
            leader_id: joined.leader,
            voter: joined.voter,
        }))
    }

    async fn leave(
        &self,
        request: Request<pb::LeaveRpc>,
    ) -> Result<Response<pb::LeaveReply>, Status> {
        let forwarded = forwarded(&request);
        self.control
            .leave_routed(request.into_inner().node_id, forwarded)
            .await
            .map_err(|e| status_from_cluster(&e))?;
        Ok(Response::new(pb::LeaveReply {}))
    }

    async fn propose(
        &self,
        request: Request<pb::ProposeRpc>,
    ) -> Result<Response<pb::ProposeReply>, Status> {
        let forwarded = forwarded(&request);
        let proposal = request
            .into_inner()
            .request
            .ok_or_else(|| Status::invalid_argument("propose without a request"))?;
        self.control
            .propose_routed(proposal, forwarded)
            .await
            .map_err(|e| status_from_cluster(&e))?;
        Ok(Response::new(pb::ProposeReply {}))
    }
}

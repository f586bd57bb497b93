//! Membership changes and forwarded proposals: carried out by the leader, forwarded to it by
//! any other member.

use crate::cluster_status::ClusterStatus;
use crate::pb::raft_service_client::RaftServiceClient;
use crate::peer_channels::PeerChannels;
use crate::rpc_status::{cluster_from_status, FORWARDED};
use crate::{pb, ClusterError, MidgeRaft, NodeInfo};
use openraft::ChangeMembers;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// How long a new learner may take to catch up before it is made a voter anyway.
const CATCH_UP: Duration = Duration::from_secs(30);
/// Deadline of a forwarded membership change (it includes the learner catching up).
const FORWARD_CHANGE: Duration = Duration::from_secs(60);

/// How a join ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The leader that carried it out.
    pub leader: u64,
    /// True when the node is a voter, false when it stays a learner.
    pub voter: bool,
}

/// The membership and proposal operations of a node; cheap to clone.
#[derive(Clone)]
pub struct ClusterControl {
    pub(crate) node_id: u64,
    pub(crate) raft: MidgeRaft,
    pub(crate) channels: PeerChannels,
    /// Most voters; nodes joining beyond it stay learners.
    pub(crate) max_voters: usize,
    /// Deadline of a forwarded proposal.
    pub(crate) commit_timeout: Duration,
    /// One membership change at a time on this node.
    pub(crate) changes: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ClusterControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterControl")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Where a request goes: handled here (this node leads) or sent to the leader.
enum Route {
    Here,
    Leader(u64, RaftServiceClient<Channel>),
}

impl ClusterControl {
    /// The cluster as this node sees it.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus::of(&self.raft.metrics().borrow())
    }

    /// Adds node `node_id` at `node` as a learner and, while the group has fewer voters than
    /// `cluster.voters`, makes it a voter. Updates the address of a known member. Any member
    /// may be asked: it forwards to the leader.
    pub async fn join(&self, node_id: u64, node: NodeInfo) -> Result<Joined, ClusterError> {
        self.join_routed(node_id, node, false).await
    }

    /// Removes node `node_id` (voter or learner, alive or dead) from the group, then makes a
    /// learner a voter if the group is below `cluster.voters`. Forwarded like [`Self::join`].
    pub async fn leave(&self, node_id: u64) -> Result<(), ClusterError> {
        self.leave_routed(node_id, false).await
    }

    pub(crate) async fn join_routed(
        &self,
        node_id: u64,
        node: NodeInfo,
        forwarded: bool,
    ) -> Result<Joined, ClusterError> {
        match self.route(forwarded)? {
            Route::Here => self.join_here(node_id, node).await,
            Route::Leader(leader, mut client) => {
                let request = forward(
                    pb::JoinRpc {
                        node_id,
                        node: Some((&node).into()),
                    },
                    FORWARD_CHANGE,
                );
                let reply = client
                    .join(request)
                    .await
                    .map_err(|s| cluster_from_status(&s))?
                    .into_inner();
                Ok(Joined {
                    leader: if reply.leader_id == 0 {
                        leader
                    } else {
                        reply.leader_id
                    },
                    voter: reply.voter,
                })
            }
        }
    }

    pub(crate) async fn leave_routed(
        &self,
        node_id: u64,
        forwarded: bool,
    ) -> Result<(), ClusterError> {
        match self.route(forwarded)? {
            Route::Here => self.leave_here(node_id).await,
            Route::Leader(_, mut client) => {
                client
                    .leave(forward(pb::LeaveRpc { node_id }, FORWARD_CHANGE))
                    .await
                    .map_err(|s| cluster_from_status(&s))?;
                Ok(())
            }
        }
    }

    /// Proposes `request` (decided on another node, or on this one when it does not lead) to
    /// the leader and waits until it is applied.
    pub(crate) async fn propose_routed(
        &self,
        request: pb::Request,
        forwarded: bool,
    ) -> Result<(), ClusterError> {
        match self.route(forwarded)? {
            Route::Here => {
                match tokio::time::timeout(self.commit_timeout, self.raft.client_write(request))
                    .await
                {
                    Err(_) => Err(ClusterError::CommitTimeout(self.commit_timeout)),
                    Ok(result) => result.map(|_| ()).map_err(ClusterError::from),
                }
            }
            Route::Leader(_, mut client) => {
                let call = client.propose(forward(
                    pb::ProposeRpc {
                        request: Some(request),
                    },
                    self.commit_timeout,
                ));
                match tokio::time::timeout(self.commit_timeout, call).await {
                    Err(_) => Err(ClusterError::CommitTimeout(self.commit_timeout)),
                    Ok(Err(status)) => Err(cluster_from_status(&status)),
                    Ok(Ok(_)) => Ok(()),
                }
            }
        }
    }

    fn route(&self, forwarded: bool) -> Result<Route, ClusterError> {
        let metrics = self.raft.metrics().borrow().clone();
        match metrics.current_leader {
            Some(leader) if leader == self.node_id => Ok(Route::Here),
            Some(leader) if !forwarded => {
                let node = metrics
                    .membership_config
                    .membership()
                    .get_node(&leader)
                    .cloned()
                    .ok_or(ClusterError::NotLeader {
                        leader: Some(leader),
                    })?;
                Ok(Route::Leader(
                    leader,
                    self.channels.client(&node.raft_addr)?,
                ))
            }
            leader => Err(ClusterError::NotLeader { leader }),
        }
    }

    async fn join_here(&self, node_id: u64, node: NodeInfo) -> Result<Joined, ClusterError> {
        let _one_at_a_time = self.changes.lock().await;
        let status = self.status();
        match status.members.iter().find(|m| m.node_id == node_id) {
            Some(member) if member.node == node => {}
            Some(_) => {
                tracing::info!(node_id, %node, "updating a member's addresses");
                let nodes = BTreeMap::from([(node_id, node.clone())]);
                self.raft
                    .change_membership(ChangeMembers::SetNodes(nodes), true)
                    .await?;
            }
            None => {
                tracing::info!(node_id, %node, "adding a learner");
                let added = self.raft.add_learner(node_id, node.clone(), false).await?;
                let index = added.log_id.index;
                let caught_up = self
                    .raft
                    .wait(Some(CATCH_UP))
                    .metrics(
                        |m| {
                            m.replication
                                .as_ref()
                                .and_then(|r| r.get(&node_id).copied().flatten())
                                .is_some_and(|matched| matched.index >= index)
                        },
                        "learner caught up",
                    )
                    .await;
                if let Err(e) = caught_up {
                    tracing::warn!(node_id, error = %e, "the new learner has not caught up");
                }
            }
        }
        let voter = self.promote_if_room(node_id).await?;
        Ok(Joined {
            leader: self.node_id,
            voter,
        })
    }

    /// Makes `node_id` a voter when there is room; returns whether it is a voter.
    async fn promote_if_room(&self, node_id: u64) -> Result<bool, ClusterError> {
        let voters = self.status().voters();
        if voters.contains(&node_id) {
            return Ok(true);
        }
        if voters.len() >= self.max_voters {
            tracing::info!(node_id, voters = ?voters, "the group has all its voters: staying a learner");
            return Ok(false);
        }
        tracing::info!(node_id, "promoting to voter");
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
            .await?;
        Ok(true)
    }

    async fn leave_here(&self, node_id: u64) -> Result<(), ClusterError> {
        let _one_at_a_time = self.changes.lock().await;
        let status = self.status();
        let Some(member) = status.members.iter().find(|m| m.node_id == node_id) else {
            return Ok(());
        };
        let ids = BTreeSet::from([node_id]);
        tracing::info!(node_id, voter = member.voter, "removing a member");
        let change = if member.voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.raft.change_membership(change, false).await?;
        // A learner takes the place of a removed voter.
        if member.voter && node_id != self.node_id {
            let learner = self
                .status()
                .members
                .into_iter()
                .find(|m| !m.voter)
                .map(|m| m.node_id);
            if let Some(learner) = learner {
                self.promote_if_room(learner).await?;
            }
        }
        Ok(())
    }
}

fn forward<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
        .metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    request
}

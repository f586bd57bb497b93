//! The handle the broker uses to make changes durable.

use crate::pb::command::Op;
use crate::pb_impl::command_from_op;
use crate::{pb, ClusterError, WallClock};
use midge_core::DurableOp;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// One `propose` call on its way to the batching task.
#[derive(Debug)]
pub(crate) struct Proposal {
    /// Its commands, kept together in one Raft entry.
    pub(crate) commands: Vec<pb::Command>,
    /// Completed when the entry holding them is committed and applied, or failed.
    pub(crate) done: oneshot::Sender<Result<(), ClusterError>>,
}

/// A cloneable handle that proposes durable changes to the Raft group. Proposals from every
/// clone are funnelled to one batching task, which merges whatever is queued into one Raft
/// entry (group commit) and keeps a few entries in flight.
#[derive(Debug, Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Proposal>,
    /// Stamped on every `SessionPut`: the node that writes a session owns it.
    node_id: u64,
}

impl Proposer {
    pub(crate) fn new(tx: mpsc::Sender<Proposal>, node_id: u64) -> Proposer {
        Proposer { tx, node_id }
    }

    /// Proposes `ops` (in order, in one Raft entry) stamped with `now`; the future resolves
    /// once they are committed and applied. Encoding happens here, so the future borrows
    /// nothing. Proposals complete in the order they were queued. Fails with
    /// `ClusterError::NotLeader` / `CommitTimeout` when no quorum commits them (their outcome
    /// is then unknown) and `Shutdown` once the node stops.
    pub fn propose(
        &self,
        ops: Vec<DurableOp>,
        now: WallClock,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send + 'static {
        let commands: Vec<pb::Command> = ops
            .iter()
            .map(|op| {
                let mut command = command_from_op(op, &now);
                if let Some(Op::SessionPut(put)) = &mut command.op {
                    put.owner_node = self.node_id;
                }
                command
            })
            .collect();
        self.send(commands)
    }

    /// Proposes that the cluster lets go of lost node `node` (its start `incarnation`), whose
    /// sessions this node adopted and whose routes it announced: once applied, every node
    /// forgets the lost node's routes (`Remote::NodeReleased`). Fails as `propose` does.
    pub fn release(
        &self,
        node: u64,
        incarnation: u64,
        now: WallClock,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send + 'static {
        self.send(vec![pb::Command {
            timestamp_ms: now.unix_ms,
            shard_key: String::new(),
            op: Some(Op::NodeReleased(pb::NodeReleased {
                node,
                incarnation,
                adopter: self.node_id,
            })),
        }])
    }

    fn send(
        &self,
        commands: Vec<pb::Command>,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            if commands.is_empty() {
                return Ok(());
            }
            let (done, rx) = oneshot::channel();
            tx.send(Proposal { commands, done })
                .await
                .map_err(|_| ClusterError::Shutdown)?;
            rx.await.map_err(|_| ClusterError::Shutdown)?
        }
    }
}

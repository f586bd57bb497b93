//! The handle the broker uses to make changes durable.

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
}

impl Proposer {
    pub(crate) fn new(tx: mpsc::Sender<Proposal>) -> Proposer {
        Proposer { tx }
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
        let commands: Vec<pb::Command> = ops.iter().map(|op| command_from_op(op, &now)).collect();
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

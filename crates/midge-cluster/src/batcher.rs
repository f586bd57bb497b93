//! The group-commit task behind every [`crate::Proposer`].

use crate::control::ClusterControl;
use crate::metrics::SharedCounters;
use crate::proposer::Proposal;
use crate::{pb, ClusterError, MidgeRaft};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

/// Merges queued proposals into Raft entries: it takes one proposal, waits for a free
/// in-flight slot (while it waits, more proposals queue up), then drains the queue up to
/// `max_batch` commands into one `client_write`. Up to `max_inflight` entries are in flight;
/// each completes its callers when openraft reports it applied.
pub(crate) struct Batcher {
    pub(crate) raft: MidgeRaft,
    pub(crate) rx: mpsc::Receiver<Proposal>,
    pub(crate) max_batch: usize,
    pub(crate) inflight: Arc<Semaphore>,
    pub(crate) commit_timeout: Duration,
    pub(crate) counters: Arc<SharedCounters>,
    pub(crate) stop: watch::Receiver<bool>,
    /// Forwards batches to the leader while this node does not lead.
    pub(crate) control: ClusterControl,
    /// Stamped on every entry (see `pb::Request::origin_id`).
    pub(crate) origin_id: u64,
}

/// Proposals merged into one entry.
#[derive(Default)]
struct Batch {
    commands: Vec<pb::Command>,
    waiters: Vec<Waiter>,
}

impl Batch {
    fn push(&mut self, proposal: Proposal) {
        if self.commands.is_empty() {
            self.commands = proposal.commands;
        } else {
            self.commands.extend(proposal.commands);
        }
        self.waiters.push(proposal.done);
    }
}

type Waiter = oneshot::Sender<Result<(), ClusterError>>;

/// Tells every caller of a batch how it ended.
fn complete(waiters: Vec<Waiter>, result: &Result<(), ClusterError>) {
    for waiter in waiters {
        // A caller that gave up waiting is no error.
        let _ = waiter.send(match result {
            Ok(()) => Ok(()),
            Err(e) => Err(e.duplicate()),
        });
    }
}

impl Batcher {
    /// Runs until stopped; queued proposals then fail with `ClusterError::Shutdown`.
    pub(crate) async fn run(mut self) {
        let mut carry: Option<Proposal> = None;
        loop {
            let first = match carry.take() {
                Some(p) => p,
                None => tokio::select! {
                    biased;
                    _ = self.stop.changed() => break,
                    p = self.rx.recv() => match p {
                        Some(p) => p,
                        None => break,
                    },
                },
            };
            let permit = tokio::select! {
                biased;
                _ = self.stop.changed() => {
                    carry = Some(first);
                    break;
                }
                permit = self.inflight.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => {
                        carry = Some(first);
                        break;
                    }
                },
            };
            let mut batch = Batch::default();
            batch.push(first);
            while batch.commands.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(p) if batch.commands.len() + p.commands.len() > self.max_batch => {
                        carry = Some(p);
                        break;
                    }
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            self.submit(batch, permit).await;
        }
        self.rx.close();
        let mut rest: Vec<Waiter> = carry.into_iter().map(|p| p.done).collect();
        while let Ok(p) = self.rx.try_recv() {
            rest.push(p.done);
        }
        complete(rest, &Err(ClusterError::Shutdown));
    }

    async fn submit(&self, batch: Batch, permit: OwnedSemaphorePermit) {
        let c = &self.counters;
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.proposals
            .fetch_add(batch.waiters.len() as u64, Ordering::Relaxed);
        c.commands
            .fetch_add(batch.commands.len() as u64, Ordering::Relaxed);
        let Batch { commands, waiters } = batch;
        let request = pb::Request {
            commands,
            origin_id: self.origin_id,
        };
        let leader = self.raft.metrics().borrow().current_leader;
        if leader != Some(self.control.node_id) {
            // The leader commits it. Waited for here, one batch at a time, so this node's
            // batches reach the log in the order they were proposed.
            let result = self.control.propose_routed(request, false).await;
            complete(waiters, &result);
            drop(permit);
            return;
        }
        // `client_write_ff` only queues the entry: the next batch can be submitted while this
        // one is being written, replicated and applied.
        match self.raft.client_write_ff(request).await {
            Err(fatal) => complete(waiters, &Err(fatal.into())),
            Ok(applied) => {
                let timeout = self.commit_timeout;
                tokio::spawn(async move {
                    let result = match tokio::time::timeout(timeout, applied).await {
                        Err(_) => Err(ClusterError::CommitTimeout(timeout)),
                        Ok(Err(_)) => Err(ClusterError::Shutdown),
                        Ok(Ok(Ok(_))) => Ok(()),
                        Ok(Ok(Err(e))) => Err(e.into()),
                    };
                    complete(waiters, &result);
                    drop(permit);
                });
            }
        }
    }
}

//! Group commit of the core's durable changes.
//!
//! The dispatch side ([`CommitQueue`], kept under the broker lock) gathers the `Persist` ops of
//! one critical section into a batch with the next sequence number and pushes it, in order,
//! onto an unbounded channel. One [`Committer`] task drains everything queued, proposes it as
//! ONE call (the cluster batches further), waits for it to be committed, and publishes the
//! highest committed sequence number through a [`CommitWatch`]. Connection writers holding an
//! acknowledgement for batch `seq` wait on that watch.

use crate::commit_watch::{CommitProgress, CommitPublisher, CommitStatus, CommitWatch};
use midge_codec::ReasonCode;
use midge_core::DurableOp;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

/// First pause before a failed proposal is retried; doubled on each further failure.
const RETRY_START: Duration = Duration::from_millis(100);
/// Longest pause between retries.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The ops of one critical section, numbered.
#[derive(Debug)]
pub(crate) struct DurableBatch {
    /// Strictly increasing from 1.
    pub(crate) seq: u64,
    /// In the order the core emitted them.
    pub(crate) ops: Vec<DurableOp>,
}

/// Why a proposal failed.
#[derive(Debug)]
pub(crate) struct ProposeError {
    /// The same ops may commit if proposed again (no quorum, commit timeout); false when the
    /// storage or the Raft node is broken or stopping.
    pub(crate) transient: bool,
    /// The MQTT 5 reason code of the failure (`ClusterError::reason_code`).
    pub(crate) reason: ReasonCode,
    /// What went wrong, for the log.
    pub(crate) message: String,
}

/// Makes ops durable, in order; a seam so the committer can be tested without RocksDB.
pub(crate) trait Propose: Send + 'static {
    /// Proposes `ops` as one unit; resolves once they are committed (or failed).
    fn propose(
        &self,
        ops: Vec<DurableOp>,
    ) -> impl Future<Output = Result<(), ProposeError>> + Send + 'static;
}

/// The dispatch side: numbers batches and queues them for the committer. Never blocks.
#[derive(Debug)]
pub(crate) struct CommitQueue {
    /// `None` once closed at shutdown.
    tx: Option<mpsc::UnboundedSender<DurableBatch>>,
    /// Ops of the batch being gathered (its number is `last_seq`).
    open: Vec<DurableOp>,
    /// The highest batch number handed out.
    last_seq: u64,
    watch: CommitWatch,
}

impl CommitQueue {
    /// Adds `op` to the batch being gathered.
    pub(crate) fn persist(&mut self, op: DurableOp) {
        if self.open.is_empty() {
            self.last_seq += 1;
        }
        self.open.push(op);
    }

    /// The batch an acknowledgement emitted now must wait for (it covers every op persisted
    /// so far), or `None` when that batch is already committed.
    pub(crate) fn hold_for(&self) -> Option<u64> {
        (self.watch.status(self.last_seq) != CommitStatus::Committed).then_some(self.last_seq)
    }

    /// Hands the gathered batch to the committer. Called at the end of every critical section
    /// of the broker lock, so a batch never waits for the next event.
    pub(crate) fn flush(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let batch = DurableBatch {
            seq: self.last_seq,
            ops: std::mem::take(&mut self.open),
        };
        let count = batch.ops.len();
        let queued = match &self.tx {
            Some(tx) => tx.send(batch).is_ok(),
            None => false,
        };
        if !queued {
            // Only after shutdown closed the queue; what waits for the batch is never sent.
            tracing::warn!("Dropping {count} durable change(s): the committer has stopped.");
        }
    }

    /// Flushes, then closes the queue: the committer ends once it has committed the rest.
    pub(crate) fn close(&mut self) {
        self.flush();
        self.tx = None;
    }

    /// A reader of the committer's progress, for a connection writer.
    pub(crate) fn watch(&self) -> CommitWatch {
        self.watch.clone()
    }
}

/// The task that proposes queued batches, one proposal at a time.
pub(crate) struct Committer<P> {
    rx: mpsc::UnboundedReceiver<DurableBatch>,
    proposer: P,
    progress: CommitPublisher,
    /// Set after a permanent failure: nothing more is proposed.
    broken: bool,
}

/// A connected queue and committer; spawn `Committer::run`.
pub(crate) fn commit_channel<P: Propose>(proposer: P) -> (CommitQueue, Committer<P>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (progress, watch) = CommitWatch::channel();
    let queue = CommitQueue {
        tx: Some(tx),
        open: Vec::new(),
        last_seq: 0,
        watch,
    };
    let committer = Committer {
        rx,
        proposer,
        progress,
        broken: false,
    };
    (queue, committer)
}

impl<P: Propose> Committer<P> {
    /// Runs until the queue is closed and everything in it is committed (or failed).
    ///
    /// When a proposal fails, every batch queued so far is marked failed: writers holding an
    /// acknowledgement for one of them close their connection without sending it (v5 clients
    /// get DISCONNECT 0x88 first). That is safe because nothing acknowledged was lost: the
    /// client still owns the message or request and retries it on reconnect. The core has
    /// already applied those changes in memory, though, so a retried request may be answered
    /// without a new change to persist; for its acknowledgement to be true, the failed ops
    /// must still reach the disk before anything later does. So after a transient failure
    /// (commit timeout) the same ops are proposed again, first and in order, merged with the
    /// batches queued since: applying them twice is harmless (every op is a put or a delete
    /// of fixed values), and a batch counts as committed once a retry covering it commits.
    /// After a permanent failure (storage error, Raft stopped) nothing can commit again in
    /// this process: every later batch fails at once, durable acknowledgements are never
    /// sent, and the broker keeps serving clean sessions and QoS 0 until it is restarted.
    pub(crate) async fn run(mut self) {
        let mut ops: Vec<DurableOp> = Vec::new();
        let mut through = 0;
        let mut retry_delay = RETRY_START;
        loop {
            if ops.is_empty() {
                let Some(batch) = self.rx.recv().await else {
                    break;
                };
                through = batch.seq;
                ops = batch.ops;
            }
            self.take_queued(&mut ops, &mut through);
            if self.broken {
                self.fail_through(through, ReasonCode::UnspecifiedError);
                ops.clear();
                continue;
            }
            let count = ops.len();
            match self.proposer.propose(ops.clone()).await {
                Ok(()) => {
                    tracing::trace!("Committed {count} durable change(s) through batch {through}.");
                    self.progress.send_modify(|p| p.committed = through);
                    ops.clear();
                    retry_delay = RETRY_START;
                }
                Err(err) => {
                    // Everything queued meanwhile is held behind the failed ops: fail it too.
                    self.take_queued(&mut ops, &mut through);
                    self.fail_through(through, err.reason);
                    if err.transient {
                        tracing::error!(
                            "Committing {count} durable change(s) failed: {}. Acknowledgements \
                             waiting for them were withheld and their connections closed (the \
                             clients retry); retrying in {} ms.",
                            err.message,
                            retry_delay.as_millis()
                        );
                        tokio::time::sleep(retry_delay).await;
                        retry_delay = (retry_delay * 2).min(RETRY_MAX);
                    } else {
                        tracing::error!(
                            "Durable storage failed: {}. Nothing more can be made durable until \
                             the broker is restarted: acknowledgements that need storage are \
                             withheld and their connections closed; clean sessions and QoS 0 \
                             keep working.",
                            err.message
                        );
                        self.broken = true;
                        ops.clear();
                    }
                }
            }
        }
    }

    /// Appends every batch already queued to `ops`.
    fn take_queued(&mut self, ops: &mut Vec<DurableOp>, through: &mut u64) {
        while let Ok(batch) = self.rx.try_recv() {
            *through = batch.seq;
            ops.extend(batch.ops);
        }
    }

    fn fail_through(&self, seq: u64, reason: ReasonCode) {
        self.progress.send_modify(|p: &mut CommitProgress| {
            p.failed_through = p.failed_through.max(seq);
            p.failure = reason;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::oneshot;

    /// A proposal the test answers by hand.
    type Pending = (Vec<DurableOp>, oneshot::Sender<Result<(), ProposeError>>);

    struct FakeProposer(mpsc::UnboundedSender<Pending>);

    impl Propose for FakeProposer {
        fn propose(
            &self,
            ops: Vec<DurableOp>,
        ) -> impl Future<Output = Result<(), ProposeError>> + Send + 'static {
            let (done, rx) = oneshot::channel();
            let _ = self.0.send((ops, done));
            async move {
                rx.await.unwrap_or(Err(ProposeError {
                    transient: false,
                    reason: ReasonCode::UnspecifiedError,
                    message: "test dropped the proposal".into(),
                }))
            }
        }
    }

    fn op(topic: &str) -> DurableOp {
        DurableOp::RetainedClear {
            topic: Arc::from(topic),
        }
    }

    fn topics(ops: &[DurableOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                DurableOp::RetainedClear { topic } => topic.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn start() -> (
        CommitQueue,
        mpsc::UnboundedReceiver<Pending>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (queue, committer) = commit_channel(FakeProposer(tx));
        (queue, rx, tokio::spawn(committer.run()))
    }

    fn failed(transient: bool) -> Result<(), ProposeError> {
        Err(ProposeError {
            transient,
            reason: ReasonCode::ServerUnavailable,
            message: "no quorum".into(),
        })
    }

    #[tokio::test]
    async fn batches_queued_during_a_proposal_go_as_one_in_order() {
        let (mut queue, mut proposals, task) = start();
        let mut watch = queue.watch();
        assert_eq!(queue.hold_for(), None, "nothing persisted yet");
        queue.persist(op("a"));
        queue.persist(op("b"));
        assert_eq!(queue.hold_for(), Some(1));
        queue.flush();
        let (ops, done) = proposals.recv().await.expect("first proposal");
        assert_eq!(topics(&ops), ["a", "b"]);
        // While it commits, two more critical sections queue a batch each.
        queue.persist(op("c"));
        queue.flush();
        queue.persist(op("d"));
        queue.flush();
        assert_eq!(queue.hold_for(), Some(3));
        done.send(Ok(())).expect("committer waits");
        assert_eq!(watch.wait(1).await, Ok(()));
        assert_eq!(watch.status(2), CommitStatus::Pending);
        let (ops, done) = proposals.recv().await.expect("merged proposal");
        assert_eq!(topics(&ops), ["c", "d"]);
        done.send(Ok(())).expect("committer waits");
        assert_eq!(watch.wait(3).await, Ok(()));
        assert_eq!(queue.hold_for(), None);
        queue.close();
        task.await.expect("committer ends once closed and drained");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_fails_waiters_and_retries_the_same_ops_first() {
        let (mut queue, mut proposals, task) = start();
        let mut watch = queue.watch();
        queue.persist(op("a"));
        queue.flush();
        let (_, done) = proposals.recv().await.expect("proposal");
        queue.persist(op("b"));
        queue.flush();
        done.send(failed(true)).expect("committer waits");
        assert!(watch.wait(1).await.is_err());
        assert!(watch.wait(2).await.is_err(), "queued behind the failure");
        queue.persist(op("c"));
        queue.flush();
        let (ops, done) = proposals.recv().await.expect("retry");
        assert_eq!(topics(&ops), ["a", "b", "c"]);
        done.send(Ok(())).expect("committer waits");
        assert_eq!(watch.wait(3).await, Ok(()));
        queue.close();
        task.await.expect("committer ends");
    }

    #[tokio::test]
    async fn a_permanent_failure_fails_everything_after_it_without_proposing() {
        let (mut queue, mut proposals, task) = start();
        let mut watch = queue.watch();
        queue.persist(op("a"));
        queue.flush();
        let (_, done) = proposals.recv().await.expect("proposal");
        done.send(failed(false)).expect("committer waits");
        assert!(watch.wait(1).await.is_err());
        queue.persist(op("b"));
        queue.flush();
        assert!(watch.wait(2).await.is_err());
        queue.close();
        task.await.expect("committer ends");
        assert!(proposals.try_recv().is_err(), "nothing proposed after it");
    }

    #[tokio::test]
    async fn closing_commits_what_was_queued_first() {
        let (mut queue, mut proposals, task) = start();
        let mut watch = queue.watch();
        queue.persist(op("last"));
        queue.close();
        let (ops, done) = proposals.recv().await.expect("proposal");
        assert_eq!(topics(&ops), ["last"]);
        done.send(Ok(())).expect("committer waits");
        task.await.expect("committer ends");
        assert_eq!(watch.wait(1).await, Ok(()));
        // Persisting after close is dropped, and nothing waiting for it is released.
        queue.persist(op("late"));
        queue.flush();
        assert!(watch.wait(2).await.is_err());
    }
}

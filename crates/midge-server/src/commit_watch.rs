//! How far durable state is committed, as seen by the connection writers that hold
//! acknowledgements back until it is.
//!
//! Every dispatch that persists something gets a batch sequence number (`seq`, from 1, strictly
//! increasing). The committer publishes two marks after each proposal: `committed` (every batch
//! up to it is durable) and `failed_through` (batches up to it were part of a proposal that
//! failed while their acknowledgements were being held).

use midge_codec::ReasonCode;
use tokio::sync::watch;

/// The committer's progress, published through a `tokio::sync::watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommitProgress {
    /// Every batch with `seq <= committed` is durable (0: none yet).
    pub(crate) committed: u64,
    /// Batches with `committed < seq <= failed_through` failed to commit: an acknowledgement
    /// waiting for one of them must never be sent.
    pub(crate) failed_through: u64,
    /// Why the latest failure happened, as the MQTT 5 reason code of the cluster error
    /// (0x88 no quorum or timeout, 0x97 disk full, 0x8B stopping, 0x80 anything else).
    pub(crate) failure: ReasonCode,
}

impl Default for CommitProgress {
    fn default() -> Self {
        CommitProgress {
            committed: 0,
            failed_through: 0,
            failure: ReasonCode::UnspecifiedError,
        }
    }
}

/// Where one batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitStatus {
    /// Durable: what waits for it may go.
    Committed,
    /// Not committed yet.
    Pending,
    /// Its proposal failed: what waits for it must be dropped.
    Failed,
}

impl CommitProgress {
    /// The status of batch `seq`. A batch whose proposal failed but which a retry committed
    /// later counts as committed: an acknowledgement released then is true.
    pub(crate) fn status(&self, seq: u64) -> CommitStatus {
        if seq <= self.committed {
            CommitStatus::Committed
        } else if seq <= self.failed_through {
            CommitStatus::Failed
        } else {
            CommitStatus::Pending
        }
    }
}

/// The committer's side: publishes progress.
pub(crate) type CommitPublisher = watch::Sender<CommitProgress>;

/// A reader of the committer's progress; cheap to clone (one per connection writer).
#[derive(Debug, Clone)]
pub(crate) struct CommitWatch {
    rx: watch::Receiver<CommitProgress>,
}

/// A held acknowledgement's batch did not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommitFailed {
    /// The cluster error's reason code (see [`CommitProgress::failure`]).
    pub(crate) reason: ReasonCode,
}

impl CommitWatch {
    /// A publisher and a first reader, with nothing committed.
    pub(crate) fn channel() -> (CommitPublisher, CommitWatch) {
        let (tx, rx) = watch::channel(CommitProgress::default());
        (tx, CommitWatch { rx })
    }

    /// Where batch `seq` stands now.
    pub(crate) fn status(&self, seq: u64) -> CommitStatus {
        self.rx.borrow().status(seq)
    }

    /// Waits until batch `seq` is committed (`Ok`) or failed. A committer that is gone (the
    /// server is stopping) commits nothing more: what it had not committed counts as failed.
    pub(crate) async fn wait(&mut self, seq: u64) -> Result<(), CommitFailed> {
        let settled = self
            .rx
            .wait_for(|p| p.status(seq) != CommitStatus::Pending)
            .await
            .map(|p| *p);
        match settled {
            Ok(p) if p.status(seq) == CommitStatus::Committed => Ok(()),
            Ok(p) => Err(CommitFailed { reason: p.failure }),
            Err(_) => {
                let p = *self.rx.borrow();
                match p.status(seq) {
                    CommitStatus::Committed => Ok(()),
                    CommitStatus::Failed => Err(CommitFailed { reason: p.failure }),
                    CommitStatus::Pending => Err(CommitFailed {
                        reason: ReasonCode::ServerShuttingDown,
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_both_marks() {
        let p = CommitProgress {
            committed: 3,
            failed_through: 5,
            ..CommitProgress::default()
        };
        assert_eq!(p.status(0), CommitStatus::Committed);
        assert_eq!(p.status(3), CommitStatus::Committed);
        assert_eq!(p.status(4), CommitStatus::Failed);
        assert_eq!(p.status(5), CommitStatus::Failed);
        assert_eq!(p.status(6), CommitStatus::Pending);
        // A retry that committed past the failure makes the failed batches durable after all.
        let p = CommitProgress {
            committed: 7,
            failed_through: 5,
            ..CommitProgress::default()
        };
        assert_eq!(p.status(4), CommitStatus::Committed);
    }

    #[tokio::test]
    async fn waiters_see_commit_failure_and_a_gone_committer() {
        let (tx, watch) = CommitWatch::channel();
        let mut a = watch.clone();
        let mut b = watch.clone();
        let wait_a = tokio::spawn(async move { a.wait(1).await });
        let wait_b = tokio::spawn(async move { b.wait(2).await });
        tx.send_modify(|p| p.committed = 1);
        assert_eq!(wait_a.await.expect("task"), Ok(()));
        tx.send_modify(|p| {
            p.failed_through = 2;
            p.failure = ReasonCode::QuotaExceeded;
        });
        let failed = CommitFailed {
            reason: ReasonCode::QuotaExceeded,
        };
        assert_eq!(wait_b.await.expect("task"), Err(failed));

        let mut c = watch.clone();
        let wait_c = tokio::spawn(async move { c.wait(3).await });
        drop(tx);
        let gone = CommitFailed {
            reason: ReasonCode::ServerShuttingDown,
        };
        assert_eq!(wait_c.await.expect("task"), Err(gone));
        let mut d = watch;
        assert_eq!(d.wait(1).await, Ok(()));
    }
}

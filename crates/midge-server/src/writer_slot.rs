//! A connection's writer as its reader sees it: a task while there is something to write, and
//! only the writer's fields while its queue is empty.
//!
//! A writer with its own task kept that task (a task cell with the parked writer in it) for the
//! whole life of a quiet connection. Now a writer whose queue stays empty for
//! [`crate::parkable::IDLE_AFTER`] ends its task and hands its fields back; the reading side,
//! which already waits for the writer to end, waits for its queue instead, and starts a new
//! task when something is queued. An idle connection has one task, not two.

use crate::connection_handle::Outbound;
use crate::writer::WriterExit;
use prometheus::IntGauge;
use std::any::Any;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::task::{JoinError, JoinHandle};

/// How a writer ended: what it returned, or why its task did not finish.
pub(crate) type WriterResult = Result<io::Result<WriterExit>, JoinError>;

/// What a writer task ends with.
pub(crate) enum WriterEnd {
    /// The writer is done: the connection closed, or writing failed.
    Exit(io::Result<WriterExit>),
    /// Its queue stayed empty for a while: its fields, to wait without a task.
    Idle(Box<dyn IdleWriter>),
}

/// A writer without a task: it can wait for its queue and start one.
pub(crate) trait IdleWriter: Send {
    /// Polls the queue for its next item (`None` once every sender is gone), registering `cx`.
    fn poll_queue(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>>;

    /// Starts a task writing `first` and what follows it.
    fn start(self: Box<Self>, first: Option<Outbound>) -> JoinHandle<WriterEnd>;

    /// The concrete writer, for a caller that knows its socket type.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;

    /// The concrete writer, to check its type.
    fn as_any(&self) -> &dyn Any;
}

enum State {
    Running(JoinHandle<WriterEnd>),
    Idle(Box<dyn IdleWriter>),
    /// The writer ended and its end was returned.
    Done,
}

/// A connection's writer. As a future it completes once, when the writer ends; until then
/// polling it also starts the writer's task whenever an idle writer's queue gets something.
pub(crate) struct WriterSlot {
    state: State,
    /// Counts idle writers (`midge_connections_parked{side="write"}`).
    idle: IntGauge,
}

impl WriterSlot {
    /// A writer with nothing to write yet; `idle` counts idle writers.
    pub(crate) fn idle(writer: Box<dyn IdleWriter>, idle: IntGauge) -> Self {
        idle.inc();
        WriterSlot {
            state: State::Idle(writer),
            idle,
        }
    }

    /// Whether the writer ended and that was returned already.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether the writer is idle (no task).
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle(_))
    }

    /// The writer, if it is idle.
    pub(crate) fn idle_writer(&self) -> Option<&dyn IdleWriter> {
        match &self.state {
            State::Idle(writer) => Some(writer.as_ref()),
            _ => None,
        }
    }

    /// Takes an idle writer's fields; `None` (and nothing changes) unless it is idle.
    pub(crate) fn take_idle(&mut self) -> Option<Box<dyn IdleWriter>> {
        if !self.is_idle() {
            return None;
        }
        let State::Idle(writer) = std::mem::replace(&mut self.state, State::Done) else {
            unreachable!("checked idle just above");
        };
        self.idle.dec();
        Some(writer)
    }

    /// Stops a running writer's task where it is.
    pub(crate) fn abort(&mut self) {
        if let State::Running(task) = &self.state {
            task.abort();
        }
    }
}

impl Drop for WriterSlot {
    fn drop(&mut self) {
        if self.is_idle() {
            self.idle.dec();
        }
    }
}

impl Future for WriterSlot {
    type Output = WriterResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WriterResult> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Running(task) => {
                    let end = ready!(Pin::new(task).poll(cx));
                    match end {
                        Ok(WriterEnd::Idle(writer)) => {
                            this.idle.inc();
                            this.state = State::Idle(writer);
                        }
                        Ok(WriterEnd::Exit(exit)) => {
                            this.state = State::Done;
                            return Poll::Ready(Ok(exit));
                        }
                        Err(err) => {
                            this.state = State::Done;
                            return Poll::Ready(Err(err));
                        }
                    }
                }
                State::Idle(writer) => {
                    let first = ready!(writer.poll_queue(cx));
                    let State::Idle(writer) = std::mem::replace(&mut this.state, State::Done)
                    else {
                        unreachable!("matched as idle just above");
                    };
                    this.idle.dec();
                    this.state = State::Running(writer.start(first));
                }
                State::Done => return Poll::Pending,
            }
        }
    }
}

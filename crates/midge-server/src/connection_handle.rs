//! The sending side of one connection, kept in the shared connection table.

use crate::commit_watch::CommitWatch;
use crate::outbound_queue::{queue, QueueRx, QueueTx, QueueWake};
use futures_util::task::AtomicWaker;
use midge_codec::{Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

/// What a connection's writer task is asked to do, in order.
// `Close` is sent once per connection; boxing `Packet` to shrink the enum would instead cost an
// allocation for every outgoing packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Encode and send this packet.
    Packet(Packet),
    /// Write everything before this, then send nothing more until durable batch `seq` is
    /// committed; if it fails, close the connection without sending what follows.
    WaitFor(u64),
    /// Write everything before this, then send nothing more until every ticket (a request to
    /// a peer: a route, a claim, a forward) is answered or abandoned.
    Gate(Vec<midge_cluster::Ticket>),
    /// Write everything before this, then call the notice (the core's `NotifyDrained`).
    Drained(DrainNotice),
    /// Flush everything before this, then close the socket.
    Close,
}

/// What a writer calls once everything queued before it is written to the socket.
pub(crate) struct DrainNotice(Box<dyn FnOnce() + Send>);

impl DrainNotice {
    /// Wraps `f`.
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> DrainNotice {
        DrainNotice(Box::new(f))
    }

    /// Calls it.
    pub(crate) fn notify(self) {
        (self.0)();
    }
}

impl std::fmt::Debug for DrainNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DrainNotice")
    }
}

/// A writer to wake once the caller is done queueing ([`ConnHandle::enqueue_all`]).
pub(crate) type WriterWake = QueueWake<Outbound, HandleShared>;

/// What happened to a packet handed to [`ConnHandle::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    /// Queued for the writer.
    Queued,
    /// A QoS 0 publish dropped because the client's unsent backlog is over the limit.
    DroppedSlowReader,
    /// The writer is gone (the connection is closing); nothing to do.
    WriterGone,
}

/// Queues packets for one connection's writer task. Sending never blocks, which is what lets
/// the broker lock be held while actions are dispatched. Clones share the same queue.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    tx: QueueTx<Outbound, HandleShared>,
}

/// What the handles and the writer of a connection share besides the queue, in the queue's
/// allocation (every connection has one, idle or not).
#[derive(Debug)]
pub(crate) struct HandleShared {
    /// Approximate bytes of QoS 0 publishes queued but not yet written to the socket.
    pending_qos0: AtomicUsize,
    max_pending_bytes: usize,
    /// QoS 0 publishes dropped by that guard over the connection's life.
    dropped_qos0: AtomicU64,
    /// Set when the connection must close: the reader stops reading then, even if the writer
    /// is stuck behind a client that does not read.
    close_requested: AtomicBool,
    /// The reader, woken when `close_requested` is set. A waker slot rather than a future, so
    /// a parked reader waits with no future at all.
    reader: AtomicWaker,
}

/// The receiving side, owned by the writer task.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) rx: QueueRx<Outbound, HandleShared>,
    /// The committer's progress, for `Outbound::WaitFor` (`None` without storage).
    pub(crate) commits: Option<CommitWatch>,
}

impl Outbox {
    /// Approximate bytes of QoS 0 publishes queued but not yet written to the socket: the
    /// writer counts down what it wrote.
    pub(crate) fn pending_qos0(&self) -> &AtomicUsize {
        &self.rx.extra().pending_qos0
    }
}

impl ConnHandle {
    /// A new queue; QoS 0 publishes are dropped once `max_pending_bytes` of them are unsent.
    /// `commits` is the committer's progress when storage is enabled.
    pub(crate) fn new(
        max_pending_bytes: usize,
        commits: Option<CommitWatch>,
    ) -> (ConnHandle, Outbox) {
        let (tx, rx) = queue(HandleShared {
            pending_qos0: AtomicUsize::new(0),
            max_pending_bytes,
            dropped_qos0: AtomicU64::new(0),
            close_requested: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        });
        (ConnHandle { tx }, Outbox { rx, commits })
    }

    fn shared(&self) -> &HandleShared {
        self.tx.extra()
    }

    /// Queues `packet`, unless it is a QoS 0 publish to a client that is not keeping up. QoS 1
    /// and 2 need no such guard: the core bounds them with its inflight window and queue.
    pub(crate) fn send(&self, packet: Packet) -> SendOutcome {
        let (outcome, wake) = self.enqueue(packet);
        if let Some(wake) = wake {
            wake.wake();
        }
        outcome
    }

    fn enqueue(&self, packet: Packet) -> (SendOutcome, Option<WriterWake>) {
        let Some(cost) = self.admit(&packet, 0) else {
            return (SendOutcome::DroppedSlowReader, None);
        };
        self.shared()
            .pending_qos0
            .fetch_add(cost, Ordering::Relaxed);
        match self.tx.push(Outbound::Packet(packet)) {
            Ok(wake) => (SendOutcome::Queued, wake),
            Err(_) => {
                self.shared()
                    .pending_qos0
                    .fetch_sub(cost, Ordering::Relaxed);
                (SendOutcome::WriterGone, None)
            }
        }
    }

    /// The slow-reader guard: `Some(bytes the packet counts)` if it may be queued, with
    /// `staged` bytes of QoS 0 publishes about to be queued ahead of it; `None` (and counted as
    /// dropped) if it is a QoS 0 publish that would take the unsent backlog over the limit.
    pub(crate) fn admit(&self, packet: &Packet, staged: usize) -> Option<usize> {
        let cost = qos0_cost(packet);
        if cost > 0 {
            let pending = self.shared().pending_qos0.load(Ordering::Relaxed);
            // One dispatcher at a time (the broker lock), so check-then-add does not race
            // with another sender; the writer only ever subtracts.
            if pending.saturating_add(staged).saturating_add(cost) > self.shared().max_pending_bytes
            {
                self.shared().dropped_qos0.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        Some(cost)
    }

    /// Queues all of `items` (leaving it empty) under one lock; `qos0_bytes` is what
    /// [`ConnHandle::admit`] counted for them. Returns the wake-up the writer needs, if any.
    /// If the writer is gone the items are dropped, like [`ConnHandle::send`] drops them.
    pub(crate) fn enqueue_all(
        &self,
        items: &mut Vec<Outbound>,
        qos0_bytes: usize,
    ) -> Option<WriterWake> {
        self.shared()
            .pending_qos0
            .fetch_add(qos0_bytes, Ordering::Relaxed);
        match self.tx.push_all(items) {
            Ok(wake) => wake,
            Err(()) => {
                items.clear();
                self.shared()
                    .pending_qos0
                    .fetch_sub(qos0_bytes, Ordering::Relaxed);
                None
            }
        }
    }

    /// Queues a marker (`WaitFor`, `Gate` or `Drained`), which the writer acts on once
    /// everything queued before it is written.
    pub(crate) fn mark(&self, marker: Outbound) {
        debug_assert!(is_marker(&marker));
        // An error means the writer is gone; what follows is dropped the same way, and a
        // drain notice is moot.
        let _ = self.tx.send(marker);
    }

    /// How many QoS 0 publishes the slow-reader guard dropped so far.
    pub(crate) fn dropped_qos0(&self) -> u64 {
        self.shared().dropped_qos0.load(Ordering::Relaxed)
    }

    /// Bytes the slow-reader guard counts as unsent now.
    #[cfg(test)]
    pub(crate) fn pending_qos0(&self) -> usize {
        self.shared().pending_qos0.load(Ordering::Relaxed)
    }

    /// Asks the writer to flush what is queued and close, and wakes the reader.
    pub(crate) fn close(&self) {
        // An error means the writer already finished, which is what we are asking for.
        let _ = self.tx.send(Outbound::Close);
        self.request_close();
    }

    /// Wakes the reader to stop reading (the `Close` itself is queued by the caller).
    pub(crate) fn request_close(&self) {
        self.shared().close_requested.store(true, Ordering::Release);
        self.shared().reader.wake();
    }

    /// Completes once [`ConnHandle::close`] was called on any clone (including before this).
    pub(crate) async fn close_requested(&self) {
        std::future::poll_fn(|cx| self.poll_close_requested(cx)).await;
    }

    /// Ready once [`ConnHandle::close`] was called on any clone; until then, registers `cx`
    /// to be woken when it is. Only the connection's reader waits for this.
    pub(crate) fn poll_close_requested(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shared().close_requested.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        // Registered before looking again: a close after the look below wakes this waker.
        self.shared().reader.register(cx.waker());
        if self.shared().close_requested.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// True for the items [`ConnHandle::mark`] queues: neither a packet (which goes through the
/// slow-reader guard) nor `Close` (which also wakes the reader).
pub(crate) fn is_marker(item: &Outbound) -> bool {
    matches!(
        item,
        Outbound::WaitFor(_) | Outbound::Gate(_) | Outbound::Drained(_)
    )
}

/// Bytes a packet counts against the slow-reader limit: topic plus payload plus a small
/// allowance for headers, for QoS 0 publishes only. An estimate is enough for a memory guard
/// and avoids computing the exact encoded size under the broker lock.
pub(crate) fn qos0_cost(packet: &Packet) -> usize {
    match packet {
        Packet::Publish(p) if p.qos == QoS::AtMostOnce => p.topic.len() + p.payload.len() + 16,
        _ => 0,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::Publish;

    /// A PUBLISH to `t` with `payload` zero bytes (a packet id at QoS > 0).
    pub(crate) fn publish(qos: QoS, payload: usize) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: "t".into(),
            packet_id: (qos != QoS::AtMostOnce).then_some(1),
            properties: Default::default(),
            payload: Bytes::from(vec![0u8; payload]),
        })
    }

    #[tokio::test]
    async fn qos0_beyond_the_backlog_limit_is_dropped_and_qos1_is_not() {
        let (handle, mut outbox) = ConnHandle::new(100, None);
        assert_eq!(
            handle.send(publish(QoS::AtMostOnce, 50)),
            SendOutcome::Queued
        );
        assert_eq!(
            handle.send(publish(QoS::AtMostOnce, 50)),
            SendOutcome::DroppedSlowReader
        );
        assert_eq!(handle.dropped_qos0(), 1);
        assert_eq!(
            handle.send(publish(QoS::AtLeastOnce, 500)),
            SendOutcome::Queued
        );
        assert_eq!(handle.send(Packet::PingResp), SendOutcome::Queued);
        assert_eq!(outbox.pending_qos0().load(Ordering::Relaxed), 67);
        // The writer takes the backlog off: room again.
        assert!(matches!(outbox.rx.recv().await, Some(Outbound::Packet(_))));
        outbox.pending_qos0().fetch_sub(67, Ordering::Relaxed);
        assert_eq!(
            handle.send(publish(QoS::AtMostOnce, 50)),
            SendOutcome::Queued
        );
    }

    #[tokio::test]
    async fn close_is_queued_after_packets_and_wakes_a_later_waiter() {
        let (handle, mut outbox) = ConnHandle::new(100, None);
        handle.send(Packet::PingResp);
        handle.clone().close();
        handle.close_requested().await;
        assert!(matches!(
            outbox.rx.recv().await,
            Some(Outbound::Packet(Packet::PingResp))
        ));
        assert!(matches!(outbox.rx.recv().await, Some(Outbound::Close)));
    }

    #[tokio::test]
    async fn sending_to_a_finished_writer_is_harmless() {
        let (handle, outbox) = ConnHandle::new(100, None);
        drop(outbox);
        assert_eq!(
            handle.send(publish(QoS::AtMostOnce, 1)),
            SendOutcome::WriterGone
        );
        handle.close();
    }
}

//! What the broker queues for connections while it routes one read batch, gathered per
//! connection and handed to each connection's queue at once when the batch is done.
//!
//! A publish to 1,000 subscribers is 1,000 pushes onto 1,000 queues, each owned by a writer
//! on another core. Pushed one by one, every push takes that queue's lock, and the lock's
//! atomic instructions wait for the packet just written into the queue's (cold, remote)
//! buffer: a fan-out spent a fifth of its time there. Staged, a connection's share of a whole
//! read batch is written into a local buffer, then moved into its queue under one lock.

use crate::connection_handle::{is_marker, ConnHandle, Outbound, SendOutcome, WriterWake};
use midge_codec::Packet;
use midge_core::{ConnId, IntMap};

/// Buffers kept for reuse between batches, and the largest one kept: enough for a fan-out
/// to a few thousand subscribers without holding much memory once the burst is over.
const MAX_SPARE: usize = 4096;
const MAX_SPARE_CAPACITY: usize = 256;

/// One connection's part of the batch.
struct Staged {
    conn: ConnId,
    /// Only for a connection closed during the batch, which has left the connection table:
    /// the others are looked up at the flush. A clone per connection per batch was two
    /// reference-count updates on lines the connection's writer keeps writing.
    closed: Option<ConnHandle>,
    items: Vec<Outbound>,
    /// Bytes of QoS 0 publishes among `items`, for the slow-reader guard.
    qos0_bytes: usize,
    /// The last item is `Close`: the reader is told once it is queued.
    closing: bool,
}

/// Items staged per connection, in the order the core emitted them.
#[derive(Default)]
pub(crate) struct Staging {
    /// Connection -> its index in `staged`.
    slots: IntMap<ConnId, usize>,
    staged: Vec<Staged>,
    /// Emptied item buffers, reused by later batches.
    spare: Vec<Vec<Outbound>>,
}

impl Staging {
    /// The connection's part, created on its first item.
    fn slot(&mut self, conn: ConnId) -> &mut Staged {
        let staged = &mut self.staged;
        let spare = &mut self.spare;
        let index = *self.slots.entry(conn).or_insert_with(|| {
            staged.push(Staged {
                conn,
                closed: None,
                items: spare.pop().unwrap_or_default(),
                qos0_bytes: 0,
                closing: false,
            });
            staged.len() - 1
        });
        &mut self.staged[index]
    }

    /// Stages `packet` for `conn`, unless the slow-reader guard drops it (counting what is
    /// already staged for the connection as queued).
    pub(crate) fn send(
        &mut self,
        conn: ConnId,
        handle: &ConnHandle,
        packet: Packet,
    ) -> SendOutcome {
        let slot = self.slot(conn);
        match handle.admit(&packet, slot.qos0_bytes) {
            Some(cost) => {
                slot.qos0_bytes += cost;
                slot.items.push(Outbound::Packet(packet));
                SendOutcome::Queued
            }
            None => SendOutcome::DroppedSlowReader,
        }
    }

    /// Stages a marker ([`ConnHandle::mark`]).
    pub(crate) fn mark(&mut self, conn: ConnId, marker: Outbound) {
        debug_assert!(is_marker(&marker));
        self.slot(conn).items.push(marker);
    }

    /// Stages the close ([`ConnHandle::close`]) of a connection taken out of the connection
    /// table; the reader is told when the batch is queued.
    pub(crate) fn close(&mut self, conn: ConnId, handle: &ConnHandle) {
        let slot = self.slot(conn);
        slot.closed = Some(handle.clone());
        slot.items.push(Outbound::Close);
        slot.closing = true;
    }

    /// Queues every connection's part, one lock each, in the order they were staged; the
    /// writers that need waking are added to `wakes`. `conns` is the connection table; a
    /// connection in neither it nor closed in the batch is gone, and its part is dropped, as
    /// for a writer that has ended.
    pub(crate) fn flush(
        &mut self,
        conns: &IntMap<ConnId, ConnHandle>,
        wakes: &mut Vec<WriterWake>,
    ) {
        self.slots.clear();
        for Staged {
            conn,
            closed,
            mut items,
            qos0_bytes,
            closing,
        } in self.staged.drain(..)
        {
            match closed.as_ref().or_else(|| conns.get(&conn)) {
                Some(handle) => {
                    wakes.extend(handle.enqueue_all(&mut items, qos0_bytes));
                    if closing {
                        handle.request_close();
                    }
                }
                None => items.clear(),
            }
            if self.spare.len() < MAX_SPARE && items.capacity() <= MAX_SPARE_CAPACITY {
                self.spare.push(items);
            }
        }
    }
}

/// Where dispatch puts what the core sends to one connection: straight onto its queue, or,
/// while a read batch is routed, into the batch's [`Staging`].
pub(crate) struct Outlet<'a> {
    conn: ConnId,
    handle: &'a ConnHandle,
    staging: Option<&'a mut Staging>,
}

impl<'a> Outlet<'a> {
    /// `conn`'s outlet; staged if `staging` is given.
    pub(crate) fn new(
        conn: ConnId,
        handle: &'a ConnHandle,
        staging: Option<&'a mut Staging>,
    ) -> Outlet<'a> {
        Outlet {
            conn,
            handle,
            staging,
        }
    }

    /// Queues (or stages) `packet`, subject to the slow-reader guard.
    pub(crate) fn send(&mut self, packet: Packet) -> SendOutcome {
        match self.staging.as_deref_mut() {
            Some(staging) => staging.send(self.conn, self.handle, packet),
            None => self.handle.send(packet),
        }
    }

    /// Queues (or stages) a marker: `WaitFor` holds what follows until a durable batch is
    /// committed, `Gate` until tickets complete, `Drained` reports everything before it written.
    pub(crate) fn mark(&mut self, marker: Outbound) {
        match self.staging.as_deref_mut() {
            Some(staging) => staging.mark(self.conn, marker),
            None => self.handle.mark(marker),
        }
    }

    /// Flushes what is queued and closes.
    pub(crate) fn close(&mut self) {
        match self.staging.as_deref_mut() {
            Some(staging) => staging.close(self.conn, self.handle),
            None => self.handle.close(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection_handle::tests::publish;
    use crate::connection_handle::Outbox;
    use midge_codec::QoS;
    use std::sync::atomic::Ordering;

    /// The connection table the flush looks handles up in.
    fn table(handles: &[(ConnId, &ConnHandle)]) -> IntMap<ConnId, ConnHandle> {
        handles.iter().map(|(id, h)| (*id, (*h).clone())).collect()
    }

    fn payload_sizes(outbox: &mut Outbox) -> Vec<Option<usize>> {
        std::iter::from_fn(|| outbox.rx.try_recv())
            .map(|item| match item {
                Outbound::Packet(Packet::Publish(p)) => Some(p.payload.len()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn nothing_is_queued_until_the_flush_and_then_in_order_with_one_wake_per_writer() {
        let (a, mut a_out) = ConnHandle::new(1 << 20, None);
        let (b, mut b_out) = ConnHandle::new(1 << 20, None);
        let mut staging = Staging::default();
        for size in 1..=3 {
            staging.send(1, &a, publish(QoS::AtMostOnce, size));
            staging.send(2, &b, publish(QoS::AtLeastOnce, 10 * size));
        }
        staging.mark(2, Outbound::WaitFor(7));
        let conns = table(&[(1, &a), (2, &b)]);
        assert!(a_out.rx.is_empty() && b_out.rx.is_empty());

        let mut wakes = Vec::new();
        staging.flush(&conns, &mut wakes);
        assert_eq!(wakes.len(), 2, "one wake-up per writer, not per packet");
        assert_eq!(payload_sizes(&mut a_out), [Some(1), Some(2), Some(3)]);
        assert_eq!(
            payload_sizes(&mut b_out),
            [Some(10), Some(20), Some(30), None]
        );
        // The QoS 0 bytes are counted against the guard once queued.
        assert_eq!(a_out.pending_qos0().load(Ordering::Relaxed), 3 * 17 + 6);

        // The next batch: a writer with items still queued needs no wake-up, one whose queue
        // was emptied does.
        a.send(Packet::PingResp);
        staging.send(1, &a, publish(QoS::AtMostOnce, 4));
        staging.send(2, &b, publish(QoS::AtLeastOnce, 5));
        let mut wakes = Vec::new();
        staging.flush(&conns, &mut wakes);
        assert_eq!(wakes.len(), 1);
        assert_eq!(payload_sizes(&mut a_out), [None, Some(4)]);
        assert_eq!(payload_sizes(&mut b_out), [Some(5)]);
    }

    #[test]
    fn the_slow_reader_guard_counts_what_is_staged_ahead() {
        let (handle, mut outbox) = ConnHandle::new(100, None);
        let mut staging = Staging::default();
        assert_eq!(
            staging.send(1, &handle, publish(QoS::AtMostOnce, 50)),
            SendOutcome::Queued
        );
        // 67 staged + 67 > 100, though nothing is queued yet.
        assert_eq!(
            staging.send(1, &handle, publish(QoS::AtMostOnce, 50)),
            SendOutcome::DroppedSlowReader
        );
        assert_eq!(
            staging.send(1, &handle, publish(QoS::AtLeastOnce, 500)),
            SendOutcome::Queued
        );
        assert_eq!(handle.dropped_qos0(), 1);
        staging.flush(&table(&[(1, &handle)]), &mut Vec::new());
        assert_eq!(payload_sizes(&mut outbox), [Some(50), Some(500)]);
        assert_eq!(outbox.pending_qos0().load(Ordering::Relaxed), 67);
    }

    #[tokio::test]
    async fn a_staged_close_wakes_the_reader_once_queued() {
        let (handle, mut outbox) = ConnHandle::new(100, None);
        let mut staging = Staging::default();
        staging.send(1, &handle, Packet::PingResp);
        staging.close(1, &handle);
        // Closed in the batch: no longer in the table.
        staging.flush(&IntMap::default(), &mut Vec::new());
        handle.close_requested().await;
        assert!(matches!(
            outbox.rx.try_recv(),
            Some(Outbound::Packet(Packet::PingResp))
        ));
        assert!(matches!(outbox.rx.try_recv(), Some(Outbound::Close)));
    }

    #[test]
    fn staging_for_a_finished_writer_drops_the_items_and_their_count() {
        let (handle, outbox) = ConnHandle::new(100, None);
        drop(outbox);
        let mut staging = Staging::default();
        staging.send(1, &handle, publish(QoS::AtMostOnce, 10));
        let mut wakes = Vec::new();
        staging.flush(&table(&[(1, &handle)]), &mut wakes);
        assert!(wakes.is_empty());
        assert_eq!(handle.pending_qos0(), 0);
    }

    #[test]
    fn staging_for_a_connection_gone_from_the_table_drops_the_items() {
        let (handle, mut outbox) = ConnHandle::new(100, None);
        let mut staging = Staging::default();
        staging.send(1, &handle, publish(QoS::AtMostOnce, 10));
        let mut wakes = Vec::new();
        staging.flush(&IntMap::default(), &mut wakes);
        assert!(wakes.is_empty());
        assert!(outbox.rx.try_recv().is_none());
        assert_eq!(handle.pending_qos0(), 0);
    }
}

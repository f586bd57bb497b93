//! The queue between the broker's dispatch and one connection's writer: many senders (clones
//! of the connection's handle), one receiver.
//!
//! An idle connection holds no queue memory: items live in a `VecDeque` that is allocated by
//! the first item and let go of when the writer finds the queue empty and goes to sleep. (A
//! tokio channel allocates a block of 32 slots up front and keeps it.) The writer takes
//! everything queued in one swap under the lock, so a burst costs one lock per batch, not
//! one per item, and a busy connection reuses the same two buffers. A buffer allocated after
//! a sleep starts with room for twice the writer's last batch, so a connection that is sent
//! a burst every few milliseconds (a fan-out subscriber) allocates once per burst instead of
//! growing the buffer by doubling, each step a copy of everything queued.
//!
//! The queue's shared part also holds what its user shares between the two sides (a
//! connection's close flag and counters), so a connection has one such allocation, not one
//! per purpose.

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// The largest batch a queue remembers to make room for after a sleep.
const MAX_HINT: u16 = 256;

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    /// How many items the receiver took in its last batch, at most [`MAX_HINT`]; the first
    /// push after a sleep makes room for twice as many.
    hint: u16,
    /// The receiver was dropped: sends fail.
    receiver_gone: bool,
    /// Every sender was dropped: the receiver ends once the queue is empty.
    senders_gone: bool,
}

/// What the senders and the receiver share, with `E`, the caller's own shared state: one
/// allocation per queue (every connection has one, idle or not).
#[derive(Debug)]
struct Shared<T, E> {
    state: Mutex<State<T>>,
    /// Woken when the queue goes from empty to not empty, or the last sender goes. A waker
    /// slot rather than a future, so an idle writer (its reader, or the dormant pool) waits with no
    /// future at all.
    ready: AtomicWaker,
    /// Live [`QueueTx`] clones; the last one to go ends the queue for the receiver.
    senders: AtomicUsize,
    extra: E,
}

/// The sending side; clones share the queue, and [`QueueTx::extra`].
#[derive(Debug)]
pub(crate) struct QueueTx<T, E>(Arc<Shared<T, E>>);

impl<T, E> Clone for QueueTx<T, E> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        QueueTx(self.0.clone())
    }
}

impl<T, E> Drop for QueueTx<T, E> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.state.lock().senders_gone = true;
            self.0.ready.wake();
        }
    }
}

/// The receiver's hold on the queue: senders fail once it is dropped.
#[derive(Debug)]
struct RxEnd<T, E>(Arc<Shared<T, E>>);

impl<T, E> Drop for RxEnd<T, E> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.receiver_gone = true;
        // Queued items are dropped now, not when the last sender goes.
        state.items.clear();
    }
}

/// The receiving side.
#[derive(Debug)]
pub(crate) struct QueueRx<T, E> {
    shared: RxEnd<T, E>,
    /// Items taken from the shared queue and not yet handed out.
    local: VecDeque<T>,
}

/// A receiver put away with no buffer of its own (what a dormant connection's writer keeps);
/// [`IdleRx::into_rx`] makes it a [`QueueRx`] again.
#[derive(Debug)]
pub(crate) struct IdleRx<T, E>(RxEnd<T, E>);

/// A new queue, sharing `extra` between its senders and its receiver.
pub(crate) fn queue<T, E>(extra: E) -> (QueueTx<T, E>, QueueRx<T, E>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            hint: 0,
            receiver_gone: false,
            senders_gone: false,
        }),
        ready: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        extra,
    });
    let tx = QueueTx(shared.clone());
    let rx = QueueRx {
        shared: RxEnd(shared),
        local: VecDeque::new(),
    };
    (tx, rx)
}

/// Wakes a queue's receiver later: what [`QueueTx::push`] asks for.
#[derive(Debug)]
pub(crate) struct QueueWake<T, E>(Arc<Shared<T, E>>);

impl<T, E> QueueWake<T, E> {
    /// Wakes the receiver (at once if it sleeps, else on its next wait).
    pub(crate) fn wake(self) {
        self.0.ready.wake();
    }
}

impl<T, E> QueueTx<T, E> {
    /// The state shared with the receiver.
    pub(crate) fn extra(&self) -> &E {
        &self.0.extra
    }

    /// Appends `item` and wakes the receiver; gives the item back if the receiver is gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        if let Some(wake) = self.push(item)? {
            wake.wake();
        }
        Ok(())
    }

    /// Appends `item` without waking the receiver. Returns the wake-up it needs, if any (the
    /// receiver only sleeps on an empty queue, so only the first item needs one); the caller
    /// wakes it once done queueing, so the receiver finds a whole burst at once instead of
    /// waking for its first item. Gives the item back if the receiver is gone.
    pub(crate) fn push(&self, item: T) -> Result<Option<QueueWake<T, E>>, T> {
        let shared = &self.0;
        let was_empty = {
            let mut state = shared.state.lock();
            if state.receiver_gone {
                return Err(item);
            }
            if state.items.capacity() == 0 {
                // Twice the last batch: batches vary, and one a little larger than the last
                // would otherwise copy the whole buffer into one twice the size.
                let room = 2 * usize::from(state.hint);
                state.items.reserve(room);
            }
            state.items.push_back(item);
            state.items.len() == 1
        };
        Ok(was_empty.then(|| QueueWake(shared.clone())))
    }

    /// Appends every item of `items` (leaving it empty) under one lock, without waking the
    /// receiver; returns the wake-up it needs, like [`QueueTx::push`]. If the receiver is
    /// gone, nothing is queued and `items` is left as it was.
    pub(crate) fn push_all(&self, items: &mut Vec<T>) -> Result<Option<QueueWake<T, E>>, ()> {
        let shared = &self.0;
        let was_empty = {
            let mut state = shared.state.lock();
            if state.receiver_gone {
                return Err(());
            }
            let was_empty = state.items.is_empty();
            if state.items.capacity() == 0 {
                let room = (2 * usize::from(state.hint)).max(items.len());
                state.items.reserve(room);
            }
            state.items.extend(items.drain(..));
            was_empty && !state.items.is_empty()
        };
        Ok(was_empty.then(|| QueueWake(shared.clone())))
    }
}

impl<T, E> QueueRx<T, E> {
    /// The state shared with the senders.
    pub(crate) fn extra(&self) -> &E {
        &self.shared.0.extra
    }

    /// The next item, waiting for one; `None` once every sender is gone and nothing is left.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next item, or registers `cx` to be woken when one is queued (or the last sender
    /// goes); `Ready(None)` once every sender is gone and nothing is left.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(item) = self.try_recv() {
            return Poll::Ready(Some(item));
        }
        // Registered before looking again: a push after the look below wakes this waker.
        self.shared.0.ready.register(cx.waker());
        {
            let mut state = self.shared.0.state.lock();
            if state.items.is_empty() {
                if state.senders_gone {
                    return Poll::Ready(None);
                }
                // Going to sleep: hold no memory while idle.
                state.items = VecDeque::new();
                self.local = VecDeque::new();
                return Poll::Pending;
            }
        }
        Poll::Ready(self.try_recv())
    }

    /// Put away without a buffer of its own: what it took and has not handed out goes back
    /// to the front of the shared queue, in order.
    pub(crate) fn into_idle(self) -> IdleRx<T, E> {
        let QueueRx { shared, mut local } = self;
        if !local.is_empty() {
            let mut state = shared.0.state.lock();
            while let Some(item) = local.pop_back() {
                state.items.push_front(item);
            }
        }
        IdleRx(shared)
    }

    /// The next item if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Option<T> {
        if let Some(item) = self.local.pop_front() {
            return Some(item);
        }
        {
            let mut state = self.shared.0.state.lock();
            // `local` is empty: swapping hands its buffer back for the senders to reuse.
            std::mem::swap(&mut state.items, &mut self.local);
            if !self.local.is_empty() {
                state.hint = u16::try_from(self.local.len()).map_or(MAX_HINT, |n| n.min(MAX_HINT));
            }
        }
        self.local.pop_front()
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.local.is_empty() && self.shared.0.state.lock().items.is_empty()
    }
}

impl<T, E> IdleRx<T, E> {
    /// A receiver again, with an empty buffer of its own.
    pub(crate) fn into_rx(self) -> QueueRx<T, E> {
        QueueRx {
            shared: self.0,
            local: VecDeque::new(),
        }
    }

    /// `Ready` once an item is queued or every sender is gone; until then registers `cx` to
    /// be woken when that happens.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_ready(cx)
    }
}

impl<T, E> RxEnd<T, E> {
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.ready.register(cx.waker());
        let state = self.0.state.lock();
        if state.items.is_empty() && !state.senders_gone {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_arrive_in_order_across_clones_and_batches() {
        let (tx, mut rx) = queue(());
        let tx2 = tx.clone();
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.recv().await, Some(0));
        tx2.send(5).unwrap();
        let mut rest = Vec::new();
        while let Some(i) = rx.try_recv() {
            rest.push(i);
        }
        assert_eq!(rest, vec![1, 2, 3, 4, 5]);
        assert!(rx.is_empty());
    }

    #[test]
    fn push_all_queues_a_batch_after_what_is_there_and_asks_for_one_wake() {
        let (tx, mut rx) = queue(());
        let mut batch = vec![1, 2, 3];
        assert!(tx.push_all(&mut batch).unwrap().is_some(), "was empty");
        assert!(batch.is_empty());
        let mut more = vec![4, 5];
        assert!(tx.push_all(&mut more).unwrap().is_none(), "not empty");
        assert!(tx.push_all(&mut Vec::new()).unwrap().is_none());
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
        // Empty again: a push_all of nothing needs no wake-up.
        assert!(tx.push_all(&mut Vec::new()).unwrap().is_none());
        drop(rx);
        let mut late = vec![6];
        assert!(tx.push_all(&mut late).is_err());
        assert_eq!(late, [6], "left to the caller");
    }

    #[tokio::test]
    async fn a_sleeping_receiver_wakes_for_a_send_from_another_task() {
        let (tx, mut rx) = queue(());
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send("x").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(got.unwrap().unwrap(), Some("x"));
    }

    #[tokio::test]
    async fn the_receiver_ends_after_the_last_sender_once_drained() {
        let (tx, mut rx) = queue(());
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        drop(tx);
        tx2.send(2).unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_push_asks_for_one_wake_up_per_burst() {
        let (tx, mut rx) = queue(());
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            (first, rx.try_recv())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let wake = tx.push(1).unwrap().expect("the first item needs a wake-up");
        assert!(tx.push(2).unwrap().is_none(), "the receiver has one coming");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "pushing alone does not wake the receiver"
        );
        wake.wake();
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(
            got.unwrap().unwrap(),
            (Some(1), Some(2)),
            "the burst, at once"
        );
    }

    #[test]
    fn a_receiver_put_away_keeps_its_items_in_order_and_its_hold_on_the_queue() {
        let (tx, mut rx) = queue(());
        for i in 0..4 {
            tx.send(i).unwrap();
        }
        // 0 is handed out; 1, 2 and 3 sit in the receiver's own buffer.
        assert_eq!(rx.try_recv(), Some(0));
        tx.send(4).unwrap();
        let idle = rx.into_idle();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(idle.poll_ready(&mut cx).is_ready(), "items are queued");
        tx.send(5).unwrap();
        let mut rx = idle.into_rx();
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);

        let idle = rx.into_idle();
        assert!(idle.poll_ready(&mut cx).is_pending(), "nothing queued");
        drop(idle);
        assert_eq!(tx.send(6), Err(6), "a dropped idle receiver is gone too");
    }

    #[tokio::test]
    async fn sending_to_a_dropped_receiver_gives_the_item_back() {
        let (tx, rx) = queue(());
        tx.send(1).unwrap();
        drop(rx);
        assert_eq!(tx.send(2), Err(2));
    }

    /// Sends `n` items, takes them all, and lets the receiver go to sleep on the empty queue.
    async fn burst_then_sleep(tx: &QueueTx<u64, ()>, rx: &mut QueueRx<u64, ()>, n: u64) {
        for i in 0..n {
            tx.send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        let pending = tokio::time::timeout(Duration::from_millis(20), rx.recv()).await;
        assert!(pending.is_err());
    }

    #[tokio::test]
    async fn an_idle_receiver_holds_no_buffer() {
        let (tx, mut rx) = queue::<u64, ()>(());
        // The receiver goes to sleep on an empty queue and lets both buffers go.
        burst_then_sleep(&tx, &mut rx, 100).await;
        assert_eq!(rx.local.capacity(), 0);
        assert_eq!(rx.shared.0.state.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn the_first_push_after_a_sleep_makes_room_for_the_last_batch() {
        let (tx, mut rx) = queue::<u64, ()>(());
        burst_then_sleep(&tx, &mut rx, 100).await;
        assert_eq!(rx.shared.0.state.lock().items.capacity(), 0);
        // The next burst is likely about as large: one allocation, no doubling on the way.
        tx.send(100).unwrap();
        assert!(rx.shared.0.state.lock().items.capacity() >= 200);
        while rx.try_recv().is_some() {}

        // A huge batch is not remembered in full.
        burst_then_sleep(&tx, &mut rx, 10 * u64::from(MAX_HINT)).await;
        tx.send(0).unwrap();
        let room = rx.shared.0.state.lock().items.capacity();
        assert!(
            (2 * usize::from(MAX_HINT)..4 * usize::from(MAX_HINT)).contains(&room),
            "{room}"
        );
    }
}

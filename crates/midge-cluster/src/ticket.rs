//! Completion of a request to peers, awaited by a connection's writer before it sends the
//! acknowledgement that depends on it (a SUBACK after a new route, a CONNACK after a claim, a
//! PUBACK after a forward).
//!
//! A ticket completes when the peer answered, or when the peer's link gave up on it (the peer
//! is unreachable): the waiting client is never held longer than one request deadline. A
//! ticket that must not be taken as done when the peer is unreachable (a QoS 1/2 forward: the
//! message may be lost) completes as failed, and the acknowledgement is withheld.

use futures_util::task::AtomicWaker;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Poll;

const PENDING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;

/// What a ticket and its completion share: one allocation, an atomic state and the waiting
/// task's waker (a forwarded QoS 1/2 publish makes one of these, so it is kept small).
#[derive(Debug, Default)]
struct Shared {
    state: AtomicU8,
    waker: AtomicWaker,
}

/// Waits for one request to a peer (one waiting task at a time).
#[derive(Debug)]
pub struct Ticket(Arc<Shared>);

/// The link's end of a [`Ticket`]: dropping it completes the ticket; [`Completion::fail`]
/// completes it as failed.
#[derive(Debug)]
pub(crate) struct Completion(Arc<Shared>);

/// The link's end of a [`Ticket`] that succeeds only if the peer answered: [`Delivery::arrived`]
/// completes it; dropping it any other way (the exchange failed, or the link stopped with it
/// queued, gathered or in flight) completes it as failed.
#[derive(Debug)]
pub(crate) struct Delivery(Arc<Shared>);

/// A new ticket and its completion.
pub(crate) fn ticket() -> (Ticket, Completion) {
    let shared = Arc::new(Shared::default());
    (Ticket(shared.clone()), Completion(shared))
}

/// A new ticket that only the peer's answer completes, and its completion.
pub(crate) fn delivery_ticket() -> (Ticket, Delivery) {
    let shared = Arc::new(Shared::default());
    (Ticket(shared.clone()), Delivery(shared))
}

/// A ticket that has already failed.
pub(crate) fn failed() -> Ticket {
    let (t, c) = ticket();
    c.fail();
    t
}

impl Completion {
    /// Completes the ticket as failed.
    pub(crate) fn fail(self) {
        self.settle(FAILED);
    }

    fn settle(&self, state: u8) {
        settle(&self.0, state);
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.settle(DONE);
    }
}

impl Delivery {
    /// The peer answered: completes the ticket.
    pub(crate) fn arrived(self) {
        settle(&self.0, DONE);
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // After `arrived` this changes nothing.
        settle(&self.0, FAILED);
    }
}

/// Moves `shared` from pending to `state` (once) and wakes its waiter.
fn settle(shared: &Shared, state: u8) {
    if shared
        .state
        .compare_exchange(PENDING, state, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        shared.waker.wake();
    }
}

impl Ticket {
    /// Returns once the request is answered or abandoned: true unless it failed.
    pub async fn wait(self) -> bool {
        std::future::poll_fn(|cx| {
            if let Some(ok) = self.outcome() {
                return Poll::Ready(ok);
            }
            self.0.waker.register(cx.waker());
            match self.outcome() {
                Some(ok) => Poll::Ready(ok),
                None => Poll::Pending,
            }
        })
        .await
    }

    fn outcome(&self) -> Option<bool> {
        match self.0.state.load(Ordering::Acquire) {
            PENDING => None,
            state => Some(state == DONE),
        }
    }

    /// True once the request is answered or abandoned.
    pub fn is_done(&self) -> bool {
        self.outcome().is_some()
    }

    /// True once the request is done and succeeded (nothing left to wait for or report).
    pub fn succeeded(&self) -> bool {
        self.outcome() == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_completes_when_its_completion_is_dropped() {
        let (t, c) = ticket();
        assert!(!t.is_done());
        let shared = t.0.clone();
        let waiter = tokio::spawn(t.wait());
        tokio::task::yield_now().await;
        drop(c);
        assert!(waiter.await.unwrap());
        let t2 = Ticket(shared);
        assert!(t2.is_done() && t2.succeeded());
        assert!(t2.wait().await);
        let (t, c) = ticket();
        c.fail();
        assert!(t.is_done());
        assert!(!t.succeeded());
        assert!(!t.wait().await);
        assert!(!failed().wait().await);
    }

    #[tokio::test]
    async fn a_delivery_dropped_unanswered_fails_its_ticket() {
        let (t, d) = delivery_ticket();
        drop(d);
        assert!(!t.wait().await);
        let (t, d) = delivery_ticket();
        d.arrived();
        assert!(t.wait().await);
    }
}

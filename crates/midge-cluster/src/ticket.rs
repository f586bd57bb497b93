//! Completion of a request to peers, awaited by a connection's writer before it sends the
//! acknowledgement that depends on it (a SUBACK after a new route, a CONNACK after a claim, a
//! PUBACK after a forward).
//!
//! A ticket completes when the peer answered, or when the peer's link gave up on it (the peer
//! is unreachable): the waiting client is never held longer than one request deadline. A
//! ticket that must not be taken as done when the peer is unreachable (a QoS 1/2 forward: the
//! message may be lost) completes as failed, and the acknowledgement is withheld.

use tokio::sync::watch;

/// Waits for one request to a peer; clones wait for the same request.
#[derive(Debug, Clone)]
pub struct Ticket(watch::Receiver<bool>);

/// The link's end of a [`Ticket`]: dropping it completes the ticket; [`Completion::fail`]
/// completes it as failed.
#[derive(Debug)]
pub(crate) struct Completion(watch::Sender<bool>);

/// A new ticket and its completion.
pub(crate) fn ticket() -> (Ticket, Completion) {
    let (tx, rx) = watch::channel(false);
    (Ticket(rx), Completion(tx))
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
        self.0.send_replace(true);
    }
}

impl Ticket {
    /// Returns once the request is answered or abandoned: true unless it failed.
    pub async fn wait(mut self) -> bool {
        // `changed` fails once the sender is gone; only a failure is ever sent on it.
        while self.0.changed().await.is_ok() {}
        !*self.0.borrow()
    }

    /// True once the request is answered or abandoned.
    pub fn is_done(&self) -> bool {
        self.0.has_changed().is_err()
    }

    /// True once the request is done and succeeded (nothing left to wait for or report).
    pub fn succeeded(&self) -> bool {
        self.is_done() && !*self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_completes_when_its_completion_is_dropped() {
        let (t, c) = ticket();
        let t2 = t.clone();
        assert!(!t.is_done());
        let waiter = tokio::spawn(t.wait());
        drop(c);
        assert!(waiter.await.unwrap());
        assert!(t2.is_done() && t2.succeeded());
        assert!(t2.wait().await);
        let (t, c) = ticket();
        c.fail();
        assert!(t.is_done());
        assert!(!t.succeeded());
        assert!(!t.wait().await);
        assert!(!failed().wait().await);
    }
}

//! Completion of a request to peers, awaited by a connection's writer before it sends the
//! acknowledgement that depends on it (a SUBACK after a new route, a CONNACK after a claim, a
//! PUBACK after a forward).
//!
//! A ticket completes when the peer answered, or when the peer's link gave up on it (the peer
//! is unreachable): the waiting client is never held longer than one request deadline.

use tokio::sync::watch;

/// Waits for one request to a peer; clones wait for the same request.
#[derive(Debug, Clone)]
pub struct Ticket(watch::Receiver<()>);

/// The link's end of a [`Ticket`]: dropping it completes the ticket.
#[derive(Debug)]
pub(crate) struct Completion(#[allow(dead_code)] watch::Sender<()>);

/// A new ticket and its completion.
pub(crate) fn ticket() -> (Ticket, Completion) {
    let (tx, rx) = watch::channel(());
    (Ticket(rx), Completion(tx))
}

impl Ticket {
    /// Returns once the request is answered or abandoned.
    pub async fn wait(mut self) {
        // `changed` fails once the sender is gone; nothing is ever sent on it.
        while self.0.changed().await.is_ok() {}
    }

    /// True once the request is answered or abandoned.
    pub fn is_done(&self) -> bool {
        self.0.has_changed().is_err()
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
        waiter.await.unwrap();
        assert!(t2.is_done());
        t2.wait().await;
    }
}

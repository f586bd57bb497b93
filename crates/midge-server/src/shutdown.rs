//! The shutdown notice every connection task listens for.

use tokio::sync::broadcast;

/// Receives the server's one-time shutdown broadcast. Once seen, it stays seen, so a task can
/// call [`Shutdown::recv`] in several `select!` loops.
#[derive(Debug)]
pub(crate) struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    /// Wraps a receiver subscribed to the server's shutdown channel.
    pub(crate) fn new(notify: broadcast::Receiver<()>) -> Shutdown {
        Shutdown {
            is_shutdown: false,
            notify,
        }
    }

    /// Waits for the notice. Returns at once if it was already received. A dropped sender
    /// counts as a notice too, so a server that goes away never leaves tasks waiting.
    pub(crate) async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // Only one value is ever sent; Lagged cannot lose it and Closed means the same thing.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notice_is_sticky_and_dropping_the_sender_counts() {
        let (tx, rx) = broadcast::channel(1);
        let mut a = Shutdown::new(rx);
        let mut b = Shutdown::new(tx.subscribe());
        tx.send(()).expect("receivers exist");
        a.recv().await;
        a.recv().await;
        drop(tx);
        b.recv().await;
    }
}

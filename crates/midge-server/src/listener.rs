//! The accept loop of the TCP listener.

use crate::connection::{Connection, ConnectionSettings};
use crate::shared_broker::SharedBroker;
use crate::shutdown::Shutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, Semaphore};

/// First pause after a failed accept; doubled on each further failure.
const ACCEPT_BACKOFF_START: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts connections and spawns a task for each.
pub(crate) struct Listener {
    pub(crate) listener: TcpListener,
    pub(crate) local_addr: SocketAddr,
    /// One permit per open connection: caps `limits.max_connections`.
    pub(crate) limit: Arc<Semaphore>,
    pub(crate) max_connections: usize,
    pub(crate) broker: Arc<SharedBroker>,
    pub(crate) settings: Arc<ConnectionSettings>,
    /// Each connection subscribes; the server sends once on shutdown.
    pub(crate) notify_shutdown: broadcast::Sender<()>,
    /// Cloned into each connection task and dropped when it ends, so the server knows all
    /// connections are done when the receiver sees every sender gone.
    pub(crate) shutdown_complete: mpsc::Sender<()>,
}

impl Listener {
    /// Accepts forever; the server stops it by dropping this future.
    pub(crate) async fn run(&mut self) {
        loop {
            let (socket, peer) = self.accept().await;
            // Over the cap the connection is still accepted, so the client sees a prompt close
            // instead of hanging in the kernel backlog until its connect times out.
            let Ok(permit) = self.limit.clone().try_acquire_owned() else {
                tracing::warn!(
                    "Connection from {peer} refused: max_connections ({}) reached.",
                    self.max_connections
                );
                drop(socket);
                continue;
            };
            tracing::info!(
                "New connection from {peer} on port {}.",
                self.local_addr.port()
            );
            // Small MQTT packets (acks, pings) must not wait for Nagle's algorithm.
            if let Err(err) = socket.set_nodelay(true) {
                tracing::debug!("Cannot set TCP_NODELAY for {peer}: {err}.");
            }
            let connection = Connection {
                id: self.broker.next_conn_id(),
                socket,
                peer,
                broker: self.broker.clone(),
                settings: self.settings.clone(),
                shutdown: Shutdown::new(self.notify_shutdown.subscribe()),
            };
            let done = self.shutdown_complete.clone();
            tokio::spawn(async move {
                connection.run().await;
                drop(permit);
                drop(done);
            });
        }
    }

    /// Accepts one connection. Errors (out of file descriptors, aborted handshakes) are logged
    /// and retried after an exponentially growing pause, so a resource shortage does not turn
    /// into a busy loop; it never gives up, since the condition is usually temporary.
    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        let mut backoff = ACCEPT_BACKOFF_START;
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(err) => {
                    tracing::warn!(
                        "Accepting a connection failed: {err}; retrying in {} ms.",
                        backoff.as_millis()
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

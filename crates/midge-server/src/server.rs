//! Binding the listeners, serving, and draining on shutdown.

use crate::connection::ConnectionSettings;
use crate::listener::Listener;
use crate::shared_broker::{now, SharedBroker};
use crate::storage::{self, Opened, Storage};
use crate::{Config, ServerError};
use midge_core::Broker;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::time::{interval, timeout, MissedTickBehavior};

/// The core wants a tick at least this often (keepalive, delayed wills, `$SYS`).
const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// Entry point: `Server::bind(config)` then `BoundServer::run(shutdown)`.
#[derive(Debug)]
pub struct Server;

/// A server whose listeners are bound and whose state is restored, but which does not accept
/// connections yet.
pub struct BoundServer {
    config: Config,
    listener: TcpListener,
    local_addr: SocketAddr,
    broker: Arc<SharedBroker>,
    /// `None` with `storage.enabled = false`.
    storage: Option<Storage>,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .field("storage", &self.storage.is_some())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Creates the data directory, binds the listener, and, with storage enabled, opens the
    /// store and restores the broker from it; nothing is served until [`BoundServer::run`].
    /// Fails with the address when the port is taken, and with the path when the store
    /// cannot be opened (damaged, or in use by another broker).
    pub async fn bind(config: Config) -> Result<BoundServer, ServerError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        // The port first: a second broker started with the same configuration is told the
        // port is taken rather than that the store is locked.
        let addr = config.listener.socket_addr();
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let (broker, storage) = if config.storage.enabled {
            let Opened {
                storage,
                broker,
                commits,
            } = storage::open(&config).await?;
            (SharedBroker::new(broker, Some(commits)), Some(storage))
        } else {
            tracing::info!("Storage is disabled: all state is kept in memory only.");
            let broker = Broker::new(config.broker_config(), now());
            (SharedBroker::new(broker, None), None)
        };
        Ok(BoundServer {
            config,
            listener,
            local_addr,
            broker: Arc::new(broker),
            storage,
        })
    }
}

impl BoundServer {
    /// The address actually bound (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then stops accepting, tells the core (v5 clients get
    /// DISCONNECT 0x8B), and waits up to `limits.shutdown_grace_secs` for every connection to
    /// flush and close. With storage, it then waits (again up to the grace period) for every
    /// durable change to be committed and stops the store, so a clean stop loses nothing.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let BoundServer {
            config,
            listener,
            local_addr,
            broker,
            storage,
        } = self;
        let (notify_shutdown, _) = broadcast::channel(1);
        let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel::<()>(1);
        let max_connections = config.limits.max_connections;
        let limit = Arc::new(Semaphore::new(max_connections));
        let mut listener = Listener {
            listener,
            local_addr,
            limit: limit.clone(),
            max_connections,
            broker: broker.clone(),
            settings: Arc::new(ConnectionSettings {
                connect_timeout: config.limits.connect_timeout(),
                max_packet_size: config.broker.max_packet_size,
                max_pending_bytes: config.limits.max_pending_bytes,
            }),
            notify_shutdown,
            shutdown_complete: shutdown_complete_tx,
        };
        let ticker = tokio::spawn(tick(broker.clone()));

        // This line's format is stable: scripts and the end-to-end tests find the bound port
        // by matching `listening on tcp://(\S+)` on stderr, where the capture is the
        // `SocketAddr` display form (`127.0.0.1:1883`, `[::1]:1883`). It is logged exactly
        // once, at INFO, after the socket is bound and right before accepting starts.
        tracing::info!("{} listening on tcp://{local_addr}", Config::version());

        tokio::select! {
            _ = listener.run() => {}
            _ = shutdown => {}
        }

        tracing::info!("Shutting down: no longer accepting connections.");
        let Listener {
            listener: tcp,
            notify_shutdown,
            shutdown_complete,
            ..
        } = listener;
        drop(tcp);
        // The core queues DISCONNECT 0x8B for v5 clients and closes every session first; the
        // broadcast then reaches connections the core does not know yet (no CONNECT so far).
        broker.shutdown();
        let _ = notify_shutdown.send(());
        drop(notify_shutdown);
        drop(shutdown_complete);

        let grace = config.limits.shutdown_grace();
        if timeout(grace, shutdown_complete_rx.recv()).await.is_err() {
            let open = max_connections.saturating_sub(limit.available_permits());
            tracing::warn!(
                "{open} connection(s) still open after the {} s grace period; exiting anyway.",
                grace.as_secs()
            );
        }
        ticker.abort();
        // Connections are done, so are their held acknowledgements; what the core changed
        // until now (sessions going offline) is committed before the store closes.
        broker.close_commits();
        if let Some(storage) = storage {
            storage.shutdown(grace).await;
        }
        tracing::info!("Shutdown complete.");
        Ok(())
    }
}

/// Feeds the core its periodic tick.
async fn tick(broker: Arc<SharedBroker>) {
    let mut interval = interval(TICK_INTERVAL);
    // After a stall, one catch-up tick is enough: the core works from `now`, not tick counts.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        broker.tick();
    }
}

//! Binding the listeners, serving, and draining on shutdown.

use crate::acl_authorizer::AclAuthorizer;
use crate::admin::{AdminServer, AdminState, Metrics, NodeCollector, NodeSources, Readiness};
use crate::authenticator::LoginGuard;
use crate::connection::ConnectionSettings;
use crate::dormant_pool::DormantPool;
use crate::endpoint::Endpoint;
use crate::guard_counters::GuardCounters;
use crate::listener::{Listener, ListenerShared};
use crate::live_limits::LiveLimits;
use crate::publish_rate::PublishRateLimits;
use crate::reload::{ReloadContext, Reloader};
use crate::security_reload::SecurityReload;
use crate::shared_broker::{now, SharedBroker};
use crate::storage::{self, Opened, Storage};
use crate::{Config, ConfigSource, LogHandle, ServerError};
use midge_core::{Broker, ClusterSys, TrafficSys};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{interval, MissedTickBehavior};

/// The core wants a tick at least this often (keepalive, delayed wills, `$SYS`).
const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// Entry point: `Server::bind(config)` then `BoundServer::run(shutdown)`.
#[derive(Debug)]
pub struct Server;

/// A server whose listeners are bound and whose state is restored, but which does not accept
/// connections yet.
pub struct BoundServer {
    config: Config,
    /// Every listener, `[listener]` first, each with its socket and what it serves.
    listeners: Vec<BoundListener>,
    local_addr: SocketAddr,
    broker: Arc<SharedBroker>,
    /// `[limits]`, replaceable by a reload.
    limits: Arc<LiveLimits>,
    /// What the listener-side guards refused.
    counters: Arc<GuardCounters>,
    /// `None` with `storage.enabled = false`.
    storage: Option<Storage>,
    /// `[admin]`: bound, serving from `run`.
    admin: AdminServer,
    /// The node's metrics registry.
    metrics: Metrics,
    /// What `/readyz` reports.
    ready: Arc<Readiness>,
    /// Membership and status for `/api/v1/cluster` (`None` without storage).
    cluster_control: Option<midge_cluster::ClusterControl>,
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
        // Certificates, keys, password and ACL files are read before anything is bound, so
        // a typo in a path fails the start with the file's name.
        let mut endpoints = Vec::with_capacity(1 + config.listeners.len());
        let named = std::iter::once(("listener".to_string(), &config.listener)).chain(
            config
                .listeners
                .iter()
                .map(|(name, section)| (format!("listeners.{name}"), section)),
        );
        for (name, section) in named {
            let endpoint = Endpoint::load(name.clone(), section)
                .map_err(|source| ServerError::Listener { name, source })?;
            endpoints.push((section.socket_addr(), Arc::new(endpoint)));
        }
        let acl = match &config.auth.acl_file {
            Some(path) => Some(Arc::new(
                AclAuthorizer::load(path).map_err(|source| ServerError::Acl { source })?,
            )),
            None => None,
        };
        // The ports next: a second broker started with the same configuration is told the
        // port is taken rather than that the store is locked.
        let mut listeners = Vec::with_capacity(endpoints.len());
        for (addr, endpoint) in endpoints {
            let bind_err = |source| ServerError::Bind { addr, source };
            let socket = bind_listener(addr).map_err(bind_err)?;
            let local_addr = socket.local_addr().map_err(bind_err)?;
            listeners.push(BoundListener {
                socket,
                local_addr,
                endpoint,
            });
        }
        let admin = AdminServer::bind(&config.admin).await?;
        let metrics = Metrics::new(&Config::version()).map_err(ServerError::Metrics)?;
        let local_addr = listeners
            .first()
            .map(|l| l.local_addr)
            .unwrap_or_else(|| config.listener.socket_addr());
        let mut cluster_control = None;
        let (broker, storage) = if config.storage.enabled {
            let Opened {
                storage,
                broker,
                commits,
                remote,
                control,
                links,
                proposer,
            } = storage::open(&config, local_addr).await?;
            let broker = SharedBroker::new(broker, Some(commits));
            let forward_latency = metrics.forward_latency().clone();
            links.set_forward_observer(Box::new(move |rtt| {
                forward_latency.observe(rtt.as_secs_f64());
            }));
            broker.attach_links(links.clone());
            tokio::spawn(crate::adopter::run(
                Arc::downgrade(&broker),
                links,
                proposer,
            ));
            tokio::spawn(storage::apply_remote(remote, broker.clone()));
            cluster_control = Some(control);
            (broker, Some(storage))
        } else {
            tracing::info!("Storage is disabled: all state is kept in memory only.");
            let broker = Broker::new(config.broker_config(), now());
            (SharedBroker::new(broker, None), None)
        };
        if let Some(acl) = acl {
            broker.set_authorizer(Some(acl));
        }
        broker.set_publish_latency(metrics.publish_latency());
        let (parked_readers, parked_writers, _) = metrics.parked();
        let limits = LiveLimits::new(
            &config.limits,
            ConnectionSettings {
                connect_timeout: config.limits.connect_timeout(),
                max_packet_size: config.broker.max_packet_size,
                max_pending_bytes: config.limits.max_pending_bytes,
                dormant_after: config.limits.dormant_after(),
                publish_rate: PublishRateLimits::from_limits(&config.limits),
                publish_latency: metrics.publish_latency().clone(),
                parked_readers,
                parked_writers,
            },
        );
        let counters = Arc::new(GuardCounters::default());
        let cluster = storage.as_ref().map(Storage::metrics_source);
        let collector = NodeCollector::new(NodeSources {
            broker: broker.clone(),
            limits: limits.clone(),
            guards: counters.clone(),
            cluster: cluster.clone(),
        })
        .map_err(ServerError::Metrics)?;
        metrics
            .register(Box::new(collector))
            .map_err(ServerError::Metrics)?;
        let ready = Arc::new(Readiness::new(cluster, config.cluster.node_id));
        Ok(BoundServer {
            config,
            listeners,
            local_addr,
            broker,
            limits,
            counters,
            storage,
            admin,
            metrics,
            ready,
            cluster_control,
        })
    }
}

impl BoundServer {
    /// The address actually bound by `[listener]` (the real port when the config asked for
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every listener's scheme (`tcp`, `tls`, `ws`, `wss`) and bound address, `[listener]`
    /// first, then `[listeners.NAME]` in name order.
    pub fn listener_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        self.listeners
            .iter()
            .map(|l| (l.endpoint.protocol.scheme(), l.local_addr))
            .collect()
    }

    /// The SIGHUP step for certificates, password and ACL files (for `ReloadContext`).
    pub(crate) fn security_reload(&self) -> SecurityReload {
        SecurityReload {
            endpoints: self.listeners.iter().map(|l| l.endpoint.clone()).collect(),
            broker: self.broker.clone(),
        }
    }

    /// The address the admin HTTP listener (`/metrics`, `/healthz`, `/readyz`) bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// A handle that reloads the configuration from `source` (what SIGHUP does). `log` is
    /// the handle `init_logging` returned, when this process set up logging with it.
    pub fn reloader(&self, source: ConfigSource, log: Option<LogHandle>) -> Reloader {
        Reloader::new(ReloadContext {
            source,
            current: parking_lot::Mutex::new(self.config.clone()),
            log,
            limits: self.limits.clone(),
            security: Some(self.security_reload()),
        })
    }

    /// Counts of what the listener-side guards refused (for metrics).
    pub fn guard_counters(&self) -> Arc<GuardCounters> {
        self.counters.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, tells the core (v5 clients get
    /// DISCONNECT 0x8B), and waits up to `limits.shutdown_grace_secs` for every connection to
    /// flush and close. With storage, it then waits (again up to the grace period) for every
    /// durable change to be committed and stops the store, so a clean stop loses nothing.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let BoundServer {
            config,
            listeners,
            broker,
            limits,
            counters,
            storage,
            admin,
            metrics,
            ready,
            cluster_control,
            ..
        } = self;
        let (_, _, dormant) = metrics.parked();
        let dormant =
            DormantPool::start(dormant).map_err(|source| ServerError::DormantPool { source })?;
        let admin_task = tokio::spawn(admin.serve(
            AdminState {
                metrics,
                ready: ready.clone(),
                cluster: cluster_control,
                broker: broker.clone(),
            },
            std::future::pending(),
        ));
        let (notify_shutdown, _) = broadcast::channel(1);
        let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel::<()>(1);
        let shared = ListenerShared {
            broker: broker.clone(),
            limits: limits.clone(),
            login: Arc::new(LoginGuard::new(
                config.auth.login_limiter(),
                counters.clone(),
            )),
            counters: counters.clone(),
            notify_shutdown: notify_shutdown.clone(),
            shutdown_complete: shutdown_complete_tx,
            dormant,
        };
        let mut listeners: Vec<Listener> = listeners
            .into_iter()
            .map(|l| Listener {
                listener: l.socket,
                local_addr: l.local_addr,
                endpoint: l.endpoint,
                shared: shared.clone(),
            })
            .collect();
        drop(shared);
        let cluster_metrics = storage.as_ref().map(Storage::metrics_source);
        let ticker = tokio::spawn(tick(broker.clone(), cluster_metrics, counters.clone()));
        // Ends with the shutdown broadcast.
        tokio::spawn(
            limits
                .overload()
                .clone()
                .monitor(crate::shutdown::Shutdown::new(notify_shutdown.subscribe())),
        );

        // These lines' format is stable: scripts and the end-to-end tests find the bound
        // ports by matching `listening on (tcp|tls|ws|wss)://(\S+)` on stderr, where the
        // capture is the `SocketAddr` display form (`127.0.0.1:1883`, `[::1]:1883`). Each is
        // logged exactly once, at INFO, after the sockets are bound and right before accepting
        // starts; `[listener]`'s `tcp://` line comes first.
        for l in &listeners {
            tracing::info!(
                "{} listening on {}://{}",
                Config::version(),
                l.endpoint.protocol.scheme(),
                l.local_addr
            );
        }

        let accepting = futures_util::future::join_all(listeners.iter_mut().map(Listener::run));
        ready.set_accepting(true);
        tokio::select! {
            _ = accepting => {}
            _ = shutdown => {}
        }
        ready.set_accepting(false);

        tracing::info!("Shutting down: no longer accepting connections.");
        // Closes the sockets, and drops the listeners' shutdown senders.
        drop(listeners);
        // The core queues DISCONNECT 0x8B for v5 clients and closes every session first; the
        // broadcast then reaches connections the core does not know yet (no CONNECT so far).
        broker.shutdown();
        let _ = notify_shutdown.send(());
        drop(notify_shutdown);

        // One deadline for the whole drain (connections, then storage), so the process exits
        // within `limits.shutdown_grace_secs` whatever the clients do.
        let grace = limits.shutdown_grace();
        let deadline = tokio::time::Instant::now() + grace;
        if tokio::time::timeout_at(deadline, shutdown_complete_rx.recv())
            .await
            .is_err()
        {
            let open = limits.slots().open();
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
            storage
                .shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await;
        }
        // Scrapes and probes are answered until here (`/readyz` says not ready while draining).
        admin_task.abort();
        tracing::info!("Shutdown complete.");
        Ok(())
    }
}

/// One bound listener socket, not accepting yet.
struct BoundListener {
    socket: TcpListener,
    local_addr: SocketAddr,
    endpoint: Arc<Endpoint>,
}

/// Feeds the core its periodic tick, with the cluster view for `$SYS/cluster/...`.
async fn tick(
    broker: Arc<SharedBroker>,
    cluster: Option<midge_cluster::ClusterMetricsSource>,
    counters: Arc<GuardCounters>,
) {
    let mut interval = interval(TICK_INTERVAL);
    // After a stall, one catch-up tick is enough: the core works from `now`, not tick counts.
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let view = cluster.as_ref().map(|source| {
            let m = source.metrics();
            ClusterSys {
                node_id: m.node_id,
                nodes: m.members.len(),
                voters: m.voters.len(),
                leader: m.leader,
                term: m.term,
            }
        });
        let (bytes_received, bytes_sent, sockets) = counters.traffic.totals();
        let traffic = TrafficSys {
            bytes_received,
            bytes_sent,
            sockets,
        };
        broker.tick(view, traffic);
    }
}

/// Connections the kernel completes and queues for a listener before they are accepted
/// (capped by `net.core.somaxconn`, 4096 on current kernels). A burst beyond the queue has its
/// handshakes dropped, and clients retry them only a second or more later.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a client listener with address reuse and a deep accept queue.
fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

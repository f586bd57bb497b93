//! The accept loop of one listener, and the transport handshakes (TLS, WebSocket) that turn
//! an accepted socket into a byte stream for the connection code.

use crate::authenticator::LoginGuard;
use crate::config::ListenerProtocol;
use crate::connection::{Connection, DormantSession, SessionTask};
use crate::connection_slots::Slot;
use crate::dormant_pool::{Dormant, DormantPool};
use crate::endpoint::Endpoint;
use crate::guard_counters::{Guard, GuardCounters};
use crate::ip_guard::IpSlot;
use crate::live_limits::LiveLimits;
use crate::peer_identity::common_name;
use crate::shared_broker::SharedBroker;
use crate::shutdown::Shutdown;
use crate::ws_stream;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

/// First pause after a failed accept; doubled on each further failure.
const ACCEPT_BACKOFF_START: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What every listener's connections share.
#[derive(Clone)]
pub(crate) struct ListenerShared {
    pub(crate) broker: Arc<SharedBroker>,
    /// `[limits]`, as reloaded: the connection cap and the per-connection settings.
    pub(crate) limits: Arc<LiveLimits>,
    /// The failed-login limiter.
    pub(crate) login: Arc<LoginGuard>,
    /// What the guards refused.
    pub(crate) counters: Arc<GuardCounters>,
    /// Each connection subscribes; the server sends once on shutdown.
    pub(crate) notify_shutdown: broadcast::Sender<()>,
    /// Cloned into each connection task and dropped when it ends, so the server knows all
    /// connections are done when the receiver sees every sender gone.
    pub(crate) shutdown_complete: mpsc::Sender<()>,
    /// Where quiet plain-TCP connections wait without a task.
    pub(crate) dormant: DormantPool,
}

/// Accepts connections on one socket and spawns a task for each.
pub(crate) struct Listener {
    pub(crate) listener: TcpListener,
    pub(crate) local_addr: SocketAddr,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) shared: ListenerShared,
}

impl Listener {
    /// Accepts forever; the server stops it by dropping this future.
    pub(crate) async fn run(&mut self) {
        loop {
            let (socket, peer) = self.accept().await;
            self.shared.counters.traffic.socket_opened();
            // Over the cap the connection is still accepted, so the client sees a prompt close
            // instead of hanging in the kernel backlog until its connect times out.
            let slots = self.shared.limits.slots();
            let Some(slot) = slots.try_take() else {
                tracing::warn!(
                    "Connection from {peer} refused: max_connections ({}) reached.",
                    slots.max()
                );
                drop(socket);
                continue;
            };
            let listener_slot = match &self.endpoint.slots {
                Some(slots) => match slots.try_take() {
                    Some(slot) => Some(slot),
                    None => {
                        self.shared.counters.count(Guard::ListenerConnections);
                        tracing::warn!(
                            "Connection from {peer} refused: {}.max_connections ({}) reached.",
                            self.endpoint.name,
                            slots.max()
                        );
                        drop(socket);
                        continue;
                    }
                },
                None => None,
            };
            let ip_slot = match self
                .shared
                .limits
                .ip_guard()
                .admit(peer.ip(), Instant::now())
            {
                Ok(ip_slot) => ip_slot,
                Err(guard) => {
                    self.shared.counters.count(guard);
                    tracing::info!("Connection from {peer} refused: {}.", refusal(guard));
                    drop(socket);
                    continue;
                }
            };
            tracing::info!(
                "New connection from {peer} on port {}.",
                self.local_addr.port()
            );
            // Small MQTT packets (acks, pings) must not wait for Nagle's algorithm.
            if let Err(err) = socket.set_nodelay(true) {
                tracing::debug!("Cannot set TCP_NODELAY for {peer}: {err}.");
            }
            let task = Accepted {
                socket,
                peer,
                endpoint: self.endpoint.clone(),
                shared: self.shared.clone(),
                // Subscribed here, not in the task: a notice sent before the task first runs
                // must still reach it.
                shutdown: Shutdown::new(self.shared.notify_shutdown.subscribe()),
            };
            let slots = ConnSlots {
                _slot: slot,
                _listener_slot: listener_slot,
                _ip_slot: ip_slot,
                _done: self.shared.shutdown_complete.clone(),
            };
            let pool = self.shared.dormant.clone();
            // Plain TCP, the common case, gets a task with only its own state in it (see
            // `Accepted::serve`).
            let open: Pin<Box<dyn Future<Output = Option<SessionTask>> + Send>> =
                if self.endpoint.protocol == ListenerProtocol::Mqtt {
                    Box::pin(task.serve_plain())
                } else {
                    Box::pin(task.serve())
                };
            tokio::spawn(async move {
                // The handshakes and the CONNECT, then the session: the first allocation is
                // freed before the session starts, so a connection keeps only the second.
                if let Some(session) = open.await {
                    run_session(session, slots, pool).await;
                }
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

/// What a connection holds until it ends: its places under the connection caps, and the
/// sender that tells the server at shutdown that it is still open.
struct ConnSlots {
    _slot: Slot,
    _listener_slot: Option<Slot>,
    _ip_slot: IpSlot,
    _done: mpsc::Sender<()>,
}

/// Runs a session; if it goes dormant, hands it to the pool with its slots.
async fn run_session(session: SessionTask, slots: ConnSlots, pool: DormantPool) {
    if let Some(session) = session.await {
        pool.admit(Box::new(Sleeping { session, slots }));
    }
}

/// A dormant session in the pool, with its slots.
struct Sleeping {
    session: DormantSession,
    slots: ConnSlots,
}

impl Dormant for Sleeping {
    fn fd(&self) -> RawFd {
        self.session.fd()
    }

    fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.session.poll_events(cx)
    }

    fn wake(self: Box<Self>, pool: &DormantPool, runtime: &Handle, stay_awake: bool) {
        let Sleeping { session, slots } = *self;
        let pool = pool.clone();
        // Put back together in the task: tokio registers the socket from within its runtime.
        runtime.spawn(async move { run_session(session.resume(stay_awake), slots, pool).await });
    }
}

/// A socket just accepted: its transport handshake is still to do.
struct Accepted {
    socket: TcpStream,
    peer: SocketAddr,
    endpoint: Arc<Endpoint>,
    shared: ListenerShared,
    shutdown: Shutdown,
}

impl Accepted {
    /// Opens an MQTT session over plain TCP: no handshake to do.
    async fn serve_plain(self) -> Option<SessionTask> {
        let Accepted {
            socket,
            peer,
            endpoint,
            shared,
            shutdown,
        } = self;
        let settings = shared.limits.connection_settings();
        let connection = new_connection(&shared, &endpoint, peer, &settings, shutdown);
        let (reader, writer) = socket.into_split();
        connection.open(reader, writer, None).await
    }

    /// Completes the transport handshake (bounded by `limits.connect_timeout_secs`, and cut
    /// short by shutdown), then opens an MQTT session on the resulting stream.
    ///
    /// Every handshake and every `Connection::open` is boxed, and plain TCP has a future of
    /// its own (`serve_plain`): an async fn's state is as large as its largest await, so
    /// inline they made each connection's task about 27 KiB (the TLS and WebSocket variants
    /// included), even for a plain TCP client sitting idle. This way a connection allocates
    /// only the state of the path it takes, and none of it once its session runs.
    async fn serve(self) -> Option<SessionTask> {
        let Accepted {
            socket,
            peer,
            endpoint,
            shared,
            mut shutdown,
        } = self;
        let settings = shared.limits.connection_settings();
        let connection = |shutdown| new_connection(&shared, &endpoint, peer, &settings, shutdown);
        let max_message = settings.max_packet_size as usize + 5;
        let tls = endpoint.tls.as_ref().map(|t| t.acceptor());
        match (endpoint.protocol, tls) {
            (ListenerProtocol::Mqtt, _) => {
                // `Listener::run` sends plain TCP to `serve_plain`; this is the same.
                let (reader, writer) = socket.into_split();
                Box::pin(connection(shutdown).open(reader, writer, None)).await
            }
            (ListenerProtocol::Ws, _) => {
                let handshake = ws_stream::accept(socket, max_message);
                let ws = handshake_within(&settings, &mut shutdown, Box::pin(handshake)).await?;
                match ws {
                    Ok(ws) => {
                        let (reader, writer) = tokio::io::split(ws);
                        Box::pin(connection(shutdown).open(reader, writer, None)).await
                    }
                    Err(err) => {
                        ws_failed(&shared.counters, peer, &err);
                        None
                    }
                }
            }
            (ListenerProtocol::Tls | ListenerProtocol::Wss, Some(acceptor)) => {
                let tls =
                    handshake_within(&settings, &mut shutdown, Box::pin(acceptor.accept(socket)))
                        .await?;
                let tls = match tls {
                    Ok(tls) => tls,
                    Err(err) => {
                        shared.counters.count(Guard::TlsHandshakeFailed);
                        tracing::info!("TLS handshake with {peer} failed: {err}.");
                        return None;
                    }
                };
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|cert| common_name(cert));
                if endpoint.protocol == ListenerProtocol::Tls {
                    let (reader, writer) = tokio::io::split(tls);
                    return Box::pin(connection(shutdown).open(reader, writer, identity)).await;
                }
                let handshake = ws_stream::accept(tls, max_message);
                let ws = handshake_within(&settings, &mut shutdown, Box::pin(handshake)).await?;
                match ws {
                    Ok(ws) => {
                        let (reader, writer) = tokio::io::split(ws);
                        Box::pin(connection(shutdown).open(reader, writer, identity)).await
                    }
                    Err(err) => {
                        ws_failed(&shared.counters, peer, &err);
                        None
                    }
                }
            }
            (ListenerProtocol::Tls | ListenerProtocol::Wss, None) => {
                // `Endpoint::load` builds TLS for every tls/wss listener; nothing to serve.
                tracing::error!("Listener {} has no TLS configuration.", endpoint.name);
                None
            }
        }
    }
}

/// The MQTT side of a connection accepted on `endpoint`, with the limits in force now.
fn new_connection(
    shared: &ListenerShared,
    endpoint: &Arc<Endpoint>,
    peer: SocketAddr,
    settings: &Arc<crate::connection::ConnectionSettings>,
    shutdown: Shutdown,
) -> Connection {
    Connection {
        id: shared.broker.next_conn_id(),
        peer,
        broker: shared.broker.clone(),
        settings: settings.clone(),
        shutdown,
        endpoint: endpoint.clone(),
        login: shared.login.clone(),
        overload: shared.limits.overload().clone(),
        counters: shared.counters.clone(),
    }
}

/// Runs a transport handshake with the CONNECT timeout; `None` when it timed out or the
/// server is shutting down (the socket is then just closed).
async fn handshake_within<T>(
    settings: &crate::connection::ConnectionSettings,
    shutdown: &mut Shutdown,
    handshake: impl Future<Output = io::Result<T>>,
) -> Option<io::Result<T>> {
    tokio::select! {
        res = timeout(settings.connect_timeout, handshake) => match res {
            Ok(res) => Some(res),
            Err(_) => {
                tracing::debug!("A client did not finish its handshake in time, closing.");
                None
            }
        },
        _ = shutdown.recv() => None,
    }
}

/// Which per-address limit a refused connection hit, for the log.
fn refusal(guard: Guard) -> &'static str {
    match guard {
        Guard::ConnectionRate => {
            "too many new connections from its address (max_connection_rate_per_ip)"
        }
        _ => "too many connections open from its address (max_connections_per_ip)",
    }
}

fn ws_failed(counters: &GuardCounters, peer: SocketAddr, err: &io::Error) {
    counters.count(Guard::WsHandshakeFailed);
    tracing::info!("WebSocket handshake with {peer} failed: {err}.");
}

//! One client connection: waits for CONNECT, authenticates it, then reads and decodes packets
//! and feeds them to the core, while a writer task, started whenever something is queued and
//! ended when the queue stays empty, sends what the core queues for it. A quiet plain TCP
//! connection leaves its task altogether for the dormant pool (`dormant.rs`).
//!
//! Every transport (TCP, TLS, WebSocket, secure WebSocket) ends up here as a reading and a
//! writing half of a byte stream, so they all share this one path.

use crate::authenticator::LoginGuard;
use crate::config::PublishRateAction;
use crate::connect_sniff::looks_like_v5_connect;
use crate::connection_handle::ConnHandle;
use crate::endpoint::Endpoint;
use crate::enhanced_auth::{Exchange, Refusal};
use crate::guard_counters::{Guard, GuardCounters};
use crate::log_name::LogName;
use crate::moment::Moment;
use crate::overload::OverloadGuard;
use crate::parkable::{Busy, IdleTimer, Next, Park, Parkable, FIRST_IDLE_AFTER};
use crate::publish_latency::PublishLatency;
use crate::publish_rate::{Admission, PublishRateGuard, PublishRateLimits};
use crate::shared_broker::{ConnectOutcome, SharedBroker};
use crate::shutdown::Shutdown;
use crate::traffic::Counted;
use crate::writer::{ConnWriter, WriterExit};
use crate::writer_slot::{WriterResult, WriterSlot};
use bytes::BytesMut;
pub(crate) use dormant::{DormantSession, SessionReader};
use futures_util::FutureExt;
use midge_codec::{ConnAck, Connect, DecodeError, Disconnect, Packet, ProtocolVersion, ReasonCode};
use midge_core::{ConnId, EnhancedAuth};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::timeout;

/// Spare room kept in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// The read buffer of a connection with nothing buffered: a connection between bursts waits
/// with this much instead of [`READ_CHUNK`] (and a parked one with none: it reads into this
/// much stack). Small packets (a PINGREQ, an acknowledgement, a short PUBLISH) fit it whole; a
/// read that fills it is followed at once by a full-size one.
const IDLE_READ: usize = 256;

/// How long a closing connection may take to flush its last packets before its writer is
/// aborted. A peer that has not taken a few kilobytes in this time is gone or hostile.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

mod dormant;

/// Settings every connection needs, taken from the validated config once.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    /// Time allowed between accept and a complete CONNECT.
    pub(crate) connect_timeout: Duration,
    /// Largest packet decoded from the client.
    pub(crate) max_packet_size: u32,
    /// Slow-reader guard for outgoing QoS 0 publishes.
    pub(crate) max_pending_bytes: usize,
    /// `limits.dormant_after_ms`: a connection whose last quiet spell was shorter keeps its
    /// task when quiet again, and its writer keeps its task this long when idle.
    pub(crate) dormant_after: Duration,
    /// The publish rate limits (`limits.max_publish_rate` and the rest).
    pub(crate) publish_rate: PublishRateLimits,
    /// `midge_publish_latency_seconds`; each connection observes it through a local copy.
    pub(crate) publish_latency: prometheus::Histogram,
    /// `midge_connections_parked{side="read"}`: sessions whose reading half is parked.
    pub(crate) parked_readers: prometheus::IntGauge,
    /// `midge_connections_parked{side="write"}`: writers that are parked.
    pub(crate) parked_writers: prometheus::IntGauge,
}

/// An accepted connection, its transport handshake done, that has not been served yet.
pub(crate) struct Connection {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) broker: Arc<SharedBroker>,
    pub(crate) settings: Arc<ConnectionSettings>,
    pub(crate) shutdown: Shutdown,
    /// The listener it came in on (authentication policy).
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) login: Arc<LoginGuard>,
    /// Overload mode: a CONNECT read while it is on is refused with Server busy.
    pub(crate) overload: Arc<OverloadGuard>,
    /// What the guards refused.
    pub(crate) counters: Arc<GuardCounters>,
}

/// A session, from its CONNECT being handed to the core until its connection is closed, or
/// until it is quiet enough to wait in the dormant pool: then it ends with what the pool keeps.
pub(crate) type SessionTask = Pin<Box<dyn Future<Output = Option<DormantSession>> + Send>>;

/// Why no session was started.
enum NoSession {
    TimedOut,
    Eof,
    Io(io::Error),
    NotConnect,
    Decode { err: DecodeError, v5: bool },
    Shutdown,
}

/// Why a session's read loop ended.
pub(crate) enum End {
    ClientDisconnect,
    Eof,
    Io(io::Error),
    Decode(DecodeError),
    /// The core closed the connection: a takeover, a kick, a keepalive timeout, or shutdown
    /// (the core closes every connection it knows then).
    ClosedByBroker,
    /// A v5 client published faster than its rate, with `publish_rate_action = "disconnect"`.
    OverRate,
    WriterEnded(WriterResult),
}

/// How a session's busy phase ended.
enum Loop {
    /// The session is over.
    End(End),
    /// The connection has been quiet for a while: park it.
    Quiet,
}

/// What decoding the buffered bytes found besides complete packets.
enum Decoded {
    /// Everything complete was decoded; read more.
    NeedMore,
    /// The client sent DISCONNECT; anything after it is ignored.
    Disconnect,
    /// The stream is broken from here on.
    Error(DecodeError),
    /// The last PUBLISH decoded went over the connection's publish rate: pause this long.
    OverRate(Duration),
}

impl Connection {
    /// Reads and authenticates the CONNECT, and returns the session to run until the
    /// connection closes; `None` if the connection was refused or went away first (it has been
    /// answered and closed then). Never panics on client input. `identity` is the Common Name
    /// of the client's verified TLS certificate, if it sent one.
    ///
    /// The session is a separate allocation: an async fn's state is as large as its largest
    /// await, so this stage's (timeouts, authentication, refusals) would otherwise stay
    /// allocated for the whole life of every session. The caller drops this future, and with
    /// it that state, before it runs the session.
    pub(crate) async fn open<R, W>(
        self,
        reader: R,
        writer: W,
        identity: Option<String>,
    ) -> Option<SessionTask>
    where
        R: AsyncRead + Send + Sync + Unpin + 'static,
        Counted<R>: SessionReader,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let Connection {
            id,
            peer,
            broker,
            settings,
            mut shutdown,
            endpoint,
            login,
            overload,
            counters,
        } = self;
        let mut reader = counters.traffic.reader(reader);
        let mut writer = counters.traffic.writer(writer);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let first = tokio::select! {
            res = timeout(
                settings.connect_timeout,
                read_connect(&mut reader, &mut buf, settings.max_packet_size),
            ) => res.unwrap_or(Err(NoSession::TimedOut)),
            _ = shutdown.recv() => Err(NoSession::Shutdown),
        };
        match first {
            Ok(connect) if overload.is_overloaded() => {
                counters.count(Guard::Overload);
                tracing::info!("Client {peer} refused: server overloaded (Server busy).");
                // Answered here, without the broker lock or the password check: both are
                // what an overloaded broker must not spend time on.
                send_connack(
                    &mut writer,
                    &settings,
                    ReasonCode::ServerBusy,
                    connect.protocol,
                )
                .await;
                let _ = writer.shutdown().await;
                None
            }
            Ok(mut connect) => {
                let mut auth = None;
                let verdict = if connect.protocol.is_v5()
                    && connect.properties.authentication_method.is_some()
                {
                    let exchange = Exchange {
                        reader: &mut reader,
                        writer: &mut writer,
                        buf: &mut buf,
                        answer_timeout: settings.connect_timeout,
                        max_packet_size: settings.max_packet_size,
                    };
                    // Boxed, like the other one-off stages below: their state is not kept
                    // in every connection's task for its whole life.
                    match Box::pin(exchange.run(&endpoint.auth, &login, peer.ip(), &mut connect))
                        .await
                    {
                        Ok(done) => {
                            auth = Some(done);
                            Ok(())
                        }
                        Err(Refusal::Reason(reason)) => Err(reason),
                        Err(Refusal::Gone) => {
                            tracing::info!(
                                "Client {peer} left during enhanced authentication, closing."
                            );
                            let _ = writer.shutdown().await;
                            return None;
                        }
                    }
                } else {
                    Box::pin(
                        endpoint
                            .auth
                            .check(&login, peer.ip(), &mut connect, identity),
                    )
                    .await
                };
                if let Err(reason) = &verdict {
                    tracing::info!(
                        "Client {peer} on {} failed authentication ({reason:?}).",
                        endpoint.name
                    );
                }
                // The shutdown notice is for connections the core does not know yet: once the
                // session starts, the core closes it at shutdown (`SharedBroker::shutdown`),
                // and refuses its CONNECT if shutdown came first. So the session does not
                // listen for it, and an idle connection holds no receiver and no future for it.
                drop(shutdown);
                // Boxed: most connections have no rate limit, and every one would carry its
                // size.
                let rate =
                    PublishRateGuard::new(&settings.publish_rate, crate::shared_broker::now())
                        .map(Box::new);
                let mut session = Session {
                    base: SessionBase {
                        id,
                        broker,
                        settings,
                        rate,
                        counters,
                    },
                    reader,
                    buf,
                };
                let opening = Opening {
                    connect,
                    peer,
                    writer,
                    refused: verdict.err(),
                    auth,
                };
                let live = session.start(opening).await?;
                let parked = session.base.settings.parked_readers.clone();
                Some(Box::pin(Parkable::busy(
                    Serving { session, live },
                    Woken::Read,
                    parked,
                )))
            }
            Err(why) => {
                if let NoSession::Decode {
                    err: DecodeError::PacketTooLarge { .. },
                    ..
                } = &why
                {
                    counters.count(Guard::PacketTooLarge);
                }
                refuse(&mut writer, peer, &settings, why).await;
                None
            }
        }
    }
}

/// What the CONNECT stage hands to the session.
struct Opening<W> {
    connect: Box<Connect>,
    /// The client's address, for the log.
    peer: SocketAddr,
    writer: W,
    /// The reason authentication refused the client with, if it did.
    refused: Option<ReasonCode>,
    /// The enhanced authentication exchange's outcome, if there was one.
    auth: Option<EnhancedAuth>,
}

/// Reads until the first packet is complete; it must be a CONNECT.
async fn read_connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    max_packet_size: u32,
) -> Result<Box<Connect>, NoSession> {
    loop {
        if let Some(&first) = buf.first() {
            // Refuse anything else from its first byte rather than buffer a whole packet.
            if first >> 4 != 1 {
                return Err(NoSession::NotConnect);
            }
            let v5 = looks_like_v5_connect(buf);
            // CONNECT decodes by the version it announces; the version argument only matters
            // for other packet types, which are refused anyway.
            match midge_codec::decode(buf, ProtocolVersion::V3_1_1, max_packet_size) {
                Ok(Some(Packet::Connect(connect))) => return Ok(connect),
                Ok(Some(_)) => return Err(NoSession::NotConnect),
                Ok(None) => {}
                Err(err) => return Err(NoSession::Decode { err, v5 }),
            }
        }
        buf.reserve(READ_CHUNK);
        match reader.read_buf(buf).await {
            Ok(0) => return Err(NoSession::Eof),
            Ok(_) => {}
            Err(err) => return Err(NoSession::Io(err)),
        }
    }
}

/// Answers a connection that never got a session, then closes it.
async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    peer: SocketAddr,
    settings: &ConnectionSettings,
    why: NoSession,
) {
    let reply = match &why {
        NoSession::TimedOut => {
            tracing::debug!(
                "Client {peer} sent no CONNECT within {} s, closing.",
                settings.connect_timeout.as_secs()
            );
            None
        }
        NoSession::Eof => {
            tracing::debug!("Client {peer} closed its connection before CONNECT.");
            None
        }
        NoSession::Io(err) => {
            tracing::debug!("Socket error on client {peer} before CONNECT: {err}.");
            None
        }
        NoSession::Shutdown => None,
        NoSession::NotConnect => {
            tracing::info!("Client {peer} sent a first packet that is not CONNECT, closing.");
            None
        }
        NoSession::Decode {
            err: DecodeError::UnsupportedProtocolVersion,
            ..
        } => {
            tracing::info!("Client {peer} asked for an unsupported protocol version, closing.");
            // MQTT-3.1.2-2: answer in the 3.1.1 format with return code 1, which every
            // version's client can read, then close.
            Some((
                ReasonCode::UnsupportedProtocolVersion,
                ProtocolVersion::V3_1_1,
            ))
        }
        NoSession::Decode { err, v5 } => {
            tracing::info!("Client {peer} sent an invalid CONNECT ({err}), closing.");
            // A v5 client is told why (MQTT 5, 4.13.1); a v3 client only sees the close.
            v5.then(|| (err.reason_code(), ProtocolVersion::V5))
        }
    };
    if let Some((reason, version)) = reply {
        send_connack(writer, settings, reason, version).await;
    }
    let _ = writer.shutdown().await;
}

/// Writes a refusing CONNACK straight to the socket (the connection has no writer task yet).
/// v3 clients get the return code the codec maps `reason` to (0x89 Server busy: 3).
async fn send_connack<W: AsyncWrite + Unpin>(
    writer: &mut W,
    settings: &ConnectionSettings,
    reason: ReasonCode,
    version: ProtocolVersion,
) {
    let connack = Packet::ConnAck(ConnAck {
        session_present: false,
        reason,
        properties: Default::default(),
    });
    let mut out = BytesMut::new();
    if midge_codec::encode(&connack, version, &mut out).is_ok() {
        // A few bytes fit any socket buffer; the timeout only guards against the absurd.
        let _ = timeout(settings.connect_timeout, writer.write_all(&out)).await;
    }
}

/// A session that was started: its writer and what the end of it reports.
struct Live {
    own: ConnHandle,
    /// The writer: a task while it has something to write.
    writer: WriterSlot,
    /// Whether the session may leave its task for the dormant pool when quiet at all.
    may_sleep: bool,
    /// Whether it goes there the next time it is quiet: not when its last quiet spell was
    /// shorter than `limits.dormant_after_ms`.
    sleepy: bool,
    /// When the connection last went quiet (parked); `None` until it first has.
    quiet_since: Option<Moment>,
    version: ProtocolVersion,
    /// The client id (the core's copy, shared), which logs name the client by.
    client_id: Arc<str>,
}

impl Live {
    /// The connection's quiet spell ended: it may go dormant next time only if this one
    /// lasted `dormant_after` or more. A new connection, never quiet yet, may: one that goes
    /// quiet at once is likely to stay so.
    fn woke(&mut self, dormant_after: Duration) {
        self.sleepy = self
            .quiet_since
            .is_none_or(|since| since.elapsed() >= dormant_after);
    }
}

/// A connection whose CONNECT was read: the reading half, supervising the writer task.
struct Session<R> {
    base: SessionBase,
    reader: R,
    /// Holds bytes received after the CONNECT too: clients may pipeline packets behind it.
    buf: BytesMut,
}

impl<R> Session<R> {
    /// A session reading from `reader`, with nothing buffered.
    fn new(base: SessionBase, reader: R) -> Session<R> {
        Session {
            base,
            reader,
            buf: BytesMut::new(),
        }
    }
}

/// A session without its socket and read buffer: what a dormant one keeps.
struct SessionBase {
    id: ConnId,
    broker: Arc<SharedBroker>,
    settings: Arc<ConnectionSettings>,
    /// The publish rate's bucket, if it sets a limit; kept while parked, so going quiet for a
    /// moment does not refill it.
    rate: Option<Box<PublishRateGuard>>,
    counters: Arc<GuardCounters>,
}

/// A running session between its busy phases: all a quiet connection's reading side holds.
pub(crate) struct Serving<R> {
    session: Session<R>,
    live: Live,
}

/// What ended a parked session's idle spell.
pub(crate) enum Woken {
    /// Bytes arrived (they are in the session's buffer).
    Read,
    /// The session is over.
    End(End),
    /// Nothing to do on either side: leave the task for the dormant pool.
    Sleep,
}

impl<R: SessionReader> Park for Serving<R> {
    type Wake = Woken;
    type Output = Option<DormantSession>;

    /// Polls what the read loop selects over, in its order: a close by the broker, the writer
    /// ending, then the socket, which is read into the stack so a parked session holds no
    /// buffer.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Woken> {
        let live = &mut self.live;
        if live.own.poll_close_requested(cx).is_ready() {
            return Poll::Ready(Woken::End(End::ClosedByBroker));
        }
        if let Poll::Ready(res) = Pin::new(&mut live.writer).poll(cx) {
            return Poll::Ready(Woken::End(End::WriterEnded(res)));
        }
        let mut chunk = [0u8; IDLE_READ];
        let mut read = ReadBuf::new(&mut chunk);
        let session = &mut self.session;
        match Pin::new(&mut session.reader).poll_read(cx, &mut read) {
            Poll::Pending if live.may_sleep && live.sleepy && live.writer.is_idle() => {
                Poll::Ready(Woken::Sleep)
            }
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(err)) => Poll::Ready(Woken::End(End::Io(err))),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Woken::End(End::Eof)),
            Poll::Ready(Ok(())) => {
                session.buf = BytesMut::with_capacity(IDLE_READ);
                session.buf.extend_from_slice(read.filled());
                Poll::Ready(Woken::Read)
            }
        }
    }

    fn resume(self, wake: Woken) -> Busy<Self, Option<DormantSession>> {
        let Serving { session, mut live } = self;
        live.woke(session.base.settings.dormant_after);
        let first = match wake {
            Woken::Read => None,
            Woken::End(end) => Some(end),
            Woken::Sleep => return R::sleep(Serving { session, live }),
        };
        Box::pin(session.run(live, first))
    }
}

impl<R: SessionReader> Session<R> {
    /// Serves the session until it ends, then closes the connection; or, once the connection
    /// has been quiet for [`crate::parkable::IDLE_AFTER`], returns it to be parked. `first`,
    /// if set, is how a parked session ended.
    ///
    /// The end is boxed apart from the read loop, and the start is part of the CONNECT stage
    /// (`Connection::open`): their state (a request to a peer for the session, the close
    /// timer, the log lines) is needed once, and inline it would be part of every busy phase.
    ///
    /// Not an `async fn`: one moves its arguments from the future's captures into locals,
    /// and both stay in its state, so the session's fields would be in its memory twice. An
    /// `async move` block uses its captures in place.
    #[allow(clippy::manual_async_fn)]
    fn run(
        mut self,
        mut live: Live,
        first: Option<End>,
    ) -> impl Future<Output = Next<Serving<R>, Option<DormantSession>>> + Send {
        async move {
            let end = match first {
                Some(end) => end,
                None => match self.read_loop(&mut live).await {
                    Loop::End(end) => end,
                    Loop::Quiet => {
                        live.quiet_since = Some(Moment::now());
                        return Next::Park(Serving {
                            session: self,
                            live,
                        });
                    }
                },
            };
            Box::pin(self.end(live, end)).await;
            Next::Done(None)
        }
    }

    /// Hands the CONNECT to the core (as a refusal with `refused`'s reason when
    /// authentication failed) and starts the writer; `None` if the core refused it (the
    /// refusal has been sent and the connection closed).
    async fn start<W: AsyncWrite + Send + Unpin + 'static>(
        &mut self,
        opening: Opening<W>,
    ) -> Option<Live> {
        let Opening {
            connect,
            peer,
            writer,
            refused,
            auth,
        } = opening;
        let version = connect.protocol;
        let requested_id = connect.client_id.clone();
        // Mosquitto's numbering in "(pN, ...)": 1 = 3.1, 2 = 3.1.1, 5 = 5.0, so log tooling
        // built for Mosquitto reads these lines unchanged.
        let protocol = match version {
            ProtocolVersion::V3_1 => 1,
            ProtocolVersion::V3_1_1 => 2,
            ProtocolVersion::V5 => 5,
        };
        let clean = u8::from(connect.clean_start);
        // Mosquitto appends ", u'USER'" when the client gave a username.
        let user = connect
            .username
            .as_deref()
            .map(|u| format!(", u'{u}'"))
            .unwrap_or_default();
        let keep_alive = connect.keep_alive;

        let (handle, outbox) = ConnHandle::new(
            self.base.settings.max_pending_bytes,
            self.base.broker.commit_watch(),
        );
        let own = handle.clone();
        // Idle until the CONNACK is queued; it gets a task when it has something to write.
        let linger = self.base.settings.dormant_after;
        let mut writer = WriterSlot::idle(
            Box::new(ConnWriter::new(writer, outbox, version, linger)),
            self.base.settings.parked_writers.clone(),
        );

        if refused.is_none() {
            self.base.broker.fetch_session(&connect).await;
        }
        let client_id = match self
            .base
            .broker
            .connect(self.base.id, handle, connect, refused, auth)
        {
            ConnectOutcome::Accepted { client_id } => {
                tracing::info!(
                    "New client connected from {} as {} (p{protocol}, c{clean}, \
                     k{keep_alive}{user}).",
                    peer,
                    LogName(&client_id)
                );
                client_id
            }
            ConnectOutcome::Refused { reason } => {
                let name = if requested_id.is_empty() {
                    format!("<{peer}>")
                } else {
                    LogName(&requested_id).to_string()
                };
                tracing::info!("Client {name} from {peer} refused: {reason:?}.");
                self.finish(&own, &mut writer).await;
                return None;
            }
            ConnectOutcome::ShuttingDown => {
                own.send(Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason: ReasonCode::ServerUnavailable,
                    properties: Default::default(),
                }));
                self.finish(&own, &mut writer).await;
                return None;
            }
        };

        Some(Live {
            own,
            writer,
            may_sleep: R::CAN_SLEEP,
            sleepy: true,
            quiet_since: None,
            version,
            client_id,
        })
    }

    /// Reads, decodes and hands packets to the core until something ends the session, or
    /// the connection has been quiet for a while with nothing buffered.
    async fn read_loop(&mut self, live: &mut Live) -> Loop {
        let version = live.version;
        let mut packets = Vec::new();
        let mut latency = PublishLatency::new(&self.base.settings.publish_latency);
        let mut quiet = match live.quiet_since {
            None => IdleTimer::with_period(FIRST_IDLE_AFTER),
            Some(_) => IdleTimer::new(),
        };
        // v3 has no way to say why it is disconnected, so it is always throttled.
        let disconnect_over_rate = self.base.settings.publish_rate.action
            == PublishRateAction::Disconnect
            && version.is_v5();
        let mut throttled = false;
        loop {
            // Everything already buffered goes to the core under one lock acquisition, so a
            // burst of small packets costs one lock, not one per packet.
            let decoded = decode_all(
                &mut self.buf,
                version,
                self.base.settings.max_packet_size,
                &mut packets,
                self.base.rate.as_deref_mut(),
            );
            if matches!(decoded, Decoded::OverRate(_)) && disconnect_over_rate {
                // The PUBLISH that went over is not processed.
                packets.pop();
            }
            if !packets.is_empty() {
                let publishes = packets
                    .iter()
                    .filter(|p| matches!(p, Packet::Publish(_)))
                    .count();
                // Only a read with a PUBLISH in it is timed: in a QoS 1 fan-out most reads are
                // one acknowledgement each, and reading the clock twice for each showed.
                let started = (publishes > 0).then(std::time::Instant::now);
                if self
                    .base
                    .broker
                    .packets(self.base.id, &mut packets, started)
                {
                    if let Some(started) = started {
                        latency.record(publishes, started.elapsed());
                    }
                }
            }
            match decoded {
                Decoded::NeedMore => throttled = false,
                Decoded::Disconnect => return Loop::End(End::ClientDisconnect),
                Decoded::Error(err) => return Loop::End(End::Decode(err)),
                Decoded::OverRate(_) if disconnect_over_rate => {
                    self.base.counters.count(Guard::PublishRateDisconnected);
                    return Loop::End(End::OverRate);
                }
                Decoded::OverRate(pause) => {
                    // Counted once per stretch of throttling, not once per pause.
                    if !throttled {
                        self.base.counters.count(Guard::PublishRateThrottled);
                        tracing::debug!(
                            "Connection {} publishes faster than its rate; pausing its reads.",
                            self.base.id
                        );
                    }
                    throttled = true;
                    // Not reading is the throttle: the socket buffers fill and TCP flow
                    // control slows the client down, whatever its protocol version. The
                    // timer is boxed so that every connection's state does not carry one.
                    tokio::select! {
                        biased;
                        _ = live.own.close_requested() => return Loop::End(End::ClosedByBroker),
                        res = &mut live.writer, if !live.writer.is_done() => {
                            return Loop::End(End::WriterEnded(res));
                        }
                        _ = Box::pin(tokio::time::sleep(pause)) => {}
                    }
                    continue;
                }
            }
            let idle = self.buf.is_empty();
            if idle {
                // Everything read so far is decoded (payloads keep their own slices of the old
                // buffer alive): wait for more with a small buffer, so that a connection that
                // stays quiet holds IDLE_READ bytes, not READ_CHUNK.
                if self.buf.capacity() != IDLE_READ {
                    self.buf = BytesMut::with_capacity(IDLE_READ);
                }
            } else if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                // Closing wins over reading: once the core closed us, no more input is fed.
                biased;
                _ = live.own.close_requested() => return Loop::End(End::ClosedByBroker),
                res = &mut live.writer, if !live.writer.is_done() => {
                    return Loop::End(End::WriterEnded(res));
                }
                res = self.reader.read_buf(&mut self.buf) => match res {
                    Ok(0) => return Loop::End(End::Eof),
                    Ok(_) => quiet.touch(),
                    Err(err) => return Loop::End(End::Io(err)),
                },
                _ = quiet.idle(), if idle => {
                    // Nothing read for a whole period and nothing buffered: park, with no
                    // buffer and no future (the payloads keep their slices of this one).
                    self.buf = BytesMut::new();
                    return Loop::Quiet;
                }
            }
            if idle && self.buf.len() == self.buf.capacity() {
                // The small buffer filled up, so more is probably waiting: take what is there
                // now in a full-size read rather than one small read per loop. An error or
                // end of stream shows again on the next read, which reports it.
                self.buf.reserve(READ_CHUNK);
                let _ = self.reader.read_buf(&mut self.buf).now_or_never();
            }
        }
    }
}

impl<R: Send + Sync> Session<R> {
    /// Says why the session ended, to the client if its version can carry it and in the log,
    /// and closes the connection.
    async fn end(&mut self, live: Live, end: End) {
        let Live {
            own,
            mut writer,
            version,
            client_id,
            ..
        } = live;
        let client_id = LogName(&client_id);
        if let End::Decode(err @ DecodeError::PacketTooLarge { .. }) = &end {
            tracing::debug!("{err}");
            self.base.counters.count(Guard::PacketTooLarge);
        }
        if let End::Decode(err) = &end {
            // MQTT 5 (4.13.2): say why before closing. v3 has no way to, so it just closes.
            if version.is_v5() {
                own.send(Packet::Disconnect(Disconnect::new(err.reason_code())));
            }
        }
        if let End::OverRate = &end {
            own.send(Packet::Disconnect(Disconnect::new(
                ReasonCode::MessageRateTooHigh,
            )));
        }
        let dropped = own.dropped_qos0();
        self.finish(&own, &mut writer).await;

        let shutting_down = self.base.broker.is_shutting_down();
        match end {
            End::ClientDisconnect => tracing::info!("Client {client_id} disconnected."),
            End::Eof => tracing::info!("Client {client_id} closed its connection."),
            End::Io(err) | End::WriterEnded(Ok(Err(err))) => {
                tracing::info!("Socket error on client {client_id}, disconnecting: {err}.")
            }
            End::Decode(err) => {
                tracing::info!("Client {client_id} disconnected due to {err}.")
            }
            End::OverRate => tracing::info!(
                "Client {client_id} disconnected: it published faster than max_publish_rate / \
                 max_publish_bytes_rate (Message rate too high)."
            ),
            End::WriterEnded(Ok(Ok(WriterExit::CommitFailed))) => tracing::warn!(
                "Client {client_id} disconnected: durable storage did not commit its request, \
                 so the acknowledgement was withheld (the client will retry)."
            ),
            End::ClosedByBroker | End::WriterEnded(Ok(Ok(WriterExit::Closed))) if shutting_down => {
                tracing::info!("Client {client_id} disconnected: server shutting down.")
            }
            End::ClosedByBroker | End::WriterEnded(Ok(Ok(WriterExit::Closed))) => {
                tracing::info!("Client {client_id} disconnected by the broker.")
            }
            End::WriterEnded(Err(err)) => {
                tracing::error!("Writer of client {client_id} failed: {err}.")
            }
        }
        if dropped > 0 {
            tracing::warn!(
                "Client {client_id} missed {dropped} QoS 0 message(s) because it read too slowly."
            );
        }
    }

    /// Forgets the connection in the core (unless the core closed it already), lets the
    /// writer flush and close, and waits for it for a bounded time.
    async fn finish(&self, own: &ConnHandle, writer: &mut WriterSlot) {
        self.base.broker.closed(self.base.id);
        own.close();
        if !writer.is_done() && timeout(CLOSE_FLUSH_TIMEOUT, &mut *writer).await.is_err() {
            tracing::debug!(
                "Connection {} did not take its last packets within {} s; dropping them.",
                self.base.id,
                CLOSE_FLUSH_TIMEOUT.as_secs()
            );
            writer.abort();
        }
    }
}

/// Decodes every complete packet in `buf` into `out`, charging each PUBLISH to `rate`; stops
/// after the first PUBLISH over the rate.
fn decode_all(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
    out: &mut Vec<Packet>,
    mut rate: Option<&mut PublishRateGuard>,
) -> Decoded {
    loop {
        let before = buf.len();
        match midge_codec::decode(buf, version, max_packet_size) {
            Ok(Some(packet)) => {
                let disconnect = matches!(packet, Packet::Disconnect(_));
                let publish = matches!(packet, Packet::Publish(_));
                out.push(packet);
                if disconnect {
                    return Decoded::Disconnect;
                }
                if let (true, Some(rate)) = (publish, rate.as_deref_mut()) {
                    let size = before - buf.len();
                    if let Admission::Pause(pause) = rate.admit(crate::shared_broker::now(), size) {
                        return Decoded::OverRate(pause);
                    }
                }
            }
            Ok(None) => return Decoded::NeedMore,
            Err(err) => return Decoded::Error(err),
        }
    }
}

//! The writer task of one connection: encodes queued packets and writes them in batches, and
//! holds back what follows a durable acknowledgement until its batch is committed.

use crate::commit_watch::{CommitFailed, CommitStatus, CommitWatch};
use crate::connection_handle::{qos0_cost, DrainNotice, HandleShared, Outbound, Outbox};
use crate::moment::Moment;
use crate::outbound_queue::IdleRx;
use crate::parkable::{IdleTimer, FIRST_IDLE_AFTER, IDLE_AFTER};
use crate::writer_slot::{IdleWriter, WriterEnd};
use bytes::BytesMut;
use midge_codec::{ConnAck, Disconnect, Packet, ProtocolVersion, ReasonCode};
use std::any::Any;
use std::io;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

/// Stop gathering more packets into one write once this many bytes are encoded: big enough that
/// a fan-out burst costs few syscalls, small enough that latency and memory stay low.
const BATCH_BYTES: usize = 64 * 1024;

/// A write buffer that grew beyond this (one huge packet) is released rather than kept.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

/// How a writer ended, when not by an I/O error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriterExit {
    /// After an [`Outbound::Close`], or once every sender was gone.
    Closed,
    /// A held acknowledgement's durable batch failed to commit: the connection was closed
    /// without sending it (see [`ConnWriter::task`]).
    CommitFailed,
}

/// What to do after encoding one item.
enum Step {
    /// Keep gathering.
    More,
    /// Write what is gathered, then close.
    Close,
    /// Write what is gathered, then wait for this durable batch.
    Wait(u64),
    /// Write what is gathered, then call this.
    Drained(DrainNotice),
    /// Write what is gathered, then wait for these requests to peers.
    Gate(Vec<midge_cluster::Ticket>),
}

/// Owns the socket's write half. Ends after an [`Outbound::Close`], when every sender is gone
/// (after writing what they queued), on an I/O error, or when a held acknowledgement fails.
pub(crate) struct ConnWriter<W> {
    socket: W,
    outbox: Outbox,
    version: ProtocolVersion,
    buf: BytesMut,
    /// Bytes of the last write, at most [`BATCH_BYTES`]: the room a buffer allocated after an
    /// idle spell starts with, so a connection sent a burst every few milliseconds allocates
    /// once per burst instead of growing the buffer by doubling, each step a copy.
    last_write: u32,
    /// When the writer last ended its task for want of anything to write.
    idle_since: Option<Moment>,
    /// Milliseconds a writer that was sent something soon after its last idle spell waits
    /// for more before it ends its task (`limits.dormant_after_ms`; otherwise
    /// [`IDLE_AFTER`]).
    linger_ms: u32,
}

impl<W: AsyncWrite + Send + Unpin + 'static> ConnWriter<W> {
    /// A writer encoding for a `version` connection.
    pub(crate) fn new(
        socket: W,
        outbox: Outbox,
        version: ProtocolVersion,
        linger: Duration,
    ) -> Self {
        ConnWriter {
            socket,
            outbox,
            version,
            // Allocated by the first packet, and let go of whenever the queue runs dry, so an
            // idle connection holds no write buffer.
            buf: BytesMut::new(),
            last_write: 0,
            idle_since: None,
            linger_ms: millis(linger),
        }
    }

    /// Runs until the connection is closed; the socket is shut down (FIN) on a clean end.
    ///
    /// An [`Outbound::WaitFor`] whose batch is not committed yet ends the current write: what
    /// was gathered before it goes out, and nothing after it (the held acknowledgement first)
    /// is written until the batch commits. Later packets queue behind it, so this connection's
    /// order is kept, while other connections' writers carry on. If the batch fails, the held
    /// acknowledgement and everything after it are dropped and the connection is closed (see
    /// [`ConnWriter::give_up`]).
    ///
    /// The task writes `first` and what follows it, and ends when the queue stays empty for
    /// [`crate::parkable::IDLE_AFTER`], handing back the writer's fields: a quiet connection
    /// has no writer task (see [`crate::writer_slot`]).
    async fn task(mut self: Box<Self>, first: Option<Outbound>) -> WriterEnd {
        let done = match first {
            Some(first) => self.serve(first).await,
            None => Some(self.shut().await),
        };
        match done {
            Some(exit) => WriterEnd::Exit(exit),
            None => {
                self.idle_since = Some(Moment::now());
                WriterEnd::Idle(self)
            }
        }
    }

    /// Writes `first` and whatever follows it until the queue stays empty for a while
    /// (`None`: park), or the writer is done.
    async fn serve(&mut self, first: Outbound) -> Option<io::Result<WriterExit>> {
        // A writer that was idle only briefly is likely to be sent something again soon (a
        // subscriber sent a message every few hundred milliseconds): it keeps its task for
        // longer, instead of ending it and being given a new one for each message.
        let linger = Duration::from_millis(u64::from(self.linger_ms));
        let period = match self.idle_since {
            Some(since) if since.elapsed() < linger => linger,
            Some(_) => IDLE_AFTER,
            // A new connection's writer, after its CONNACK.
            None => FIRST_IDLE_AFTER,
        };
        let mut idle = IdleTimer::with_period(period);
        let mut next = Some(first);
        loop {
            let first = match next.take() {
                Some(item) => item,
                None => tokio::select! {
                    biased;
                    item = self.outbox.rx.recv() => match item {
                        Some(item) => item,
                        None => return Some(self.shut().await),
                    },
                    _ = idle.idle() => return None,
                },
            };
            idle.touch();
            if self.buf.capacity() == 0 {
                self.buf.reserve(self.last_write as usize);
            }
            let mut qos0_bytes = 0;
            let mut step = self.encode(first, &mut qos0_bytes);
            // Take whatever else is already queued, so a burst goes out in one write.
            while matches!(step, Step::More) && self.buf.len() < BATCH_BYTES {
                match self.outbox.rx.try_recv() {
                    Some(next) => step = self.encode(next, &mut qos0_bytes),
                    None => break,
                }
            }
            if let Err(err) = self.write_buffered().await {
                return Some(Err(err));
            }
            // Only now has the backlog left us; counting it down earlier would let a client
            // that does not read accumulate unbounded bytes in the kernel-bound buffer.
            self.outbox
                .pending_qos0()
                .fetch_sub(qos0_bytes, Ordering::Relaxed);
            match step {
                Step::More => {
                    if self.outbox.rx.is_empty() {
                        self.buf = BytesMut::new();
                    }
                }
                Step::Close => return Some(self.shut().await),
                Step::Drained(notice) => notice.notify(),
                // The waits below, and giving up, are boxed: inline, their state would be
                // part of every busy writer's future (the two waits alone took it from 400
                // to 520 bytes).
                Step::Gate(tickets) => {
                    for ticket in tickets {
                        if !Box::pin(ticket.wait()).await {
                            // A QoS 1/2 message did not reach a peer with subscribers for it:
                            // the publisher is not acknowledged and retries.
                            let failed = CommitFailed {
                                reason: ReasonCode::ServerUnavailable,
                            };
                            return Some(Ok(Box::pin(self.give_up(failed)).await));
                        }
                    }
                }
                Step::Wait(seq) => {
                    let waited = match self.outbox.commits.as_mut() {
                        Some(commits) => Box::pin(commits.wait(seq)).await,
                        None => Ok(()),
                    };
                    if let Err(failed) = waited {
                        return Some(Ok(Box::pin(self.give_up(failed)).await));
                    }
                }
            }
        }
    }

    /// Shuts the socket down after a clean end.
    async fn shut(&mut self) -> io::Result<WriterExit> {
        self.socket.shutdown().await?;
        Ok(WriterExit::Closed)
    }

    /// Closes the connection after a held acknowledgement's batch failed, without sending it:
    /// the client never learns its request was accepted, so it still owns it and retries on
    /// reconnect, and nothing acknowledged is lost. If the held packet is a CONNACK, the
    /// client gets CONNACK 0x88 (Server unavailable; v3 return code 3) instead. Otherwise a
    /// v5 client gets a DISCONNECT saying why: 0x88 is not allowed in DISCONNECT (MQTT 5,
    /// 3.14.2.1), so an unavailable quorum or a commit timeout becomes 0x89 (Server busy), a
    /// full disk 0x97 (Quota exceeded), anything else 0x80. A v3 client just sees the close.
    async fn give_up(&mut self, failed: CommitFailed) -> WriterExit {
        self.buf.clear();
        let held_connack = matches!(
            self.outbox.rx.try_recv(),
            Some(Outbound::Packet(Packet::ConnAck(_)))
        );
        let notice = if held_connack {
            Some(Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::ServerUnavailable,
                properties: Default::default(),
            }))
        } else if self.version.is_v5() {
            let reason = match failed.reason {
                ReasonCode::ServerUnavailable => ReasonCode::ServerBusy,
                r @ (ReasonCode::QuotaExceeded | ReasonCode::ServerShuttingDown) => r,
                _ => ReasonCode::UnspecifiedError,
            };
            Some(Packet::Disconnect(Disconnect::new(reason)))
        } else {
            None
        };
        if let Some(packet) = notice {
            let mut ignored = 0;
            self.encode(Outbound::Packet(packet), &mut ignored);
            // The connection is being dropped either way; a failed write changes nothing.
            let _ = self.write_buffered().await;
        }
        let _ = self.socket.shutdown().await;
        WriterExit::CommitFailed
    }

    /// Writes the gathered bytes, if any.
    async fn write_buffered(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.last_write = u32::try_from(self.buf.len().min(BATCH_BYTES)).unwrap_or(u32::MAX);
            self.socket.write_all(&self.buf).await?;
            // TLS and WebSocket streams may hold written bytes until flushed (a no-op on TCP).
            self.socket.flush().await?;
            if self.buf.capacity() > KEEP_BUFFER_BYTES {
                self.buf = BytesMut::new();
            } else {
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Appends one item to the buffer and says what to do next.
    fn encode(&mut self, item: Outbound, qos0_bytes: &mut usize) -> Step {
        match item {
            Outbound::Close => Step::Close,
            Outbound::Drained(notice) => Step::Drained(notice),
            Outbound::Gate(mut tickets) => {
                // A failed one is kept: waiting on it returns at once, and the writer gives up.
                tickets.retain(|t| !t.succeeded());
                if tickets.is_empty() {
                    Step::More
                } else {
                    Step::Gate(tickets)
                }
            }
            Outbound::WaitFor(seq) => match &self.outbox.commits {
                // Already committed (the common case under load): no need to break the batch.
                Some(commits) if commits.status(seq) != CommitStatus::Committed => Step::Wait(seq),
                _ => Step::More,
            },
            Outbound::Packet(packet) => {
                *qos0_bytes += qos0_cost(&packet);
                let start = self.buf.len();
                if let Err(err) = midge_codec::encode(&packet, self.version, &mut self.buf) {
                    // The core produced a packet this version cannot carry. Dropping it (and
                    // any bytes it half wrote) keeps the stream well formed; the warning points
                    // at the bug.
                    self.buf.truncate(start);
                    tracing::warn!(
                        "Dropping an outgoing packet that cannot be encoded for {:?}: {err}.",
                        self.version
                    );
                }
                Step::More
            }
        }
    }
}

impl<W: AsyncWrite + Send + Unpin + 'static> IdleWriter for ConnWriter<W> {
    fn poll_queue(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        self.outbox.rx.poll_recv(cx)
    }

    fn start(self: Box<Self>, first: Option<Outbound>) -> JoinHandle<WriterEnd> {
        tokio::spawn(self.task(first))
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<W> ConnWriter<W> {
    /// The writer's fields to keep while its connection is dormant, and its socket. An idle
    /// writer has written everything (its buffer is empty); nothing it took from the queue is
    /// lost: that goes back to the queue. What [`DormantWriter::wake`] is given again (the
    /// commit watch, the linger) is not kept.
    pub(crate) fn into_dormant(self) -> (DormantWriter, W) {
        let ConnWriter {
            socket,
            outbox,
            version,
            buf,
            last_write,
            idle_since,
            linger_ms: _,
        } = self;
        debug_assert!(buf.is_empty(), "an idle writer has nothing left to write");
        let dormant = DormantWriter {
            rx: outbox.rx.into_idle(),
            version,
            last_write,
            idle_since,
        };
        (dormant, socket)
    }
}

/// A writer while its connection waits in the dormant pool: no socket and no buffers (a
/// writer's buffers are empty when idle, but each still takes 32 bytes), 24 bytes in all.
pub(crate) struct DormantWriter {
    rx: IdleRx<Outbound, HandleShared>,
    version: ProtocolVersion,
    last_write: u32,
    idle_since: Option<Moment>,
}

impl DormantWriter {
    /// A writer again, on `socket`, with the committer's progress (`commits`) and
    /// `limits.dormant_after_ms` (`linger`), as [`ConnWriter::new`] takes them.
    pub(crate) fn wake<W>(
        self,
        socket: W,
        commits: Option<CommitWatch>,
        linger: Duration,
    ) -> ConnWriter<W> {
        let DormantWriter {
            rx,
            version,
            last_write,
            idle_since,
        } = self;
        ConnWriter {
            socket,
            outbox: Outbox {
                rx: rx.into_rx(),
                commits,
            },
            version,
            buf: BytesMut::new(),
            last_write,
            idle_since,
            linger_ms: millis(linger),
        }
    }

    /// The protocol version the writer encodes for.
    pub(crate) fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// `Ready` once something is queued (or every sender is gone), without taking it; until
    /// then registers `cx` with the queue.
    pub(crate) fn poll_queued(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.rx.poll_ready(cx)
    }
}

/// `d` in milliseconds, at most `u32::MAX`.
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

// Most of a dormant connection's allocation (`connection/dormant.rs`).
const _: () = assert!(std::mem::size_of::<DormantWriter>() <= 24);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit_watch::{CommitPublisher, CommitWatch};
    use crate::connection_handle::ConnHandle;
    use crate::writer_slot::{WriterResult, WriterSlot};
    use midge_codec::{Ack, AckKind};
    use prometheus::IntGauge;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, DuplexStream};

    /// A writer on one end of an in-memory pipe; the test reads the other end.
    struct Pipe {
        handle: ConnHandle,
        client: DuplexStream,
        buf: BytesMut,
        version: ProtocolVersion,
        task: JoinHandle<WriterResult>,
        /// Counts idle writers.
        idle: IntGauge,
    }

    impl Pipe {
        fn new(version: ProtocolVersion, commits: &CommitWatch) -> Pipe {
            let (handle, outbox) = ConnHandle::new(1 << 20, Some(commits.clone()));
            let (server, client) = tokio::io::duplex(64 * 1024);
            let idle = IntGauge::new("t_idle", "t").expect("valid gauge");
            let writer = Box::new(ConnWriter::new(
                server,
                outbox,
                version,
                Duration::from_secs(2),
            ));
            // The reader's part: polling the slot starts the writer when it has work.
            let task = tokio::spawn(WriterSlot::idle(writer, idle.clone()));
            Pipe {
                handle,
                client,
                buf: BytesMut::new(),
                version,
                task,
                idle,
            }
        }

        /// The next packet, `None` on EOF, `Err` if nothing comes within 200 ms.
        async fn next(&mut self) -> Result<Option<Packet>, ()> {
            loop {
                let decoded = midge_codec::decode(&mut self.buf, self.version, 1 << 20);
                if let Some(p) = decoded.expect("well formed") {
                    return Ok(Some(p));
                }
                let mut chunk = [0u8; 1024];
                let read = self.client.read(&mut chunk);
                match tokio::time::timeout(Duration::from_millis(200), read).await {
                    Err(_) => return Err(()),
                    Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
                    Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        }

        async fn expect(&mut self, packet: Packet) {
            assert_eq!(self.next().await, Ok(Some(packet)));
        }

        async fn exit(self) -> WriterExit {
            self.task
                .await
                .expect("slot task")
                .expect("writer task")
                .expect("no I/O error")
        }
    }

    fn puback(id: u16) -> Packet {
        Packet::Ack(Ack::new(AckKind::PubAck, id))
    }

    fn commit(tx: &CommitPublisher, seq: u64) {
        tx.send_modify(|p| p.committed = seq);
    }

    fn fail(tx: &CommitPublisher, seq: u64, reason: ReasonCode) {
        tx.send_modify(|p| {
            p.failed_through = seq;
            p.failure = reason;
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_writer_leaves_its_task_and_the_next_packet_starts_one() {
        let (_tx, commits) = CommitWatch::channel();
        let mut a = Pipe::new(ProtocolVersion::V5, &commits);
        assert_eq!(a.idle.get(), 1, "no task before the first packet");
        a.handle.send(Packet::PingResp);
        a.expect(Packet::PingResp).await;
        assert_eq!(a.idle.get(), 0, "a task while writing");
        // A new connection's writer quiet for a whole FIRST_IDLE_AFTER period after its first
        // packet (its CONNACK) ends its task and leaves its fields, before IDLE_AFTER would
        // have passed (the clock is paused, so this waits for the timer, not for real time).
        const { assert!(3 * FIRST_IDLE_AFTER.as_millis() < IDLE_AFTER.as_millis()) };
        tokio::time::sleep(3 * FIRST_IDLE_AFTER).await;
        assert_eq!(a.idle.get(), 1, "idle after its first quiet spell");
        assert!(!a.task.is_finished(), "the writer is idle, not done");
        // The next packet gets a new task, in order, and a close still ends the writer.
        a.handle.send(puback(7));
        a.handle.send(puback(8));
        a.expect(puback(7)).await;
        a.expect(puback(8)).await;
        a.handle.close();
        assert_eq!(a.next().await, Ok(None));
        let idle = a.idle.clone();
        assert_eq!(a.exit().await, WriterExit::Closed);
        assert_eq!(idle.get(), 0, "a writer that ended is not idle");
    }

    #[tokio::test]
    async fn a_held_ack_waits_for_its_commit_and_nothing_overtakes_it() {
        let (tx, commits) = CommitWatch::channel();
        let mut a = Pipe::new(ProtocolVersion::V3_1_1, &commits);
        let mut b = Pipe::new(ProtocolVersion::V3_1_1, &commits);
        a.handle.send(Packet::PingResp);
        a.handle.mark(Outbound::WaitFor(1));
        a.handle.send(puback(1));
        // A plain packet queued later must not overtake the held acknowledgement.
        a.handle.send(Packet::PingResp);
        b.handle.send(puback(9));
        // What came before the hold goes out at once; another connection is not blocked.
        a.expect(Packet::PingResp).await;
        b.expect(puback(9)).await;
        assert_eq!(a.next().await, Err(()), "held until committed");
        commit(&tx, 1);
        a.expect(puback(1)).await;
        a.expect(Packet::PingResp).await;
        // An already committed batch does not hold anything.
        a.handle.mark(Outbound::WaitFor(1));
        a.handle.send(puback(2));
        a.expect(puback(2)).await;
        a.handle.close();
        assert_eq!(a.next().await, Ok(None));
        assert_eq!(a.exit().await, WriterExit::Closed);
    }

    #[tokio::test]
    async fn a_failed_commit_closes_without_the_ack_and_says_why_to_v5() {
        let (tx, commits) = CommitWatch::channel();
        let mut v5 = Pipe::new(ProtocolVersion::V5, &commits);
        let mut v3 = Pipe::new(ProtocolVersion::V3_1_1, &commits);
        for pipe in [&v5, &v3] {
            pipe.handle.mark(Outbound::WaitFor(1));
            pipe.handle.send(puback(1));
            pipe.handle.send(Packet::PingResp);
        }
        assert_eq!(v5.next().await, Err(()));
        fail(&tx, 1, ReasonCode::ServerUnavailable);
        // 0x88 is not a DISCONNECT reason code: Server busy is the closest that is.
        v5.expect(Packet::Disconnect(Disconnect::new(ReasonCode::ServerBusy)))
            .await;
        assert_eq!(v5.next().await, Ok(None));
        assert_eq!(v3.next().await, Ok(None), "v3: a bare close");
        assert_eq!(v5.exit().await, WriterExit::CommitFailed);
        assert_eq!(v3.exit().await, WriterExit::CommitFailed);
    }

    #[tokio::test]
    async fn a_failed_connack_becomes_server_unavailable() {
        let (tx, commits) = CommitWatch::channel();
        for version in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
            let mut pipe = Pipe::new(version, &commits);
            pipe.handle.mark(Outbound::WaitFor(1));
            pipe.handle.send(Packet::ConnAck(ConnAck {
                session_present: true,
                reason: ReasonCode::Success,
                properties: Default::default(),
            }));
            fail(&tx, 1, ReasonCode::QuotaExceeded);
            pipe.expect(Packet::ConnAck(ConnAck {
                session_present: false,
                reason: ReasonCode::ServerUnavailable,
                properties: Default::default(),
            }))
            .await;
            assert_eq!(pipe.next().await, Ok(None), "{version:?}");
            assert_eq!(pipe.exit().await, WriterExit::CommitFailed);
        }
    }
}

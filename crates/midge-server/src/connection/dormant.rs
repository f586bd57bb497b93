//! A quiet plain-TCP session taken apart to wait in the dormant pool (`crate::dormant_pool`),
//! and put back together when something happens.
//!
//! Taken apart, a session is its fields, its writer's fields, its handle and a bare socket
//! (no longer registered with tokio): no task, no future, no registration, and none of the
//! (empty) buffers a parked session keeps.
//!
//! A new connection goes dormant at its first quiet spell. After that, only if its previous
//! quiet spell lasted `limits.dormant_after_ms` (2 s by default) or more: one that is sent a
//! message every few hundred milliseconds stays parked, with its task and registration,
//! instead of leaving and rejoining tokio's reactor for each message, which cost about 1.5x
//! the CPU of staying parked (a message every 250 ms to 2,000 subscribers,
//! `docs/benchmarks.md`). One that stops being busy goes dormant after its next long quiet
//! spell (at the latest when a keep-alive PINGREQ ends one).

use super::{End, Live, Serving, Session, SessionBase, SessionTask};
use crate::connection_handle::ConnHandle;
use crate::moment::Moment;
use crate::parkable::{Busy, Next, Parkable};
use crate::traffic::Counted;
use crate::writer::{ConnWriter, DormantWriter};
use crate::writer_slot::WriterSlot;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::AsyncRead;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};

/// The reading half a session runs on; plain TCP can wait in the dormant pool.
pub(crate) trait SessionReader: AsyncRead + Send + Sync + Unpin + Sized + 'static {
    /// Whether a quiet session on this transport leaves its task for the dormant pool.
    const CAN_SLEEP: bool = false;

    /// The busy phase that takes a quiet session apart for the pool. One that cannot be
    /// taken apart parks as before, and no longer tries.
    fn sleep(mut serving: Serving<Self>) -> Busy<Serving<Self>, Option<DormantSession>> {
        serving.live.may_sleep = false;
        Box::pin(async move { Next::Park(serving) })
    }
}

/// TLS and WebSocket sessions keep their task: their streams hold state tokio's halves share.
impl<T: AsyncRead + Send + Sync + Unpin + 'static> SessionReader
    for Counted<tokio::io::ReadHalf<T>>
{
}

type TcpWriter = ConnWriter<Counted<OwnedWriteHalf>>;

impl SessionReader for Counted<OwnedReadHalf> {
    const CAN_SLEEP: bool = true;

    fn sleep(serving: Serving<Self>) -> Busy<Serving<Self>, Option<DormantSession>> {
        Box::pin(async move {
            match DormantSession::take_apart(serving) {
                Apart::Done(dormant) => Next::Done(Some(dormant)),
                Apart::Kept(mut serving) => {
                    serving.live.may_sleep = false;
                    Next::Park(serving)
                }
                Apart::Lost(mut session, live, err) => {
                    session.end(live, End::Io(err)).await;
                    Next::Done(None)
                }
            }
        })
    }
}

/// What became of a session to be taken apart.
enum Apart {
    /// Taken apart.
    Done(DormantSession),
    /// It is whole again (its writer was busy after all, or the halves did not match).
    Kept(Serving<Counted<OwnedReadHalf>>),
    /// Its socket could not leave tokio's reactor, and is gone: the session must end.
    Lost(Session<()>, Live, std::io::Error),
}

/// A session waiting in the dormant pool: no socket halves, no buffers.
pub(crate) struct DormantSession {
    stream: std::net::TcpStream,
    base: SessionBase,
    /// Its protocol version too.
    writer: DormantWriter,
    own: ConnHandle,
    client_id: Arc<str>,
    /// When the connection went quiet.
    quiet_since: Option<Moment>,
}

// With the listener's slots, one 128-byte allocation per dormant connection.
const _: () = assert!(std::mem::size_of::<DormantSession>() <= 96);

impl DormantSession {
    fn take_apart(serving: Serving<Counted<OwnedReadHalf>>) -> Apart {
        let Serving { session, mut live } = serving;
        let is_tcp = live
            .writer
            .idle_writer()
            .is_some_and(|w| w.as_any().is::<TcpWriter>());
        if !is_tcp {
            return Apart::Kept(Serving { session, live });
        }
        let Some(Ok(writer)) = live
            .writer
            .take_idle()
            .map(|w| w.into_any().downcast::<TcpWriter>())
        else {
            unreachable!("an idle writer of this type was there just above");
        };
        let (writer, write_half) = writer.into_dormant();
        // A parked session's read buffer is empty (and unallocated).
        let Session {
            base,
            reader: read_half,
            buf: _,
        } = session;
        let counters = base.counters.clone();
        let idle = base.settings.parked_writers.clone();
        match read_half.into_inner().reunite(write_half.into_inner()) {
            Err(ReuniteError(read_half, write_half)) => {
                let writer = rewake(writer, counters.traffic.writer(write_half), &base);
                let session = Session::new(base, counters.traffic.reader(read_half));
                live.writer = WriterSlot::idle(Box::new(writer), idle);
                Apart::Kept(Serving { session, live })
            }
            Ok(stream) => match stream.into_std() {
                Ok(stream) => Apart::Done(DormantSession {
                    stream,
                    base,
                    writer,
                    own: live.own,
                    client_id: live.client_id,
                    quiet_since: live.quiet_since,
                }),
                Err(err) => {
                    let writer = rewake(writer, tokio::io::sink(), &base);
                    live.writer = WriterSlot::idle(Box::new(writer), idle);
                    Apart::Lost(Session::new(base, ()), live, err)
                }
            },
        }
    }

    /// The socket, for the pool to watch.
    pub(crate) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// `Ready` once the broker asked to close the connection or queued something for it;
    /// until then registers `cx` with both.
    pub(crate) fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.own.poll_close_requested(cx).is_ready() {
            return Poll::Ready(());
        }
        self.writer.poll_queued(cx)
    }

    /// The session, whole again and parked: its first poll finds what woke it. With
    /// `stay_awake` it will not come back to the pool.
    pub(crate) fn resume(self, stay_awake: bool) -> SessionTask {
        let DormantSession {
            stream,
            base,
            writer,
            own,
            client_id,
            quiet_since,
        } = self;
        let version = writer.version();
        let dormant_after = base.settings.dormant_after;
        let counters = base.counters.clone();
        let idle = base.settings.parked_writers.clone();
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => {
                let (read_half, write_half) = stream.into_split();
                let writer = rewake(writer, counters.traffic.writer(write_half), &base);
                let session = Session::new(base, counters.traffic.reader(read_half));
                let mut live = Live {
                    own,
                    writer: WriterSlot::idle(Box::new(writer), idle),
                    may_sleep: !stay_awake,
                    sleepy: true,
                    quiet_since,
                    version,
                    client_id,
                };
                live.woke(dormant_after);
                let parked = session.base.settings.parked_readers.clone();
                Box::pin(Parkable::parked(Serving { session, live }, parked))
            }
            Err(err) => {
                // The socket is gone: the session ends as if it had failed.
                let writer = rewake(writer, tokio::io::sink(), &base);
                let live = Live {
                    own,
                    writer: WriterSlot::idle(Box::new(writer), idle),
                    may_sleep: false,
                    sleepy: false,
                    quiet_since,
                    version,
                    client_id,
                };
                Box::pin(async move {
                    let mut session = Session::new(base, ());
                    session.end(live, End::Io(err)).await;
                    None
                })
            }
        }
    }
}

/// `writer` on `socket` again, with the commit watch and linger its session's `base` has for it.
fn rewake<W>(writer: DormantWriter, socket: W, base: &SessionBase) -> ConnWriter<W> {
    writer.wake(
        socket,
        base.broker.commit_watch(),
        base.settings.dormant_after,
    )
}

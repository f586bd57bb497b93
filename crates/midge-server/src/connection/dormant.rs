//! A quiet plain-TCP session taken apart to wait in the dormant pool (`crate::dormant_pool`),
//! and put back together when something happens.
//!
//! Taken apart, a session is its fields, its writer's fields, its handle and a bare socket
//! (no longer registered with tokio): no task, no future, no registration.
//!
//! A new connection goes dormant at its first quiet spell. After that, only if its previous
//! quiet spell lasted `limits.dormant_after_ms` (2 s by default) or more: one that is sent a
//! message every few hundred milliseconds stays parked, with its task and registration,
//! instead of leaving and rejoining tokio's reactor for each message, which cost about 1.5x
//! the CPU of staying parked (a message every 250 ms to 2,000 subscribers,
//! `docs/benchmarks.md`). One that stops being busy goes dormant after its next long quiet
//! spell (at the latest when a keep-alive PINGREQ ends one).

use super::{End, Live, Serving, Session, SessionTask};
use crate::connection_handle::ConnHandle;
use crate::parkable::{Busy, Next, Parkable};
use crate::traffic::Counted;
use crate::writer::ConnWriter;
use crate::writer_slot::WriterSlot;
use midge_codec::ProtocolVersion;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::AsyncRead;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf, ReuniteError};

/// The reading half a session runs on; plain TCP can wait in the dormant pool.
pub(crate) trait SessionReader: AsyncRead + Send + Sync + Unpin + Sized + 'static {
    /// Whether a quiet session on this transport leaves its task for the dormant pool.
    const CAN_SLEEP: bool = false;

    /// The busy phase that takes a quiet session apart for the pool. One that cannot be
    /// taken apart parks as before, and no longer tries.
    fn sleep(mut serving: Serving<Self>) -> Busy<Serving<Self>, Option<Box<DormantSession>>> {
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

    fn sleep(serving: Serving<Self>) -> Busy<Serving<Self>, Option<Box<DormantSession>>> {
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
    Done(Box<DormantSession>),
    /// It is whole again (its writer was busy after all, or the halves did not match).
    Kept(Serving<Counted<OwnedReadHalf>>),
    /// Its socket could not leave tokio's reactor, and is gone: the session must end.
    Lost(Session<()>, Live, std::io::Error),
}

/// A session waiting in the dormant pool.
pub(crate) struct DormantSession {
    stream: std::net::TcpStream,
    session: Session<()>,
    writer: Box<ConnWriter<()>>,
    own: ConnHandle,
    version: ProtocolVersion,
    client_id: String,
    /// When the connection went quiet.
    quiet_since: Option<Instant>,
}

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
        let (writer, write_half) = writer.swap_socket(());
        let (session, read_half) = swap_reader(session, ());
        let counters = session.counters.clone();
        let idle = session.settings.parked_writers.clone();
        match read_half.into_inner().reunite(write_half.into_inner()) {
            Err(ReuniteError(read_half, write_half)) => {
                let (session, ()) = swap_reader(session, counters.traffic.reader(read_half));
                let (writer, ()) = writer.swap_socket(counters.traffic.writer(write_half));
                live.writer = WriterSlot::idle(Box::new(writer), idle);
                Apart::Kept(Serving { session, live })
            }
            Ok(stream) => match stream.into_std() {
                Ok(stream) => Apart::Done(Box::new(DormantSession {
                    stream,
                    session,
                    writer: Box::new(writer),
                    own: live.own,
                    version: live.version,
                    client_id: live.client_id,
                    quiet_since: live.quiet_since,
                })),
                Err(err) => {
                    let (writer, ()) = writer.swap_socket(tokio::io::sink());
                    live.writer = WriterSlot::idle(Box::new(writer), idle);
                    Apart::Lost(session, live, err)
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
            session,
            writer,
            own,
            version,
            client_id,
            quiet_since,
        } = self;
        let dormant_after = session.settings.dormant_after;
        let counters = session.counters.clone();
        let idle = session.settings.parked_writers.clone();
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => {
                let (read_half, write_half) = stream.into_split();
                let (session, ()) = swap_reader(session, counters.traffic.reader(read_half));
                let (writer, ()) = writer.swap_socket(counters.traffic.writer(write_half));
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
                let parked = session.settings.parked_readers.clone();
                Box::pin(Parkable::parked(Serving { session, live }, parked))
            }
            Err(err) => {
                // The socket is gone: the session ends as if it had failed.
                let (writer, ()) = writer.swap_socket(tokio::io::sink());
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
                    let mut session = session;
                    session.end(live, End::Io(err)).await;
                    None
                })
            }
        }
    }
}

/// `session` with `reader` in place of its own, and its own.
fn swap_reader<R, R2>(session: Session<R>, reader: R2) -> (Session<R2>, R) {
    let Session {
        id,
        peer,
        broker,
        settings,
        reader: old,
        buf,
        publish_rate,
        rate,
        counters,
    } = session;
    let session = Session {
        id,
        peer,
        broker,
        settings,
        reader,
        buf,
        publish_rate,
        rate,
        counters,
    };
    (session, old)
}

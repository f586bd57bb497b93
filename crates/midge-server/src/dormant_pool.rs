//! Quiet plain-TCP connections, held with no task and no tokio registration.
//!
//! A parked connection still has a task (a task cell of about 256 bytes) and its socket's
//! registration with tokio's reactor (another 256), which is most of what an idle connection
//! costs. A connection whose reader and writer are both quiet hands itself to this pool
//! instead: its socket leaves tokio's reactor for the pool's own epoll instance, its task ends,
//! and what it needs to carry on waits in the pool's table. One thread serves the whole pool:
//! it waits on the pool's epoll instance for the sockets and for the wakers the dormant
//! connections left with their queues and close flags, and gives each connection that has
//! something to do a task of its own again on the runtime.

use mio::unix::SourceFd;
use mio::{Events, Interest, Registry, Token, Waker as PollWaker};
use parking_lot::Mutex;
use prometheus::IntGauge;
use slab::Slab;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tokio::runtime::Handle;

/// The pool thread's own token, for [`Shared::waker`]; table slots are small numbers.
const WAKER: Token = Token(usize::MAX);

/// A connection that waits in the pool.
pub(crate) trait Dormant: Send {
    /// The socket to watch for input (or its end).
    fn fd(&self) -> RawFd;

    /// Registers `cx` with whatever else ends the connection's rest (a close request, an item
    /// for its writer); `Ready` if one of them already happened.
    fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Something happened: the connection gets a task again, spawned on `runtime` (the pool
    /// calls this from its own thread). `stay_awake` if the pool could not take it, so it must
    /// not hand itself back.
    fn wake(self: Box<Self>, pool: &DormantPool, runtime: &Handle, stay_awake: bool);
}

struct Entry {
    dormant: Box<dyn Dormant>,
    /// Tells this entry from a later one in the same slot, for wakers that outlive it.
    generation: u64,
}

struct Shared {
    table: Mutex<Table>,
    /// Entries whose waker fired: (slot, generation).
    woken: Mutex<Vec<(usize, u64)>>,
    /// Wakes the pool's thread, for `woken` or to stop.
    waker: PollWaker,
    registry: Registry,
    /// Where woken connections get their tasks.
    runtime: Handle,
    dormant: IntGauge,
}

struct Table {
    entries: Slab<Entry>,
    next_generation: u64,
}

/// The waker an entry leaves with its queue and close flag.
struct EntryWake {
    shared: Arc<Shared>,
    slot: usize,
    generation: u64,
}

impl Wake for EntryWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut woken = self.shared.woken.lock();
        woken.push((self.slot, self.generation));
        // The thread takes the whole list at once: only the first entry needs to wake it.
        if woken.len() == 1 {
            drop(woken);
            let _ = self.shared.waker.wake();
        }
    }
}

/// The pool (a handle to it; clones share one). Its thread lives as long as the process: a
/// connection must be woken whenever something happens to it, during shutdown too (the
/// server waits for every connection to say goodbye, and a dormant one can only do that once
/// woken).
#[derive(Clone)]
pub(crate) struct DormantPool {
    shared: Arc<Shared>,
}

impl DormantPool {
    /// Starts the pool's thread; `dormant` counts the connections in it. Call it within the
    /// runtime the connections run on.
    pub(crate) fn start(dormant: IntGauge) -> io::Result<DormantPool> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = PollWaker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(Shared {
            table: Mutex::new(Table {
                entries: Slab::new(),
                next_generation: 0,
            }),
            woken: Mutex::new(Vec::new()),
            waker,
            registry,
            runtime: Handle::current(),
            dormant,
        });
        let pool = DormantPool { shared };
        let thread = pool.clone();
        std::thread::Builder::new()
            .name("midge-dormant".into())
            .spawn(move || thread.run(poll))?;
        Ok(pool)
    }

    /// Takes `dormant` in, or wakes it at once if it has something to do already (or the pool
    /// cannot watch its socket).
    pub(crate) fn admit(&self, mut dormant: Box<dyn Dormant>) {
        let shared = &self.shared;
        let mut table = shared.table.lock();
        let slot = table.entries.vacant_key();
        let generation = table.next_generation;
        table.next_generation += 1;
        let fd = dormant.fd();
        if let Err(err) =
            shared
                .registry
                .register(&mut SourceFd(&fd), Token(slot), Interest::READABLE)
        {
            drop(table);
            tracing::warn!("A quiet connection stays awake: the pool cannot watch it: {err}.");
            dormant.wake(self, &shared.runtime, true);
            return;
        }
        // Registered under the table's lock: a wake-up for this slot, from the socket or from
        // the waker, is looked up after the entry is in.
        let waker = Waker::from(Arc::new(EntryWake {
            shared: shared.clone(),
            slot,
            generation,
        }));
        if dormant
            .poll_events(&mut Context::from_waker(&waker))
            .is_ready()
        {
            let _ = shared.registry.deregister(&mut SourceFd(&fd));
            drop(table);
            dormant.wake(self, &shared.runtime, false);
            return;
        }
        table.entries.insert(Entry {
            dormant,
            generation,
        });
        shared.dormant.inc();
    }

    /// Takes the entry in `slot` out of the pool if it is still `generation` (any, for a
    /// socket event), and gives it a task.
    fn wake(&self, slot: usize, generation: Option<u64>) {
        let shared = &self.shared;
        let entry = {
            let mut table = shared.table.lock();
            match table.entries.get(slot) {
                Some(entry) if generation.is_none_or(|g| g == entry.generation) => {
                    table.entries.remove(slot)
                }
                _ => return,
            }
        };
        shared.dormant.dec();
        let fd = entry.dormant.fd();
        // It leaves this epoll instance before tokio's registers it again.
        let _ = shared.registry.deregister(&mut SourceFd(&fd));
        entry.dormant.wake(self, &shared.runtime, false);
    }

    /// The pool's thread: waits for the pool's sockets and wakers, and wakes the entries they
    /// name.
    fn run(self, mut poll: mio::Poll) {
        let mut events = Events::with_capacity(1024);
        let mut woken = Vec::new();
        loop {
            if let Err(err) = poll.poll(&mut events, None) {
                if err.kind() != io::ErrorKind::Interrupted {
                    // Not expected of a valid epoll instance; retried after a pause rather
                    // than given up, since every dormant connection depends on it.
                    tracing::error!("Waiting on the dormant-connection pool failed: {err}.");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                continue;
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    std::mem::swap(&mut woken, &mut *self.shared.woken.lock());
                    for (slot, generation) in woken.drain(..) {
                        self.wake(slot, Some(generation));
                    }
                } else {
                    self.wake(event.token().0, None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::AtomicWaker;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Something other than the socket that ends a probe's rest (a close flag, say).
    #[derive(Default)]
    struct Event {
        set: AtomicBool,
        waker: AtomicWaker,
    }

    impl Event {
        fn fire(&self) {
            self.set.store(true, Ordering::Release);
            self.waker.wake();
        }
    }

    /// A dormant connection that reports its wake-ups.
    struct Probe {
        socket: TcpStream,
        event: Arc<Event>,
        woke: mpsc::Sender<bool>,
    }

    impl Dormant for Probe {
        fn fd(&self) -> RawFd {
            std::os::fd::AsRawFd::as_raw_fd(&self.socket)
        }

        fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.event.waker.register(cx.waker());
            if self.event.set.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }

        fn wake(self: Box<Self>, _: &DormantPool, _: &Handle, stay_awake: bool) {
            let _ = self.woke.send(stay_awake);
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        (server, client)
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_dormant_connection_wakes_for_input_and_for_its_other_events() {
        let gauge = IntGauge::new("t_dormant", "t").expect("valid gauge");
        let pool = DormantPool::start(gauge.clone()).expect("pool");
        let (tx, woke) = mpsc::channel();

        // Input on the socket wakes it.
        let (server, mut client) = pair();
        let event = Arc::new(Event::default());
        let probe = |socket| {
            Box::new(Probe {
                socket,
                event: event.clone(),
                woke: tx.clone(),
            })
        };
        pool.admit(probe(server.try_clone().expect("clone")));
        assert_eq!(gauge.get(), 1, "in the pool");
        client.write_all(b"x").expect("write");
        assert_eq!(woke.recv_timeout(WAIT), Ok(false), "woken by input");
        assert_eq!(gauge.get(), 0, "out of the pool");

        // So does an event it registered for (after the input was read).
        let mut byte = [0u8; 1];
        std::io::Read::read(&mut &server, &mut byte).expect("read the input");
        pool.admit(probe(server.try_clone().expect("clone")));
        assert_eq!(gauge.get(), 1);
        event.fire();
        assert_eq!(woke.recv_timeout(WAIT), Ok(false), "woken by its event");
        assert_eq!(gauge.get(), 0);

        // One whose event already happened is not taken in at all.
        pool.admit(probe(server.try_clone().expect("clone")));
        assert_eq!(woke.recv_timeout(WAIT), Ok(false), "woken at once");
        assert_eq!(gauge.get(), 0);

        // The peer going away is input too.
        let fresh = Arc::new(Event::default());
        let (server, client) = pair();
        pool.admit(Box::new(Probe {
            socket: server,
            event: fresh,
            woke: tx.clone(),
        }));
        drop(client);
        assert_eq!(
            woke.recv_timeout(WAIT),
            Ok(false),
            "woken by the end of the stream"
        );
    }
}

//! A task that holds only its parked state while it waits: a quiet connection keeps no future.
//!
//! An async block's state is as large as its largest await, and a task keeps all of it while
//! it waits, so a connection that sat idle for hours held its read loop's whole state: the
//! read buffer, the loop's locals and the futures it selects over. A [`Parkable`] runs its
//! busy phase as a boxed future, and when that phase has seen nothing to do for [`IDLE_AFTER`]
//! it ends, handing back the state worth keeping. The task then polls the events that end the
//! idle spell by hand ([`Park::poll_wake`], which registers the task's waker with the socket
//! or queue directly) and starts a new busy phase when one comes.

use prometheus::IntGauge;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// How long a busy phase sees nothing to do before it parks. A connection that goes quiet for
/// less keeps its busy phase, so one that is merely between bursts does not pay for a new one
/// (about a microsecond: the busy future and a timer). Short, because the busy phases alive at
/// once are what a burst of connections costs at its peak, and the allocator keeps that peak:
/// 19,000 connections opened at 5,000/s left the broker 0.04 KiB per connection smaller with a
/// whole second here, 0.76 KiB smaller with this (`docs/benchmarks.md`).
pub(crate) const IDLE_AFTER: Duration = Duration::from_millis(100);

/// [`IDLE_AFTER`] for a new connection's first busy phase (its CONNECT and CONNACK): a client
/// that says nothing after its CONNACK is most likely an idle device, and for the same reason
/// as above the sooner it parks, the less a burst of new connections costs. 19,000
/// connections opened at 5,000/s left the broker 0.96-0.99 KiB per connection with this, and
/// 1.04-1.06 with [`IDLE_AFTER`] (`docs/benchmarks.md`). A client that goes on to subscribe
/// after a longer round trip is woken for it, once.
pub(crate) const FIRST_IDLE_AFTER: Duration = Duration::from_millis(20);

/// The busy phase of a [`Park`]: what it resolves to.
pub(crate) enum Next<P, O> {
    /// Nothing to do for a while: park with this state.
    Park(P),
    /// The task is over.
    Done(O),
}

/// A busy phase, boxed: its size is the largest await in it, and it is freed when it parks.
pub(crate) type Busy<P, O> = Pin<Box<dyn Future<Output = Next<P, O>> + Send>>;

/// State that can wait without a future.
pub(crate) trait Park: Sized {
    /// What ended the idle spell.
    type Wake;
    /// What the task returns.
    type Output;

    /// Polls whatever ends the idle spell, registering `cx`'s waker with each source.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Self::Wake>;

    /// The busy phase that handles `wake` and what follows it.
    fn resume(self, wake: Self::Wake) -> Busy<Self, Self::Output>;
}

enum Phase<P: Park> {
    Busy(Busy<P, P::Output>),
    Parked(P),
    /// Between the two, and after the end.
    Gone,
}

/// A future alternating between busy phases and parked state.
pub(crate) struct Parkable<P: Park> {
    phase: Phase<P>,
    /// How many are parked now (a metric shared by all of a kind).
    parked: IntGauge,
}

impl<P: Park> Parkable<P> {
    /// Starts busy, handling `wake`; `parked` counts those parked.
    pub(crate) fn busy(state: P, wake: P::Wake, parked: IntGauge) -> Self {
        Parkable {
            phase: Phase::Busy(state.resume(wake)),
            parked,
        }
    }

    /// Starts parked; `parked` counts those parked.
    pub(crate) fn parked(state: P, parked: IntGauge) -> Self {
        parked.inc();
        Parkable {
            phase: Phase::Parked(state),
            parked,
        }
    }
}

impl<P: Park> Drop for Parkable<P> {
    fn drop(&mut self) {
        if let Phase::Parked(_) = self.phase {
            self.parked.dec();
        }
    }
}

impl<P: Park + Unpin> Future for Parkable<P> {
    type Output = P::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<P::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.phase {
                Phase::Busy(busy) => match ready!(busy.as_mut().poll(cx)) {
                    Next::Park(state) => {
                        this.parked.inc();
                        this.phase = Phase::Parked(state);
                    }
                    Next::Done(out) => {
                        this.phase = Phase::Gone;
                        return Poll::Ready(out);
                    }
                },
                Phase::Parked(state) => {
                    let wake = ready!(state.poll_wake(cx));
                    let Phase::Parked(state) = std::mem::replace(&mut this.phase, Phase::Gone)
                    else {
                        unreachable!("matched as parked just above");
                    };
                    this.parked.dec();
                    this.phase = Phase::Busy(state.resume(wake));
                }
                Phase::Gone => return Poll::Pending,
            }
        }
    }
}

/// Tells a busy phase when it has had nothing to do for [`IDLE_AFTER`]. The timer is set once
/// per period, not once per event: an event only marks the period busy.
pub(crate) struct IdleTimer {
    sleep: Pin<Box<Sleep>>,
    period: Duration,
    busy: bool,
}

impl IdleTimer {
    /// A timer whose first period of [`IDLE_AFTER`] starts now.
    pub(crate) fn new() -> Self {
        IdleTimer::with_period(IDLE_AFTER)
    }

    /// A timer whose first period of `period` starts now.
    pub(crate) fn with_period(period: Duration) -> Self {
        IdleTimer {
            sleep: Box::pin(tokio::time::sleep(period)),
            period,
            busy: false,
        }
    }

    /// Something happened: the current period is not idle.
    pub(crate) fn touch(&mut self) {
        self.busy = true;
    }

    /// Completes at the end of the first whole period with no [`IdleTimer::touch`].
    /// Cancel-safe: it keeps its progress in `self`.
    pub(crate) async fn idle(&mut self) {
        loop {
            self.sleep.as_mut().await;
            if !std::mem::take(&mut self.busy) {
                return;
            }
            self.sleep.as_mut().reset(Instant::now() + self.period);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    /// Counts what it is sent; parks after each message, and ends at `None`.
    struct Counter {
        rx: mpsc::UnboundedReceiver<Option<u32>>,
        sum: u32,
        busy_phases: Arc<AtomicUsize>,
    }

    impl Park for Counter {
        type Wake = Option<u32>;
        type Output = u32;

        fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.rx.poll_recv(cx).map(Option::flatten)
        }

        fn resume(mut self, wake: Option<u32>) -> Busy<Self, u32> {
            self.busy_phases.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                match wake {
                    Some(n) => {
                        self.sum += n;
                        Next::Park(self)
                    }
                    None => Next::Done(self.sum),
                }
            })
        }
    }

    #[tokio::test]
    async fn a_parked_task_wakes_for_its_source_and_ends_with_its_busy_phase() {
        let (tx, rx) = mpsc::unbounded_channel();
        let phases = Arc::new(AtomicUsize::new(0));
        let gauge = IntGauge::new("t_parked", "t").expect("valid gauge");
        let task = tokio::spawn(Parkable::parked(
            Counter {
                rx,
                sum: 0,
                busy_phases: phases.clone(),
            },
            gauge.clone(),
        ));
        assert_eq!(gauge.get(), 1);
        tx.send(Some(2)).expect("open");
        tx.send(Some(3)).expect("open");
        tx.send(None).expect("open");
        assert_eq!(task.await.expect("task"), 5);
        assert_eq!(phases.load(Ordering::Relaxed), 3, "one busy phase per wake");
        assert_eq!(gauge.get(), 0, "none parked once it ended");

        // A parked task dropped (aborted) is no longer counted.
        let (_tx, rx) = mpsc::unbounded_channel();
        let counter = Counter {
            rx,
            sum: 0,
            busy_phases: phases,
        };
        drop(Parkable::parked(counter, gauge.clone()));
        assert_eq!(gauge.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_timer_waits_for_a_whole_quiet_period() {
        let start = Instant::now();
        let mut timer = IdleTimer::new();
        timer.touch();
        // The first period was busy, so the timer runs one more.
        timer.idle().await;
        assert_eq!(start.elapsed(), 2 * IDLE_AFTER);
        timer.idle().await;
        assert_eq!(
            start.elapsed(),
            2 * IDLE_AFTER,
            "still expired: no touch since"
        );
    }
}

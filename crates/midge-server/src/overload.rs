//! Overload mode: while the tokio event loop lags (`limits.overload_lag_ms`), new clients are
//! refused with CONNACK 0x89 Server busy (v3: return code 3) and connected ones go on being
//! served, so a saturated broker sheds new load instead of slowing everyone down.
//!
//! A timer that should fire every [`SAMPLE_INTERVAL`] measures how late it fires; the state
//! machine ([`LagMonitor`]) takes those samples with the times passed in.

use crate::shutdown::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the lag is sampled.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// How long the lag must stay at or below the limit before overload mode ends, so a broker
/// hovering around the limit does not flap between refusing and accepting.
pub(crate) const COOL_DOWN: Duration = Duration::from_secs(2);

/// A change of mode reported by [`LagMonitor::sample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The lag went over the limit.
    Entered { lag: Duration },
    /// The lag stayed within the limit for [`COOL_DOWN`].
    Left,
}

/// The overload state machine, fed one lag sample at a time.
#[derive(Debug, Clone, Default)]
pub(crate) struct LagMonitor {
    overloaded: bool,
    /// Since when the lag has been within the limit, while overloaded.
    calm_since: Option<Instant>,
}

impl LagMonitor {
    /// Takes a sample: the timer meant to fire at `due` fired at `fired`. `limit` zero means
    /// the mode is off (and any overload ends at once).
    pub(crate) fn sample(
        &mut self,
        due: Instant,
        fired: Instant,
        limit: Duration,
    ) -> Option<Transition> {
        let lag = fired.saturating_duration_since(due);
        if limit.is_zero() {
            self.calm_since = None;
            return std::mem::take(&mut self.overloaded).then_some(Transition::Left);
        }
        if lag > limit {
            self.calm_since = None;
            if !self.overloaded {
                self.overloaded = true;
                return Some(Transition::Entered { lag });
            }
            return None;
        }
        if !self.overloaded {
            return None;
        }
        let since = *self.calm_since.get_or_insert(fired);
        if fired.saturating_duration_since(since) >= COOL_DOWN {
            self.overloaded = false;
            self.calm_since = None;
            return Some(Transition::Left);
        }
        None
    }

    /// True while in overload mode.
    pub(crate) fn is_overloaded(&self) -> bool {
        self.overloaded
    }
}

/// Overload mode as the listeners see it, and its counters.
#[derive(Debug, Default)]
pub(crate) struct OverloadGuard {
    overloaded: AtomicBool,
    /// `limits.overload_lag_ms`, replaced by a reload.
    limit_ms: AtomicU64,
    /// Times overload mode was entered.
    entered: AtomicU64,
}

impl OverloadGuard {
    /// A guard with `limit_ms` (0: off).
    pub(crate) fn new(limit_ms: u64) -> Arc<OverloadGuard> {
        let guard = OverloadGuard::default();
        guard.limit_ms.store(limit_ms, Ordering::Relaxed);
        Arc::new(guard)
    }

    /// Changes the lag limit (a reload).
    pub(crate) fn set_limit_ms(&self, limit_ms: u64) {
        self.limit_ms.store(limit_ms, Ordering::Relaxed);
    }

    /// True while new clients are refused.
    pub(crate) fn is_overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// Times overload mode was entered so far.
    pub(crate) fn entered(&self) -> u64 {
        self.entered.load(Ordering::Relaxed)
    }

    /// The lag limit now (zero: off).
    pub(crate) fn limit(&self) -> Duration {
        Duration::from_millis(self.limit_ms.load(Ordering::Relaxed))
    }

    /// Samples the event loop's lag every [`SAMPLE_INTERVAL`] until shutdown, switching
    /// overload mode on and off.
    pub(crate) async fn monitor(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut machine = LagMonitor::default();
        loop {
            let due = tokio::time::Instant::now() + SAMPLE_INTERVAL;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.recv() => return,
            }
            let fired = tokio::time::Instant::now().into_std();
            match machine.sample(due.into_std(), fired, self.limit()) {
                Some(Transition::Entered { lag }) => {
                    self.entered.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "Overload: the event loop is {} ms late (limit {} ms); refusing new \
                         clients with Server busy until it catches up.",
                        lag.as_millis(),
                        self.limit().as_millis()
                    );
                }
                Some(Transition::Left) => tracing::warn!(
                    "Overload over: the event loop caught up; accepting new clients again."
                ),
                None => {}
            }
            self.overloaded
                .store(machine.is_overloaded(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(200);

    /// Feeds samples taken `lag_ms` late, one per interval, starting at `t`; returns the
    /// transitions and the time after the last sample.
    fn run(
        m: &mut LagMonitor,
        mut t: Instant,
        lags_ms: &[u64],
    ) -> (Vec<Option<Transition>>, Instant) {
        let mut seen = Vec::new();
        for &lag in lags_ms {
            let due = t + SAMPLE_INTERVAL;
            let fired = due + Duration::from_millis(lag);
            seen.push(m.sample(due, fired, LIMIT));
            t = fired;
        }
        (seen, t)
    }

    #[test]
    fn lag_over_the_limit_enters_and_a_calm_cool_down_leaves() {
        let mut m = LagMonitor::default();
        let t0 = Instant::now();
        let (seen, t) = run(&mut m, t0, &[0, 5, 200]);
        assert_eq!(seen, vec![None, None, None], "at the limit is not over it");
        let (seen, t) = run(&mut m, t, &[1500]);
        assert_eq!(
            seen,
            vec![Some(Transition::Entered {
                lag: Duration::from_millis(1500)
            })]
        );
        assert!(m.is_overloaded());
        // Calm for 1.9 s (19 samples 100 ms apart, counted from the first calm one): still on.
        let (seen, t) = run(&mut m, t, &[0; 19]);
        assert!(seen.iter().all(Option::is_none));
        assert!(m.is_overloaded());
        // A new spike restarts the cool-down without a second "entered".
        let (seen, t) = run(&mut m, t, &[300]);
        assert_eq!(seen, vec![None]);
        let (seen, _) = run(&mut m, t, &[0; 21]);
        assert_eq!(
            seen.iter().flatten().collect::<Vec<_>>(),
            [&Transition::Left]
        );
        assert_eq!(seen.last(), Some(&Some(Transition::Left)));
        assert!(!m.is_overloaded());
    }

    #[test]
    fn a_zero_limit_is_off_and_ends_an_overload() {
        let mut m = LagMonitor::default();
        let t = Instant::now();
        assert_eq!(
            m.sample(t, t + Duration::from_secs(5), Duration::ZERO),
            None
        );
        assert!(!m.is_overloaded());
        let _ = m.sample(t, t + Duration::from_secs(5), LIMIT);
        assert!(m.is_overloaded());
        assert_eq!(
            m.sample(t, t + Duration::from_secs(5), Duration::ZERO),
            Some(Transition::Left)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_monitor_task_sees_a_blocked_runtime() {
        let guard = OverloadGuard::new(200);
        let (tx, rx) = tokio::sync::broadcast::channel(1);
        let task = tokio::spawn(guard.clone().monitor(Shutdown::new(rx)));
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(!guard.is_overloaded());
        // Jump the clock a second ahead while the monitor waits, as if the runtime had been
        // blocked: its timer fires 900 ms late.
        tokio::time::advance(Duration::from_millis(1000)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(guard.is_overloaded());
        assert_eq!(guard.entered(), 1);
        // Calm again: overload ends after the cool-down.
        tokio::time::sleep(COOL_DOWN + Duration::from_millis(300)).await;
        assert!(!guard.is_overloaded());
        let _ = tx.send(());
        task.await.expect("monitor ends at shutdown");
    }
}

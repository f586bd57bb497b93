//! The once-a-second progress line on stderr.

use crate::phase::{Phase, PhaseRx};
use crate::stats::{Snapshot, Stats};
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// Which latency the progress line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyKind {
    /// End to end (subscribers).
    EndToEnd,
    /// Publish to acknowledgement.
    Ack,
    /// Connect to CONNACK.
    Connect,
}

/// Formats progress lines from successive snapshots.
#[derive(Debug)]
pub struct Progress {
    stats: Arc<Stats>,
    started: Instant,
    last: Snapshot,
    last_at: Instant,
    kind: LatencyKind,
}

impl Progress {
    /// A reporter for a run that started at `started`.
    pub fn new(stats: Arc<Stats>, kind: LatencyKind, started: Instant) -> Progress {
        Progress {
            stats,
            started,
            last: Snapshot::default(),
            last_at: started,
            kind,
        }
    }

    /// Prints a line every second until the run is done.
    pub fn spawn(mut self, mut phase: PhaseRx) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = interval_at(
                self.started + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    changed = phase.changed() => {
                        if changed.is_err() || *phase.borrow() == Phase::Done {
                            break;
                        }
                        continue;
                    }
                }
                let current = *phase.borrow();
                let line = self.line(current, Instant::now());
                // A closed stderr must not stop the run.
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        })
    }

    /// The line for `now`, with per-second rates since the previous line.
    pub fn line(&mut self, phase: Phase, now: Instant) -> String {
        let snap = self.stats.snapshot();
        let dt = now.duration_since(self.last_at).as_secs_f64().max(1e-3);
        let rate = |now: u64, before: u64| (now.saturating_sub(before) as f64 / dt).round() as u64;
        let histogram = match self.kind {
            LatencyKind::EndToEnd => &self.stats.e2e,
            LatencyKind::Ack => &self.stats.ack,
            LatencyKind::Connect => &self.stats.connect,
        };
        let latency = match histogram.p50_p99() {
            Some((p50, p99)) => format!("p50 {} p99 {}", fmt_us(p50), fmt_us(p99)),
            None => "-".to_owned(),
        };
        let label = match self.kind {
            LatencyKind::EndToEnd => "e2e",
            LatencyKind::Ack => "ack",
            LatencyKind::Connect => "connect",
        };
        let line = format!(
            "[{:>6.1}s] {:<5} sent {:>7}/s recv {:>7}/s | total sent {} recv {} | {label} {latency} | conns {} fail {}",
            now.duration_since(self.started).as_secs_f64(),
            phase_name(phase),
            rate(snap.sent, self.last.sent),
            rate(snap.received, self.last.received),
            snap.sent,
            snap.received,
            snap.live,
            snap.connect_failed,
        );
        self.last = snap;
        self.last_at = now;
        line
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Connecting => "conn",
        Phase::Running => "run",
        Phase::Draining => "drain",
        Phase::Done => "done",
    }
}

/// Microseconds, or milliseconds past 10 ms.
fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{us}us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn line_shows_rates_totals_and_latency() {
        let stats = Arc::new(Stats::default());
        let t0 = Instant::now();
        let mut p = Progress::new(stats.clone(), LatencyKind::EndToEnd, t0);
        Stats::add(&stats.sent, 2_000);
        Stats::add(&stats.received, 1_000);
        Stats::add(&stats.live, 3);
        stats.e2e.record_all(&[100, 200, 50_000]);
        let line = p.line(Phase::Running, t0 + Duration::from_secs(2));
        assert!(line.contains("sent    1000/s"), "{line}");
        assert!(line.contains("recv     500/s"), "{line}");
        assert!(line.contains("total sent 2000 recv 1000"), "{line}");
        assert!(line.contains("e2e p50 200us p99 50.0ms"), "{line}");
        assert!(line.contains("conns 3"), "{line}");
        let line = p.line(Phase::Draining, t0 + Duration::from_secs(3));
        assert!(line.contains("sent       0/s"), "{line}");
        assert!(line.contains("drain"), "{line}");
    }
}

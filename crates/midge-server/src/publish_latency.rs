//! One connection's samples of `midge_publish_latency_seconds`.

use prometheus::local::LocalHistogram;
use prometheus::Histogram;
use std::time::{Duration, Instant};

/// Samples pending before they are flushed anyway.
const FLUSH_SAMPLES: u32 = 256;
/// Longest time samples stay pending while the connection keeps publishing.
const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Collects publish latencies in a connection-local histogram and adds them to the shared one
/// now and then (and when dropped: `LocalHistogram` flushes itself), so publishing never touches shared state per message.
/// The local histogram is made (and boxed) by the first publish: a connection that only
/// subscribes, or sits idle, does not hold one.
pub(crate) struct PublishLatency {
    shared: Histogram,
    local: Option<Box<LocalHistogram>>,
    pending: u32,
    last_flush: Instant,
}

impl PublishLatency {
    /// Samples for `shared`.
    pub(crate) fn new(shared: &Histogram) -> PublishLatency {
        PublishLatency {
            shared: shared.clone(),
            local: None,
            pending: 0,
            last_flush: Instant::now(),
        }
    }

    /// Records `publishes` PUBLISH packets handed to the core together, in `elapsed`.
    pub(crate) fn record(&mut self, publishes: usize, elapsed: Duration) {
        if publishes == 0 {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        let local = self
            .local
            .get_or_insert_with(|| Box::new(self.shared.local()));
        for _ in 0..publishes {
            local.observe(seconds);
        }
        self.pending = self
            .pending
            .saturating_add(u32::try_from(publishes).unwrap_or(u32::MAX));
        if self.pending >= FLUSH_SAMPLES || self.last_flush.elapsed() >= FLUSH_AFTER {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(local) = &self.local {
            local.flush();
        }
        self.pending = 0;
        self.last_flush = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::HistogramOpts;

    #[test]
    fn samples_reach_the_shared_histogram_in_batches_and_on_drop() {
        let shared = Histogram::with_opts(HistogramOpts::new("t_seconds", "t")).expect("valid");
        let mut latency = PublishLatency::new(&shared);
        latency.record(3, Duration::from_micros(20));
        assert_eq!(shared.get_sample_count(), 0, "still local");
        latency.record(FLUSH_SAMPLES as usize, Duration::from_micros(20));
        assert_eq!(shared.get_sample_count(), 3 + u64::from(FLUSH_SAMPLES));
        latency.record(2, Duration::from_micros(20));
        drop(latency);
        assert_eq!(shared.get_sample_count(), 5 + u64::from(FLUSH_SAMPLES));
    }
}

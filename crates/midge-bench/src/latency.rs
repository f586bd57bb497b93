//! Latency histograms (microseconds) shared by the client tasks.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Highest trackable latency: one hour in microseconds (larger values saturate).
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram behind a mutex. Tasks lock it once per batch of samples, not per sample.
#[derive(Debug)]
pub struct Latency {
    hist: Mutex<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram, 1 µs .. 1 h, 3 significant digits.
    pub fn new() -> Latency {
        let hist = Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds");
        Latency {
            hist: Mutex::new(hist),
        }
    }

    /// Records a batch of samples (µs) under one lock.
    pub fn record_all(&self, samples_us: &[u64]) {
        if samples_us.is_empty() {
            return;
        }
        let mut h = self.lock();
        for &v in samples_us {
            h.saturating_record(v.max(1));
        }
    }

    /// Records one sample (µs).
    pub fn record(&self, sample_us: u64) {
        self.lock().saturating_record(sample_us.max(1));
    }

    /// Percentile summary of everything recorded so far.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.lock())
    }

    /// `(p50, p99)` so far, for the progress line; `None` when empty.
    pub fn p50_p99(&self) -> Option<(u64, u64)> {
        let h = self.lock();
        if h.is_empty() {
            return None;
        }
        Some((h.value_at_quantile(0.50), h.value_at_quantile(0.99)))
    }

    fn lock(&self) -> MutexGuard<'_, Histogram<u64>> {
        // A panicking task cannot leave a histogram half-updated in a harmful way.
        self.hist.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Percentiles in microseconds, as printed in the JSON summary.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencySummary {
    /// Summarises a histogram; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: u64, expected: u64) -> bool {
        // 3 significant digits: values are exact to within 0.1 %.
        actual.abs_diff(expected) * 1000 <= expected
    }

    #[test]
    fn summary_of_uniform_samples() {
        let lat = Latency::new();
        let samples: Vec<u64> = (1..=10_000).collect();
        lat.record_all(&samples[..5_000]);
        for &s in &samples[5_000..] {
            lat.record(s);
        }
        let s = lat.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min, 1);
        assert!(within(s.p50, 5_000), "{s:?}");
        assert!(within(s.p90, 9_000), "{s:?}");
        assert!(within(s.p99, 9_900), "{s:?}");
        assert!(within(s.p999, 9_990), "{s:?}");
        assert!(within(s.max, 10_000), "{s:?}");
        assert!((s.mean - 5_000.5).abs() < 10.0, "{s:?}");
        let (p50, p99) = lat.p50_p99().unwrap();
        assert_eq!((p50, p99), (s.p50, s.p99));
    }

    #[test]
    fn empty_and_extreme_values() {
        let lat = Latency::new();
        assert_eq!(lat.summary(), LatencySummary::default());
        assert_eq!(lat.p50_p99(), None);
        lat.record_all(&[0, u64::MAX]);
        let s = lat.summary();
        assert_eq!(s.count, 2);
        assert_eq!(s.min, 1, "zero is clamped to the lowest bucket");
        assert!(s.max >= MAX_US, "huge values saturate: {s:?}");
    }
}

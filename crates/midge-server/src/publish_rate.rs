//! The per-connection publish rate guard: token buckets for PUBLISH packets per second and
//! PUBLISH bytes per second (`limits.max_publish_rate`, `limits.max_publish_bytes_rate`).
//!
//! Pure: the reader passes the time in, so the buckets are tested without a clock.

use crate::config::{LimitsSection, PublishRateAction};
use std::time::{Duration, Instant};

/// The publish rate settings a connection is accepted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublishRateLimits {
    /// PUBLISH packets per second; 0: no limit.
    pub(crate) messages_per_sec: u32,
    /// PUBLISH bytes (whole packets, as read) per second; 0: no limit.
    pub(crate) bytes_per_sec: u64,
    /// Seconds of rate a client may spend at once after being idle.
    pub(crate) burst_secs: u32,
    /// What happens when a v5 client goes over the rate.
    pub(crate) action: PublishRateAction,
}

impl PublishRateLimits {
    /// The `[limits]` values.
    pub(crate) fn from_limits(limits: &LimitsSection) -> PublishRateLimits {
        PublishRateLimits {
            messages_per_sec: limits.max_publish_rate,
            bytes_per_sec: limits.max_publish_bytes_rate,
            burst_secs: limits.publish_burst_secs.max(1),
            action: limits.publish_rate_action,
        }
    }

    /// True when neither rate is limited.
    pub(crate) fn is_off(&self) -> bool {
        self.messages_per_sec == 0 && self.bytes_per_sec == 0
    }
}

/// What the guard says about one PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within the rate.
    Within,
    /// Over the rate: the reader pauses for this long before it reads or decodes more.
    /// The PUBLISH itself is still processed (its tokens are owed).
    Pause(Duration),
}

/// One token bucket. Tokens may go negative: a packet is admitted while the bucket is not
/// empty and then pays its full cost, so a packet bigger than the burst still gets through,
/// and the reader pauses until the debt is repaid.
#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(rate: u64, burst_secs: u32, now: Instant) -> Bucket {
        let rate = rate as f64;
        let capacity = rate * f64::from(burst_secs);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }

    /// Takes `cost` tokens; how long until the bucket is no longer in debt.
    fn take(&mut self, now: Instant, cost: f64) -> Option<Duration> {
        self.refill(now);
        self.tokens -= cost;
        // Whole milliseconds, rounded up: the reader sleeps at least until the debt is paid.
        (self.tokens < 0.0)
            .then(|| Duration::from_millis((-self.tokens / self.rate * 1000.0).ceil() as u64))
    }
}

/// The buckets of one connection.
#[derive(Debug, Clone)]
pub(crate) struct PublishRateGuard {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl PublishRateGuard {
    /// A guard with full buckets; `None` when `limits` limit nothing.
    pub(crate) fn new(limits: &PublishRateLimits, now: Instant) -> Option<PublishRateGuard> {
        if limits.is_off() {
            return None;
        }
        let bucket = |rate: u64| (rate > 0).then(|| Bucket::new(rate, limits.burst_secs, now));
        Some(PublishRateGuard {
            messages: bucket(u64::from(limits.messages_per_sec)),
            bytes: bucket(limits.bytes_per_sec),
        })
    }

    /// Charges one PUBLISH of `bytes` bytes received at `now`.
    pub(crate) fn admit(&mut self, now: Instant, bytes: usize) -> Admission {
        let by_count = self.messages.as_mut().and_then(|b| b.take(now, 1.0));
        let by_bytes = self.bytes.as_mut().and_then(|b| b.take(now, bytes as f64));
        match by_count.max(by_bytes) {
            Some(wait) => Admission::Pause(wait),
            None => Admission::Within,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(messages: u32, bytes: u64, burst: u32) -> PublishRateLimits {
        PublishRateLimits {
            messages_per_sec: messages,
            bytes_per_sec: bytes,
            burst_secs: burst,
            action: PublishRateAction::Throttle,
        }
    }

    /// A pause of `ms` milliseconds, give or take float rounding.
    fn pause(a: Admission, ms: u64) -> bool {
        match a {
            Admission::Pause(d) => d.as_millis().abs_diff(u128::from(ms)) <= 1,
            Admission::Within => false,
        }
    }

    #[test]
    fn off_means_no_guard() {
        assert!(PublishRateGuard::new(&limits(0, 0, 1), Instant::now()).is_none());
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut g = PublishRateGuard::new(&limits(10, 0, 2), t0).expect("on");
        // 2 s of burst at 10/s: 20 publishes pass at once.
        for i in 0..20 {
            assert_eq!(g.admit(t0, 100), Admission::Within, "publish {i}");
        }
        // The 21st is owed: one token at 10/s is 100 ms.
        assert!(pause(g.admit(t0, 100), 100));
        // 100 ms later the debt is repaid; the next one is owed again.
        let t1 = t0 + Duration::from_millis(100);
        assert!(pause(g.admit(t1, 100), 100));
        // After a long idle time the bucket is full again, but not fuller.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..20 {
            assert_eq!(g.admit(t2, 1), Admission::Within);
        }
        assert!(matches!(g.admit(t2, 1), Admission::Pause(_)));
    }

    #[test]
    fn bytes_are_limited_and_a_big_packet_pays_its_debt() {
        let t0 = Instant::now();
        let mut g = PublishRateGuard::new(&limits(0, 1000, 1), t0).expect("on");
        assert_eq!(g.admit(t0, 600), Admission::Within);
        // 400 left; a 3400-byte packet still passes but leaves 3000 owed: 3 s at 1000/s.
        assert!(pause(g.admit(t0, 3400), 3000));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(g.admit(t1, 0), Admission::Within);
    }

    #[test]
    fn the_longer_wait_of_the_two_limits_wins() {
        let t0 = Instant::now();
        let mut g = PublishRateGuard::new(&limits(1, 100, 1), t0).expect("on");
        assert_eq!(g.admit(t0, 50), Admission::Within);
        // Count: 1 owed at 1/s = 1 s; bytes: 250 owed at 100/s = 2.5 s.
        assert!(pause(g.admit(t0, 300), 2500));
    }
}

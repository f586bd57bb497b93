//! Per-IP limit on failed logins: a token bucket per address, in bounded memory.
//!
//! Each address may fail `burst` times in a row; after that one more attempt is allowed every
//! `refill_interval`. The server asks [`LoginLimiter::check`] before verifying credentials and
//! calls [`LoginLimiter::record_failure`] after a failed one; a refused client can be answered
//! with CONNACK 0x86/0x87 (or 0x9F Connection rate exceeded), or delayed by the returned
//! duration. A successful login does not clear the bucket, so a valid account cannot be used
//! to launder guesses at other accounts.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// How strict the limiter is and how much it may remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimiterConfig {
    /// Failures allowed back to back before an address is held off (at least 1).
    pub burst: u32,
    /// Time after which one failure is forgiven.
    pub refill_interval: Duration,
    /// Most addresses tracked at once; past this the least-penalised one is forgotten.
    pub max_tracked: usize,
    /// IPv6 clients are keyed by this prefix length, since one host often owns a whole /64.
    pub ipv6_prefix_len: u8,
}

impl Default for LoginLimiterConfig {
    fn default() -> Self {
        Self {
            burst: 5,
            refill_interval: Duration::from_secs(12),
            max_tracked: 10_000,
            ipv6_prefix_len: 64,
        }
    }
}

/// Failed-login token buckets keyed by client address.
///
/// A bucket is stored as the instant it will be full again (`full_at`, as in GCRA): no floats,
/// and a bucket whose `full_at` has passed is the same as no bucket, so it can be dropped.
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    config: LoginLimiterConfig,
    full_at: HashMap<IpAddr, Instant>,
    /// The same entries ordered by `full_at`, for expiry and eviction.
    by_full_at: BTreeSet<(Instant, IpAddr)>,
}

impl LoginLimiter {
    /// A limiter with `config` (a zero burst, interval or capacity is raised to the minimum).
    pub fn new(mut config: LoginLimiterConfig) -> Self {
        config.burst = config.burst.max(1);
        config.refill_interval = config.refill_interval.max(Duration::from_millis(1));
        config.max_tracked = config.max_tracked.max(1);
        config.ipv6_prefix_len = config.ipv6_prefix_len.min(128);
        Self {
            config,
            full_at: HashMap::new(),
            by_full_at: BTreeSet::new(),
        }
    }

    /// `Ok` if `ip` may try to log in at `now`, else how long until it may.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = self.key(ip);
        let Some(&full_at) = self.full_at.get(&key) else {
            return Ok(());
        };
        let debt = full_at.saturating_duration_since(now);
        let allowed_debt = self.interval() * (self.config.burst - 1);
        match debt.checked_sub(allowed_debt) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts one failed login from `ip` at `now`.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        self.expire(now);
        let key = self.key(ip);
        let interval = self.interval();
        let cap = now + interval * self.config.burst;
        let full_at = match self.full_at.get(&key) {
            Some(&old) => {
                self.by_full_at.remove(&(old, key));
                (old.max(now) + interval).min(cap)
            }
            None => {
                if self.full_at.len() >= self.config.max_tracked {
                    self.evict_one();
                }
                now + interval
            }
        };
        self.full_at.insert(key, full_at);
        self.by_full_at.insert((full_at, key));
    }

    /// How many addresses are being tracked.
    pub fn len(&self) -> usize {
        self.full_at.len()
    }

    /// Whether no address is being tracked.
    pub fn is_empty(&self) -> bool {
        self.full_at.is_empty()
    }

    fn interval(&self) -> Duration {
        self.config.refill_interval
    }

    /// Drops buckets that have refilled completely.
    fn expire(&mut self, now: Instant) {
        while let Some(&(full_at, ip)) = self.by_full_at.first() {
            if full_at > now {
                break;
            }
            self.by_full_at.pop_first();
            self.full_at.remove(&ip);
        }
    }

    /// Forgets the address closest to being forgiven anyway, keeping the worst offenders.
    fn evict_one(&mut self) {
        if let Some((_, ip)) = self.by_full_at.pop_first() {
            self.full_at.remove(&ip);
        }
    }

    fn key(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u128::from(v6);
                    let prefix = u32::from(self.config.ipv6_prefix_len);
                    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                    IpAddr::V6(Ipv6Addr::from(bits & mask))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, secs: u64, max: usize) -> LoginLimiter {
        LoginLimiter::new(LoginLimiterConfig {
            burst,
            refill_interval: Duration::from_secs(secs),
            max_tracked: max,
            ipv6_prefix_len: 64,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn allows_burst_then_one_per_interval() {
        let mut l = limiter(3, 10, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()));
            l.record_failure(a, t0);
        }
        assert_eq!(l.check(a, t0), Err(Duration::from_secs(10)));
        assert_eq!(
            l.check(a, t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        assert_eq!(l.check(a, t0 + Duration::from_secs(10)), Ok(()));
        l.record_failure(a, t0 + Duration::from_secs(10));
        assert!(l.check(a, t0 + Duration::from_secs(10)).is_err());
        // Other addresses are unaffected.
        assert_eq!(l.check(ip("192.0.2.2"), t0), Ok(()));
    }

    #[test]
    fn failures_while_blocked_do_not_grow_the_wait_past_one_bucket() {
        let mut l = limiter(2, 10, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..50 {
            l.record_failure(a, t0);
        }
        assert_eq!(l.check(a, t0), Err(Duration::from_secs(10)));
        assert_eq!(l.check(a, t0 + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn refilled_buckets_are_forgotten() {
        let mut l = limiter(2, 10, 100);
        let t0 = Instant::now();
        l.record_failure(ip("192.0.2.1"), t0);
        l.record_failure(ip("192.0.2.2"), t0 + Duration::from_secs(5));
        assert_eq!(l.len(), 2);
        l.record_failure(ip("192.0.2.3"), t0 + Duration::from_secs(12));
        assert_eq!(l.len(), 2, "192.0.2.1 was full again and dropped");
    }

    #[test]
    fn bounded_and_keeps_the_worst_offender() {
        let mut l = limiter(3, 60, 3);
        let t0 = Instant::now();
        let worst = ip("198.51.100.7");
        for _ in 0..3 {
            l.record_failure(worst, t0);
        }
        for n in 0..100u8 {
            l.record_failure(IpAddr::from([203, 0, 113, n]), t0);
            assert!(l.len() <= 3);
        }
        assert!(l.check(worst, t0).is_err());
    }

    #[test]
    fn ipv6_is_keyed_by_prefix_and_mapped_v4_by_v4() {
        let mut l = limiter(1, 10, 100);
        let t0 = Instant::now();
        l.record_failure(ip("2001:db8:1:2::1"), t0);
        assert!(l.check(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        assert!(l.check(ip("2001:db8:1:3::1"), t0).is_ok());
        l.record_failure(ip("::ffff:192.0.2.9"), t0);
        assert!(l.check(ip("192.0.2.9"), t0).is_err());
    }

    #[test]
    fn zero_config_is_raised_to_minimums() {
        let mut l = limiter(0, 0, 0);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert!(l.check(a, t0).is_ok());
        l.record_failure(a, t0);
        assert!(l.check(a, t0).is_err());
        assert_eq!(l.len(), 1);
    }
}

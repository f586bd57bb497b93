//! A moment in 4 bytes, for what every quiet connection keeps of when it last went quiet: an
//! `Instant` takes 16, and `Option<Instant>` too.

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The process's first moment, which every [`Moment`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since the process's first moment, modulo 2^32 (about 49.7 days), never 0 (so
/// that `Option<Moment>` takes 4 bytes too). [`Moment::elapsed`] is exact for spans shorter
/// than the wrap, which is all a connection's quiet spells are compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moment(NonZeroU32);

impl Moment {
    /// Now.
    pub(crate) fn now() -> Moment {
        Moment::from_millis(epoch().elapsed().as_millis())
    }

    fn from_millis(ms: u128) -> Moment {
        let wrapped = u32::try_from(ms % (1 << 32)).unwrap_or(u32::MAX);
        // 0 is taken as 1: a millisecond off, once every 49.7 days.
        Moment(NonZeroU32::new(wrapped).unwrap_or(NonZeroU32::MIN))
    }

    /// The time since this moment (modulo the wrap).
    pub(crate) fn elapsed(self) -> Duration {
        self.until(Moment::now())
    }

    /// The time from this moment to `later` (modulo the wrap).
    fn until(self, later: Moment) -> Duration {
        Duration::from_millis(u64::from(later.0.get().wrapping_sub(self.0.get())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_takes_four_bytes_with_or_without_a_value() {
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 4);
    }

    #[test]
    fn elapsed_counts_milliseconds_across_the_wrap() {
        let before = Moment::from_millis(1000);
        assert_eq!(
            before.until(Moment::from_millis(3500)),
            Duration::from_millis(2500)
        );
        let near_wrap = Moment::from_millis((1 << 32) - 500);
        let after_wrap = Moment::from_millis((1 << 32) + 1500);
        assert_eq!(near_wrap.until(after_wrap), Duration::from_millis(2000));
        let start = Moment::now();
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}

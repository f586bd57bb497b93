//! Converting between monotonic instants and wall-clock unix milliseconds.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One moment read from both clocks: the core's deadlines are `Instant`s, the state machine
/// stores absolute unix-ms deadlines so they survive a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic clock.
    pub instant: Instant,
    /// The same moment as milliseconds since the unix epoch.
    pub unix_ms: u64,
}

impl WallClock {
    /// Reads both clocks now.
    pub fn now() -> WallClock {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        WallClock {
            instant: Instant::now(),
            unix_ms,
        }
    }

    /// The unix-ms time of `at` (whole milliseconds, saturating).
    pub fn to_unix_ms(&self, at: Instant) -> u64 {
        if at >= self.instant {
            let ahead = millis(at.duration_since(self.instant));
            self.unix_ms.saturating_add(ahead)
        } else {
            let behind = millis(self.instant.duration_since(at));
            self.unix_ms.saturating_sub(behind)
        }
    }

    /// The instant of a unix-ms time. A past time stays in the past (clamped to `self.instant`
    /// where the monotonic clock cannot go that far back), so deadline checks see it passed.
    pub fn to_instant(&self, unix_ms: u64) -> Instant {
        if unix_ms >= self.unix_ms {
            let ahead = Duration::from_millis(unix_ms - self.unix_ms);
            self.instant
                .checked_add(ahead)
                // Centuries ahead: as good as never, but keep the deadline representable.
                .unwrap_or_else(|| self.instant + Duration::from_secs(100 * 365 * 24 * 3600))
        } else {
            let behind = Duration::from_millis(self.unix_ms - unix_ms);
            self.instant.checked_sub(behind).unwrap_or(self.instant)
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_milliseconds() {
        let clock = WallClock::now();
        for offset in [0u64, 1, 1_500, 86_400_000] {
            let at = clock.instant + Duration::from_millis(offset);
            assert_eq!(clock.to_instant(clock.to_unix_ms(at)), at);
            assert_eq!(clock.to_unix_ms(at), clock.unix_ms + offset);
        }
        let past = clock.unix_ms - 2_000;
        assert!(clock.to_instant(past) <= clock.instant);
        assert!(clock.to_instant(0) <= clock.instant);
    }

    #[test]
    fn converts_between_two_clock_readings() {
        // A deadline stored by one process and read back by another whose monotonic clock
        // started elsewhere keeps its distance from wall-clock "now".
        let before = WallClock::now();
        let deadline = before.to_unix_ms(before.instant + Duration::from_secs(30));
        let after = WallClock {
            instant: before.instant + Duration::from_secs(3_600),
            unix_ms: before.unix_ms + 10_000,
        };
        assert_eq!(
            after.to_instant(deadline),
            after.instant + Duration::from_secs(20)
        );
    }
}

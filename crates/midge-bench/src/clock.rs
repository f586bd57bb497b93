//! The process-wide monotonic clock that stamps payloads.
//!
//! `CLOCK_MONOTONIC` is shared by every process on the host, so a `pub` run and a `sub` run on
//! the same machine can still compute end-to-end latency from the stamped payloads.

use nix::time::{clock_gettime, ClockId};
use std::time::Duration;

/// Nanoseconds on the host's monotonic clock.
pub fn now_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; fall back to 0 rather than panicking.
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|ts| Duration::from(ts).as_nanos() as u64)
        .unwrap_or(0)
}

/// Converts a nanosecond span to whole microseconds, rounding down.
pub fn ns_to_us(ns: u64) -> u64 {
    ns / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_moves_forward() {
        let a = now_ns();
        std::thread::sleep(Duration::from_millis(2));
        let b = now_ns();
        assert!(b > a + 1_000_000, "{a} -> {b}");
    }
}

//! When a link sends the forwarded publishes it has gathered.
//!
//! Every exchange costs both nodes a wake-up, a write and a read whatever it carries, so at
//! moderate rates (a few publishes per exchange) that fixed cost, not the publishes, is most
//! of what forwarding costs. A link therefore sends publishes at most once per `interval`:
//! the first publish after a quiet spell goes at once, later ones gather until the interval
//! since the last batch of publishes has passed, or until `FULL` are waiting. Batches that
//! carry anything else (route changes, client-id claims, a barrier) go at once, taking the
//! gathered publishes with them: a SUBACK or a takeover never waits for the pace.

use std::time::Duration;
use tokio::time::Instant;

/// Publishes that make a batch go at once, whatever the pace.
pub(crate) const FULL: usize = 64;

/// The pace of one link's batches of publishes.
#[derive(Debug, Clone)]
pub(crate) struct BatchPace {
    interval: Duration,
    /// When the last batch that carried publishes went out.
    last: Option<Instant>,
}

impl BatchPace {
    /// At most one batch of publishes per `interval` (zero: each as soon as it can go).
    pub(crate) fn new(interval: Duration) -> BatchPace {
        BatchPace {
            interval,
            last: None,
        }
    }

    /// Whether a batch of `publishes` publishes, carrying other items too if `urgent`, may
    /// go out at `now`.
    pub(crate) fn may_send(&self, publishes: usize, urgent: bool, now: Instant) -> bool {
        urgent || publishes >= FULL || (publishes > 0 && self.due().is_none_or(|due| now >= due))
    }

    /// When a batch of publishes that is neither full nor urgent may go out (None: at once,
    /// none has gone out yet).
    pub(crate) fn due(&self) -> Option<Instant> {
        self.last.map(|last| last + self.interval)
    }

    /// A batch that carried `publishes` publishes went out at `now`.
    pub(crate) fn sent(&mut self, publishes: usize, now: Instant) {
        if publishes > 0 {
            self.last = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn the_first_publish_after_a_quiet_spell_goes_at_once() {
        let mut pace = BatchPace::new(10 * MS);
        let now = Instant::now();
        assert!(pace.may_send(1, false, now));
        pace.sent(1, now);
        // Ten milliseconds later the link is quiet again: at once.
        assert!(pace.may_send(1, false, now + 10 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_gather_until_the_interval_has_passed() {
        let mut pace = BatchPace::new(10 * MS);
        let start = Instant::now();
        pace.sent(3, start);
        assert!(!pace.may_send(5, false, start + 4 * MS));
        assert_eq!(pace.due(), Some(start + 10 * MS));
        assert!(pace.may_send(5, false, start + 10 * MS));
        // Nothing gathered: nothing to send, due or not.
        assert!(!pace.may_send(0, false, start + 20 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_or_one_with_other_items_goes_at_once() {
        let mut pace = BatchPace::new(10 * MS);
        let start = Instant::now();
        pace.sent(1, start);
        assert!(pace.may_send(FULL, false, start + MS));
        assert!(!pace.may_send(FULL - 1, false, start + MS));
        // A route change or a claim, with or without publishes.
        assert!(pace.may_send(0, true, start + MS));
        assert!(pace.may_send(3, true, start + MS));
    }

    #[tokio::test(start_paused = true)]
    async fn only_batches_of_publishes_set_the_pace() {
        let mut pace = BatchPace::new(10 * MS);
        let start = Instant::now();
        // A batch of routes only (or an empty heartbeat) does not hold the next publishes.
        pace.sent(0, start);
        assert!(pace.may_send(1, false, start + MS));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_sends_whenever_there_is_something() {
        let mut pace = BatchPace::new(Duration::ZERO);
        let now = Instant::now();
        pace.sent(1, now);
        assert!(pace.may_send(1, false, now));
        assert!(!pace.may_send(0, false, now));
    }
}

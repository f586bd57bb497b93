//! A min-heap of deadlines. Entries are hints: the owner re-checks its state when one fires, so
//! stale entries (a connection that sent a packet since, a session that reconnected) cost
//! nothing but a pop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Items due at instants, popped in time order.
#[derive(Debug)]
pub struct Deadlines<T: Ord> {
    heap: BinaryHeap<Reverse<(Instant, T)>>,
}

impl<T: Ord> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord> Deadlines<T> {
    /// Schedules `item` at `at`.
    pub fn push(&mut self, at: Instant, item: T) {
        self.heap.push(Reverse((at, item)));
    }

    /// The earliest item due at or before `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.heap.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            self.heap.pop().map(|Reverse((_, item))| item)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_order_when_due() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.push(t0 + Duration::from_secs(2), "b");
        d.push(t0 + Duration::from_secs(1), "a");
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + Duration::from_secs(5)), Some("a"));
        assert_eq!(d.pop_due(t0 + Duration::from_secs(5)), Some("b"));
        assert_eq!(d.pop_due(t0 + Duration::from_secs(9)), None);
    }
}

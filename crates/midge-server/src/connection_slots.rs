//! The `limits.max_connections` cap, changeable while running.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts open connections against a maximum that a reload may raise or lower. Lowering it
/// below the current count closes nobody: new connections are refused until enough have
/// ended. (A semaphore cannot shrink while its permits are out, hence this type.)
#[derive(Debug)]
pub(crate) struct ConnectionSlots {
    open: AtomicUsize,
    max: AtomicUsize,
    /// Connections refused because `max` were open.
    refused: AtomicU64,
}

/// One open connection's slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<ConnectionSlots>,
}

impl ConnectionSlots {
    /// Room for `max` connections.
    pub(crate) fn new(max: usize) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots {
            open: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            refused: AtomicU64::new(0),
        })
    }

    /// Takes a slot, or `None` (counted as a refusal) when `max` connections are open.
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let max = self.max.load(Ordering::Relaxed);
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .is_ok();
        if !taken {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Slot {
            slots: self.clone(),
        })
    }

    /// Connections refused so far because the maximum was reached.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The current maximum.
    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the maximum for connections accepted from now on.
    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_the_maximum_refuses_new_ones_until_enough_have_ended() {
        let slots = ConnectionSlots::new(3);
        let a = slots.try_take().expect("1");
        let b = slots.try_take().expect("2");
        let _c = slots.try_take().expect("3");
        assert!(slots.try_take().is_none());
        slots.set_max(2);
        drop(a);
        assert_eq!(slots.open(), 2);
        assert!(slots.try_take().is_none(), "still at the new maximum");
        drop(b);
        let _d = slots.try_take().expect("room again");
        slots.set_max(10);
        let _e = slots.try_take().expect("raised");
        assert_eq!(slots.open(), 3);
        assert_eq!(slots.max(), 10);
        assert_eq!(slots.refused(), 2);
    }
}

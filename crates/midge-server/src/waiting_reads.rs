//! Client reads left for the broker lock's holder by readers that found the lock busy (see
//! `SharedBroker::packets`).

use midge_codec::Packet;
use midge_core::ConnId;
use parking_lot::Mutex;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::Instant;

/// Most reads left waiting; a reader finding this many waits for the lock instead.
pub(crate) const MAX_WAITING: usize = 64;

/// A client's read left for the lock holder.
pub(crate) struct WaitingRead {
    pub(crate) conn: ConnId,
    pub(crate) packets: Vec<Packet>,
    /// When the reader handed it over, for `midge_publish_latency_seconds`; `None` for a
    /// read with no PUBLISH in it (nothing to time, so the clock was not read).
    pub(crate) started: Option<Instant>,
}

/// The reads left, in the order they were left.
#[derive(Default)]
pub(crate) struct WaitingReads {
    reads: Mutex<Vec<WaitingRead>>,
    /// How many reads `reads` holds; readable without its lock.
    count: AtomicUsize,
}

impl WaitingReads {
    /// Leaves `packets` (taking them); false, leaving them alone, if [`MAX_WAITING`] reads
    /// wait already.
    pub(crate) fn leave(
        &self,
        conn: ConnId,
        packets: &mut Vec<Packet>,
        started: Option<Instant>,
    ) -> bool {
        let mut reads = self.reads.lock();
        if reads.len() >= MAX_WAITING {
            return false;
        }
        reads.push(WaitingRead {
            conn,
            packets: std::mem::take(packets),
            started,
        });
        self.count.store(reads.len(), Ordering::Relaxed);
        true
    }

    /// Takes every read left so far, oldest first.
    pub(crate) fn take(&self) -> Vec<WaitingRead> {
        let mut reads = self.reads.lock();
        self.count.store(0, Ordering::Relaxed);
        std::mem::take(&mut *reads)
    }

    /// True if reads wait. A task that just locked the broker sees at least the reads its
    /// own earlier calls left, which is what keeps one connection's reads in order.
    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// [`WaitingReads::any`] for a task that has just let go of the broker lock, or left a
    /// read and is about to try the lock: with this fence on both sides, either the reader
    /// finds the lock free or the task letting go sees the read, so none is left behind.
    pub(crate) fn any_after_unlock(&self) -> bool {
        fence(Ordering::SeqCst);
        self.any()
    }

    /// How many reads wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_taken_oldest_first_and_at_most_max_waiting_are_left() {
        let waiting = WaitingReads::default();
        let started = Some(Instant::now());
        for conn in 0..MAX_WAITING as ConnId {
            let mut packets = vec![Packet::PingReq];
            assert!(waiting.leave(conn, &mut packets, started));
            assert!(packets.is_empty());
        }
        let mut one_more = vec![Packet::PingReq];
        assert!(!waiting.leave(99, &mut one_more, started));
        assert_eq!(one_more.len(), 1, "a refused read stays with its reader");
        assert!(waiting.any_after_unlock());
        let conns: Vec<ConnId> = waiting.take().iter().map(|r| r.conn).collect();
        assert_eq!(conns, (0..MAX_WAITING as ConnId).collect::<Vec<_>>());
        assert!(!waiting.any());
        assert_eq!(waiting.len(), 0);
    }
}

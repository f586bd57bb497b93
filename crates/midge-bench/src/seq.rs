//! Per-publisher sequence checking on the subscriber side.

/// Publisher ids at or above this are not tracked (keeps the table small).
const MAX_TRACKED_PUBLISHERS: u32 = 1 << 20;

/// What one received sequence number says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next expected number (or the first seen from this publisher).
    InOrder,
    /// Numbers were skipped: this many are missing before it.
    Gap(u64),
    /// At or below a number already seen: a duplicate (or a reordering).
    Duplicate,
    /// Publisher id too large to track.
    Untracked,
}

/// Tracks, for one subscriber, the next expected sequence number of every publisher.
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    /// `last seen + 1` per publisher id; 0 when nothing seen yet.
    next: Vec<u64>,
}

impl SeqTracker {
    /// Records `seq` from `publisher` and classifies it.
    pub fn observe(&mut self, publisher: u32, seq: u64) -> SeqOutcome {
        if publisher >= MAX_TRACKED_PUBLISHERS {
            return SeqOutcome::Untracked;
        }
        let i = publisher as usize;
        if i >= self.next.len() {
            self.next.resize(i + 1, 0);
        }
        let expected = self.next[i];
        if seq < expected {
            return SeqOutcome::Duplicate;
        }
        self.next[i] = seq + 1;
        // The first message seen from a publisher is in order whatever its number: a
        // subscriber that joins late, or shares a group, never saw the earlier ones.
        if seq == expected || expected == 0 {
            SeqOutcome::InOrder
        } else {
            SeqOutcome::Gap(seq - expected)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_in_order_gaps_and_duplicates() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(3, 0), SeqOutcome::InOrder);
        assert_eq!(t.observe(3, 1), SeqOutcome::InOrder);
        assert_eq!(t.observe(3, 4), SeqOutcome::Gap(2));
        assert_eq!(t.observe(3, 4), SeqOutcome::Duplicate);
        assert_eq!(t.observe(3, 2), SeqOutcome::Duplicate);
        assert_eq!(t.observe(3, 5), SeqOutcome::InOrder);
        // Publishers are independent.
        assert_eq!(t.observe(0, 0), SeqOutcome::InOrder);
        assert_eq!(t.observe(0, 1), SeqOutcome::InOrder);
    }

    #[test]
    fn late_joiner_and_huge_ids() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(1, 500), SeqOutcome::InOrder);
        assert_eq!(t.observe(1, 501), SeqOutcome::InOrder);
        assert_eq!(t.observe(u32::MAX, 0), SeqOutcome::Untracked);
    }
}

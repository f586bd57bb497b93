//! Send schedule of one publisher: as fast as allowed, or at a fixed interval (open loop).

/// Decides when a publisher's next message is due, in ns on the monotonic clock.
///
/// A paced publisher keeps its schedule even when it falls behind: overdue messages are sent
/// at once (open loop), so a stalled broker cannot silently lower the offered rate. Messages
/// are stamped with their actual send time; how late each left against its schedule is
/// reported separately as the send lag, which exposes any coordinated omission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacer {
    interval_ns: u64,
    next_ns: u64,
}

impl Pacer {
    /// No schedule: every message is due immediately.
    pub fn unpaced() -> Pacer {
        Pacer {
            interval_ns: 0,
            next_ns: 0,
        }
    }

    /// One message every `interval_ns`, the first at `first_ns`.
    pub fn every(interval_ns: u64, first_ns: u64) -> Pacer {
        Pacer {
            interval_ns: interval_ns.max(1),
            next_ns: first_ns,
        }
    }

    /// Schedule for client `index` of `clients` sharing `total_per_sec` messages per second:
    /// each gets an equal share, with start times spread over one interval.
    pub fn share_of_rate(total_per_sec: f64, clients: u64, index: u64, start_ns: u64) -> Pacer {
        let clients = clients.max(1);
        let interval_ns = (clients as f64 * 1e9 / total_per_sec.max(1e-9)).round() as u64;
        Pacer::spread(interval_ns, clients, index, start_ns)
    }

    /// Schedule for client `index` of `clients`, each sending every `interval_ns`, with start
    /// times spread over one interval so the clients don't send in lockstep.
    pub fn spread(interval_ns: u64, clients: u64, index: u64, start_ns: u64) -> Pacer {
        let interval_ns = interval_ns.max(1);
        let offset = (u128::from(interval_ns) * u128::from(index % clients.max(1))
            / u128::from(clients.max(1))) as u64;
        Pacer::every(interval_ns, start_ns + offset)
    }

    /// True when this pacer follows a schedule.
    pub fn is_paced(&self) -> bool {
        self.interval_ns > 0
    }

    /// If a message is due at `now_ns`, returns the time it was due and advances.
    pub fn take_due(&mut self, now_ns: u64) -> Option<u64> {
        if !self.is_paced() {
            return Some(now_ns);
        }
        if self.next_ns > now_ns {
            return None;
        }
        let due = self.next_ns;
        self.next_ns += self.interval_ns;
        Some(due)
    }

    /// When the next message is due (`None` when unpaced: always).
    pub fn next_due_ns(&self) -> Option<u64> {
        self.is_paced().then_some(self.next_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_is_always_due() {
        let mut p = Pacer::unpaced();
        assert_eq!(p.take_due(5), Some(5));
        assert_eq!(p.take_due(5), Some(5));
        assert_eq!(p.next_due_ns(), None);
    }

    #[test]
    fn paced_catches_up_with_due_times() {
        let mut p = Pacer::every(100, 1_000);
        assert_eq!(p.take_due(999), None);
        assert_eq!(p.next_due_ns(), Some(1_000));
        // Late by 250 ns: three messages are due at once, with their scheduled times.
        assert_eq!(p.take_due(1_250), Some(1_000));
        assert_eq!(p.take_due(1_250), Some(1_100));
        assert_eq!(p.take_due(1_250), Some(1_200));
        assert_eq!(p.take_due(1_250), None);
    }

    #[test]
    fn rate_is_shared_and_spread() {
        // 10k msg/s over 4 clients: 2,500 msg/s each, 400 us apart, offsets 0/100/200/300 us.
        let starts: Vec<_> = (0..4)
            .map(|i| Pacer::share_of_rate(10_000.0, 4, i, 0))
            .map(|p| (p.interval_ns, p.next_ns))
            .collect();
        assert_eq!(
            starts,
            vec![
                (400_000, 0),
                (400_000, 100_000),
                (400_000, 200_000),
                (400_000, 300_000)
            ]
        );
    }
}

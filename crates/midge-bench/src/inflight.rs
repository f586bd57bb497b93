//! Packet ids and send times of a publisher's unacknowledged QoS 1/2 messages.

use std::collections::VecDeque;

/// A bounded window of in-flight packet ids, oldest first. Brokers acknowledge in order, so
/// release is O(1) in the common case; out-of-order acks fall back to a scan.
#[derive(Debug)]
pub struct InflightWindow {
    limit: usize,
    next_id: u16,
    in_use: Vec<u64>,
    queue: VecDeque<(u16, u64)>,
}

impl InflightWindow {
    /// A window allowing `limit` messages in flight (clamped to 1..=65535).
    pub fn new(limit: usize) -> InflightWindow {
        let limit = limit.clamp(1, usize::from(u16::MAX));
        InflightWindow {
            limit,
            next_id: 1,
            in_use: vec![0; 65_536 / 64],
            queue: VecDeque::with_capacity(limit.min(4096)),
        }
    }

    /// Lowers the limit (for a v5 server's Receive Maximum).
    pub fn cap(&mut self, limit: usize) {
        self.limit = self.limit.min(limit.max(1));
    }

    /// The current limit.
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Messages in flight.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// True when no more messages may be sent until one is acknowledged.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.limit
    }

    /// Takes a free packet id for a message sent at `sent_ns`; `None` when the window is full.
    pub fn acquire(&mut self, sent_ns: u64) -> Option<u16> {
        if self.is_full() {
            return None;
        }
        loop {
            let id = self.next_id;
            self.next_id = if id == u16::MAX { 1 } else { id + 1 };
            if !self.used(id) {
                self.mark(id, true);
                self.queue.push_back((id, sent_ns));
                return Some(id);
            }
        }
    }

    /// Releases `id`; returns its send time, or `None` if it was not in flight.
    pub fn release(&mut self, id: u16) -> Option<u64> {
        if !self.used(id) {
            return None;
        }
        self.mark(id, false);
        let index = match self.queue.front() {
            Some((front, _)) if *front == id => 0,
            _ => self.queue.iter().position(|(i, _)| *i == id)?,
        };
        self.queue.remove(index).map(|(_, sent)| sent)
    }

    fn used(&self, id: u16) -> bool {
        self.in_use[usize::from(id) / 64] & (1 << (id % 64)) != 0
    }

    fn mark(&mut self, id: u16, used: bool) {
        let word = &mut self.in_use[usize::from(id) / 64];
        if used {
            *word |= 1 << (id % 64);
        } else {
            *word &= !(1 << (id % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_drains_in_order() {
        let mut w = InflightWindow::new(3);
        assert_eq!(w.acquire(10), Some(1));
        assert_eq!(w.acquire(20), Some(2));
        assert_eq!(w.acquire(30), Some(3));
        assert!(w.is_full());
        assert_eq!(w.acquire(40), None);
        assert_eq!(w.release(1), Some(10));
        assert_eq!(w.release(1), None, "double ack");
        assert_eq!(w.acquire(50), Some(4));
        assert_eq!(w.release(3), Some(30), "out of order");
        assert_eq!(w.release(2), Some(20));
        assert_eq!(w.release(4), Some(50));
        assert!(w.is_empty());
    }

    #[test]
    fn ids_wrap_and_skip_ids_in_use() {
        let mut w = InflightWindow::new(2);
        let first = w.acquire(0).unwrap();
        assert_eq!(first, 1);
        for _ in 0..u16::MAX as usize {
            let id = w.acquire(0).unwrap();
            assert_ne!(id, 0);
            assert_ne!(id, first, "id 1 is still in flight");
            w.release(id).unwrap();
        }
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn receive_maximum_caps_the_window() {
        let mut w = InflightWindow::new(64);
        w.cap(20);
        assert_eq!(w.limit(), 20);
        w.cap(100);
        assert_eq!(w.limit(), 20);
    }
}

//! Which of a session's QoS 1/2 messages came through a `$share` group, so they can go to
//! another member if the session ends before they complete (MQTT 4.8.2).
//!
//! Entries come in at the session's newest sequence number and mostly leave at the oldest: a
//! sliding window. It is a deque in sequence order, so adding one is a push at the back and
//! completing the oldest a pop at the front; the profile of shared QoS 1 fan-in had a
//! `BTreeMap` insert (a search from the root, its first read a cache miss) at 6% of the broker's
//! time, and a hash table's removed-entry markers made its probes long before that.

use crate::on_demand::OnDemand;
use std::collections::VecDeque;
use std::sync::Arc;

/// Completed entries the deque may hold beyond the live ones before it is compacted.
const SLACK: usize = 64;

/// Sequence number -> shared group name, for the messages of one session; boxed once the
/// session first gets a message through a group (most never do).
#[derive(Debug, Clone, Default)]
pub struct SharedSeqs(OnDemand<Window>);

/// The window itself.
#[derive(Debug, Clone, Default)]
struct Window {
    /// In increasing sequence order; `None`: completed while an older one was still pending.
    /// The front is never `None`.
    entries: VecDeque<(u64, Option<Arc<str>>)>,
    /// `None` entries in `entries`.
    dead: usize,
}

impl Window {
    /// True if no message of this session is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Messages remembered.
    pub fn len(&self) -> usize {
        self.entries.len() - self.dead
    }

    fn position(&self, seq: u64) -> Option<usize> {
        // The usual case first: the oldest completes.
        match self.entries.front() {
            Some((front, _)) if *front == seq => Some(0),
            _ => self.entries.binary_search_by_key(&seq, |(s, _)| *s).ok(),
        }
    }

    /// Remembers that message `seq` came through group `name`.
    pub fn insert(&mut self, seq: u64, name: Arc<str>) {
        match self.entries.back() {
            None => self.entries.push_back((seq, Some(name))),
            Some((last, _)) if *last < seq => self.entries.push_back((seq, Some(name))),
            // Sequence numbers only grow, so this is not expected; kept correct regardless.
            _ => match self.entries.binary_search_by_key(&seq, |(s, _)| *s) {
                Ok(i) => {
                    if self.entries[i].1.is_none() {
                        self.dead -= 1;
                    }
                    self.entries[i].1 = Some(name);
                }
                Err(i) => self.entries.insert(i, (seq, Some(name))),
            },
        }
    }

    /// The group message `seq` came through.
    pub fn get(&self, seq: u64) -> Option<&Arc<str>> {
        self.position(seq)
            .and_then(|i| self.entries.get(i))
            .and_then(|(_, name)| name.as_ref())
    }

    /// Forgets message `seq` (completed, dropped or expired).
    pub fn remove(&mut self, seq: u64) {
        if self.entries.is_empty() {
            return;
        }
        let Some(i) = self.position(seq) else {
            return;
        };
        if self.entries[i].1.take().is_none() {
            return;
        }
        self.dead += 1;
        while let Some((_, None)) = self.entries.front() {
            self.entries.pop_front();
            self.dead -= 1;
        }
        if self.dead > self.len() + SLACK {
            self.entries.retain(|(_, name)| name.is_some());
            self.dead = 0;
        }
    }
}

impl SharedSeqs {
    /// True if no message of this session is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.get().is_none_or(Window::is_empty)
    }

    /// Messages remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.get().map_or(0, Window::len)
    }

    /// Remembers that message `seq` came through group `name`.
    pub fn insert(&mut self, seq: u64, name: Arc<str>) {
        self.0.make_mut().insert(seq, name);
    }

    /// The group message `seq` came through.
    pub fn get(&self, seq: u64) -> Option<&Arc<str>> {
        self.0.get()?.get(seq)
    }

    /// Forgets message `seq` (completed, dropped or expired).
    pub fn remove(&mut self, seq: u64) {
        if let Some(window) = self.0.get_mut() {
            window.remove(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_sliding_window() {
        let mut s = Window::default();
        let g: Arc<str> = "g".into();
        for seq in 1..=3 {
            s.insert(seq, g.clone());
        }
        s.remove(2);
        assert_eq!((s.len(), s.entries.len()), (2, 3));
        s.remove(1);
        assert_eq!(
            (s.len(), s.entries.len()),
            (1, 1),
            "completed ones at the front go"
        );
        assert_eq!(s.get(3), Some(&g));
        assert_eq!(s.get(2), None);
        s.remove(3);
        assert!(s.is_empty());
    }

    #[test]
    fn one_pending_message_does_not_make_it_grow() {
        let mut s = Window::default();
        let g: Arc<str> = "g".into();
        s.insert(0, g.clone());
        for seq in 1..10_000 {
            s.insert(seq, g.clone());
            s.remove(seq);
            assert!(s.entries.len() <= 2 * SLACK + 2);
        }
        assert_eq!(s.len(), 1);
        assert_eq!(s.get(0), Some(&g));
    }

    proptest! {
        /// The same answers as an ordered map for any order of completions.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..200), 1..400)) {
            let mut s = SharedSeqs::default();
            let mut model = BTreeMap::new();
            let mut next = 0;
            for (add, pick) in ops {
                if add {
                    let name: Arc<str> = format!("g{}", next % 3).into();
                    s.insert(next, name.clone());
                    model.insert(next, name);
                    next += 1;
                } else {
                    s.remove(pick);
                    model.remove(&pick);
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.is_empty(), model.is_empty());
                for seq in 0..next {
                    prop_assert_eq!(s.get(seq), model.get(&seq));
                }
            }
        }
    }
}

//! This node's routes: the filters its sessions subscribe to, reference counted, so peers hear
//! only of a filter's first subscriber and its last unsubscribe (ARCHITECTURE: "Routes").
//!
//! A route is a subscription filter exactly as subscribed: `a/+/b` for ordinary subscriptions,
//! `$share/{group}/{filter}` for a shared group, so a peer knows which groups live here.

use std::collections::HashMap;

/// A change to the route set, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// The first subscription to this filter on this node.
    Add(String),
    /// The last subscription to this filter on this node is gone.
    Remove(String),
}

/// Every filter subscribed on this node with its subscription count, and the changes not yet
/// handed to the server.
#[derive(Debug, Default)]
pub struct LocalRoutes {
    counts: HashMap<String, u32>,
    pending: Vec<RouteChange>,
}

impl LocalRoutes {
    /// One more subscription to `filter`.
    pub fn add(&mut self, filter: &str) {
        match self.counts.get_mut(filter) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(filter.to_string(), 1);
                self.push(RouteChange::Add(filter.to_string()));
            }
        }
    }

    /// One subscription to `filter` fewer.
    pub fn remove(&mut self, filter: &str) {
        let Some(n) = self.counts.get_mut(filter) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.counts.remove(filter);
            self.push(RouteChange::Remove(filter.to_string()));
        }
    }

    /// A change cancels a pending opposite one (subscribe then unsubscribe in one call).
    fn push(&mut self, change: RouteChange) {
        let opposite = match &change {
            RouteChange::Add(f) => RouteChange::Remove(f.clone()),
            RouteChange::Remove(f) => RouteChange::Add(f.clone()),
        };
        if let Some(pos) = self.pending.iter().rposition(|c| *c == opposite) {
            self.pending.remove(pos);
        } else {
            self.pending.push(change);
        }
    }

    /// Takes the changes since the last call.
    pub fn take_pending(&mut self) -> std::vec::Drain<'_, RouteChange> {
        self.pending.drain(..)
    }

    /// True if changes are waiting.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Every route now (for a full exchange with a peer).
    pub fn all(&self) -> Vec<String> {
        self.counts.keys().cloned().collect()
    }

    /// The number of distinct routes.
    pub fn len(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_and_last_subscription_change_the_routes() {
        let mut r = LocalRoutes::default();
        r.add("a/+");
        r.add("a/+");
        r.add("$share/g/b");
        assert_eq!(
            r.take_pending().collect::<Vec<_>>(),
            [
                RouteChange::Add("a/+".into()),
                RouteChange::Add("$share/g/b".into())
            ]
        );
        r.remove("a/+");
        assert!(!r.has_pending());
        r.remove("a/+");
        r.remove("never");
        assert_eq!(
            r.take_pending().collect::<Vec<_>>(),
            [RouteChange::Remove("a/+".into())]
        );
        assert_eq!(r.all(), ["$share/g/b"]);
    }

    #[test]
    fn subscribe_and_unsubscribe_in_one_call_cancel_out() {
        let mut r = LocalRoutes::default();
        r.add("x");
        r.remove("x");
        assert!(!r.has_pending());
        assert_eq!(r.len(), 0);
    }
}

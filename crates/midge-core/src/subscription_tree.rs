//! A topic-filter trie: subscriptions keyed by filter, matched against topic names.

use std::hash::Hash;

/// Subscriptions indexed by topic filter. Each filter holds values keyed by subscriber `K`
/// (one value per subscriber per filter). Matching follows MQTT 4.7: `+` matches one level,
/// `#` matches the parent level and any number below it, and filters starting with `+` or `#`
/// never match topics starting with `$`. Filters are plain (no `$share/` prefix: the core
/// strips it and keys shared members itself).
pub struct SubscriptionTree<K, V> {
    _p: std::marker::PhantomData<(K, V)>,
}

impl<K: Eq + Hash + Clone, V> SubscriptionTree<K, V> {
    /// An empty tree.
    pub fn new() -> Self {
        todo!("trees helper")
    }

    /// Adds or replaces `key`'s value under `filter`; returns the replaced value.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let _ = (filter, key, value);
        todo!("trees helper")
    }

    /// Removes `key`'s value under `filter`, pruning empty nodes; returns it.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let _ = (filter, key);
        todo!("trees helper")
    }

    /// Calls `f` for every (key, value) whose filter matches `topic`.
    pub fn for_each_match<'a>(&'a self, topic: &str, f: impl FnMut(&'a K, &'a V)) {
        let _ = (topic, f);
        todo!("trees helper")
    }

    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        todo!("trees helper")
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Clone, V> Default for SubscriptionTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

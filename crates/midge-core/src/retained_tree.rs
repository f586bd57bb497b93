//! A topic-name trie for retained messages, matched against topic filters.

/// Values stored by topic name, found by topic filter without scanning every entry: `+` and
/// `#` walk only the branches they match, and filters starting with a wildcard skip topics
/// starting with `$` (MQTT-4.7.2-1).
pub struct RetainedTree<V> {
    _p: std::marker::PhantomData<V>,
}

impl<V> RetainedTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        todo!("trees helper")
    }

    /// Stores `value` at `topic`; returns the value it replaced.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        let _ = (topic, value);
        todo!("trees helper")
    }

    /// Removes the value at `topic`, pruning empty nodes.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let _ = topic;
        todo!("trees helper")
    }

    /// The value at exactly `topic`.
    pub fn get(&self, topic: &str) -> Option<&V> {
        let _ = topic;
        todo!("trees helper")
    }

    /// Calls `f(topic, value)` for every stored topic that `filter` matches.
    pub fn for_each_match<'a>(&'a self, filter: &str, f: impl FnMut(&str, &'a V)) {
        let _ = (filter, f);
        todo!("trees helper")
    }

    /// Removes every entry for which `keep` returns false (used for message expiry).
    pub fn retain(&mut self, keep: impl FnMut(&str, &V) -> bool) {
        let _ = keep;
        todo!("trees helper")
    }

    /// Number of stored topics.
    pub fn len(&self) -> usize {
        todo!("trees helper")
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V> Default for RetainedTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

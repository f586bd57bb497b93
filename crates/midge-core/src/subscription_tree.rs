//! A topic-filter trie: subscriptions keyed by filter, matched against topic names.
//!
//! Nodes live in one arena (`Vec<Node>`) and refer to each other by `u32` index. That keeps a
//! child reference at 4 bytes (a node with a million children costs a million small hash map
//! entries, not a million pointers plus node headers), gives every node a parent link so pruning
//! after `remove` is a loop rather than recursion, and makes dropping the tree flat: no filter,
//! however deep, can overflow the thread stack.

pub(crate) mod support;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;
use std::hash::Hash;

use support::{split_level, SmallMap, Stack};

/// Index of a node in the arena. The root is index 0, and since the root is nobody's child,
/// 0 doubles as "no child" in the `plus` and `hash` slots.
type NodeId = u32;

/// The root's index (and the "no child" marker).
const ROOT: NodeId = 0;

/// Literal children per node kept in a plain vector before switching to a hash map.
const FEW_CHILDREN: usize = 8;

/// Subscribers per filter kept in a plain vector before switching to a hash map.
const FEW_KEYS: usize = 16;

/// Inline depth of the match stack; only topics that branch deeper than this allocate.
const INLINE_FRAMES: usize = 16;

/// One topic level of the filter trie.
struct Node<K, V> {
    /// Children reached by a literal level.
    children: SmallMap<Box<str>, NodeId, FEW_CHILDREN>,
    /// Child reached by a `+` level, or `ROOT` if none.
    plus: NodeId,
    /// Child reached by a `#` level, or `ROOT` if none. Only its `entries` ever match, since
    /// `#` must be the last level (MQTT-4.7.1-1); anything below it comes from an invalid
    /// filter and is kept only so that `remove` finds it again.
    hash: NodeId,
    /// The node this one hangs from (`ROOT` for the root itself), for pruning upwards.
    parent: NodeId,
    /// Subscribers whose filter ends at this node.
    entries: SmallMap<K, V, FEW_KEYS>,
}

impl<K, V> Node<K, V> {
    fn new(parent: NodeId) -> Self {
        Node {
            children: SmallMap::default(),
            plus: ROOT,
            hash: ROOT,
            parent,
            entries: SmallMap::default(),
        }
    }
}

impl<K: Eq + Hash, V> Node<K, V> {
    /// True if nothing hangs from or ends at this node, i.e. it can be pruned.
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.children.is_empty()
            && self.plus == ROOT
            && self.hash == ROOT
    }

    /// The child reached by filter level `level`.
    fn child(&self, level: &str) -> Option<NodeId> {
        let id = match level {
            "+" => self.plus,
            "#" => self.hash,
            _ => return self.children.get_level(level).copied(),
        };
        (id != ROOT).then_some(id)
    }

    /// Unlinks the child reached by filter level `level`.
    fn detach(&mut self, level: &str) {
        match level {
            "+" => self.plus = ROOT,
            "#" => self.hash = ROOT,
            _ => {
                self.children.remove(level);
            }
        }
    }
}

/// Subscriptions indexed by topic filter. Each filter holds values keyed by subscriber `K`
/// (one value per subscriber per filter). Matching follows MQTT 4.7: `+` matches one level,
/// `#` matches the parent level and any number below it, and filters starting with `+` or `#`
/// never match topics starting with `$`. Filters are plain (no `$share/` prefix: the core
/// strips it and keys shared members itself).
///
/// Filters are expected to be valid (the codec checks them); an invalid one such as `a/#/b` or
/// `a/b+` is stored without panicking, matches as its literal levels would, and can be removed.
pub struct SubscriptionTree<K, V> {
    /// Node arena; index 0 is the root.
    nodes: Vec<Node<K, V>>,
    /// Indices of pruned nodes, reused before the arena grows.
    free: Vec<NodeId>,
    /// Number of (filter, key) entries.
    len: usize,
}

impl<K: Eq + Hash + Clone, V> SubscriptionTree<K, V> {
    /// An empty tree.
    pub fn new() -> Self {
        SubscriptionTree {
            nodes: vec![Node::new(ROOT)],
            free: Vec::new(),
            len: 0,
        }
    }

    /// Adds or replaces `key`'s value under `filter`; returns the replaced value.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut id = ROOT;
        for level in filter.split('/') {
            id = match self.nodes[id as usize].child(level) {
                Some(child) => child,
                None => self.add_child(id, level),
            };
        }
        let replaced = self.nodes[id as usize].entries.insert(key, value);
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// Removes `key`'s value under `filter`, pruning empty nodes; returns it.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let mut id = ROOT;
        for level in filter.split('/') {
            id = self.nodes[id as usize].child(level)?;
        }
        let removed = self.nodes[id as usize].entries.remove(key)?;
        self.len -= 1;
        // Walk back up the same levels, leaf first, unlinking every node left empty. Every
        // non-root node has an entry somewhere below it, so the first non-empty node ends it.
        for level in filter.rsplit('/') {
            let node = &self.nodes[id as usize];
            if id == ROOT || !node.is_empty() {
                break;
            }
            let parent = node.parent;
            self.nodes[parent as usize].detach(level);
            self.release(id);
            id = parent;
        }
        if self.len == 0 {
            // Everything is gone: give the arena's memory back instead of keeping a free list
            // sized for the peak.
            *self = Self::new();
        }
        Some(removed)
    }

    /// Calls `f` for every (key, value) whose filter matches `topic`.
    pub fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a K, &'a V)) {
        let mut emit = |node: &'a Node<K, V>| {
            for (key, value) in node.entries.iter() {
                f(key, value);
            }
        };
        // MQTT-4.7.2-1: filters starting with a wildcard must not match topics starting with
        // `$`, so the root's `+` and `#` children are skipped for such topics.
        let dollar = topic.starts_with('$');
        // Pending branches: a node and the topic levels still to match below it (`None` once
        // every level is consumed). Only `+` branches are pushed; literal children are followed
        // in the inner loop directly.
        let mut pending: Stack<(NodeId, Option<&str>), INLINE_FRAMES> = Stack::new();
        pending.push((ROOT, Some(topic)));
        while let Some((mut id, mut rest)) = pending.pop() {
            loop {
                let node = &self.nodes[id as usize];
                let wildcards_allowed = !(dollar && id == ROOT);
                if node.hash != ROOT && wildcards_allowed {
                    // `#` matches this level's topic (the parent, MQTT 4.7.1.2) and any deeper.
                    emit(&self.nodes[node.hash as usize]);
                }
                let Some(levels) = rest else {
                    emit(node);
                    break;
                };
                let (level, tail) = split_level(levels);
                if node.plus != ROOT && wildcards_allowed {
                    pending.push((node.plus, tail));
                }
                match node.children.get_level(level) {
                    Some(&child) => {
                        id = child;
                        rest = tail;
                    }
                    None => break,
                }
            }
        }
    }

    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Links a new empty node under `parent` at filter level `level` and returns it.
    fn add_child(&mut self, parent: NodeId, level: &str) -> NodeId {
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Node::new(parent);
                id
            }
            None => {
                // 4 billion nodes would need hundreds of gigabytes, long before this fails.
                let id = NodeId::try_from(self.nodes.len()).expect("subscription trie full");
                self.nodes.push(Node::new(parent));
                id
            }
        };
        let node = &mut self.nodes[parent as usize];
        match level {
            "+" => node.plus = id,
            "#" => node.hash = id,
            _ => {
                node.children.insert(level.into(), id);
            }
        }
        id
    }

    /// Returns a pruned node's slot to the free list, dropping whatever it still owns.
    fn release(&mut self, id: NodeId) {
        self.nodes[id as usize] = Node::new(ROOT);
        self.free.push(id);
    }

    /// Live nodes including the root, to check that pruning works.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

impl<K: Eq + Hash + Clone, V> Default for SubscriptionTree<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> fmt::Debug for SubscriptionTree<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionTree")
            .field("len", &self.len)
            .field("nodes", &(self.nodes.len() - self.free.len()))
            .finish()
    }
}

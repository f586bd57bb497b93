//! A topic-name trie for retained messages, matched against topic filters.
//!
//! Like the subscription trie, nodes live in an arena and link by `u32` index with parent links,
//! and every walk uses an explicit stack, so a retained message published to a topic with tens
//! of thousands of levels cannot overflow the thread stack when matched, expired or dropped.
//! Topic names are not stored whole: a walk rebuilds them level by level in one `String` buffer,
//! which keeps a million retained topics at roughly one copy of each level name.

#[cfg(test)]
mod tests;

use std::fmt;

use crate::subscription_tree::support::{split_level, SmallMap, SmallMapIter, Stack};

/// Index of a node in the arena; the root is index 0.
type NodeId = u32;

/// The root's index.
const ROOT: NodeId = 0;

/// Children per node kept in a plain vector before switching to a hash map.
const FEW_CHILDREN: usize = 8;

/// Inline depth of the walk stack; only walks that branch deeper than this allocate.
const INLINE_FRAMES: usize = 8;

/// One topic level.
struct Node<V> {
    /// Child levels by name.
    children: SmallMap<Box<str>, NodeId, FEW_CHILDREN>,
    /// The node this one hangs from (`ROOT` for the root itself), for pruning upwards.
    parent: NodeId,
    /// The value stored at the topic ending here.
    value: Option<V>,
}

impl<V> Node<V> {
    fn new(parent: NodeId) -> Self {
        Node {
            children: SmallMap::default(),
            parent,
            value: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.value.is_none() && self.children.is_empty()
    }
}

/// What is left to match below a node during a walk.
#[derive(Clone, Copy)]
enum Rest<'f> {
    /// The remaining filter levels (`None` once all are consumed).
    Levels(Option<&'f str>),
    /// Everything below matches (the node was reached through `#`).
    Subtree,
}

/// A branch point of a walk: children still to visit, all with the same `rest` to match.
struct Frame<'a, 'f> {
    children: SmallMapIter<'a, Box<str>, NodeId>,
    rest: Rest<'f>,
    /// Length of the topic buffer at the parent, to cut back to before appending a child.
    parent_len: usize,
    /// MQTT-4.7.2-1: set when the wildcard sits at the first level, to skip `$` topics.
    skip_dollar: bool,
}

/// Values stored by topic name, found by topic filter without scanning every entry: `+` and
/// `#` walk only the branches they match, and filters starting with a wildcard skip topics
/// starting with `$` (MQTT-4.7.2-1).
pub struct RetainedTree<V> {
    /// Node arena; index 0 is the root.
    nodes: Vec<Node<V>>,
    /// Indices of pruned nodes, reused before the arena grows.
    free: Vec<NodeId>,
    /// Number of stored topics.
    len: usize,
}

impl<V> RetainedTree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        RetainedTree {
            nodes: vec![Node::new(ROOT)],
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` at `topic`; returns the value it replaced.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        let mut id = ROOT;
        for level in topic.split('/') {
            id = match self.nodes[id as usize].children.get_level(level) {
                Some(&child) => child,
                None => self.add_child(id, level),
            };
        }
        let replaced = self.nodes[id as usize].value.replace(value);
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// Removes the value at `topic`, pruning empty nodes.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let mut id = self.find(topic)?;
        let removed = self.nodes[id as usize].value.take()?;
        self.len -= 1;
        // Walk back up the same levels, leaf first, unlinking every node left empty.
        for level in topic.rsplit('/') {
            let node = &self.nodes[id as usize];
            if id == ROOT || !node.is_empty() {
                break;
            }
            let parent = node.parent;
            self.nodes[parent as usize].children.remove(level);
            self.nodes[id as usize] = Node::new(ROOT);
            self.free.push(id);
            id = parent;
        }
        if self.len == 0 {
            // Give the arena back rather than keep a free list sized for the peak.
            *self = Self::new();
        }
        Some(removed)
    }

    /// The value at exactly `topic`.
    pub fn get(&self, topic: &str) -> Option<&V> {
        self.nodes[self.find(topic)? as usize].value.as_ref()
    }

    /// Calls `f(topic, value)` for every stored topic that `filter` matches.
    pub fn for_each_match<'a>(&'a self, filter: &str, mut f: impl FnMut(&str, &'a V)) {
        if !filter.contains(['+', '#']) {
            // No wildcard: one lookup, and the filter is the topic name, so no buffer either.
            if let Some(value) = self.get(filter) {
                f(filter, value);
            }
            return;
        }
        self.walk(Rest::Levels(Some(filter)), &mut f);
    }

    /// Removes every entry for which `keep` returns false (used for message expiry).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        // Decide during an immutable walk (which has the topic names at hand), then remove by
        // name: removal needs the names anyway to unlink pruned nodes from their parents.
        let mut doomed = Vec::new();
        self.walk(Rest::Subtree, &mut |topic: &str, value: &V| {
            if !keep(topic, value) {
                doomed.push(topic.to_owned());
            }
        });
        for topic in doomed {
            self.remove(&topic);
        }
    }

    /// Number of stored topics.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The node for exactly `topic`, if its path exists.
    fn find(&self, topic: &str) -> Option<NodeId> {
        let mut id = ROOT;
        for level in topic.split('/') {
            id = *self.nodes[id as usize].children.get_level(level)?;
        }
        Some(id)
    }

    /// Links a new empty node under `parent` at level `level` and returns it.
    fn add_child(&mut self, parent: NodeId, level: &str) -> NodeId {
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Node::new(parent);
                id
            }
            None => {
                // 4 billion nodes would need hundreds of gigabytes, long before this fails.
                let id = NodeId::try_from(self.nodes.len()).expect("retained trie full");
                self.nodes.push(Node::new(parent));
                id
            }
        };
        self.nodes[parent as usize]
            .children
            .insert(level.into(), id);
        id
    }

    /// Visits every stored topic below the root that `start` matches, depth first.
    ///
    /// The topic buffer holds `/level` per level walked, so the topic name is the buffer minus
    /// its first byte; this keeps an empty first level (topic `/a`) unambiguous.
    fn walk<'a>(&'a self, start: Rest<'_>, f: &mut impl FnMut(&str, &'a V)) {
        let mut topic = String::new();
        let mut stack: Stack<Frame<'a, '_>, INLINE_FRAMES> = Stack::new();
        self.visit(ROOT, start, &mut topic, &mut stack, f);
        while let Some(frame) = stack.last_mut() {
            let Some((name, &child)) = frame.children.next() else {
                stack.pop();
                continue;
            };
            if frame.skip_dollar && name.starts_with('$') {
                continue;
            }
            let rest = frame.rest;
            topic.truncate(frame.parent_len);
            topic.push('/');
            topic.push_str(name);
            self.visit(child, rest, &mut topic, &mut stack, f);
        }
    }

    /// Handles node `id` (whose topic is in `topic`) against `rest`: reports its value if it
    /// matches, follows a literal level directly and pushes a frame for a wildcard level.
    fn visit<'a, 'f>(
        &'a self,
        mut id: NodeId,
        mut rest: Rest<'f>,
        topic: &mut String,
        stack: &mut Stack<Frame<'a, 'f>, INLINE_FRAMES>,
        f: &mut impl FnMut(&str, &'a V),
    ) {
        loop {
            let node = &self.nodes[id as usize];
            let mut emit = || {
                if let Some(value) = &node.value {
                    f(topic.get(1..).unwrap_or_default(), value);
                }
            };
            let mut push = |rest, skip_dollar| {
                if !node.children.is_empty() {
                    stack.push(Frame {
                        children: node.children.iter(),
                        rest,
                        parent_len: topic.len(),
                        skip_dollar,
                    });
                }
            };
            let levels = match rest {
                Rest::Subtree => {
                    emit();
                    push(Rest::Subtree, false);
                    return;
                }
                Rest::Levels(None) => return emit(),
                Rest::Levels(Some(levels)) => levels,
            };
            let (level, tail) = split_level(levels);
            match level {
                // `#` must be the last level (MQTT-4.7.1-1); elsewhere it matches nothing. It
                // matches the parent level too (4.7.1.2), hence the `emit`.
                "#" if tail.is_none() => {
                    emit();
                    push(Rest::Subtree, id == ROOT);
                    return;
                }
                "#" => return,
                "+" => return push(Rest::Levels(tail), id == ROOT),
                _ => {
                    let Some(&child) = node.children.get_level(level) else {
                        return;
                    };
                    topic.push('/');
                    topic.push_str(level);
                    id = child;
                    rest = Rest::Levels(tail);
                }
            }
        }
    }

    /// Live nodes including the root, to check that pruning works.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

impl<V> Default for RetainedTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> fmt::Debug for RetainedTree<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetainedTree")
            .field("len", &self.len)
            .field("nodes", &(self.nodes.len() - self.free.len()))
            .finish()
    }
}

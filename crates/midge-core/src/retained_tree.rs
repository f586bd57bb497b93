//! A topic-name trie for retained messages, matched against topic filters.
//!
//! Like the subscription trie, nodes live in an arena and link by `u32` index with parent links,
//! and every walk uses an explicit stack, so a retained message published to a topic with tens
//! of thousands of levels cannot overflow the thread stack when matched, expired or dropped.
//! Topic names are not stored whole: a walk rebuilds them level by level in one `String` buffer,
//! which keeps a million retained topics at roughly one copy of each level name.
//!
//! Walks visit topics in [`topic_order`], and can start right after a given topic: a new
//! subscriber's retained messages are handed out a window at a time, each window resuming
//! where the last one stopped, without a copy of the matching set ever being made.

mod children;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;
use std::ops::ControlFlow;

use crate::subscription_tree::support::{split_level, Stack};
use children::{ChildIter, Children};

/// Index of a node in the arena; the root is index 0.
type NodeId = u32;

/// The root's index.
const ROOT: NodeId = 0;

/// Inline depth of the walk stack; only walks that branch deeper than this allocate.
const INLINE_FRAMES: usize = 8;

/// The order in which walks visit topics: level by level, each level compared by bytes, and a
/// topic before the topics below it (`a` < `a/b` < `a/c` < `a-`... is not string order:
/// `a/b` < `a-` here because level `a` < level `a-`).
pub fn topic_order(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// One topic level.
struct Node<V> {
    /// Child levels by name, in name order.
    children: Children<NodeId>,
    /// The node this one hangs from (`ROOT` for the root itself), for pruning upwards.
    parent: NodeId,
    /// The value stored at the topic ending here.
    value: Option<V>,
}

impl<V> Node<V> {
    fn new(parent: NodeId) -> Self {
        Node {
            children: Children::default(),
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

/// Where a node stands against the topic a walk resumes after.
#[derive(Clone, Copy)]
enum After<'f> {
    /// The node and everything below it come after: visit all.
    Nothing,
    /// The node's topic is a proper prefix of the resume topic, whose levels below the node
    /// are these: the node itself comes before it, some of its children may not.
    Levels(&'f str),
    /// The node's topic is the resume topic: skip its value, visit everything below.
    This,
}

impl<'f> After<'f> {
    /// The bound for the children: the resume topic's next level and what follows it.
    fn for_children(self) -> Option<(&'f str, Option<&'f str>)> {
        match self {
            After::Levels(levels) => Some(split_level(levels)),
            After::Nothing | After::This => None,
        }
    }

    /// The bound of the child named `name`, given the parent's bound for its children;
    /// `None` if that child and all below it come before the resume topic.
    fn of_child(bound: Option<(&'f str, Option<&'f str>)>, name: &str) -> Option<After<'f>> {
        let Some((level, tail)) = bound else {
            return Some(After::Nothing);
        };
        match name.cmp(level) {
            Ordering::Less => None,
            Ordering::Equal => Some(tail.map_or(After::This, After::Levels)),
            Ordering::Greater => Some(After::Nothing),
        }
    }
}

/// A branch point of a walk: children still to visit, all with the same `rest` to match.
struct Frame<'a, 'f> {
    children: ChildIter<'a, NodeId>,
    rest: Rest<'f>,
    /// The resume bound for these children; cleared once past the first (the others are
    /// greater than the bound's level, the iterator having started at it).
    after: Option<(&'f str, Option<&'f str>)>,
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
            id = match self.nodes[id as usize].children.get(level) {
                Some(child) => child,
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

    /// Calls `f(topic, value)` for every stored topic that `filter` matches, in
    /// [`topic_order`].
    pub fn for_each_match<'a>(&'a self, filter: &str, mut f: impl FnMut(&str, &'a V)) {
        let _ = self.for_each_match_after(filter, None, |topic, value| {
            f(topic, value);
            ControlFlow::Continue(())
        });
    }

    /// Like [`RetainedTree::for_each_match`], but only for topics after `after` in
    /// [`topic_order`] (all of them with `None`), and stopping as soon as `f` breaks; returns
    /// `Break` if it did. `after` need not be stored (it may have been removed meanwhile).
    pub fn for_each_match_after<'a>(
        &'a self,
        filter: &str,
        after: Option<&str>,
        mut f: impl FnMut(&str, &'a V) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if !filter.contains(['+', '#']) {
            // No wildcard: one lookup, and the filter is the topic name, so no buffer either.
            // It is the only match, so a walk resuming after anything has already seen it.
            return match (after, self.get(filter)) {
                (None, Some(value)) => f(filter, value),
                _ => ControlFlow::Continue(()),
            };
        }
        let bound = after.map_or(After::Nothing, After::Levels);
        self.walk(Rest::Levels(Some(filter)), bound, &mut f)
    }

    /// Removes every entry for which `keep` returns false (used for message expiry).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        // Decide during an immutable walk (which has the topic names at hand), then remove by
        // name: removal needs the names anyway to unlink pruned nodes from their parents.
        let mut doomed = Vec::new();
        let _ = self.walk(
            Rest::Subtree,
            After::Nothing,
            &mut |topic: &str, value: &V| {
                if !keep(topic, value) {
                    doomed.push(topic.to_owned());
                }
                ControlFlow::Continue(())
            },
        );
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
            id = self.nodes[id as usize].children.get(level)?;
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
        self.nodes[parent as usize].children.insert(level, id);
        id
    }

    /// Visits every stored topic that `start` matches and that comes after `after`, depth
    /// first in [`topic_order`], until `f` breaks.
    ///
    /// The topic buffer holds `/level` per level walked, so the topic name is the buffer minus
    /// its first byte; this keeps an empty first level (topic `/a`) unambiguous. A resume
    /// bound costs one extra comparison per level along its own path; every subtree before it
    /// is skipped without being entered.
    fn walk<'a, 'f>(
        &'a self,
        start: Rest<'f>,
        after: After<'f>,
        f: &mut impl FnMut(&str, &'a V) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut topic = String::new();
        let mut stack: Stack<Frame<'a, 'f>, INLINE_FRAMES> = Stack::new();
        self.visit(ROOT, start, after, &mut topic, &mut stack, f)?;
        while let Some(frame) = stack.last_mut() {
            let Some((name, child)) = frame.children.next() else {
                stack.pop();
                continue;
            };
            let bound = frame.after.take();
            if frame.skip_dollar && name.starts_with('$') {
                continue;
            }
            let Some(after) = After::of_child(bound, name) else {
                continue;
            };
            let rest = frame.rest;
            topic.truncate(frame.parent_len);
            topic.push('/');
            topic.push_str(name);
            self.visit(child, rest, after, &mut topic, &mut stack, f)?;
        }
        ControlFlow::Continue(())
    }

    /// Handles node `id` (whose topic is in `topic`) against `rest`: reports its value if it
    /// matches and is not before the resume bound, follows a literal level directly and
    /// pushes a frame for a wildcard level.
    fn visit<'a, 'f>(
        &'a self,
        mut id: NodeId,
        mut rest: Rest<'f>,
        mut after: After<'f>,
        topic: &mut String,
        stack: &mut Stack<Frame<'a, 'f>, INLINE_FRAMES>,
        f: &mut impl FnMut(&str, &'a V) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        loop {
            let node = &self.nodes[id as usize];
            let bound = after.for_children();
            let mut emit = || match (&node.value, after) {
                (Some(value), After::Nothing) => f(topic.get(1..).unwrap_or_default(), value),
                _ => ControlFlow::Continue(()),
            };
            let mut push = |rest, skip_dollar| {
                if !node.children.is_empty() {
                    stack.push(Frame {
                        children: node.children.iter_from(bound.map(|(level, _)| level)),
                        rest,
                        after: bound,
                        parent_len: topic.len(),
                        skip_dollar,
                    });
                }
            };
            let levels = match rest {
                Rest::Subtree => {
                    emit()?;
                    push(Rest::Subtree, false);
                    return ControlFlow::Continue(());
                }
                Rest::Levels(None) => return emit(),
                Rest::Levels(Some(levels)) => levels,
            };
            let (level, tail) = split_level(levels);
            match level {
                // `#` must be the last level (MQTT-4.7.1-1); elsewhere it matches nothing. It
                // matches the parent level too (4.7.1.2), hence the `emit`.
                "#" if tail.is_none() => {
                    emit()?;
                    push(Rest::Subtree, id == ROOT);
                    return ControlFlow::Continue(());
                }
                "#" => return ControlFlow::Continue(()),
                "+" => {
                    push(Rest::Levels(tail), id == ROOT);
                    return ControlFlow::Continue(());
                }
                _ => {
                    let Some(child) = node.children.get(level) else {
                        return ControlFlow::Continue(());
                    };
                    let Some(child_after) = After::of_child(bound, level) else {
                        return ControlFlow::Continue(());
                    };
                    topic.push('/');
                    topic.push_str(level);
                    id = child;
                    rest = Rest::Levels(tail);
                    after = child_after;
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

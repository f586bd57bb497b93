//! Other nodes' routes: which peers have subscribers for a topic, and which peers hold members
//! of each `$share` group. A publish is matched here once to find the nodes it is forwarded to.

use crate::hash::IntMap;
use crate::subscription_tree::SubscriptionTree;
use midge_codec::topic::split_shared;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A node of the cluster (its Raft node id).
pub type NodeId = u64;

/// One route of one peer in the tree: `group` is the shared group's `{group}/{filter}` name,
/// `None` for ordinary subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RemoteKey {
    node: NodeId,
    group: Option<Arc<str>>,
}

/// The nodes a publish goes to, from one match.
#[derive(Debug, Default)]
pub struct RemoteMatch {
    /// Nodes with an ordinary subscription matching the topic (each once).
    pub nodes: Vec<NodeId>,
    /// Shared groups matching the topic, each with the nodes holding members (each once, in
    /// ascending order, so a strategy picks the same way on every call).
    pub groups: Vec<(Arc<str>, Vec<NodeId>)>,
}

impl RemoteMatch {
    fn clear(&mut self) {
        self.nodes.clear();
        self.groups.clear();
    }
}

/// Every peer's routes.
#[derive(Debug, Default)]
pub struct RemoteRoutes {
    tree: SubscriptionTree<RemoteKey, ()>,
    by_node: IntMap<NodeId, HashSet<String>>,
    /// Round-robin position per shared group, for choosing among nodes.
    cursors: HashMap<Arc<str>, usize>,
    /// Peers whose link is down: their routes stay (a QoS 1/2 publish for them is refused
    /// until the cluster releases them), but a shared group picks them only when no holder
    /// of its members is reachable.
    unreachable: HashSet<NodeId>,
}

impl RemoteRoutes {
    /// Adds `route` (a filter, or `$share/{group}/{filter}`) of `node`.
    pub fn add(&mut self, node: NodeId, route: &str) {
        if !self
            .by_node
            .entry(node)
            .or_default()
            .insert(route.to_string())
        {
            return;
        }
        let (filter, key) = key_of(node, route);
        self.tree.insert(filter, key, ());
    }

    /// Removes `route` of `node`.
    pub fn remove(&mut self, node: NodeId, route: &str) {
        let Some(routes) = self.by_node.get_mut(&node) else {
            return;
        };
        if !routes.remove(route) {
            return;
        }
        let (filter, key) = key_of(node, route);
        self.tree.remove(filter, &key);
    }

    /// Replaces every route of `node` with `routes`.
    pub fn replace(&mut self, node: NodeId, routes: impl IntoIterator<Item = String>) {
        self.drop_node(node);
        for route in routes {
            self.add(node, &route);
        }
    }

    /// Notes whether `node`'s link is up.
    pub fn set_reachable(&mut self, node: NodeId, reachable: bool) {
        if reachable {
            self.unreachable.remove(&node);
        } else {
            self.unreachable.insert(node);
        }
    }

    /// Keeps only the reachable nodes of a group's holders, unless none is reachable.
    fn prefer_reachable(&self, nodes: &mut Vec<NodeId>) {
        if !self.unreachable.is_empty() && nodes.iter().any(|n| !self.unreachable.contains(n)) {
            nodes.retain(|n| !self.unreachable.contains(n));
        }
    }

    /// Forgets every route of `node` (it left, or the cluster released it).
    pub fn drop_node(&mut self, node: NodeId) {
        self.unreachable.remove(&node);
        let Some(routes) = self.by_node.remove(&node) else {
            return;
        };
        for route in routes {
            let (filter, key) = key_of(node, &route);
            self.tree.remove(filter, &key);
        }
    }

    /// True when no peer has any route.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The number of routes `node` has.
    pub fn count(&self, node: NodeId) -> usize {
        self.by_node.get(&node).map_or(0, HashSet::len)
    }

    /// Fills `m` with the nodes and shared groups matching `topic`.
    pub fn matches(&self, topic: &str, m: &mut RemoteMatch) {
        m.clear();
        self.tree.for_each_match(topic, |key, ()| match &key.group {
            None => {
                if !m.nodes.contains(&key.node) {
                    m.nodes.push(key.node);
                }
            }
            Some(group) => match m.groups.iter_mut().find(|(g, _)| g == group) {
                Some((_, nodes)) => {
                    if !nodes.contains(&key.node) {
                        nodes.push(key.node);
                    }
                }
                None => m.groups.push((group.clone(), vec![key.node])),
            },
        });
        for (_, nodes) in &mut m.groups {
            nodes.sort_unstable();
            self.prefer_reachable(nodes);
        }
    }

    /// A peer holding members of shared group `group` (`{group}/{filter}`), round-robin.
    pub fn holder_of(&mut self, group: &Arc<str>) -> Option<NodeId> {
        let route = format!("$share/{group}");
        let mut nodes: Vec<NodeId> = self
            .by_node
            .iter()
            .filter(|(_, routes)| routes.contains(&route))
            .map(|(n, _)| *n)
            .collect();
        nodes.sort_unstable();
        self.prefer_reachable(&mut nodes);
        self.pick(group, &nodes)
    }

    /// The round-robin position of `group`'s messages among its holders.
    pub(crate) fn cursor(&mut self, group: &Arc<str>) -> &mut usize {
        self.cursors.entry(group.clone()).or_default()
    }

    /// The next of `nodes` (holders of `group`) to get one of the group's messages, in
    /// round-robin order.
    pub fn pick(&mut self, group: &Arc<str>, nodes: &[NodeId]) -> Option<NodeId> {
        if nodes.is_empty() {
            return None;
        }
        let cursor = self.cursors.entry(group.clone()).or_default();
        let node = nodes[*cursor % nodes.len()];
        *cursor = cursor.wrapping_add(1);
        Some(node)
    }
}

/// The tree filter and key of `route`.
fn key_of(node: NodeId, route: &str) -> (&str, RemoteKey) {
    match split_shared(route) {
        Some((_, inner)) => (
            inner,
            RemoteKey {
                node,
                group: Some(Arc::from(&route["$share/".len()..])),
            },
        ),
        None => (route, RemoteKey { node, group: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(r: &RemoteRoutes, topic: &str) -> (Vec<NodeId>, Vec<(String, Vec<NodeId>)>) {
        let mut m = RemoteMatch::default();
        r.matches(topic, &mut m);
        m.nodes.sort_unstable();
        let mut groups: Vec<_> = m
            .groups
            .into_iter()
            .map(|(g, mut n)| {
                n.sort_unstable();
                (g.to_string(), n)
            })
            .collect();
        groups.sort();
        (m.nodes, groups)
    }

    #[test]
    fn a_node_matches_once_however_many_of_its_filters_match() {
        let mut r = RemoteRoutes::default();
        r.add(2, "a/+");
        r.add(2, "a/#");
        r.add(3, "a/b");
        r.add(4, "x");
        assert_eq!(matched(&r, "a/b"), (vec![2, 3], vec![]));
        r.remove(2, "a/+");
        assert_eq!(matched(&r, "a/b"), (vec![2, 3], vec![]));
        r.remove(2, "a/#");
        assert_eq!(matched(&r, "a/b"), (vec![3], vec![]));
    }

    #[test]
    fn shared_groups_list_their_nodes_and_rotate() {
        let mut r = RemoteRoutes::default();
        r.add(2, "$share/g/t/#");
        r.add(3, "$share/g/t/#");
        r.add(3, "$share/h/t/+");
        let (nodes, groups) = matched(&r, "t/1");
        assert!(nodes.is_empty());
        assert_eq!(
            groups,
            [
                ("g/t/#".to_string(), vec![2, 3]),
                ("h/t/+".to_string(), vec![3])
            ]
        );
        let g: Arc<str> = Arc::from("g/t/#");
        let picks: Vec<_> = (0..4).map(|_| r.pick(&g, &[2, 3]).unwrap()).collect();
        assert_eq!(picks, [2, 3, 2, 3]);
    }

    #[test]
    fn replace_and_drop_node_forget_old_routes() {
        let mut r = RemoteRoutes::default();
        r.add(2, "old");
        r.replace(2, ["new".to_string()]);
        assert_eq!(matched(&r, "old").0, Vec::<NodeId>::new());
        assert_eq!(matched(&r, "new").0, [2]);
        assert_eq!(r.count(2), 1);
        r.drop_node(2);
        assert!(r.is_empty());
        assert_eq!(r.count(2), 0);
    }
}

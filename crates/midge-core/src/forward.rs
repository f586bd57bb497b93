//! The broker's side of the cluster: route changes for peers, forwarding publishes to the peers
//! whose routes match, delivering what peers forward here, and client-id claims.
//!
//! Peers' routes and claims arrive as events; this node's route changes, forwards and claims
//! leave as actions. The core never talks to a peer itself, so all of this is tested here
//! without sockets; the server carries the actions over gRPC.

use crate::local_routes::RouteChange;
use crate::router::{as_published, Groups, RouteScratch};
use crate::session_store::SessionIdx;
use crate::shared_strategy::{Holder, SharedStrategy};
use crate::{Action, Broker, NodeId};
use midge_codec::Publish;
use std::sync::Arc;
use std::time::Instant;

impl RouteScratch {
    /// True if a peer matched by the current publish holds members of shared group `name`.
    pub(crate) fn remote_holds(&self, name: &Arc<str>) -> bool {
        self.remote.groups.iter().any(|(g, _)| g == name)
    }
}

impl Broker {
    /// Matches `topic` against the peers' routes (into the routing scratch) and says whether
    /// any peer must get the message. `$SYS` topics are each node's own and never leave it.
    pub(crate) fn forwards(&mut self, topic: &str) -> bool {
        if self.remote.is_empty() || midge_codec::topic::is_sys_topic(topic) {
            return false;
        }
        self.remote.matches(topic, &mut self.scratch.remote);
        let m = &self.scratch.remote;
        !m.nodes.is_empty() || !m.groups.is_empty()
    }

    /// Emits one `Action::Forward` per peer that must get `publish`: every peer with a
    /// matching ordinary route, plus, for each matching shared group not `served` here, one
    /// of the peers holding members (round-robin). Returns the number of forwards. A QoS 1 or
    /// 2 forward holds the publisher's acknowledgement until the peer took the message.
    pub(crate) fn emit_forwards(
        &mut self,
        publish: &Publish,
        served: &[Arc<str>],
        directed: &[(Arc<str>, NodeId)],
        share_key: u64,
        out: &mut Vec<Action>,
    ) -> usize {
        let mut remote = std::mem::take(&mut self.scratch.remote);
        let mut targets: Vec<(NodeId, Vec<Arc<str>>)> =
            remote.nodes.iter().map(|&n| (n, Vec::new())).collect();
        for (group, nodes) in remote.groups.drain(..) {
            if served.contains(&group) {
                continue;
            }
            let chosen = directed.iter().find(|(g, _)| *g == group).map(|(_, n)| *n);
            let node = match (chosen, self.config.shared_strategy) {
                (Some(node), _) => Some(node),
                (None, SharedStrategy::LocalFirst) => self.remote.pick(&group, &nodes),
                // No member here: the strategy picks among the peers alone.
                (None, strategy) => {
                    let cursor = self.remote.cursor(&group);
                    match strategy.choose(cursor, share_key, false, &nodes) {
                        Some(Holder::Peer(node)) => Some(node),
                        _ => None,
                    }
                }
            };
            let Some(node) = node else {
                continue;
            };
            match targets.iter_mut().find(|(n, _)| *n == node) {
                Some((_, groups)) => groups.push(group),
                None => targets.push((node, vec![group])),
            }
        }
        remote.nodes.clear();
        self.scratch.remote = remote;
        let forwards = targets.len();
        for (node, groups) in targets {
            self.counters.forwarded += 1;
            out.push(Action::Forward {
                node,
                publish: publish.clone(),
                groups,
                share_key,
            });
        }
        forwards
    }

    /// A publish a peer forwarded: delivered to the local sessions it matches and to the
    /// shared groups in `groups`; not retained (Raft replicates retained messages) and not
    /// forwarded again.
    pub(crate) fn on_forwarded(
        &mut self,
        now: Instant,
        mut publish: Publish,
        groups: &[Arc<str>],
        share_key: u64,
        out: &mut Vec<Action>,
    ) {
        self.counters.forwarded_in += 1;
        let expires_at = as_published(now, &mut publish);
        let served = Groups::Only(groups, share_key);
        self.route(now, None, &publish, expires_at, served, out);
    }

    /// A peer's route changes.
    pub(crate) fn on_peer_routes(
        &mut self,
        node: NodeId,
        full: bool,
        add: Vec<String>,
        remove: Vec<String>,
    ) {
        if full {
            self.remote.replace(node, add);
        } else {
            for route in &add {
                self.remote.add(node, route);
            }
        }
        for route in &remove {
            self.remote.remove(node, route);
        }
    }

    /// Emits `Action::Claim` for the session in slot `idx`, whose client just connected
    /// (with `BrokerConfig::cluster`).
    pub(crate) fn claim(&mut self, idx: SessionIdx, clean_start: bool, out: &mut Vec<Action>) {
        if !self.config.cluster {
            return;
        }
        let Some(session) = self.sessions.get(idx) else {
            return;
        };
        out.push(Action::Claim {
            client_id: session.client_id.clone(),
            clean_start,
            persistent: session.is_persistent(),
        });
    }

    /// Emits the route changes not yet emitted (none unless `BrokerConfig::cluster`).
    pub(crate) fn flush_routes(&mut self, out: &mut Vec<Action>) {
        if !self.config.cluster {
            self.routes.take_pending().for_each(drop);
            return;
        }
        for change in self.routes.take_pending() {
            out.push(match change {
                RouteChange::Add(route) => Action::RouteAdd { route },
                RouteChange::Remove(route) => Action::RouteRemove { route },
            });
        }
    }

    /// Every route of this node, for a full exchange with peers; changes not yet emitted are
    /// included and no longer emitted (called once after `restore`, before any event).
    pub fn take_routes(&mut self) -> Vec<String> {
        self.routes.take_pending().for_each(drop);
        self.routes.all()
    }

    /// The number of routes peer `node` announced.
    pub fn peer_route_count(&self, node: NodeId) -> usize {
        self.remote.count(node)
    }
}

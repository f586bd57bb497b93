//! A node's broker links to every peer: the server hands route changes, claims and forwards
//! to [`Links`], which queues them on the right peer's link (`peer_link`), and the membership
//! watch keeps one link per member of the Raft group.

use crate::link_handler::LinkHandler;
use crate::pb;
use crate::pb_impl::forwarded_to_pb;
use crate::peer_channels::PeerChannels;
use crate::peer_link::{Item, LinkCounters, LinkShared, PeerLink};
use crate::ticket::{ticket, Ticket};
use midge_codec::Publish;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Counters of a node's links, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Peers with a link.
    pub peers: u64,
    /// Peers whose last exchange succeeded.
    pub peers_up: u64,
    /// Publishes peers acknowledged.
    pub forwarded: u64,
    /// Publishes dropped because their peer was unreachable or too far behind.
    pub dropped: u64,
    /// Exchanges that failed.
    pub failures: u64,
}

/// The broker links of one node; clone it freely.
#[derive(Clone)]
pub struct Links {
    shared: LinkShared,
    peers: Arc<Mutex<HashMap<u64, PeerLink>>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("node_id", &self.shared.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Links {
    /// The links of node `node_id`, on `channels`, with no peers yet.
    pub(crate) fn new(node_id: u64, channels: PeerChannels) -> Links {
        Links {
            shared: LinkShared {
                node_id,
                incarnation: crate::node::origin_id(),
                channels,
                routes: Arc::default(),
                handler: Arc::default(),
                counters: Arc::new(LinkCounters::default()),
                received: Arc::default(),
            },
            peers: Arc::default(),
        }
    }

    /// Installs the broker that handles what peers send (once; later calls are ignored).
    /// Until then, peers' exchanges are refused as unavailable and they retry.
    pub fn set_handler(&self, handler: Arc<dyn LinkHandler>) {
        let _ = self.shared.handler.set(handler);
    }

    pub(crate) fn handler(&self) -> Option<&Arc<dyn LinkHandler>> {
        self.shared.handler.get()
    }

    /// Replaces this node's whole route set (after the broker restored its sessions).
    pub fn set_routes(&self, routes: Vec<String>) {
        let mut set = lock(&self.shared.routes);
        *set = routes.into_iter().collect();
        for link in lock(&self.peers).values() {
            link.send(Item::Resync);
        }
    }

    /// A route added on this node; the tickets complete once every reachable peer has it.
    pub fn route_add(&self, route: String) -> Vec<Ticket> {
        self.route_change(route, true)
    }

    /// A route removed on this node.
    pub fn route_remove(&self, route: String) {
        self.route_change(route, false);
    }

    fn route_change(&self, route: String, add: bool) -> Vec<Ticket> {
        // The set and the queues change under one lock, so a full exchange taken from the set
        // and the changes queued after it agree.
        let mut set = lock(&self.shared.routes);
        if add {
            set.insert(route.clone());
        } else {
            set.remove(&route);
        }
        let mut tickets = Vec::new();
        for link in lock(&self.peers).values() {
            let done = (add && link.is_up()).then(|| {
                let (t, c) = ticket();
                tickets.push(t);
                c
            });
            link.send(Item::Route {
                route: route.clone(),
                add,
                done,
            });
        }
        tickets
    }

    /// A client connected here: every reachable peer ends its connection with that id; the
    /// tickets complete once they did.
    pub fn claim(&self, client_id: &str) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        for link in lock(&self.peers).values() {
            if !link.is_up() {
                continue;
            }
            let (t, c) = ticket();
            if link.send(Item::Claim {
                client_id: client_id.to_string(),
                done: c,
            }) {
                tickets.push(t);
            }
        }
        tickets
    }

    /// Forwards `publish` to peer `node` for its sessions and its members of `groups`. With
    /// `ack`, the ticket completes once the peer took it (or gave up). Dropped, and counted,
    /// when the peer is unknown, unreachable or too far behind.
    pub fn forward(
        &self,
        node: u64,
        publish: &Publish,
        groups: &[Arc<str>],
        ack: bool,
    ) -> Option<Ticket> {
        let peers = lock(&self.peers);
        let link = match peers.get(&node) {
            Some(link) if link.is_up() && !link.is_full() => link,
            _ => {
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let (t, done) = if ack {
            let (t, c) = ticket();
            (Some(t), Some(c))
        } else {
            (None, None)
        };
        let publish = forwarded_to_pb(publish, groups);
        link.send(Item::Publish { publish, done }).then_some(())?;
        t
    }

    /// Counters for metrics.
    pub fn stats(&self) -> LinkStats {
        let peers = lock(&self.peers);
        let c = &self.shared.counters;
        LinkStats {
            peers: peers.len() as u64,
            peers_up: peers.values().filter(|l| l.is_up()).count() as u64,
            forwarded: c.forwarded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }

    /// Keeps one link per member other than this node (`node id -> cluster address`):
    /// starts links to new members, restarts those whose address changed, and stops those
    /// that left (the broker forgets their routes).
    pub(crate) fn set_peers(&self, members: BTreeMap<u64, String>) {
        let mut gone = Vec::new();
        {
            let mut peers = lock(&self.peers);
            peers.retain(|id, link| {
                let keep = members.get(id).is_some_and(|addr| *addr == link.addr);
                if !keep && !members.contains_key(id) {
                    gone.push(*id);
                }
                keep
            });
            for (&id, addr) in &members {
                if id != self.shared.node_id && !peers.contains_key(&id) {
                    tracing::info!(peer = id, %addr, "starting the broker link");
                    peers.insert(id, PeerLink::start(self.shared.clone(), id, addr.clone()));
                }
            }
        }
        for id in gone {
            tracing::info!(peer = id, "peer left the cluster; forgetting its routes");
            lock(&self.shared.received).remove(&id);
            if let Some(handler) = self.handler() {
                handler.peer_gone(id);
            }
        }
    }

    /// Checks a batch's route sequence from peer `from`: returns whether to apply its routes,
    /// and whether the peer must resend them whole.
    pub(crate) fn accept_routes(&self, rpc: &pb::ExchangeRpc) -> (bool, bool) {
        let mut received = lock(&self.shared.received);
        let has_changes =
            rpc.routes_full || !rpc.routes_add.is_empty() || !rpc.routes_remove.is_empty();
        if rpc.routes_full {
            received.insert(rpc.from_node, (rpc.incarnation, rpc.routes_seq));
            return (true, false);
        }
        match received.get_mut(&rpc.from_node) {
            Some((inc, seq)) if *inc == rpc.incarnation => {
                if !has_changes {
                    (false, false)
                } else if rpc.routes_seq == *seq + 1 {
                    *seq += 1;
                    (true, false)
                } else {
                    (false, true)
                }
            }
            _ => (false, true),
        }
    }
}

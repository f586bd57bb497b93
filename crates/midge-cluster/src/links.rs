//! A node's broker links to every peer: the server hands route changes, claims and forwards
//! to [`Links`], which queues them on the right peer's link (`peer_link`), and the membership
//! watch keeps one link per member of the Raft group.

use crate::link_handler::LinkHandler;
use crate::link_queue::LinkWake;
use crate::pb;
use crate::pb_impl::op_from_command;
use crate::peer_channels::PeerChannels;
use crate::peer_link::{lock, ForwardObserver, Item, LinkCounters, LinkShared, PeerLink};
use crate::restore::{restore_state, Sessions};
use crate::ticket::{delivery_ticket, ticket, Ticket};
use crate::WallClock;
use midge_codec::Publish;
use midge_core::{DurableState, RestoredSession};
use midge_store::StateStore;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::oneshot;

/// How long adopting a stored session waits for this node to catch up with the Raft log.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// Batches sent to peers and answered.
    pub batches: u64,
}

/// The session a peer handed over, rebuilt from its ops (`None` if one does not decode).
fn session_from_commands(commands: Vec<pb::Command>, now: &WallClock) -> Option<RestoredSession> {
    let mut state = DurableState::new();
    for command in commands {
        state.apply(now.instant, op_from_command(command, now).ok()?);
    }
    state.into_restored().sessions.into_iter().next()
}

/// The broker links of one node; clone it freely.
#[derive(Clone)]
pub struct Links {
    shared: LinkShared,
    /// This node's state store, for sessions whose owner cannot hand them over (weak: the
    /// node's shutdown waits for every strong handle to go).
    store: Weak<dyn StateStore>,
    /// This node's Raft progress, to read the store only once it caught up.
    metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, crate::NodeInfo>>,
    peers: Arc<Mutex<HashMap<u64, PeerLink>>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("node_id", &self.shared.node_id)
            .finish_non_exhaustive()
    }
}

impl Links {
    /// The links of node `node_id`, on `channels`, with no peers yet; each sends forwarded
    /// publishes at most once per `forward_batch_interval` unless a batch is full.
    pub(crate) fn new(
        node_id: u64,
        forward_batch_interval: std::time::Duration,
        channels: PeerChannels,
        store: &Arc<dyn StateStore>,
        metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, crate::NodeInfo>>,
    ) -> Links {
        Links {
            store: Arc::downgrade(store),
            metrics,
            shared: LinkShared {
                node_id,
                incarnation: crate::node::origin_id(),
                channels,
                routes: Arc::default(),
                handler: Arc::default(),
                counters: Arc::new(LinkCounters::default()),
                received: Arc::default(),
                lost: Arc::default(),
                lost_changed: Arc::default(),
                forward_observer: Arc::default(),
                forward_batch_interval,
            },
            peers: Arc::default(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.shared.node_id
    }

    /// Installs the broker that handles what peers send (once; later calls are ignored).
    /// Until then, peers' exchanges are refused as unavailable and they retry.
    pub fn set_handler(&self, handler: Arc<dyn LinkHandler>) {
        let _ = self.shared.handler.set(handler);
    }

    /// Installs what is told the round trip of every exchange that carried forwarded
    /// publishes (once; later calls are ignored).
    pub fn set_forward_observer(&self, observer: ForwardObserver) {
        let _ = self.shared.forward_observer.set(observer);
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

    /// A client connected here (asking for a `clean_start`; its session here `persistent`
    /// or not): every reachable peer ends its connection with that id and lets go of its
    /// session; the tickets complete once they did.
    pub fn claim(&self, client_id: &str, clean_start: bool, persistent: bool) -> Vec<Ticket> {
        let claim = pb::Claim {
            client_id: client_id.to_string(),
            clean_start,
            persistent,
            hand_off: false,
        };
        let mut tickets = Vec::new();
        for link in lock(&self.peers).values() {
            if !link.is_up() {
                continue;
            }
            let (t, c) = ticket();
            let item = Item::Claim {
                claim: claim.clone(),
                done: c,
                reply: None,
            };
            link.send(item);
            tickets.push(t);
        }
        tickets
    }

    /// The persistent session of `client_id`, for a client resuming it here: handed over by
    /// the reachable peer that has it (its connection there ends with 0x8E), else read from
    /// this node's store (its owner is gone or unreachable: what was committed for it), else
    /// `None`. Deadlines in it are relative to `now`.
    pub async fn take_session(&self, client_id: &str, now: WallClock) -> Option<RestoredSession> {
        let mut waiting = Vec::new();
        for link in lock(&self.peers).values() {
            if !link.is_up() {
                continue;
            }
            let (reply, rx) = oneshot::channel();
            let (_, done) = ticket();
            let item = Item::Claim {
                claim: pb::Claim {
                    client_id: client_id.to_string(),
                    clean_start: false,
                    persistent: true,
                    hand_off: true,
                },
                done,
                reply: Some(reply),
            };
            link.send(item);
            waiting.push(rx);
        }
        for rx in waiting {
            // A peer without the session, or unreachable, drops its sender.
            if let Ok(commands) = rx.await {
                match session_from_commands(commands, &now) {
                    Some(session) => return Some(session),
                    None => tracing::warn!(client_id, "a peer handed over an unreadable session"),
                }
            }
        }
        // The owner is gone: what it committed for the session may not be applied here yet.
        self.catch_up("a stored session").await;
        let store = self.store.upgrade()?;
        let id = client_id.to_string();
        let node = self.shared.node_id;
        let read = tokio::task::spawn_blocking(move || {
            let which = Sessions::ClientOwnedElsewhere {
                client_id: &id,
                node,
            };
            restore_state(&*store, &now, which)
        })
        .await;
        match read {
            Ok(Ok(state)) => state.sessions.into_iter().next(),
            Ok(Err(e)) => {
                tracing::error!(client_id, error = %e, "cannot read the stored session");
                None
            }
            Err(e) => {
                tracing::error!(client_id, error = %e, "reading the stored session failed");
                None
            }
        }
    }

    /// Forwards `publish` to peer `node` for its sessions and its members of `groups` (picked
    /// by `share_key` under the client-hash strategy). With
    /// `ack` (QoS 1/2), the ticket completes once the peer took it, and fails if it did not:
    /// the peer is unknown, unreachable or too far behind (the publisher is then not
    /// acknowledged, and retries). Without `ack` such a publish is dropped; both are counted.
    ///
    /// The peer's link is not woken: its wake-up, if it needs one, is added to `wakes`, for
    /// the caller to give once it has forwarded the rest of a burst (so the burst goes out as
    /// one batch).
    pub fn forward(
        &self,
        node: u64,
        publish: Publish,
        groups: Vec<Arc<str>>,
        share_key: u64,
        ack: bool,
        wakes: &mut Vec<LinkWake>,
    ) -> Option<Ticket> {
        let peers = lock(&self.peers);
        let link = match peers.get(&node) {
            Some(link) if link.is_up() && !link.is_full() => link,
            _ => {
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                return ack.then(crate::ticket::failed);
            }
        };
        let (t, done) = if ack {
            let (t, c) = delivery_ticket();
            (Some(t), Some(c))
        } else {
            (None, None)
        };
        wakes.extend(link.push(Item::Publish {
            publish,
            groups,
            share_key,
            done,
        }));
        t
    }

    /// True while this node leads the Raft group.
    pub fn is_leader(&self) -> bool {
        self.metrics.borrow().current_leader == Some(self.shared.node_id)
    }

    /// Peers lost and not yet released, each with its start (incarnation) that was lost (0:
    /// unknown). A peer is lost once unreachable past the grace period or removed from the
    /// group. Its routes stay known (QoS 1/2 publishes for it are refused, not acknowledged)
    /// until the Raft leader adopted its sessions, announced their routes and committed its
    /// release ([`Links::released`]).
    pub fn lost(&self) -> Vec<(u64, u64)> {
        lock(&self.shared.lost)
            .iter()
            .map(|(&node, &inc)| (node, inc))
            .collect()
    }

    /// True while peer `node` is lost and not released.
    pub fn is_lost(&self, node: u64) -> bool {
        lock(&self.shared.lost).contains_key(&node)
    }

    /// Returns when a peer may have been lost since the last call.
    pub async fn lost_changed(&self) {
        self.shared.lost_changed.notified().await;
    }

    /// Tickets that complete once every member that is not lost exchanged everything queued
    /// for it before this call (route changes included); a ticket fails if its peer's
    /// exchange failed or the peer is unreachable.
    pub fn barrier(&self) -> Vec<Ticket> {
        let lost = lock(&self.shared.lost).clone();
        let mut tickets = Vec::new();
        for (node, link) in lock(&self.peers).iter() {
            if lost.contains_key(node) {
                continue;
            }
            let (t, c) = delivery_ticket();
            link.send(Item::Barrier(c));
            tickets.push(t);
        }
        tickets
    }

    /// True if lost node `node`, lost as start `incarnation`, has since come back as another
    /// start (it restarted: its sessions are its own again, nothing to release).
    pub fn came_back(&self, node: u64, incarnation: u64) -> bool {
        incarnation != 0
            && self
                .shared
                .incarnation_of(node)
                .is_some_and(|inc| inc != incarnation)
    }

    /// The cluster committed the release of lost node `node` (its start `incarnation`):
    /// returns whether the broker forgets its routes now, which it does unless that node
    /// already came back as a newer start. A node that came back as the same start (a healed
    /// partition) is asked to send its routes whole again with its next batch.
    pub fn released(&self, node: u64, incarnation: u64) -> bool {
        if node == self.shared.node_id {
            return false;
        }
        let back = self.came_back(node, incarnation);
        lock(&self.shared.lost).remove(&node);
        if back {
            return false;
        }
        lock(&self.shared.received).remove(&node);
        true
    }

    /// The persistent sessions node `gone` owned, for this node to adopt (it leads the Raft
    /// group: one adopter, so no two nodes take the same sessions). Read once this node has
    /// applied its log, with deadlines relative to `now`. An error when it could not catch
    /// up or read the store: nothing may be released then.
    pub async fn orphans(&self, gone: u64, now: WallClock) -> Result<Vec<RestoredSession>, String> {
        if !self.catch_up("orphaned sessions").await {
            return Err("this node has not applied its Raft log".to_string());
        }
        let store = self
            .store
            .upgrade()
            .ok_or_else(|| "the store is closed".to_string())?;
        let read = tokio::task::spawn_blocking(move || {
            restore_state(&*store, &now, Sessions::OwnedOnlyBy(gone))
        })
        .await;
        match read {
            Ok(Ok(state)) => Ok(state.sessions),
            Ok(Err(e)) => Err(format!("cannot read the sessions of node {gone}: {e}")),
            Err(e) => Err(format!("reading the sessions of node {gone} failed: {e}")),
        }
    }

    /// Waits, boundedly, until a leader is known and everything in this node's log is
    /// applied (a follower learns of commits a heartbeat later, and only from a leader);
    /// false if it did not.
    async fn catch_up(&self, what: &str) -> bool {
        let mut metrics = self.metrics.clone();
        let caught_up = |m: &openraft::RaftMetrics<u64, crate::NodeInfo>| {
            m.current_leader.is_some() && m.last_applied.map(|l| l.index) >= m.last_log_index
        };
        let done = tokio::time::timeout(CATCH_UP, metrics.wait_for(caught_up))
            .await
            .is_ok_and(|r| r.is_ok());
        if !done {
            tracing::warn!("reading {what} before this node caught up with the Raft log");
        }
        done
    }

    /// Counters for metrics.
    pub fn stats(&self) -> LinkStats {
        let peers = lock(&self.peers);
        let c = &self.shared.counters;
        LinkStats {
            peers: peers.len() as u64,
            peers_up: peers.values().filter(|l| l.is_confirmed_up()).count() as u64,
            forwarded: c.forwarded.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
        }
    }

    /// Keeps one link per member other than this node (`node id -> cluster address`):
    /// starts links to new members, restarts those whose address changed, and stops those
    /// that left (they are lost: see [`Links::lost`]).
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
            tracing::info!(peer = id, "peer left the cluster; it is lost");
            let incarnation = self.shared.incarnation_of(id);
            self.shared.mark_lost(id, incarnation);
        }
    }

    /// Stops every link (this node is stopping; no peer is lost).
    pub(crate) fn close(&self) {
        lock(&self.peers).clear();
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

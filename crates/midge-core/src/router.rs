//! Routing a published message to every matching session (MQTT 3.3.4, 4.7).

use crate::message::Message;
use crate::remote_routes::RemoteMatch;
use crate::session::Session;
use crate::session_store::SessionIdx;
use crate::shared::GroupId;
use crate::shared_strategy::{share_key, Holder, SharedStrategy};
use crate::subscription_tree::SubscriptionTree;
use crate::{Action, Broker, DurableOp};
use midge_codec::{Publish, QoS};
use std::sync::Arc;
use std::time::Instant;

/// Who a subscription-tree entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKey {
    /// A session's own (non-shared) subscription.
    Direct(SessionIdx),
    /// A shared subscription group; its members live in [`crate::shared::SharedGroups`].
    Shared(GroupId),
}

/// What routing needs to know about one subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubEntry {
    /// Granted QoS.
    pub qos: QoS,
    /// No Local (v5): don't send the session its own publications.
    pub no_local: bool,
    /// Retain As Published (v5).
    pub retain_as_published: bool,
    /// Subscription Identifier (v5).
    pub identifier: Option<u32>,
}

/// The subscription trie used by the broker.
pub type SubTree = SubscriptionTree<SubKey, SubEntry>;

/// One session's merged view of all its subscriptions matching a message.
#[derive(Debug)]
struct Merged {
    session: SessionIdx,
    qos: QoS,
    retain_as_published: bool,
    identifiers: Vec<u32>,
}

/// Buffers reused by every routing call, so routing allocates nothing but the copies it sends.
#[derive(Debug, Default)]
pub struct RouteScratch {
    /// Per session slot: (routing round, index into `merged`) of the last round that saw it.
    marks: Vec<(u64, u32)>,
    round: u64,
    merged: Vec<Merged>,
    groups: Vec<GroupId>,
    /// Peers matching the message being routed.
    pub(crate) remote: RemoteMatch,
    /// Shared groups served by a member on this node for the message being routed.
    pub(crate) served: Vec<Arc<str>>,
    /// Shared groups the strategy sent to a chosen peer, for the message being routed.
    pub(crate) directed: Vec<(Arc<str>, crate::NodeId)>,
}

/// Which shared groups a routing call serves.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Groups<'a> {
    /// A publish made on this node: every matching group gets one copy cluster-wide, from the
    /// node and member `BrokerConfig::shared_strategy` picks (by default a connected local
    /// member first, else a peer holding members, else a local member that is offline); the
    /// rest of the cluster gets the message forwarded.
    Cluster,
    /// A publish forwarded from a peer: only these groups (the peer chose this node for
    /// them), with the publisher's share key, and nothing is forwarded on.
    Only(&'a [Arc<str>], u64),
}

/// The copy of `publish` a subscriber gets: QoS min(publish, granted), RETAIN kept only with
/// Retain As Published (MQTT-3.3.1-12, -13), its matching Subscription Identifiers
/// (MQTT-3.3.4-3, -4), no packet id, DUP 0; other properties pass through unchanged.
fn tailor(
    publish: &Publish,
    granted: QoS,
    retain_as_published: bool,
    identifiers: Vec<u32>,
    expires_at: Option<Instant>,
) -> Message {
    let mut p = publish.clone();
    p.qos = publish.qos.min(granted);
    p.retain = publish.retain && retain_as_published;
    p.dup = false;
    p.packet_id = None;
    // Written only when they change, so a copy with no properties allocates none.
    if p.properties.topic_alias.is_some() {
        p.properties.make_mut().topic_alias = None;
    }
    set_identifiers(&mut p, identifiers);
    Message {
        publish: p,
        expires_at,
    }
}

/// Sets the Subscription Identifiers of a copy about to be delivered; a copy that had none
/// and gets none is left alone, so it allocates no property set.
pub(crate) fn set_identifiers(publish: &mut Publish, identifiers: Vec<u32>) {
    if !(identifiers.is_empty() && publish.properties.subscription_identifiers.is_empty()) {
        publish.properties.make_mut().subscription_identifiers = identifiers;
    }
}

/// Strips what belonged to the sender's connection (DUP, packet id, topic alias, subscription
/// identifiers) from a publish about to be routed; returns when it expires.
pub(crate) fn as_published(now: Instant, publish: &mut Publish) -> Option<Instant> {
    publish.dup = false;
    publish.packet_id = None;
    if let Some(props) = publish.properties.get_mut() {
        props.topic_alias = None;
        props.subscription_identifiers.clear();
    }
    crate::message::expiry_instant(now, publish.properties.message_expiry_interval)
}

impl Broker {
    /// Sends `publish` (topic resolved, no alias) to every session with a matching
    /// subscription: one copy per session with the highest granted QoS among its matching
    /// subscriptions (MQTT-3.3.4-2), skipping `publisher`'s No Local subscriptions
    /// (MQTT-3.8.3-3), plus one copy per matching shared group chosen as `groups` says; with
    /// `Groups::Cluster`, also one `Action::Forward` per peer with matching routes (overlapping
    /// subscriptions on a peer still make one copy per session there). Returns the number of
    /// copies, counting each forward as one.
    pub(crate) fn route(
        &mut self,
        now: Instant,
        publisher: Option<SessionIdx>,
        publish: &Publish,
        expires_at: Option<Instant>,
        groups_served: Groups<'_>,
        out: &mut Vec<Action>,
    ) -> usize {
        let cluster = matches!(groups_served, Groups::Cluster) && self.forwards(&publish.topic);
        let scratch = &mut self.scratch;
        scratch.round += 1;
        let round = scratch.round;
        let mut merged = std::mem::take(&mut scratch.merged);
        let mut groups = std::mem::take(&mut scratch.groups);
        let marks = &mut scratch.marks;
        merged.clear();
        groups.clear();
        self.subs
            .for_each_match(&publish.topic, |key, entry| match *key {
                SubKey::Direct(session) => {
                    if entry.no_local && publisher == Some(session) {
                        return;
                    }
                    let slot = session as usize;
                    if marks.len() <= slot {
                        marks.resize(slot + 1, (0, 0));
                    }
                    let (seen, index) = marks[slot];
                    if seen == round {
                        let m = &mut merged[index as usize];
                        m.qos = m.qos.max(entry.qos);
                        m.retain_as_published |= entry.retain_as_published;
                        m.identifiers.extend(entry.identifier);
                    } else {
                        marks[slot] = (round, merged.len() as u32);
                        merged.push(Merged {
                            session,
                            qos: entry.qos,
                            retain_as_published: entry.retain_as_published,
                            identifiers: entry.identifier.into_iter().collect(),
                        });
                    }
                }
                SubKey::Shared(gid) => groups.push(gid),
            });
        let mut copies = merged.len();
        for m in merged.drain(..) {
            let message = tailor(
                publish,
                m.qos,
                m.retain_as_published,
                m.identifiers,
                expires_at,
            );
            self.deliver_to(now, m.session, message, out);
        }
        let strategy = self.config.shared_strategy;
        let key = match (groups_served, strategy) {
            (Groups::Only(_, key), _) => key,
            (Groups::Cluster, SharedStrategy::ClientHash) if !groups.is_empty() || cluster => {
                publisher
                    .and_then(|s| self.sessions.get(s))
                    .map_or_else(|| share_key(&publish.topic), |s| share_key(&s.client_id))
            }
            _ => 0,
        };
        let mut served = std::mem::take(&mut self.scratch.served);
        let mut directed = std::mem::take(&mut self.scratch.directed);
        served.clear();
        directed.clear();
        for gid in groups.drain(..) {
            let Some(name) = self.shared.name(gid).cloned() else {
                continue;
            };
            if let Groups::Only(names, _) = groups_served {
                if !names.contains(&name) {
                    continue;
                }
            }
            let sessions = &self.sessions;
            let connected = |s: SessionIdx| sessions.get(s).is_some_and(Session::is_connected);
            if cluster && strategy != SharedStrategy::LocalFirst {
                let holders = self.scratch.remote.groups.iter().find(|(g, _)| *g == name);
                if let Some((_, peers)) = holders {
                    let local = self.shared.has_connected(gid, connected);
                    let cursor = self.remote.cursor(&name);
                    if let Some(Holder::Peer(node)) = strategy.choose(cursor, key, local, peers) {
                        directed.push((name, node));
                        continue;
                    }
                }
            }
            let picked = match strategy {
                SharedStrategy::ClientHash => self.shared.pick_keyed(gid, key, connected),
                SharedStrategy::LocalFirst | SharedStrategy::RoundRobin => {
                    self.shared.pick(gid, connected)
                }
            };
            let Some((session, entry)) = picked else {
                continue;
            };
            let connected = self
                .sessions
                .get(session)
                .is_some_and(Session::is_connected);
            if cluster && !connected && self.scratch.remote_holds(&name) {
                // Every local member is offline and a peer has members: theirs first.
                continue;
            }
            if cluster {
                served.push(name.clone());
            }
            let message = tailor(
                publish,
                entry.qos,
                entry.retain_as_published,
                entry.identifier.into_iter().collect(),
                expires_at,
            );
            self.deliver_shared(now, session, name, message, out);
            copies += 1;
        }
        self.scratch.merged = merged;
        self.scratch.groups = groups;
        if cluster {
            copies += self.emit_forwards(publish, &served, &directed, key, out);
        }
        self.scratch.served = served;
        self.scratch.directed = directed;
        copies
    }

    /// Publishes `publish` as coming from `publisher` (a client, its will, or the broker):
    /// stores or clears the retained copy when RETAIN is set (MQTT-3.3.1-5..-7), persisting
    /// the change unless the topic is a `$` topic (`$SYS` values are regenerated, not stored),
    /// then routes it. Returns the number of copies routed.
    pub(crate) fn publish_message(
        &mut self,
        now: Instant,
        publisher: Option<SessionIdx>,
        mut publish: Publish,
        out: &mut Vec<Action>,
    ) -> usize {
        let expires_at = as_published(now, &mut publish);
        if publish.retain && self.config.retain_available {
            let message = Message {
                publish: publish.clone(),
                expires_at,
            };
            // A client's publish over the limits was refused before it got here; a will over
            // them is still published, just not stored.
            if self.refuse_retained(&publish) {
                return self.route(now, publisher, &publish, expires_at, Groups::Cluster, out);
            }
            let persist = (self.config.durable
                && !midge_codec::topic::is_sys_topic(&publish.topic))
            .then(|| {
                let topic = publish.topic.clone();
                if publish.payload.is_empty() {
                    DurableOp::RetainedClear { topic }
                } else {
                    DurableOp::RetainedSet {
                        topic,
                        message: message.clone(),
                    }
                }
            });
            if self.retained.set(message) {
                if let Some(op) = persist {
                    self.persist(op, out);
                }
            }
        }
        self.route(now, publisher, &publish, expires_at, Groups::Cluster, out)
    }
}

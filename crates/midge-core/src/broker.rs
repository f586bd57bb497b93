//! The broker state machine: owns every piece of state and dispatches events.

use crate::access::AccessCounters;
use crate::connection::Connection;
use crate::delivery::{Counters, Outbox};
use crate::dropped::DropCounts;
use crate::event::ConnId;
use crate::guards::GuardCounters;
use crate::hash::IntMap;
use crate::local_routes::LocalRoutes;
use crate::message::Message;
use crate::remote_routes::RemoteRoutes;
use crate::retained::{RetainedLimit, RetainedStore};
use crate::router::{RouteScratch, SubTree};
use crate::session_store::{SessionIdx, SessionStore};
use crate::shared::SharedGroups;
use crate::sys::SysTopics;
use crate::timers::Deadlines;
use crate::{Action, Authorizer, BrokerConfig, Event};
use midge_codec::{Disconnect, Packet, Publish, ReasonCode};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

/// Counters the server exposes as metrics and `$SYS` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connected clients.
    pub clients_connected: u64,
    /// Sessions known (connected plus persistent offline).
    pub sessions: u64,
    /// Subscriptions across all sessions.
    pub subscriptions: u64,
    /// Retained messages stored.
    pub retained_messages: u64,
    /// Payload bytes of the retained messages stored.
    pub retained_bytes: u64,
    /// Retained publishes refused because `max_retained_messages` were stored.
    pub retained_refused_count: u64,
    /// Retained publishes refused because their payload was over `max_retained_payload`.
    pub retained_refused_payload: u64,
    /// Retained publishes refused because the store would hold over `max_retained_bytes`.
    pub retained_refused_bytes: u64,
    /// PUBLISH packets received from clients.
    pub messages_received: u64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: u64,
    /// Messages dropped (queue full, expired, too large for the client).
    pub messages_dropped: u64,
    /// The same, by reason.
    pub dropped_by: DropCounts,
    /// PUBLISH packets received, by QoS (index 0, 1, 2).
    pub messages_received_qos: [u64; 3],
    /// Payload bytes of the PUBLISH packets received.
    pub bytes_received: u64,
    /// PUBLISH packets sent, by QoS (index 0, 1, 2).
    pub messages_sent_qos: [u64; 3],
    /// Payload bytes of the PUBLISH packets sent.
    pub bytes_sent: u64,
    /// Sessions that end with their connection (clean start / session expiry 0).
    pub sessions_clean: u64,
    /// Sessions that outlive their connection (connected or offline).
    pub sessions_persistent: u64,
    /// PUBLISH packets refused by the access policy.
    pub publish_denied: u64,
    /// Subscriptions refused by the access policy.
    pub subscribe_denied: u64,
    /// Deliveries (live, queued or retained) withheld by the access policy.
    pub delivery_denied: u64,
    /// CONNECTs refused because the access policy forbids their will topic.
    pub will_denied: u64,
    /// Publishes and subscriptions refused for having more than `max_topic_levels` levels.
    pub topic_too_deep: u64,
    /// Subscriptions refused by `max_subscriptions_per_client`.
    pub subscription_quota_refused: u64,
    /// Wildcard subscriptions refused by `min_wildcard_depth`.
    pub shallow_wildcard_refused: u64,
    /// Wildcard subscriptions granted without retained messages by `min_wildcard_depth`.
    pub shallow_wildcard_replay_skipped: u64,
    /// v5 clients disconnected with 0x93 for exceeding the Receive Maximum.
    pub receive_maximum_exceeded: u64,
    /// Publishes sent to peers (one per peer per message).
    pub messages_forwarded: u64,
    /// Publishes peers forwarded here.
    pub messages_forwarded_in: u64,
    /// Routes this node announces to peers (distinct filters subscribed here).
    pub routes: u64,
}

/// The whole broker: every session, subscription and retained message of this node.
pub struct Broker {
    pub(crate) config: BrokerConfig,
    pub(crate) started: Instant,
    pub(crate) conns: IntMap<ConnId, Box<Connection>>,
    pub(crate) sessions: SessionStore,
    pub(crate) subs: SubTree,
    pub(crate) shared: SharedGroups,
    pub(crate) retained: RetainedStore,
    pub(crate) keep_alive: Deadlines<ConnId>,
    pub(crate) session_expiry: Deadlines<(SessionIdx, u64)>,
    pub(crate) will_delays: Deadlines<(SessionIdx, u64)>,
    pub(crate) sys: SysTopics,
    pub(crate) counters: Counters,
    pub(crate) subscription_count: u64,
    pub(crate) max_connected: u64,
    pub(crate) next_assigned_id: u64,
    pub(crate) id_seed: u64,
    pub(crate) empty_topic: Arc<str>,
    pub(crate) scratch: RouteScratch,
    /// `counters.persisted` when the current `handle` call began.
    pub(crate) persist_mark: u64,
    /// Restored sessions whose connection was lost in a crash: their `SessionPut`
    /// (connected = false) is emitted on the first Tick.
    pub(crate) restored_offline: Vec<(SessionIdx, u64)>,
    /// The access policy (`None`: everything is allowed).
    pub(crate) authorizer: Option<Arc<dyn Authorizer>>,
    pub(crate) access_counters: AccessCounters,
    pub(crate) guard_counters: GuardCounters,
    /// This node's routes (filters subscribed here), for peers.
    pub(crate) routes: LocalRoutes,
    /// Peers' routes, to forward publishes.
    pub(crate) remote: RemoteRoutes,
}

impl Broker {
    /// A broker with no sessions, started at `now`.
    pub fn new(config: BrokerConfig, now: Instant) -> Broker {
        Broker {
            config,
            started: now,
            conns: IntMap::default(),
            sessions: SessionStore::default(),
            subs: SubTree::new(),
            shared: SharedGroups::default(),
            retained: RetainedStore::default(),
            keep_alive: Deadlines::default(),
            session_expiry: Deadlines::default(),
            will_delays: Deadlines::default(),
            sys: SysTopics::default(),
            counters: Counters::default(),
            subscription_count: 0,
            max_connected: 0,
            next_assigned_id: 0,
            id_seed: RandomState::new().hash_one(0u8),
            empty_topic: Arc::from(""),
            scratch: RouteScratch::default(),
            persist_mark: 0,
            restored_offline: Vec::new(),
            authorizer: None,
            access_counters: AccessCounters::default(),
            guard_counters: GuardCounters::default(),
            routes: LocalRoutes::default(),
            remote: RemoteRoutes::default(),
        }
    }

    /// Reacts to `event` at time `now`, appending what the server must do to `out`.
    pub fn handle(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        self.persist_mark = self.counters.persisted;
        match event {
            Event::Connect {
                conn,
                connect,
                auth,
            } => self.on_connect(now, conn, *connect, auth, out),
            Event::Refuse {
                conn,
                connect,
                reason,
            } => self.on_refuse(conn, &connect, reason, out),
            Event::Packet { conn, packet } => self.on_packet(now, conn, packet, out),
            Event::Closed { conn } => {
                self.end_connection(now, conn, None, false, true, out);
            }
            Event::Drained { conn } => self.on_drained(now, conn, out),
            Event::Tick => self.on_tick(now, out),
            Event::Shutdown => self.on_shutdown(now, out),
            Event::PeerRoutes {
                node,
                full,
                add,
                remove,
            } => self.on_peer_routes(node, full, add, remove),
            Event::PeerGone { node } => self.remote.drop_node(node),
            Event::PeerReachable { node, reachable } => self.remote.set_reachable(node, reachable),
            Event::Forwarded {
                publish,
                groups,
                share_key,
            } => self.on_forwarded(now, publish, &groups, share_key, out),
            Event::Claimed {
                client_id,
                clean_start,
                persistent,
            } => self.on_claimed(now, &client_id, clean_start, persistent, out),
        }
        if self.routes.has_pending() {
            self.flush_routes(out);
        }
    }

    /// Whether storing a retained `publish` would break a retained-store limit; counts the
    /// refusal if so.
    pub(crate) fn refuse_retained(&mut self, publish: &Publish) -> bool {
        let limit = self.retained.over_limit(
            &publish.topic,
            publish.payload.len(),
            self.config.max_retained_messages,
            self.config.max_retained_payload,
            self.config.max_retained_bytes,
        );
        match limit {
            None => return false,
            Some(RetainedLimit::Count) => self.counters.retained_refused_count += 1,
            Some(RetainedLimit::Payload) => self.counters.retained_refused_payload += 1,
            Some(RetainedLimit::TotalBytes) => self.counters.retained_refused_bytes += 1,
        }
        true
    }

    /// True if a session (connected or not) of `client_id` is here.
    pub fn has_session(&self, client_id: &str) -> bool {
        self.sessions.find(client_id).is_some()
    }

    /// True if a session of `client_id` is here with no client connected.
    pub fn has_offline_session(&self, client_id: &str) -> bool {
        self.sessions
            .find(client_id)
            .and_then(|idx| self.sessions.get(idx))
            .is_some_and(|s| s.conn.is_none())
    }

    /// The client identifier of a connected connection (assigned ones included).
    pub fn client_id(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).map(|c| &*c.client_id)
    }

    /// [`Broker::client_id`], as the core keeps it: a caller that holds on to it shares the
    /// core's copy.
    pub fn client_id_shared(&self, conn: ConnId) -> Option<Arc<str>> {
        self.conns.get(&conn).map(|c| c.client_id.clone())
    }

    /// Current counters.
    pub fn stats(&self) -> BrokerStats {
        // Only connected sessions can be clean ones (they end with their connection), so this
        // walks the connections, not every stored session.
        let sessions_clean = self
            .conns
            .values()
            .filter_map(|c| self.sessions.get(c.session))
            .filter(|s| s.expiry_interval == 0)
            .count() as u64;
        BrokerStats {
            clients_connected: self.conns.len() as u64,
            sessions: self.sessions.len() as u64,
            subscriptions: self.subscription_count,
            retained_messages: self.retained.len() as u64,
            retained_bytes: self.retained.payload_bytes(),
            retained_refused_count: self.counters.retained_refused_count,
            retained_refused_payload: self.counters.retained_refused_payload,
            retained_refused_bytes: self.counters.retained_refused_bytes,
            messages_received: self.counters.received,
            messages_sent: self.counters.sent,
            messages_dropped: self.counters.dropped,
            dropped_by: self.counters.dropped_by,
            messages_received_qos: self.counters.received_qos,
            bytes_received: self.counters.received_bytes,
            messages_sent_qos: self.counters.sent_qos,
            bytes_sent: self.counters.sent_bytes,
            sessions_clean,
            sessions_persistent: (self.sessions.len() as u64).saturating_sub(sessions_clean),
            publish_denied: self.access_counters.publish_denied,
            subscribe_denied: self.access_counters.subscribe_denied,
            delivery_denied: self.access_counters.delivery_denied.get(),
            will_denied: self.access_counters.connect_denied,
            topic_too_deep: self.guard_counters.topic_too_deep,
            subscription_quota_refused: self.guard_counters.subscription_quota,
            shallow_wildcard_refused: self.guard_counters.shallow_wildcard_refused,
            shallow_wildcard_replay_skipped: self.guard_counters.shallow_wildcard_replay_skipped,
            receive_maximum_exceeded: self.guard_counters.receive_maximum_exceeded,
            messages_forwarded: self.counters.forwarded,
            messages_forwarded_in: self.counters.forwarded_in,
            routes: self.routes.len() as u64,
        }
    }

    fn on_packet(&mut self, now: Instant, conn: ConnId, packet: Packet, out: &mut Vec<Action>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_seen = now;
        match packet {
            Packet::Publish(publish) => self.on_publish(now, conn, publish, out),
            Packet::Ack(ack) => self.on_ack(now, conn, ack, out),
            Packet::Subscribe(subscribe) => self.on_subscribe(now, conn, subscribe, out),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(conn, unsubscribe, out),
            Packet::PingReq => out.push(Action::Send {
                conn,
                packet: Packet::PingResp,
            }),
            Packet::Disconnect(disconnect) => self.on_disconnect(now, conn, disconnect, out),
            // A second CONNECT (MQTT-3.1.0-2), AUTH when CONNECT had no Authentication
            // Method (3.15, 4.12), or a packet only a server sends: Protocol Error.
            Packet::Connect(_)
            | Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => {
                self.close_with(now, conn, ReasonCode::ProtocolError, out);
            }
        }
    }

    /// Closes `conn` after a v5 DISCONNECT with `reason` (v3: just closes); the will is
    /// published (an error close is not a normal disconnection, MQTT-3.1.2-8).
    pub(crate) fn close_with(
        &mut self,
        now: Instant,
        conn: ConnId,
        reason: ReasonCode,
        out: &mut Vec<Action>,
    ) {
        self.end_connection(now, conn, Some(reason), true, true, out);
    }

    /// Sends a v5 DISCONNECT with `reason` to `conn` (nothing for v3 connections).
    pub(crate) fn send_disconnect(conn: &Connection, reason: ReasonCode, out: &mut Vec<Action>) {
        if conn.is_v5() {
            out.push(Action::Send {
                conn: conn.id,
                packet: Packet::Disconnect(Disconnect::new(reason)),
            });
        }
    }

    /// An outbox over this broker's counters and queue settings.
    pub(crate) fn outbox<'a>(
        now: Instant,
        out: &'a mut Vec<Action>,
        counters: &'a mut Counters,
        config: &BrokerConfig,
    ) -> Outbox<'a> {
        Outbox {
            now,
            out,
            counters,
            max_queued: config.max_queued_messages,
            max_queued_bytes: config.max_queued_bytes,
            queue_qos0: config.queue_qos0_messages,
            durable: config.durable,
        }
    }

    /// Delivers `message` to the session in slot `idx` (sent, put in flight or queued).
    pub(crate) fn deliver_to(
        &mut self,
        now: Instant,
        idx: SessionIdx,
        message: Message,
        out: &mut Vec<Action>,
    ) {
        if !self.may_receive(idx, &message.publish.topic) {
            return;
        }
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        let conn = session
            .conn_id()
            .and_then(|c| self.conns.get_mut(&c))
            .map(|c| &mut **c);
        let mut ob = Self::outbox(now, out, &mut self.counters, &self.config);
        session.deliver(conn, message, &mut ob);
    }
}

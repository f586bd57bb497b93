//! `$SYS` topics, named as Mosquitto names them, published retained on the first Tick and
//! every `sys_interval` (a value is re-published only when it changed; uptime always is).

use crate::sys_load::LoadAverages;
use crate::{Action, Broker};
use bytes::Bytes;
use midge_codec::{Publish, QoS};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// When `$SYS` was last published and what.
#[derive(Debug, Default)]
pub struct SysTopics {
    next_at: Option<Instant>,
    last: HashMap<&'static str, String>,
    load: LoadAverages,
    cluster: Option<ClusterSys>,
    traffic: Option<TrafficSys>,
}

/// What the server counts on the wire, for `$SYS/broker/bytes/...` and
/// `$SYS/broker/load/sockets/...` (totals since startup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficSys {
    /// MQTT bytes read from clients.
    pub bytes_received: u64,
    /// MQTT bytes written to clients.
    pub bytes_sent: u64,
    /// Sockets accepted.
    pub sockets: u64,
}

/// The node's view of its cluster, published under `$SYS/cluster/...` (the server passes it
/// in; a broker without storage has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSys {
    /// This node's id.
    pub node_id: u64,
    /// Members, voters and learners.
    pub nodes: usize,
    /// Voting members.
    pub voters: usize,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The Raft term.
    pub term: u64,
}

/// Topic of the uptime value, re-published every interval.
pub const UPTIME: &str = "$SYS/broker/uptime";

impl Broker {
    /// Records the traffic totals the next `$SYS` publication reports.
    pub fn set_traffic_sys(&mut self, traffic: TrafficSys) {
        self.sys.traffic = Some(traffic);
    }

    /// Records the cluster view the next `$SYS` publication reports.
    pub fn set_cluster_sys(&mut self, cluster: ClusterSys) {
        self.sys.cluster = Some(cluster);
    }

    /// `$SYS/cluster/...` values, when the server gave a cluster view.
    fn cluster_sys_values(&self) -> Vec<(&'static str, String)> {
        let Some(c) = &self.sys.cluster else {
            return Vec::new();
        };
        vec![
            ("$SYS/cluster/node_id", c.node_id.to_string()),
            ("$SYS/cluster/nodes", c.nodes.to_string()),
            ("$SYS/cluster/voters", c.voters.to_string()),
            (
                "$SYS/cluster/leader",
                c.leader
                    .map_or_else(|| "none".to_string(), |l| l.to_string()),
            ),
            ("$SYS/cluster/term", c.term.to_string()),
        ]
    }

    /// The current `$SYS` values as (topic, decimal string or text).
    pub(crate) fn sys_values(&self, now: Instant) -> Vec<(&'static str, String)> {
        let stats = self.stats();
        let stored = self.stored_messages();
        let uptime = now.saturating_duration_since(self.started).as_secs();
        vec![
            ("$SYS/broker/version", self.config.version.clone()),
            (UPTIME, format!("{uptime} seconds")),
            (
                "$SYS/broker/clients/connected",
                stats.clients_connected.to_string(),
            ),
            (
                "$SYS/broker/clients/disconnected",
                (stats.sessions.saturating_sub(stats.clients_connected)).to_string(),
            ),
            ("$SYS/broker/clients/total", stats.sessions.to_string()),
            (
                "$SYS/broker/clients/maximum",
                self.max_connected.to_string(),
            ),
            (
                "$SYS/broker/messages/received",
                stats.messages_received.to_string(),
            ),
            ("$SYS/broker/messages/sent", stats.messages_sent.to_string()),
            (
                "$SYS/broker/publish/messages/received",
                stats.messages_received.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/sent",
                stats.messages_sent.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/dropped",
                stats.messages_dropped.to_string(),
            ),
            (
                "$SYS/broker/publish/bytes/received",
                stats.bytes_received.to_string(),
            ),
            (
                "$SYS/broker/publish/bytes/sent",
                stats.bytes_sent.to_string(),
            ),
            (
                "$SYS/broker/subscriptions/count",
                stats.subscriptions.to_string(),
            ),
            (
                "$SYS/broker/retained messages/count",
                stats.retained_messages.to_string(),
            ),
            (
                "$SYS/broker/clients/expired",
                self.counters.sessions_expired.to_string(),
            ),
            ("$SYS/broker/store/messages/count", stored.0.to_string()),
            ("$SYS/broker/messages/stored", stored.0.to_string()),
            ("$SYS/broker/store/messages/bytes", stored.1.to_string()),
        ]
    }

    /// Messages held for delivery, as Mosquitto counts its message store: retained messages
    /// (`$SYS` ones aside) plus messages queued for sessions; and their payload bytes (queued
    /// ones with their topic, as `max_queued_bytes` counts them).
    fn stored_messages(&self) -> (u64, u64) {
        let (count, bytes) =
            self.sessions
                .iter()
                .fold((0u64, 0u64), |(count, bytes), (_, session)| {
                    (
                        count + session.queue.len() as u64,
                        bytes + session.queue.bytes() as u64,
                    )
                });
        let retained = self.retained.len() - self.retained.sys_len();
        (
            count + retained as u64,
            bytes + self.retained.payload_bytes(),
        )
    }

    /// Publishes the `$SYS` topics if they are due.
    pub(crate) fn publish_sys(&mut self, now: Instant, out: &mut Vec<Action>) {
        let interval = self.config.sys_interval;
        if interval.is_zero() || self.sys.next_at.is_some_and(|at| now < at) {
            return;
        }
        self.sys.next_at = now.checked_add(interval);
        let c = &self.counters;
        let counts = [
            c.received,
            c.sent,
            c.received,
            c.sent,
            c.received_bytes,
            c.sent_bytes,
            c.connects,
            self.sys.traffic.map_or(0, |t| t.sockets),
        ];
        self.sys.load.update(now, counts);
        let mut values = self.sys_values(now);
        values.extend(self.sys.load.values());
        values.extend(self.cluster_sys_values());
        if let Some(t) = self.sys.traffic {
            values.push(("$SYS/broker/bytes/received", t.bytes_received.to_string()));
            values.push(("$SYS/broker/bytes/sent", t.bytes_sent.to_string()));
        }
        for (topic, value) in values {
            if topic != UPTIME && self.sys.last.get(topic) == Some(&value) {
                continue;
            }
            let payload = Bytes::from(value.clone().into_bytes());
            self.sys.last.insert(topic, value);
            let publish = Publish {
                dup: false,
                qos: QoS::AtMostOnce,
                retain: true,
                topic: Arc::from(topic),
                packet_id: None,
                properties: Default::default(),
                payload,
            };
            self.publish_message(now, None, publish, out);
        }
    }
}

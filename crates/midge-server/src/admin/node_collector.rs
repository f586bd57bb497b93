//! The scrape-time collector: reads the broker's, the guards' and the Raft node's counters
//! once per scrape and turns them into metric families. Nothing here runs per message.

use super::family::FamilySpec;
use crate::guard_counters::{GuardCounters, GuardSnapshot};
use crate::live_limits::LiveLimits;
use crate::shared_broker::{SharedBroker, StatsSnapshot};
use midge_cluster::{ClusterMetrics, ClusterMetricsSource, LinkStats};
use midge_core::{BrokerStats, DropReason};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use std::sync::Arc;

const CONNECTIONS: FamilySpec = FamilySpec::gauge(
    "midge_connections",
    "MQTT clients connected to this node.",
    &[],
);
const SOCKETS: FamilySpec = FamilySpec::gauge(
    "midge_open_sockets",
    "Network connections open, including those that have not sent CONNECT yet.",
    &[],
);
const SESSIONS: FamilySpec = FamilySpec::gauge(
    "midge_sessions",
    "Sessions on this node; kind=\"clean\" ends with its connection, kind=\"persistent\" \
     outlives it (connected or offline).",
    &["kind"],
);
const SUBSCRIPTIONS: FamilySpec = FamilySpec::gauge(
    "midge_subscriptions",
    "Subscriptions across all sessions.",
    &[],
);
const RETAINED: FamilySpec =
    FamilySpec::gauge("midge_retained_messages", "Retained messages stored.", &[]);
const RETAINED_BYTES: FamilySpec = FamilySpec::gauge(
    "midge_retained_bytes",
    "Payload bytes of the retained messages stored.",
    &[],
);
const RECEIVED: FamilySpec = FamilySpec::counter(
    "midge_messages_received_total",
    "PUBLISH packets received from clients.",
    &["qos"],
);
const RECEIVED_BYTES: FamilySpec = FamilySpec::counter(
    "midge_messages_received_bytes_total",
    "Payload bytes of the PUBLISH packets received from clients.",
    &[],
);
const SENT: FamilySpec = FamilySpec::counter(
    "midge_messages_sent_total",
    "PUBLISH packets sent to clients.",
    &["qos"],
);
const SENT_BYTES: FamilySpec = FamilySpec::counter(
    "midge_messages_sent_bytes_total",
    "Payload bytes of the PUBLISH packets sent to clients.",
    &[],
);
const DROPPED: FamilySpec = FamilySpec::counter(
    "midge_messages_dropped_total",
    "Messages to a client that were dropped, by reason.",
    &["reason"],
);
const LIMIT_REJECTIONS: FamilySpec = FamilySpec::counter(
    "midge_limit_rejections_total",
    "Connections and publishes refused by a configured limit, by reason.",
    &["reason"],
);
const AUTH_REJECTIONS: FamilySpec = FamilySpec::counter(
    "midge_auth_rejections_total",
    "CONNECTs, publishes, subscriptions and deliveries refused by authentication or the \
     access policy, by reason.",
    &["reason"],
);
const HANDSHAKE_FAILURES: FamilySpec = FamilySpec::counter(
    "midge_handshake_failures_total",
    "TLS and WebSocket handshakes that failed, by transport.",
    &["transport"],
);
const OVERLOADED: FamilySpec = FamilySpec::gauge(
    "midge_overloaded",
    "1 while overload mode refuses new clients because the event loop lags more than \
     limits.overload_lag_ms.",
    &[],
);
const OVERLOAD_ENTERED: FamilySpec = FamilySpec::counter(
    "midge_overload_entered_total",
    "Times overload mode was entered.",
    &[],
);
const RAFT_TERM: FamilySpec = FamilySpec::gauge("midge_raft_term", "Current Raft term.", &[]);
const RAFT_LEADER: FamilySpec = FamilySpec::gauge(
    "midge_raft_leader",
    "Node id of the Raft leader this node knows of (0: none).",
    &[],
);
const RAFT_IS_LEADER: FamilySpec = FamilySpec::gauge(
    "midge_raft_is_leader",
    "1 while this node leads the Raft group.",
    &[],
);
const RAFT_COMMIT: FamilySpec = FamilySpec::gauge(
    "midge_raft_commit_index",
    "Highest Raft log index known committed (-1: none).",
    &[],
);
const RAFT_APPLIED: FamilySpec = FamilySpec::gauge(
    "midge_raft_last_applied",
    "Highest Raft log index applied to the state machine (-1: none).",
    &[],
);
const RAFT_APPLY_LAG: FamilySpec = FamilySpec::gauge(
    "midge_raft_apply_lag",
    "Committed Raft entries not yet applied.",
    &[],
);
const RAFT_PROPOSALS: FamilySpec = FamilySpec::counter(
    "midge_raft_proposals_total",
    "Durable-change proposals accepted for Raft.",
    &[],
);
const RAFT_ENTRIES: FamilySpec = FamilySpec::counter(
    "midge_raft_entries_total",
    "Raft entries written for them (proposals per entry is the group-commit factor).",
    &[],
);
const CLUSTER_PEERS: FamilySpec = FamilySpec::gauge(
    "midge_cluster_peers",
    "Other members this node has a broker link to, by whether the last exchange succeeded.",
    &["state"],
);
const CLUSTER_ROUTES: FamilySpec = FamilySpec::gauge(
    "midge_cluster_routes",
    "Distinct subscription filters this node announces to its peers.",
    &[],
);
const CLUSTER_FORWARDED: FamilySpec = FamilySpec::counter(
    "midge_cluster_forwarded_total",
    "Publishes forwarded between nodes: sent to and acknowledged by a peer, or received \
     from one.",
    &["direction"],
);
const CLUSTER_FORWARD_DROPPED: FamilySpec = FamilySpec::counter(
    "midge_cluster_forward_dropped_total",
    "Publishes not forwarded because their peer was unreachable or too far behind.",
    &[],
);

const CLUSTER_LINK_BATCHES: FamilySpec = FamilySpec::counter(
    "midge_cluster_link_batches_total",
    "Batches this node's broker links sent to peers and had answered (forwarded out divided \
     by this is the average batch).",
    &[],
);

/// Every family the collector reports; the Raft ones only with storage.
const BROKER_FAMILIES: &[FamilySpec] = &[
    CONNECTIONS,
    SOCKETS,
    SESSIONS,
    SUBSCRIPTIONS,
    RETAINED,
    RETAINED_BYTES,
    RECEIVED,
    RECEIVED_BYTES,
    SENT,
    SENT_BYTES,
    DROPPED,
    LIMIT_REJECTIONS,
    AUTH_REJECTIONS,
    HANDSHAKE_FAILURES,
    OVERLOADED,
    OVERLOAD_ENTERED,
];
const RAFT_FAMILIES: &[FamilySpec] = &[
    RAFT_TERM,
    RAFT_LEADER,
    RAFT_IS_LEADER,
    RAFT_COMMIT,
    RAFT_APPLIED,
    RAFT_APPLY_LAG,
    RAFT_PROPOSALS,
    RAFT_ENTRIES,
    CLUSTER_PEERS,
    CLUSTER_ROUTES,
    CLUSTER_FORWARDED,
    CLUSTER_FORWARD_DROPPED,
    CLUSTER_LINK_BATCHES,
];

/// Where the collector reads from.
pub(crate) struct NodeSources {
    pub(crate) broker: Arc<SharedBroker>,
    pub(crate) limits: Arc<LiveLimits>,
    pub(crate) guards: Arc<GuardCounters>,
    /// `None` with storage disabled.
    pub(crate) cluster: Option<ClusterMetricsSource>,
}

/// Reports this node's counters at scrape time.
pub(crate) struct NodeCollector {
    sources: NodeSources,
    descs: Vec<Desc>,
}

impl NodeCollector {
    /// A collector over `sources`.
    pub(crate) fn new(sources: NodeSources) -> prometheus::Result<NodeCollector> {
        let raft: &[FamilySpec] = if sources.cluster.is_some() {
            RAFT_FAMILIES
        } else {
            &[]
        };
        let descs = BROKER_FAMILIES
            .iter()
            .chain(raft)
            .map(FamilySpec::desc)
            .collect::<prometheus::Result<_>>()?;
        Ok(NodeCollector { sources, descs })
    }
}

impl Collector for NodeCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.sources.broker.stats();
        let slots = self.sources.limits.slots();
        let mut families = broker_families(
            &stats,
            &self.sources.guards.snapshot(),
            slots.open() as u64,
            slots.refused(),
        );
        let overload = self.sources.limits.overload();
        families.push(OVERLOADED.single(if overload.is_overloaded() { 1.0 } else { 0.0 }));
        families.push(OVERLOAD_ENTERED.single(overload.entered() as f64));
        if let Some(cluster) = &self.sources.cluster {
            families.extend(raft_families(&cluster.metrics()));
            let links = self.sources.broker.link_stats().unwrap_or_default();
            families.extend(link_families(&links, &stats));
        }
        families
    }
}

/// The broker's, the server's and the guards' counters as families.
fn broker_families(
    snapshot: &StatsSnapshot,
    guards: &GuardSnapshot,
    open_sockets: u64,
    max_connections_refused: u64,
) -> Vec<MetricFamily> {
    // Destructured without `..`: a new field in `BrokerStats` fails to compile here until it
    // is exported (or deliberately skipped below).
    let BrokerStats {
        clients_connected,
        sessions: _,
        subscriptions,
        retained_messages,
        retained_bytes,
        retained_refused_count,
        retained_refused_payload,
        retained_refused_bytes,
        messages_received: _,
        messages_sent: _,
        messages_dropped: _,
        dropped_by,
        messages_received_qos,
        bytes_received,
        messages_sent_qos,
        bytes_sent,
        sessions_clean,
        sessions_persistent,
        publish_denied,
        subscribe_denied,
        delivery_denied,
        will_denied,
        topic_too_deep,
        subscription_quota_refused,
        shallow_wildcard_refused,
        shallow_wildcard_replay_skipped,
        receive_maximum_exceeded,
        // Cluster families, reported by `link_families`.
        messages_forwarded: _,
        messages_forwarded_in: _,
        routes: _,
    } = &snapshot.broker;
    // Totals (`sessions`, `messages_*`) are the sums of the labelled series below.
    let f = |v: u64| v as f64;
    let by_qos = |counts: &[u64; 3]| {
        [
            (&["0"][..], f(counts[0])),
            (&["1"][..], f(counts[1])),
            (&["2"][..], f(counts[2])),
        ]
    };
    let reasons = DropReason::ALL.map(|r| [r.as_str()]);
    let mut dropped: Vec<(&[&str], f64)> = DropReason::ALL
        .iter()
        .zip(&reasons)
        .map(|(r, label)| (&label[..], f(dropped_by.get(*r))))
        .collect();
    dropped.push((&["slow_reader"], f(snapshot.slow_reader_dropped)));
    vec![
        CONNECTIONS.single(f(*clients_connected)),
        SOCKETS.single(f(open_sockets)),
        SESSIONS.family(&[
            (&["clean"], f(*sessions_clean)),
            (&["persistent"], f(*sessions_persistent)),
        ]),
        SUBSCRIPTIONS.single(f(*subscriptions)),
        RETAINED.single(f(*retained_messages)),
        RETAINED_BYTES.single(f(*retained_bytes)),
        RECEIVED.family(&by_qos(messages_received_qos)),
        RECEIVED_BYTES.single(f(*bytes_received)),
        SENT.family(&by_qos(messages_sent_qos)),
        SENT_BYTES.single(f(*bytes_sent)),
        DROPPED.family(&dropped),
        LIMIT_REJECTIONS.family(&[
            (&["max_connections"], f(max_connections_refused)),
            (
                &["max_connections_per_ip"],
                f(guards.per_ip_connections_refused),
            ),
            (&["connection_rate"], f(guards.connection_rate_refused)),
            (&["overload"], f(guards.overload_refused)),
            (
                &["listener_max_connections"],
                f(guards.listener_connections_refused),
            ),
            (
                &["publish_rate_throttled"],
                f(guards.publish_rate_throttled),
            ),
            (
                &["publish_rate_disconnected"],
                f(guards.publish_rate_disconnected),
            ),
            (&["retained_count"], f(*retained_refused_count)),
            (&["retained_payload"], f(*retained_refused_payload)),
            (&["retained_bytes"], f(*retained_refused_bytes)),
            (&["max_topic_levels"], f(*topic_too_deep)),
            (
                &["max_subscriptions_per_client"],
                f(*subscription_quota_refused),
            ),
            (&["min_wildcard_depth"], f(*shallow_wildcard_refused)),
            (
                &["min_wildcard_depth_replay"],
                f(*shallow_wildcard_replay_skipped),
            ),
            (&["receive_maximum"], f(*receive_maximum_exceeded)),
            (&["packet_too_large"], f(guards.packet_too_large)),
        ]),
        AUTH_REJECTIONS.family(&[
            (&["bad_credentials"], f(guards.auth_failed)),
            (&["login_rate"], f(guards.auth_rate_limited)),
            (&["anonymous"], f(guards.anonymous_refused)),
            (&["will_denied"], f(*will_denied)),
            (&["publish_denied"], f(*publish_denied)),
            (&["subscribe_denied"], f(*subscribe_denied)),
            (&["delivery_denied"], f(*delivery_denied)),
        ]),
        HANDSHAKE_FAILURES.family(&[
            (&["tls"], f(guards.tls_handshake_failed)),
            (&["ws"], f(guards.ws_handshake_failed)),
        ]),
    ]
}

/// The Raft node's state as families.
fn raft_families(m: &ClusterMetrics) -> Vec<MetricFamily> {
    let index = |i: Option<u64>| i.map_or(-1.0, |i| i as f64);
    vec![
        RAFT_TERM.single(m.term as f64),
        RAFT_LEADER.single(m.leader.unwrap_or(0) as f64),
        RAFT_IS_LEADER.single(if m.is_leader { 1.0 } else { 0.0 }),
        RAFT_COMMIT.single(index(m.commit_index)),
        RAFT_APPLIED.single(index(m.last_applied)),
        RAFT_APPLY_LAG.single(m.apply_lag() as f64),
        RAFT_PROPOSALS.single(m.proposals as f64),
        RAFT_ENTRIES.single(m.batches as f64),
    ]
}

/// The broker links' state as families.
fn link_families(links: &LinkStats, stats: &StatsSnapshot) -> Vec<MetricFamily> {
    let f = |v: u64| v as f64;
    vec![
        CLUSTER_PEERS.family(&[
            (&["up"], f(links.peers_up)),
            (&["down"], f(links.peers - links.peers_up)),
        ]),
        CLUSTER_ROUTES.single(f(stats.broker.routes)),
        CLUSTER_FORWARDED.family(&[
            (&["out"], f(links.forwarded)),
            (&["in"], f(stats.broker.messages_forwarded_in)),
        ]),
        CLUSTER_FORWARD_DROPPED.single(f(links.dropped)),
        CLUSTER_LINK_BATCHES.single(f(links.batches)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_follows_prometheus_naming() {
        for spec in BROKER_FAMILIES.iter().chain(RAFT_FAMILIES) {
            assert!(spec.name.starts_with("midge_"), "{}", spec.name);
            let is_counter = spec.kind == prometheus::proto::MetricType::COUNTER;
            assert_eq!(spec.name.ends_with("_total"), is_counter, "{}", spec.name);
            spec.desc().expect("valid descriptor");
        }
    }

    /// Every metric the Grafana dashboard and the observability doc name exists.
    #[test]
    fn the_dashboard_and_the_docs_name_only_exported_metrics() {
        let known: Vec<&str> = BROKER_FAMILIES
            .iter()
            .chain(RAFT_FAMILIES)
            .map(|f| f.name)
            .chain([
                "midge_publish_latency_seconds",
                "midge_forward_latency_seconds",
                "midge_build_info",
                "midge_connections_parked",
            ])
            .collect();
        for (file, text) in [
            (
                "deploy/grafana/midge.json",
                include_str!("../../../../deploy/grafana/midge.json"),
            ),
            (
                "docs/observability.md",
                include_str!("../../../../docs/observability.md"),
            ),
        ] {
            let mut rest = text;
            while let Some(at) = rest.find("midge_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                let is_crate = ["midge_server", "midge_core", "midge_cluster"].contains(&name);
                // `midge_raft_*` in prose names a group of metrics.
                let is_prefix = name.ends_with('_') && known.iter().any(|k| k.starts_with(name));
                assert!(
                    is_crate || is_prefix || known.contains(&base),
                    "{file} names {name}, which is not exported"
                );
                rest = &tail[end..];
            }
        }
    }

    #[test]
    fn labelled_series_add_up_to_the_core_totals() {
        let mut broker = BrokerStats {
            messages_received_qos: [1, 2, 3],
            ..BrokerStats::default()
        };
        broker.dropped_by.add(DropReason::Expired);
        let snapshot = StatsSnapshot {
            broker,
            slow_reader_dropped: 4,
        };
        let families = broker_families(&snapshot, &GuardSnapshot::default(), 0, 0);
        let family = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        let sum = |name: &str| -> f64 {
            family(name)
                .get_metric()
                .iter()
                .map(|m| m.get_counter().get_value())
                .sum()
        };
        assert_eq!(sum("midge_messages_received_total"), 6.0);
        assert_eq!(sum("midge_messages_dropped_total"), 5.0);
    }
}

//! The sections of the configuration file, one struct per `[table]`.

use midge_codec::QoS;
use midge_core::{BrokerConfig, SharedStrategy};
use midge_store::FsyncPolicy;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[broker]`: every setting of [`midge_core::BrokerConfig`] except the version string, with
/// durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSection {
    /// Largest packet accepted from a client, in bytes.
    pub max_packet_size: u32,
    /// Receive Maximum advertised to v5 clients.
    pub receive_maximum: u16,
    /// Outgoing QoS 1/2 messages in flight per client.
    pub max_inflight: u16,
    /// Messages queued per session beyond the inflight window.
    pub max_queued_messages: usize,
    /// Bytes (payload and topic) queued per session; 0 for no limit.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_messages: bool,
    /// Largest keep alive accepted, in seconds.
    pub max_keep_alive: u16,
    /// Largest session expiry interval granted, in seconds.
    pub max_session_expiry: u32,
    /// Topic Alias Maximum advertised to v5 clients.
    pub topic_alias_maximum: u16,
    /// Use topic aliases towards v5 clients that allow them.
    pub outgoing_topic_aliases: bool,
    /// Highest QoS supported: 0, 1 or 2.
    pub maximum_qos: u8,
    /// Retained messages supported.
    pub retain_available: bool,
    /// Wildcard subscriptions supported.
    pub wildcard_subscription_available: bool,
    /// Shared subscriptions supported.
    pub shared_subscription_available: bool,
    /// Which member gets each message of a shared group.
    pub shared_strategy: SharedStrategyName,
    /// Subscription identifiers supported.
    pub subscription_identifiers_available: bool,
    /// Accept an empty client id.
    pub allow_zero_length_client_id: bool,
    /// Prefix of assigned client ids.
    pub assigned_client_id_prefix: String,
    /// `$SYS` publication interval in seconds; 0 disables it.
    pub sys_interval_secs: u64,
    /// Most retained messages stored; 0 for no limit.
    pub max_retained_messages: usize,
    /// Largest retained payload stored, in bytes; 0 for no limit.
    pub max_retained_payload: usize,
    /// Most payload bytes of all retained messages together (0: no limit).
    pub max_retained_bytes: u64,
    /// Most subscriptions per session; 0 for no limit.
    pub max_subscriptions_per_client: usize,
    /// Most levels of a topic name or filter; 0 for no limit.
    pub max_topic_levels: usize,
    /// Least levels before the first wildcard of a filter; 0 for any.
    pub min_wildcard_depth: usize,
    /// Grant shallower wildcard subscriptions without retained messages instead of refusing.
    pub shallow_wildcard_without_retained: bool,
    /// Server Reference for DISCONNECT 0x9C at shutdown; empty: 0x8B.
    pub shutdown_server_reference: String,
}

impl BrokerSection {
    /// The core's settings; `version` is what `$SYS/broker/version` reports.
    pub fn to_core(&self, version: String) -> BrokerConfig {
        BrokerConfig {
            version,
            max_packet_size: self.max_packet_size,
            receive_maximum: self.receive_maximum,
            max_inflight: self.max_inflight,
            max_queued_messages: self.max_queued_messages,
            max_queued_bytes: self.max_queued_bytes,
            queue_qos0_messages: self.queue_qos0_messages,
            max_keep_alive: self.max_keep_alive,
            max_session_expiry: self.max_session_expiry,
            topic_alias_maximum: self.topic_alias_maximum,
            outgoing_topic_aliases: self.outgoing_topic_aliases,
            // `Config::load` rejected anything but 0..=2, so the fallback is never taken.
            maximum_qos: QoS::from_u8(self.maximum_qos).unwrap_or(QoS::ExactlyOnce),
            retain_available: self.retain_available,
            wildcard_subscription_available: self.wildcard_subscription_available,
            shared_subscription_available: self.shared_subscription_available,
            shared_strategy: self.shared_strategy.into(),
            subscription_identifiers_available: self.subscription_identifiers_available,
            allow_zero_length_client_id: self.allow_zero_length_client_id,
            assigned_client_id_prefix: self.assigned_client_id_prefix.clone(),
            sys_interval: Duration::from_secs(self.sys_interval_secs),
            max_retained_messages: self.max_retained_messages,
            max_retained_payload: self.max_retained_payload,
            max_retained_bytes: self.max_retained_bytes,
            max_subscriptions_per_client: self.max_subscriptions_per_client,
            max_topic_levels: self.max_topic_levels,
            min_wildcard_depth: self.min_wildcard_depth,
            shallow_wildcard_without_retained: self.shallow_wildcard_without_retained,
            shutdown_server_reference: Some(self.shutdown_server_reference.clone())
                .filter(|r| !r.is_empty()),
            durable: false,
            cluster: false,
        }
    }
}

/// `[limits]`: per-connection and per-process guards and timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Seconds a new connection has to send CONNECT.
    pub connect_timeout_secs: u64,
    /// Unsent outgoing QoS 0 bytes allowed per connection before QoS 0 messages are dropped.
    pub max_pending_bytes: usize,
    /// Seconds a shutdown waits for connections to flush.
    pub shutdown_grace_secs: u64,
    /// Most connections open at once from one IP address; 0 for no limit.
    pub max_connections_per_ip: usize,
    /// Most new connections per second from one IP address; 0 for no limit.
    pub max_connection_rate_per_ip: u32,
    /// PUBLISH packets per second one connection may send; 0 for no limit.
    pub max_publish_rate: u32,
    /// PUBLISH bytes per second one connection may send; 0 for no limit.
    pub max_publish_bytes_rate: u64,
    /// Seconds of either rate a connection may send at once after being idle.
    pub publish_burst_secs: u32,
    /// What happens to a connection over its publish rate.
    pub publish_rate_action: PublishRateAction,
    /// Event loop lag, in milliseconds, above which new connections are refused; 0: off.
    pub overload_lag_ms: u64,
    /// A quiet plain TCP connection goes dormant unless its last quiet spell was shorter
    /// than this many milliseconds.
    pub dormant_after_ms: u64,
}

/// `limits.publish_rate_action`: what happens to a connection publishing faster than
/// `max_publish_rate` / `max_publish_bytes_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishRateAction {
    /// Stop reading from it until it is back within the rate (TCP pushes back on it).
    Throttle,
    /// v5 clients get DISCONNECT 0x96 Message rate too high; v3 clients are throttled.
    Disconnect,
}

impl LimitsSection {
    /// `connect_timeout_secs` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    /// `shutdown_grace_secs` as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// `dormant_after_ms` as a duration.
    pub fn dormant_after(&self) -> Duration {
        Duration::from_millis(self.dormant_after_ms)
    }
}

/// `[storage]`: whether and how durable state (retained messages, persistent sessions) is kept
/// on disk, in RocksDB under `<data_dir>/raft`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Keep durable state on disk; `false` keeps everything in memory (lost on restart).
    pub enabled: bool,
    /// When acknowledged writes reach the disk.
    pub fsync: FsyncMode,
    /// With `fsync = "interval"`: how often the write-ahead log is synced, in milliseconds.
    pub fsync_interval_ms: u64,
    /// Take a snapshot of the state (and drop the log behind it) every this many log entries.
    pub snapshot_logs: u64,
}

impl StorageSection {
    /// The store's fsync policy.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        match self.fsync {
            FsyncMode::Always => FsyncPolicy::Always,
            FsyncMode::Interval => FsyncPolicy::IntervalMs(self.fsync_interval_ms),
        }
    }
}

/// `broker.shared_strategy`: which member gets each message of a shared group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedStrategyName {
    /// A connected member on the node the message was published on first.
    LocalFirst,
    /// Round-robin over the nodes with members, then over a node's members.
    RoundRobin,
    /// By a hash of the publisher's client id.
    ClientHash,
}

impl From<SharedStrategyName> for SharedStrategy {
    fn from(name: SharedStrategyName) -> SharedStrategy {
        match name {
            SharedStrategyName::LocalFirst => SharedStrategy::LocalFirst,
            SharedStrategyName::RoundRobin => SharedStrategy::RoundRobin,
            SharedStrategyName::ClientHash => SharedStrategy::ClientHash,
        }
    }
}

/// `storage.fsync`: when writes are synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Before anything is acknowledged (survives power loss).
    Always,
    /// Every `storage.fsync_interval_ms` (survives a process crash; a power loss can lose the
    /// last interval).
    Interval,
}

/// `[cluster]`: this node's place in the Raft group and how it finds its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This node's id; stable across restarts, recorded in the data directory.
    pub node_id: u64,
    /// Address of the cluster gRPC listener, `host:port` (port 0: any free port).
    pub bind: String,
    /// Address peers reach the cluster listener at; empty: the bound address.
    pub advertise: String,
    /// Peers' cluster addresses to join through when the data directory is empty. A list,
    /// or one comma-separated string (how `MIDGE__CLUSTER__SEEDS` gives it).
    #[serde(deserialize_with = "seed_list")]
    pub seeds: Vec<String>,
    /// Most voting members; later joiners are learners.
    pub voters: usize,
    /// At most one batch of forwarded publishes per peer per this many milliseconds, unless
    /// a batch is full (0: at once).
    pub forward_batch_ms: u64,
}

/// `[log]`: what is logged and how lines look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `RUST_LOG`-style filter directives, e.g. `info` or `info,midge_server=debug`.
    pub level: String,
    /// Line format.
    pub format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `cluster.seeds` as a list or as one comma-separated string.
fn seed_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seeds {
        List(Vec<String>),
        Joined(String),
    }
    let seeds = match Seeds::deserialize(d)? {
        Seeds::List(list) => list,
        Seeds::Joined(joined) => joined.split(',').map(str::to_string).collect(),
    };
    Ok(seeds
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

//! Broker behaviour settings, validated by the server's config layer and passed in.

use crate::shared_strategy::SharedStrategy;
use midge_codec::QoS;
use std::time::Duration;

/// What the broker allows and advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Version string for `$SYS/broker/version`.
    pub version: String,
    /// Largest packet accepted from a client (advertised in v5 CONNACK).
    pub max_packet_size: u32,
    /// Receive Maximum the broker advertises: incoming QoS 1/2 publishes unacknowledged at once.
    pub receive_maximum: u16,
    /// Most outgoing QoS 1/2 messages in flight per client (also capped by the client's
    /// Receive Maximum).
    pub max_inflight: u16,
    /// Most messages queued per session beyond the inflight window (QoS 0 dropped first).
    pub max_queued_messages: usize,
    /// Most bytes (payload and topic) queued per session (0: no limit). When full, a new QoS 0
    /// message is dropped, or queued QoS 0 messages make room for a QoS 1/2 one; if that is not
    /// enough, the new message is dropped.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent sessions (Mosquitto's queue_qos0_messages).
    pub queue_qos0_messages: bool,
    /// Largest keep alive accepted; a v5 client asking for more (or 0) gets Server Keep Alive.
    pub max_keep_alive: u16,
    /// Largest session expiry interval granted (seconds).
    pub max_session_expiry: u32,
    /// Topic Alias Maximum advertised to v5 clients (aliases the client may use towards us).
    pub topic_alias_maximum: u16,
    /// Use topic aliases towards v5 clients that allow them (their Topic Alias Maximum > 0).
    /// Off by default, as in Mosquitto: several client libraries do not resolve aliases they
    /// receive and would see empty topic names.
    pub outgoing_topic_aliases: bool,
    /// Highest QoS the broker supports.
    pub maximum_qos: QoS,
    /// Retained messages supported.
    pub retain_available: bool,
    /// Wildcard subscriptions supported.
    pub wildcard_subscription_available: bool,
    /// Shared subscriptions supported.
    pub shared_subscription_available: bool,
    /// How a shared group's message picks its node and member.
    pub shared_strategy: SharedStrategy,
    /// Subscription identifiers supported.
    pub subscription_identifiers_available: bool,
    /// Accept an empty client id (v5: assign one; v3.1.1: only with clean session).
    pub allow_zero_length_client_id: bool,
    /// Prefix of assigned client ids.
    pub assigned_client_id_prefix: String,
    /// How often `$SYS` topics are published; zero disables them.
    pub sys_interval: Duration,
    /// Most retained messages stored (0: no limit). A retained publish to a new topic beyond
    /// it is refused (v5 QoS 1/2: reason 0x97 Quota exceeded).
    pub max_retained_messages: usize,
    /// Largest payload stored as a retained message, in bytes (0: no limit beyond the packet
    /// size). A bigger retained publish is refused the same way.
    pub max_retained_payload: usize,
    /// Most payload bytes all retained messages together may hold (0: no limit).
    pub max_retained_bytes: u64,
    /// Most subscriptions one session may hold (0: no limit); a SUBSCRIBE for a new filter
    /// beyond it gets 0x97 Quota exceeded for that filter (v3: 0x80).
    pub max_subscriptions_per_client: usize,
    /// Most levels a topic name or filter may have (0: no limit): deeper publishes get
    /// 0x90 Topic Name invalid (v3: dropped), deeper filters 0x8F Topic Filter invalid.
    pub max_topic_levels: usize,
    /// Least number of levels before the first wildcard of a filter (0: any), so `#` or
    /// `+/#` cannot subscribe to everything (`$share/` prefix not counted).
    pub min_wildcard_depth: usize,
    /// With `min_wildcard_depth`: grant a shallower wildcard subscription but send it no
    /// retained messages (true), or refuse it with 0x87 Not authorized (false).
    pub shallow_wildcard_without_retained: bool,
    /// At shutdown, v5 clients get DISCONNECT 0x9C Server moved with this Server Reference
    /// (another broker to use) instead of 0x8B Server shutting down.
    pub shutdown_server_reference: Option<String>,
    /// Emit `Action::Persist` for durable state and `Action::SendDurable` for acknowledgements
    /// that promise durability. Off: no `Persist`, and those acknowledgements are plain `Send`.
    pub durable: bool,
    /// This broker is a cluster node: emit `RouteAdd`/`RouteRemove` for its subscriptions and
    /// `Claim` for its connects (`Forward` needs peers' routes, so it only happens in a
    /// cluster anyway).
    pub cluster: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            version: "midge".to_string(),
            max_packet_size: midge_codec::MAX_PACKET_SIZE,
            receive_maximum: 65_535,
            max_inflight: 1024,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keep_alive: 65_535,
            max_session_expiry: u32::MAX,
            topic_alias_maximum: 1024,
            outgoing_topic_aliases: false,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            wildcard_subscription_available: true,
            shared_subscription_available: true,
            shared_strategy: SharedStrategy::LocalFirst,
            subscription_identifiers_available: true,
            allow_zero_length_client_id: true,
            assigned_client_id_prefix: "auto-".to_string(),
            sys_interval: Duration::from_secs(10),
            max_retained_messages: 0,
            max_retained_payload: 0,
            max_retained_bytes: 0,
            max_subscriptions_per_client: 0,
            max_topic_levels: 0,
            min_wildcard_depth: 0,
            shallow_wildcard_without_retained: false,
            shutdown_server_reference: None,
            durable: false,
            cluster: false,
        }
    }
}

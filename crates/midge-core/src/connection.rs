//! State of one connected network connection (what dies with the socket).

use crate::event::ConnId;
use crate::session_store::SessionIdx;
use crate::topic_alias::{InboundAliases, OutboundAliases};
use midge_codec::{LastWill, ProtocolVersion};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A live connection bound to a session.
#[derive(Debug)]
pub struct Connection {
    /// The connection id.
    pub id: ConnId,
    /// The session slot this connection uses.
    pub session: SessionIdx,
    /// Client identifier (possibly assigned by us).
    pub client_id: Arc<str>,
    /// Protocol version from CONNECT.
    pub version: ProtocolVersion,
    /// The CONNECT's Keep Alive in seconds (0: none): the connection is closed when no
    /// packet arrives for 1.5 times as long.
    pub keep_alive: u16,
    /// When the last packet arrived.
    pub last_seen: Instant,
    /// Most QoS 1/2 messages in flight to the client: min(our max_inflight, its Receive Maximum).
    pub window: u16,
    /// The client's Maximum Packet Size, if it set one (the codec refuses 0, a Protocol
    /// Error by 3.1.2.11.4).
    pub max_packet_size: Option<NonZeroU32>,
    /// Topic aliases from the client.
    pub aliases_in: InboundAliases,
    /// Topic aliases towards the client.
    pub aliases_out: OutboundAliases,
    /// The will, until the connection ends. Boxed: most connections have none, and every
    /// connection would otherwise carry its size.
    pub will: Option<Box<LastWill>>,
    /// The CONNECT asked for Session Expiry Interval 0 (DISCONNECT may not raise it).
    pub connect_expiry_zero: bool,
}

// Every connected client has one, idle or not; what only some clients use (a will, an alias
// table) is boxed so the others do not carry its size.
const _: () = assert!(std::mem::size_of::<Connection>() <= 96);

impl Connection {
    /// True for MQTT 5.0 connections.
    pub fn is_v5(&self) -> bool {
        self.version.is_v5()
    }

    /// When the keep alive runs out, if it is enabled.
    pub fn keep_alive_deadline(&self) -> Option<Instant> {
        keep_alive_timeout(self.keep_alive).and_then(|t| self.last_seen.checked_add(t))
    }
}

/// 1.5 times `keep_alive` seconds, or `None` when it is 0 (disabled).
pub fn keep_alive_timeout(keep_alive: u16) -> Option<Duration> {
    (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500))
}

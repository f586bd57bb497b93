//! Inputs to the broker core.

use crate::NodeId;
use bytes::Bytes;
use midge_codec::{Connect, Packet, Publish, ReasonCode};
use std::sync::Arc;

/// Identifies one network connection; allocated by the server, never reused in a process.
pub type ConnId = u64;

/// Something that happened that the broker must react to.
// `Packet` is nearly every event; boxing it would cost an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Event {
    /// A connection delivered its (already decoded and validated) CONNECT packet.
    Connect {
        /// The connection.
        conn: ConnId,
        /// The CONNECT packet.
        connect: Box<Connect>,
        /// Set when the server completed MQTT v5 enhanced authentication for it; a v5
        /// CONNECT with an Authentication Method and no `auth` is refused with 0x8C.
        auth: Option<EnhancedAuth>,
    },
    /// The server refuses a connection's CONNECT (authentication failed, anonymous not
    /// allowed, too many failed logins) with the v5 `reason`; the core answers with the
    /// CONNACK of the client's protocol version (v3 return codes: 0x86 -> 4, 0x87 -> 5,
    /// others -> 3) and closes the connection. No session is touched.
    Refuse {
        /// The connection.
        conn: ConnId,
        /// The CONNECT packet.
        connect: Box<Connect>,
        /// Why, as a v5 CONNACK reason code (an error code).
        reason: ReasonCode,
    },
    /// A connection delivered a packet after CONNECT (a second CONNECT included: the core
    /// treats it as a protocol error).
    Packet {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: Packet,
    },
    /// The connection is gone without a DISCONNECT the core has seen: EOF, I/O error, or the
    /// server closed it after a decode error. The will is published (subject to delay).
    /// Unknown or already-closed connections are ignored.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// Everything sent to the connection before an `Action::NotifyDrained` for it has been
    /// written to the socket.
    Drained {
        /// The connection.
        conn: ConnId,
    },
    /// Periodic timer (the server sends one at least every 100 ms): keepalive timeouts,
    /// delayed wills, session expiry, `$SYS` publication.
    Tick,
    /// The server is shutting down: v5 clients get DISCONNECT 0x8B, every connection closes.
    Shutdown,
    /// A peer's routes changed (see `Action::RouteAdd`). With `full`, `add` is its whole route
    /// set, replacing what was known (a peer sends that when it (re)connects).
    PeerRoutes {
        /// The peer.
        node: NodeId,
        /// `add` replaces every route of the peer.
        full: bool,
        /// Routes added.
        add: Vec<String>,
        /// Routes removed.
        remove: Vec<String>,
    },
    /// A peer left the cluster or was lost, and the cluster released it (its sessions were
    /// adopted): its routes are forgotten, so nothing more is forwarded to it.
    PeerGone {
        /// The peer.
        node: NodeId,
    },
    /// A peer's link went down (`reachable` false) or came back: while it is down, shared
    /// groups prefer members on reachable nodes; its other routes stay.
    PeerReachable {
        /// The peer.
        node: NodeId,
        /// Whether its link is up.
        reachable: bool,
    },
    /// A publish another node received and forwarded here (see `Action::Forward`): delivered
    /// to this node's matching sessions and to the shared groups in `groups` only; never
    /// retained here (retained messages are replicated through Raft) nor forwarded again.
    Forwarded {
        /// The message as published (topic resolved, no packet id).
        publish: Publish,
        /// `{group}/{filter}` names of the shared groups this node serves for it.
        groups: Vec<Arc<str>>,
        /// The publisher's share key (see `Action::Forward`).
        share_key: u64,
    },
    /// A client with this identifier connected to another node (see `Action::Claim`): its
    /// connection here ends with v5 DISCONNECT 0x8E Session taken over, its will is published
    /// as on any takeover, and this node lets go of its session.
    Claimed {
        /// The client identifier.
        client_id: String,
        /// The client asked the other node for a clean start.
        clean_start: bool,
        /// The other node keeps a persistent session for it.
        persistent: bool,
    },
}

/// The server authenticated a CONNECT with an AUTH exchange (MQTT 5, 4.12): the CONNACK
/// carries `method` as its Authentication Method and `data` as its Authentication Data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnhancedAuth {
    /// The Authentication Method, as the client named it.
    pub method: String,
    /// The method's last message to the client (e.g. SCRAM's server-final-message).
    pub data: Option<Bytes>,
}

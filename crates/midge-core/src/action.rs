//! Outputs of the broker core, carried out by the server in order.

use crate::{ConnId, DurableOp, NodeId};
use midge_codec::{Packet, Publish};
use std::sync::Arc;

/// Something the server must do.
// `Send` is nearly every action; boxing its packet would cost an allocation per packet.
// Actions are moved into the action list and out again for every copy routed, so the rare
// large one (`Persist`, whose session may carry a will) is boxed instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this packet on that connection (after everything sent before it).
    Send {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: Packet,
    },
    /// Make this change durable (only emitted when `BrokerConfig::durable` is set).
    Persist(Box<DurableOp>),
    /// Send this packet once every `Persist` emitted before it is committed; it acknowledges
    /// something the client must not lose: any acknowledgement (CONNACK, PUBACK, PUBREC,
    /// PUBREL, PUBCOMP, SUBACK, UNSUBACK) that follows a `Persist` of the same `handle` call,
    /// and every CONNACK, SUBACK and UNSUBACK of a persistent session. Like `Send`, it keeps
    /// its place in the connection's order: later packets to the same connection wait for it.
    /// Only emitted when `BrokerConfig::durable` is set.
    SendDurable {
        /// The connection.
        conn: ConnId,
        /// The packet.
        packet: Packet,
    },
    /// Report `Event::Drained` for this connection once everything sent to it before this
    /// action is written to the socket (the core paces retained messages for new
    /// subscriptions with it). Nothing to report if the connection closes first.
    NotifyDrained {
        /// The connection.
        conn: ConnId,
    },
    /// Tell every peer that this node now has a subscription to `route` (a filter, or
    /// `$share/{group}/{filter}`). Emitted before the SUBACK, which the server holds until
    /// every reachable peer acknowledged the route, so a message published anywhere after the
    /// SUBACK reaches the subscriber. Route actions and claims are only emitted with
    /// `BrokerConfig::cluster`.
    RouteAdd {
        /// The route.
        route: String,
    },
    /// Tell every peer that this node no longer subscribes to `route`.
    RouteRemove {
        /// The route.
        route: String,
    },
    /// Send `publish` to peer `node`, whose routes match it, to deliver to its sessions and
    /// to the shared groups named in `groups`. Emitted before the publisher's acknowledgement;
    /// for QoS 1 and 2 the server holds that until the peer took the message.
    Forward {
        /// The peer.
        node: NodeId,
        /// The message as published (topic resolved, no packet id, no alias).
        publish: Publish,
        /// `{group}/{filter}` names of the shared groups the peer serves for it.
        groups: Vec<Arc<str>>,
        /// The publisher's share key, with which the peer picks its group member under
        /// `SharedStrategy::ClientHash` (0 otherwise).
        share_key: u64,
    },
    /// A client connected here with this identifier: every peer ends its connection with the
    /// same identifier, if it has one. Emitted before the CONNACK, which the server holds
    /// until the reachable peers did.
    Claim {
        /// The client identifier.
        client_id: Arc<str>,
        /// The client asked for a clean start.
        clean_start: bool,
        /// The session here outlives the connection.
        persistent: bool,
    },
    /// Flush what was sent before, then close the connection. The core has already forgotten
    /// the connection; a later `Event::Closed` for it is ignored.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

// `Forward` (a PUBLISH and its shared-group names) is the largest variant left.
const _: () = assert!(std::mem::size_of::<Action>() <= 104);

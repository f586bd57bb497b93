//! Outputs of the broker core, carried out by the server in order.

use crate::{ConnId, DurableOp};
use midge_codec::Packet;

/// Something the server must do.
// `Send` is nearly every action; boxing its packet would cost an allocation per packet.
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
    Persist(DurableOp),
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
    /// Flush what was sent before, then close the connection. The core has already forgotten
    /// the connection; a later `Event::Closed` for it is ignored.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

//! Changes to durable state, emitted by the broker so a storage layer can make them survive a
//! crash (and, in a cluster, replicate them).
//!
//! The core stays the in-memory authority: it applies every change to itself first and emits
//! one [`DurableOp`] per change, in order, as `Action::Persist`. Acknowledgements that promise
//! durability (PUBACK/PUBREC for a message bound for a persistent session or retained, SUBACK
//! of a persistent session, ...: see `Action::SendDurable`) are emitted as
//! `Action::SendDurable`, which the server holds back until every `Persist` emitted before it
//! is committed. After a restart the storage layer hands the surviving state back through
//! [`RestoredState`] (built, for instance, by folding the ops into a `DurableState`) and
//! `Broker::restore`.
//!
//! Only persistent sessions (session expiry > 0) and retained messages are durable; clean
//! sessions, QoS 0 messages and `$SYS` topics never produce a `DurableOp`. Where a change has
//! consequences (a will published, a message routed), those are emitted first and the change
//! that records them last, so a crash in between repeats them rather than losing them.
//! Persisting a prefix of the ops always leaves a state that `Broker::restore` accepts.

use crate::message::Message;
use crate::session::Subscription;
use midge_codec::{LastWill, PacketId};
use std::sync::Arc;
use std::time::Instant;

/// Where an outgoing QoS 1/2 message of a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    /// Waiting in the session queue; no packet id yet.
    Queued,
    /// Sent with this packet id; PUBACK (QoS 1) or PUBREC (QoS 2) not yet received.
    Sent {
        /// The packet id it was sent with.
        packet_id: PacketId,
    },
    /// QoS 2: PUBREC received and PUBREL sent; PUBCOMP not yet received.
    Released {
        /// The packet id of the flow.
        packet_id: PacketId,
    },
}

/// One change to durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurableOp {
    /// A retained message was stored or replaced (`message.publish.retain` is true).
    RetainedSet {
        /// Topic name.
        topic: Arc<str>,
        /// The message, with its expiry.
        message: Message,
    },
    /// The retained message of a topic was cleared (or expired).
    RetainedClear {
        /// Topic name.
        topic: Arc<str>,
    },
    /// A persistent session was created, or its expiry, will or connection state changed.
    SessionPut {
        /// Client identifier.
        client_id: Arc<str>,
        /// Session Expiry Interval in seconds (`u32::MAX`: never).
        expiry_interval: u32,
        /// The will of the current (or last) connection, if any.
        will: Option<LastWill>,
        /// True while a client is connected to the session. A session restored with
        /// `connected == true` lost its connection in a crash: its will is due.
        connected: bool,
    },
    /// A session ended (clean start, expiry, or it became non-persistent): its subscriptions,
    /// messages and QoS 2 state go with it.
    SessionDelete {
        /// Client identifier.
        client_id: Arc<str>,
    },
    /// A subscription of a persistent session was added or replaced.
    SubscriptionPut {
        /// Client identifier.
        client_id: Arc<str>,
        /// The filter exactly as subscribed (including any `$share/group/` prefix).
        filter: String,
        /// Granted options and identifier.
        subscription: Subscription,
    },
    /// A subscription of a persistent session was removed.
    SubscriptionDelete {
        /// Client identifier.
        client_id: Arc<str>,
        /// The filter exactly as subscribed.
        filter: String,
    },
    /// An outgoing QoS 1/2 message of a persistent session was queued, or its state changed.
    /// `seq` orders a session's messages and identifies one across changes.
    MessagePut {
        /// Client identifier.
        client_id: Arc<str>,
        /// Per-session sequence number, increasing in delivery order.
        seq: u64,
        /// The message as it will be delivered (QoS, RETAIN and identifiers already set).
        message: Message,
        /// Where it stands.
        state: MessageState,
    },
    /// An outgoing message of a persistent session was completed, dropped or expired.
    MessageDelete {
        /// Client identifier.
        client_id: Arc<str>,
        /// Its sequence number.
        seq: u64,
    },
    /// An incoming QoS 2 packet id is awaiting PUBREL (exactly-once state).
    Qos2ReceivedPut {
        /// Client identifier.
        client_id: Arc<str>,
        /// The packet id.
        packet_id: PacketId,
    },
    /// The incoming QoS 2 flow with this packet id completed.
    Qos2ReceivedDelete {
        /// Client identifier.
        client_id: Arc<str>,
        /// The packet id.
        packet_id: PacketId,
    },
}

/// A persistent session as it survived a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredSession {
    /// Client identifier.
    pub client_id: Arc<str>,
    /// Session Expiry Interval in seconds.
    pub expiry_interval: u32,
    /// When the session expires (`None`: never); the storage layer computes it from the
    /// wall-clock time the session went offline. For a session with `was_connected`, `None`
    /// means "its interval after the restore" (the connection is lost then).
    pub expires_at: Option<Instant>,
    /// The last connection's will: for an offline session, one still waiting for its Will
    /// Delay Interval (counted from when the session went offline, as derived from
    /// `expires_at`, or from the restore if that is unknown).
    pub will: Option<LastWill>,
    /// True if a client was connected when the broker stopped: the will is due now
    /// (after its Will Delay Interval).
    pub was_connected: bool,
    /// Subscriptions by filter.
    pub subscriptions: Vec<(String, Subscription)>,
    /// Outgoing QoS 1/2 messages in `seq` order: `Sent`/`Released` ones are re-sent (DUP=1)
    /// or re-released on resume, in that order, before the `Queued` ones.
    pub messages: Vec<(u64, Message, MessageState)>,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub qos2_received: Vec<PacketId>,
}

/// Everything durable, as read back after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// Retained messages by topic.
    pub retained: Vec<(Arc<str>, Message)>,
    /// Persistent sessions.
    pub sessions: Vec<RestoredSession>,
}

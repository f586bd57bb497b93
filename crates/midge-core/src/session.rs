//! Session state: everything that outlives a network connection (MQTT 4.1).

use crate::event::ConnId;
use crate::hash::IntSet;
use crate::inflight::Inflight;
use crate::offline_queue::MessageQueue;
use crate::on_demand::OnDemand;
use crate::replay::RetainedReplay;
use crate::shared_seqs::SharedSeqs;
use midge_codec::{LastWill, PacketId, SubscriptionOptions};
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Session Expiry Interval meaning "never expires".
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// One subscription of a session, as granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// Options with the granted QoS.
    pub options: SubscriptionOptions,
    /// v5 Subscription Identifier given with the SUBSCRIBE.
    pub identifier: Option<u32>,
}

/// A will waiting for its Will Delay Interval after the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWill {
    /// The will.
    pub will: LastWill,
    /// When to publish it.
    pub due: Instant,
}

/// An MQTT session, keyed by client identifier.
#[derive(Debug)]
pub struct Session {
    /// Client identifier.
    pub client_id: Arc<str>,
    /// Unique number of this session instance (slots are reused; timers check this).
    pub serial: u64,
    /// The connection using the session, if any (connection ids start at 1; see
    /// [`Session::conn_id`]). 8 bytes where `Option<ConnId>` takes 16.
    pub conn: Option<NonZeroU64>,
    /// Session Expiry Interval in seconds ([`NEVER_EXPIRES`] for never).
    pub expiry_interval: u32,
    /// When an offline session expires.
    pub expires_at: Option<Instant>,
    /// Subscriptions by the filter exactly as subscribed (including any `$share/` prefix).
    pub subscriptions: OnDemand<HashMap<String, Subscription>>,
    /// Outgoing QoS 1/2 messages not yet completed.
    pub inflight: Inflight,
    /// Incoming QoS 2 packet ids for which PUBREC was sent and PUBREL not yet received.
    pub awaiting_pubrel: OnDemand<IntSet<PacketId>>,
    /// Messages waiting for the client (offline, or beyond the inflight window).
    pub queue: MessageQueue,
    /// A will waiting for its delay after the connection ended. Boxed: most sessions have
    /// none, and every session would otherwise carry its size.
    pub pending_will: Option<Box<PendingWill>>,
    /// Sequence number of the next message delivered to the session (queued or in flight).
    pub next_seq: u64,
    /// Retained messages owed for new subscriptions, sent as the client's window allows.
    /// In memory only: after a broker restart a client resubscribes to get them.
    pub replay: RetainedReplay,
    /// The user name its client connected with (for access checks).
    pub username: Option<Arc<str>>,
    /// False for a session restored from storage until its client connects again: its
    /// identity is unknown, so access checks on its messages wait until then.
    pub identity_known: bool,
    /// QoS 1/2 messages (by seq) this session got as a member of a `$share` group, with the
    /// group's `{group}/{filter}` name: if the session ends before they complete, another
    /// member gets them (MQTT 4.8.2). In memory only.
    pub shared_seqs: SharedSeqs,
}

// Every client has one, connected or not. What few use is boxed (see `on_demand.rs`): the
// subscriptions, the QoS 2 ids awaiting PUBREL, the retained replay, the shared-message window
// and a pending will. The inflight window and the queue stay inline: every QoS 1 or 2 delivery
// reads both, and behind a box each would be one more pointer to follow per copy.
const _: () = assert!(std::mem::size_of::<Session>() <= 224);

impl Session {
    /// A fresh, empty session.
    pub fn new(client_id: Arc<str>, serial: u64, expiry_interval: u32) -> Session {
        Session {
            client_id,
            serial,
            conn: None,
            expiry_interval,
            expires_at: None,
            subscriptions: OnDemand::default(),
            inflight: Inflight::default(),
            awaiting_pubrel: OnDemand::default(),
            queue: MessageQueue::default(),
            pending_will: None,
            next_seq: 0,
            replay: RetainedReplay::default(),
            username: None,
            identity_known: false,
            shared_seqs: SharedSeqs::default(),
        }
    }

    /// True if the session outlives its connection (Session Expiry Interval > 0), so its
    /// state is durable when the broker persists.
    pub fn is_persistent(&self) -> bool {
        self.expiry_interval > 0
    }

    /// A new sequence number for a message delivered to the session.
    pub fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// True while a connection uses the session.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The connection using the session, if any.
    pub fn conn_id(&self) -> Option<ConnId> {
        self.conn.map(NonZeroU64::get)
    }

    /// Detaches the session from its connection, returning the connection's id.
    pub fn take_conn(&mut self) -> Option<ConnId> {
        self.conn.take().map(NonZeroU64::get)
    }

    /// When the session expires if it goes offline at `now` (`None`: never).
    pub fn expiry_deadline(&self, now: Instant) -> Option<Instant> {
        if self.expiry_interval == NEVER_EXPIRES {
            return None;
        }
        now.checked_add(Duration::from_secs(u64::from(self.expiry_interval)))
    }
}

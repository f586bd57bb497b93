//! The durable state a stream of `DurableOp`s describes: a reducer a storage layer (or a test)
//! folds ops into, then hands to `Broker::restore` as a [`RestoredState`].

use crate::durable::{DurableOp, MessageState, RestoredSession, RestoredState};
use crate::message::Message;
use crate::session::{Subscription, NEVER_EXPIRES};
use midge_codec::{LastWill, PacketId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One persistent session as the ops describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SessionRecord {
    expiry_interval: u32,
    expires_at: Option<Instant>,
    will: Option<LastWill>,
    connected: bool,
    subscriptions: BTreeMap<String, Subscription>,
    messages: BTreeMap<u64, (Message, MessageState)>,
    qos2_received: BTreeSet<PacketId>,
}

impl SessionRecord {
    fn new(expiry_interval: u32) -> SessionRecord {
        SessionRecord {
            expiry_interval,
            expires_at: None,
            will: None,
            connected: false,
            subscriptions: BTreeMap::new(),
            messages: BTreeMap::new(),
            qos2_received: BTreeSet::new(),
        }
    }
}

/// Retained messages and persistent sessions, kept up to date by applying every
/// `Action::Persist` op in order: the in-memory model of what a storage layer stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableState {
    retained: BTreeMap<Arc<str>, Message>,
    sessions: BTreeMap<Arc<str>, SessionRecord>,
}

impl DurableState {
    /// Nothing stored.
    pub fn new() -> DurableState {
        DurableState::default()
    }

    /// Applies one change. `now` is when it happened: a session persisted as offline expires
    /// its Session Expiry Interval after the change that took it offline (later changes to an
    /// offline session with the same interval keep that deadline). Ops about a session that
    /// does not exist (other than `SessionPut`) are ignored.
    pub fn apply(&mut self, now: Instant, op: DurableOp) {
        match op {
            DurableOp::RetainedSet { topic, message } => {
                self.retained.insert(topic, message);
            }
            DurableOp::RetainedClear { topic } => {
                self.retained.remove(&topic);
            }
            DurableOp::SessionPut {
                client_id,
                expiry_interval,
                will,
                connected,
            } => {
                let record = self
                    .sessions
                    .entry(client_id)
                    .or_insert_with(|| SessionRecord::new(expiry_interval));
                let stays_offline = !connected
                    && !record.connected
                    && record.expires_at.is_some()
                    && record.expiry_interval == expiry_interval;
                if connected {
                    record.expires_at = None;
                } else if !stays_offline {
                    record.expires_at = expiry_deadline(now, expiry_interval);
                }
                record.expiry_interval = expiry_interval;
                record.will = will;
                record.connected = connected;
            }
            DurableOp::SessionDelete { client_id } => {
                self.sessions.remove(&client_id);
            }
            DurableOp::SubscriptionPut {
                client_id,
                filter,
                subscription,
            } => {
                if let Some(record) = self.sessions.get_mut(&client_id) {
                    record.subscriptions.insert(filter, subscription);
                }
            }
            DurableOp::SubscriptionDelete { client_id, filter } => {
                if let Some(record) = self.sessions.get_mut(&client_id) {
                    record.subscriptions.remove(&filter);
                }
            }
            DurableOp::MessagePut {
                client_id,
                seq,
                message,
                state,
            } => {
                if let Some(record) = self.sessions.get_mut(&client_id) {
                    record.messages.insert(seq, (message, state));
                }
            }
            DurableOp::MessageDelete { client_id, seq } => {
                if let Some(record) = self.sessions.get_mut(&client_id) {
                    record.messages.remove(&seq);
                }
            }
            DurableOp::Qos2ReceivedPut {
                client_id,
                packet_id,
            } => {
                if let Some(record) = self.sessions.get_mut(&client_id) {
                    record.qos2_received.insert(packet_id);
                }
            }
            DurableOp::Qos2ReceivedDelete {
                client_id,
                packet_id,
            } => {
                if let Some(record) = self.sessions.get_mut(&client_id) {
                    record.qos2_received.remove(&packet_id);
                }
            }
        }
    }

    /// Number of retained messages.
    pub fn retained_len(&self) -> usize {
        self.retained.len()
    }

    /// Number of persistent sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The state in the form `Broker::restore` takes (topics and client ids in order,
    /// messages in `seq` order).
    pub fn into_restored(self) -> RestoredState {
        RestoredState {
            retained: self.retained.into_iter().collect(),
            sessions: self
                .sessions
                .into_iter()
                .map(|(client_id, r)| RestoredSession {
                    client_id,
                    expiry_interval: r.expiry_interval,
                    expires_at: r.expires_at,
                    will: r.will,
                    was_connected: r.connected,
                    subscriptions: r.subscriptions.into_iter().collect(),
                    messages: r
                        .messages
                        .into_iter()
                        .map(|(seq, (message, state))| (seq, message, state))
                        .collect(),
                    qos2_received: r.qos2_received.into_iter().collect(),
                })
                .collect(),
        }
    }
}

impl From<RestoredState> for DurableState {
    /// Takes up a state read back from storage (e.g. a snapshot) to apply later ops to.
    fn from(state: RestoredState) -> DurableState {
        DurableState {
            retained: state.retained.into_iter().collect(),
            sessions: state
                .sessions
                .into_iter()
                .map(|s| {
                    let record = SessionRecord {
                        expiry_interval: s.expiry_interval,
                        expires_at: s.expires_at,
                        will: s.will,
                        connected: s.was_connected,
                        subscriptions: s.subscriptions.into_iter().collect(),
                        messages: s
                            .messages
                            .into_iter()
                            .map(|(seq, message, state)| (seq, (message, state)))
                            .collect(),
                        qos2_received: s.qos2_received.into_iter().collect(),
                    };
                    (s.client_id, record)
                })
                .collect(),
        }
    }
}

/// When a session going offline at `now` expires (`None`: never).
fn expiry_deadline(now: Instant, expiry_interval: u32) -> Option<Instant> {
    if expiry_interval == NEVER_EXPIRES {
        return None;
    }
    now.checked_add(Duration::from_secs(u64::from(expiry_interval)))
}

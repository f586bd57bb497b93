//! Rebuilding the broker's durable state after a restart (`Broker::restore`).

use crate::offline_queue::QueueLimits;
use crate::session::{PendingWill, Session, NEVER_EXPIRES};
use crate::will::will_delay;
use crate::{Broker, MessageState, RestoredSession, RestoredState};
use midge_codec::topic::is_valid_topic_filter;
use std::time::{Duration, Instant};

impl Broker {
    /// Rebuilds retained messages and persistent sessions from `state`, on a broker that has
    /// handled no event yet. Sessions come back offline: their queued and in-flight messages
    /// are delivered when the client resumes (in flight ones first, re-sent with DUP=1 or as
    /// PUBREL). A session with `was_connected` lost its connection in the crash: its will is
    /// scheduled as for an abnormal close at `now`, and its `SessionPut` (connected = false)
    /// is emitted on the first Tick. Sessions already expired are removed, and persisted as
    /// deleted, on the first Tick. Emits nothing.
    pub fn restore(&mut self, now: Instant, state: RestoredState) {
        for (topic, mut message) in state.retained {
            message.publish.topic = topic;
            self.retained.set(message);
        }
        for session in state.sessions {
            self.restore_session(now, session);
        }
    }

    pub(crate) fn restore_session(&mut self, now: Instant, r: RestoredSession) {
        if r.expiry_interval == 0 || self.sessions.find(&r.client_id).is_some() {
            return;
        }
        let serial = self.sessions.next_serial();
        let mut session = Session::new(r.client_id, serial, r.expiry_interval);
        let mut messages = r.messages;
        messages.sort_by_key(|(seq, _, _)| *seq);
        for (seq, mut message, state) in messages {
            match state {
                MessageState::Queued => {
                    message.publish.packet_id = None;
                    session.queue.push(seq, message, QueueLimits::NONE);
                }
                MessageState::Sent { packet_id } => {
                    message.publish.packet_id = Some(packet_id);
                    message.publish.dup = false;
                    session.inflight.insert(packet_id, seq, message);
                }
                MessageState::Released { packet_id } => {
                    session.inflight.insert_released(packet_id, seq);
                }
            }
            session.next_seq = session.next_seq.max(seq.saturating_add(1));
        }
        if !r.qos2_received.is_empty() {
            session.awaiting_pubrel.make_mut().extend(r.qos2_received);
        }

        // A connection lost in the crash counts as lost now, unless storage knows better.
        let expires_at = if r.was_connected {
            r.expires_at.or_else(|| session.expiry_deadline(now))
        } else {
            r.expires_at
        };
        session.expires_at = expires_at;
        if let Some(will) = r.will {
            let lost_at = if r.was_connected {
                now
            } else {
                offline_since(expires_at, r.expiry_interval).unwrap_or(now)
            };
            let mut due = lost_at
                .checked_add(Duration::from_secs(u64::from(will_delay(&will))))
                .unwrap_or(now);
            if let Some(at) = expires_at {
                due = due.min(at);
            }
            session.pending_will = Some(Box::new(PendingWill { will, due }));
        }
        let due = session.pending_will.as_ref().map(|p| p.due);
        let idx = self.sessions.insert(session);
        if let Some(at) = expires_at {
            self.session_expiry.push(at, (idx, serial));
        }
        if let Some(due) = due {
            self.will_delays.push(due, (idx, serial));
        }
        if r.was_connected {
            self.restored_offline.push((idx, serial));
        }
        for (filter, subscription) in r.subscriptions {
            if is_valid_topic_filter(&filter) {
                self.add_subscription(idx, &filter, subscription);
            }
        }
    }
}

/// When an offline session expiring at `expires_at` went offline.
fn offline_since(expires_at: Option<Instant>, expiry_interval: u32) -> Option<Instant> {
    if expiry_interval == NEVER_EXPIRES {
        return None;
    }
    expires_at?.checked_sub(Duration::from_secs(u64::from(expiry_interval)))
}

//! Retained messages for new subscriptions (MQTT-3.3.1-9), handed out a window at a time.
//!
//! A wildcard subscription may match a million retained messages. Copying them all into the
//! session's queue (or onto the socket) at once would cost that much memory and, past the
//! queue limit, drop most of them. Instead each subscription keeps a cursor: the last topic
//! handed out. QoS 1 and 2 messages go out as the inflight window has room (resumed on every
//! acknowledgement); QoS 0 messages a batch at a time, resumed when the server reports that
//! the connection has written the previous batch (`Action::NotifyDrained`,
//! `Event::Drained`). The retained store may change in between: a message set meanwhile is
//! sent as it is now, one removed is not sent, and none is sent twice.

use crate::message::Message;
use crate::on_demand::OnDemand;
use crate::router::set_identifiers;
use crate::session_store::SessionIdx;
use crate::{Action, Broker};
use midge_codec::QoS;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::Instant;

/// QoS 0 retained messages handed to a connection before waiting for it to drain.
pub(crate) const QOS0_BATCH: usize = 512;

/// One new subscription's retained messages still to send.
#[derive(Debug)]
struct Pending {
    filter: Box<str>,
    granted: QoS,
    identifier: Option<u32>,
    /// The last topic handed out (or skipped); the next batch starts after it.
    after: Option<Box<str>>,
}

/// The retained messages a session still owes its client, oldest subscription first. Only a
/// session in the middle of a replay (or waiting for its last batch to drain) holds a box.
#[derive(Debug, Default)]
pub struct RetainedReplay(OnDemand<Owed>);

/// What a replay in progress keeps.
#[derive(Debug, Default)]
struct Owed {
    pending: VecDeque<Pending>,
    /// A `NotifyDrained` is outstanding: QoS 0 messages wait for its `Event::Drained`.
    awaiting_drain: bool,
}

impl RetainedReplay {
    /// True when nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.0.get().is_none_or(|owed| owed.pending.is_empty())
    }

    /// The connection went away: an outstanding `NotifyDrained` will never be answered.
    pub(crate) fn connection_ended(&mut self) {
        if let Some(owed) = self.0.get_mut() {
            owed.awaiting_drain = false;
        }
        self.release_if_done();
    }

    /// Frees the box once nothing is owed or awaited.
    fn release_if_done(&mut self) {
        if self
            .0
            .get()
            .is_some_and(|owed| owed.pending.is_empty() && !owed.awaiting_drain)
        {
            self.0.clear();
        }
    }

    /// Owes the client the retained messages matching `filter`.
    pub(crate) fn push(&mut self, filter: &str, granted: QoS, identifier: Option<u32>) {
        self.0.make_mut().pending.push_back(Pending {
            filter: filter.into(),
            granted,
            identifier,
            after: None,
        });
    }
}

impl Broker {
    /// Hands the client of session `idx` as many owed retained messages as its window allows
    /// right now. Called after a SUBSCRIBE, an acknowledgement, a session resuming and a
    /// connection having drained.
    pub(crate) fn pump_replay(&mut self, now: Instant, idx: SessionIdx, out: &mut Vec<Action>) {
        let Some(session) = self.sessions.get(idx) else {
            return;
        };
        let Some(conn) = session.conn_id().and_then(|c| self.conns.get(&c)) else {
            return;
        };
        let Some(owed) = session.replay.0.get() else {
            return;
        };
        let conn_id = conn.id;
        // QoS 1/2 only into free inflight slots, and not past live messages already queued.
        let mut window = if session.queue.is_empty() {
            usize::from(conn.window).saturating_sub(session.inflight.len())
        } else {
            0
        };
        let mut qos0_budget = if owed.awaiting_drain { 0 } else { QOS0_BATCH };
        let mut batch = Vec::new();
        let mut finished = 0;
        let mut qos0_full = false;
        let mut stopped_after = None;
        for pending in &owed.pending {
            let mut last: Option<Box<str>> = None;
            let flow = self.retained.for_each_match_after(
                &pending.filter,
                pending.after.as_deref(),
                now,
                |topic, m| {
                    let qos = m.publish.qos.min(pending.granted);
                    let budget = if qos == QoS::AtMostOnce {
                        &mut qos0_budget
                    } else {
                        &mut window
                    };
                    if *budget == 0 {
                        qos0_full |= qos == QoS::AtMostOnce;
                        return ControlFlow::Break(());
                    }
                    last = Some(topic.into());
                    if !self.may_receive(idx, topic) {
                        return ControlFlow::Continue(());
                    }
                    *budget -= 1;
                    // Sent because of a new subscription: RETAIN=1 (v5 3.3.1.3; MQTT-3.3.1-8
                    // in 3.1.1), QoS min(stored, granted).
                    let mut publish = m.publish.clone();
                    publish.qos = qos;
                    publish.retain = true;
                    set_identifiers(&mut publish, pending.identifier.into_iter().collect());
                    batch.push(Message {
                        publish,
                        expires_at: m.expires_at,
                    });
                    ControlFlow::Continue(())
                },
            );
            if flow.is_continue() {
                finished += 1;
                continue;
            }
            // Stopped inside this subscription: the next batch resumes after `last`.
            stopped_after = Some(last);
            break;
        }
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        if let Some(owed) = session.replay.0.get_mut() {
            owed.pending.drain(..finished);
            if let (Some(Some(last)), Some(cursor)) = (stopped_after, owed.pending.front_mut()) {
                cursor.after = Some(last);
            }
            if qos0_full && !owed.awaiting_drain {
                owed.awaiting_drain = true;
                out.push(Action::NotifyDrained { conn: conn_id });
            }
        }
        session.replay.release_if_done();
        for message in batch {
            self.deliver_to(now, idx, message, out);
        }
    }

    /// The connection wrote everything sent before its `NotifyDrained`: send the next batch.
    pub(crate) fn on_drained(&mut self, now: Instant, conn_id: u64, out: &mut Vec<Action>) {
        let Some(idx) = self.conns.get(&conn_id).map(|c| c.session) else {
            return;
        };
        if let Some(owed) = self
            .sessions
            .get_mut(idx)
            .and_then(|session| session.replay.0.get_mut())
        {
            owed.awaiting_drain = false;
        }
        self.pump_replay(now, idx, out);
    }
}

//! Moving a persistent session between nodes: the node that has it hands its state over as
//! durable ops (`Broker::hand_off`), the node its client now connects to adopts it
//! (`Broker::adopt`), and a node whose client id was claimed elsewhere lets go of it
//! (`Event::Claimed`).

use crate::inflight::InflightState;
use crate::message::Message;
use crate::session::Session;
use crate::will::will_delay;
use crate::{Action, Broker, DurableOp, MessageState, RestoredSession};
use midge_codec::{LastWill, Publish, QoS, ReasonCode};
use std::sync::Arc;
use std::time::Instant;

/// Stands for the message of a released QoS 2 flow, which only its packet id needs.
fn released_placeholder() -> Message {
    Message {
        publish: Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: Arc::from(""),
            packet_id: None,
            properties: Default::default(),
            payload: bytes::Bytes::new(),
        },
        expires_at: None,
    }
}

impl Broker {
    /// Another node takes the persistent session of `client_id` over: its connection here
    /// ends (v5 DISCONNECT 0x8E; a will without delay is published, a delayed one goes with
    /// the session and is cancelled by the resume), and its state leaves as the durable ops
    /// that rebuild it, without any durable change here (the new node writes it as its
    /// owner). `None` if no persistent session of that id is here.
    pub fn hand_off(
        &mut self,
        now: Instant,
        client_id: &str,
        out: &mut Vec<Action>,
    ) -> Option<Vec<DurableOp>> {
        let idx = self.sessions.find(client_id)?;
        if !self.sessions.get(idx)?.is_persistent() {
            return None;
        }
        let mut will = None;
        if let Some(conn_id) = self.sessions.get_mut(idx).and_then(Session::take_conn) {
            if let Some(conn) = self.conns.remove(&conn_id) {
                Self::send_disconnect(&conn, ReasonCode::SessionTakenOver, out);
                out.push(Action::Close { conn: conn_id });
                will = conn.will.map(|w| *w);
            }
        }
        if let Some(w) = will.take_if(|w| will_delay(w) == 0) {
            self.publish_will(now, Some(idx), w, out);
        }
        let session = self.sessions.get(idx)?;
        let client_id = session.client_id.clone();
        let will = will.or_else(|| session.pending_will.as_ref().map(|p| p.will.clone()));
        let mut ops = vec![DurableOp::SessionPut {
            client_id: client_id.clone(),
            expiry_interval: session.expiry_interval,
            will,
            connected: false,
        }];
        for (filter, subscription) in session.subscriptions.get().into_iter().flatten() {
            ops.push(DurableOp::SubscriptionPut {
                client_id: client_id.clone(),
                filter: filter.clone(),
                subscription: *subscription,
            });
        }
        for (seq, packet_id, state) in session.inflight.in_send_order() {
            let (message, state) = match state {
                InflightState::Published(m) => (m.clone(), MessageState::Sent { packet_id }),
                InflightState::Released => {
                    (released_placeholder(), MessageState::Released { packet_id })
                }
            };
            ops.push(DurableOp::MessagePut {
                client_id: client_id.clone(),
                seq,
                message,
                state,
            });
        }
        for (seq, message) in session.queue.iter_with_seq() {
            ops.push(DurableOp::MessagePut {
                client_id: client_id.clone(),
                seq,
                message: message.clone(),
                state: MessageState::Queued,
            });
        }
        for &packet_id in session.awaiting_pubrel.get().into_iter().flatten() {
            ops.push(DurableOp::Qos2ReceivedPut {
                client_id: client_id.clone(),
                packet_id,
            });
        }
        self.remove_session(idx);
        self.flush_routes(out);
        Some(ops)
    }

    /// Takes over `session`, handed over by another node or read from the store after its
    /// node is gone, as an offline session about to be resumed. False (and nothing changes)
    /// if a session with its client id is already here.
    pub fn adopt(&mut self, now: Instant, session: RestoredSession) -> bool {
        if self.sessions.find(&session.client_id).is_some() {
            return false;
        }
        self.restore_session(now, session);
        true
    }

    /// Takes over the sessions of a node that is gone (this node leads the Raft group): each
    /// comes back offline, written as this node's; a will of a session whose client was
    /// connected to the dead node is published after its delay, as after a crash. Returns how
    /// many were adopted (sessions already here are skipped).
    pub fn adopt_orphans(
        &mut self,
        now: Instant,
        sessions: Vec<RestoredSession>,
        out: &mut Vec<Action>,
    ) -> usize {
        let mut adopted = 0;
        for session in sessions {
            let client_id = session.client_id.clone();
            if !self.adopt(now, session) {
                continue;
            }
            if let Some(idx) = self.sessions.find(&client_id) {
                self.persist_session(idx, out);
                adopted += 1;
            }
        }
        self.flush_routes(out);
        adopted
    }

    /// A client with `client_id` connected to another node: its connection here ends as on a
    /// takeover (v5 DISCONNECT 0x8E; the will is published, unless the session is resumed
    /// there and the will has a delay), and its session here is let go. Only a clean start
    /// elsewhere that keeps no session there deletes the stored one (a persistent session
    /// there, or a resumed one, is the other node's to write).
    pub(crate) fn on_claimed(
        &mut self,
        now: Instant,
        client_id: &str,
        clean_start: bool,
        persistent: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(idx) = self.sessions.find(client_id) else {
            return;
        };
        let mut wills: Vec<LastWill> = Vec::new();
        if let Some(conn_id) = self.sessions.get_mut(idx).and_then(Session::take_conn) {
            if let Some(conn) = self.conns.remove(&conn_id) {
                Self::send_disconnect(&conn, ReasonCode::SessionTakenOver, out);
                out.push(Action::Close { conn: conn_id });
                wills.extend(
                    conn.will
                        .map(|w| *w)
                        .filter(|w| clean_start || will_delay(w) == 0),
                );
            }
        }
        let Some(old) = self.remove_session(idx) else {
            return;
        };
        if clean_start {
            // The session ends: a will still waiting for its delay goes out (MQTT-3.1.2-8).
            wills.extend(old.pending_will.as_ref().map(|p| p.will.clone()));
        }
        for will in wills {
            self.publish_will(now, None, will, out);
        }
        if clean_start && !persistent {
            self.persist_session_delete(&old, out);
        }
    }
}

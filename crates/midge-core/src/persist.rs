//! Emitting changes to durable state (`Action::Persist`) and choosing which acknowledgements
//! must wait for them (`Action::SendDurable`).
//!
//! Every helper here is a no-op unless `BrokerConfig::durable` is set, and only persistent
//! sessions (Session Expiry Interval > 0) are ever persisted, so the clean-session and QoS 0
//! paths pay one branch at most.

use crate::event::ConnId;
use crate::session::Session;
use crate::session_store::SessionIdx;
use crate::{Action, Broker, DurableOp};
use midge_codec::Packet;

impl Broker {
    /// Emits `op` as `Action::Persist`.
    pub(crate) fn persist(&mut self, op: DurableOp, out: &mut Vec<Action>) {
        self.counters.persisted += 1;
        out.push(Action::Persist(Box::new(op)));
    }

    /// True if a `Persist` was emitted during the current `handle` call.
    pub(crate) fn persisted_in_call(&self) -> bool {
        self.counters.persisted != self.persist_mark
    }

    /// An acknowledgement for `conn`: `SendDurable` when it follows a `Persist` of the same
    /// `handle` call, or acknowledges a persistent session's request (`persistent`) while
    /// durability is on; `Send` otherwise.
    pub(crate) fn ack_action(&self, conn: ConnId, packet: Packet, persistent: bool) -> Action {
        if self.persisted_in_call() || (persistent && self.config.durable) {
            Action::SendDurable { conn, packet }
        } else {
            Action::Send { conn, packet }
        }
    }

    /// Emits `SessionPut` with the current state of the session in slot `idx` (connected or
    /// not, with the live connection's will or the will still waiting for its delay), if it
    /// persists.
    pub(crate) fn persist_session(&mut self, idx: SessionIdx, out: &mut Vec<Action>) {
        let Some(session) = self.sessions.get(idx) else {
            return;
        };
        if !self.config.durable || !session.is_persistent() {
            return;
        }
        let (connected, will) = match session.conn_id().and_then(|c| self.conns.get(&c)) {
            Some(conn) => (true, conn.will.as_deref().cloned()),
            None => (false, session.pending_will.as_ref().map(|p| p.will.clone())),
        };
        let op = DurableOp::SessionPut {
            client_id: session.client_id.clone(),
            expiry_interval: session.expiry_interval,
            will,
            connected,
        };
        self.persist(op, out);
    }

    /// Emits `SessionDelete` for `session`, which has ended or stopped being persistent, if it
    /// was persisted.
    pub(crate) fn persist_session_delete(&mut self, session: &Session, out: &mut Vec<Action>) {
        if self.config.durable && session.is_persistent() {
            let op = DurableOp::SessionDelete {
                client_id: session.client_id.clone(),
            };
            self.persist(op, out);
        }
    }
}

//! Access control seam: which topics a client may publish to, subscribe to and receive.
//!
//! The policy itself (Mosquitto ACL files and the like) lives outside the core; the core asks
//! an [`Authorizer`] at the points MQTT needs an answer and applies the reason codes:
//! - PUBLISH: v5 PUBACK / PUBREC 0x87 Not authorized; v3 acknowledges and drops the message,
//!   as Mosquitto does (v3 has no way to say no). A denied message is neither routed nor
//!   retained.
//! - SUBSCRIBE: SUBACK 0x87 for that filter (v3: 0x80).
//! - Delivery: every live, queued and retained message is checked against the receiving
//!   session's identity right before it is handed over, so a subscribe-deny also hides
//!   retained replay, and a policy reloaded at run time applies to queued messages too.
//! - The will: a CONNECT whose will topic may not be published is refused (0x87 / rc 5).

use crate::dropped::DropReason;
use crate::event::ConnId;
use crate::session_store::SessionIdx;
use crate::Broker;
use std::cell::Cell;
use std::sync::Arc;

/// Who is asking, as the core knows the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity<'a> {
    /// The client identifier (assigned ones included).
    pub client_id: &'a str,
    /// The user name given in CONNECT (or taken from the client certificate), if any.
    pub username: Option<&'a str>,
}

/// A topic access policy. Called under the broker's lock on every check, so it must be quick
/// and must not block.
pub trait Authorizer: Send + Sync {
    /// May `who` publish to `topic`?
    fn can_publish(&self, who: &ClientIdentity<'_>, topic: &str) -> bool;
    /// May `who` subscribe to `filter` (as subscribed, `$share/` prefix removed)?
    fn can_subscribe(&self, who: &ClientIdentity<'_>, filter: &str) -> bool;
    /// May `who` receive a message published to `topic` (live, queued or retained)?
    fn can_receive(&self, who: &ClientIdentity<'_>, topic: &str) -> bool;
}

/// How often the policy said no, by kind of check.
#[derive(Debug, Default)]
pub(crate) struct AccessCounters {
    pub(crate) publish_denied: u64,
    pub(crate) subscribe_denied: u64,
    /// A `Cell` because delivery checks run where the broker is only borrowed shared.
    pub(crate) delivery_denied: Cell<u64>,
    pub(crate) connect_denied: u64,
}

impl Broker {
    /// Installs (or, with `None`, removes) the access policy. Takes effect for the next check,
    /// so a reloaded ACL applies to connected clients and queued messages at once.
    pub fn set_authorizer(&mut self, authorizer: Option<Arc<dyn Authorizer>>) {
        self.authorizer = authorizer;
    }

    /// Whether the session in slot `idx` may receive a message on `topic`. A session restored
    /// from storage whose client has not reconnected yet has no known identity: its messages
    /// are kept and checked when the client is back (see [`Broker::drop_forbidden_queued`]).
    pub(crate) fn may_receive(&self, idx: SessionIdx, topic: &str) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let Some(session) = self.sessions.get(idx) else {
            return true;
        };
        if !session.identity_known {
            return true;
        }
        let who = ClientIdentity {
            client_id: &session.client_id,
            username: session.username.as_deref(),
        };
        let allowed = authorizer.can_receive(&who, topic);
        if !allowed {
            let denied = &self.access_counters.delivery_denied;
            denied.set(denied.get() + 1);
        }
        allowed
    }

    /// Asks the policy about connection `conn`'s client: true without a policy, false for an
    /// unknown connection.
    fn ask_for_conn(
        &self,
        conn: ConnId,
        ask: impl FnOnce(&dyn Authorizer, &ClientIdentity<'_>) -> bool,
    ) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let who = ClientIdentity {
            client_id: &c.client_id,
            username: self
                .sessions
                .get(c.session)
                .and_then(|s| s.username.as_deref()),
        };
        ask(authorizer.as_ref(), &who)
    }

    /// Whether connection `conn` may publish to `topic` (counted when not).
    pub(crate) fn may_publish(&mut self, conn: ConnId, topic: &str) -> bool {
        let allowed = self.ask_for_conn(conn, |a, who| a.can_publish(who, topic));
        self.access_counters.publish_denied += u64::from(!allowed);
        allowed
    }

    /// Whether connection `conn` may subscribe to `filter` (`$share/` prefix removed).
    pub(crate) fn may_subscribe(&mut self, conn: ConnId, filter: &str) -> bool {
        let allowed = self.ask_for_conn(conn, |a, who| a.can_subscribe(who, filter));
        self.access_counters.subscribe_denied += u64::from(!allowed);
        allowed
    }

    /// Whether a client connecting as `client_id` / `username` may leave a will on `topic`.
    pub(crate) fn may_leave_will(
        &mut self,
        client_id: &str,
        username: Option<&str>,
        topic: &str,
    ) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let allowed = authorizer.can_publish(
            &ClientIdentity {
                client_id,
                username,
            },
            topic,
        );
        if !allowed {
            self.access_counters.connect_denied += 1;
        }
        allowed
    }

    /// Drops the queued messages of the session in slot `idx` that its (now known) identity
    /// may not receive; called when a client resumes its session, before anything queued is
    /// sent.
    pub(crate) fn drop_forbidden_queued(
        &mut self,
        now: std::time::Instant,
        idx: SessionIdx,
        out: &mut Vec<crate::Action>,
    ) {
        if self.authorizer.is_none() {
            return;
        }
        let Some(session) = self.sessions.get(idx) else {
            return;
        };
        let forbidden: Vec<u64> = session
            .queue
            .iter_with_seq()
            .filter(|(_, m)| !self.may_receive(idx, &m.publish.topic))
            .map(|(seq, _)| seq)
            .collect();
        if forbidden.is_empty() {
            return;
        }
        let mut ob = Self::outbox(now, out, &mut self.counters, &self.config);
        if let Some(session) = self.sessions.get_mut(idx) {
            for seq in forbidden {
                if session.queue.remove_seq(seq) {
                    ob.counters.drop_message(DropReason::NotAuthorized);
                    session.forget_message(seq, &mut ob);
                }
            }
        }
    }
}

//! A `$share` member whose session ends with QoS 1/2 messages of the group unacknowledged:
//! they go to another member of the group, on this node or, in a cluster, on a peer holding
//! members (MQTT 4.8.2: "If the Client's Session terminates before the Client reconnects, the
//! Server SHOULD send the Application Message to another Client that is subscribed to the
//! same Shared Subscription").

use crate::inflight::InflightState;
use crate::message::Message;
use crate::router::set_identifiers;
use crate::session::Session;
use crate::session_store::SessionIdx;
use crate::{Action, Broker};
use std::sync::Arc;
use std::time::Instant;

impl Broker {
    /// Delivers `message` to `session` as a member of shared group `name`, remembering the
    /// group of a QoS 1/2 message until it completes.
    pub(crate) fn deliver_shared(
        &mut self,
        now: Instant,
        session: SessionIdx,
        name: Arc<str>,
        message: Message,
        out: &mut Vec<Action>,
    ) {
        let before = self.sessions.get(session).map(|s| s.next_seq);
        self.deliver_to(now, session, message, out);
        if let (Some(seq), Some(s)) = (before, self.sessions.get_mut(session)) {
            if s.next_seq != seq {
                s.shared_seqs.insert(seq, name);
            }
        }
    }

    /// `old` ended (and left its groups) with group messages not completed: each goes to
    /// another member, as if it were published again for that group only.
    pub(crate) fn redeliver_shared(&mut self, now: Instant, old: &Session, out: &mut Vec<Action>) {
        if old.shared_seqs.is_empty() {
            return;
        }
        let mut owed: Vec<(u64, Arc<str>, Message)> = Vec::new();
        for (seq, _, state) in old.inflight.in_send_order() {
            if let (Some(group), InflightState::Published(m)) = (old.shared_seqs.get(seq), state) {
                owed.push((seq, group.clone(), m.clone()));
            }
        }
        for (seq, m) in old.queue.iter_with_seq() {
            if let Some(group) = old.shared_seqs.get(seq) {
                owed.push((seq, group.clone(), m.clone()));
            }
        }
        owed.sort_by_key(|(seq, _, _)| *seq);
        for (_, group, mut message) in owed {
            message.publish.dup = false;
            message.publish.packet_id = None;
            self.redeliver_one(now, group, message, out);
        }
    }

    fn redeliver_one(
        &mut self,
        now: Instant,
        group: Arc<str>,
        message: Message,
        out: &mut Vec<Action>,
    ) {
        let sessions = &self.sessions;
        let picked = self.shared.pick_by_name(&group, |s| {
            sessions.get(s).is_some_and(Session::is_connected)
        });
        if let Some((session, entry)) = picked {
            let mut message = message;
            message.publish.qos = message.publish.qos.min(entry.qos);
            set_identifiers(&mut message.publish, entry.identifier.into_iter().collect());
            self.deliver_shared(now, session, group, message, out);
            return;
        }
        if let Some(node) = self.remote.holder_of(&group) {
            self.counters.forwarded += 1;
            out.push(Action::Forward {
                node,
                publish: message.publish,
                groups: vec![group],
                share_key: 0,
            });
        }
    }
}

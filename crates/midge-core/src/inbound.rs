//! PUBLISH and acknowledgements from a client (MQTT 3.3 - 3.7, 4.3).

use crate::event::ConnId;
use crate::inflight::PubRecOutcome;
use crate::topic_alias::AliasError;
use crate::{Action, Broker, DurableOp, MessageState};
use midge_codec::{Ack, AckKind, Packet, PacketId, Publish, QoS, ReasonCode};
use std::time::Instant;

fn ack_packet(kind: AckKind, packet_id: PacketId, reason: ReasonCode) -> Packet {
    let mut ack = Ack::new(kind, packet_id);
    ack.reason = reason;
    Packet::Ack(ack)
}

/// An acknowledgement; `durable` when it follows a `Persist` it must not overtake.
fn ack(
    conn: ConnId,
    kind: AckKind,
    packet_id: PacketId,
    reason: ReasonCode,
    durable: bool,
) -> Action {
    let packet = ack_packet(kind, packet_id, reason);
    if durable {
        Action::SendDurable { conn, packet }
    } else {
        Action::Send { conn, packet }
    }
}

impl Broker {
    /// A PUBLISH from a client: topic alias, capability checks, routing and acknowledgement.
    pub(crate) fn on_publish(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        mut publish: Publish,
        out: &mut Vec<Action>,
    ) {
        self.counters.count_received(&publish);
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let v5 = conn.is_v5();
        if v5 {
            if let Err(e) = conn
                .aliases_in
                .resolve(&mut publish, self.config.topic_alias_maximum)
            {
                let reason = match e {
                    AliasError::Invalid => ReasonCode::TopicAliasInvalid,
                    AliasError::Unknown => ReasonCode::ProtocolError,
                };
                return self.close_with(now, conn_id, reason, out);
            }
        }
        let idx = conn.session;
        // MQTT-3.3.4-6: a client must not send a Subscription Identifier; receiving one is a
        // Protocol Error.
        if !publish.properties.subscription_identifiers.is_empty() {
            return self.close_with(now, conn_id, ReasonCode::ProtocolError, out);
        }
        if publish.topic.is_empty() {
            return self.close_with(now, conn_id, ReasonCode::ProtocolError, out);
        }
        if publish.qos > self.config.maximum_qos {
            return self.close_with(now, conn_id, ReasonCode::QoSNotSupported, out);
        }
        if publish.retain && !self.config.retain_available {
            return self.close_with(now, conn_id, ReasonCode::RetainNotSupported, out);
        }
        // `$SYS` topics belong to the broker: a client's publish there is acknowledged (v5:
        // Not authorized) but never routed or retained. Other `$` topics are ordinary ones.
        let reserved = midge_codec::topic::is_sys_topic(&publish.topic);
        let no_match = |copies: usize| {
            if copies == 0 && v5 {
                ReasonCode::NoMatchingSubscribers
            } else {
                ReasonCode::Success
            }
        };
        // A publish the broker will not take: acknowledged with the reason (v5) or plainly
        // (v3, which has no way to say no), and dropped.
        // The guards and the access policy are asked first: a refused publish is not counted
        // against the retained limits.
        let refusal = if reserved || !self.may_publish(conn_id, &publish.topic) {
            Some(ReasonCode::NotAuthorized)
        } else if let Some(reason) = self.guard_publish(&publish.topic) {
            Some(reason)
        } else {
            self.publish_refusal(&publish)
        };
        let reserved = refusal.is_some();
        let refused = match refusal {
            Some(reason) if v5 => reason,
            _ => ReasonCode::Success,
        };
        let packet_id = match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => {
                if !reserved {
                    self.publish_message(now, Some(idx), publish, out);
                }
                return;
            }
            (_, Some(id)) => id,
            (_, None) => return self.close_with(now, conn_id, ReasonCode::ProtocolError, out),
        };
        if publish.qos == QoS::AtLeastOnce {
            let reason = if reserved {
                refused
            } else {
                no_match(self.publish_message(now, Some(idx), publish, out))
            };
            let packet = ack_packet(AckKind::PubAck, packet_id, reason);
            out.push(self.ack_action(conn_id, packet, false));
            return;
        }
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        if session
            .awaiting_pubrel
            .get()
            .is_some_and(|ids| ids.contains(&packet_id))
        {
            // Until PUBREL, a PUBLISH with the same id is acknowledged again but not delivered
            // onward a second time (MQTT-4.3.3-10 in v5; 4.3.3 Method B in 3.1.1).
            let packet = ack_packet(AckKind::PubRec, packet_id, ReasonCode::Success);
            out.push(self.ack_action(conn_id, packet, false));
            return;
        }
        if reserved {
            let packet = ack_packet(AckKind::PubRec, packet_id, refused);
            out.push(self.ack_action(conn_id, packet, false));
            return;
        }
        let awaiting = session.awaiting_pubrel.get().map_or(0, |ids| ids.len());
        if v5 && awaiting >= usize::from(self.config.receive_maximum) {
            self.guard_counters.receive_maximum_exceeded += 1;
            return self.close_with(now, conn_id, ReasonCode::ReceiveMaximumExceeded, out);
        }
        // Routed (and persisted) before the packet id is remembered: after a crash between
        // the two, the client's re-sent PUBLISH is routed again rather than lost.
        let copies = self.publish_message(now, Some(idx), publish, out);
        if let Some(session) = self.sessions.get_mut(idx) {
            session.awaiting_pubrel.make_mut().insert(packet_id);
            if self.config.durable && session.is_persistent() {
                let op = DurableOp::Qos2ReceivedPut {
                    client_id: session.client_id.clone(),
                    packet_id,
                };
                self.persist(op, out);
            }
        }
        let packet = ack_packet(AckKind::PubRec, packet_id, no_match(copies));
        out.push(self.ack_action(conn_id, packet, false));
    }

    /// Why a client's PUBLISH is refused, if it is: a retained publish over the retained
    /// store's limits gets 0x97 Quota exceeded.
    fn publish_refusal(&mut self, publish: &Publish) -> Option<ReasonCode> {
        if publish.retain && self.config.retain_available && self.refuse_retained(publish) {
            return Some(ReasonCode::QuotaExceeded);
        }
        None
    }

    /// PUBACK, PUBREC, PUBREL or PUBCOMP from a client.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        ack_in: Ack,
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns.get_mut(&conn_id) else {
            return;
        };
        let v5 = conn.is_v5();
        let Some(session) = self.sessions.get_mut(conn.session) else {
            return;
        };
        let id = ack_in.packet_id;
        let not_found = if v5 {
            ReasonCode::PacketIdentifierNotFound
        } else {
            ReasonCode::Success
        };
        let mark = self.persist_mark;
        let mut ob = Self::outbox(now, out, &mut self.counters, &self.config);
        let completed = match ack_in.kind {
            AckKind::PubAck => session.inflight.on_puback(id),
            AckKind::PubRec if v5 && ack_in.reason.is_error() => {
                // An error PUBREC ends the flow (MQTT-4.3.3-9 on the client side).
                session.inflight.on_pubrec_error(id)
            }
            AckKind::PubRec => {
                let reason = match session.inflight.on_pubrec(id) {
                    PubRecOutcome::Released { seq, message } => {
                        let state = MessageState::Released { packet_id: id };
                        session.persist_message(seq, &message, state, &mut ob);
                        ReasonCode::Success
                    }
                    PubRecOutcome::AlreadyReleased => ReasonCode::Success,
                    PubRecOutcome::Unknown => not_found,
                };
                // Not before the release is durable: a re-sent PUBLISH after a crash would be
                // a new message to a client that already completed the flow.
                let durable = ob.counters.persisted != mark;
                ob.out
                    .push(ack(conn_id, AckKind::PubRel, id, reason, durable));
                None
            }
            AckKind::PubComp => session.inflight.on_pubcomp(id),
            AckKind::PubRel => {
                // Forget the id and complete (MQTT-4.3.3-11); unknown ids get 0x92 in v5.
                let released = session
                    .awaiting_pubrel
                    .get_mut()
                    .is_some_and(|ids| ids.remove(&id));
                let reason = if released {
                    if session.persists(&ob) {
                        ob.persist(DurableOp::Qos2ReceivedDelete {
                            client_id: session.client_id.clone(),
                            packet_id: id,
                        });
                    }
                    ReasonCode::Success
                } else {
                    not_found
                };
                // Not before the id is forgotten durably: the client may reuse it at once,
                // and a restored broker still holding it would drop that new message.
                let durable = ob.counters.persisted != mark;
                ob.out
                    .push(ack(conn_id, AckKind::PubComp, id, reason, durable));
                None
            }
        };
        if let Some(seq) = completed {
            session.forget_message(seq, &mut ob);
            session.fill_window(conn, &mut ob);
            if !session.replay.is_empty() {
                let idx = conn.session;
                self.pump_replay(now, idx, out);
            }
        }
    }
}

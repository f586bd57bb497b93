//! PUBLISH and acknowledgements from a client (MQTT 3.3 - 3.7, 4.3).

use crate::event::ConnId;
use crate::inflight::PubRecOutcome;
use crate::topic_alias::AliasError;
use crate::{Action, Broker};
use midge_codec::{Ack, AckKind, Packet, PacketId, Publish, QoS, ReasonCode};
use std::time::Instant;

fn ack(conn: ConnId, kind: AckKind, packet_id: PacketId, reason: ReasonCode) -> Action {
    let mut ack = Ack::new(kind, packet_id);
    ack.reason = reason;
    Action::Send {
        conn,
        packet: Packet::Ack(ack),
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
        self.counters.received += 1;
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
        // Topics starting with `$` are reserved for the server: acknowledged, never routed
        // or retained.
        let reserved = publish.topic.starts_with('$');
        let no_match = |copies: usize| {
            if copies == 0 && v5 {
                ReasonCode::NoMatchingSubscribers
            } else {
                ReasonCode::Success
            }
        };
        let refused = if v5 {
            ReasonCode::NotAuthorized
        } else {
            ReasonCode::Success
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
            out.push(ack(conn_id, AckKind::PubAck, packet_id, reason));
            return;
        }
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        if session.awaiting_pubrel.contains(&packet_id) {
            // Until PUBREL, a PUBLISH with the same id is acknowledged again but not delivered
            // onward a second time (MQTT-4.3.3-10 in v5; 4.3.3 Method B in 3.1.1).
            out.push(ack(
                conn_id,
                AckKind::PubRec,
                packet_id,
                ReasonCode::Success,
            ));
            return;
        }
        if reserved {
            out.push(ack(conn_id, AckKind::PubRec, packet_id, refused));
            return;
        }
        if v5 && session.awaiting_pubrel.len() >= usize::from(self.config.receive_maximum) {
            return self.close_with(now, conn_id, ReasonCode::ReceiveMaximumExceeded, out);
        }
        session.awaiting_pubrel.insert(packet_id);
        let copies = self.publish_message(now, Some(idx), publish, out);
        out.push(ack(conn_id, AckKind::PubRec, packet_id, no_match(copies)));
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
        let freed = match ack_in.kind {
            AckKind::PubAck => session.inflight.on_puback(id),
            AckKind::PubRec if v5 && ack_in.reason.is_error() => {
                // An error PUBREC ends the flow (MQTT-4.3.3-9 on the client side).
                session.inflight.on_pubrec_error(id)
            }
            AckKind::PubRec => {
                let reason = match session.inflight.on_pubrec(id) {
                    PubRecOutcome::Released | PubRecOutcome::AlreadyReleased => ReasonCode::Success,
                    PubRecOutcome::Unknown => not_found,
                };
                out.push(ack(conn_id, AckKind::PubRel, id, reason));
                false
            }
            AckKind::PubComp => session.inflight.on_pubcomp(id),
            AckKind::PubRel => {
                // Forget the id and complete (MQTT-4.3.3-11); unknown ids get 0x92 in v5.
                let reason = if session.awaiting_pubrel.remove(&id) {
                    ReasonCode::Success
                } else {
                    not_found
                };
                out.push(ack(conn_id, AckKind::PubComp, id, reason));
                false
            }
        };
        if freed {
            let mut ob = Self::outbox(now, out, &mut self.counters, &self.config);
            session.fill_window(conn, &mut ob);
        }
    }
}

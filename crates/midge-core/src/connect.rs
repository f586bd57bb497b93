//! CONNECT: client identifier rules, takeover, clean start / resume, CONNACK (MQTT 3.1, 3.2).

use crate::connection::Connection;
use crate::event::{ConnId, EnhancedAuth};
use crate::session::{Session, NEVER_EXPIRES};
use crate::session_store::SessionIdx;
use crate::topic_alias::{InboundAliases, OutboundAliases};
use crate::will::will_delay;
use crate::{Action, Broker, DurableOp};
use midge_codec::{
    ConnAck, ConnAckProperties, Connect, LastWill, Packet, ProtocolVersion, QoS, ReasonCode,
};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;
use std::time::Instant;

/// Refuses a CONNECT: CONNACK with `reason` (mapped to a v3 return code by the codec), then
/// close (MQTT-3.2.2-7 in v5 numbering; MQTT-3.2.2-5 in 3.1.1).
fn refuse(conn: ConnId, reason: ReasonCode, out: &mut Vec<Action>) {
    out.push(Action::Send {
        conn,
        packet: Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties: Default::default(),
        }),
    });
    out.push(Action::Close { conn });
}

impl Broker {
    /// The server refused `connect` (authentication): CONNACK with `reason` in the client's
    /// protocol version, then close. A success `reason` would be a server bug; it becomes
    /// 0x87 Not authorized rather than letting the client in without a session.
    pub(crate) fn on_refuse(
        &mut self,
        conn: ConnId,
        _connect: &Connect,
        reason: ReasonCode,
        out: &mut Vec<Action>,
    ) {
        if self.conns.contains_key(&conn) {
            return;
        }
        let reason = if reason.is_error() {
            reason
        } else {
            ReasonCode::NotAuthorized
        };
        // The CONNACK is encoded in the connection's protocol version: v3 return code 4 for
        // 0x86, 5 for 0x87, and 3 (server unavailable) for refusals v3 has no code for (0x9F).
        refuse(conn, reason, out);
    }

    /// A CONNECT: refuse it, or take over / resume / create the session and send CONNACK
    /// followed by any re-sent and queued messages.
    pub(crate) fn on_connect(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        connect: Connect,
        auth: Option<EnhancedAuth>,
        out: &mut Vec<Action>,
    ) {
        if self.conns.contains_key(&conn_id) {
            // A second CONNECT is a Protocol Error (MQTT-3.1.0-2).
            self.close_with(now, conn_id, ReasonCode::ProtocolError, out);
            return;
        }
        let v5 = connect.protocol.is_v5();
        // An Authentication Method the server did not complete an exchange for is not
        // supported (MQTT-4.12.0-1).
        if v5 && connect.properties.authentication_method.is_some() && auth.is_none() {
            return refuse(conn_id, ReasonCode::BadAuthenticationMethod, out);
        }
        if let Some(will) = &connect.will {
            if will.qos > self.config.maximum_qos {
                return refuse(conn_id, ReasonCode::QoSNotSupported, out);
            }
            if will.retain && !self.config.retain_available {
                return refuse(conn_id, ReasonCode::RetainNotSupported, out);
            }
        }
        let (client_id, assigned) = match self.client_id_for(&connect) {
            Ok(id) => id,
            Err(reason) => return refuse(conn_id, reason, out),
        };
        if let Some(will) = &connect.will {
            // Mosquitto refuses a will the client could not publish itself.
            if !self.may_leave_will(&client_id, connect.username.as_deref(), &will.topic) {
                return refuse(conn_id, ReasonCode::NotAuthorized, out);
            }
        }

        let requested_expiry = match (v5, connect.clean_start) {
            (true, _) => connect.properties.session_expiry_interval.unwrap_or(0),
            (false, true) => 0,
            (false, false) => NEVER_EXPIRES,
        };
        let expiry = requested_expiry.min(self.config.max_session_expiry);

        let existing = self.sessions.find(&client_id);
        // A session past its expiry is gone even if no Tick has removed it yet.
        let resumes = existing.is_some_and(|idx| {
            !connect.clean_start
                && self
                    .sessions
                    .get(idx)
                    .is_some_and(|s| s.is_persistent() && s.expires_at.is_none_or(|at| at > now))
        });
        let mut will_to_publish = None;
        if let Some(idx) = existing {
            will_to_publish = self.take_over(idx, resumes, out);
        }

        let session_present = resumes;
        let idx = match existing {
            Some(idx) if resumes => {
                let mut due_will = None;
                if let Some(session) = self.sessions.get_mut(idx) {
                    // A new connection before the Will Delay Interval passed: the will is not
                    // sent (MQTT-3.1.3-9). One whose delay has passed is (a Tick may not
                    // have run yet, or the broker restarted after losing the connection).
                    due_will = session.pending_will.take().filter(|p| p.due <= now);
                    session.expires_at = None;
                }
                if let Some(pending) = due_will {
                    self.publish_will(now, Some(idx), pending.will, out);
                }
                if let Some(will) = will_to_publish {
                    self.publish_will(now, Some(idx), will, out);
                }
                idx
            }
            _ => {
                if let Some(idx) = existing {
                    // Clean Start discards the session (MQTT-3.1.2-4); a will still waiting for
                    // its delay is published as the session ends (MQTT-3.1.2-8). The delete
                    // is persisted after the wills, so a crash cannot lose them.
                    if let Some(old) = self.remove_session(idx) {
                        if let Some(pending) = &old.pending_will {
                            self.publish_will(now, None, pending.will.clone(), out);
                        }
                        if let Some(will) = will_to_publish.take() {
                            self.publish_will(now, None, will, out);
                        }
                        self.persist_session_delete(&old, out);
                    }
                }
                if let Some(will) = will_to_publish {
                    self.publish_will(now, None, will, out);
                }
                if existing.is_none()
                    && self.config.cluster
                    && self.config.durable
                    && connect.clean_start
                    && expiry > 0
                {
                    // Another node may have stored a session under this id: a clean start
                    // discards it (MQTT-3.1.2-4) before this node writes its own.
                    self.persist(
                        DurableOp::SessionDelete {
                            client_id: client_id.clone(),
                        },
                        out,
                    );
                }
                let serial = self.sessions.next_serial();
                self.sessions
                    .insert(Session::new(client_id.clone(), serial, expiry))
            }
        };

        let mut properties = ConnAckProperties::default();
        let mut keep_alive = connect.keep_alive;
        if v5 {
            self.fill_connack_properties(&mut properties);
            if requested_expiry != expiry {
                properties.session_expiry_interval = Some(expiry);
            }
            if assigned {
                properties.assigned_client_identifier = Some(client_id.to_string());
            }
            if let Some(auth) = auth {
                // MQTT-4.12.0-5 .. -7: the CONNACK ends the exchange under the same method.
                properties.authentication_method = Some(auth.method);
                properties.authentication_data = auth.data;
            }
            let max = self.config.max_keep_alive;
            if max > 0 && (keep_alive > max || keep_alive == 0) {
                keep_alive = max;
                properties.server_keep_alive = Some(max);
            }
        }

        let client_receive_maximum = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        let window = self
            .config
            .max_inflight
            .max(1)
            .min(client_receive_maximum.max(1));
        let conn = Connection {
            id: conn_id,
            session: idx,
            client_id,
            version: connect.protocol,
            keep_alive,
            last_seen: now,
            window,
            max_packet_size: if v5 {
                connect
                    .properties
                    .maximum_packet_size
                    .and_then(NonZeroU32::new)
            } else {
                None
            },
            aliases_in: InboundAliases::default(),
            aliases_out: OutboundAliases::new(
                if v5 && self.config.outgoing_topic_aliases {
                    connect.properties.topic_alias_maximum.unwrap_or(0)
                } else {
                    0
                },
                self.empty_topic.clone(),
            ),
            // Kept for the whole connection: hold its own bytes, not the CONNECT's buffer.
            will: connect.will.map(|mut will| {
                will.detach_buffers();
                Box::new(will)
            }),
            connect_expiry_zero: requested_expiry == 0,
        };
        if let Some(deadline) = conn.keep_alive_deadline() {
            self.keep_alive.push(deadline, conn_id);
        }
        self.conns.insert(conn_id, Box::new(conn));
        self.max_connected = self.max_connected.max(self.conns.len() as u64);
        self.counters.connects += 1;

        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        debug_assert_ne!(conn_id, 0, "connection ids start at 1");
        session.conn = NonZeroU64::new(conn_id);
        session.username = connect.username.as_deref().map(Arc::from);
        session.identity_known = true;
        let was_persistent = session.is_persistent();
        session.expiry_interval = expiry;
        if session_present && was_persistent && expiry == 0 {
            // Resumed as a clean session: it ends with this connection, so it is no longer
            // durable.
            let client_id = session.client_id.clone();
            if self.config.durable {
                self.persist(DurableOp::SessionDelete { client_id }, out);
            }
        } else {
            self.persist_session(idx, out);
        }
        // Peers end their connections with this client id before the CONNACK goes out.
        self.claim(idx, connect.clean_start, out);
        // An adopted session's routes too: peers know them before the CONNACK.
        self.flush_routes(out);
        // After the session is durable: a client must not be told about a session that a
        // crash could still lose.
        let connack = Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties: properties.into(),
        });
        out.push(self.ack_action(conn_id, connack, expiry > 0));

        if session_present {
            self.drop_forbidden_queued(now, idx, out);
        }
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        if session_present {
            if let Some(conn) = self.conns.get_mut(&conn_id) {
                let mut ob = Self::outbox(now, out, &mut self.counters, &self.config);
                session.resume(conn, &mut ob);
            }
            self.pump_replay(now, idx, out);
        }
    }

    /// The client identifier to use, and whether we assigned it; or the CONNACK reason
    /// refusing it.
    fn client_id_for(&mut self, connect: &Connect) -> Result<(Arc<str>, bool), ReasonCode> {
        if !connect.client_id.is_empty() {
            return Ok((Arc::from(connect.client_id.as_str()), false));
        }
        let allowed = self.config.allow_zero_length_client_id;
        match connect.protocol {
            // MQTT 3.1 requires a client identifier.
            ProtocolVersion::V3_1 => Err(ReasonCode::ClientIdentifierNotValid),
            // A zero-byte ClientId with CleanSession=0 is rejected with return code 2
            // (MQTT-3.1.3-8 in 3.1.1).
            ProtocolVersion::V3_1_1 if !connect.clean_start || !allowed => {
                Err(ReasonCode::ClientIdentifierNotValid)
            }
            ProtocolVersion::V3_1_1 => Ok((self.assign_client_id(), false)),
            // The server assigns a unique ClientID and returns it (MQTT-3.1.3-6, -7).
            ProtocolVersion::V5 if !allowed => Err(ReasonCode::ClientIdentifierNotValid),
            ProtocolVersion::V5 => Ok((self.assign_client_id(), true)),
        }
    }

    /// A client identifier no session uses (MQTT-3.2.2-16 in v5 numbering).
    fn assign_client_id(&mut self) -> Arc<str> {
        loop {
            self.next_assigned_id += 1;
            let id = format!(
                "{}{:08x}-{:x}",
                self.config.assigned_client_id_prefix,
                self.id_seed & 0xffff_ffff,
                self.next_assigned_id
            );
            if self.sessions.find(&id).is_none() {
                return Arc::from(id);
            }
        }
    }

    /// Ends the live connection of the session in slot `idx`, if any (MQTT-3.1.4-3: v5 gets
    /// DISCONNECT 0x8E Session taken over). Returns its will when it must be published: not
    /// when the new connection resumes the session and the will has a delay (MQTT-3.1.3-9).
    fn take_over(
        &mut self,
        idx: SessionIdx,
        resumes: bool,
        out: &mut Vec<Action>,
    ) -> Option<LastWill> {
        let session = self.sessions.get_mut(idx)?;
        let old_id = session.take_conn()?;
        let old = self.conns.remove(&old_id)?;
        Self::send_disconnect(&old, ReasonCode::SessionTakenOver, out);
        out.push(Action::Close { conn: old_id });
        let will = *old.will?;
        if resumes && will_delay(&will) > 0 {
            None
        } else {
            Some(will)
        }
    }

    /// The v5 CONNACK properties describing what this broker supports (MQTT 3.2.2.3).
    fn fill_connack_properties(&self, p: &mut ConnAckProperties) {
        let c = &self.config;
        if c.receive_maximum != u16::MAX {
            p.receive_maximum = Some(c.receive_maximum);
        }
        if c.maximum_qos < QoS::ExactlyOnce {
            p.maximum_qos = Some(c.maximum_qos as u8);
        }
        if !c.retain_available {
            p.retain_available = Some(0);
        }
        if c.max_packet_size < midge_codec::MAX_PACKET_SIZE {
            p.maximum_packet_size = Some(c.max_packet_size);
        }
        if c.topic_alias_maximum > 0 {
            p.topic_alias_maximum = Some(c.topic_alias_maximum);
        }
        if !c.wildcard_subscription_available {
            p.wildcard_subscription_available = Some(0);
        }
        if !c.subscription_identifiers_available {
            p.subscription_identifier_available = Some(0);
        }
        if !c.shared_subscription_available {
            p.shared_subscription_available = Some(0);
        }
    }
}

//! Connections ending (DISCONNECT, errors, keep alive, takeover), session expiry, delayed
//! wills, and shutdown.

use crate::event::ConnId;
use crate::router::SubKey;
use crate::session::{PendingWill, Session};
use crate::session_store::SessionIdx;
use crate::will::will_delay;
use crate::{Action, Broker, DurableOp};
use midge_codec::{topic, Disconnect, LastWill, Packet, ReasonCode};
use std::time::{Duration, Instant};

impl Broker {
    /// Forgets connection `conn_id`: sends a v5 DISCONNECT with `reason` if given, a Close if
    /// `close`, publishes or schedules its will if `publish_will`, then keeps the session
    /// offline (Session Expiry Interval > 0, MQTT-3.1.2-23) or removes it.
    pub(crate) fn end_connection(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        reason: Option<ReasonCode>,
        close: bool,
        publish_will: bool,
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns.remove(&conn_id) else {
            return;
        };
        if let Some(reason) = reason {
            Self::send_disconnect(&conn, reason, out);
        }
        if close {
            out.push(Action::Close { conn: conn_id });
        }
        let will = if publish_will {
            conn.will.map(|w| *w)
        } else {
            None
        };
        let idx = conn.session;
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        session.conn = None;
        // A pending NotifyDrained died with the connection; the next one starts afresh.
        session.replay.connection_ended();
        if session.expiry_interval == 0 {
            // The session ends with the connection: the will goes out now (MQTT-3.1.2-8).
            if let Some(old) = self.remove_session(idx) {
                self.redeliver_shared(now, &old, out);
            }
            if let Some(will) = will {
                self.publish_will(now, None, will, out);
            }
            return;
        }
        self.go_offline(now, idx, will, out);
    }

    /// The persistent session in slot `idx` lost its connection at `now`: starts its expiry,
    /// publishes or schedules `will`, and persists it as offline (after the will's own
    /// changes, so a crash in between re-publishes the will rather than losing it).
    pub(crate) fn go_offline(
        &mut self,
        now: Instant,
        idx: SessionIdx,
        will: Option<LastWill>,
        out: &mut Vec<Action>,
    ) {
        let Some(session) = self.sessions.get_mut(idx) else {
            return;
        };
        let expires_at = session.expiry_deadline(now);
        session.expires_at = expires_at;
        let serial = session.serial;
        if let Some(at) = expires_at {
            self.session_expiry.push(at, (idx, serial));
        }
        if let Some(will) = will {
            let delay = will_delay(&will);
            if delay == 0 {
                self.publish_will(now, Some(idx), will, out);
            } else {
                // Published when the delay passes or the session ends, whichever comes first.
                let mut due = now + Duration::from_secs(u64::from(delay));
                if let Some(at) = expires_at {
                    due = due.min(at);
                }
                session.pending_will = Some(Box::new(PendingWill { will, due }));
                self.will_delays.push(due, (idx, serial));
            }
        }
        self.persist_session(idx, out);
    }

    /// A DISCONNECT from the client: 0x04 keeps the will, any other reason discards it
    /// (MQTT-3.14.4-3, MQTT-3.1.2-10); a v5 Session Expiry Interval replaces the session's,
    /// except that raising it from 0 is a Protocol Error (MQTT 3.14.2.2.2).
    pub(crate) fn on_disconnect(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        disconnect: Disconnect,
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let v5 = conn.is_v5();
        if v5 {
            if let Some(expiry) = disconnect.properties.session_expiry_interval {
                if conn.connect_expiry_zero && expiry > 0 {
                    self.close_with(now, conn_id, ReasonCode::ProtocolError, out);
                    return;
                }
                let granted = expiry.min(self.config.max_session_expiry);
                if let Some(session) = self.sessions.get_mut(conn.session) {
                    let ends = session.is_persistent() && granted == 0;
                    session.expiry_interval = granted;
                    // A new non-zero expiry is persisted with the session going offline
                    // (one `SessionPut` below); zero ends the session with the connection.
                    if ends && self.config.durable {
                        let client_id = session.client_id.clone();
                        self.persist(DurableOp::SessionDelete { client_id }, out);
                    }
                }
            }
        }
        let keep_will = v5 && disconnect.reason == ReasonCode::DisconnectWithWill;
        self.end_connection(now, conn_id, None, true, keep_will, out);
    }

    /// Removes the session in slot `idx` and all its subscriptions.
    pub(crate) fn remove_session(&mut self, idx: SessionIdx) -> Option<Session> {
        let session = self.sessions.remove(idx)?;
        let held = session.subscriptions.get().into_iter().flatten();
        for (filter, _) in held {
            self.drop_subscription(idx, filter);
        }
        self.subscription_count -= session.subscriptions.get().map_or(0, |held| held.len()) as u64;
        Some(session)
    }

    /// Removes one subscription of session `idx` from the tree (or its shared group).
    pub(crate) fn drop_subscription(&mut self, idx: SessionIdx, filter: &str) {
        self.routes.remove(filter);
        match topic::split_shared(filter) {
            Some(_) => {
                let name = &filter["$share/".len()..];
                self.shared.leave(&mut self.subs, name, idx);
            }
            None => {
                self.subs.remove(filter, &SubKey::Direct(idx));
            }
        }
    }

    /// Periodic work: keep alive timeouts, delayed wills, session expiry, retained message
    /// expiry and `$SYS` topics.
    pub(crate) fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.restored_offline.is_empty() {
            self.persist_restored_offline(out);
        }
        while let Some(conn_id) = self.keep_alive.pop_due(now) {
            let Some(deadline) = self
                .conns
                .get(&conn_id)
                .and_then(|c| c.keep_alive_deadline())
            else {
                continue;
            };
            if deadline > now {
                self.keep_alive.push(deadline, conn_id);
            } else {
                // No packet within 1.5 x Keep Alive: close as if the network failed
                // (MQTT-3.1.2-22 in v5, MQTT-3.1.2-24 in 3.1.1), so the will is published.
                self.end_connection(
                    now,
                    conn_id,
                    Some(ReasonCode::KeepAliveTimeout),
                    true,
                    true,
                    out,
                );
            }
        }
        while let Some((idx, serial)) = self.will_delays.pop_due(now) {
            let Some(session) = self.sessions.get_mut(idx) else {
                continue;
            };
            if session.serial != serial || session.is_connected() {
                continue;
            }
            if session.pending_will.as_ref().is_some_and(|w| w.due <= now) {
                // A session expiring now is deleted below; no point persisting it first.
                let expiring = session.expires_at.is_some_and(|at| at <= now);
                if let Some(pending) = session.pending_will.take() {
                    self.publish_will(now, Some(idx), pending.will, out);
                    if !expiring {
                        self.persist_session(idx, out);
                    }
                }
            }
        }
        while let Some((idx, serial)) = self.session_expiry.pop_due(now) {
            let expired = self.sessions.get(idx).is_some_and(|s| {
                s.serial == serial && !s.is_connected() && s.expires_at.is_some_and(|at| at <= now)
            });
            if !expired {
                continue;
            }
            if let Some(session) = self.remove_session(idx) {
                self.counters.sessions_expired += 1;
                self.redeliver_shared(now, &session, out);
                if let Some(pending) = &session.pending_will {
                    self.publish_will(now, None, pending.will.clone(), out);
                }
                self.persist_session_delete(&session, out);
            }
        }
        let durable = self.config.durable;
        let (counters, retained) = (&mut self.counters, &mut self.retained);
        retained.expire(now, |topic| {
            if durable && !midge_codec::topic::is_sys_topic(&topic) {
                counters.persisted += 1;
                out.push(Action::Persist(Box::new(DurableOp::RetainedClear {
                    topic,
                })));
            }
        });
        self.publish_sys(now, out);
    }

    /// First Tick after a restore: sessions whose connection was lost in the crash are
    /// persisted as offline, with the will now scheduled for them.
    fn persist_restored_offline(&mut self, out: &mut Vec<Action>) {
        for (idx, serial) in std::mem::take(&mut self.restored_offline) {
            let offline = self
                .sessions
                .get(idx)
                .is_some_and(|s| s.serial == serial && !s.is_connected());
            if offline {
                self.persist_session(idx, out);
            }
        }
    }

    /// Shutdown: v5 clients get DISCONNECT 0x8B, or 0x9C Server moved with the configured
    /// Server Reference (MQTT 5, 4.11), every connection closes, no will is published;
    /// persistent sessions stay (offline), the others end.
    pub(crate) fn on_shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort_unstable();
        let reference = self.config.shutdown_server_reference.clone();
        for conn_id in ids {
            let reason = match (&reference, self.conns.get(&conn_id)) {
                (Some(reference), Some(conn)) => {
                    if conn.is_v5() {
                        let mut disconnect = Disconnect::new(ReasonCode::ServerMoved);
                        disconnect.properties.make_mut().server_reference = Some(reference.clone());
                        out.push(Action::Send {
                            conn: conn_id,
                            packet: Packet::Disconnect(disconnect),
                        });
                    }
                    None
                }
                _ => Some(ReasonCode::ServerShuttingDown),
            };
            self.end_connection(now, conn_id, reason, true, false, out);
        }
    }
}

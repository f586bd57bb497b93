//! What the admin API shows of connected clients, and kicking one.

use crate::session::Session;
use crate::{Action, Broker};
use midge_codec::{ProtocolVersion, ReasonCode};
use std::time::Instant;

/// One connected client, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its client identifier (assigned ones included).
    pub client_id: String,
    /// Its protocol version: "3.1", "3.1.1" or "5.0".
    pub protocol: &'static str,
    /// The username it authenticated with, if any.
    pub username: Option<String>,
    /// True if its session outlives the connection.
    pub persistent: bool,
    /// Its subscriptions.
    pub subscriptions: usize,
    /// QoS 1/2 messages in flight to it plus queued for it.
    pub pending_messages: usize,
}

impl Broker {
    /// Every connected client, sorted by client id.
    pub fn clients(&self) -> Vec<ClientInfo> {
        let mut list: Vec<ClientInfo> = self
            .conns
            .values()
            .filter_map(|conn| {
                let session = self.sessions.get(conn.session)?;
                Some(ClientInfo {
                    client_id: conn.client_id.to_string(),
                    protocol: match conn.version {
                        ProtocolVersion::V3_1 => "3.1",
                        ProtocolVersion::V3_1_1 => "3.1.1",
                        ProtocolVersion::V5 => "5.0",
                    },
                    username: session.username.as_deref().map(str::to_string),
                    persistent: session.is_persistent(),
                    subscriptions: session.subscriptions.get().map_or(0, |held| held.len()),
                    pending_messages: session.inflight.len() + session.queue.len(),
                })
            })
            .collect();
        list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        list
    }

    /// Disconnects the client connected with `client_id` as an administrative action (v5:
    /// DISCONNECT 0x98); its will is published and a persistent session stays. False if no
    /// such client is connected.
    pub fn kick(&mut self, now: Instant, client_id: &str, out: &mut Vec<Action>) -> bool {
        let conn = self
            .sessions
            .find(client_id)
            .and_then(|idx| self.sessions.get(idx))
            .and_then(Session::conn_id);
        let Some(conn) = conn else {
            return false;
        };
        self.end_connection(
            now,
            conn,
            Some(ReasonCode::AdministrativeAction),
            true,
            true,
            out,
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::harness::*;
    use midge_codec::{QoS, ReasonCode};

    #[test]
    fn clients_are_listed_and_one_is_kicked_with_0x98() {
        let mut h = H::new();
        h.connect(1, "b", V5, true);
        h.connect_v5(2, "a", false, 60);
        h.subscribe(2, "t", QoS::AtLeastOnce);
        let list = h.broker.clients();
        let ids: Vec<_> = list.iter().map(|c| c.client_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(list[0].persistent && list[0].subscriptions == 1 && list[0].protocol == "5.0");
        let mut out = Vec::new();
        let now = h.now;
        assert!(h.broker.kick(now, "a", &mut out));
        // MQTT 5 reason code 0x98 Administrative action.
        assert_disconnected(&out, 2, ReasonCode::AdministrativeAction);
        assert!(
            !h.broker.kick(now, "a", &mut Vec::new()),
            "no longer connected"
        );
        assert!(h.broker.has_session("a"), "a persistent session stays");
        assert_eq!(h.broker.clients().len(), 1);
    }
}

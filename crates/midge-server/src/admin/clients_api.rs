//! `/api/v1/clients`: the clients connected to this node, and disconnecting one.

use super::AdminState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

/// One client in `GET /api/v1/clients`.
#[derive(Debug, Serialize)]
pub(crate) struct ClientView {
    client_id: String,
    /// "3.1", "3.1.1" or "5.0".
    protocol: &'static str,
    username: Option<String>,
    /// The session outlives the connection.
    persistent: bool,
    subscriptions: usize,
    /// QoS 1/2 messages in flight to it or queued for it.
    pending_messages: usize,
}

/// `GET /api/v1/clients`.
pub(crate) async fn list(State(state): State<AdminState>) -> Json<Vec<ClientView>> {
    let clients = state
        .broker
        .clients()
        .into_iter()
        .map(|c| ClientView {
            client_id: c.client_id,
            protocol: c.protocol,
            username: c.username,
            persistent: c.persistent,
            subscriptions: c.subscriptions,
            pending_messages: c.pending_messages,
        })
        .collect();
    Json(clients)
}

/// `DELETE /api/v1/clients/{client_id}`: disconnects the client (v5 DISCONNECT 0x98
/// Administrative action; its will is published, a persistent session stays). 204, or 404 if
/// no client with that id is connected to this node.
pub(crate) async fn kick(
    State(state): State<AdminState>,
    Path(client_id): Path<String>,
) -> (StatusCode, String) {
    if state.broker.kick(&client_id) {
        tracing::info!("Client {client_id} disconnected through the admin API.");
        (StatusCode::NO_CONTENT, String::new())
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("no client {client_id:?} is connected to this node\n"),
        )
    }
}

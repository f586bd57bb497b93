//! `/api/v1/cluster`: the cluster's membership as this node sees it, and joining or removing a
//! node (any member takes the request; the leader carries it out).

use super::AdminState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use midge_cluster::{ClusterControl, ClusterError, ClusterStatus, NodeInfo};
use serde::{Deserialize, Serialize};

/// `GET /api/v1/cluster`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ClusterView {
    /// The node answering.
    pub(crate) node_id: u64,
    /// The leader it knows of.
    pub(crate) leader: Option<u64>,
    /// Its Raft term.
    pub(crate) term: u64,
    /// The highest Raft log index it applied (its state is at least that new).
    pub(crate) applied_index: Option<u64>,
    /// Every member.
    pub(crate) members: Vec<MemberView>,
}

/// One member in [`ClusterView`].
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct MemberView {
    pub(crate) node_id: u64,
    /// `voter` or `learner`.
    pub(crate) role: String,
    /// Its cluster (gRPC) address.
    pub(crate) cluster_addr: String,
    /// Its MQTT listener.
    pub(crate) mqtt_addr: String,
}

impl From<ClusterStatus> for ClusterView {
    fn from(s: ClusterStatus) -> ClusterView {
        ClusterView {
            node_id: s.node_id,
            leader: s.leader,
            term: s.term,
            applied_index: s.applied_index,
            members: s
                .members
                .into_iter()
                .map(|m| MemberView {
                    node_id: m.node_id,
                    role: if m.voter { "voter" } else { "learner" }.to_string(),
                    cluster_addr: m.node.raft_addr,
                    mqtt_addr: m.node.mqtt_addr,
                })
                .collect(),
        }
    }
}

/// `POST /api/v1/cluster/join`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct JoinBody {
    pub(crate) node_id: u64,
    /// The node's cluster (gRPC) address.
    pub(crate) cluster_addr: String,
    /// Its MQTT listener (informational).
    #[serde(default)]
    pub(crate) mqtt_addr: String,
}

/// `POST /api/v1/cluster/leave`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LeaveBody {
    pub(crate) node_id: u64,
}

fn control(state: &AdminState) -> Option<&ClusterControl> {
    state.cluster.as_ref()
}

/// The answer of a node without a cluster.
fn no_cluster() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no cluster: storage is disabled on this node".to_string(),
    )
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

fn cluster_error(e: &ClusterError) -> Response {
    let status = match e {
        ClusterError::NotLeader { .. } | ClusterError::CommitTimeout(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ClusterError::Membership(_) | ClusterError::Config(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

pub(crate) async fn status(State(state): State<AdminState>) -> Response {
    match control(&state) {
        Some(control) => Json(ClusterView::from(control.status())).into_response(),
        None => no_cluster(),
    }
}

pub(crate) async fn join(State(state): State<AdminState>, Json(body): Json<JoinBody>) -> Response {
    let Some(control) = control(&state) else {
        return no_cluster();
    };
    if body.node_id == 0 || body.cluster_addr.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "node_id (at least 1) and cluster_addr are required".to_string(),
        );
    }
    let node = NodeInfo {
        raft_addr: body.cluster_addr,
        mqtt_addr: body.mqtt_addr,
    };
    match control.join(body.node_id, node).await {
        Ok(joined) => Json(serde_json::json!({
            "node_id": body.node_id,
            "leader": joined.leader,
            "role": if joined.voter { "voter" } else { "learner" },
        }))
        .into_response(),
        Err(e) => cluster_error(&e),
    }
}

pub(crate) async fn leave(
    State(state): State<AdminState>,
    Json(body): Json<LeaveBody>,
) -> Response {
    let Some(control) = control(&state) else {
        return no_cluster();
    };
    match control.leave(body.node_id).await {
        Ok(()) => {
            Json(serde_json::json!({ "node_id": body.node_id, "removed": true })).into_response()
        }
        Err(e) => cluster_error(&e),
    }
}

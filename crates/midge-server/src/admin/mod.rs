//! The admin HTTP listener: `/metrics` (Prometheus), `/healthz` (the process serves HTTP),
//! `/readyz` (listeners up, member of the Raft group, caught up with its commits),
//! `/api/v1/cluster` (membership: status, join, leave) and `/api/v1/clients` (this node's
//! clients; `DELETE /api/v1/clients/{id}` disconnects one).
//!
//! It only reads: counters the broker and listeners keep anyway, and the Raft node's metrics.
//! It binds in `Server::bind`, next to the MQTT listeners, so a taken port fails startup.

mod clients_api;
mod cluster_api;
mod family;
mod metrics;
mod node_collector;
mod readiness;

pub(crate) use metrics::Metrics;
pub(crate) use node_collector::{NodeCollector, NodeSources};
pub(crate) use readiness::Readiness;

use crate::config::AdminSection;
use crate::ServerError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The bound admin listener, not serving yet.
pub(crate) struct AdminServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// What the handlers read.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) metrics: Metrics,
    pub(crate) ready: Arc<Readiness>,
    /// `None` with storage disabled.
    pub(crate) cluster: Option<midge_cluster::ClusterControl>,
    /// The broker, for `/api/v1/clients`.
    pub(crate) broker: Arc<crate::shared_broker::SharedBroker>,
}

impl AdminServer {
    /// Binds `[admin]`; port 0 picks a free port.
    pub(crate) async fn bind(section: &AdminSection) -> Result<AdminServer, ServerError> {
        let addr = section.socket_addr();
        let err = |source| ServerError::AdminBind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(err)?;
        let local_addr = listener.local_addr().map_err(err)?;
        Ok(AdminServer {
            listener,
            local_addr,
        })
    }

    /// The address actually bound.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves. Logs `admin listening on http://ADDR` first (a
    /// stable line: tests and scripts find the port with it).
    pub(crate) async fn serve(
        self,
        state: AdminState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/api/v1/cluster", get(cluster_api::status))
            .route("/api/v1/cluster/join", post(cluster_api::join))
            .route("/api/v1/cluster/leave", post(cluster_api::leave))
            .route("/api/v1/clients", get(clients_api::list))
            .route("/api/v1/clients/{client_id}", delete(clients_api::kick))
            .with_state(state);
        tracing::info!("admin listening on http://{}", self.local_addr);
        if let Err(err) = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("The admin listener failed: {err}.");
        }
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // Collecting takes the broker lock once; encoding is plain CPU work on a small text.
    let body = state.metrics.encode();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    match state.ready.check() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", why.join("; ")),
        ),
    }
}

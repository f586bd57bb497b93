//! What a node's broker does with what peers send it over their broker links.

use midge_codec::Publish;
use midge_core::DurableOp;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Route changes of one peer, in one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteUpdate {
    /// `add` is the peer's whole route set, replacing what was known.
    pub full: bool,
    /// Routes added (filters as subscribed, `$share/{group}/{filter}` for groups).
    pub add: Vec<String>,
    /// Routes removed.
    pub remove: Vec<String>,
}

/// One batch from a peer, to apply in this order: routes, claims, publishes.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    /// The peer's route changes, if the batch carried any.
    pub routes: Option<RouteUpdate>,
    /// Clients that connected (or are connecting) to the peer.
    pub claims: Vec<crate::pb::Claim>,
    /// Publishes for this node's sessions, each with the shared groups this node serves and
    /// the publisher's share key.
    pub publishes: Vec<(Publish, Vec<Arc<str>>, u64)>,
}

/// What a batch from a peer produced, once it is durable: the sessions its `hand_off` claims
/// asked for, as the ops that rebuild them.
pub type Applied = Pin<Box<dyn Future<Output = Vec<(Arc<str>, Vec<DurableOp>)>> + Send>>;

/// The broker behind a node's links (implemented by the server).
pub trait LinkHandler: Send + Sync + 'static {
    /// Applies a batch from peer `from` before it returns (batches are applied in the order
    /// they arrived); the future is ready once what it queued for persistent sessions is
    /// durable (the peer then acknowledges its publishers), with the sessions its `hand_off`
    /// claims asked for.
    fn exchange(&self, from: u64, batch: Inbound) -> Applied;

    /// The link to peer `node` went down (`reachable` false) or came back up.
    fn peer_reachable(&self, node: u64, reachable: bool);
}

//! A running cluster node: the Raft instance, its stores and the proposer.

use crate::batcher::Batcher;
use crate::control::ClusterControl;
use crate::joiner::join_through_seeds;
use crate::link_service::LinkService;
use crate::links::Links;
use crate::metrics::SharedCounters;
use crate::peer_channels::PeerChannels;
use crate::proposer::Proposer;
use crate::raft_service::RaftRpcServer;
use crate::remote_commands::RemoteCommands;
use crate::restore::Sessions;
use crate::{
    restore_state, ClusterConfig, ClusterError, ClusterMetrics, ClusterMetricsSource, GrpcNetwork,
    LogStorage, MidgeRaft, NodeInfo, StateMachine, WallClock,
};
use midge_core::RestoredState;
use midge_store::{LogStore, StateStore};
use openraft::{Raft, ServerState};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

/// How long `start` waits for a joined node to see itself in the membership.
const JOIN_VISIBLE: Duration = Duration::from_secs(30);

/// One member of Midge's Raft group. Started with [`ClusterNode::start`]; the server reads
/// [`ClusterNode::restored_state`] once, then proposes changes through [`ClusterNode::proposer`].
pub struct ClusterNode {
    node_id: u64,
    raft: MidgeRaft,
    state: Arc<dyn StateStore>,
    proposer: Proposer,
    counters: Arc<SharedCounters>,
    stop: watch::Sender<bool>,
    batcher: JoinHandle<()>,
    control: ClusterControl,
    /// The gRPC server, when the node serves its cluster address.
    grpc: Option<JoinHandle<()>>,
    remote: Option<RemoteCommands>,
    /// True once openraft has dropped its handles to both stores.
    stores_released: Box<dyn Fn() -> bool + Send + Sync>,
    links: Links,
    /// Keeps one broker link per member.
    membership: JoinHandle<()>,
}

impl ClusterNode {
    /// Starts the node on its stores. A fresh node (empty log, no membership) initializes a
    /// one-member group of itself; a restarted one recovers from its log and state machine
    /// (openraft re-applies committed entries). When this node is the group's only voter,
    /// `start` returns once it leads and has applied its whole log, so
    /// [`ClusterNode::restored_state`] sees every committed change.
    ///
    /// The stores are shared handles so one `RocksStore` can serve as both (one WAL):
    /// `ClusterNode::start(config, store.clone(), store)`.
    pub async fn start<L: LogStore, S: StateStore>(
        config: ClusterConfig,
        log: Arc<L>,
        state: Arc<S>,
    ) -> Result<ClusterNode, ClusterError> {
        ClusterNode::start_serving(config, log, state, None).await
    }

    /// [`ClusterNode::start`], serving the cluster's gRPC service (Raft RPCs from peers,
    /// joins, forwarded proposals) on `listener`. A fresh node with `config.seeds` joins the
    /// cluster through them (retrying until a seed answers) instead of bootstrapping, and
    /// returns once it is a member.
    pub async fn start_serving<L: LogStore, S: StateStore>(
        config: ClusterConfig,
        log: Arc<L>,
        state: Arc<S>,
        listener: Option<TcpListener>,
    ) -> Result<ClusterNode, ClusterError> {
        config.validate()?;
        let raft_config = Arc::new(config.raft_config()?);
        let counters = Arc::new(SharedCounters::default());
        let stores_released = {
            // Handles the caller keeps elsewhere stay; shutdown waits for openraft's to go.
            let same = std::ptr::eq(
                Arc::as_ptr(&log).cast::<()>(),
                Arc::as_ptr(&state).cast::<()>(),
            );
            let ours = if same { 2 } else { 1 };
            let log_kept = Arc::strong_count(&log).saturating_sub(ours);
            let state_kept = Arc::strong_count(&state).saturating_sub(ours);
            let (log, state): (Weak<L>, Weak<S>) = (Arc::downgrade(&log), Arc::downgrade(&state));
            Box::new(move || log.strong_count() <= log_kept && state.strong_count() <= state_kept)
        };
        let log_storage = LogStorage::with_counters(log, counters.clone());
        let origin_id = origin_id();
        let (remote_tx, remote_rx) = mpsc::unbounded_channel();
        let state_machine = StateMachine::open(state.clone(), &config.data_dir)
            .await?
            .with_remote_commands(origin_id, remote_tx);
        let channels = PeerChannels::default();
        let raft = Raft::new(
            config.node_id,
            raft_config,
            GrpcNetwork::new(config.node_id, channels.clone()),
            log_storage,
            state_machine,
        )
        .await?;
        let control = ClusterControl {
            node_id: config.node_id,
            raft: raft.clone(),
            channels: channels.clone(),
            max_voters: config.max_voters,
            commit_timeout: config.commit_timeout,
            changes: Arc::default(),
        };
        let (stop, stop_rx) = watch::channel(false);
        let dyn_state: Arc<dyn StateStore> = state.clone();
        let links = Links::new(
            config.node_id,
            config.forward_batch_interval,
            channels.clone(),
            &dyn_state,
            raft.metrics(),
        );
        let serving = listener.is_some();
        let grpc = listener.map(|listener| {
            let service = RaftRpcServer::service(control.clone());
            let link_service = LinkService::service(links.clone());
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let served = tonic::transport::Server::builder()
                    .add_service(service)
                    .add_service(link_service)
                    .serve_with_incoming_shutdown(
                        // Without TCP_NODELAY a small reply waits for the delayed ACK (40 ms).
                        TcpIncoming::from(listener).with_nodelay(Some(true)),
                        stopped,
                    )
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the cluster gRPC listener failed");
                }
            })
        });
        if !raft.is_initialized().await? {
            if config.bootstraps() {
                tracing::info!(
                    node_id = config.node_id,
                    "initializing a one-node Raft group"
                );
                let members = BTreeMap::from([(config.node_id, config.node.clone())]);
                raft.initialize(members).await?;
            } else {
                tracing::info!(
                    node_id = config.node_id,
                    seeds = ?config.seeds,
                    "joining the cluster through its seeds"
                );
                let seeds = config.peer_seeds();
                join_through_seeds(&channels, config.node_id, &config.node, &seeds).await;
                wait_member(&raft, config.node_id).await;
            }
        }
        wait_ready(&raft, &config).await?;
        if serving {
            update_address(&raft, &channels, &config);
        }

        let (tx, rx) = mpsc::channel(config.proposal_queue);
        let batcher = Batcher {
            raft: raft.clone(),
            rx,
            max_batch: config.max_batch_commands,
            inflight: Arc::new(Semaphore::new(config.max_inflight_batches)),
            commit_timeout: config.commit_timeout,
            counters: counters.clone(),
            stop: stop_rx,
            control: control.clone(),
            origin_id,
        };
        let batcher = tokio::spawn(batcher.run());
        let membership = tokio::spawn(watch_members(
            raft.metrics(),
            links.clone(),
            stop.subscribe(),
        ));
        Ok(ClusterNode {
            node_id: config.node_id,
            raft,
            state,
            proposer: Proposer::new(tx, config.node_id),
            counters,
            stop,
            batcher,
            control,
            grpc,
            remote: Some(RemoteCommands { rx: remote_rx }),
            stores_released,
            links,
            membership,
        })
    }

    /// Membership changes (join, leave) and the cluster's status; clone it freely.
    pub fn control(&self) -> ClusterControl {
        self.control.clone()
    }

    /// The retained changes other nodes commit, for this node's broker (once: later calls
    /// return `None`).
    pub fn take_remote_commands(&mut self) -> Option<RemoteCommands> {
        self.remote.take()
    }

    /// The broker links to the other members (routes, forwarded publishes, claims).
    pub fn links(&self) -> Links {
        self.links.clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Everything durable, for `Broker::restore`, with deadlines relative to `now`. Reads the
    /// whole state store (blocking): call it at startup, before proposing.
    pub fn restored_state(&self, now: &WallClock) -> Result<RestoredState, ClusterError> {
        restore_state(&*self.state, now, Sessions::OwnedBy(self.node_id))
    }

    /// A handle to propose durable changes; clone it freely.
    pub fn proposer(&self) -> Proposer {
        self.proposer.clone()
    }

    /// Term, leader, commit and apply progress, and proposal counters.
    pub fn metrics(&self) -> ClusterMetrics {
        let raft = self.raft.metrics().borrow().clone();
        ClusterMetrics::new(&raft, &self.counters)
    }

    /// A cloneable reader of [`ClusterNode::metrics`], for exporters.
    pub fn metrics_source(&self) -> ClusterMetricsSource {
        ClusterMetricsSource {
            raft: self.raft.metrics(),
            counters: self.counters.clone(),
        }
    }

    /// The openraft instance (membership changes and snapshots; the cluster issue's gRPC
    /// service feeds peer RPCs into it).
    pub fn raft(&self) -> &MidgeRaft {
        &self.raft
    }

    /// Stops proposing (queued and later proposals fail with `ClusterError::Shutdown`;
    /// entries already handed to Raft complete first), stops Raft, and returns once the
    /// stores are released by openraft (once the caller drops any handles it kept, a
    /// `RocksStore` is closed and can be reopened).
    pub async fn shutdown(self) -> Result<(), ClusterError> {
        let _ = self.stop.send(true);
        self.membership.abort();
        self.links.close();
        if let Err(e) = self.batcher.await {
            tracing::error!(error = %e, "proposal batcher failed");
        }
        if let Some(grpc) = self.grpc {
            // Open peer streams end with the server; a stuck one is not waited for.
            let abort = grpc.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), grpc)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        drop(self.control);
        self.raft
            .shutdown()
            .await
            .map_err(|e| ClusterError::Raft(format!("raft task failed: {e}")))?;
        drop(self.raft);
        drop(self.state);
        // Openraft's state machine task ends just after its core: give it a moment.
        for _ in 0..500 {
            if (self.stores_released)() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(ClusterError::Raft(
            "stores still in use 5 s after shutdown".to_string(),
        ))
    }
}

/// Keeps `links` at one link per member of the group but this node, until `stop`.
async fn watch_members(
    mut metrics: watch::Receiver<openraft::RaftMetrics<u64, NodeInfo>>,
    links: Links,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let members: BTreeMap<u64, String> = metrics
            .borrow_and_update()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.raft_addr.clone()))
            .collect();
        links.set_peers(members);
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A random id for this start of the node (never 0), stamped on the entries it proposes.
pub(crate) fn origin_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

/// A member restarted with another address (a new port, a new machine) has its peers record
/// the new one, in the background: through any other member or a seed, like a join.
fn update_address(raft: &MidgeRaft, channels: &PeerChannels, config: &ClusterConfig) {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let id = config.node_id;
    match membership.get_node(&id) {
        Some(recorded) if *recorded != config.node => {
            tracing::info!(
                node_id = id,
                recorded = %recorded,
                now = %config.node,
                "this node's address changed: updating the membership"
            );
        }
        _ => return,
    }
    let mut peers: Vec<String> = membership
        .nodes()
        .filter(|(peer, _)| **peer != id)
        .map(|(_, node)| node.raft_addr.clone())
        .collect();
    peers.extend(config.peer_seeds());
    let (channels, node) = (channels.clone(), config.node.clone());
    tokio::spawn(async move {
        join_through_seeds(&channels, id, &node, &peers).await;
    });
}

/// Waits (a while) until a node that just joined sees itself in the membership.
async fn wait_member(raft: &MidgeRaft, id: u64) {
    let seen = raft
        .wait(Some(JOIN_VISIBLE))
        .metrics(
            |m| m.membership_config.membership().get_node(&id).is_some(),
            "member of the group",
        )
        .await;
    if let Err(e) = seen {
        tracing::warn!(error = %e, "joined, but the membership has not reached this node yet");
    }
}

/// Waits until a node that is its group's only voter leads and has applied its log.
async fn wait_ready(raft: &MidgeRaft, config: &ClusterConfig) -> Result<(), ClusterError> {
    let timeout = Some(config.election_timeout.1 * 20 + Duration::from_secs(5));
    let not_ready = |e: openraft::metrics::WaitError| ClusterError::Raft(format!("not ready: {e}"));
    let id = config.node_id;
    let metrics = raft
        .wait(timeout)
        .metrics(
            |m| {
                m.membership_config
                    .membership()
                    .voter_ids()
                    .next()
                    .is_some()
            },
            "membership known",
        )
        .await
        .map_err(not_ready)?;
    let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
    if voters != [id] {
        // A member of a larger group: readiness (a leader known, log caught up) is the
        // cluster issue's `/readyz`.
        return Ok(());
    }
    let metrics = raft
        .wait(timeout)
        .metrics(
            |m| m.state == ServerState::Leader && m.current_leader == Some(id),
            "leader of a one-node group",
        )
        .await
        .map_err(not_ready)?;
    raft.wait(timeout)
        .applied_index_at_least(metrics.last_log_index, "log applied")
        .await
        .map_err(not_ready)?;
    Ok(())
}

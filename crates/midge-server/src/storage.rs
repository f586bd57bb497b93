//! Durable storage at startup and shutdown: opening RocksDB, binding the cluster listener,
//! starting the Raft node (bootstrapping, joining through seeds, or rejoining), restoring the
//! broker from it, and running the committer.

use crate::committer::{commit_channel, CommitQueue, Propose, ProposeError};
use crate::shared_broker::now;
use crate::{Config, ServerError};
use midge_cluster::{
    ClusterConfig, ClusterControl, ClusterNode, Links, NodeInfo, Proposer, RemoteCommands,
    WallClock,
};
use midge_core::{Broker, DurableOp, RestoredState};
use midge_store::{LogStore, RocksStore, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The running storage of a server: the Raft node and the committer task feeding it.
pub(crate) struct Storage {
    node: ClusterNode,
    committer: JoinHandle<()>,
}

/// What startup hands the server when storage is enabled.
pub(crate) struct Opened {
    pub(crate) storage: Storage,
    /// The broker, with the durable state restored.
    pub(crate) broker: Broker,
    /// Where the broker's durable changes go.
    pub(crate) commits: CommitQueue,
    /// Retained changes other nodes commit, for this broker (apply with
    /// `SharedBroker::apply_replicated`).
    pub(crate) remote: RemoteCommands,
    /// Membership and status, for the admin API.
    pub(crate) control: ClusterControl,
    /// The broker links to peers.
    pub(crate) links: Links,
    /// Proposes lost nodes' releases (see `adopter`).
    pub(crate) proposer: midge_cluster::Proposer,
}

/// The core's clock paired with the wall clock: deadlines cross restarts as unix times.
pub(crate) fn wall_clock() -> WallClock {
    WallClock {
        instant: now(),
        unix_ms: WallClock::now().unix_ms,
    }
}

impl Propose for Proposer {
    fn propose(
        &self,
        ops: Vec<DurableOp>,
    ) -> impl Future<Output = Result<(), ProposeError>> + Send + 'static {
        let proposed = Proposer::propose(self, ops, wall_clock());
        async move {
            proposed.await.map_err(|e| ProposeError {
                transient: e.is_transient(),
                reason: e.reason_code(),
                message: e.to_string(),
            })
        }
    }
}

/// Opens the store in `<data_dir>/raft`, starts the node (bootstrapping a one-member group on
/// an empty store, recovering on restart), and builds the broker from what it restores. A
/// damaged data directory is an error naming the path, never a fresh start.
///
/// Binds `cluster.bind` first (before the store, so a taken port is reported as such) and
/// serves the cluster's gRPC service on it; `mqtt_addr` is recorded in the membership.
pub(crate) async fn open(config: &Config, mqtt_addr: SocketAddr) -> Result<Opened, ServerError> {
    let c = &config.cluster;
    let bind: SocketAddr = c.bind.parse().map_err(|_| ServerError::ClusterBind {
        addr: c.bind.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an address"),
    })?;
    let bind_err = |source| ServerError::ClusterBind {
        addr: c.bind.clone(),
        source,
    };
    let listener = TcpListener::bind(bind).await.map_err(bind_err)?;
    let cluster_addr = listener.local_addr().map_err(bind_err)?;
    let mut cluster = ClusterConfig::new(c.node_id, &config.data_dir);
    cluster.node = NodeInfo {
        raft_addr: if c.advertise.is_empty() {
            cluster_addr.to_string()
        } else {
            c.advertise.clone()
        },
        mqtt_addr: mqtt_addr.to_string(),
    };
    cluster.seeds = c.seeds.clone();
    cluster.max_voters = c.voters;
    cluster.forward_batch_interval = std::time::Duration::from_millis(c.forward_batch_ms);
    cluster.fsync = config.storage.fsync_policy();
    cluster.snapshot_logs = config.storage.snapshot_logs;
    let dir = cluster.store_dir();
    let started = std::time::Instant::now();

    let manifest = existing_manifest(&dir);
    let store = RocksStore::open(&dir, cluster.fsync).map_err(|source| ServerError::Store {
        path: dir.clone(),
        source,
    })?;
    // A joining node whose log is empty never finished joining (it was stopped while
    // waiting for a seed): it asks again. For a node that bootstraps, an empty log in an
    // existing store means damage.
    if let (Some(manifest), true) = (manifest, cluster.bootstraps()) {
        check_not_emptied(&store, &dir, &manifest)?;
    }
    // A stable line, like the listeners': scripts and tests find the port with it. Logged
    // once the store opened, so a damaged data directory never reads as a started node.
    tracing::info!("cluster listening on grpc://{cluster_addr}");
    let store = Arc::new(store);
    let node_id = cluster.node_id;
    let cluster_err = |source| ServerError::Cluster {
        path: dir.clone(),
        source,
    };
    let mut node = ClusterNode::start_serving(cluster, store.clone(), store, Some(listener))
        .await
        .map_err(cluster_err)?;
    let metrics = node.metrics();
    if !metrics.members.contains(&node_id) {
        let _ = node.shutdown().await;
        return Err(ServerError::WrongNode {
            path: dir,
            node_id,
            voters: metrics.members,
        });
    }
    // Taken before the broker is restored: what arrives meanwhile is applied again on top
    // of the restored state, which changes nothing (whole-value puts and deletes, in order).
    let remote = node
        .take_remote_commands()
        .ok_or_else(|| ServerError::Cluster {
            path: dir.clone(),
            source: midge_cluster::ClusterError::Raft("remote commands already taken".into()),
        })?;
    let clock = wall_clock();
    let state = match node.restored_state(&clock) {
        Ok(state) => state,
        Err(source) => {
            let _ = node.shutdown().await;
            return Err(cluster_err(source));
        }
    };
    let summary = Summary::of(&state);
    let mut broker = Broker::new(config.broker_config(), clock.instant);
    broker.restore(clock.instant, state);
    tracing::info!(
        "Restored {} retained message(s) and {} persistent session(s) with {} queued QoS 1/2 \
         message(s) from {} in {} ms.",
        summary.retained,
        summary.sessions,
        summary.messages,
        dir.display(),
        started.elapsed().as_millis()
    );

    let proposer = node.proposer();
    let (commits, committer) = commit_channel(proposer.clone());
    let committer = tokio::spawn(committer.run());
    let control = node.control();
    let links = node.links();
    Ok(Opened {
        storage: Storage { node, committer },
        broker,
        commits,
        remote,
        control,
        links,
        proposer,
    })
}

impl Storage {
    /// A reader of the Raft node's metrics, for `/metrics` and `/readyz`.
    pub(crate) fn metrics_source(&self) -> midge_cluster::ClusterMetricsSource {
        self.node.metrics_source()
    }

    /// Waits up to `grace` for the committer to commit what is queued (the caller has closed
    /// the queue), then stops the Raft node, which closes the store. A clean stop so loses
    /// nothing the core changed before its queue was closed.
    pub(crate) async fn shutdown(self, grace: Duration) {
        // `grace` is what is left of the shutdown's one deadline (possibly nothing): a
        // committer that is already done still finishes, as the future is polled first.
        let Storage {
            node,
            mut committer,
        } = self;
        if tokio::time::timeout(grace, &mut committer).await.is_err() {
            tracing::warn!(
                "Durable changes still uncommitted when the shutdown grace period ended; \
                 stopping storage anyway (nothing they would have acknowledged was sent)."
            );
            committer.abort();
        }
        if let Err(err) = node.shutdown().await {
            tracing::error!("Stopping durable storage failed: {err}.");
        }
    }
}

/// The MANIFEST file an existing store's `CURRENT` names; `None` for a new store.
fn existing_manifest(dir: &Path) -> Option<String> {
    let current = std::fs::read_to_string(dir.join("CURRENT")).ok()?;
    Some(current.trim().to_string())
}

/// Refuses a store that existed before this start but opened without any Raft log. RocksDB
/// rebuilds a database from a MANIFEST truncated at a record boundary as if the lost records
/// were never written; when they held the column families, they come back empty and the node
/// would silently start a new Raft group with nothing in it. An initialized store always has
/// log entries (openraft keeps the latest ones after a snapshot), so an empty log in a store
/// that already existed means damage (or a first start killed within its first milliseconds,
/// when there was nothing to lose: moving the directory away is then the whole fix).
fn check_not_emptied(store: &RocksStore, dir: &Path, manifest: &str) -> Result<(), ServerError> {
    let store_err = |source| ServerError::Store {
        path: dir.to_path_buf(),
        source,
    };
    if LogStore::last(store).map_err(store_err)?.is_some() {
        return Ok(());
    }
    Err(store_err(StoreError::Rocks {
        path: dir.join(manifest).display().to_string(),
        message: "the database opened without any Raft log although it existed before: this \
                  MANIFEST (or CURRENT) is damaged; restore the data directory from a backup \
                  or move it away"
            .to_string(),
    }))
}

/// What a restore brought back, for the startup log line.
struct Summary {
    retained: usize,
    sessions: usize,
    messages: usize,
}

impl Summary {
    fn of(state: &RestoredState) -> Summary {
        Summary {
            retained: state.retained.len(),
            sessions: state.sessions.len(),
            messages: state.sessions.iter().map(|s| s.messages.len()).sum(),
        }
    }
}

/// Feeds the retained changes other nodes commit to this node's broker, until the Raft node
/// stops.
pub(crate) async fn apply_remote(
    mut remote: RemoteCommands,
    broker: Arc<crate::shared_broker::SharedBroker>,
) {
    while let Some(changes) = remote.next(wall_clock).await {
        if !changes.is_empty() {
            broker.apply_replicated(changes);
        }
    }
}

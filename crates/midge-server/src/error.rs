//! Errors of starting and running the server.

use midge_cluster::ClusterError;
use midge_store::StoreError;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener could not bind (port in use, address not local, permission denied).
    #[error("cannot listen on tcp://{addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The admin HTTP listener (`[admin]`) could not bind.
    #[error("cannot listen on http://{addr} (admin)")]
    AdminBind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The cluster gRPC listener (`cluster.bind`) could not bind.
    #[error("cannot listen on grpc://{addr} (cluster.bind)")]
    ClusterBind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The metrics registry refused a metric (a programming error in the metric names).
    /// The pool that holds quiet connections could not make its epoll instance.
    #[error("cannot start the pool for quiet connections (epoll)")]
    DormantPool {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    #[error("cannot register metrics")]
    Metrics(#[source] prometheus::Error),
    /// A listener's certificate, key or password file is unusable.
    #[error("cannot set up [{name}]")]
    Listener {
        /// `listener` or `listeners.NAME`.
        name: String,
        /// What is wrong with which file.
        #[source]
        source: crate::endpoint::EndpointError,
    },
    /// The ACL file (`auth.acl_file`) is unusable.
    #[error("cannot load auth.acl_file")]
    Acl {
        /// What is wrong with it (the message names the line).
        #[source]
        source: midge_auth::AuthError,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The durable store could not be opened: damaged files (the message names them), a
    /// directory locked by another running broker, or permissions.
    #[error("cannot open durable storage in {}", path.display())]
    Store {
        /// The store's directory (`<data_dir>/raft`).
        path: PathBuf,
        /// What RocksDB or the file system said.
        #[source]
        source: StoreError,
    },
    /// The Raft node on the store could not start or read its state back.
    #[error("cannot start durable storage in {}", path.display())]
    Cluster {
        /// The store's directory (`<data_dir>/raft`).
        path: PathBuf,
        /// What failed.
        #[source]
        source: ClusterError,
    },
    /// The data directory belongs to another node of a Raft group.
    #[error(
        "the data in {} belongs to Raft node(s) {voters:?}, not to cluster.node_id = {node_id}",
        path.display()
    )]
    WrongNode {
        /// The store's directory.
        path: PathBuf,
        /// The configured node id.
        node_id: u64,
        /// The voters the store records.
        voters: Vec<u64>,
    },
}

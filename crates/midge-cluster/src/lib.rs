//! midge-cluster: the Raft group that makes Midge's durable state survive crashes and, later,
//! replicates it across nodes.
//!
//! Owns the openraft type configuration, the protobuf formats of `proto/midge.proto` (commands,
//! state machine rows, log entries, Raft metadata, snapshot metadata) and their conversions
//! (`pb_impl`), the openraft storage adapters over `midge-store`'s traits (`LogStorage`,
//! `StateMachine`, snapshots as files under `<data_dir>/snapshots/`), reading the durable state
//! back for `midge_core::Broker::restore` (`restore`), the gRPC transport between nodes
//! (`proto/cluster.proto`: the Raft network, snapshot streaming, joins and forwarded
//! proposals), membership changes (`ClusterControl`), and the node a server starts
//! (`ClusterNode`) with its group-commit `Proposer`.
//!
//! Must not touch: MQTT decisions (the core decides, this crate only persists `DurableOp`s),
//! the bytes on disk (keys, column families and WAL policy are `midge-store`'s), sockets
//! towards MQTT clients (it only serves and calls peers' gRPC), config files, or metrics
//! exporters (it exposes numbers through
//! `ClusterNode::metrics`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Decoding runs on stored and replicated input: outside tests, nothing may unwrap or panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod apply;
mod batch_pace;
mod batcher;
mod blocking;
mod clock;
mod cluster_status;
mod config;
mod control;
mod error;
mod forwarded_batch;
mod joiner;
mod link_handler;
mod link_queue;
mod link_service;
mod link_stream;
mod links;
mod log_storage;
mod metrics;
mod network;
mod node;
mod node_info;
mod offline_sessions;
pub mod pb;
pub mod pb_impl;
mod peer_channels;
mod peer_link;
mod proposer;
mod raft_service;
mod remote_commands;
mod reply_stream;
mod restore;
mod rpc_status;
mod snapshot_builder;
mod snapshot_files;
mod snapshot_stream;
mod state_machine;
mod ticket;
mod type_config;

#[cfg(test)]
mod tests;

pub use clock::WallClock;
pub use cluster_status::{ClusterStatus, MemberStatus};
pub use config::ClusterConfig;
pub use control::{ClusterControl, Joined};
pub use error::ClusterError;
pub use link_handler::{Applied, Inbound, LinkHandler, RouteUpdate};
pub use link_queue::LinkWake;
pub use links::{LinkStats, Links};
pub use log_storage::LogStorage;
pub use metrics::{ClusterMetrics, ClusterMetricsSource};
pub use network::{GrpcNetwork, GrpcPeer, PeerUnreachable};
pub use node::ClusterNode;
pub use node_info::NodeInfo;
pub use peer_channels::PeerChannels;
pub use peer_link::ForwardObserver;
pub use proposer::Proposer;
pub use remote_commands::{Remote, RemoteCommands};
pub use restore::{restore_state, Sessions};
pub use snapshot_builder::SnapshotBuilder;
pub use state_machine::StateMachine;
pub use ticket::Ticket;
pub use type_config::TypeConfig;

/// The openraft instance of a Midge node.
pub type MidgeRaft = openraft::Raft<TypeConfig>;

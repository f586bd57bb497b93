//! midge-server: the I/O shell around the broker core.
//!
//! Owns everything that touches the outside world: the typed, layered configuration and the
//! command line, logging, TCP listeners and the accept loop, one reader task and one writer task
//! per connection, the periodic tick that drives the core's timers, and graceful shutdown.
//!
//! With `storage.enabled` (the default) it also starts the durable store and its one-node Raft
//! group (`midge-store`, `midge-cluster`), restores the broker from it, carries the core's
//! `Persist` actions to a group-commit task, and holds each `SendDurable` acknowledgement in
//! its connection's writer until what it acknowledges is committed.
//!
//! It must not make broker decisions: sessions, QoS flows, subscriptions, retained messages,
//! wills and keepalive belong to `midge-core`, and the wire format to `midge-codec`. This crate
//! only decodes bytes into packets, feeds them to `midge_core::Broker` as events, and carries
//! out the actions the core returns.
//!
//! Startup follows three steps so that configuration errors surface before any port is bound:
//! [`Config::load`], then [`Server::bind`], then [`BoundServer::run`] with a shutdown future.
#![forbid(unsafe_code)]

mod cli;
mod commit_watch;
mod committer;
mod config;
mod connect_sniff;
mod connection;
mod connection_handle;
mod error;
mod listener;
mod logging;
mod server;
mod shared_broker;
mod shutdown;
mod storage;
mod writer;

pub use cli::Cli;
pub use config::{
    BrokerSection, ClusterSection, Config, ConfigError, ConfigOverrides, FsyncMode, LimitsSection,
    ListenerSection, LogFormat, LogSection, StorageSection, DEFAULT_CONFIG_TOML,
};
pub use error::ServerError;
pub use logging::{init_logging, LogInitError};
pub use server::{BoundServer, Server};

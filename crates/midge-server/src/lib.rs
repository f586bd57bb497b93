//! midge-server: the I/O shell around the broker core.
//!
//! Owns everything that touches the outside world: the typed, layered configuration and the
//! command line, logging, TCP listeners and the accept loop, one reader task per connection and a
//! writer task while it has something to write (none for a quiet plain TCP connection, which
//! waits in the dormant pool), the periodic tick that drives the core's timers, and graceful shutdown.
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

mod acl_authorizer;
mod admin;
mod adopter;
mod authenticator;
mod cli;
mod commit_watch;
mod committer;
mod config;
mod connect_sniff;
mod connection;
mod connection_handle;
mod connection_slots;
mod ctl;
mod dormant_pool;
mod endpoint;
mod enhanced_auth;
mod error;
mod guard_counters;
mod ip_guard;
mod listener;
mod live_limits;
mod log_name;
mod logging;
mod moment;
mod outbound_queue;
mod overload;
mod parkable;
mod passwd;
mod peer_identity;
mod publish_latency;
mod publish_rate;
mod reload;
mod security_reload;
mod server;
mod shared_broker;
mod shutdown;
mod staging;
mod storage;
mod tls;
mod traffic;
mod waiting_reads;
mod writer;
mod writer_slot;
mod ws_stream;
mod ws_upgrade;

pub use cli::{Cli, CliCommand};
pub use config::{
    AdminSection, AuthSection, BrokerSection, ClusterSection, Config, ConfigError, ConfigOverrides,
    ConfigSource, FsyncMode, LimitsSection, ListenerProtocol, ListenerSection, LogFormat,
    LogSection, PublishRateAction, StorageSection, DEFAULT_CONFIG_TOML,
};
pub use ctl::{run_ctl, ClientsCommand, ClusterCommand, CtlArgs, CtlCommand, CtlError};
pub use endpoint::EndpointError;
pub use error::ServerError;
pub use guard_counters::{GuardCounters, GuardSnapshot};
pub use logging::{init_logging, LogHandle, LogInitError};
pub use passwd::{run_passwd, PasswdArgs, PasswdError};
pub use reload::{ReloadError, Reloaded, Reloader};
pub use security_reload::SecurityReloadError;
pub use server::{BoundServer, Server};
pub use tls::TlsError;

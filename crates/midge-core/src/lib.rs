//! midge-core: the sans-I/O MQTT broker core.
//!
//! Owns everything a broker decides: sessions and their state machines, QoS 0/1/2 flows in both
//! directions with packet-id management and inflight windows, the subscription trie (with
//! `$share` groups), the retained index, wills, keepalive, session expiry, topic aliases and the
//! `$SYS` topics. It is driven by `Broker::handle(now, event, &mut actions)` and never touches
//! sockets, tokio, config files, logging or metrics exporters: the server feeds it events and
//! carries out the actions it returns, so every behaviour is unit-testable without I/O.
//!
//! With `BrokerConfig::durable` it also emits every change to durable state (retained
//! messages, persistent sessions) as `Action::Persist`, holds back the acknowledgements that
//! depend on them (`Action::SendDurable`), and can be rebuilt from that state after a restart
//! (`Broker::restore`, with `DurableState` to fold the ops); storing them is not its job.
#![forbid(unsafe_code)]

mod access;
mod action;
mod broker;
mod clients;
mod config;
mod connect;
mod connection;
mod delivery;
mod dropped;
mod durable;
mod durable_state;
mod event;
mod forward;
mod guards;
mod hand_off;
mod hash;
mod inbound;
mod inflight;
mod lifecycle;
mod local_routes;
mod message;
mod offline_queue;
mod on_demand;
mod persist;
mod remote_routes;
mod replay;
mod replicated;
mod restore;
mod retained;
pub mod retained_tree;
mod router;
mod session;
mod session_store;
mod shared;
mod shared_redelivery;
mod shared_seqs;
mod shared_strategy;
mod subscribe;
pub mod subscription_tree;
mod sys;
mod sys_load;
mod timers;
mod topic_alias;
mod will;

#[cfg(test)]
mod tests;

pub use access::{Authorizer, ClientIdentity};
pub use action::Action;
pub use broker::{Broker, BrokerStats};
pub use clients::ClientInfo;
pub use config::BrokerConfig;
pub use dropped::{DropCounts, DropReason};
pub use durable::{DurableOp, MessageState, RestoredSession, RestoredState};
pub use durable_state::DurableState;
pub use event::{ConnId, EnhancedAuth, Event};
/// The map for connection ids and other small integer keys the broker makes itself.
pub use hash::IntMap;
pub use local_routes::RouteChange;
pub use message::Message;
pub use remote_routes::NodeId;
pub use retained_tree::RetainedTree;
pub use session::Subscription;
pub use shared_strategy::SharedStrategy;
pub use subscription_tree::SubscriptionTree;
pub use sys::{ClusterSys, TrafficSys};

//! midge-store: durable storage on RocksDB.
//!
//! Owns the bytes on disk: the Raft log (big-endian u64 keys so iteration order is log order,
//! appends in one WriteBatch, WAL synced per the fsync policy before an append returns), Raft
//! metadata (vote, committed, last purged), and the state machine's column families (retained,
//! sessions, subscriptions, messages, qos2, meta). Values are opaque bytes: encoding them
//! (protobuf) and the meaning of Raft log ids belong to `midge-cluster`. Must not know MQTT
//! semantics, openraft, tokio or the network.
//!
//! `MemStore` is an in-memory double with the same key encoding and snapshot format.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod keys;
mod log_store;
mod mem_store;
mod rocks_import;
mod rocks_state;
mod rocks_store;
mod snapshot_format;
mod state_ops;
mod state_store;
mod wal_syncer;

pub use error::StoreError;
pub use log_store::{LogRecord, LogStore};
pub use mem_store::MemStore;
pub use rocks_store::RocksStore;
pub use state_store::{RowVisitor, StateStore, StateTable, StateWrite};

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every append syncs the WAL before it returns (default: nothing acknowledged is lost,
    /// even on power loss).
    Always,
    /// Appends return once in the OS page cache; the WAL is synced every this many
    /// milliseconds. A process crash loses nothing; a power loss or kernel crash can lose the
    /// last interval of acknowledged writes.
    IntervalMs(u64),
}

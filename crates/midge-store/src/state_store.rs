//! The state machine's tables.

use crate::StoreError;
use std::io::{Read, Write};

/// A state machine table (a RocksDB column family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateTable {
    /// Retained messages by topic.
    Retained,
    /// Persistent sessions by client id.
    Sessions,
    /// Subscriptions by (client id, filter).
    Subscriptions,
    /// Outgoing QoS 1/2 messages by (client id, seq).
    Messages,
    /// Incoming QoS 2 packet ids by (client id, packet id).
    Qos2,
    /// State machine metadata (last applied log id, membership) by name.
    Meta,
}

impl StateTable {
    /// Every table, in a fixed order.
    pub const ALL: [StateTable; 6] = [
        StateTable::Retained,
        StateTable::Sessions,
        StateTable::Subscriptions,
        StateTable::Messages,
        StateTable::Qos2,
        StateTable::Meta,
    ];

    /// The column family name.
    pub fn name(self) -> &'static str {
        match self {
            StateTable::Retained => "retained",
            StateTable::Sessions => "sessions",
            StateTable::Subscriptions => "subscriptions",
            StateTable::Messages => "messages",
            StateTable::Qos2 => "qos2",
            StateTable::Meta => "meta",
        }
    }
}

/// One write to the state machine. Keys are built by the store so that every row of a client
/// shares a prefix: `SessionDelete` removes the session and all its subscriptions, messages
/// and QoS 2 ids with range deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// Store a retained message.
    RetainedPut {
        /// Topic name.
        topic: String,
        /// Encoded message.
        value: Vec<u8>,
    },
    /// Remove a retained message.
    RetainedDelete {
        /// Topic name.
        topic: String,
    },
    /// Store a session record.
    SessionPut {
        /// Client id.
        client_id: String,
        /// Encoded record.
        value: Vec<u8>,
    },
    /// Remove a session and every row of it in the other tables.
    SessionDelete {
        /// Client id.
        client_id: String,
    },
    /// Store a subscription.
    SubscriptionPut {
        /// Client id.
        client_id: String,
        /// Filter.
        filter: String,
        /// Encoded subscription.
        value: Vec<u8>,
    },
    /// Remove a subscription.
    SubscriptionDelete {
        /// Client id.
        client_id: String,
        /// Filter.
        filter: String,
    },
    /// Store an outgoing message.
    MessagePut {
        /// Client id.
        client_id: String,
        /// Sequence number.
        seq: u64,
        /// Encoded message and state.
        value: Vec<u8>,
    },
    /// Remove an outgoing message.
    MessageDelete {
        /// Client id.
        client_id: String,
        /// Sequence number.
        seq: u64,
    },
    /// Remember an incoming QoS 2 packet id.
    Qos2Put {
        /// Client id.
        client_id: String,
        /// Packet id.
        packet_id: u16,
    },
    /// Forget an incoming QoS 2 packet id.
    Qos2Delete {
        /// Client id.
        client_id: String,
        /// Packet id.
        packet_id: u16,
    },
    /// Store a metadata value (e.g. "last_applied", "membership").
    MetaPut {
        /// Name.
        key: String,
        /// Encoded value.
        value: Vec<u8>,
    },
}

/// The callback `StateStore::scan` calls per row: `(client id or topic or meta key, second
/// key part, value)`; an error stops the scan and is returned.
pub type RowVisitor<'a> = dyn FnMut(&str, &[u8], &[u8]) -> Result<(), StoreError> + 'a;

/// The state machine's storage. Implemented on RocksDB and in memory; one test suite runs
/// against both.
pub trait StateStore: Send + Sync + 'static {
    /// Applies writes atomically (one WriteBatch), in order.
    fn apply(&self, writes: &[StateWrite]) -> Result<(), StoreError>;
    /// Reads a metadata value.
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Calls `f` for every row of `table` in key order. Rows are decoded back into the parts
    /// they were written with: `(client_id or topic or meta key, second key part, value)`,
    /// where the second part is the filter, the seq (8 bytes big-endian) or the packet id
    /// (2 bytes big-endian), and empty for retained, sessions and meta.
    fn scan(&self, table: StateTable, f: &mut RowVisitor<'_>) -> Result<(), StoreError>;
    /// Like [`StateStore::scan`], limited to the rows of one client of a client-keyed table
    /// (sessions, subscriptions, messages, QoS 2). The default filters a full scan; a store
    /// with ordered keys reads just the client's range.
    fn scan_client(
        &self,
        table: StateTable,
        client_id: &str,
        f: &mut RowVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.scan(table, &mut |key, part, value| {
            if key == client_id {
                f(key, part, value)
            } else {
                Ok(())
            }
        })
    }
    /// Streams a consistent copy of every table to `out` (a point-in-time view; writes may go
    /// on meanwhile) in a self-checking format. Returns the bytes written.
    fn export(&self, out: &mut dyn Write) -> Result<u64, StoreError>;
    /// Replaces every table with what `export` wrote, streamed from `input`; on error nothing
    /// changed.
    fn import(&self, input: &mut dyn Read) -> Result<(), StoreError>;
}

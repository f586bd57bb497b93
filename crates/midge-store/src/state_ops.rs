//! `StateWrite`s lowered to key/value operations, shared by every backend so both apply the
//! same keys and the same client-range deletes.

use crate::keys::{client_prefix, message_key, prefix_end, qos2_key, subscription_key};
use crate::{StateTable, StateWrite, StoreError};

/// One key-level operation on a state table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateOp<'a> {
    /// Insert or replace a row.
    Put {
        table: StateTable,
        key: Vec<u8>,
        value: &'a [u8],
    },
    /// Remove a row.
    Delete { table: StateTable, key: Vec<u8> },
    /// Remove every row with `start <= key < end`.
    DeleteRange {
        table: StateTable,
        start: Vec<u8>,
        end: Vec<u8>,
    },
}

/// The tables holding per-client rows beside the session row, cleared by `SessionDelete`.
const CLIENT_TABLES: [StateTable; 3] = [
    StateTable::Subscriptions,
    StateTable::Messages,
    StateTable::Qos2,
];

/// Lowers writes in order. Fails before anything is applied if any write is invalid, which is
/// what lets callers apply the result all-or-nothing.
pub(crate) fn lower(writes: &[StateWrite]) -> Result<Vec<StateOp<'_>>, StoreError> {
    let mut ops = Vec::with_capacity(writes.len());
    for write in writes {
        match write {
            StateWrite::RetainedPut { topic, value } => ops.push(StateOp::Put {
                table: StateTable::Retained,
                key: topic.as_bytes().to_vec(),
                value,
            }),
            StateWrite::RetainedDelete { topic } => ops.push(StateOp::Delete {
                table: StateTable::Retained,
                key: topic.as_bytes().to_vec(),
            }),
            StateWrite::SessionPut { client_id, value } => ops.push(StateOp::Put {
                table: StateTable::Sessions,
                key: client_prefix(client_id)?,
                value,
            }),
            StateWrite::SessionDelete { client_id } => {
                let prefix = client_prefix(client_id)?;
                let end = prefix_end(&prefix).ok_or_else(|| {
                    StoreError::Invalid(format!("client id {client_id:?} has no key range end"))
                })?;
                for table in CLIENT_TABLES {
                    ops.push(StateOp::DeleteRange {
                        table,
                        start: prefix.clone(),
                        end: end.clone(),
                    });
                }
                ops.push(StateOp::Delete {
                    table: StateTable::Sessions,
                    key: prefix,
                });
            }
            StateWrite::SubscriptionPut {
                client_id,
                filter,
                value,
            } => ops.push(StateOp::Put {
                table: StateTable::Subscriptions,
                key: subscription_key(client_id, filter)?,
                value,
            }),
            StateWrite::SubscriptionDelete { client_id, filter } => ops.push(StateOp::Delete {
                table: StateTable::Subscriptions,
                key: subscription_key(client_id, filter)?,
            }),
            StateWrite::MessagePut {
                client_id,
                seq,
                value,
            } => ops.push(StateOp::Put {
                table: StateTable::Messages,
                key: message_key(client_id, *seq)?,
                value,
            }),
            StateWrite::MessageDelete { client_id, seq } => ops.push(StateOp::Delete {
                table: StateTable::Messages,
                key: message_key(client_id, *seq)?,
            }),
            StateWrite::Qos2Put {
                client_id,
                packet_id,
            } => ops.push(StateOp::Put {
                table: StateTable::Qos2,
                key: qos2_key(client_id, *packet_id)?,
                value: &[],
            }),
            StateWrite::Qos2Delete {
                client_id,
                packet_id,
            } => ops.push(StateOp::Delete {
                table: StateTable::Qos2,
                key: qos2_key(client_id, *packet_id)?,
            }),
            StateWrite::MetaPut { key, value } => ops.push(StateOp::Put {
                table: StateTable::Meta,
                key: key.as_bytes().to_vec(),
                value,
            }),
        }
    }
    Ok(ops)
}

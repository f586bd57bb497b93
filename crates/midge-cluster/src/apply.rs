//! Turning committed commands into state machine writes.

use crate::offline_sessions::OfflineSessions;
use crate::pb;
use crate::pb::command::Op;
use crate::pb_impl::{packet_id_from_pb, FieldError};
use midge_store::StateWrite;
use prost::Message;

/// Appends the writes of one command (none for `NodeReleased`, which stores nothing). Values
/// are the protobuf rows of `proto/midge.proto`; session records get their offline-since time
/// from `offline`.
pub(crate) fn command_writes(
    command: pb::Command,
    offline: &mut OfflineSessions,
    writes: &mut Vec<StateWrite>,
) -> Result<(), FieldError> {
    let Some(op) = command.op else {
        // A command of a kind this version does not know (a newer node proposed it): it
        // changes nothing this version stores.
        tracing::warn!(shard_key = %command.shard_key, "skipping a command of an unknown kind");
        return Ok(());
    };
    let write = match op {
        Op::RetainedSet(c) => StateWrite::RetainedPut {
            value: c
                .message
                .ok_or(FieldError::missing("RetainedSet.message"))?
                .encode_to_vec(),
            topic: c.topic,
        },
        Op::RetainedClear(c) => StateWrite::RetainedDelete { topic: c.topic },
        Op::SessionPut(c) => {
            let record = pb::SessionRecord {
                expiry_interval: c.expiry_interval,
                will: c.will,
                connected: c.connected,
                offline_since_ms: offline.put(&c.client_id, c.connected, command.timestamp_ms),
                owner_node: c.owner_node,
            };
            StateWrite::SessionPut {
                client_id: c.client_id,
                value: record.encode_to_vec(),
            }
        }
        Op::SessionDelete(c) => {
            offline.remove(&c.client_id);
            StateWrite::SessionDelete {
                client_id: c.client_id,
            }
        }
        Op::SubscriptionPut(c) => StateWrite::SubscriptionPut {
            value: c
                .subscription
                .ok_or(FieldError::missing("SubscriptionPut.subscription"))?
                .encode_to_vec(),
            client_id: c.client_id,
            filter: c.filter,
        },
        Op::SubscriptionDelete(c) => StateWrite::SubscriptionDelete {
            client_id: c.client_id,
            filter: c.filter,
        },
        Op::MessagePut(c) => StateWrite::MessagePut {
            value: c
                .message
                .ok_or(FieldError::missing("MessagePut.message"))?
                .encode_to_vec(),
            client_id: c.client_id,
            seq: c.seq,
        },
        Op::MessageDelete(c) => StateWrite::MessageDelete {
            client_id: c.client_id,
            seq: c.seq,
        },
        Op::Qos2ReceivedPut(c) => StateWrite::Qos2Put {
            packet_id: packet_id_from_pb(c.packet_id, "Qos2ReceivedPut.packet_id")?,
            client_id: c.client_id,
        },
        Op::Qos2ReceivedDelete(c) => StateWrite::Qos2Delete {
            packet_id: packet_id_from_pb(c.packet_id, "Qos2ReceivedDelete.packet_id")?,
            client_id: c.client_id,
        },
        Op::NodeReleased(_) => return Ok(()),
    };
    writes.push(write);
    Ok(())
}

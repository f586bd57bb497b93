//! `midge_core::DurableOp` <-> `pb::Command`.

use super::{message_from_pb, message_state_from_pb, message_state_to_pb, message_to_pb};
use super::{packet_id_from_pb, FieldError};
use crate::pb::command::Op;
use crate::{pb, WallClock};
use midge_codec::LastWill;
use midge_core::{DurableOp, Subscription};
use std::sync::Arc;

/// What a change belongs to for sharding: the topic of a retained message, the client id of
/// everything session-related.
pub fn shard_key(op: &DurableOp) -> &str {
    match op {
        DurableOp::RetainedSet { topic, .. } | DurableOp::RetainedClear { topic } => topic,
        DurableOp::SessionPut { client_id, .. }
        | DurableOp::SessionDelete { client_id }
        | DurableOp::SubscriptionPut { client_id, .. }
        | DurableOp::SubscriptionDelete { client_id, .. }
        | DurableOp::MessagePut { client_id, .. }
        | DurableOp::MessageDelete { client_id, .. }
        | DurableOp::Qos2ReceivedPut { client_id, .. }
        | DurableOp::Qos2ReceivedDelete { client_id, .. } => client_id,
    }
}

/// The command for one change, stamped with `clock.unix_ms`; deadlines become unix ms.
pub fn command_from_op(op: &DurableOp, clock: &WallClock) -> pb::Command {
    let id = |client_id: &Arc<str>| client_id.to_string();
    let op_pb = match op {
        DurableOp::RetainedSet { topic, message } => Op::RetainedSet(pb::RetainedSet {
            topic: topic.to_string(),
            message: Some(message_to_pb(message, clock)),
        }),
        DurableOp::RetainedClear { topic } => Op::RetainedClear(pb::RetainedClear {
            topic: topic.to_string(),
        }),
        DurableOp::SessionPut {
            client_id,
            expiry_interval,
            will,
            connected,
        } => Op::SessionPut(pb::SessionPut {
            client_id: id(client_id),
            expiry_interval: *expiry_interval,
            will: will.as_ref().map(pb::LastWill::from),
            connected: *connected,
            // Stamped by the proposer, which knows its node.
            owner_node: 0,
        }),
        DurableOp::SessionDelete { client_id } => Op::SessionDelete(pb::SessionDelete {
            client_id: id(client_id),
        }),
        DurableOp::SubscriptionPut {
            client_id,
            filter,
            subscription,
        } => Op::SubscriptionPut(pb::SubscriptionPut {
            client_id: id(client_id),
            filter: filter.clone(),
            subscription: Some(subscription.into()),
        }),
        DurableOp::SubscriptionDelete { client_id, filter } => {
            Op::SubscriptionDelete(pb::SubscriptionDelete {
                client_id: id(client_id),
                filter: filter.clone(),
            })
        }
        DurableOp::MessagePut {
            client_id,
            seq,
            message,
            state,
        } => {
            let (state, packet_id) = message_state_to_pb(*state);
            Op::MessagePut(pb::MessagePut {
                client_id: id(client_id),
                seq: *seq,
                message: Some(pb::SessionMessage {
                    message: Some(message_to_pb(message, clock)),
                    state: state as i32,
                    packet_id,
                }),
            })
        }
        DurableOp::MessageDelete { client_id, seq } => Op::MessageDelete(pb::MessageDelete {
            client_id: id(client_id),
            seq: *seq,
        }),
        DurableOp::Qos2ReceivedPut {
            client_id,
            packet_id,
        } => Op::Qos2ReceivedPut(pb::Qos2ReceivedPut {
            client_id: id(client_id),
            packet_id: u32::from(*packet_id),
        }),
        DurableOp::Qos2ReceivedDelete {
            client_id,
            packet_id,
        } => Op::Qos2ReceivedDelete(pb::Qos2ReceivedDelete {
            client_id: id(client_id),
            packet_id: u32::from(*packet_id),
        }),
    };
    pb::Command {
        timestamp_ms: clock.unix_ms,
        shard_key: shard_key(op).to_string(),
        op: Some(op_pb),
    }
}

/// The change a command stands for; unix-ms deadlines become instants by `clock`.
pub fn op_from_command(command: pb::Command, clock: &WallClock) -> Result<DurableOp, FieldError> {
    let arc = |s: String| -> Arc<str> { Arc::from(s) };
    let op = command.op.ok_or(FieldError::missing("Command.op"))?;
    Ok(match op {
        Op::RetainedSet(c) => DurableOp::RetainedSet {
            topic: arc(c.topic),
            message: message_from_pb(
                c.message
                    .ok_or(FieldError::missing("RetainedSet.message"))?,
                clock,
            )?,
        },
        Op::RetainedClear(c) => DurableOp::RetainedClear {
            topic: arc(c.topic),
        },
        Op::SessionPut(c) => DurableOp::SessionPut {
            client_id: arc(c.client_id),
            expiry_interval: c.expiry_interval,
            will: c.will.map(LastWill::try_from).transpose()?,
            connected: c.connected,
        },
        Op::SessionDelete(c) => DurableOp::SessionDelete {
            client_id: arc(c.client_id),
        },
        Op::SubscriptionPut(c) => DurableOp::SubscriptionPut {
            client_id: arc(c.client_id),
            filter: c.filter,
            subscription: Subscription::try_from(
                c.subscription
                    .ok_or(FieldError::missing("SubscriptionPut.subscription"))?,
            )?,
        },
        Op::SubscriptionDelete(c) => DurableOp::SubscriptionDelete {
            client_id: arc(c.client_id),
            filter: c.filter,
        },
        Op::MessagePut(c) => {
            let m = c.message.ok_or(FieldError::missing("MessagePut.message"))?;
            DurableOp::MessagePut {
                client_id: arc(c.client_id),
                seq: c.seq,
                state: message_state_from_pb(m.state, m.packet_id)?,
                message: message_from_pb(
                    m.message
                        .ok_or(FieldError::missing("SessionMessage.message"))?,
                    clock,
                )?,
            }
        }
        Op::MessageDelete(c) => DurableOp::MessageDelete {
            client_id: arc(c.client_id),
            seq: c.seq,
        },
        Op::Qos2ReceivedPut(c) => DurableOp::Qos2ReceivedPut {
            client_id: arc(c.client_id),
            packet_id: packet_id_from_pb(c.packet_id, "Qos2ReceivedPut.packet_id")?,
        },
        Op::Qos2ReceivedDelete(c) => DurableOp::Qos2ReceivedDelete {
            client_id: arc(c.client_id),
            packet_id: packet_id_from_pb(c.packet_id, "Qos2ReceivedDelete.packet_id")?,
        },
        Op::NodeReleased(_) => {
            return Err(FieldError {
                field: "Command.op",
                reason: "node_released changes no broker state".to_string(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::strategies::{clock, durable_op};
    use proptest::prelude::*;
    use prost::Message as _;

    proptest! {
        #[test]
        fn round_trips_through_bytes(op in durable_op()) {
            let clock = clock();
            let command = command_from_op(&op, &clock);
            prop_assert_eq!(command.timestamp_ms, clock.unix_ms);
            prop_assert_eq!(command.shard_key.as_str(), shard_key(&op));
            let bytes = command.encode_to_vec();
            let decoded = pb::Command::decode(bytes.as_slice()).unwrap();
            prop_assert_eq!(op_from_command(decoded, &clock).unwrap(), op);
        }
    }

    #[test]
    fn rejects_a_command_without_op() {
        let err = op_from_command(pb::Command::default(), &WallClock::now()).unwrap_err();
        assert_eq!(err, FieldError::missing("Command.op"));
    }
}

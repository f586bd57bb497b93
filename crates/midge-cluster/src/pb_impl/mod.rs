//! Conversions between the protobuf types of [`crate::pb`] and the core's and openraft's types,
//! one conversion per file.
//!
//! Decoding never trusts its input: every out-of-range value becomes a [`FieldError`] naming
//! the field. Deadlines are converted with a [`crate::WallClock`]: stored as absolute unix ms,
//! handed to the core as `Instant`s.

mod impl_append_entries;
mod impl_durable_op;
mod impl_entry;
mod impl_last_will;
mod impl_log_id;
mod impl_membership;
mod impl_message;
mod impl_message_state;
mod impl_node;
mod impl_publish_properties;
mod impl_snapshot_meta;
mod impl_subscription;
mod impl_user_property;
mod impl_vote;
mod impl_vote_request;
#[cfg(test)]
pub(crate) mod strategies;

pub use impl_durable_op::{command_from_op, op_from_command, shard_key};
pub use impl_message::{message_from_pb, message_to_pb};
pub use impl_message_state::{message_state_from_pb, message_state_to_pb};

use midge_codec::{PacketId, QoS};

/// A decoded protobuf field that does not fit the type it stands for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {reason}")]
pub struct FieldError {
    /// `Message.field`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    /// A field that must be present but is not.
    pub fn missing(field: &'static str) -> FieldError {
        FieldError {
            field,
            reason: "missing".to_string(),
        }
    }

    /// A field whose value is out of range.
    pub fn out_of_range(field: &'static str, value: impl std::fmt::Display) -> FieldError {
        FieldError {
            field,
            reason: format!("value {value} out of range"),
        }
    }
}

/// A QoS from its protobuf number.
pub(crate) fn qos_from_pb(value: u32, field: &'static str) -> Result<QoS, FieldError> {
    u8::try_from(value)
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| FieldError::out_of_range(field, value))
}

/// A non-zero packet id from its protobuf number.
pub(crate) fn packet_id_from_pb(value: u32, field: &'static str) -> Result<PacketId, FieldError> {
    match PacketId::try_from(value) {
        Ok(id) if id != 0 => Ok(id),
        _ => Err(FieldError::out_of_range(field, value)),
    }
}

/// A one-byte property from its protobuf number.
pub(crate) fn byte_from_pb(value: u32, field: &'static str) -> Result<u8, FieldError> {
    u8::try_from(value).map_err(|_| FieldError::out_of_range(field, value))
}

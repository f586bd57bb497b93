//! `midge_core::MessageState` <-> (`pb::DeliveryState`, packet id).

use super::{packet_id_from_pb, FieldError};
use crate::pb;
use midge_core::MessageState;

/// The delivery state and packet id fields of a `pb::SessionMessage`.
pub fn message_state_to_pb(state: MessageState) -> (pb::DeliveryState, u32) {
    match state {
        MessageState::Queued => (pb::DeliveryState::Queued, 0),
        MessageState::Sent { packet_id } => (pb::DeliveryState::Sent, u32::from(packet_id)),
        MessageState::Released { packet_id } => (pb::DeliveryState::Released, u32::from(packet_id)),
    }
}

/// The inverse of [`message_state_to_pb`], from the raw enum number.
pub fn message_state_from_pb(state: i32, packet_id: u32) -> Result<MessageState, FieldError> {
    let field = "SessionMessage.packet_id";
    match pb::DeliveryState::try_from(state) {
        Ok(pb::DeliveryState::Queued) => Ok(MessageState::Queued),
        Ok(pb::DeliveryState::Sent) => Ok(MessageState::Sent {
            packet_id: packet_id_from_pb(packet_id, field)?,
        }),
        Ok(pb::DeliveryState::Released) => Ok(MessageState::Released {
            packet_id: packet_id_from_pb(packet_id, field)?,
        }),
        Err(_) => Err(FieldError::out_of_range("SessionMessage.state", state)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::strategies::message_state;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(state in message_state()) {
            let (kind, id) = message_state_to_pb(state);
            prop_assert_eq!(message_state_from_pb(kind as i32, id).unwrap(), state);
        }
    }

    #[test]
    fn rejects_unknown_state_and_zero_packet_id() {
        assert!(message_state_from_pb(7, 1).is_err());
        assert!(message_state_from_pb(pb::DeliveryState::Sent as i32, 0).is_err());
    }
}

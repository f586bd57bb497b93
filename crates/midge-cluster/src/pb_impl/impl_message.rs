//! `midge_core::Message` <-> `pb::StoredMessage`, with the expiry as an absolute unix-ms time.

use super::{packet_id_from_pb, qos_from_pb, FieldError};
use crate::{pb, WallClock};
use midge_codec::{Publish, PublishProperties};
use midge_core::Message;
use std::sync::Arc;

/// The stored form of a message; its expiry instant becomes unix ms by `clock`.
pub fn message_to_pb(message: &Message, clock: &WallClock) -> pb::StoredMessage {
    let p = &message.publish;
    pb::StoredMessage {
        topic: p.topic.to_string(),
        payload: p.payload.clone(),
        qos: p.qos as u32,
        retain: p.retain,
        dup: p.dup,
        packet_id: p.packet_id.map(u32::from),
        // Most messages carry no properties: store none rather than an empty set.
        properties: (!p.properties.is_empty()).then(|| (&*p.properties).into()),
        expires_at_ms: message.expires_at.map(|at| clock.to_unix_ms(at)),
    }
}

/// A message read back; its unix-ms expiry becomes an instant by `clock` (a deadline already
/// past maps to an instant no later than `clock.instant`, so the message reads as expired).
pub fn message_from_pb(
    stored: pb::StoredMessage,
    clock: &WallClock,
) -> Result<Message, FieldError> {
    let properties = match stored.properties {
        Some(p) => PublishProperties::try_from(p)?,
        None => PublishProperties::default(),
    };
    let packet_id = stored
        .packet_id
        .map(|v| packet_id_from_pb(v, "StoredMessage.packet_id"))
        .transpose()?;
    let publish = Publish {
        dup: stored.dup,
        qos: qos_from_pb(stored.qos, "StoredMessage.qos")?,
        retain: stored.retain,
        topic: Arc::from(stored.topic),
        packet_id,
        properties: properties.into(),
        payload: stored.payload,
    };
    Ok(Message {
        publish,
        expires_at: stored.expires_at_ms.map(|ms| clock.to_instant(ms)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb_impl::strategies::message;
    use proptest::prelude::*;
    use prost::Message as _;

    proptest! {
        #[test]
        fn round_trips_through_bytes(m in message()) {
            let clock = crate::pb_impl::strategies::clock();
            let bytes = message_to_pb(&m, &clock).encode_to_vec();
            let decoded = pb::StoredMessage::decode(bytes.as_slice()).unwrap();
            prop_assert_eq!(message_from_pb(decoded, &clock).unwrap(), m);
        }
    }

    #[test]
    fn rejects_bad_qos_and_packet_id() {
        let clock = WallClock::now();
        let bad = pb::StoredMessage {
            qos: 3,
            ..Default::default()
        };
        assert_eq!(
            message_from_pb(bad, &clock).unwrap_err().field,
            "StoredMessage.qos"
        );
        let bad = pb::StoredMessage {
            packet_id: Some(0),
            ..Default::default()
        };
        assert_eq!(
            message_from_pb(bad, &clock).unwrap_err().field,
            "StoredMessage.packet_id"
        );
    }
}

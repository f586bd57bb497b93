//! UNSUBSCRIBE (3.10).

use crate::primitives::{write_packet_id, Reader, Sink};
use crate::properties;
use crate::subscribe::{read_filter, write_filter};
use crate::{DecodeError, EncodeError, PacketId, ProtocolVersion, UserProperties};

/// An UNSUBSCRIBE packet; it carries at least one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Topic filters, in order.
    pub filters: Vec<String>,
    /// v5 user properties (the only property UNSUBSCRIBE has).
    pub user_properties: UserProperties,
}

impl Unsubscribe {
    /// Decodes the variable header and payload.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Unsubscribe, DecodeError> {
        let packet_id = r.packet_id()?;
        let user_properties = if version.is_v5() {
            properties::decode_user(r)?
        } else {
            UserProperties::new()
        };
        if r.is_empty() {
            // MQTT-3.10.3-2
            return Err(DecodeError::Protocol("UNSUBSCRIBE without topic filters"));
        }
        let mut filters = Vec::new();
        while !r.is_empty() {
            filters.push(read_filter(r)?);
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            user_properties,
        })
    }

    /// Encodes the variable header and payload; properties are left out for v3.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::InvalidField(
                "UNSUBSCRIBE without topic filters",
            ));
        }
        write_packet_id(s, self.packet_id)?;
        if version.is_v5() {
            properties::encode_user(&self.user_properties, s)?;
        }
        for filter in &self.filters {
            write_filter(s, filter)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_malformed, assert_protocol, decode_frame, round_trip, s};
    use crate::Packet;

    const V5: ProtocolVersion = ProtocolVersion::V5;
    const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

    #[test]
    fn no_filters_is_a_protocol_error() {
        // MQTT-3.10.3-2: an UNSUBSCRIBE with no payload is a Protocol Error
        assert_protocol(0xA2, &[0, 1], V311);
        assert_protocol(0xA2, &[0, 1, 0], V5);
    }

    #[test]
    fn empty_filter_is_malformed() {
        // MQTT-4.7.3-1
        assert_malformed(0xA2, &[0, 1, 0, 0], V311);
    }

    #[test]
    fn packet_id_0_is_malformed() {
        // MQTT-2.3.1-1 (3.1.1) / MQTT-2.2.1-3 (5.0)
        assert_malformed(0xA2, &[&[0, 0][..], &s("a")].concat(), V311);
    }

    #[test]
    fn only_user_properties_are_allowed() {
        // 3.10.2.1
        assert_protocol(0xA2, &[&[0, 1, 2, 0x0B, 1][..], &s("a")].concat(), V5);
    }

    #[test]
    fn decodes_filters_in_order() {
        let p = decode_frame(0xA2, &[&[0, 1][..], &s("a/#"), &s("b")].concat(), V311).unwrap();
        let want = Unsubscribe {
            packet_id: 1,
            filters: vec!["a/#".into(), "b".into()],
            user_properties: vec![],
        };
        assert_eq!(p, Packet::Unsubscribe(want.clone()));
        round_trip(&Packet::Unsubscribe(want), V5);
    }

    #[test]
    fn encoding_refuses_no_filters() {
        let p = Packet::Unsubscribe(Unsubscribe {
            packet_id: 1,
            filters: vec![],
            user_properties: vec![],
        });
        assert!(crate::encoded_len(&p, V5).is_err());
    }
}

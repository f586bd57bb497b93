//! SUBACK (3.9).

use crate::primitives::{write_packet_id, Reader, Sink};
use crate::properties;
use crate::reason::ReasonContext;
use crate::{
    AckProperties, DecodeError, EncodeError, PacketId, ProtocolVersion, ReasonCode, Sparse,
};

/// A SUBACK. v3 return codes: Success/GrantedQoS1/GrantedQoS2 map to 0/1/2, any error to 0x80.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One reason code per filter, in order.
    pub reasons: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: Sparse<AckProperties>,
}

impl SubAck {
    /// Decodes the variable header and payload.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<SubAck, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            properties::decode(r)?
        } else {
            Sparse::none()
        };
        // One code per filter of the SUBSCRIBE, which has at least one (MQTT-3.8.3-3).
        if r.is_empty() {
            return Err(DecodeError::Malformed("SUBACK without reason codes"));
        }
        let mut reasons = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let code = r.u8()?;
            let reason = if version.is_v5() {
                ReasonCode::from_u8(code).filter(|c| c.allowed_in(ReasonContext::SubAck))
            } else {
                // MQTT-3.9.3-2 (3.1.1): only 0x00, 0x01, 0x02 and 0x80.
                match code {
                    0x00 => Some(ReasonCode::Success),
                    0x01 => Some(ReasonCode::GrantedQoS1),
                    0x02 => Some(ReasonCode::GrantedQoS2),
                    0x80 => Some(ReasonCode::UnspecifiedError),
                    _ => None,
                }
            };
            reasons.push(reason.ok_or(DecodeError::Malformed("invalid SUBACK reason code"))?);
        }
        Ok(SubAck {
            packet_id,
            reasons,
            properties,
        })
    }

    /// Encodes the variable header and payload; in v3 every failure becomes 0x80.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.reasons.is_empty() {
            return Err(EncodeError::InvalidField("SUBACK without reason codes"));
        }
        if self
            .reasons
            .iter()
            .any(|c| !c.allowed_in(ReasonContext::SubAck))
        {
            return Err(EncodeError::InvalidField(
                "reason code not valid for SUBACK",
            ));
        }
        write_packet_id(s, self.packet_id)?;
        if version.is_v5() {
            properties::encode(&self.properties, s)?;
            for &reason in &self.reasons {
                s.write_u8(reason as u8);
            }
        } else {
            for &reason in &self.reasons {
                s.write_u8(if reason.is_error() {
                    0x80
                } else {
                    reason as u8
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_malformed, decode_frame, round_trip, V3_VERSIONS};
    use crate::Packet;

    const V5: ProtocolVersion = ProtocolVersion::V5;

    fn suback(reasons: Vec<ReasonCode>) -> SubAck {
        SubAck {
            packet_id: 4,
            reasons,
            properties: Sparse::none(),
        }
    }

    #[test]
    fn v3_return_codes() {
        for v in V3_VERSIONS {
            let p = decode_frame(0x90, &[0, 4, 0, 1, 2, 0x80], v).unwrap();
            let want = suback(vec![
                ReasonCode::Success,
                ReasonCode::GrantedQoS1,
                ReasonCode::GrantedQoS2,
                ReasonCode::UnspecifiedError,
            ]);
            assert_eq!(p, Packet::SubAck(want));
            // MQTT-3.9.3-2 (3.1.1): anything else is reserved.
            for code in [3u8, 0x10, 0x87, 0x8F] {
                assert_malformed(0x90, &[0, 4, code], v);
            }
        }
    }

    #[test]
    fn v3_encoding_maps_every_failure_to_0x80() {
        let p = Packet::SubAck(suback(vec![
            ReasonCode::GrantedQoS1,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
        ]));
        let mut buf = bytes::BytesMut::new();
        crate::encode(&p, ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0x90, 5, 0, 4, 0x01, 0x80, 0x80]);
    }

    #[test]
    fn v5_reason_codes() {
        let p = Packet::SubAck(suback(vec![
            ReasonCode::GrantedQoS2,
            ReasonCode::WildcardSubscriptionsNotSupported,
        ]));
        assert_eq!(&round_trip(&p, V5)[..], &[0x90, 5, 0, 4, 0, 0x02, 0xA2]);
        // 3.9.3: 0x10 and 0x92 are not SUBACK codes.
        assert_malformed(0x90, &[0, 4, 0, 0x10], V5);
        assert_malformed(0x90, &[0, 4, 0, 0x92], V5);
    }

    #[test]
    fn no_reason_codes_is_malformed() {
        // One code per filter of a SUBSCRIBE, which has at least one (MQTT-3.8.3-3).
        assert_malformed(0x90, &[0, 4], ProtocolVersion::V3_1_1);
        assert_malformed(0x90, &[0, 4, 0], V5);
        assert!(crate::encoded_len(&Packet::SubAck(suback(vec![])), V5).is_err());
    }

    #[test]
    fn encoding_refuses_a_non_suback_code() {
        let p = Packet::SubAck(suback(vec![ReasonCode::NoMatchingSubscribers]));
        assert!(crate::encoded_len(&p, V5).is_err());
        assert!(crate::encoded_len(&p, ProtocolVersion::V3_1_1).is_err());
    }
}

//! UNSUBACK (3.11).

use crate::primitives::{write_packet_id, Reader, Sink};
use crate::properties;
use crate::reason::ReasonContext;
use crate::{
    AckProperties, DecodeError, EncodeError, PacketId, ProtocolVersion, ReasonCode, Sparse,
};

/// An UNSUBACK. v3 has no payload, so `reasons` is empty when decoded from v3 and ignored when
/// encoding v3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// One reason code per filter (v5).
    pub reasons: Vec<ReasonCode>,
    /// v5 properties.
    pub properties: Sparse<AckProperties>,
}

impl UnsubAck {
    /// Decodes the variable header and (v5) payload.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<UnsubAck, DecodeError> {
        let packet_id = r.packet_id()?;
        if !version.is_v5() {
            // 3.11 (3.1.1): just the packet identifier; the caller rejects trailing bytes.
            return Ok(UnsubAck {
                packet_id,
                reasons: Vec::new(),
                properties: Sparse::none(),
            });
        }
        let properties = properties::decode(r)?;
        // 3.11.3: one code per filter of the UNSUBSCRIBE, which has at least one.
        if r.is_empty() {
            return Err(DecodeError::Malformed("UNSUBACK without reason codes"));
        }
        let mut reasons = Vec::with_capacity(r.remaining());
        while !r.is_empty() {
            let reason = ReasonCode::from_u8(r.u8()?)
                .filter(|c| c.allowed_in(ReasonContext::UnsubAck))
                .ok_or(DecodeError::Malformed("invalid UNSUBACK reason code"))?;
            reasons.push(reason);
        }
        Ok(UnsubAck {
            packet_id,
            reasons,
            properties,
        })
    }

    /// Encodes the variable header and (v5) payload; v3 sends only the packet identifier.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        write_packet_id(s, self.packet_id)?;
        if !version.is_v5() {
            return Ok(());
        }
        if self.reasons.is_empty() {
            return Err(EncodeError::InvalidField("UNSUBACK without reason codes"));
        }
        properties::encode(&self.properties, s)?;
        for &reason in &self.reasons {
            if !reason.allowed_in(ReasonContext::UnsubAck) {
                return Err(EncodeError::InvalidField(
                    "reason code not valid for UNSUBACK",
                ));
            }
            s.write_u8(reason as u8);
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

    #[test]
    fn v3_is_just_the_packet_id() {
        // 3.11.1 (3.1.1): remaining length 2, the packet identifier.
        for v in V3_VERSIONS {
            let p = decode_frame(0xB0, &[0, 9], v).unwrap();
            assert_eq!(
                p,
                Packet::UnsubAck(UnsubAck {
                    packet_id: 9,
                    reasons: vec![],
                    properties: Sparse::none(),
                })
            );
            assert_malformed(0xB0, &[0, 9, 0], v);
        }
    }

    #[test]
    fn v3_encoding_leaves_out_reasons() {
        let p = Packet::UnsubAck(UnsubAck {
            packet_id: 9,
            reasons: vec![ReasonCode::NoSubscriptionExisted],
            properties: Sparse::none(),
        });
        let mut buf = bytes::BytesMut::new();
        crate::encode(&p, ProtocolVersion::V3_1, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0xB0, 2, 0, 9]);
        assert_eq!(&round_trip(&p, V5)[..], &[0xB0, 4, 0, 9, 0, 0x11]);
    }

    #[test]
    fn v5_reasons_must_be_unsuback_codes() {
        // 3.11.3: 0x10 is a PUBACK code, not an UNSUBACK one.
        assert_malformed(0xB0, &[0, 9, 0, 0x10], V5);
        assert_malformed(0xB0, &[0, 9, 0, 0x11, 0x02], V5);
    }

    #[test]
    fn v5_needs_at_least_one_reason() {
        assert_malformed(0xB0, &[0, 9, 0], V5);
        assert_malformed(0xB0, &[0, 9], V5);
    }
}

//! PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7): one shape, four packet types.

use crate::primitives::{write_packet_id, Reader, Sink};
use crate::properties;
use crate::reason::ReasonContext;
use crate::{
    AckProperties, DecodeError, EncodeError, PacketId, ProtocolVersion, ReasonCode, Sparse,
};

/// Which of the four acknowledgement packets this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckKind {
    /// PUBACK (QoS 1).
    PubAck,
    /// PUBREC (QoS 2, step 1).
    PubRec,
    /// PUBREL (QoS 2, step 2; fixed header flags 0b0010).
    PubRel,
    /// PUBCOMP (QoS 2, step 3).
    PubComp,
}

/// An acknowledgement packet. The reason code and properties are v5 only; in v5 a Success code
/// with no properties is encoded in the short 2-byte form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Which acknowledgement.
    pub kind: AckKind,
    /// Packet identifier being acknowledged.
    pub packet_id: PacketId,
    /// v5 reason code (Success for v3).
    pub reason: ReasonCode,
    /// v5 properties.
    pub properties: Sparse<AckProperties>,
}

impl Ack {
    /// A successful acknowledgement with no properties.
    pub fn new(kind: AckKind, packet_id: PacketId) -> Ack {
        Ack {
            kind,
            packet_id,
            reason: ReasonCode::Success,
            properties: Sparse::none(),
        }
    }
}

impl AckKind {
    /// The spec table of reason codes this packet may carry.
    fn reasons(self) -> ReasonContext {
        match self {
            AckKind::PubAck | AckKind::PubRec => ReasonContext::PubAck,
            AckKind::PubRel | AckKind::PubComp => ReasonContext::PubRel,
        }
    }
}

impl Ack {
    /// Decodes the variable header of a PUBACK/PUBREC/PUBREL/PUBCOMP.
    pub(crate) fn decode(
        kind: AckKind,
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Ack, DecodeError> {
        let packet_id = r.packet_id()?;
        if !version.is_v5() {
            // v3 acks are exactly the packet identifier; the caller rejects trailing bytes.
            return Ok(Ack::new(kind, packet_id));
        }
        let (reason, properties) = properties::decode_with_reason(
            r,
            kind.reasons(),
            "invalid reason code for this acknowledgement",
        )?;
        Ok(Ack {
            kind,
            packet_id,
            reason,
            properties,
        })
    }

    /// Encodes the variable header, in the shortest v5 form the contents allow. Reason and
    /// properties do not exist in v3 and are left out there.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        write_packet_id(s, self.packet_id)?;
        if !version.is_v5() {
            return Ok(());
        }
        if !self.reason.allowed_in(self.kind.reasons()) {
            return Err(EncodeError::InvalidField(
                "reason code not valid for this acknowledgement",
            ));
        }
        properties::encode_with_reason(s, self.reason, &self.properties, self.properties.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_malformed, assert_protocol, decode_frame, round_trip, V3_VERSIONS,
    };
    use crate::Packet;

    const V5: ProtocolVersion = ProtocolVersion::V5;
    /// First bytes of PUBACK, PUBREC, PUBREL, PUBCOMP.
    const FIRSTS: [(u8, AckKind); 4] = [
        (0x40, AckKind::PubAck),
        (0x50, AckKind::PubRec),
        (0x62, AckKind::PubRel),
        (0x70, AckKind::PubComp),
    ];

    #[test]
    fn v3_acks_are_exactly_two_bytes() {
        // 3.4.1 - 3.7.1 (3.1.1): remaining length 2, the packet identifier.
        for v in V3_VERSIONS {
            for (first, kind) in FIRSTS {
                assert_eq!(
                    decode_frame(first, &[0, 7], v),
                    Ok(Packet::Ack(Ack::new(kind, 7)))
                );
                assert_malformed(first, &[0, 7, 0], v);
                assert_malformed(first, &[0], v);
                assert_malformed(first, &[], v);
            }
        }
    }

    #[test]
    fn packet_id_0_is_malformed() {
        // MQTT-2.3.1-1 (3.1.1): the acknowledged packet had a non-zero identifier.
        for (first, _) in FIRSTS {
            assert_malformed(first, &[0, 0], V5);
        }
    }

    #[test]
    fn v5_short_forms() {
        // 3.4.2.1: remaining length 2 means Success; 3 means a reason and no properties.
        let p = decode_frame(0x40, &[0, 7], V5).unwrap();
        assert_eq!(p, Packet::Ack(Ack::new(AckKind::PubAck, 7)));
        let p = decode_frame(0x40, &[0, 7, 0x10], V5).unwrap();
        let mut want = Ack::new(AckKind::PubAck, 7);
        want.reason = ReasonCode::NoMatchingSubscribers;
        assert_eq!(p, Packet::Ack(want.clone()));
        // A zero-length property block is fine too.
        assert_eq!(
            decode_frame(0x40, &[0, 7, 0x10, 0], V5),
            Ok(Packet::Ack(want))
        );
    }

    #[test]
    fn v5_reason_must_fit_the_packet() {
        // 3.4.2.1 / 3.5.2.1: PUBACK and PUBREC do not have 0x92.
        assert_malformed(0x40, &[0, 1, 0x92], V5);
        assert_malformed(0x50, &[0, 1, 0x92], V5);
        // 3.6.2.1 / 3.7.2.1: PUBREL and PUBCOMP only have 0x00 and 0x92.
        assert_malformed(0x62, &[0, 1, 0x10], V5);
        assert_malformed(0x70, &[0, 1, 0x80], V5);
        // Unknown code.
        assert_malformed(0x40, &[0, 1, 0x03], V5);
    }

    #[test]
    fn v5_properties_are_checked() {
        // Session Expiry Interval is not an ack property.
        assert_protocol(0x40, &[0, 1, 0, 5, 0x11, 0, 0, 0, 1], V5);
        // Property length past the end.
        assert_malformed(0x40, &[0, 1, 0, 5, 0x1F, 0, 0], V5);
    }

    #[test]
    fn v5_encoding_uses_the_shortest_form() {
        let ok = Packet::Ack(Ack::new(AckKind::PubRel, 3));
        assert_eq!(&round_trip(&ok, V5)[..], &[0x62, 2, 0, 3]);
        let mut reason = Ack::new(AckKind::PubComp, 3);
        reason.reason = ReasonCode::PacketIdentifierNotFound;
        assert_eq!(
            &round_trip(&Packet::Ack(reason.clone()), V5)[..],
            &[0x70, 3, 0, 3, 0x92]
        );
        reason.properties.make_mut().reason_string = Some("x".into());
        assert_eq!(
            &round_trip(&Packet::Ack(reason), V5)[..],
            &[0x70, 8, 0, 3, 0x92, 4, 0x1F, 0, 1, b'x']
        );
    }

    #[test]
    fn v3_encoding_leaves_out_reason_and_properties() {
        let mut a = Ack::new(AckKind::PubAck, 3);
        a.reason = ReasonCode::NotAuthorized;
        a.properties.make_mut().reason_string = Some("no".into());
        let mut buf = bytes::BytesMut::new();
        crate::encode(&Packet::Ack(a), ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0x40, 2, 0, 3]);
    }

    #[test]
    fn encoding_refuses_a_reason_the_packet_lacks() {
        let mut a = Ack::new(AckKind::PubRel, 3);
        a.reason = ReasonCode::NotAuthorized;
        assert!(crate::encoded_len(&Packet::Ack(a), V5).is_err());
        assert!(crate::encoded_len(&Packet::Ack(Ack::new(AckKind::PubAck, 0)), V5).is_err());
    }
}

//! DISCONNECT (3.14).

use crate::primitives::{Reader, Sink};
use crate::properties;
use crate::reason::ReasonContext;
use crate::{DecodeError, DisconnectProperties, EncodeError, ProtocolVersion, ReasonCode, Sparse};

/// A DISCONNECT. v3 DISCONNECT has no body; reason and properties are v5 only.
/// In v5, Success with no properties encodes as the 0-length short form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Disconnect reason code.
    pub reason: ReasonCode,
    /// v5 properties.
    pub properties: Sparse<DisconnectProperties>,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn new(reason: ReasonCode) -> Disconnect {
        Disconnect {
            reason,
            properties: Sparse::none(),
        }
    }
}

impl Disconnect {
    /// Decodes the variable header; a v3 DISCONNECT has none.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Disconnect, DecodeError> {
        if !version.is_v5() {
            // The caller rejects any byte of a v3 DISCONNECT body (remaining length 0).
            return Ok(Disconnect::new(ReasonCode::Success));
        }
        let (reason, properties) = properties::decode_with_reason(
            r,
            ReasonContext::Disconnect,
            "invalid DISCONNECT reason code",
        )?;
        Ok(Disconnect { reason, properties })
    }

    /// Encodes the variable header in its shortest v5 form; nothing for v3.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if !version.is_v5() {
            return Ok(());
        }
        if !self.reason.allowed_in(ReasonContext::Disconnect) {
            return Err(EncodeError::InvalidField(
                "reason code not valid for DISCONNECT",
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

    #[test]
    fn v3_has_no_body() {
        // 3.14.1 (3.1.1): remaining length 0.
        for v in V3_VERSIONS {
            let p = decode_frame(0xE0, &[], v).unwrap();
            assert_eq!(p, Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
            assert_malformed(0xE0, &[0], v);
        }
    }

    #[test]
    fn v5_short_forms() {
        // 3.14.2.1: remaining length 0 means Normal disconnection; 1 means reason only.
        let ok = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        assert_eq!(decode_frame(0xE0, &[], V5), Ok(ok.clone()));
        assert_eq!(&round_trip(&ok, V5)[..], &[0xE0, 0]);
        let will = Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWill));
        assert_eq!(decode_frame(0xE0, &[0x04], V5), Ok(will.clone()));
        assert_eq!(&round_trip(&will, V5)[..], &[0xE0, 1, 0x04]);
    }

    #[test]
    fn v5_reason_must_be_a_disconnect_code() {
        // 3.14.2.1: 0x01 and 0x84 are not DISCONNECT codes.
        assert_malformed(0xE0, &[0x01], V5);
        assert_malformed(0xE0, &[0x84], V5);
        let bad = Packet::Disconnect(Disconnect::new(ReasonCode::Banned));
        assert!(crate::encoded_len(&bad, V5).is_err());
        // v3 has no reason, so nothing to refuse there.
        assert!(crate::encoded_len(&bad, ProtocolVersion::V3_1_1).is_ok());
    }

    #[test]
    fn v5_properties_are_checked() {
        // Receive Maximum is not a DISCONNECT property.
        assert_protocol(0xE0, &[0x00, 3, 0x21, 0, 5], V5);
        assert_malformed(0xE0, &[0x00, 3, 0x11, 0, 0], V5);
        let mut d = Disconnect::new(ReasonCode::Success);
        d.properties.make_mut().session_expiry_interval = Some(0);
        assert_eq!(
            &round_trip(&Packet::Disconnect(d), V5)[..],
            &[0xE0, 7, 0, 5, 0x11, 0, 0, 0, 0]
        );
    }
}

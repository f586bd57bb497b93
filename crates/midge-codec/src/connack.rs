//! CONNACK (3.2).

use crate::primitives::{Reader, Sink};
use crate::properties;
use crate::reason::ReasonContext;
use crate::{ConnAckProperties, DecodeError, EncodeError, ProtocolVersion, ReasonCode, Sparse};

/// A CONNACK packet. `reason` is a v5 reason code; for v3 connections the codec maps it to the
/// v3 return code (0x84->1, 0x85->2, 0x88/0x89/others->3, 0x86->4, 0x87->5) and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present flag.
    pub session_present: bool,
    /// Connect reason code.
    pub reason: ReasonCode,
    /// v5 properties (ignored for v3).
    pub properties: Sparse<ConnAckProperties>,
}

/// Session Present, the only defined bit of the acknowledge flags (3.2.2.1).
const SESSION_PRESENT: u8 = 0x01;

impl ConnAck {
    /// Decodes the CONNACK variable header (CONNACK has no payload).
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<ConnAck, DecodeError> {
        let flags = r.u8()?;
        if flags & !SESSION_PRESENT != 0 {
            // 3.2.2.1: bits 7-1 are reserved and must be 0.
            return Err(DecodeError::Malformed("CONNACK reserved flags set"));
        }
        let code = r.u8()?;
        let (reason, properties) = if version.is_v5() {
            let reason = ReasonCode::from_u8(code)
                .filter(|c| c.allowed_in(ReasonContext::ConnAck))
                .ok_or(DecodeError::Malformed("invalid CONNACK reason code"))?;
            (reason, properties::decode(r)?)
        } else {
            (v3_to_reason(code)?, Sparse::none())
        };
        Ok(ConnAck {
            session_present: flags & SESSION_PRESENT != 0,
            reason,
            properties,
        })
    }

    /// Encodes the variable header; for v3 the reason becomes a return code.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if !self.reason.allowed_in(ReasonContext::ConnAck) {
            return Err(EncodeError::InvalidField(
                "reason code not valid for CONNACK",
            ));
        }
        s.write_u8(if self.session_present {
            SESSION_PRESENT
        } else {
            0
        });
        if version.is_v5() {
            s.write_u8(self.reason as u8);
            properties::encode(&self.properties, s)
        } else {
            s.write_u8(reason_to_v3(self.reason));
            Ok(())
        }
    }
}

/// Maps a v5 CONNACK reason to the nearest v3 return code (3.2.2.3 of 3.1.1).
fn reason_to_v3(reason: ReasonCode) -> u8 {
    match reason {
        ReasonCode::Success => 0,
        ReasonCode::UnsupportedProtocolVersion => 1,
        ReasonCode::ClientIdentifierNotValid => 2,
        ReasonCode::BadUserNameOrPassword => 4,
        ReasonCode::NotAuthorized => 5,
        // v3 has no finer codes: "server unavailable" is the generic refusal.
        _ => 3,
    }
}

/// Maps a v3 return code to its v5 reason; codes 6-255 are reserved, hence Malformed.
fn v3_to_reason(code: u8) -> Result<ReasonCode, DecodeError> {
    Ok(match code {
        0 => ReasonCode::Success,
        1 => ReasonCode::UnsupportedProtocolVersion,
        2 => ReasonCode::ClientIdentifierNotValid,
        3 => ReasonCode::ServerUnavailable,
        4 => ReasonCode::BadUserNameOrPassword,
        5 => ReasonCode::NotAuthorized,
        _ => return Err(DecodeError::Malformed("reserved CONNACK return code")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_malformed, assert_protocol, decode_frame, round_trip, V3_VERSIONS,
    };
    use crate::Packet;

    const V5: ProtocolVersion = ProtocolVersion::V5;

    fn connack(reason: ReasonCode) -> ConnAck {
        ConnAck {
            session_present: false,
            reason,
            properties: Sparse::none(),
        }
    }

    #[test]
    fn reserved_acknowledge_flags_are_malformed() {
        // 3.2.2.1: bits 7-1 are reserved.
        for v in V3_VERSIONS {
            assert_malformed(0x20, &[0x02, 0], v);
        }
        assert_malformed(0x20, &[0x80, 0, 0], V5);
    }

    #[test]
    fn v3_return_code_mapping() {
        for v in V3_VERSIONS {
            for (code, reason) in [
                (0u8, ReasonCode::Success),
                (1, ReasonCode::UnsupportedProtocolVersion),
                (2, ReasonCode::ClientIdentifierNotValid),
                (3, ReasonCode::ServerUnavailable),
                (4, ReasonCode::BadUserNameOrPassword),
                (5, ReasonCode::NotAuthorized),
            ] {
                let p = Packet::ConnAck(connack(reason));
                assert_eq!(decode_frame(0x20, &[0, code], v), Ok(p.clone()));
                assert_eq!(&round_trip(&p, v)[..], &[0x20, 2, 0, code]);
            }
            // 3.2.2.3 (3.1.1): 6-255 are reserved.
            assert_malformed(0x20, &[0, 6], v);
            assert_malformed(0x20, &[0, 0x80], v);
            // 3.2.1 (3.1.1): remaining length 2.
            assert_malformed(0x20, &[0, 0, 0], v);
        }
    }

    #[test]
    fn v3_encoding_folds_other_errors_into_server_unavailable() {
        for reason in [
            ReasonCode::ServerBusy,
            ReasonCode::Banned,
            ReasonCode::UnspecifiedError,
            ReasonCode::QuotaExceeded,
        ] {
            let mut buf = bytes::BytesMut::new();
            crate::encode(
                &Packet::ConnAck(connack(reason)),
                ProtocolVersion::V3_1_1,
                &mut buf,
            )
            .unwrap();
            assert_eq!(&buf[..], &[0x20, 2, 0, 3]);
        }
    }

    #[test]
    fn v5_reason_must_be_a_connack_code() {
        // 3.2.2.2: 0x04 and 0x8E are not CONNACK codes.
        assert_malformed(0x20, &[0, 0x04, 0], V5);
        assert_malformed(0x20, &[0, 0x8E, 0], V5);
        assert!(
            crate::encoded_len(&Packet::ConnAck(connack(ReasonCode::GrantedQoS1)), V5).is_err()
        );
    }

    #[test]
    fn v5_property_values_are_checked() {
        // 3.2.2.3.4: Maximum QoS other than 0 or 1.
        assert_protocol(0x20, &[0, 0, 2, 0x24, 2], V5);
        // 3.2.2.3.3: Receive Maximum 0.
        assert_protocol(0x20, &[0, 0, 3, 0x21, 0, 0], V5);
        // 3.2.2.3.6: Maximum Packet Size 0.
        assert_protocol(0x20, &[0, 0, 5, 0x27, 0, 0, 0, 0], V5);
        // Property block missing.
        assert_malformed(0x20, &[0, 0], V5);
    }

    #[test]
    fn v5_round_trip_with_properties() {
        let mut c = connack(ReasonCode::Success);
        c.session_present = true;
        c.properties.make_mut().maximum_qos = Some(1);
        c.properties.make_mut().assigned_client_identifier = Some("auto-1".into());
        round_trip(&Packet::ConnAck(c), V5);
    }
}

//! AUTH (3.15, v5 only).

use crate::primitives::{Reader, Sink};
use crate::properties;
use crate::reason::ReasonContext;
use crate::{AuthProperties, DecodeError, EncodeError, ReasonCode, Sparse};

/// An AUTH packet (v5 enhanced authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success, ContinueAuthentication or ReAuthenticate.
    pub reason: ReasonCode,
    /// Properties.
    pub properties: Sparse<AuthProperties>,
}

impl Auth {
    /// Decodes the variable header (v5 only; the fixed header check rejects AUTH in v3).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Auth, DecodeError> {
        let (reason, properties) =
            properties::decode_with_reason(r, ReasonContext::Auth, "invalid AUTH reason code")?;
        Ok(Auth { reason, properties })
    }

    /// Encodes the variable header in its shortest form (3.15.2.1).
    pub(crate) fn encode<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        if !self.reason.allowed_in(ReasonContext::Auth) {
            return Err(EncodeError::InvalidField("reason code not valid for AUTH"));
        }
        properties::encode_with_reason(s, self.reason, &self.properties, self.properties.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_malformed, assert_protocol, decode_frame, round_trip};
    use crate::{Packet, ProtocolVersion};

    const V5: ProtocolVersion = ProtocolVersion::V5;

    fn auth(reason: ReasonCode) -> Auth {
        Auth {
            reason,
            properties: Sparse::none(),
        }
    }

    #[test]
    fn empty_body_means_success() {
        // 3.15.2.1
        assert_eq!(
            decode_frame(0xF0, &[], V5),
            Ok(Packet::Auth(auth(ReasonCode::Success)))
        );
        let reauth = Packet::Auth(auth(ReasonCode::ReAuthenticate));
        assert_eq!(decode_frame(0xF0, &[0x19], V5), Ok(reauth.clone()));
        assert_eq!(&round_trip(&reauth, V5)[..], &[0xF0, 1, 0x19]);
    }

    #[test]
    fn reason_must_be_an_auth_code() {
        // 3.15.2.1: only 0x00, 0x18, 0x19.
        assert_malformed(0xF0, &[0x80], V5);
        assert_malformed(0xF0, &[0x87, 0], V5);
        assert!(crate::encoded_len(&Packet::Auth(auth(ReasonCode::NotAuthorized)), V5).is_err());
    }

    #[test]
    fn properties() {
        let mut a = auth(ReasonCode::ContinueAuthentication);
        a.properties.make_mut().authentication_method = Some("SCRAM".into());
        a.properties.make_mut().authentication_data = Some(bytes::Bytes::from_static(b"\x00\x01"));
        round_trip(&Packet::Auth(a), V5);
        // 3.15.2.2: Session Expiry Interval is not an AUTH property.
        assert_protocol(0xF0, &[0x18, 5, 0x11, 0, 0, 0, 0], V5);
    }
}

//! Helpers shared by the unit tests: build raw packets, decode them, check errors.

use crate::primitives::Sink;
use crate::{
    decode, encode, encoded_len, DecodeError, Packet, ProtocolVersion, ReasonCode, MAX_PACKET_SIZE,
};
use bytes::BytesMut;

/// Every version, for tests that hold in all of them.
pub(crate) const ALL_VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

/// The v3 versions.
pub(crate) const V3_VERSIONS: [ProtocolVersion; 2] =
    [ProtocolVersion::V3_1, ProtocolVersion::V3_1_1];

/// A whole packet: `first` byte, minimal remaining length, `body`.
pub(crate) fn frame(first: u8, body: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.write_u8(first);
    let len = u32::try_from(body.len()).expect("test body fits a u32");
    buf.write_varint(len).expect("test body fits a varint");
    buf.write_slice(body);
    buf
}

/// A length-prefixed string, for hand-built bodies.
pub(crate) fn s(v: &str) -> Vec<u8> {
    let mut out = u16::try_from(v.len())
        .expect("short test string")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(v.as_bytes());
    out
}

/// Decodes `first`/`body` as one whole packet.
pub(crate) fn decode_frame(
    first: u8,
    body: &[u8],
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    let mut buf = frame(first, body);
    match decode(&mut buf, version, MAX_PACKET_SIZE)? {
        Some(p) => {
            assert!(buf.is_empty(), "decode left bytes behind");
            Ok(p)
        }
        None => panic!("a whole packet decoded as incomplete"),
    }
}

/// Asserts that `first`/`body` is Malformed (0x81) in `version`.
pub(crate) fn assert_malformed(first: u8, body: &[u8], version: ProtocolVersion) {
    let err = decode_frame(first, body, version).expect_err("expected Malformed");
    assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
    assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
}

/// Asserts that `first`/`body` is a Protocol Error (0x82) in `version`.
pub(crate) fn assert_protocol(first: u8, body: &[u8], version: ProtocolVersion) {
    let err = decode_frame(first, body, version).expect_err("expected Protocol Error");
    assert!(matches!(err, DecodeError::Protocol(_)), "{err:?}");
    assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
}

/// Encodes `packet`, checks `encoded_len`, decodes it back, and returns the bytes.
pub(crate) fn round_trip(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("encode");
    assert_eq!(
        encoded_len(packet, version).expect("encoded_len"),
        buf.len()
    );
    let bytes = buf.clone();
    let back = decode(&mut buf, version, MAX_PACKET_SIZE)
        .expect("decode")
        .expect("whole packet");
    assert_eq!(&back, packet);
    assert!(buf.is_empty());
    bytes
}

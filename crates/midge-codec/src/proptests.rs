//! Property tests over whole packets: round trips for every packet type in every version it
//! exists in, byte-by-byte incremental decoding, and robustness against arbitrary input.

use crate::strategies as gen;
use crate::{decode, encode, encoded_len, Packet, ProtocolVersion, MAX_PACKET_SIZE};
use bytes::{BufMut, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// decode(encode(p)) == p, `encoded_len` is exact, and feeding the bytes one at a time yields
/// `None` (consuming nothing) until the last byte arrives.
fn check_round_trip(packet: &Packet, v: ProtocolVersion) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    encode(packet, v, &mut buf).map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(encoded_len(packet, v).ok(), Some(buf.len()));
    let bytes = buf.freeze();

    let mut whole = BytesMut::from(&bytes[..]);
    // The exact size must pass the limit, one byte less must not.
    let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    prop_assert!(decode(&mut whole.clone(), v, size - 1).is_err());
    prop_assert_eq!(decode(&mut whole, v, size), Ok(Some(packet.clone())));
    prop_assert!(whole.is_empty());

    let mut incremental = BytesMut::new();
    for (i, &b) in bytes.iter().enumerate() {
        incremental.put_u8(b);
        let got = decode(&mut incremental, v, MAX_PACKET_SIZE);
        if i + 1 < bytes.len() {
            prop_assert_eq!(got, Ok(None), "at byte {}", i);
            prop_assert_eq!(incremental.len(), i + 1);
        } else {
            prop_assert_eq!(got, Ok(Some(packet.clone())));
            prop_assert!(incremental.is_empty());
        }
    }
    Ok(())
}

/// Decodes whatever `data` holds; every packet that decodes must re-encode and decode to
/// itself. Returns how many packets decoded.
fn decode_all(data: &[u8], v: ProtocolVersion, max: u32) -> Result<usize, TestCaseError> {
    let mut buf = BytesMut::from(data);
    let mut n = 0;
    while let Ok(Some(p)) = decode(&mut buf, v, max) {
        n += 1;
        let mut again = BytesMut::new();
        encode(&p, v, &mut again).map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
        prop_assert_eq!(decode(&mut again, v, MAX_PACKET_SIZE), Ok(Some(p)));
        prop_assert!(again.is_empty());
    }
    Ok(n)
}

proptest! {
    #[test]
    fn connect_round_trips((v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::connect(v)))) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn connack_round_trips((v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::connack(v)))) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn publish_round_trips((v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::publish(v)))) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn ack_round_trips((v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::ack(v)))) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn subscribe_round_trips(
        (v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::subscribe(v)))
    ) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn suback_round_trips((v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::suback(v)))) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn unsubscribe_round_trips(
        (v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::unsubscribe(v)))
    ) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn unsuback_round_trips(
        (v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::unsuback(v)))
    ) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn ping_round_trips(v in gen::version(), p in gen::ping()) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn disconnect_round_trips(
        (v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::disconnect(v)))
    ) {
        check_round_trip(&p, v)?;
    }

    #[test]
    fn auth_round_trips(p in gen::auth()) {
        check_round_trip(&p, ProtocolVersion::V5)?;
    }

    #[test]
    fn back_to_back_packets_split_correctly(
        (v, ps) in gen::version().prop_flat_map(|v| (Just(v), proptest::collection::vec(gen::packet(v), 1..6)))
    ) {
        let mut buf = BytesMut::new();
        for p in &ps {
            encode(p, v, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        for p in &ps {
            prop_assert_eq!(decode(&mut buf, v, MAX_PACKET_SIZE), Ok(Some(p.clone())));
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..256),
        v in gen::version(),
        max in prop_oneof![Just(MAX_PACKET_SIZE), 0..300u32],
    ) {
        decode_all(&data, v, max)?;
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        kind in 1..16u8,
        flags in 0..16u8,
        body in proptest::collection::vec(any::<u8>(), 0..128),
        v in gen::version(),
    ) {
        // Random bytes rarely get past the fixed header; give every body decoder a go.
        let mut data = crate::test_util::frame((kind << 4) | flags, &body);
        data.put_u8(0xC0);
        decode_all(&data, v, MAX_PACKET_SIZE)?;
    }

    #[test]
    fn mutated_packets_never_panic(
        (v, p) in gen::version().prop_flat_map(|v| (Just(v), gen::packet(v))),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut buf = BytesMut::new();
        encode(&p, v, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (at, byte) in edits {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        decode_all(&buf, v, MAX_PACKET_SIZE)?;
    }
}

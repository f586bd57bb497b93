//! The packet enum, fixed header, and the decode/encode entry points.

use crate::primitives::{measure, parse_varint, varint_len, Reader, Sink, MAX_VARINT};
use crate::{
    Ack, AckKind, Auth, ConnAck, Connect, DecodeError, Disconnect, EncodeError, ProtocolVersion,
    Publish, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use bytes::BytesMut;

/// Any MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK, PUBREC, PUBREL or PUBCOMP.
    Ack(Ack),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (v5 only).
    Auth(Auth),
}

// A PUBLISH is moved several times for each subscriber it reaches (tailored, queued in the
// session, handed to the server as an action, queued for the writer), so the enum is kept to
// a PUBLISH's own size: property sets are `Sparse` pointers and CONNECT is boxed.
const _: () = assert!(std::mem::size_of::<Packet>() <= 72);

/// Control packet type numbers (2.1.2), the high nibble of the first byte.
mod kind {
    pub(super) const CONNECT: u8 = 1;
    pub(super) const CONNACK: u8 = 2;
    pub(super) const PUBLISH: u8 = 3;
    pub(super) const PUBACK: u8 = 4;
    pub(super) const PUBREC: u8 = 5;
    pub(super) const PUBREL: u8 = 6;
    pub(super) const PUBCOMP: u8 = 7;
    pub(super) const SUBSCRIBE: u8 = 8;
    pub(super) const SUBACK: u8 = 9;
    pub(super) const UNSUBSCRIBE: u8 = 10;
    pub(super) const UNSUBACK: u8 = 11;
    pub(super) const PINGREQ: u8 = 12;
    pub(super) const PINGRESP: u8 = 13;
    pub(super) const DISCONNECT: u8 = 14;
    pub(super) const AUTH: u8 = 15;
}

/// The fixed flags of PUBREL, SUBSCRIBE and UNSUBSCRIBE (a QoS 1 marker kept from MQTT 3.1).
const FLAGS_0010: u8 = 0b0010;
/// MQTT 3.1 also let a retransmitted PUBREL/SUBSCRIBE/UNSUBSCRIBE carry the DUP bit.
const FLAGS_V31_DUP: u8 = 0b1010;

/// Checks the first byte of the fixed header: a known packet type with exactly the flags the
/// spec lists (MQTT-2.2.2-1/-2 in 3.1.1, 2.1.3 in 5.0). Done before the body is buffered, so
/// garbage is refused on its first byte.
fn check_first_byte(first: u8, version: ProtocolVersion) -> Result<(), DecodeError> {
    let flags = first & 0x0F;
    let ok = match first >> 4 {
        0 => return Err(DecodeError::Malformed("reserved packet type 0")),
        kind::PUBLISH => return Publish::parse_flags(flags).map(|_| ()),
        kind::AUTH if !version.is_v5() => {
            return Err(DecodeError::Malformed("AUTH does not exist before MQTT 5"))
        }
        kind::PUBREL | kind::SUBSCRIBE | kind::UNSUBSCRIBE => {
            flags == FLAGS_0010 || (version == ProtocolVersion::V3_1 && flags == FLAGS_V31_DUP)
        }
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Malformed("invalid fixed header flags"))
    }
}

/// Decodes one packet from the front of `buf`, consuming its bytes.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole packet (nothing consumed). The packet
/// size is checked against `max_packet_size` from the fixed header alone, before anything is
/// allocated. CONNECT is self-describing: its body is decoded for the protocol name and level
/// it carries, whatever `version` says; every other packet is decoded as `version`.
///
/// On an error other than `PacketTooLarge` the offending packet may already have been taken
/// off `buf`; either way the connection is expected to be closed.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Option<Packet>, DecodeError> {
    let Some((&first, rest)) = buf.split_first() else {
        return Ok(None);
    };
    check_first_byte(first, version)?;
    let Some((remaining, len_bytes)) = parse_varint(rest)? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    // At most 1 + 4 + 268,435,455, so this cannot overflow a u32.
    let size = header_len as u32 + remaining;
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    let size = size as usize;
    if buf.len() < size {
        return Ok(None);
    }
    // Zero-copy from here on: payloads and binary fields are slices of `frame`.
    let frame = buf.split_to(size).freeze();
    let mut r = Reader::new(&frame, header_len);
    let packet = decode_body(first, &mut r, version)?;
    // Every body must fill its remaining length exactly (1.5 / 2.1.4).
    r.finish()?;
    Ok(Some(packet))
}

/// Dispatches the body to the packet's own decoder.
fn decode_body(
    first: u8,
    r: &mut Reader<'_>,
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    Ok(match first >> 4 {
        kind::CONNECT => Packet::Connect(Box::new(Connect::decode(r)?)),
        kind::CONNACK => Packet::ConnAck(ConnAck::decode(r, version)?),
        kind::PUBLISH => Packet::Publish(Publish::decode(first & 0x0F, r, version)?),
        kind::PUBACK => Packet::Ack(Ack::decode(AckKind::PubAck, r, version)?),
        kind::PUBREC => Packet::Ack(Ack::decode(AckKind::PubRec, r, version)?),
        kind::PUBREL => Packet::Ack(Ack::decode(AckKind::PubRel, r, version)?),
        kind::PUBCOMP => Packet::Ack(Ack::decode(AckKind::PubComp, r, version)?),
        kind::SUBSCRIBE => Packet::Subscribe(Subscribe::decode(r, version)?),
        kind::SUBACK => Packet::SubAck(SubAck::decode(r, version)?),
        kind::UNSUBSCRIBE => Packet::Unsubscribe(Unsubscribe::decode(r, version)?),
        kind::UNSUBACK => Packet::UnsubAck(UnsubAck::decode(r, version)?),
        // PINGREQ and PINGRESP have no body; `finish` rejects any.
        kind::PINGREQ => Packet::PingReq,
        kind::PINGRESP => Packet::PingResp,
        kind::DISCONNECT => Packet::Disconnect(Disconnect::decode(r, version)?),
        kind::AUTH => Packet::Auth(Auth::decode(r)?),
        // `check_first_byte` has already refused type 0; the nibble cannot exceed 15.
        _ => return Err(DecodeError::Malformed("reserved packet type 0")),
    })
}

/// The first byte of the fixed header: packet type and flags.
fn first_byte(packet: &Packet) -> u8 {
    let (kind, flags) = match packet {
        Packet::Connect(_) => (kind::CONNECT, 0),
        Packet::ConnAck(_) => (kind::CONNACK, 0),
        Packet::Publish(p) => (kind::PUBLISH, p.flags()),
        Packet::Ack(a) => match a.kind {
            AckKind::PubAck => (kind::PUBACK, 0),
            AckKind::PubRec => (kind::PUBREC, 0),
            AckKind::PubRel => (kind::PUBREL, FLAGS_0010),
            AckKind::PubComp => (kind::PUBCOMP, 0),
        },
        Packet::Subscribe(_) => (kind::SUBSCRIBE, FLAGS_0010),
        Packet::SubAck(_) => (kind::SUBACK, 0),
        Packet::Unsubscribe(_) => (kind::UNSUBSCRIBE, FLAGS_0010),
        Packet::UnsubAck(_) => (kind::UNSUBACK, 0),
        Packet::PingReq => (kind::PINGREQ, 0),
        Packet::PingResp => (kind::PINGRESP, 0),
        Packet::Disconnect(_) => (kind::DISCONNECT, 0),
        Packet::Auth(_) => (kind::AUTH, 0),
    };
    (kind << 4) | flags
}

/// Writes (or, into a `Counter`, measures) everything after the fixed header.
fn encode_body<S: Sink>(
    packet: &Packet,
    version: ProtocolVersion,
    s: &mut S,
) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(c) => c.encode(s),
        Packet::ConnAck(c) => c.encode(version, s),
        Packet::Publish(p) => p.encode(version, s),
        Packet::Ack(a) => a.encode(version, s),
        Packet::Subscribe(p) => p.encode(version, s),
        Packet::SubAck(p) => p.encode(version, s),
        Packet::Unsubscribe(p) => p.encode(version, s),
        Packet::UnsubAck(p) => p.encode(version, s),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => d.encode(version, s),
        Packet::Auth(a) if version.is_v5() => a.encode(s),
        Packet::Auth(_) => Err(EncodeError::NotInVersion),
    }
}

/// Measures and validates the body; the remaining length must fit a variable byte integer.
fn remaining_length(packet: &Packet, version: ProtocolVersion) -> Result<u32, EncodeError> {
    let len = measure(|c| encode_body(packet, version, c))?;
    u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_VARINT)
        .ok_or(EncodeError::PacketTooLarge)
}

/// Appends the encoding of `packet` for a `version` connection to `buf`.
///
/// CONNECT is encoded for its own `protocol`. Fields a version does not have (v5 reasons and
/// properties on a v3 connection, DUP and packet id at QoS 0) are left out; anything the
/// peer's decoder would have to reject as malformed is refused instead. On error nothing is
/// appended.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    // Measuring first validates everything, sizes the header and lets us reserve once.
    let remaining = remaining_length(packet, version)?;
    buf.reserve(1 + varint_len(remaining) + remaining as usize);
    let start = buf.len();
    buf.write_u8(first_byte(packet));
    let written = buf
        .write_varint(remaining)
        .and_then(|()| encode_body(packet, version, buf));
    if written.is_err() {
        // Unreachable in practice (the measuring pass ran the same checks), but never leave
        // half a packet in an outgoing buffer.
        buf.truncate(start);
    }
    written
}

/// The number of bytes `encode` would append (used to honour a client's Maximum Packet Size).
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let remaining = remaining_length(packet, version)?;
    Ok(1 + varint_len(remaining) + remaining as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_malformed, frame, round_trip, ALL_VERSIONS, V3_VERSIONS};
    use crate::{ReasonCode, MAX_PACKET_SIZE};
    use bytes::Bytes;

    const V5: ProtocolVersion = ProtocolVersion::V5;

    #[test]
    fn packet_type_0_is_malformed() {
        // 2.1.2: type 0 is reserved. Refused on the first byte alone.
        for v in ALL_VERSIONS {
            let mut buf = BytesMut::from(&[0x00][..]);
            let err = decode(&mut buf, v, MAX_PACKET_SIZE).unwrap_err();
            assert_eq!(err, DecodeError::Malformed("reserved packet type 0"));
            assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
        }
    }

    #[test]
    fn auth_in_v3_is_malformed() {
        // 2.1.2 (3.1.1): type 15 is reserved before MQTT 5.
        for v in V3_VERSIONS {
            assert_malformed(0xF0, &[], v);
        }
    }

    #[test]
    fn reserved_flags_must_match_the_spec() {
        // MQTT-2.2.2-1 / MQTT-2.2.2-2 (3.1.1), 2.1.3 (5.0).
        for v in ALL_VERSIONS {
            for t in [1u8, 2, 4, 5, 7, 9, 11, 12, 13, 14] {
                for flags in 1..16u8 {
                    assert_malformed((t << 4) | flags, &[], v);
                }
            }
            // MQTT-3.6.1-1, MQTT-3.8.1-1, MQTT-3.10.1-1: PUBREL, SUBSCRIBE and UNSUBSCRIBE
            // must carry 0b0010.
            for t in [6u8, 8, 10] {
                for flags in [0u8, 0b0001, 0b0011, 0b0100, 0b1000] {
                    assert_malformed((t << 4) | flags, &[0, 1], v);
                }
            }
        }
        assert_malformed(0xF1, &[], V5);
    }

    #[test]
    fn mqtt_3_1_allows_dup_on_pubrel() {
        // MQTT 3.1 sets DUP on a retransmitted PUBREL; 3.1.1 reserved the bit.
        let p = crate::test_util::decode_frame(0x6A, &[0, 1], ProtocolVersion::V3_1).unwrap();
        assert!(matches!(p, Packet::Ack(a) if a.kind == AckKind::PubRel));
        assert_malformed(0x6A, &[0, 1], ProtocolVersion::V3_1_1);
    }

    #[test]
    fn ping_must_have_no_body() {
        // 3.12.1 / 3.13.1: PINGREQ and PINGRESP have remaining length 0.
        for v in ALL_VERSIONS {
            assert_eq!(
                crate::test_util::decode_frame(0xC0, &[], v),
                Ok(Packet::PingReq)
            );
            assert_eq!(
                crate::test_util::decode_frame(0xD0, &[], v),
                Ok(Packet::PingResp)
            );
            assert_malformed(0xC0, &[0], v);
            assert_malformed(0xD0, &[0], v);
        }
    }

    #[test]
    fn five_byte_remaining_length_is_malformed() {
        // 1.5.5 / 2.1.4: at most four bytes.
        let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..]);
        let err = decode(&mut buf, V5, MAX_PACKET_SIZE).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(_)));
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    }

    #[test]
    fn incomplete_input_consumes_nothing() {
        let mut empty = BytesMut::new();
        assert_eq!(decode(&mut empty, V5, MAX_PACKET_SIZE), Ok(None));
        // Remaining length not finished yet.
        let mut partial = BytesMut::from(&[0x30, 0x80][..]);
        assert_eq!(decode(&mut partial, V5, MAX_PACKET_SIZE), Ok(None));
        assert_eq!(partial.len(), 2);
        // Header complete, body short.
        let mut body = BytesMut::from(&[0x30, 0x05, 0x00, 0x01, b'a'][..]);
        assert_eq!(decode(&mut body, V5, MAX_PACKET_SIZE), Ok(None));
        assert_eq!(body.len(), 5);
    }

    #[test]
    fn too_large_is_reported_from_the_header_alone() {
        // A 1 MiB PUBLISH announced by a 4-byte header, with no body buffered yet.
        let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x40][..]);
        let err = decode(&mut buf, V5, 1024).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PacketTooLarge {
                size: 1_048_580,
                max: 1024
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
        assert_eq!(buf.len(), 4, "nothing consumed");
        // The limit counts the whole packet, header included.
        let mut ping = frame(0xC0, &[]);
        assert!(decode(&mut ping.clone(), V5, 1).is_err());
        assert_eq!(decode(&mut ping, V5, 2), Ok(Some(Packet::PingReq)));
    }

    #[test]
    fn decode_leaves_the_next_packet_in_the_buffer() {
        let mut buf = frame(0xC0, &[]);
        buf.extend_from_slice(&frame(0xD0, &[]));
        buf.extend_from_slice(&[0x30]);
        assert_eq!(
            decode(&mut buf, V5, MAX_PACKET_SIZE),
            Ok(Some(Packet::PingReq))
        );
        assert_eq!(
            decode(&mut buf, V5, MAX_PACKET_SIZE),
            Ok(Some(Packet::PingResp))
        );
        assert_eq!(decode(&mut buf, V5, MAX_PACKET_SIZE), Ok(None));
        assert_eq!(&buf[..], &[0x30]);
    }

    #[test]
    fn non_minimal_remaining_length_is_accepted() {
        // PINGREQ with remaining length 0 written as 0x80 0x00 (Mosquitto accepts it).
        let mut buf = BytesMut::from(&[0xC0, 0x80, 0x00][..]);
        assert_eq!(
            decode(&mut buf, V5, MAX_PACKET_SIZE),
            Ok(Some(Packet::PingReq))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn auth_cannot_be_encoded_in_v3() {
        let auth = Packet::Auth(crate::Auth {
            reason: ReasonCode::Success,
            properties: Default::default(),
        });
        for v in V3_VERSIONS {
            let mut buf = BytesMut::new();
            assert_eq!(encode(&auth, v, &mut buf), Err(EncodeError::NotInVersion));
            assert_eq!(encoded_len(&auth, v), Err(EncodeError::NotInVersion));
            assert!(buf.is_empty());
        }
        assert_eq!(&round_trip(&auth, V5)[..], &[0xF0, 0x00]);
    }

    #[test]
    fn oversized_packet_is_refused_on_encode() {
        // 268,435,455 bytes of payload plus the topic exceed the largest remaining length.
        // The payload is zeroed lazily by the allocator and never touched by the encoder.
        let publish = Packet::Publish(Publish {
            dup: false,
            qos: crate::QoS::AtMostOnce,
            retain: false,
            topic: "t".into(),
            packet_id: None,
            properties: Default::default(),
            payload: Bytes::from(vec![0u8; MAX_VARINT as usize]),
        });
        assert_eq!(encoded_len(&publish, V5), Err(EncodeError::PacketTooLarge));
        let mut buf = BytesMut::new();
        assert_eq!(
            encode(&publish, V5, &mut buf),
            Err(EncodeError::PacketTooLarge)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn encode_appends_to_existing_bytes() {
        let mut buf = BytesMut::from(&b"xy"[..]);
        encode(&Packet::PingReq, V5, &mut buf).unwrap();
        assert_eq!(&buf[..], &[b'x', b'y', 0xC0, 0x00]);
    }
}

//! Zero-copy peek at the next packet in a read buffer.
//!
//! The hot packets of a load test (PUBLISH and the four acknowledgements) are recognised here
//! without allocating, straight from the buffer; everything else (CONNACK, SUBACK, DISCONNECT,
//! ...) is left to `midge_codec::decode`.

use midge_codec::DecodeError;
use std::ops::Range;

/// One complete packet at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What the packet is.
    pub kind: FrameKind,
    /// Total length in bytes (fixed header included); advance the buffer by this much.
    pub len: usize,
}

/// The packet types the fast path understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameKind {
    /// PUBLISH: QoS, packet id (0 for QoS 0) and where the payload lies in the frame.
    Publish {
        /// QoS 0..=2.
        qos: u8,
        /// Packet identifier (0 when QoS 0).
        packet_id: u16,
        /// Payload byte range, relative to the frame start.
        payload: Range<usize>,
    },
    /// PUBACK: packet id and reason code (0 when absent, as in v3 or the v5 short form).
    PubAck(u16, u8),
    /// PUBREC: packet id and reason code (0 when absent).
    PubRec(u16, u8),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// PINGRESP.
    PingResp,
    /// Anything else: decode it with the codec.
    Other,
}

impl Frame {
    /// Looks at the front of `buf`. `Ok(None)` means the packet is not complete yet.
    /// `v5` says whether PUBLISH carries a property block.
    pub fn peek(buf: &[u8], v5: bool) -> Result<Option<Frame>, DecodeError> {
        let Some((remaining, header_len)) = remaining_length(buf)? else {
            return Ok(None);
        };
        let len = header_len + remaining;
        if buf.len() < len {
            return Ok(None);
        }
        let first = buf[0];
        let body = &buf[header_len..len];
        let kind = match first >> 4 {
            3 => publish(first, body, header_len, v5)?,
            4 => FrameKind::PubAck(packet_id(body)?, reason(body)),
            5 => FrameKind::PubRec(packet_id(body)?, reason(body)),
            6 => FrameKind::PubRel(packet_id(body)?),
            7 => FrameKind::PubComp(packet_id(body)?),
            13 => FrameKind::PingResp,
            _ => FrameKind::Other,
        };
        Ok(Some(Frame { kind, len }))
    }
}

/// Decodes the fixed header's remaining length: `(remaining, fixed header length)`.
fn remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, 2 + i)));
        }
    }
    Err(DecodeError::Malformed(
        "remaining length longer than 4 bytes",
    ))
}

fn packet_id(body: &[u8]) -> Result<u16, DecodeError> {
    match body {
        [hi, lo, ..] => Ok(u16::from_be_bytes([*hi, *lo])),
        _ => Err(DecodeError::Malformed("acknowledgement without packet id")),
    }
}

/// The v5 reason code after an acknowledgement's packet id; 0 (Success) when absent.
fn reason(body: &[u8]) -> u8 {
    body.get(2).copied().unwrap_or(0)
}

fn publish(first: u8, body: &[u8], offset: usize, v5: bool) -> Result<FrameKind, DecodeError> {
    let qos = (first >> 1) & 0b11;
    if qos == 3 {
        return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
    }
    let truncated = DecodeError::Malformed("truncated PUBLISH");
    let topic_len = match body {
        [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => return Err(truncated),
    };
    let mut pos = 2 + topic_len;
    let mut packet_id = 0;
    if qos > 0 {
        let id = body.get(pos..pos + 2).ok_or(truncated.clone())?;
        packet_id = u16::from_be_bytes([id[0], id[1]]);
        pos += 2;
    }
    if v5 {
        let (props_len, n) = varint(body.get(pos..).unwrap_or_default())?;
        pos += n + props_len;
    }
    if pos > body.len() {
        return Err(truncated);
    }
    Ok(FrameKind::Publish {
        qos,
        packet_id,
        payload: offset + pos..offset + body.len(),
    })
}

/// A variable byte integer inside a packet body: `(value, bytes used)`.
fn varint(buf: &[u8]) -> Result<(usize, usize), DecodeError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(DecodeError::Malformed("bad variable byte integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_input_waits() {
        assert_eq!(Frame::peek(&[], false), Ok(None));
        assert_eq!(Frame::peek(&[0x30], false), Ok(None));
        assert_eq!(Frame::peek(&[0x30, 0x80], false), Ok(None));
        assert_eq!(Frame::peek(&[0x40, 0x02, 0x00], false), Ok(None));
    }

    #[test]
    fn acks_and_ping() {
        let f = Frame::peek(&[0x40, 0x02, 0x12, 0x34, 0xff], false)
            .unwrap()
            .unwrap();
        assert_eq!(
            f,
            Frame {
                kind: FrameKind::PubAck(0x1234, 0),
                len: 4
            }
        );
        // v5 long form: reason code and property length follow the id.
        let f = Frame::peek(&[0x50, 0x04, 0x00, 0x07, 0x10, 0x00], true)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FrameKind::PubRec(7, 0x10));
        assert_eq!(f.len, 6);
        let f = Frame::peek(&[0x40, 0x03, 0x00, 0x07, 0x97], true)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FrameKind::PubAck(7, 0x97));
        let f = Frame::peek(&[0x62, 0x02, 0x00, 0x08], false)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FrameKind::PubRel(8));
        let f = Frame::peek(&[0x70, 0x02, 0x00, 0x09], false)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FrameKind::PubComp(9));
        let f = Frame::peek(&[0xd0, 0x00], false).unwrap().unwrap();
        assert_eq!(
            f,
            Frame {
                kind: FrameKind::PingResp,
                len: 2
            }
        );
        let f = Frame::peek(&[0x20, 0x02, 0x00, 0x00], false)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FrameKind::Other);
    }

    #[test]
    fn publish_v3_and_v5() {
        // QoS 1, topic "a/b", id 5, payload "xyz".
        let v3 = [
            0x32, 0x0a, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x05, b'x', b'y', b'z',
        ];
        let f = Frame::peek(&v3, false).unwrap().unwrap();
        assert_eq!(f.len, v3.len());
        let FrameKind::Publish {
            qos,
            packet_id,
            payload,
        } = f.kind
        else {
            panic!()
        };
        assert_eq!((qos, packet_id), (1, 5));
        assert_eq!(&v3[payload], b"xyz");
        // QoS 0 v5 with a 2-byte property block (payload format indicator).
        let v5 = [0x30, 0x08, 0x00, 0x01, b't', 0x02, 0x01, 0x01, b'h', b'i'];
        let f = Frame::peek(&v5, true).unwrap().unwrap();
        let FrameKind::Publish {
            qos,
            packet_id,
            payload,
        } = f.kind
        else {
            panic!()
        };
        assert_eq!((qos, packet_id), (0, 0));
        assert_eq!(&v5[payload], b"hi");
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(Frame::peek(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], false).is_err());
        assert!(
            Frame::peek(&[0x36, 0x02, 0x00, 0x00], false).is_err(),
            "QoS 3"
        );
        assert!(
            Frame::peek(&[0x30, 0x02, 0x00, 0x05], false).is_err(),
            "topic overruns"
        );
        assert!(
            Frame::peek(&[0x40, 0x01, 0x00], false).is_err(),
            "short ack"
        );
    }
}

//! A pre-encoded PUBLISH that is copied and patched per message, so publishing allocates
//! nothing: the codec encodes the packet once, then each message only rewrites its packet id
//! and bench header in place.

use crate::payload::{BenchHeader, HEADER_LEN};
use bytes::{Bytes, BytesMut};
use midge_codec::{encode, Packet, ProtocolVersion, Publish, QoS};
use std::sync::Arc;

/// Why a template could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The codec refused the packet.
    #[error("cannot encode PUBLISH: {0}")]
    Encode(#[from] midge_codec::EncodeError),
    /// The encoded bytes do not have the expected layout.
    #[error("unexpected PUBLISH encoding: {0}")]
    Layout(&'static str),
}

/// The encoded bytes of one client's PUBLISH, with the offsets to patch.
#[derive(Debug, Clone)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    /// Offset of the 2-byte packet id, for QoS > 0.
    packet_id_at: Option<usize>,
    /// Offset of the payload (where the bench header goes).
    payload_at: usize,
    /// Whether the payload is big enough to carry the bench header.
    has_header: bool,
}

impl PublishTemplate {
    /// Encodes a PUBLISH of `payload_len` zero bytes to `topic`.
    pub fn new(
        topic: &str,
        qos: QoS,
        retain: bool,
        payload_len: usize,
        version: ProtocolVersion,
    ) -> Result<PublishTemplate, TemplateError> {
        let publish = Publish {
            dup: false,
            qos,
            retain,
            topic: Arc::from(topic),
            packet_id: (qos != QoS::AtMostOnce).then_some(0xA55A),
            properties: Default::default(),
            payload: Bytes::from(vec![0u8; payload_len]),
        };
        let mut buf = BytesMut::new();
        encode(&Packet::Publish(publish), version, &mut buf)?;
        let bytes = buf.to_vec();
        let payload_at = bytes
            .len()
            .checked_sub(payload_len)
            .ok_or(TemplateError::Layout("shorter than its payload"))?;
        let packet_id_at = if qos == QoS::AtMostOnce {
            None
        } else {
            // v5 puts the property length (one 0 byte for no properties) after the id.
            let props = usize::from(version.is_v5());
            let at = payload_at
                .checked_sub(2 + props)
                .ok_or(TemplateError::Layout("no room for a packet id"))?;
            if bytes[at..at + 2] != [0xA5, 0x5A] {
                return Err(TemplateError::Layout("packet id not where expected"));
            }
            Some(at)
        };
        Ok(PublishTemplate {
            bytes,
            packet_id_at,
            payload_at,
            has_header: payload_len >= HEADER_LEN,
        })
    }

    /// Encoded size of each message.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether each message carries the bench header.
    #[cfg(test)]
    pub fn has_header(&self) -> bool {
        self.has_header
    }

    /// Appends one message to `out` with the given packet id (ignored for QoS 0) and header
    /// (ignored when the payload is too small to hold it).
    pub fn append(&self, out: &mut BytesMut, packet_id: u16, header: &BenchHeader) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let msg = &mut out[start..];
        if let Some(at) = self.packet_id_at {
            msg[at..at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        if self.has_header {
            header.write_to(&mut msg[self.payload_at..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Frame, FrameKind};
    use midge_codec::decode;

    fn check(version: ProtocolVersion, qos: QoS, size: usize) {
        let t = PublishTemplate::new("bench/7", qos, true, size, version).unwrap();
        assert_eq!(t.has_header(), size >= HEADER_LEN);
        let header = BenchHeader {
            timestamp_ns: 123_456_789,
            publisher: 7,
            seq: 42,
        };
        let mut out = BytesMut::new();
        t.append(&mut out, 0x0102, &header);
        t.append(&mut out, 0x0304, &header);
        assert_eq!(out.len(), 2 * t.len());

        // The fast-path frame parser and the codec agree on what was written.
        let frame = Frame::peek(&out, version.is_v5()).unwrap().unwrap();
        let FrameKind::Publish {
            qos: q,
            packet_id,
            payload,
        } = frame.kind
        else {
            panic!("not a publish: {frame:?}")
        };
        assert_eq!(q, qos as u8);
        assert_eq!(packet_id, if qos == QoS::AtMostOnce { 0 } else { 0x0102 });
        assert_eq!(payload.len(), size);
        if size >= HEADER_LEN {
            assert_eq!(BenchHeader::read_from(&out[payload]), Some(header));
        }

        let Some(Packet::Publish(p)) = decode(&mut out, version, u32::MAX).unwrap() else {
            panic!("codec did not decode a PUBLISH")
        };
        assert_eq!(&*p.topic, "bench/7");
        assert!(p.retain);
        assert_eq!(p.qos, qos);
        assert_eq!(p.payload.len(), size);
        let Some(Packet::Publish(second)) = decode(&mut out, version, u32::MAX).unwrap() else {
            panic!("second message missing")
        };
        if qos != QoS::AtMostOnce {
            assert_eq!(second.packet_id, Some(0x0304));
        }
        assert!(out.is_empty());
    }

    #[test]
    fn templates_round_trip_through_the_codec() {
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                for size in [0, 10, HEADER_LEN, 256, 20_000] {
                    check(version, qos, size);
                }
            }
        }
    }
}

//! Encoding a routed message once for the many subscribers it goes to.
//!
//! Routing makes one copy of a PUBLISH per subscriber, and copies of one message differ in
//! little: usually nothing, or only the packet id (QoS 1/2). The dispatcher encodes them one
//! after another, so remembering the last encoding turns every further copy into a copy of
//! its bytes with the packet id written in.

use bytes::BytesMut;
use midge_codec::{EncodeError, Packet, ProtocolVersion, Publish};
use std::sync::Arc;

/// Largest encoding kept between dispatches; a bigger one is let go of by [`PublishEncoder::clear`].
const KEEP_BYTES: usize = 64 * 1024;

/// The last publish encoded, to reuse for the next copies of the same message.
#[derive(Debug, Default)]
pub(crate) struct PublishEncoder {
    last: Option<Last>,
    /// The last publish's encoding (its buffer is reused for the next).
    bytes: BytesMut,
}

#[derive(Debug)]
struct Last {
    /// The publish, with its packet id as it was (only its presence matters).
    publish: Publish,
    version: ProtocolVersion,
    /// Where the packet id sits in the encoding (QoS 1/2).
    id_at: Option<usize>,
}

impl Last {
    /// True if `publish` for `version` encodes to the same bytes but for the packet id: the
    /// same message (one topic and one payload, by identity), the same flags and properties.
    fn fits(&self, publish: &Publish, version: ProtocolVersion) -> bool {
        let last = &self.publish;
        self.version == version
            && last.qos == publish.qos
            && last.retain == publish.retain
            && last.dup == publish.dup
            && last.packet_id.is_some() == publish.packet_id.is_some()
            && Arc::ptr_eq(&last.topic, &publish.topic)
            && last.payload.as_ptr() == publish.payload.as_ptr()
            && last.payload.len() == publish.payload.len()
            && last.properties == publish.properties
    }
}

impl PublishEncoder {
    /// Appends `packet` encoded for `version` to `out`, reusing the last encoding when
    /// `packet` is another copy of the same message. Nothing is appended on an error.
    pub(crate) fn encode(
        &mut self,
        packet: &Packet,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let Packet::Publish(publish) = packet else {
            return midge_codec::encode(packet, version, out);
        };
        let start = out.len();
        if let Some(last) = self.last.as_ref().filter(|l| l.fits(publish, version)) {
            out.extend_from_slice(&self.bytes);
            if let (Some(at), Some(id)) = (last.id_at, publish.packet_id) {
                out[start + at..start + at + 2].copy_from_slice(&id.to_be_bytes());
            }
            return Ok(());
        }
        self.last = None;
        midge_codec::encode(packet, version, out)?;
        let encoded = &out[start..];
        // PUBLISH: the type byte, Remaining Length (a variable byte integer), the topic (a
        // 2-byte length and the name), then the packet id if QoS > 0.
        let id_at = publish.packet_id.map(|_| {
            let length_bytes = encoded[1..].iter().take_while(|b| *b & 0x80 != 0).count() + 1;
            1 + length_bytes + 2 + publish.topic.len()
        });
        self.bytes.clear();
        self.bytes.extend_from_slice(encoded);
        self.last = Some(Last {
            publish: publish.clone(),
            version,
            id_at,
        });
        Ok(())
    }

    /// Forgets the last publish, so it keeps no message (nor the read buffer its payload may be
    /// a slice of) alive.
    pub(crate) fn clear(&mut self) {
        self.last = None;
        if self.bytes.capacity() > KEEP_BYTES {
            self.bytes = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::{PublishProperties, QoS};

    fn publish(topic: &Arc<str>, payload: &Bytes, qos: QoS, id: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.clone(),
            packet_id: id,
            properties: PublishProperties::default(),
            payload: payload.clone(),
        }
    }

    fn plain(p: &Publish, version: ProtocolVersion) -> BytesMut {
        let mut out = BytesMut::new();
        midge_codec::encode(&Packet::Publish(p.clone()), version, &mut out).unwrap();
        out
    }

    #[test]
    fn copies_encode_exactly_as_the_codec_does() {
        let topic: Arc<str> = "a/b".into();
        let mut encoder = PublishEncoder::default();
        // Payload sizes around every Remaining Length boundary, so the packet id offset is
        // checked with 1-, 2- and 3-byte length fields.
        for size in [0, 10, 120, 121, 122, 130, 16_370, 16_380, 16_384, 70_000] {
            let payload = Bytes::from(vec![7u8; size]);
            for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
                for (qos, id) in [
                    (QoS::AtMostOnce, None),
                    (QoS::AtLeastOnce, Some(1)),
                    (QoS::AtLeastOnce, Some(0x1234)),
                    (QoS::ExactlyOnce, Some(0xfffe)),
                ] {
                    let p = publish(&topic, &payload, qos, id);
                    let mut out = BytesMut::from(&b"xy"[..]);
                    encoder
                        .encode(&Packet::Publish(p.clone()), version, &mut out)
                        .unwrap();
                    assert_eq!(
                        &out[2..],
                        &plain(&p, version)[..],
                        "{size} B {version:?} {qos:?} {id:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_different_message_or_copy_is_encoded_afresh() {
        let topic: Arc<str> = "t".into();
        let payload = Bytes::from_static(b"hello");
        let mut encoder = PublishEncoder::default();
        let first = publish(&topic, &payload, QoS::AtMostOnce, None);
        let mut ids = first.clone();
        ids.properties.subscription_identifiers = vec![3];
        let mut retained = first.clone();
        retained.retain = true;
        let other_payload = publish(&topic, &Bytes::from_static(b"world"), QoS::AtMostOnce, None);
        let other_topic = publish(&"u".into(), &payload, QoS::AtMostOnce, None);
        for p in [
            &first,
            &ids,
            &retained,
            &other_payload,
            &other_topic,
            &first,
        ] {
            for version in [ProtocolVersion::V5, ProtocolVersion::V3_1_1] {
                let mut out = BytesMut::new();
                encoder
                    .encode(&Packet::Publish(p.clone()), version, &mut out)
                    .unwrap();
                assert_eq!(out, plain(p, version), "{p:?} {version:?}");
            }
        }
        let mut out = BytesMut::new();
        encoder
            .encode(&Packet::PingResp, ProtocolVersion::V5, &mut out)
            .unwrap();
        assert_eq!(&out[..], &[0xD0, 0], "other packets pass through");
        encoder.clear();
        assert!(encoder.last.is_none());
    }
}

//! PUBLISH (3.3).

use crate::primitives::{write_packet_id, Reader, Sink};
use crate::properties;
use crate::{DecodeError, EncodeError, PacketId, ProtocolVersion, PublishProperties, QoS, Sparse};
use bytes::Bytes;
use std::sync::Arc;

/// A PUBLISH packet. Cloning is cheap: topic and payload are reference counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS level.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name; may be empty in v5 when a topic alias is used.
    pub topic: Arc<str>,
    /// Packet identifier, present iff qos > 0.
    pub packet_id: Option<PacketId>,
    /// v5 properties (empty for v3); one pointer, shared by copies of this PUBLISH.
    pub properties: Sparse<PublishProperties>,
    /// Application payload.
    pub payload: Bytes,
}

/// PUBLISH fixed header flag bits (3.3.1).
const DUP: u8 = 0x08;
const QOS_SHIFT: u8 = 1;
const RETAIN: u8 = 0x01;

/// True if a topic name contains `+` or `#` (MQTT-3.3.2-2). A byte scan: both are ASCII, so
/// they cannot occur inside a multi-byte UTF-8 sequence.
fn has_wildcard(topic: &str) -> bool {
    topic.bytes().any(|b| b == b'+' || b == b'#')
}

impl Publish {
    /// Gives the payload and the correlation data allocations of their own. Decoding slices
    /// them out of the connection's read buffer without copying, and a slice keeps that whole
    /// buffer alive: a message kept for long (a retained message) is detached first, so it
    /// holds its own bytes and not a read buffer of several kilobytes.
    pub fn detach_buffers(&mut self) {
        self.payload = Bytes::copy_from_slice(&self.payload);
        let data = self.properties.get_mut();
        if let Some(data) = data.and_then(|p| p.correlation_data.as_mut()) {
            *data = Bytes::copy_from_slice(data);
        }
    }

    /// Splits and validates the fixed header flags into (dup, qos, retain).
    pub(crate) fn parse_flags(flags: u8) -> Result<(bool, QoS, bool), DecodeError> {
        // MQTT-3.3.1-4: both QoS bits set is Malformed.
        let qos = QoS::from_u8((flags >> QOS_SHIFT) & 0x03)
            .ok_or(DecodeError::Malformed("PUBLISH with QoS 3"))?;
        let dup = flags & DUP != 0;
        if dup && qos == QoS::AtMostOnce {
            // MQTT-3.3.1-2
            return Err(DecodeError::Malformed("DUP set on a QoS 0 PUBLISH"));
        }
        Ok((dup, qos, flags & RETAIN != 0))
    }

    /// The fixed header flags for this PUBLISH. DUP is only sent with QoS > 0 (MQTT-3.3.1-2),
    /// so a QoS 0 copy of a redelivered message goes out without it.
    pub(crate) fn flags(&self) -> u8 {
        let mut flags = (self.qos as u8) << QOS_SHIFT;
        if self.dup && self.qos != QoS::AtMostOnce {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    /// Decodes the variable header and payload. The payload is a zero-copy slice.
    pub(crate) fn decode(
        flags: u8,
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Publish, DecodeError> {
        let (dup, qos, retain) = Publish::parse_flags(flags)?;
        let topic = r.str()?;
        if has_wildcard(topic) {
            // MQTT-3.3.2-2
            return Err(DecodeError::Malformed("wildcard in PUBLISH topic name"));
        }
        if topic.is_empty() && !version.is_v5() {
            // MQTT-4.7.3-1. In v5 an empty topic goes with a Topic Alias, which the broker
            // resolves and checks.
            return Err(DecodeError::Malformed("empty PUBLISH topic name"));
        }
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(r.packet_id()?)
        };
        let properties = if version.is_v5() {
            properties::decode(r)?
        } else {
            Sparse::none()
        };
        Ok(Publish {
            dup,
            qos,
            retain,
            topic: Arc::from(topic),
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    /// Encodes the variable header and payload. `packet_id` is left out at QoS 0
    /// (MQTT-2.2.1-2) and required otherwise; properties are left out for v3.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if S::CHECKED && has_wildcard(&self.topic) {
            return Err(EncodeError::InvalidField("wildcard in PUBLISH topic name"));
        }
        if self.topic.is_empty() && !version.is_v5() {
            return Err(EncodeError::InvalidField("empty PUBLISH topic name"));
        }
        s.write_str(&self.topic)?;
        if self.qos != QoS::AtMostOnce {
            let id = self.packet_id.ok_or(EncodeError::InvalidField(
                "QoS > 0 PUBLISH needs a packet identifier",
            ))?;
            write_packet_id(s, id)?;
        }
        if version.is_v5() {
            properties::encode(&self.properties, s)?;
        }
        s.write_slice(&self.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_buffers_no_longer_share_the_read_buffer() {
        let mut p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: "t".into(),
            packet_id: None,
            properties: PublishProperties {
                correlation_data: Some(Bytes::from_static(b"id")),
                ..PublishProperties::default()
            }
            .into(),
            payload: Bytes::from_static(b"hello"),
        };
        let mut buf = bytes::BytesMut::new();
        crate::encode(
            &crate::Packet::Publish(p.clone()),
            ProtocolVersion::V5,
            &mut buf,
        )
        .unwrap();
        let read = buf.freeze();
        let mut frame = bytes::BytesMut::from(&read[..]);
        let Some(crate::Packet::Publish(mut decoded)) =
            crate::decode(&mut frame, ProtocolVersion::V5, u32::MAX).unwrap()
        else {
            panic!("not a PUBLISH");
        };
        assert!(
            !decoded.payload.is_unique(),
            "decoding slices the read buffer"
        );
        decoded.detach_buffers();
        assert!(decoded.payload.is_unique());
        assert!(decoded
            .properties
            .correlation_data
            .as_ref()
            .unwrap()
            .is_unique());
        p.detach_buffers();
        assert_eq!(decoded, p);
    }
    use crate::test_util::{
        assert_malformed, decode_frame, round_trip, s, ALL_VERSIONS, V3_VERSIONS,
    };
    use crate::{Packet, MAX_PACKET_SIZE};
    use bytes::BytesMut;

    const V5: ProtocolVersion = ProtocolVersion::V5;

    fn publish(qos: QoS, topic: &str, id: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.into(),
            packet_id: id,
            properties: Sparse::none(),
            payload: Bytes::from_static(b"hello"),
        }
    }

    #[test]
    fn qos_3_is_malformed() {
        // MQTT-3.3.1-4: refused on the first byte, before the rest arrives.
        for v in ALL_VERSIONS {
            let mut buf = BytesMut::from(&[0x36][..]);
            let err = crate::decode(&mut buf, v, MAX_PACKET_SIZE).unwrap_err();
            assert_eq!(err, DecodeError::Malformed("PUBLISH with QoS 3"));
            assert_eq!(err.reason_code(), crate::ReasonCode::MalformedPacket);
        }
    }

    #[test]
    fn dup_with_qos_0_is_malformed() {
        // MQTT-3.3.1-2
        for v in ALL_VERSIONS {
            assert_malformed(0x38, &s("t"), v);
        }
    }

    #[test]
    fn wildcards_in_topic_name_are_malformed() {
        // MQTT-3.3.2-2
        for v in ALL_VERSIONS {
            for topic in ["a/+", "#", "a/#", "+"] {
                let mut body = s(topic);
                if v.is_v5() {
                    body.push(0);
                }
                assert_malformed(0x30, &body, v);
            }
        }
    }

    #[test]
    fn empty_topic_is_malformed_in_v3_only() {
        // MQTT-4.7.3-1 in v3; in v5 an empty topic goes with a Topic Alias (3.3.2.3.4), which
        // the broker checks.
        for v in V3_VERSIONS {
            assert_malformed(0x30, &s(""), v);
        }
        let p = decode_frame(0x30, &[0, 0, 3, 0x23, 0, 1], V5).unwrap();
        assert!(matches!(p, Packet::Publish(p) if p.topic.is_empty()
            && p.properties.topic_alias == Some(1)));
    }

    #[test]
    fn packet_id_rules() {
        // MQTT-2.3.1-1 (3.1.1) / MQTT-2.2.1-3 (5.0): QoS > 0 needs a non-zero identifier.
        for v in V3_VERSIONS {
            assert_malformed(0x32, &[&s("t")[..], &[0, 0]].concat(), v);
            // Missing entirely.
            assert_malformed(0x32, &[0, 1, b't', 0], v);
        }
        assert_malformed(0x34, &[&s("t")[..], &[0, 0, 0]].concat(), V5);
        // QoS 0 has no identifier: the two bytes are payload.
        let p = decode_frame(
            0x30,
            &[&s("t")[..], &[0, 0]].concat(),
            ProtocolVersion::V3_1_1,
        );
        assert!(matches!(p, Ok(Packet::Publish(p)) if p.packet_id.is_none()
            && p.payload[..] == [0, 0]));
    }

    #[test]
    fn v5_properties_are_checked() {
        // 3.3.2.3.4: Topic Alias 0 decodes; the broker core answers it with 0x94.
        assert!(crate::decode(
            &mut crate::test_util::frame(0x30, &[&s("t")[..], &[3, 0x23, 0, 0]].concat()),
            V5,
            64
        )
        .is_ok());
        // 2.2.2.1: property length past the end of the packet.
        assert_malformed(0x30, &[&s("t")[..], &[9, 0x23, 0, 1]].concat(), V5);
        // Missing property length entirely.
        assert_malformed(0x30, &s("t"), V5);
    }

    #[test]
    fn payload_is_a_slice_of_the_input() {
        let mut buf = crate::test_util::frame(0x31, &[&s("a/b")[..], b"payload"].concat());
        let base = buf.as_ptr() as usize;
        let Ok(Some(Packet::Publish(p))) = crate::decode(&mut buf, ProtocolVersion::V3_1_1, 64)
        else {
            panic!("no publish");
        };
        assert!(p.retain);
        assert_eq!(&p.payload[..], b"payload");
        // Zero-copy: the payload points into the original buffer (2 header + 5 topic bytes).
        assert_eq!(p.payload.as_ptr() as usize, base + 7);
    }

    #[test]
    fn qos_0_encoding_leaves_out_dup_and_packet_id() {
        let mut p = publish(QoS::AtMostOnce, "t", Some(9));
        p.dup = true;
        let mut buf = BytesMut::new();
        crate::encode(&Packet::Publish(p), V5, &mut buf).unwrap();
        assert_eq!(
            &buf[..],
            &[0x30, 9, 0, 1, b't', 0, b'h', b'e', b'l', b'l', b'o']
        );
    }

    #[test]
    fn qos_1_encoding_needs_a_packet_id() {
        for id in [None, Some(0)] {
            let p = Packet::Publish(publish(QoS::AtLeastOnce, "t", id));
            assert!(matches!(
                crate::encoded_len(&p, V5),
                Err(EncodeError::InvalidField(_))
            ));
        }
        let p = Packet::Publish(publish(QoS::ExactlyOnce, "t", Some(7)));
        assert_eq!(round_trip(&p, V5)[0], 0x34);
    }

    #[test]
    fn invalid_topics_are_refused_on_encode() {
        let wild = Packet::Publish(publish(QoS::AtMostOnce, "a/#", None));
        assert!(crate::encoded_len(&wild, V5).is_err());
        let empty = Packet::Publish(publish(QoS::AtMostOnce, "", None));
        assert!(crate::encoded_len(&empty, ProtocolVersion::V3_1_1).is_err());
        assert!(crate::encoded_len(&empty, V5).is_ok());
    }

    #[test]
    fn v3_encoding_leaves_out_properties() {
        let mut p = publish(QoS::AtMostOnce, "t", None);
        p.properties.make_mut().message_expiry_interval = Some(5);
        let mut buf = BytesMut::new();
        crate::encode(&Packet::Publish(p), ProtocolVersion::V3_1_1, &mut buf).unwrap();
        assert_eq!(buf.len(), 2 + 3 + 5);
    }
}

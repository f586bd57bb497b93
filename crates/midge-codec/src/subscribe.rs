//! SUBSCRIBE (3.8).

use crate::primitives::{write_packet_id, Reader, Sink};
use crate::properties;
use crate::{DecodeError, EncodeError, PacketId, ProtocolVersion, QoS, SubscribeProperties};

/// v5 Retain Handling subscription option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// 0: send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe,
    /// 1: send retained messages only if the subscription did not exist.
    SendIfNew,
    /// 2: do not send retained messages.
    DoNotSend,
}

/// Subscription options byte (v3 uses only the QoS bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local (v5).
    pub no_local: bool,
    /// Retain As Published (v5).
    pub retain_as_published: bool,
    /// Retain Handling (v5).
    pub retain_handling: RetainHandling,
}

/// One topic filter with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSubscription {
    /// The topic filter as sent (may start with `$share/`); validated by the codec.
    pub filter: String,
    /// Options.
    pub options: SubscriptionOptions,
}

/// A SUBSCRIBE packet; it carries at least one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Filters, in order.
    pub filters: Vec<TopicSubscription>,
    /// v5 properties.
    pub properties: SubscribeProperties,
}

/// Subscription options bits (3.8.3.1).
const QOS_MASK: u8 = 0x03;
const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;
const RETAIN_HANDLING_SHIFT: u8 = 4;
/// Bits that must be 0: 2-7 in v3 (MQTT-3.8.3-4 of 3.1.1), 6-7 in v5 (MQTT-3.8.3-5).
const RESERVED_V3: u8 = 0xFC;
const RESERVED_V5: u8 = 0xC0;

impl SubscriptionOptions {
    /// Parses the options byte for `version`.
    fn decode(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
        let reserved = if version.is_v5() {
            RESERVED_V5
        } else {
            RESERVED_V3
        };
        if byte & reserved != 0 {
            return Err(DecodeError::Malformed(
                "subscription options reserved bits set",
            ));
        }
        let qos = QoS::from_u8(byte & QOS_MASK)
            .ok_or(DecodeError::Malformed("subscription with QoS 3"))?;
        let retain_handling = match (byte >> RETAIN_HANDLING_SHIFT) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            // 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3".
            _ => return Err(DecodeError::Protocol("retain handling 3")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & NO_LOCAL != 0,
            retain_as_published: byte & RETAIN_AS_PUBLISHED != 0,
            retain_handling,
        })
    }

    /// The options byte for `version`; v3 only has the QoS bits.
    fn encode(self, version: ProtocolVersion) -> u8 {
        let mut byte = self.qos as u8;
        if version.is_v5() {
            if self.no_local {
                byte |= NO_LOCAL;
            }
            if self.retain_as_published {
                byte |= RETAIN_AS_PUBLISHED;
            }
            let rh = match self.retain_handling {
                RetainHandling::SendAtSubscribe => 0,
                RetainHandling::SendIfNew => 1,
                RetainHandling::DoNotSend => 2,
            };
            byte |= rh << RETAIN_HANDLING_SHIFT;
        }
        byte
    }
}

/// Reads one topic filter: non-empty (MQTT-4.7.3-1) with `+` and `#` only as whole levels and
/// `#` last (MQTT-4.7.1-2, -3), and a well-formed `$share/{group}/{filter}`. A filter breaking
/// those MUSTs is a Malformed Packet, answered with DISCONNECT 0x81 (v5) or a close (v3), as
/// Mosquitto does; SUBACK 0x8F is left for well-formed filters the broker refuses.
pub(crate) fn read_filter(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let filter = r.str()?;
    if filter.is_empty() {
        return Err(DecodeError::Malformed("empty topic filter"));
    }
    if !crate::topic::is_valid_topic_filter(filter) {
        return Err(DecodeError::Malformed("invalid topic filter"));
    }
    Ok(filter.to_owned())
}

/// Writes one topic filter, refusing an empty one.
pub(crate) fn write_filter<S: Sink>(s: &mut S, filter: &str) -> Result<(), EncodeError> {
    if filter.is_empty() {
        return Err(EncodeError::InvalidField("empty topic filter"));
    }
    s.write_str(filter)
}

impl Subscribe {
    /// Decodes the variable header and payload.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Subscribe, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = if version.is_v5() {
            properties::decode(r)?
        } else {
            SubscribeProperties::default()
        };
        if r.is_empty() {
            // MQTT-3.8.3-3
            return Err(DecodeError::Protocol("SUBSCRIBE without topic filters"));
        }
        let mut filters = Vec::new();
        while !r.is_empty() {
            let filter = read_filter(r)?;
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            if options.no_local && filter.starts_with("$share/") {
                // MQTT-3.8.3-4 (5.0)
                return Err(DecodeError::Protocol("No Local on a shared subscription"));
            }
            filters.push(TopicSubscription { filter, options });
        }
        Ok(Subscribe {
            packet_id,
            filters,
            properties,
        })
    }

    /// Encodes the variable header and payload; v5-only options and properties are left out
    /// for v3.
    pub(crate) fn encode<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::InvalidField("SUBSCRIBE without topic filters"));
        }
        write_packet_id(s, self.packet_id)?;
        if version.is_v5() {
            properties::encode(&self.properties, s)?;
        }
        for sub in &self.filters {
            write_filter(s, &sub.filter)?;
            s.write_u8(sub.options.encode(version));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_malformed, assert_protocol, decode_frame, round_trip, s, V3_VERSIONS,
    };
    use crate::Packet;

    const V5: ProtocolVersion = ProtocolVersion::V5;
    const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

    fn subscribe(bytes: &[u8], v: ProtocolVersion) -> Subscribe {
        match decode_frame(0x82, bytes, v) {
            Ok(Packet::Subscribe(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_filters_is_a_protocol_error() {
        // MQTT-3.8.3-3 (v3.1.1) / MQTT-3.8.3-2 (v5): a SUBSCRIBE with no payload is a Protocol Error
        assert_protocol(0x82, &[0, 1], V311);
        assert_protocol(0x82, &[0, 1, 0], V5);
    }

    #[test]
    fn empty_filter_is_malformed() {
        // MQTT-4.7.3-1
        assert_malformed(0x82, &[0, 1, 0, 0, 0], V311);
    }

    #[test]
    fn packet_id_0_is_malformed() {
        // MQTT-2.3.1-1 (3.1.1) / MQTT-2.2.1-3 (5.0)
        assert_malformed(0x82, &[&[0, 0][..], &s("a"), &[0]].concat(), V311);
    }

    #[test]
    fn wildcard_misuse_is_malformed() {
        // MQTT-4.7.1-2 (`#` last, on its own) and MQTT-4.7.1-3 (`+` a whole level): a filter
        // breaking them is a Malformed Packet (5.0 4.13: DISCONNECT 0x81), as in Mosquitto.
        assert_malformed(0x82, &[&[0, 1][..], &s("a/#/b"), &[1]].concat(), V311);
        assert_malformed(0x82, &[&[0, 1][..], &s("x+"), &[2]].concat(), V311);
        assert_malformed(
            0x82,
            &[&[0, 1][..], &[0], &s("$share/g+/t"), &[1]].concat(),
            V5,
        );
    }

    #[test]
    fn qos_3_option_is_malformed() {
        // MQTT-3.8.3-4 (3.1.1); 3.8.3.1 (5.0)
        assert_malformed(0x82, &[&[0, 1][..], &s("a"), &[3]].concat(), V311);
        assert_malformed(0x82, &[&[0, 1, 0][..], &s("a"), &[3]].concat(), V5);
    }

    #[test]
    fn reserved_option_bits_are_malformed() {
        // MQTT-3.8.3-4 (3.1.1): bits 2-7 are reserved in v3.
        for v in V3_VERSIONS {
            for bit in 2..8 {
                assert_malformed(0x82, &[&[0, 1][..], &s("a"), &[1 << bit]].concat(), v);
            }
        }
        // MQTT-3.8.3-5 (5.0): bits 6-7 are reserved in v5.
        for bit in [6, 7] {
            assert_malformed(0x82, &[&[0, 1, 0][..], &s("a"), &[1 << bit]].concat(), V5);
        }
    }

    #[test]
    fn retain_handling_3_is_protocol_error() {
        // 3.8.3.1
        assert_protocol(0x82, &[&[0, 1, 0][..], &s("a"), &[0x30]].concat(), V5);
    }

    #[test]
    fn no_local_on_shared_subscription_is_protocol_error() {
        // MQTT-3.8.3-4 (5.0)
        assert_protocol(
            0x82,
            &[&[0, 1, 0][..], &s("$share/g/a"), &[0x04]].concat(),
            V5,
        );
        let ok = subscribe(&[&[0, 1, 0][..], &s("a"), &[0x04]].concat(), V5);
        assert!(ok.filters[0].options.no_local);
    }

    #[test]
    fn v5_options_decode() {
        let sub = subscribe(
            &[&[0, 9, 2, 0x0B, 5][..], &s("a/+"), &[0b0010_1110]].concat(),
            V5,
        );
        assert_eq!(sub.properties.subscription_identifier, Some(5));
        assert_eq!(
            sub.filters[0].options,
            SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            }
        );
    }

    #[test]
    fn v5_properties_are_checked() {
        // 3.8.2.1.2: Subscription Identifier 0, or twice.
        assert_protocol(0x82, &[&[0, 1, 2, 0x0B, 0][..], &s("a"), &[0]].concat(), V5);
        assert_protocol(
            0x82,
            &[&[0, 1, 4, 0x0B, 1, 0x0B, 2][..], &s("a"), &[0]].concat(),
            V5,
        );
    }

    #[test]
    fn v3_encoding_sends_only_the_qos_bits() {
        let sub = Subscribe {
            packet_id: 1,
            filters: vec![TopicSubscription {
                filter: "a".into(),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendIfNew,
                },
            }],
            properties: SubscribeProperties::default(),
        };
        let mut buf = bytes::BytesMut::new();
        crate::encode(&Packet::Subscribe(sub.clone()), V311, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0x82, 6, 0, 1, 0, 1, b'a', 0x01]);
        assert_eq!(
            *round_trip(&Packet::Subscribe(sub).clone(), V5)
                .last()
                .unwrap(),
            0x1D
        );
    }

    #[test]
    fn encoding_refuses_no_filters() {
        let sub = Subscribe {
            packet_id: 1,
            filters: vec![],
            properties: SubscribeProperties::default(),
        };
        assert!(crate::encoded_len(&Packet::Subscribe(sub), V5).is_err());
    }
}

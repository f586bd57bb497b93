//! CONNECT (3.1).

use crate::primitives::{Reader, Sink};
use crate::properties;
use crate::topic::is_valid_topic_name;
use crate::{ConnectProperties, DecodeError, EncodeError, ProtocolVersion, QoS, WillProperties};
use bytes::Bytes;
use std::sync::Arc;

/// A CONNECT packet. Decoding it fixes the connection's protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version from the protocol name and level.
    pub protocol: ProtocolVersion,
    /// Clean Session (v3) / Clean Start (v5).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty.
    pub client_id: String,
    /// The will message, if the will flag is set.
    pub will: Option<LastWill>,
    /// User name, if the flag is set.
    pub username: Option<String>,
    /// Password, if the flag is set.
    pub password: Option<Bytes>,
    /// v5 properties (empty for v3).
    pub properties: ConnectProperties,
}

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Will topic (a topic name: no wildcards).
    pub topic: Arc<str>,
    /// Will payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
    /// v5 will properties.
    pub properties: WillProperties,
}

impl LastWill {
    /// Gives the payload and the correlation data allocations of their own, so a will kept
    /// for the whole connection does not keep the buffer CONNECT was read into alive (see
    /// [`crate::Publish::detach_buffers`]).
    pub fn detach_buffers(&mut self) {
        self.payload = Bytes::copy_from_slice(&self.payload);
        if let Some(data) = &mut self.properties.correlation_data {
            *data = Bytes::copy_from_slice(data);
        }
    }
}

/// Connect flag bits (3.1.2.3).
const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

impl Connect {
    /// Decodes the CONNECT variable header and payload. The protocol version comes from the
    /// packet itself, not from the connection.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Connect, DecodeError> {
        let protocol = match (r.str()?, r.u8()?) {
            ("MQTT", 4) => ProtocolVersion::V3_1_1,
            ("MQTT", 5) => ProtocolVersion::V5,
            ("MQIsdp", 3) => ProtocolVersion::V3_1,
            // MQTT-3.1.2-1 / MQTT-3.1.2-2: the server answers with "unsupported protocol
            // version" (CONNACK 0x84 in v5, return code 1 in v3).
            _ => return Err(DecodeError::UnsupportedProtocolVersion),
        };
        let v5 = protocol.is_v5();
        let flags = r.u8()?;
        if flags & RESERVED != 0 {
            // MQTT-3.1.2-3
            return Err(DecodeError::Malformed("CONNECT reserved flag set"));
        }
        let will_flag = flags & WILL != 0;
        let will_qos_bits = (flags >> WILL_QOS_SHIFT) & 0x03;
        let will_retain = flags & WILL_RETAIN != 0;
        if !will_flag && (will_qos_bits != 0 || will_retain) {
            // MQTT-3.1.2-11 / MQTT-3.1.2-13 (5.0); MQTT-3.1.2-13 / MQTT-3.1.2-15 (3.1.1)
            return Err(DecodeError::Malformed(
                "will QoS or retain set without a will",
            ));
        }
        // MQTT-3.1.2-12 (5.0) / MQTT-3.1.2-14 (3.1.1)
        let will_qos = QoS::from_u8(will_qos_bits).ok_or(DecodeError::Malformed("will QoS 3"))?;
        let has_username = flags & USERNAME != 0;
        let has_password = flags & PASSWORD != 0;
        if has_password && !has_username && !v5 {
            // MQTT-3.1.2-22; v5 dropped this rule (3.1.2.9).
            return Err(DecodeError::Malformed(
                "password flag without user name flag",
            ));
        }
        let keep_alive = r.u16()?;
        let properties = if v5 {
            properties::decode(r)?
        } else {
            ConnectProperties::default()
        };
        // MQTT-3.1.3-1: Client Identifier, Will Properties, Will Topic, Will Payload,
        // User Name, Password, in that order.
        let client_id = r.string()?;
        let will = if will_flag {
            let properties = if v5 {
                properties::decode(r)?
            } else {
                WillProperties::default()
            };
            let topic = r.str()?;
            if !is_valid_topic_name(topic) {
                // The will topic is a topic name: non-empty (MQTT-4.7.3-1), no wildcards.
                return Err(DecodeError::Malformed(
                    "will topic is not a valid topic name",
                ));
            }
            Some(LastWill {
                topic: Arc::from(topic),
                payload: r.binary()?,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Connect {
            protocol,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    /// Encodes the variable header and payload for `self.protocol` (CONNECT is
    /// self-describing, so the connection's version does not matter). v5-only fields are
    /// left out for v3.
    pub(crate) fn encode<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let v5 = self.protocol.is_v5();
        if self.password.is_some() && self.username.is_none() && !v5 {
            return Err(EncodeError::InvalidField(
                "v3 CONNECT cannot carry a password without a user name",
            ));
        }
        s.write_str(match self.protocol {
            ProtocolVersion::V3_1 => "MQIsdp",
            ProtocolVersion::V3_1_1 | ProtocolVersion::V5 => "MQTT",
        })?;
        s.write_u8(self.protocol.level());
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        s.write_u8(flags);
        s.write_u16(self.keep_alive);
        if v5 {
            properties::encode(&self.properties, s)?;
        }
        s.write_str(&self.client_id)?;
        if let Some(will) = &self.will {
            if S::CHECKED && !is_valid_topic_name(&will.topic) {
                return Err(EncodeError::InvalidField(
                    "will topic is not a valid topic name",
                ));
            }
            if v5 {
                properties::encode(&will.properties, s)?;
            }
            s.write_str(&will.topic)?;
            s.write_binary(&will.payload)?;
        }
        if let Some(username) = &self.username {
            s.write_str(username)?;
        }
        if let Some(password) = &self.password {
            s.write_binary(password)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_malformed, assert_protocol, decode_frame, round_trip, s};
    use crate::{Packet, ReasonCode};

    const V5: ProtocolVersion = ProtocolVersion::V5;
    const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

    /// A CONNECT body: protocol name and level, flags, keep alive 60, then `rest`.
    fn body(name: &str, level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
        let mut b = s(name);
        b.push(level);
        b.push(flags);
        b.extend_from_slice(&[0, 60]);
        b.extend_from_slice(rest);
        b
    }

    fn connect(bytes: &[u8]) -> Connect {
        match decode_frame(0x10, bytes, V5) {
            Ok(Packet::Connect(c)) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_a_full_v3_1_1_connect() {
        let mut rest = s("client");
        rest.extend(s("will/t"));
        rest.extend(s("bye"));
        rest.extend(s("user"));
        rest.extend(s("pw"));
        // User name, password, will retain, will QoS 1, will, clean session.
        let c = connect(&body("MQTT", 4, 0b1110_1110, &rest));
        assert_eq!(c.protocol, V311);
        assert!(c.clean_start);
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.client_id, "client");
        let will = c.will.as_ref().unwrap();
        assert_eq!((&*will.topic, &will.payload[..]), ("will/t", &b"bye"[..]));
        assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, true));
        assert_eq!(c.username.as_deref(), Some("user"));
        assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(c.properties, ConnectProperties::default());
    }

    #[test]
    fn decodes_mqtt_3_1() {
        let c = connect(&body("MQIsdp", 3, 0x02, &s("c")));
        assert_eq!(c.protocol, ProtocolVersion::V3_1);
        assert_eq!(
            round_trip(&Packet::Connect(Box::new(c)), V5)[2..10],
            s("MQIsdp")[..]
        );
    }

    #[test]
    fn decodes_v5_properties_regardless_of_connection_version() {
        // CONNECT is self-describing: the `version` passed to decode does not matter.
        let mut rest = vec![5, 0x11, 0, 0, 0, 30];
        rest.extend(s("c"));
        for v in crate::test_util::ALL_VERSIONS {
            match decode_frame(0x10, &body("MQTT", 5, 0x02, &rest), v) {
                Ok(Packet::Connect(c)) => {
                    assert_eq!(c.protocol, V5);
                    assert_eq!(c.properties.session_expiry_interval, Some(30));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unknown_protocol_name_or_level_is_unsupported() {
        // MQTT-3.1.2-1 / MQTT-3.1.2-2: CONNACK 0x84 (v5) or return code 1 (v3).
        for (name, level) in [
            ("MQTT", 3),
            ("MQTT", 6),
            ("MQIsdp", 4),
            ("MQTT", 0x84),
            ("HTTP", 4),
        ] {
            let err = decode_frame(0x10, &body(name, level, 0x02, &s("c")), V5).unwrap_err();
            assert_eq!(
                err,
                DecodeError::UnsupportedProtocolVersion,
                "{name} {level}"
            );
            assert_eq!(err.reason_code(), ReasonCode::UnsupportedProtocolVersion);
        }
    }

    #[test]
    fn reserved_connect_flag_is_malformed() {
        // MQTT-3.1.2-3
        assert_malformed(0x10, &body("MQTT", 4, 0x03, &s("c")), V311);
        assert_malformed(
            0x10,
            &body("MQTT", 5, 0x03, &[&[0][..], &s("c")].concat()),
            V5,
        );
    }

    #[test]
    fn will_qos_or_retain_without_will_is_malformed() {
        // MQTT-3.1.2-13 / MQTT-3.1.2-15 (3.1.1), MQTT-3.1.2-11 / MQTT-3.1.2-13 (5.0).
        assert_malformed(0x10, &body("MQTT", 4, 0x02 | 0x08, &s("c")), V311);
        assert_malformed(0x10, &body("MQTT", 4, 0x02 | 0x10, &s("c")), V311);
        assert_malformed(0x10, &body("MQTT", 4, 0x02 | 0x20, &s("c")), V311);
    }

    #[test]
    fn will_qos_3_is_malformed() {
        // MQTT-3.1.2-14 (3.1.1) / MQTT-3.1.2-12 (5.0)
        let rest = [s("c"), s("t"), s("m")].concat();
        assert_malformed(0x10, &body("MQTT", 4, 0x02 | 0x04 | 0x18, &rest), V311);
    }

    #[test]
    fn password_without_user_name() {
        // MQTT-3.1.2-22: forbidden in 3.1.1 (and 3.1) ...
        let rest = [s("c"), s("pw")].concat();
        assert_malformed(0x10, &body("MQTT", 4, 0x42, &rest), V311);
        assert_malformed(0x10, &body("MQIsdp", 3, 0x42, &rest), V311);
        // ... but allowed in v5 (3.1.2.9).
        let c = connect(&body("MQTT", 5, 0x42, &[&[0][..], &rest].concat()));
        assert_eq!(
            (c.username, c.password.as_deref()),
            (None, Some(&b"pw"[..]))
        );
    }

    #[test]
    fn will_topic_must_be_a_topic_name() {
        // MQTT-3.3.2-2 (no wildcards) and MQTT-4.7.3-1 (not empty) apply to the will topic.
        for topic in ["a/+", "#", ""] {
            let rest = [s("c"), s(topic), s("m")].concat();
            assert_malformed(0x10, &body("MQTT", 4, 0x06, &rest), V311);
        }
    }

    #[test]
    fn trailing_or_missing_bytes_are_malformed() {
        // 2.1.4: the payload must fill the remaining length exactly.
        assert_malformed(
            0x10,
            &body("MQTT", 4, 0x02, &[&s("c")[..], &[0]].concat()),
            V311,
        );
        // The user name flag promises a field that is not there.
        assert_malformed(0x10, &body("MQTT", 4, 0x82, &s("c")), V311);
        assert_malformed(0x10, &body("MQTT", 4, 0x02, &[0, 5, b'a']), V311);
    }

    #[test]
    fn client_id_with_nul_is_malformed() {
        // MQTT-1.5.4-2
        assert_malformed(0x10, &body("MQTT", 4, 0x02, &[0, 1, 0]), V311);
    }

    #[test]
    fn v5_property_rules_apply() {
        // Topic Alias is not a CONNECT property (2.2.2.2).
        let rest = [&[3, 0x23, 0, 1][..], &s("c")].concat();
        assert_protocol(0x10, &body("MQTT", 5, 0x02, &rest), V5);
        // Will properties: Session Expiry Interval is not a will property (3.1.3.2).
        let rest = [&[0][..], &s("c"), &[5, 0x11, 0, 0, 0, 1], &s("t"), &s("m")].concat();
        assert_protocol(0x10, &body("MQTT", 5, 0x06, &rest), V5);
    }

    #[test]
    fn v3_encoding_refuses_password_without_user_name() {
        let c = Connect {
            protocol: V311,
            clean_start: true,
            keep_alive: 0,
            client_id: String::new(),
            will: None,
            username: None,
            password: Some(Bytes::from_static(b"pw")),
            properties: ConnectProperties::default(),
        };
        let p = Packet::Connect(Box::new(c));
        assert!(matches!(
            crate::encoded_len(&p, V311),
            Err(EncodeError::InvalidField(_))
        ));
    }
}

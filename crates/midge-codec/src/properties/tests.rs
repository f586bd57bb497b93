//! Property block tests: identifiers, duplicates, value checks, exact lengths.

use super::*;
use crate::primitives::Reader;
use crate::ReasonCode;
use bytes::{Bytes, BytesMut};

/// Decodes `block` (property length prefix added here) as property set `P`.
fn read<P: PropertySet>(block: &[u8]) -> Result<P, DecodeError> {
    let mut buf = BytesMut::new();
    buf.write_varint(u32::try_from(block.len()).unwrap())
        .unwrap();
    buf.extend_from_slice(block);
    let bytes = buf.freeze();
    let mut r = Reader::new(&bytes, 0);
    let p = decode::<P>(&mut r)?;
    assert!(r.is_empty());
    Ok(p)
}

fn expect_protocol<P: PropertySet + std::fmt::Debug>(block: &[u8]) {
    let err = read::<P>(block).expect_err("expected Protocol Error");
    assert!(matches!(err, DecodeError::Protocol(_)), "{err:?}");
    assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
}

fn expect_malformed<P: PropertySet + std::fmt::Debug>(block: &[u8]) {
    let err = read::<P>(block).expect_err("expected Malformed");
    assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
    assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn empty_block() {
    assert_eq!(
        read::<ConnectProperties>(&[]).unwrap(),
        ConnectProperties::default()
    );
}

#[test]
fn unknown_identifier_is_malformed() {
    // 2.2.2.2: 0x04 is not a property identifier.
    expect_malformed::<PublishProperties>(&[0x04, 0x00]);
    // Identifiers above one byte are unknown too.
    expect_malformed::<PublishProperties>(&[0x80, 0x02, 0x00]);
}

#[test]
fn non_minimal_identifier_is_accepted() {
    // 0x81 0x00 is a non-minimal varint for 1 (Payload Format Indicator).
    let p = read::<PublishProperties>(&[0x81, 0x00, 0x01]).unwrap();
    assert_eq!(p.payload_format_indicator, Some(1));
}

#[test]
fn property_not_allowed_on_packet_is_protocol_error() {
    // 2.2.2.2: Topic Alias (0x23) is a PUBLISH property, not a CONNECT one.
    expect_protocol::<ConnectProperties>(&[0x23, 0x00, 0x01]);
    // Session Expiry Interval on PUBACK.
    expect_protocol::<AckProperties>(&[0x11, 0, 0, 0, 1]);
    // Reason String on SUBSCRIBE.
    expect_protocol::<SubscribeProperties>(&[0x1F, 0x00, 0x00]);
    // Will Delay Interval on PUBLISH.
    expect_protocol::<PublishProperties>(&[0x18, 0, 0, 0, 1]);
    // Maximum QoS is CONNACK-only.
    expect_protocol::<DisconnectProperties>(&[0x24, 0x00]);
    expect_protocol::<AuthProperties>(&[0x11, 0, 0, 0, 1]);
    expect_protocol::<WillProperties>(&[0x11, 0, 0, 0, 1]);
    expect_protocol::<ConnAckProperties>(&[0x23, 0x00, 0x01]);
}

#[test]
fn unsubscribe_allows_only_user_properties() {
    // 3.10.2.1
    let bytes = Bytes::from_static(&[0x03, 0x1F, 0x00, 0x00]);
    let err = decode_user(&mut Reader::new(&bytes, 0)).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
}

#[test]
fn duplicate_single_valued_property_is_protocol_error() {
    // 2.2.2.2: "It is a Protocol Error to include" most properties more than once.
    expect_protocol::<ConnectProperties>(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2]);
    expect_protocol::<AckProperties>(&[0x1F, 0, 1, b'a', 0x1F, 0, 1, b'b']);
    expect_protocol::<ConnAckProperties>(&[0x24, 0, 0x24, 1]);
    expect_protocol::<PublishProperties>(&[0x23, 0, 1, 0x23, 0, 2]);
}

#[test]
fn user_property_may_repeat_in_order() {
    let block = [
        0x26, 0, 1, b'k', 0, 1, b'1', 0x26, 0, 1, b'k', 0, 1, b'2', 0x26, 0, 1, b'a', 0, 0,
    ];
    let p = read::<AckProperties>(&block).unwrap();
    let pairs: Vec<(&str, &str)> = p
        .user_properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(pairs, [("k", "1"), ("k", "2"), ("a", "")]);
}

#[test]
fn subscription_identifier_repeats_only_in_publish() {
    // 3.3.2.3.8 allows several in PUBLISH; 3.8.2.1.2 makes a second one in SUBSCRIBE a
    // Protocol Error.
    let block = [0x0B, 0x01, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F];
    let p = read::<PublishProperties>(&block).unwrap();
    assert_eq!(p.subscription_identifiers, vec![1, 268_435_455]);
    expect_protocol::<SubscribeProperties>(&block);
}

#[test]
fn zero_values_are_protocol_errors() {
    // 3.3.2.3.8 / 3.8.2.1.2: Subscription Identifier 0.
    expect_protocol::<PublishProperties>(&[0x0B, 0x00]);
    expect_protocol::<SubscribeProperties>(&[0x0B, 0x00]);
    // 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum 0.
    expect_protocol::<ConnectProperties>(&[0x21, 0x00, 0x00]);
    expect_protocol::<ConnAckProperties>(&[0x21, 0x00, 0x00]);
    // 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size 0.
    expect_protocol::<ConnectProperties>(&[0x27, 0, 0, 0, 0]);
    expect_protocol::<ConnAckProperties>(&[0x27, 0, 0, 0, 0]);
}

#[test]
fn boolean_bytes_other_than_0_or_1_are_protocol_errors() {
    // 3.3.2.3.2 Payload Format Indicator.
    expect_protocol::<PublishProperties>(&[0x01, 0x02]);
    expect_protocol::<WillProperties>(&[0x01, 0xFF]);
    // 3.1.2.11.6 / 3.1.2.11.7 Request Response / Problem Information.
    expect_protocol::<ConnectProperties>(&[0x19, 0x02]);
    expect_protocol::<ConnectProperties>(&[0x17, 0x02]);
    // 3.2.2.3.4 Maximum QoS, 3.2.2.3.5 Retain Available, 3.2.2.3.11-13 availability flags.
    for id in [0x24, 0x25, 0x28, 0x29, 0x2A] {
        expect_protocol::<ConnAckProperties>(&[id, 0x02]);
        assert!(read::<ConnAckProperties>(&[id, 0x01]).is_ok());
    }
}

#[test]
fn property_length_past_packet_end_is_malformed() {
    // 2.2.2.1: the block claims 10 bytes, the packet has 3.
    let bytes = Bytes::from_static(&[0x0A, 0x01, 0x00, 0x01]);
    let err = decode::<PublishProperties>(&mut Reader::new(&bytes, 0)).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)));
    assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn value_running_past_block_end_is_malformed() {
    // The Message Expiry Interval needs 4 bytes but the block ends after 2, even though the
    // packet itself has more bytes after the block.
    let bytes = Bytes::from_static(&[0x03, 0x02, 0x00, 0x00, 0x00, 0x00]);
    let err = decode::<PublishProperties>(&mut Reader::new(&bytes, 0)).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)));
}

#[test]
fn invalid_utf8_in_property_is_malformed() {
    // MQTT-1.5.4-1
    expect_malformed::<AckProperties>(&[0x1F, 0x00, 0x01, 0xFF]);
    // MQTT-1.5.4-2
    expect_malformed::<AckProperties>(&[0x26, 0x00, 0x01, 0x00, 0x00, 0x00]);
}

#[test]
fn response_topic_must_be_a_topic_name() {
    // MQTT-3.3.2-14: no wildcards in a Response Topic.
    expect_malformed::<PublishProperties>(&[0x08, 0x00, 0x03, b'a', b'/', b'#']);
    expect_malformed::<WillProperties>(&[0x08, 0x00, 0x01, b'+']);
}

#[test]
fn authentication_data_needs_a_method() {
    // 3.1.2.11.10
    expect_protocol::<ConnectProperties>(&[0x16, 0x00, 0x01, 0xAA]);
    let ok = read::<ConnectProperties>(&[0x15, 0, 1, b'm', 0x16, 0x00, 0x01, 0xAA]).unwrap();
    assert_eq!(ok.authentication_method.as_deref(), Some("m"));
}

#[test]
fn encoding_writes_only_present_fields_with_exact_length() {
    let p = PublishProperties {
        topic_alias: Some(7),
        user_properties: vec![("a".into(), "b".into())],
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    encode(&p, &mut buf).unwrap();
    assert_eq!(
        &buf[..],
        &[10, 0x23, 0, 7, 0x26, 0, 1, b'a', 0, 1, b'b'][..]
    );
    let mut empty = BytesMut::new();
    encode(&PublishProperties::default(), &mut empty).unwrap();
    assert_eq!(&empty[..], &[0]);
}

#[test]
fn long_blocks_use_a_multi_byte_length() {
    let p = AckProperties {
        reason_string: Some("x".repeat(200)),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    encode(&p, &mut buf).unwrap();
    // 1 id + 2 length + 200 = 203 = 0xCB 0x01 as a varint.
    assert_eq!(&buf[..2], &[0xCB, 0x01]);
    assert_eq!(buf.len(), 205);
    assert_eq!(read::<AckProperties>(&buf[2..]).unwrap(), p);
}

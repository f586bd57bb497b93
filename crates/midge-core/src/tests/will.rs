//! Will messages: when they are published, delayed, or discarded.

use super::harness::*;
use crate::Event;
use bytes::Bytes;
use midge_codec::{Connect, Packet, QoS, ReasonCode, WillProperties};

fn with_will(
    version: midge_codec::ProtocolVersion,
    id: &str,
    delay: Option<u32>,
    expiry: u32,
) -> Connect {
    let mut c = connect_packet(version, id, true);
    c.will = Some(will(
        &format!("will/{id}"),
        "bye",
        QoS::AtLeastOnce,
        false,
        delay,
    ));
    if version == V5 {
        c.properties.session_expiry_interval = Some(expiry);
    }
    c
}

fn watcher(h: &mut H) {
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "will/#", QoS::AtLeastOnce);
}

#[test]
fn will_on_abnormal_close() {
    // MQTT-3.1.2-8 (v5 and 3.1.1): published when the connection closes without DISCONNECT.
    for version in [V5, V3_1_1, V3_1] {
        let mut h = H::new();
        watcher(&mut h);
        h.connect_ok(1, with_will(version, "a", None, 0));
        let actions = h.closed(1);
        assert_eq!(payloads(&actions, 9), vec!["bye"]);
        assert!(
            !closes(&actions, 1),
            "the server already knows it is closed"
        );
        // Removed once published (MQTT-3.1.2-10): nothing on a second Closed.
        assert!(h.closed(1).is_empty());
        assert_eq!(h.broker.stats().sessions, 1);
    }
}

#[test]
fn no_will_on_normal_disconnect() {
    // MQTT-3.14.4-3 (v5 and 3.1.1): DISCONNECT 0x00 discards the will.
    for version in [V5, V3_1_1] {
        let mut h = H::new();
        watcher(&mut h);
        h.connect_ok(1, with_will(version, "a", None, 0));
        let actions = h.disconnect(1, ReasonCode::Success);
        assert_eq!(actions, vec![crate::Action::Close { conn: 1 }]);
        assert!(h.closed(1).is_empty());
    }
}

#[test]
fn disconnect_with_will_message() {
    // v5 reason 0x04: the client asks for its will to be published.
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", None, 0));
    let actions = h.disconnect(1, ReasonCode::DisconnectWithWill);
    assert_eq!(payloads(&actions, 9), vec!["bye"]);
    assert!(closes(&actions, 1));
}

#[test]
fn will_delay() {
    // MQTT-3.1.2-8: published once the Will Delay Interval has passed.
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", Some(5), 100));
    assert!(payloads(&h.closed(1), 9).is_empty());
    h.advance_secs(4);
    assert!(payloads(&h.tick(), 9).is_empty());
    h.advance_secs(1);
    assert_eq!(payloads(&h.tick(), 9), vec!["bye"]);
    h.advance_secs(10);
    assert!(payloads(&h.tick(), 9).is_empty(), "only once");
}

#[test]
fn will_delay_cancelled_by_resume() {
    // MQTT-3.1.3-9: a new connection to the session before the delay passes: no will.
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", Some(5), 100));
    h.closed(1);
    h.advance_secs(2);
    let (ack, _) = h.connect_ok(2, connect_packet(V5, "a", false));
    assert!(ack.session_present);
    h.advance_secs(10);
    assert!(payloads(&h.tick(), 9).is_empty());
}

#[test]
fn will_delay_ends_with_the_session() {
    // The will goes out when the session ends if that is before the delay (MQTT-3.1.2-8):
    // with Session Expiry 0 immediately, otherwise at expiry.
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", Some(60), 0));
    assert_eq!(payloads(&h.closed(1), 9), vec!["bye"]);
    h.connect_ok(2, with_will(V5, "b", Some(60), 3));
    assert!(payloads(&h.closed(2), 9).is_empty());
    h.advance_secs(3);
    assert_eq!(payloads(&h.tick(), 9), vec!["bye"]);
    assert_eq!(h.broker.stats().sessions, 1, "only the watcher is left");
}

#[test]
fn pending_will_published_when_clean_start_ends_the_session() {
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", Some(60), 100));
    h.closed(1);
    let actions = h.connect_with(2, connect_packet(V5, "a", true));
    assert_eq!(payloads(&actions, 9), vec!["bye"]);
}

#[test]
fn retained_will_with_properties() {
    // MQTT-3.1.2-17: Will Retain 1 -> published as a retained message; will properties become
    // the publish properties.
    let mut h = H::new();
    h.connect(9, "watcher", V5, true);
    let mut c = connect_packet(V5, "a", true);
    let mut w = will("will/a", "bye", QoS::AtMostOnce, true, None);
    w.properties = WillProperties {
        will_delay_interval: None,
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(100),
        content_type: Some("text/plain".into()),
        response_topic: Some("re".into()),
        correlation_data: Some(Bytes::from_static(b"c")),
        user_properties: vec![("k".into(), "v".into())],
    };
    c.will = Some(w);
    h.connect_ok(1, c);
    h.closed(1);
    assert_eq!(h.broker.stats().retained_messages, 1);
    let (_, actions) = h.subscribe_with(9, "will/#", opts(QoS::AtMostOnce), None);
    let p = &publishes(&actions, 9)[0];
    assert!(p.retain);
    assert_eq!(p.properties.payload_format_indicator, Some(1));
    assert_eq!(p.properties.message_expiry_interval, Some(100));
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.properties.response_topic.as_deref(), Some("re"));
    assert_eq!(p.properties.correlation_data.as_deref(), Some(&b"c"[..]));
    assert_eq!(
        p.properties.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
}

#[test]
fn protocol_error_publishes_the_will() {
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", None, 0));
    let actions = h.packet(
        1,
        Packet::SubAck(midge_codec::SubAck {
            packet_id: 1,
            reasons: vec![],
            properties: Default::default(),
        }),
    );
    assert_disconnected(&actions, 1, ReasonCode::ProtocolError);
    assert_eq!(payloads(&actions, 9), vec!["bye"]);
}

#[test]
fn shutdown_with_a_server_reference_sends_server_moved() {
    // MQTT 5, 4.11: DISCONNECT 0x9C Server moved carries the Server Reference.
    let mut h = H::with(crate::BrokerConfig {
        shutdown_server_reference: Some("other:1883".into()),
        ..config()
    });
    h.connect_ok(1, with_will(V5, "a", None, 0));
    h.connect_ok(2, with_will(V3_1_1, "b", None, 0));
    let actions = h.event(Event::Shutdown);
    let moved = sent(&actions, 1).into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d),
        _ => None,
    });
    let moved = moved.expect("DISCONNECT to the v5 client");
    assert_eq!(moved.reason, ReasonCode::ServerMoved);
    assert_eq!(
        moved.properties.server_reference.as_deref(),
        Some("other:1883")
    );
    assert_eq!(disconnect_reason(&actions, 2), None, "v3 has no DISCONNECT");
    assert!(closes(&actions, 1) && closes(&actions, 2));
}

#[test]
fn shutdown_does_not_publish_wills() {
    // Shutdown: v5 clients get DISCONNECT 0x8B, every connection is closed, no will.
    let mut h = H::new();
    watcher(&mut h);
    h.connect_ok(1, with_will(V5, "a", None, 100));
    h.connect_ok(2, with_will(V3_1_1, "b", None, 0));
    let actions = h.event(Event::Shutdown);
    assert!(payloads(&actions, 9).is_empty());
    assert_eq!(
        disconnect_reason(&actions, 1),
        Some(ReasonCode::ServerShuttingDown)
    );
    assert_eq!(
        disconnect_reason(&actions, 9),
        Some(ReasonCode::ServerShuttingDown)
    );
    assert_eq!(disconnect_reason(&actions, 2), None);
    for conn in [1, 2, 9] {
        assert!(closes(&actions, conn));
    }
    let stats = h.broker.stats();
    assert_eq!(stats.clients_connected, 0);
    assert_eq!(
        stats.sessions, 1,
        "only the persistent session of a is kept"
    );
}

//! CONNECT and CONNACK: client identifiers, properties, takeover, protocol errors.

use super::harness::*;
use crate::{Action, BrokerConfig, Event};
use midge_codec::{Auth, Packet, QoS, ReasonCode};
use std::time::Duration;

fn refused(actions: &[Action], conn: u64) -> ReasonCode {
    match actions {
        [Action::Send {
            conn: c1,
            packet: Packet::ConnAck(ack),
        }, Action::Close { conn: c2 }]
            if *c1 == conn && *c2 == conn =>
        {
            // A refusing CONNACK has Session Present 0 (MQTT-3.2.2-6).
            assert!(!ack.session_present);
            ack.reason
        }
        other => panic!("expected refusing CONNACK + Close, got {other:?}"),
    }
}

#[test]
fn clean_connect_has_session_present_0() {
    // MQTT-3.2.2-2 (v5) / MQTT-3.2.2-1 (3.1.1): Clean Start 1 -> Session Present 0.
    let mut h = H::new();
    assert!(!h.connect(1, "a", V5, true).session_present);
    assert!(!h.connect(2, "b", V3_1_1, true).session_present);
    assert!(!h.connect(3, "c", V3_1, true).session_present);
    assert_eq!(h.broker.client_id(2), Some("b"));
    assert_eq!(h.broker.stats().clients_connected, 3);
}

#[test]
fn v5_empty_client_id_gets_an_assigned_one() {
    // MQTT-3.1.3-6, -7: the server assigns a unique ClientID and returns it in CONNACK;
    // MQTT-3.2.2-16: it is not used by any other session.
    let mut h = H::new();
    let a = h.connect_v5(1, "", false, 100);
    let b = h.connect_v5(2, "", true, 0);
    let id_a = a
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned id");
    let id_b = b
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned id");
    assert!(id_a.starts_with("auto-"), "{id_a}");
    assert_ne!(id_a, id_b);
    assert_eq!(h.broker.client_id(1), Some(id_a.as_str()));
}

#[test]
fn v5_empty_client_id_refused_when_not_allowed() {
    // MQTT-3.1.3-8: a rejected ClientID gets CONNACK 0x85 and the connection is closed.
    let mut h = H::with(BrokerConfig {
        allow_zero_length_client_id: false,
        ..config()
    });
    let actions = h.connect_with(1, connect_packet(V5, "", true));
    assert_eq!(refused(&actions, 1), ReasonCode::ClientIdentifierNotValid);
    assert_eq!(h.broker.stats().clients_connected, 0);
}

#[test]
fn v311_empty_client_id_needs_clean_session() {
    // 3.1.1 MQTT-3.1.3-8: zero-byte ClientId with CleanSession=0 -> return code 2 + close.
    let mut h = H::new();
    let actions = h.connect_with(1, connect_packet(V3_1_1, "", false));
    assert_eq!(refused(&actions, 1), ReasonCode::ClientIdentifierNotValid);
    // With CleanSession=1 it is accepted (3.1.1 MQTT-3.1.3-6), the id assigned internally.
    let ack = h.connect(2, "", V3_1_1, true);
    assert!(!ack.session_present);
    assert!(h.broker.client_id(2).is_some_and(|id| !id.is_empty()));
}

#[test]
fn v31_empty_client_id_is_refused() {
    let mut h = H::new();
    let actions = h.connect_with(1, connect_packet(V3_1, "", true));
    assert_eq!(refused(&actions, 1), ReasonCode::ClientIdentifierNotValid);
}

#[test]
fn authentication_method_is_refused() {
    // MQTT-4.12.0-1: unsupported Authentication Method -> CONNACK 0x8C, close.
    let mut h = H::new();
    let mut c = connect_packet(V5, "a", true);
    c.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let actions = h.connect_with(1, c);
    assert_eq!(refused(&actions, 1), ReasonCode::BadAuthenticationMethod);
}

#[test]
fn enhanced_auth_completed_by_the_server_ends_in_its_connack() {
    // MQTT-4.12.0-5/-7: the CONNACK of an exchange carries its Authentication Method, and
    // the method's final data.
    let mut h = H::new();
    let mut c = connect_packet(V5, "a", true);
    c.properties.authentication_method = Some("SCRAM-SHA-256".into());
    let actions = h.event(Event::Connect {
        conn: 1,
        connect: Box::new(c),
        auth: Some(crate::EnhancedAuth {
            method: "SCRAM-SHA-256".into(),
            data: Some(bytes::Bytes::from_static(b"v=proof")),
        }),
    });
    let ack = actions
        .iter()
        .find_map(|a| match a {
            Action::Send {
                packet: Packet::ConnAck(ack),
                ..
            } => Some(ack.clone()),
            _ => None,
        })
        .expect("CONNACK");
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(
        ack.properties.authentication_method.as_deref(),
        Some("SCRAM-SHA-256")
    );
    assert_eq!(
        ack.properties.authentication_data.as_deref(),
        Some(&b"v=proof"[..])
    );
}

#[test]
fn will_beyond_capabilities_is_refused() {
    // MQTT-3.2.2-12: Will QoS above Maximum QoS -> 0x9B; MQTT-3.2.2-13: Will Retain without
    // retain support -> 0x9A.
    let mut h = H::with(BrokerConfig {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        ..config()
    });
    let mut c = connect_packet(V5, "a", true);
    c.will = Some(will("w", "x", QoS::ExactlyOnce, false, None));
    assert_eq!(
        refused(&h.connect_with(1, c), 1),
        ReasonCode::QoSNotSupported
    );
    let mut c = connect_packet(V5, "a", true);
    c.will = Some(will("w", "x", QoS::AtMostOnce, true, None));
    assert_eq!(
        refused(&h.connect_with(2, c), 2),
        ReasonCode::RetainNotSupported
    );
}

#[test]
fn connack_v5_default_properties() {
    let mut h = H::new();
    let p = h.connect(1, "a", V5, true).properties;
    assert_eq!(p.receive_maximum, None, "65535 is the default, not sent");
    assert_eq!(p.maximum_qos, None);
    assert_eq!(p.retain_available, None);
    assert_eq!(
        p.maximum_packet_size, None,
        "MQTT's own limit is not advertised"
    );
    assert_eq!(p.topic_alias_maximum, Some(1024));
    assert_eq!(p.wildcard_subscription_available, None);
    assert_eq!(p.subscription_identifier_available, None);
    assert_eq!(p.shared_subscription_available, None);
    assert_eq!(p.session_expiry_interval, None);
    assert_eq!(p.assigned_client_identifier, None);
}

#[test]
fn connack_v5_restricted_properties() {
    let mut h = H::with(BrokerConfig {
        receive_maximum: 10,
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        wildcard_subscription_available: false,
        subscription_identifiers_available: false,
        shared_subscription_available: false,
        topic_alias_maximum: 0,
        max_session_expiry: 60,
        max_keep_alive: 30,
        ..config()
    });
    let mut c = connect_packet(V5, "a", false);
    c.properties.session_expiry_interval = Some(100);
    c.keep_alive = 60;
    let p = h.connect_ok(1, c).0.properties;
    assert_eq!(p.receive_maximum, Some(10));
    assert_eq!(p.maximum_qos, Some(1));
    assert_eq!(p.retain_available, Some(0));
    assert_eq!(p.wildcard_subscription_available, Some(0));
    assert_eq!(p.subscription_identifier_available, Some(0));
    assert_eq!(p.shared_subscription_available, Some(0));
    assert_eq!(p.topic_alias_maximum, None);
    // The granted expiry differs from the requested one, so it is returned.
    assert_eq!(p.session_expiry_interval, Some(60));
    // MQTT-3.2.2-21: the client must use the Server Keep Alive we return.
    assert_eq!(p.server_keep_alive, Some(30));
    // A keep alive within the limit is left alone.
    let mut c = connect_packet(V5, "b", true);
    c.keep_alive = 20;
    assert_eq!(h.connect_ok(2, c).0.properties.server_keep_alive, None);
}

#[test]
fn second_connect_is_a_protocol_error() {
    // MQTT-3.1.0-2: a second CONNECT is a Protocol Error; the will is published as the
    // connection was not ended by a normal DISCONNECT (MQTT-3.1.2-8).
    let mut h = H::new();
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "will/#", QoS::AtMostOnce);
    let mut c = connect_packet(V5, "a", true);
    c.will = Some(will("will/a", "gone", QoS::AtMostOnce, false, None));
    h.connect_ok(1, c);
    let actions = h.packet(1, Packet::Connect(Box::new(connect_packet(V5, "a", true))));
    assert_disconnected(&actions, 1, ReasonCode::ProtocolError);
    assert_eq!(payloads(&actions, 9), vec!["gone"]);
    // The same through Event::Connect; v3.1.1 gets no DISCONNECT, only the close.
    h.connect(2, "b", V3_1_1, true);
    let actions = h.connect_with(2, connect_packet(V3_1_1, "b", true));
    assert_eq!(actions, vec![Action::Close { conn: 2 }]);
}

#[test]
fn takeover_disconnects_the_old_connection() {
    // MQTT-3.1.4-3: the existing connection gets DISCONNECT 0x8E and is closed.
    let mut h = H::new();
    h.connect_v5(1, "a", true, 100);
    let actions = h.connect_with(2, connect_packet(V5, "a", false));
    assert_disconnected(&actions, 1, ReasonCode::SessionTakenOver);
    match &actions[2..] {
        [Action::Send {
            conn: 2,
            packet: Packet::ConnAck(ack),
        }] => assert!(ack.session_present, "the session is resumed"),
        other => panic!("{other:?}"),
    }
    let mut h = H::new();
    h.connect_v5(1, "a", true, 100);
    let actions = h.connect_with(2, connect_packet(V5, "a", true));
    assert_disconnected(&actions, 1, ReasonCode::SessionTakenOver);
    assert!(matches!(
        &actions[2],
        Action::Send {
            conn: 2,
            packet: Packet::ConnAck(_)
        }
    ));
    assert_eq!(h.broker.stats().clients_connected, 1);
    assert_eq!(h.broker.stats().sessions, 1);
    // Packets and close events of the old connection are ignored now.
    assert!(h.packet(1, Packet::PingReq).is_empty());
    assert!(h.closed(1).is_empty());
    assert_eq!(h.broker.stats().clients_connected, 1);
}

#[test]
fn v311_takeover_closes_without_disconnect() {
    // 3.1.1 MQTT-3.1.4-2: the server disconnects the existing client (no DISCONNECT in 3.1.1).
    let mut h = H::new();
    h.connect(1, "a", V3_1_1, false);
    let actions = h.connect_with(2, connect_packet(V3_1_1, "a", false));
    assert_eq!(actions[0], Action::Close { conn: 1 });
    match &actions[1] {
        Action::Send {
            conn: 2,
            packet: Packet::ConnAck(ack),
        } => assert!(ack.session_present),
        other => panic!("{other:?}"),
    }
}

#[test]
fn takeover_publishes_the_old_will_unless_delayed_and_resumed() {
    let mut h = H::new();
    h.connect(9, "watcher", V5, true);
    h.subscribe(9, "will/#", QoS::AtMostOnce);
    // No delay: the old connection ended abnormally, its will goes out (MQTT-3.1.2-8).
    let mut c = connect_packet(V5, "a", true);
    c.will = Some(will("will/a", "a-gone", QoS::AtMostOnce, false, None));
    c.properties.session_expiry_interval = Some(100);
    h.connect_ok(1, c);
    let actions = h.connect_with(2, connect_packet(V5, "a", false));
    assert_eq!(payloads(&actions, 9), vec!["a-gone"]);
    // With a delay and a resuming connection, it is not sent (MQTT-3.1.3-9).
    let mut c = connect_packet(V5, "b", true);
    c.will = Some(will("will/b", "b-gone", QoS::AtMostOnce, false, Some(5)));
    c.properties.session_expiry_interval = Some(100);
    h.connect_ok(3, c);
    let actions = h.connect_with(4, connect_packet(V5, "b", false));
    assert!(payloads(&actions, 9).is_empty());
    h.advance_secs(10);
    assert!(payloads(&h.tick(), 9).is_empty());
    // With a delay but Clean Start: the old session ends, so the will goes out now.
    let mut c = connect_packet(V5, "c", true);
    c.will = Some(will("will/c", "c-gone", QoS::AtMostOnce, false, Some(5)));
    c.properties.session_expiry_interval = Some(100);
    h.connect_ok(5, c);
    let actions = h.connect_with(6, connect_packet(V5, "c", true));
    assert_eq!(payloads(&actions, 9), vec!["c-gone"]);
}

#[test]
fn ping_and_unknown_connections() {
    let mut h = H::new();
    h.connect(1, "a", V3_1_1, true);
    assert_eq!(
        h.packet(1, Packet::PingReq),
        vec![Action::Send {
            conn: 1,
            packet: Packet::PingResp
        }]
    );
    assert!(h.packet(42, Packet::PingReq).is_empty());
    assert!(h.closed(42).is_empty());
    assert!(h.event(Event::Tick).is_empty());
}

#[test]
fn auth_without_method_is_a_protocol_error() {
    // 4.12: AUTH when CONNECT had no Authentication Method is a Protocol Error.
    let mut h = H::new();
    h.connect(1, "a", V5, true);
    let actions = h.packet(
        1,
        Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Default::default(),
        }),
    );
    assert_disconnected(&actions, 1, ReasonCode::ProtocolError);
    assert_eq!(h.broker.stats().clients_connected, 0);
}

#[test]
fn server_only_packets_from_a_client_are_protocol_errors() {
    let mut h = H::new();
    h.connect(1, "a", V5, true);
    assert_disconnected(&h.packet(1, Packet::PingResp), 1, ReasonCode::ProtocolError);
    h.advance(Duration::from_secs(1));
    assert!(h.packet(1, Packet::PingReq).is_empty());
}

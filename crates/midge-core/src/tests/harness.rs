//! A small driver around `Broker` for tests.

use crate::{Action, Broker, BrokerConfig, ConnId, DurableOp, Event, MessageState};
use bytes::Bytes;
use midge_codec::{
    Ack, AckKind, ConnAck, Connect, ConnectProperties, Disconnect, LastWill, Packet, PacketId,
    ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscribeProperties, SubscriptionOptions, TopicSubscription, UnsubAck, Unsubscribe,
    WillProperties,
};
use std::time::{Duration, Instant};

pub use midge_codec::ProtocolVersion::{V3_1, V3_1_1, V5};

/// A broker plus a fake clock, recording every `Persist` op with the time it was emitted.
pub struct H {
    pub broker: Broker,
    pub now: Instant,
    pub ops: Vec<(Instant, DurableOp)>,
}

/// The config tests start from: defaults with `$SYS` disabled.
pub fn config() -> BrokerConfig {
    BrokerConfig {
        sys_interval: Duration::ZERO,
        ..BrokerConfig::default()
    }
}

impl H {
    pub fn new() -> H {
        H::with(config())
    }

    pub fn with(config: BrokerConfig) -> H {
        let now = Instant::now();
        H {
            broker: Broker::new(config, now),
            now,
            ops: Vec::new(),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    pub fn advance_secs(&mut self, secs: u64) {
        self.advance(Duration::from_secs(secs));
    }

    pub fn event(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.broker.handle(self.now, event, &mut out);
        for action in &out {
            if let Action::Persist(op) = action {
                self.ops.push((self.now, (**op).clone()));
            }
        }
        out
    }

    pub fn connect_with(&mut self, conn: ConnId, connect: Connect) -> Vec<Action> {
        self.event(Event::Connect {
            conn,
            connect: Box::new(connect),
            auth: None,
        })
    }

    /// Connects and asserts a successful CONNACK comes first; returns it and what followed.
    pub fn connect_ok(&mut self, conn: ConnId, connect: Connect) -> (ConnAck, Vec<Action>) {
        let mut actions = self.connect_with(conn, connect);
        // A cluster node claims the client id first (see tests/cluster.rs).
        actions.retain(|a| !matches!(a, Action::Claim { .. }));
        assert!(!actions.is_empty(), "no CONNACK");
        match actions.remove(0) {
            Action::Send {
                conn: c,
                packet: Packet::ConnAck(ack),
            } if c == conn => {
                assert_eq!(ack.reason, ReasonCode::Success, "{ack:?}");
                (ack, actions)
            }
            other => panic!("expected CONNACK first, got {other:?}"),
        }
    }

    /// Connects with a plain CONNECT; returns the CONNACK.
    pub fn connect(
        &mut self,
        conn: ConnId,
        client_id: &str,
        version: ProtocolVersion,
        clean: bool,
    ) -> ConnAck {
        let (ack, rest) = self.connect_ok(conn, connect_packet(version, client_id, clean));
        assert!(rest.is_empty(), "unexpected {rest:?}");
        ack
    }

    /// v5 connect with a Session Expiry Interval.
    pub fn connect_v5(
        &mut self,
        conn: ConnId,
        client_id: &str,
        clean: bool,
        expiry: u32,
    ) -> ConnAck {
        let mut c = connect_packet(V5, client_id, clean);
        c.properties.session_expiry_interval = Some(expiry);
        self.connect_ok(conn, c).0
    }

    pub fn packet(&mut self, conn: ConnId, packet: Packet) -> Vec<Action> {
        self.event(Event::Packet { conn, packet })
    }

    pub fn closed(&mut self, conn: ConnId) -> Vec<Action> {
        self.event(Event::Closed { conn })
    }

    pub fn tick(&mut self) -> Vec<Action> {
        self.event(Event::Tick)
    }

    /// Subscribes to one filter with `options`; asserts a SUBACK comes first, returns its
    /// reasons and the actions after it.
    pub fn subscribe_with(
        &mut self,
        conn: ConnId,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> (Vec<ReasonCode>, Vec<Action>) {
        let mut actions = self.packet(
            conn,
            Packet::Subscribe(Subscribe {
                packet_id: 77,
                filters: vec![TopicSubscription {
                    filter: filter.to_string(),
                    options,
                }],
                properties: SubscribeProperties {
                    subscription_identifier: identifier,
                    ..Default::default()
                },
            }),
        );
        // A cluster node announces new routes first (see tests/cluster.rs).
        actions.retain(|a| !matches!(a, Action::RouteAdd { .. }));
        assert!(!actions.is_empty(), "no SUBACK");
        match actions.remove(0) {
            Action::Send {
                conn: c,
                packet:
                    Packet::SubAck(SubAck {
                        packet_id, reasons, ..
                    }),
            } if c == conn => {
                assert_eq!(packet_id, 77);
                (reasons, actions)
            }
            other => panic!("expected SUBACK first, got {other:?}"),
        }
    }

    /// Subscribes to `filter` at `qos` and asserts it was granted with nothing else sent.
    pub fn subscribe(&mut self, conn: ConnId, filter: &str, qos: QoS) {
        let (reasons, rest) = self.subscribe_with(conn, filter, opts(qos), None);
        assert_eq!(reasons, vec![granted(qos)]);
        assert!(rest.is_empty(), "unexpected {rest:?}");
    }

    pub fn unsubscribe(&mut self, conn: ConnId, filters: &[&str]) -> Vec<ReasonCode> {
        let actions = self.packet(
            conn,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 88,
                filters: filters.iter().map(|f| f.to_string()).collect(),
                user_properties: vec![],
            }),
        );
        match actions.as_slice() {
            [Action::Send {
                packet:
                    Packet::UnsubAck(UnsubAck {
                        packet_id: 88,
                        reasons,
                        ..
                    }),
                ..
            }] => reasons.clone(),
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    pub fn publish(&mut self, conn: ConnId, publish: Publish) -> Vec<Action> {
        self.packet(conn, Packet::Publish(publish))
    }

    pub fn ack(&mut self, conn: ConnId, kind: AckKind, packet_id: PacketId) -> Vec<Action> {
        self.packet(conn, Packet::Ack(Ack::new(kind, packet_id)))
    }

    pub fn disconnect(&mut self, conn: ConnId, reason: ReasonCode) -> Vec<Action> {
        self.packet(conn, Packet::Disconnect(Disconnect::new(reason)))
    }
}

pub fn connect_packet(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    Connect {
        protocol: version,
        clean_start: clean,
        keep_alive: 0,
        client_id: client_id.to_string(),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    }
}

pub fn will(topic: &str, payload: &str, qos: QoS, retain: bool, delay: Option<u32>) -> LastWill {
    LastWill {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        properties: WillProperties {
            will_delay_interval: delay,
            ..Default::default()
        },
    }
}

pub fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: RetainHandling::SendAtSubscribe,
    }
}

pub fn granted(qos: QoS) -> ReasonCode {
    match qos {
        QoS::AtMostOnce => ReasonCode::Success,
        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
    }
}

/// A client PUBLISH.
pub fn publish(topic: &str, qos: QoS, packet_id: Option<PacketId>, payload: &str) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id,
        properties: Default::default(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
    }
}

pub fn retained(topic: &str, qos: QoS, packet_id: Option<PacketId>, payload: &str) -> Publish {
    Publish {
        retain: true,
        ..publish(topic, qos, packet_id, payload)
    }
}

/// Packets sent to `conn`, in order.
pub fn sent(actions: &[Action], conn: ConnId) -> Vec<Packet> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, packet } if *c == conn => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

/// PUBLISH packets sent to `conn`, in order.
pub fn publishes(actions: &[Action], conn: ConnId) -> Vec<Publish> {
    sent(actions, conn)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Payloads of PUBLISH packets sent to `conn`, as strings.
pub fn payloads(actions: &[Action], conn: ConnId) -> Vec<String> {
    publishes(actions, conn)
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}

/// True if the actions close `conn`.
pub fn closes(actions: &[Action], conn: ConnId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: c } if *c == conn))
}

/// The reason of the DISCONNECT sent to `conn`, if any.
pub fn disconnect_reason(actions: &[Action], conn: ConnId) -> Option<ReasonCode> {
    sent(actions, conn).into_iter().find_map(|p| match p {
        Packet::Disconnect(d) => Some(d.reason),
        _ => None,
    })
}

/// Asserts the actions are exactly DISCONNECT(reason) to `conn` then Close.
pub fn assert_disconnected(actions: &[Action], conn: ConnId, reason: ReasonCode) {
    match actions {
        [Action::Send {
            conn: c1,
            packet: Packet::Disconnect(d),
        }, Action::Close { conn: c2 }, ..]
            if *c1 == conn && *c2 == conn =>
        {
            assert_eq!(d.reason, reason)
        }
        other => panic!("expected DISCONNECT {reason:?} + Close, got {other:?}"),
    }
}

/// The acknowledgement of `kind` sent to `conn`.
pub fn acks(actions: &[Action], conn: ConnId, kind: AckKind) -> Vec<Ack> {
    sent(actions, conn)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Ack(a) if a.kind == kind => Some(a),
            _ => None,
        })
        .collect()
}

/// The test config with durability on.
pub fn durable_config() -> BrokerConfig {
    BrokerConfig {
        durable: true,
        ..config()
    }
}

/// The `Persist` ops among `actions`, in order.
pub fn persisted(actions: &[Action]) -> Vec<DurableOp> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist(op) => Some((**op).clone()),
            _ => None,
        })
        .collect()
}

/// True if any action is a `Persist` or a `SendDurable`.
pub fn any_durable(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Persist(_) | Action::SendDurable { .. }))
}

fn text(payload: &Bytes) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

/// One line per action, to assert exact sequences: `Persist` ops as `retain t=x`,
/// `session c on exp=100 will=w`, `msg c #0 x sent(1)`, ...; `Send` as `1: PUBACK 1` and
/// `SendDurable` as `1! PUBACK 1`; `Close` as `close 1`.
pub fn trace(actions: &[Action]) -> Vec<String> {
    actions.iter().map(action_line).collect()
}

fn action_line(action: &Action) -> String {
    match action {
        Action::Persist(op) => op_line(op),
        Action::Send { conn, packet } => format!("{conn}: {}", packet_line(packet)),
        Action::SendDurable { conn, packet } => format!("{conn}! {}", packet_line(packet)),
        Action::NotifyDrained { conn } => format!("drained? {conn}"),
        Action::Close { conn } => format!("close {conn}"),
        Action::RouteAdd { route } => format!("route +{route}"),
        Action::RouteRemove { route } => format!("route -{route}"),
        Action::Forward { node, publish, .. } => format!("forward {node} {}", publish.topic),
        Action::Claim { client_id, .. } => format!("claim {client_id}"),
    }
}

fn op_line(op: &DurableOp) -> String {
    match op {
        DurableOp::RetainedSet { topic, message } => {
            format!("retain {topic}={}", text(&message.publish.payload))
        }
        DurableOp::RetainedClear { topic } => format!("unretain {topic}"),
        DurableOp::SessionPut {
            client_id,
            expiry_interval,
            will,
            connected,
        } => {
            let state = if *connected { "on" } else { "off" };
            let will = will
                .as_ref()
                .map(|w| format!(" will={}", w.topic))
                .unwrap_or_default();
            format!("session {client_id} {state} exp={expiry_interval}{will}")
        }
        DurableOp::SessionDelete { client_id } => format!("session- {client_id}"),
        DurableOp::SubscriptionPut {
            client_id,
            filter,
            subscription,
        } => format!(
            "sub {client_id} {filter} q{}",
            subscription.options.qos as u8
        ),
        DurableOp::SubscriptionDelete { client_id, filter } => {
            format!("unsub {client_id} {filter}")
        }
        DurableOp::MessagePut {
            client_id,
            seq,
            message,
            state,
        } => {
            let state = match state {
                MessageState::Queued => "queued".to_string(),
                MessageState::Sent { packet_id } => format!("sent({packet_id})"),
                MessageState::Released { packet_id } => format!("released({packet_id})"),
            };
            format!(
                "msg {client_id} #{seq} {} {state}",
                text(&message.publish.payload)
            )
        }
        DurableOp::MessageDelete { client_id, seq } => format!("msg- {client_id} #{seq}"),
        DurableOp::Qos2ReceivedPut {
            client_id,
            packet_id,
        } => format!("qos2 {client_id} {packet_id}"),
        DurableOp::Qos2ReceivedDelete {
            client_id,
            packet_id,
        } => format!("qos2- {client_id} {packet_id}"),
    }
}

fn packet_line(packet: &Packet) -> String {
    match packet {
        Packet::ConnAck(a) if a.session_present => "CONNACK sp".to_string(),
        Packet::ConnAck(_) => "CONNACK".to_string(),
        Packet::Publish(p) => {
            let mut line = format!("PUBLISH {}", text(&p.payload));
            if let Some(id) = p.packet_id {
                line += &format!(" #{id}");
            }
            if p.dup {
                line += " dup";
            }
            line
        }
        Packet::Ack(a) => format!("{:?} {}", a.kind, a.packet_id).to_uppercase(),
        Packet::SubAck(_) => "SUBACK".to_string(),
        Packet::UnsubAck(_) => "UNSUBACK".to_string(),
        Packet::Disconnect(d) => format!("DISCONNECT {:?}", d.reason),
        other => format!("{other:?}"),
    }
}

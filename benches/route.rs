//! Routing one PUBLISH through the broker core (`midge_core::Broker`, sans I/O) to 10,000
//! connected subscribers: trie match, per-subscriber QoS and packet ids, and one outgoing
//! PUBLISH action per subscriber, which is the broker's own share of a fan-out. Sockets,
//! encoding and the writer tasks are not in it (the load tool measures those end to end).
//!
//! Run with `cargo bench --bench route`.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use midge_codec::{
    Ack, AckKind, Connect, ConnectProperties, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
    RetainHandling, Subscribe, SubscribeProperties, SubscriptionOptions, TopicSubscription,
};
use midge_core::{Action, Broker, BrokerConfig, Event};
use std::time::{Duration, Instant};

const SUBSCRIBERS: u64 = 10_000;
/// The publisher's connection id; subscribers are 1..=SUBSCRIBERS.
const PUBLISHER: u64 = 0;

fn connect(broker: &mut Broker, now: Instant, conn: u64, out: &mut Vec<Action>) {
    let connect = Connect {
        protocol: ProtocolVersion::V5,
        clean_start: true,
        keep_alive: 0,
        client_id: format!("c{conn}"),
        will: None,
        username: None,
        password: None,
        properties: ConnectProperties::default(),
    };
    let event = Event::Connect {
        conn,
        connect: Box::new(connect),
        auth: None,
    };
    broker.handle(now, event, out);
    out.clear();
}

/// A broker with SUBSCRIBERS clients on `fan/out` at `qos`, and the publisher connected.
fn broker(qos: QoS) -> (Broker, Instant) {
    let now = Instant::now();
    let config = BrokerConfig {
        sys_interval: Duration::ZERO,
        ..BrokerConfig::default()
    };
    let mut broker = Broker::new(config, now);
    let mut out = Vec::new();
    connect(&mut broker, now, PUBLISHER, &mut out);
    for conn in 1..=SUBSCRIBERS {
        connect(&mut broker, now, conn, &mut out);
        let subscribe = Subscribe {
            packet_id: 1,
            filters: vec![TopicSubscription {
                filter: "fan/out".into(),
                options: SubscriptionOptions {
                    qos,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: RetainHandling::SendAtSubscribe,
                },
            }],
            properties: SubscribeProperties::default(),
        };
        let packet = Packet::Subscribe(subscribe);
        broker.handle(now, Event::Packet { conn, packet }, &mut out);
        out.clear();
    }
    (broker, now)
}

fn publish(qos: QoS) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: "fan/out".into(),
        packet_id: (qos != QoS::AtMostOnce).then_some(1),
        properties: Default::default(),
        payload: Bytes::from_static(&[7; 64]),
    })
}

fn route(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_10k");
    group.throughput(Throughput::Elements(SUBSCRIBERS));
    group.sample_size(20);

    let (mut b0, now) = broker(QoS::AtMostOnce);
    let mut out = Vec::with_capacity(SUBSCRIBERS as usize + 4);
    group.bench_function("qos0", |b| {
        b.iter(|| {
            let packet = publish(QoS::AtMostOnce);
            b0.handle(
                now,
                Event::Packet {
                    conn: PUBLISHER,
                    packet,
                },
                &mut out,
            );
            let n = out.len();
            out.clear();
            black_box(n)
        })
    });

    // QoS 1: every copy takes an inflight slot and a packet id, so each iteration also
    // acknowledges them all to keep the windows open (the PUBACKs are part of the cost).
    let (mut b1, now) = broker(QoS::AtLeastOnce);
    group.bench_function("qos1_with_acks", |b| {
        b.iter(|| {
            let packet = publish(QoS::AtLeastOnce);
            b1.handle(
                now,
                Event::Packet {
                    conn: PUBLISHER,
                    packet,
                },
                &mut out,
            );
            let mut acks = Vec::with_capacity(out.len());
            for action in out.drain(..) {
                if let Action::Send {
                    conn,
                    packet: Packet::Publish(p),
                } = action
                {
                    if let Some(packet_id) = p.packet_id {
                        acks.push((conn, packet_id));
                    }
                }
            }
            for (conn, packet_id) in acks.iter().copied() {
                let packet = Packet::Ack(Ack {
                    kind: AckKind::PubAck,
                    packet_id,
                    reason: ReasonCode::Success,
                    properties: Default::default(),
                });
                b1.handle(now, Event::Packet { conn, packet }, &mut out);
                out.clear();
            }
            black_box(acks.len())
        })
    });
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);

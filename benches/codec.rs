//! Codec throughput: encode and decode of the packets on the broker's hot path.
//!
//! Run with `cargo bench --bench codec`. Throughput is reported in encoded bytes per second.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use midge_codec::{
    decode, encode, encoded_len, Ack, AckKind, Connect, ConnectProperties, LastWill, Packet,
    ProtocolVersion, Publish, PublishProperties, QoS, RetainHandling, Subscribe,
    SubscribeProperties, SubscriptionOptions, TopicSubscription, WillProperties, MAX_PACKET_SIZE,
};
use std::hint::black_box;

fn publish(payload: usize, v5: bool) -> Packet {
    let properties = if v5 {
        PublishProperties {
            message_expiry_interval: Some(3600),
            user_properties: vec![("trace-id".into(), "4bf92f3577b34da6".into())],
            ..Default::default()
        }
    } else {
        PublishProperties::default()
    };
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "sensors/building-7/floor-3/temperature".into(),
        packet_id: Some(4242),
        properties: properties.into(),
        payload: Bytes::from(vec![0xA5; payload]),
    })
}

fn subscribe(v5: bool) -> Packet {
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        no_local: v5,
        retain_as_published: v5,
        retain_handling: if v5 {
            RetainHandling::SendIfNew
        } else {
            RetainHandling::SendAtSubscribe
        },
    };
    let filters = ["sensors/+/floor-3/#", "alerts/#", "devices/abc123/commands"]
        .into_iter()
        .map(|f| TopicSubscription {
            filter: f.into(),
            options,
        })
        .collect();
    Packet::Subscribe(Subscribe {
        packet_id: 7,
        filters,
        properties: SubscribeProperties {
            subscription_identifier: v5.then_some(12),
            user_properties: vec![],
        },
    })
}

fn connect(protocol: ProtocolVersion) -> Packet {
    let v5 = protocol.is_v5();
    let properties = if v5 {
        ConnectProperties {
            session_expiry_interval: Some(300),
            receive_maximum: Some(100),
            ..Default::default()
        }
    } else {
        ConnectProperties::default()
    };
    let will_properties = if v5 {
        WillProperties {
            will_delay_interval: Some(5),
            ..Default::default()
        }
    } else {
        WillProperties::default()
    };
    Packet::Connect(Box::new(Connect {
        protocol,
        clean_start: true,
        keep_alive: 60,
        client_id: "bench-client-0001".into(),
        will: Some(LastWill {
            topic: "devices/bench-client-0001/status".into(),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: will_properties,
        }),
        username: Some("device".into()),
        password: Some(Bytes::from_static(b"s3cr3t-t0ken")),
        properties,
    }))
}

/// (name, version, packet) for every benchmarked case.
fn cases() -> Vec<(&'static str, ProtocolVersion, Packet)> {
    use ProtocolVersion::{V3_1_1, V5};
    vec![
        ("publish_64B", V3_1_1, publish(64, false)),
        ("publish_64B", V5, publish(64, true)),
        ("publish_1KiB", V3_1_1, publish(1024, false)),
        ("publish_1KiB", V5, publish(1024, true)),
        (
            "puback",
            V3_1_1,
            Packet::Ack(Ack::new(AckKind::PubAck, 4242)),
        ),
        ("puback", V5, Packet::Ack(Ack::new(AckKind::PubAck, 4242))),
        ("subscribe", V3_1_1, subscribe(false)),
        ("subscribe", V5, subscribe(true)),
        ("connect", V3_1_1, connect(V3_1_1)),
        ("connect", V5, connect(V5)),
    ]
}

fn label(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3_1 => "v3.1",
        ProtocolVersion::V3_1_1 => "v3.1.1",
        ProtocolVersion::V5 => "v5",
    }
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, v, packet) in cases() {
        let len = encoded_len(&packet, v).expect("benchmark packets are valid");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new(name, label(v)), &packet, |b, packet| {
            let mut buf = BytesMut::with_capacity(len);
            b.iter(|| {
                buf.clear();
                encode(black_box(packet), v, &mut buf).expect("encode");
                black_box(buf.len())
            });
        });
    }
    group.finish();
}

/// Packets decoded per measured batch. A connection's read buffer usually holds several
/// packets back to back, and only the first split off a fresh buffer pays for promoting it to
/// a shared allocation, so decoding a run of packets is the realistic case.
const RUN: usize = 32;

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, v, packet) in cases() {
        let mut one = BytesMut::new();
        encode(&packet, v, &mut one).expect("benchmark packets are valid");
        let mut run = BytesMut::with_capacity(one.len() * RUN);
        for _ in 0..RUN {
            run.extend_from_slice(&one);
        }
        let run = run.freeze();
        group.throughput(Throughput::Bytes(run.len() as u64));
        group.bench_with_input(BenchmarkId::new(name, label(v)), &run, |b, run| {
            // Filling the buffer is setup, not measured: the socket read did that.
            b.iter_batched(
                || BytesMut::from(&run[..]),
                |mut buf| {
                    for _ in 0..RUN {
                        let p = decode(&mut buf, v, MAX_PACKET_SIZE).expect("decode");
                        black_box(p);
                    }
                    buf
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encode, bench_decode);
criterion_main!(benches);

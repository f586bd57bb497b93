//! Rough throughput checks; run with `cargo test -p midge-core --release -- --ignored perf`.

use super::harness::*;
use crate::{Action, Event};
use midge_codec::{Ack, AckKind, Packet, QoS};
use std::time::Instant;

fn run(subscribers: u64, qos: QoS, messages: u64) {
    let mut h = H::new();
    for s in 0..subscribers {
        h.connect(100 + s, &format!("s{s}"), V5, true);
        h.subscribe(100 + s, "bench/+/x", qos);
    }
    h.connect(1, "pub", V5, true);
    let p = publish(
        "bench/a/x",
        qos,
        (qos != QoS::AtMostOnce).then_some(1),
        "0123456789abcdef",
    );
    let mut out = Vec::with_capacity(1024);
    let start = Instant::now();
    let mut delivered = 0u64;
    for _ in 0..messages {
        out.clear();
        h.broker.handle(
            h.now,
            Event::Packet {
                conn: 1,
                packet: Packet::Publish(p.clone()),
            },
            &mut out,
        );
        let mut acks = Vec::new();
        for a in &out {
            if let Action::Send {
                conn,
                packet: Packet::Publish(p),
            } = a
            {
                delivered += 1;
                if let Some(id) = p.packet_id {
                    acks.push((*conn, id));
                }
            }
        }
        for (conn, id) in acks {
            out.clear();
            h.broker.handle(
                h.now,
                Event::Packet {
                    conn,
                    packet: Packet::Ack(Ack::new(AckKind::PubAck, id)),
                },
                &mut out,
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{subscribers} subscribers, {qos:?}: {messages} publishes in {secs:.3}s = {:.0} routed msgs/s",
        delivered as f64 / secs
    );
}

#[test]
#[ignore]
fn perf() {
    run(1, QoS::AtMostOnce, 1_000_000);
    run(100, QoS::AtMostOnce, 20_000);
    run(1, QoS::AtLeastOnce, 500_000);
}

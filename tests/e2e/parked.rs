//! Quiet connections park: after 0.1 s with nothing to read or write, a connection's
//! reading and writing halves hold no buffer and no future (`midge_connections_parked`), and
//! a plain TCP connection goes dormant: it leaves its task and tokio's reactor for the pool
//! (`side="dormant"`). Every event a connection waits for must still reach it while dormant:
//! bytes from the client, messages for it, the keep-alive deadline, a takeover, the client
//! going away, and the server shutting down.

use crate::connect::{connect_ok, connect_packet, will, V5};
use crate::harness::{next_matching, v4, Midge};
use crate::metrics::{scrape_until, value};
use midge_codec::{Disconnect, Packet, QoS, ReasonCode};

/// Waits until at least `n` connections are dormant: quiet on both sides, in the pool.
async fn parked(m: &Midge, n: f64) {
    scrape_until(m, "dormant connections", |s| {
        value(s, "midge_connections_parked", &[("side", "dormant")]) >= n
    })
    .await;
}

#[tokio::test]
async fn parked_connections_wake_for_data_deliveries_keepalive_and_close() {
    // Every quiet spell goes dormant (by default not when the previous spell was short, which
    // would make which state each connection is in below depend on timing).
    let mut m = Midge::start_with(&[("MIDGE__LIMITS__DORMANT_AFTER_MS", "0")]);
    // rumqttc clients with keep alive 30 s, so they stay quiet, and a raw v5 client with a will.
    let (sub, mut sub_inbox) = v4::connect(&m, "park-sub").await;
    v4::subscribe(&sub, &mut sub_inbox, "park/#", v4::QoS::AtLeastOnce).await;
    let (publisher, mut pub_inbox) = v4::connect(&m, "park-pub").await;
    let mut leaving = connect_packet(V5, "park-will", true);
    leaving.will = Some(will("park/will", b"gone", QoS::AtMostOnce, false));
    let (mut leaving, _) = connect_ok(&m, leaving).await;
    parked(&m, 3.0).await;

    // A PUBLISH wakes the publisher's reader, the delivery the subscriber's writer, and the
    // acknowledgements the other two halves (MQTT-4.3.2: QoS 1 delivered and acknowledged).
    publisher
        .publish("park/t", v4::QoS::AtLeastOnce, false, &b"hello"[..])
        .await
        .expect("publish");
    let got = v4::publish(&mut sub_inbox).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("park/t", &b"hello"[..])
    );
    next_matching(&mut pub_inbox, |p| match p {
        v4::Packet::PubAck(_) => Some(()),
        _ => None,
    })
    .await
    .expect("PUBACK for the parked publisher");

    // A parked v5 client's PINGREQ is answered (MQTT-3.12.4-1).
    leaving.send(&Packet::PingReq).await;
    assert_eq!(leaving.next().await, Packet::PingResp);
    // Its connection then drops without DISCONNECT, while parked again: the broker sees the
    // end of the stream and publishes the will (MQTT-3.1.2-8).
    parked(&m, 3.0).await;
    drop(leaving);
    let got = v4::publish(&mut sub_inbox).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("park/will", &b"gone"[..])
    );

    // A client that never sends anything after CONNECT parks, and the keep-alive deadline
    // still closes it: DISCONNECT 0x8D after 1.5 x 3 s (MQTT-3.1.2-22).
    parked(&m, 2.0).await;
    let mut silent = connect_packet(V5, "park-silent", true);
    silent.keep_alive = 3;
    let (mut silent, _) = connect_ok(&m, silent).await;
    parked(&m, 3.0).await;
    silent.expect_disconnect(ReasonCode::KeepAliveTimeout).await;

    // A dormant v5 client is taken over by a new connection with its client id: it gets
    // DISCONNECT 0x8E (MQTT-3.1.4-3), and the new one is accepted.
    let (mut old, _) = connect_ok(&m, connect_packet(V5, "park-twice", true)).await;
    parked(&m, 3.0).await;
    let (mut new, _) = connect_ok(&m, connect_packet(V5, "park-twice", true)).await;
    old.expect_disconnect(ReasonCode::SessionTakenOver).await;

    // A server shutting down closes dormant connections too: a v5 client is told 0x8B
    // (Server shutting down, MQTT 5 3.14.2.1), and the server exits cleanly.
    parked(&m, 3.0).await;
    assert_eq!(
        m.terminate(),
        Some(0),
        "clean exit with dormant connections"
    );
    assert_eq!(
        new.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::ServerShuttingDown
        ))]
    );
}

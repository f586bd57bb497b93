//! Quiet connections park: after 0.1 s with nothing to read or write, a connection's
//! reading and writing halves hold no buffer and no future (`midge_connections_parked`).
//! Every event a connection waits for must still reach it while parked: bytes from the
//! client, messages for it, the keep-alive deadline, and the client going away.

use crate::connect::{connect_ok, connect_packet, will, V5};
use crate::harness::{next_matching, v4, Midge};
use crate::metrics::{scrape_until, value};
use midge_codec::{Packet, QoS, ReasonCode};

/// Waits until at least `n` connections have both halves parked.
async fn parked(m: &Midge, n: f64) {
    scrape_until(m, "parked connections", |s| {
        value(s, "midge_connections_parked", &[("side", "read")]) >= n
            && value(s, "midge_connections_parked", &[("side", "write")]) >= n
    })
    .await;
}

#[tokio::test]
async fn parked_connections_wake_for_data_deliveries_keepalive_and_close() {
    let m = Midge::start();
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
}

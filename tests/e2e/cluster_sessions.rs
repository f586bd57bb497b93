//! Persistent sessions across a three-node cluster of real `midge` processes: a session moves
//! to the node its client reconnects to, with its queued messages; a connected one is taken
//! over from another node (v5 0x8E, session present); after `kill -9` of the node holding
//! it, the session resumes on a survivor with every acknowledged QoS 1 message, including
//! those acknowledged while the cluster was losing the node (a follower, and the leader).

use crate::cluster_routing::{linked_cluster, publish_until_acked};
use crate::connect::connect_packet;
use crate::harness::v4::{self, QoS};
use crate::harness::{next_matching, Inbox, Midge, RawClient, WAIT};
use midge_codec::{
    Disconnect, Packet, ProtocolVersion, ReasonCode, Subscribe, SubscriptionOptions,
    TopicSubscription,
};
use std::time::Duration;
use tokio::time::Instant;

/// Connects `id` with clean session 0 to `node`; returns the client, session present and inbox.
async fn persistent(node: &Midge, id: &str) -> (v4::AsyncClient, bool, Inbox<v4::Packet>) {
    v4::connect_with(v4::options(node, id, false)).await
}

/// Publishes QoS 1 messages `payloads` on `topic` from `node`, waiting for every PUBACK.
async fn publish_acked(node: &Midge, id: &str, topic: &str, payloads: &[&str]) {
    let (client, mut inbox) = v4::connect(node, id).await;
    for p in payloads {
        client
            .publish(topic, QoS::AtLeastOnce, false, p.as_bytes().to_vec())
            .await
            .expect("publish");
    }
    for _ in payloads {
        next_matching(&mut inbox, |p| match p {
            v4::Packet::PubAck(_) => Some(()),
            _ => None,
        })
        .await
        .expect("PUBACK");
    }
    let _ = client.disconnect().await;
}

/// The payloads of the next `n` publishes, in arrival order.
async fn payloads(inbox: &mut Inbox<v4::Packet>, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let p = v4::publish(inbox).await;
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    got
}

// MQTT-3.1.2-4 / MQTT-3.2.2-2 across nodes: a client that reconnects with clean session 0 to
// another node resumes its session there (session present) and gets what was queued for it
// while it was away, in order (MQTT-4.6.0-6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_to_the_node_its_client_reconnects_to() {
    let cluster = linked_cluster(3).await;
    let (c, present, mut inbox) = persistent(cluster.node(1), "mover").await;
    assert!(!present);
    v4::subscribe(&c, &mut inbox, "mv/#", QoS::AtLeastOnce).await;
    c.disconnect().await.expect("disconnect");
    drop(inbox);
    publish_acked(cluster.node(3), "mv-pub", "mv/x", &["q1", "q2", "q3"]).await;

    let (c2, present, mut inbox2) = persistent(cluster.node(2), "mover").await;
    assert!(present, "the session came along");
    assert_eq!(payloads(&mut inbox2, 3).await, ["q1", "q2", "q3"]);
    // Its subscription lives on node 2 now: a publish anywhere reaches it there.
    publish_acked(cluster.node(1), "mv-pub-2", "mv/y", &["live"]).await;
    assert_eq!(payloads(&mut inbox2, 1).await, ["live"]);
    let _ = c2.disconnect().await;
}

fn subscribe_packet(filter: &str) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![TopicSubscription {
            filter: filter.to_string(),
            options: SubscriptionOptions {
                qos: midge_codec::QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
        }],
        properties: Default::default(),
    })
}

// MQTT-3.1.4-3 for a persistent session: the connection on node 1 gets DISCONNECT 0x8E and the
// client resumes on node 2 with its subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_persistent_session_is_taken_over_from_another_node() {
    let cluster = linked_cluster(3).await;
    let mut connect = connect_packet(ProtocolVersion::V5, "roaming", false);
    connect.properties.session_expiry_interval = Some(300);
    let mut old = RawClient::connect(cluster.node(1).addr(), ProtocolVersion::V5).await;
    old.send(&Packet::Connect(Box::new(connect.clone()))).await;
    assert!(
        matches!(old.recv().await, Some(Packet::ConnAck(a)) if a.reason == ReasonCode::Success)
    );
    old.send(&subscribe_packet("roam/#")).await;
    assert!(matches!(old.recv().await, Some(Packet::SubAck(_))));

    let mut new = RawClient::connect(cluster.node(2).addr(), ProtocolVersion::V5).await;
    new.send(&Packet::Connect(Box::new(connect))).await;
    match new.recv().await {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.reason, ReasonCode::Success);
            assert!(a.session_present, "resumed on node 2");
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let seen = old.expect_closed().await;
    assert!(
        seen.contains(&Packet::Disconnect(Disconnect::new(
            ReasonCode::SessionTakenOver
        ))),
        "{seen:?}"
    );
    publish_acked(cluster.node(3), "roam-pub", "roam/x", &["after"]).await;
    match new.recv().await {
        Some(Packet::Publish(p)) => assert_eq!(&p.payload[..], b"after"),
        other => panic!("expected the publish on node 2, got {other:?}"),
    }
}

// The brief's promise: with three nodes and the one holding a persistent session killed
// (`kill -9`), no QoS 1 message acknowledged to its publisher for that session is lost; the
// client resumes on a survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_of_its_node_a_session_resumes_on_a_survivor_with_nothing_lost() {
    let mut cluster = linked_cluster(3).await;
    let (c, _, mut inbox) = persistent(cluster.node(1), "survivor").await;
    v4::subscribe(&c, &mut inbox, "kv/#", QoS::AtLeastOnce).await;
    c.disconnect().await.expect("disconnect");
    drop(inbox);
    let sent: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let sent_refs: Vec<&str> = sent.iter().map(String::as_str).collect();
    publish_acked(cluster.node(2), "kv-pub", "kv/x", &sent_refs).await;
    cluster.kill(1);

    // While the survivors elect a new leader, the connect's durable write cannot commit: the
    // CONNACK is refused (v3 return code 3) and the client retries, as real clients do.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (c3, present, mut inbox3) = loop {
        match v4::try_connect_with(v4::options(cluster.node(3), "survivor", false)).await {
            Ok(connected) => break connected,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "never reconnected: {e}\n{}",
                cluster.node(3).log()
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(present, "resumed from the replicated store");
    assert_eq!(payloads(&mut inbox3, 5).await, sent);
    let _ = c3.disconnect().await;
}

// A node dies with a client of a persistent session connected: after the grace period the
// leader adopts its sessions, publishes the will (MQTT-3.1.2-8: the network connection was
// lost), and queues what is published for the session until its client comes back, on
// any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_sessions_are_adopted_with_their_wills_and_keep_queueing() {
    let mut cluster = linked_cluster(3).await;
    let leader = cluster.agreed_leader();
    let victim = (1..=3).find(|id| *id != leader).expect("a follower");
    let other = (1..=3)
        .find(|id| *id != leader && *id != victim)
        .expect("a third node");
    let (watcher, mut wills) = v4::connect(cluster.node(other), "will-watcher").await;
    v4::subscribe(&watcher, &mut wills, "wills/#", QoS::AtLeastOnce).await;

    let mut opts = v4::options(cluster.node(victim), "orphan", false);
    opts.set_last_will(v4::LastWill::new(
        "wills/orphan",
        "lost",
        QoS::AtLeastOnce,
        false,
    ));
    let (c, _, mut inbox) = v4::connect_with(opts).await;
    v4::subscribe(&c, &mut inbox, "orphan/#", QoS::AtLeastOnce).await;
    cluster.kill(victim);

    let will = v4::publish(&mut wills).await;
    assert_eq!(will.topic, "wills/orphan");
    assert_eq!(&will.payload[..], b"lost");
    // The publisher's node may not have forgotten the dead node's routes yet: retried until
    // acknowledged.
    publish_until_acked(cluster.node(other), "orphan-pub", "orphan/x", "while away").await;
    let (c2, present, mut inbox2) = persistent(cluster.node(other), "orphan").await;
    assert!(present);
    assert_eq!(payloads(&mut inbox2, 1).await, ["while away"]);
    let _ = c2.disconnect().await;
}

/// Publishes QoS 1 messages `{prefix}-0`, `{prefix}-1`, ... on `topic` from `node`, one at a
/// time, each retried until acknowledged, until `until`; returns those acknowledged.
async fn publish_stream(node: &Midge, prefix: &str, topic: &str, until: Instant) -> Vec<String> {
    let mut acked = Vec::new();
    let mut i = 0;
    while Instant::now() < until {
        let payload = format!("{prefix}-{i}");
        let id = format!("{prefix}-pub-{i}");
        publish_until_acked(node, &id, topic, &payload).await;
        acked.push(payload);
        i += 1;
    }
    acked
}

/// The brief's promise, through the whole failover: a node holding a persistent session is
/// killed while another node publishes for it without pause. Every publish the survivors
/// acknowledge, before the node is lost, while the leader adopts the session, and after, is
/// in the session when its client comes back on a survivor (MQTT-4.3.2: a PUBACK means the
/// receiver took ownership of the message). The survivors keep the lost node's routes, and
/// refuse publishes they cannot deliver (0x89, a v3 client sees the close), until the
/// cluster has committed its release, which the leader proposes only once the adopted
/// session's routes are known everywhere.
async fn nothing_acknowledged_is_lost_while_a_node_is_lost(kill_the_leader: bool) {
    let mut cluster = linked_cluster(3).await;
    let leader = cluster.agreed_leader();
    let victim = (1..=3)
        .find(|id| (*id == leader) == kill_the_leader)
        .expect("a victim");
    // Publishing through a node that is not the (old) leader: it notices the loss on its own
    // clock, not the adopter's.
    let publisher = (1..=3)
        .find(|id| *id != victim && *id != leader)
        .expect("a survivor");
    let (c, _, mut inbox) = persistent(cluster.node(victim), "streamed").await;
    v4::subscribe(&c, &mut inbox, "stream/#", QoS::AtLeastOnce).await;

    let pid = cluster.node(victim).pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    });
    // Past the 3 s grace period, the adoption and the release.
    let until = Instant::now() + Duration::from_secs(7);
    let acked = publish_stream(cluster.node(publisher), "s", "stream/x", until).await;
    assert!(killer.join().expect("killer"), "kill -9 {pid}");
    cluster.kill(victim);
    assert!(acked.len() > 10, "too few publishes: {acked:?}");

    let deadline = Instant::now() + WAIT;
    let (c2, present, mut inbox2) = loop {
        match v4::try_connect_with(v4::options(cluster.node(publisher), "streamed", false)).await {
            Ok(connected) => break connected,
            Err(e) => assert!(Instant::now() < deadline, "never reconnected: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(present, "the session resumed");
    let mut missing: std::collections::BTreeSet<String> = acked.iter().cloned().collect();
    // What the first connection got before its node died was delivered (and acknowledged).
    while let Ok(item) = inbox.try_recv() {
        if let Ok(v4::Packet::Publish(p)) = item {
            missing.remove(String::from_utf8_lossy(&p.payload).as_ref());
        }
    }
    while !missing.is_empty() {
        let next = next_matching(&mut inbox2, |p| match p {
            v4::Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await;
        let Ok(p) = next else {
            panic!(
                "{} of {} acknowledged message(s) lost: {:?}\npublisher's node:\n{}",
                missing.len(),
                acked.len(),
                missing,
                cluster.node(publisher).log()
            );
        };
        missing.remove(String::from_utf8_lossy(&p.payload).as_ref());
    }
    let _ = c2.disconnect().await;
    assert!(
        cluster
            .node(publisher)
            .log()
            .contains("The cluster released node"),
        "the lost node was never released:\n{}",
        cluster.node(publisher).log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_while_a_follower_holding_a_session_is_lost() {
    nothing_acknowledged_is_lost_while_a_node_is_lost(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_while_the_leader_holding_a_session_is_lost() {
    nothing_acknowledged_is_lost_while_a_node_is_lost(true).await;
}

//! Live messages across a three-node cluster of real `midge` processes: subscribe on node 2,
//! publish on nodes 1 and 3 at every QoS; one copy however many of a node's subscriptions
//! match; `$share` groups spread over nodes, under each shared strategy; client-id takeover
//! across nodes (v5 0x8E); the mosquitto command line clients on different nodes; and a
//! killed node costing the others nothing but its own subscribers.

use crate::connect::connect_packet;
use crate::harness::v4::{self, QoS};
use crate::harness::{
    have_tool, mosquitto_sub_subscribed, next_matching, Inbox, Midge, MidgeCluster, RawClient, WAIT,
};
use crate::metrics::{scrape, scrape_until, value};
use midge_codec::{Disconnect, Packet, ProtocolVersion, ReasonCode};
use std::process::Command;
use std::time::Duration;

/// Starts `n` nodes and waits until every node's broker links to the others are up, so a
/// SUBACK on any node waits for every peer.
pub(crate) async fn linked_cluster(n: u64) -> MidgeCluster {
    linked_cluster_with(n, &[]).await
}

/// [`linked_cluster`] with extra `MIDGE__...` settings for every node.
pub(crate) async fn linked_cluster_with(n: u64, env: &[(&str, &str)]) -> MidgeCluster {
    let cluster = MidgeCluster::start_with(n, env);
    for id in 1..=n {
        cluster.wait_for(id, "every member", |v| v.members.len() as u64 == n);
        let peers = (n - 1) as f64;
        scrape_until(cluster.node(id), "broker links up", |s| {
            value(s, "midge_cluster_peers", &[("state", "up")]) == peers
        })
        .await;
    }
    cluster
}

/// Publishes `payload` on `topic` at `qos` from a new client of `node`, waiting for the
/// PUBACK/PUBCOMP of QoS 1/2.
async fn publish_on(node: &Midge, id: &str, topic: &str, qos: QoS, payload: &str) {
    let (client, mut inbox) = v4::connect(node, id).await;
    client
        .publish(topic, qos, false, payload.as_bytes().to_vec())
        .await
        .expect("publish");
    if qos != QoS::AtMostOnce {
        next_matching(&mut inbox, |p| match p {
            v4::Packet::PubAck(_) | v4::Packet::PubComp(_) => Some(()),
            _ => None,
        })
        .await
        .expect("publish acknowledged");
    }
    let _ = client.disconnect().await;
}

/// Publishes one QoS 1 message from a new v3 client of `node`; true once it is acknowledged,
/// false if the connection was closed without a PUBACK.
pub(crate) async fn try_publish_on(node: &Midge, id: &str, topic: &str, payload: &str) -> bool {
    let (client, mut inbox) = v4::connect(node, id).await;
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
        .await
        .expect("publish");
    let acked = next_matching(&mut inbox, |p| match p {
        v4::Packet::PubAck(_) => Some(()),
        _ => None,
    })
    .await
    .is_ok();
    let _ = client.disconnect().await;
    acked
}

/// [`try_publish_on`] until the message is acknowledged (a node refuses one it cannot deliver
/// to a peer that just died, until it forgot that peer's routes); returns the refusals.
pub(crate) async fn publish_until_acked(node: &Midge, id: &str, topic: &str, payload: &str) -> u32 {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut refused = 0;
    while !try_publish_on(node, id, topic, payload).await {
        refused += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "{payload:?} never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refused
}

/// The payloads of the next `n` publishes in `inbox`, with their QoS.
async fn receive(inbox: &mut crate::harness::Inbox<v4::Packet>, n: usize) -> Vec<(String, QoS)> {
    let mut got = Vec::new();
    while got.len() < n {
        let p = v4::publish(inbox).await;
        got.push((String::from_utf8_lossy(&p.payload).into_owned(), p.qos));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    got
}

/// Asserts nothing more is published to `inbox` for a moment.
async fn nothing_more(inbox: &mut crate::harness::Inbox<v4::Packet>) {
    let more = tokio::time::timeout(Duration::from_millis(300), v4::publish(inbox)).await;
    assert!(more.is_err(), "unexpected extra copy: {more:?}");
}

// MQTT-3.3.4-1 (every matching subscriber gets the message) across nodes: the SUBACK on node 2
// is sent once nodes 1 and 3 know the route, so what they publish right after it arrives, at
// min(published, granted) QoS (MQTT-3.8.4-8 / 3.3.4 QoS downgrade).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_node_2_gets_what_nodes_1_and_3_publish_at_every_qos() {
    let cluster = linked_cluster(3).await;
    let (sub, mut inbox) = v4::connect(cluster.node(2), "sub-2").await;
    v4::subscribe(&sub, &mut inbox, "x/#", QoS::ExactlyOnce).await;
    for (id, node) in [(1, cluster.node(1)), (3, cluster.node(3))] {
        for (qos, name) in [
            (QoS::AtMostOnce, "q0"),
            (QoS::AtLeastOnce, "q1"),
            (QoS::ExactlyOnce, "q2"),
        ] {
            let payload = format!("n{id}-{name}");
            publish_on(node, &format!("pub-{id}-{name}"), "x/y", qos, &payload).await;
        }
    }
    let got = receive(&mut inbox, 6).await;
    let want: Vec<(String, QoS)> = ["n1", "n3"]
        .iter()
        .flat_map(|n| {
            [
                (format!("{n}-q0"), QoS::AtMostOnce),
                (format!("{n}-q1"), QoS::AtLeastOnce),
                (format!("{n}-q2"), QoS::ExactlyOnce),
            ]
        })
        .collect();
    assert_eq!(got, want);
    nothing_more(&mut inbox).await;
    let s = scrape(cluster.node(2)).await;
    assert!(value(&s, "midge_cluster_forwarded_total", &[("direction", "in")]) >= 6.0);
    // Nodes 1 and 3 timed the exchanges that carried their publishes to node 2.
    for id in [1, 3] {
        let s = scrape(cluster.node(id)).await;
        assert!(value(&s, "midge_forward_latency_seconds", &[]) >= 1.0);
        // The batches that carried them are counted.
        assert!(value(&s, "midge_cluster_link_batches_total", &[]) >= 1.0);
    }

    // Unsubscribed: node 2 withdraws the route, nothing more arrives.
    sub.unsubscribe("x/#").await.expect("unsubscribe");
    next_matching(&mut inbox, |p| match p {
        v4::Packet::UnsubAck(_) => Some(()),
        _ => None,
    })
    .await
    .expect("UNSUBACK");
    scrape_until(cluster.node(2), "no routes", |s| {
        value(s, "midge_cluster_routes", &[]) == 0.0
    })
    .await;
}

// MQTT-3.3.4-2: overlapping subscriptions of one session get one copy, also when the message
// comes from another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_on_another_node_get_one_copy() {
    let cluster = linked_cluster(2).await;
    let (sub, mut inbox) = v4::connect(cluster.node(2), "overlap").await;
    for filter in ["o/+", "o/#", "o/a"] {
        v4::subscribe(&sub, &mut inbox, filter, QoS::AtLeastOnce).await;
    }
    publish_on(
        cluster.node(1),
        "overlap-pub",
        "o/a",
        QoS::AtLeastOnce,
        "once",
    )
    .await;
    assert_eq!(
        receive(&mut inbox, 1).await,
        [("once".into(), QoS::AtLeastOnce)]
    );
    nothing_more(&mut inbox).await;
}

// MQTT 4.8.2: each message to a `$share` group goes to one member, whichever node it is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_group_spread_over_two_nodes_gets_each_message_once() {
    let cluster = linked_cluster(3).await;
    let (m2, mut in2) = v4::connect(cluster.node(2), "member-2").await;
    v4::subscribe(&m2, &mut in2, "$share/g/jobs/#", QoS::AtLeastOnce).await;
    let (m3, mut in3) = v4::connect(cluster.node(3), "member-3").await;
    v4::subscribe(&m3, &mut in3, "$share/g/jobs/#", QoS::AtLeastOnce).await;
    let (p, mut pin) = v4::connect(cluster.node(1), "jobs-pub").await;
    let n = 20;
    for i in 0..n {
        p.publish("jobs/x", QoS::AtLeastOnce, false, format!("{i:02}"))
            .await
            .expect("publish");
    }
    let mut acked = 0;
    while acked < n {
        next_matching(&mut pin, |p| match p {
            v4::Packet::PubAck(_) => Some(()),
            _ => None,
        })
        .await
        .expect("PUBACK");
        acked += 1;
    }
    let mut got = Vec::new();
    let (mut from2, mut from3) = (0, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < n {
        tokio::select! {
            p = v4::publish(&mut in2) => { from2 += 1; got.push(p.payload); }
            p = v4::publish(&mut in3) => { from3 += 1; got.push(p.payload); }
            _ = tokio::time::sleep_until(deadline) => panic!("only {} of {n} arrived", got.len()),
        }
    }
    got.sort();
    got.dedup();
    assert_eq!(got.len(), n, "every message exactly once");
    assert!(
        from2 > 0 && from3 > 0,
        "both nodes' members served: {from2} / {from3}"
    );
    nothing_more(&mut in2).await;
    nothing_more(&mut in3).await;
}

/// Collects `n` publishes from the inboxes of members on nodes 1, 2 and 3; returns, per
/// payload, the node whose member got it.
async fn served_by(inboxes: &mut [Inbox<v4::Packet>; 3], n: usize) -> Vec<(String, u64)> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < n {
        let [a, b, c] = inboxes;
        let (node, p) = tokio::select! {
            p = v4::publish(a) => (1, p),
            p = v4::publish(b) => (2, p),
            p = v4::publish(c) => (3, p),
            _ = tokio::time::sleep_until(deadline) => panic!("only {} of {n} arrived", got.len()),
        };
        got.push((String::from_utf8_lossy(&p.payload).into_owned(), node));
    }
    got
}

/// Members of `$share/g/work/#` on each of the three nodes of `cluster`.
async fn a_member_on_every_node(
    cluster: &MidgeCluster,
) -> (Vec<v4::AsyncClient>, [Inbox<v4::Packet>; 3]) {
    let mut clients = Vec::new();
    let mut inboxes = Vec::new();
    for id in 1..=3 {
        let (m, mut inbox) = v4::connect(cluster.node(id), &format!("worker-{id}")).await;
        v4::subscribe(&m, &mut inbox, "$share/g/work/#", QoS::AtLeastOnce).await;
        clients.push(m);
        inboxes.push(inbox);
    }
    let inboxes: [Inbox<v4::Packet>; 3] = inboxes.try_into().expect("three inboxes");
    (clients, inboxes)
}

// `broker.shared_strategy = "round-robin"`: a group with a member on every node gets the
// messages published on node 1 spread over all three nodes, each exactly once (MQTT 4.8.2:
// one member per message), where local-first would keep them all on node 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_a_group_over_every_node() {
    let cluster =
        linked_cluster_with(3, &[("MIDGE__BROKER__SHARED_STRATEGY", "round-robin")]).await;
    let (_members, mut inboxes) = a_member_on_every_node(&cluster).await;
    for i in 0..9 {
        publish_on(
            cluster.node(1),
            "rr-pub",
            "work/x",
            QoS::AtLeastOnce,
            &format!("{i}"),
        )
        .await;
    }
    let got = served_by(&mut inboxes, 9).await;
    let mut per_node = [0; 3];
    for (_, node) in &got {
        per_node[(*node - 1) as usize] += 1;
    }
    assert_eq!(per_node, [3, 3, 3], "{got:?}");
    for inbox in &mut inboxes {
        nothing_more(inbox).await;
    }
}

// `broker.shared_strategy = "client-hash"`: every message of one publisher goes to the same
// member, wherever it is, so that member sees them in order (MQTT-4.6.0-5 holds per member).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_hash_sends_each_publishers_messages_to_one_member_in_order() {
    let cluster =
        linked_cluster_with(3, &[("MIDGE__BROKER__SHARED_STRATEGY", "client-hash")]).await;
    let (_members, mut inboxes) = a_member_on_every_node(&cluster).await;
    let publishers = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let (n, per) = (publishers.len(), 5);
    let mut clients = Vec::new();
    for name in publishers {
        let (c, inbox) = v4::connect(cluster.node(1), name).await;
        clients.push((c, inbox, name));
    }
    for i in 0..per {
        for (c, _, name) in &clients {
            c.publish("work/x", QoS::AtLeastOnce, false, format!("{name}-{i}"))
                .await
                .expect("publish");
        }
    }
    let got = served_by(&mut inboxes, n * per).await;
    let mut nodes_used = std::collections::BTreeSet::new();
    for name in publishers {
        let mine: Vec<&(String, u64)> = got
            .iter()
            .filter(|(p, _)| p.starts_with(&format!("{name}-")))
            .collect();
        let order: Vec<&str> = mine.iter().map(|(p, _)| p.as_str()).collect();
        let want: Vec<String> = (0..per).map(|i| format!("{name}-{i}")).collect();
        assert_eq!(order, want, "one publisher's messages, in order");
        assert!(
            mine.iter().all(|(_, node)| *node == mine[0].1),
            "{name} went to one member: {mine:?}"
        );
        nodes_used.insert(mine[0].1);
    }
    assert!(
        nodes_used.len() > 1,
        "publishers spread over members: {got:?}"
    );
}

fn v5_connect(client_id: &str) -> Packet {
    Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V5,
        client_id,
        true,
    )))
}

// MQTT-3.1.4-3 across nodes: a client id connecting on node 2 ends its connection on node 1,
// which gets DISCONNECT 0x8E (Session taken over) before the new CONNACK is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_taken_over_on_another_node_gets_0x8e() {
    let cluster = linked_cluster(3).await;
    let mut old = RawClient::connect(cluster.node(1).addr(), ProtocolVersion::V5).await;
    old.send(&v5_connect("roamer")).await;
    assert!(
        matches!(old.recv().await, Some(Packet::ConnAck(a)) if a.reason == ReasonCode::Success)
    );
    let mut new = RawClient::connect(cluster.node(2).addr(), ProtocolVersion::V5).await;
    new.send(&v5_connect("roamer")).await;
    assert!(
        matches!(new.recv().await, Some(Packet::ConnAck(a)) if a.reason == ReasonCode::Success)
    );
    // The old connection was already told when the new CONNACK went out.
    let seen = tokio::time::timeout(Duration::from_millis(500), old.expect_closed())
        .await
        .expect("the old connection is closed right away");
    assert!(
        seen.contains(&Packet::Disconnect(Disconnect::new(
            ReasonCode::SessionTakenOver
        ))),
        "{seen:?}"
    );
    // The new one stays up.
    new.send(&Packet::PingReq).await;
    assert_eq!(new.recv().await, Some(Packet::PingResp));
}

// The brief's quick check with real clients: `mosquitto_sub` on node 2, `mosquitto_pub` on
// node 1, QoS 1.
#[test]
fn mosquitto_sub_on_one_node_gets_mosquitto_pub_on_another() {
    if !have_tool("mosquitto_sub", "apt-get install mosquitto-clients") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cluster = rt.block_on(linked_cluster(2));
    let port = |id: u64| cluster.node(id).port().to_string();
    // `-d` prints the SUBACK; node 1 knows the route by then.
    let (mut sub, lines) = mosquitto_sub_subscribed("127.0.0.1", &port(2), "mc/#");
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port(1),
            "-t",
            "mc/x",
            "-q",
            "1",
            "-m",
            "hello",
        ])
        .output()
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(sub.wait().expect("wait").success());
    assert!(got.iter().any(|l| l == "mc/x hello"), "{got:?}");
}

// A node killed with subscribers on it. Until the others drop its routes (the grace period),
// a QoS 1 publish matching them cannot reach it: rather than acknowledge a message that may be
// lost, the node withholds the PUBACK and closes the connection (a v3 client sees the close),
// and the publisher retries. After that, publishes are acknowledged again; the survivors'
// subscribers get every message exactly as acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_not_acknowledged_for_then_forgotten() {
    let mut cluster = linked_cluster(3).await;
    let (s2, mut in2) = v4::connect(cluster.node(2), "survivor").await;
    v4::subscribe(&s2, &mut in2, "k/#", QoS::AtLeastOnce).await;
    let (s3, mut in3) = v4::connect(cluster.node(3), "doomed").await;
    v4::subscribe(&s3, &mut in3, "k/#", QoS::AtLeastOnce).await;
    publish_on(
        cluster.node(1),
        "k-pub-0",
        "k/x",
        QoS::AtLeastOnce,
        "before",
    )
    .await;
    assert_eq!(receive(&mut in3, 1).await[0].0, "before");
    cluster.kill(3);
    let killed = tokio::time::Instant::now();
    let mut refused = 0;
    // The first try starts now, well within the 3 s grace period (unless the machine stalls).
    let early = killed.elapsed() < Duration::from_secs(1);
    for i in 0..5 {
        let payload = format!("after-{i}");
        refused +=
            publish_until_acked(cluster.node(1), &format!("k-pub-{i}"), "k/x", &payload).await;
    }
    // Published within the grace period, the first try could not be acknowledged.
    if early {
        assert!(
            refused > 0,
            "a publish for the dead node's subscriber was acknowledged"
        );
    }
    // Node 2's subscriber got every message at least once (a refused try was still delivered
    // here: at least once, the publisher's retry may duplicate it).
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 6 {
        let p = v4::publish(&mut in2).await;
        seen.insert(String::from_utf8_lossy(&p.payload).into_owned());
    }
    let want: std::collections::BTreeSet<String> = (0..5)
        .map(|i| format!("after-{i}"))
        .chain(["before".to_string()])
        .collect();
    assert_eq!(seen, want);
    scrape_until(cluster.node(1), "node 3 down", |s| {
        value(s, "midge_cluster_peers", &[("state", "down")]) == 1.0
    })
    .await;
}

// Membership at runtime: a 4th node started with seeds joins a running 3-voter cluster as a
// learner and serves live messages at once; removing a voter with `midge ctl cluster leave`
// promotes the learner, and messages still flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_joins_at_runtime_and_a_voter_leaves() {
    let mut cluster = linked_cluster(3).await;
    let seed = cluster.node(1).cluster_addr().to_string();
    cluster.nodes.push(Some(Midge::start_with(&[
        ("MIDGE__CLUSTER__NODE_ID", "4"),
        ("MIDGE__CLUSTER__SEEDS", seed.as_str()),
    ])));
    let view = cluster.wait_for(1, "node 4 a learner", |v| {
        v.members
            .iter()
            .any(|m| m.node_id == 4 && m.role == "learner")
    });
    assert_eq!(view.voters(), [1, 2, 3]);
    for id in 1..=4 {
        scrape_until(
            cluster.node(id),
            "every node linked to the other three",
            |s| value(s, "midge_cluster_peers", &[("state", "up")]) == 3.0,
        )
        .await;
    }
    let (sub, mut inbox) = v4::connect(cluster.node(4), "sub-4").await;
    v4::subscribe(&sub, &mut inbox, "j/#", QoS::AtLeastOnce).await;
    publish_on(
        cluster.node(1),
        "j-pub",
        "j/x",
        QoS::AtLeastOnce,
        "to the new node",
    )
    .await;
    assert_eq!(receive(&mut inbox, 1).await[0].0, "to the new node");

    cluster.ctl_leave(1, 2);
    cluster.wait_for(1, "node 4 promoted", |v| {
        v.voters() == [1, 3, 4] && v.members.iter().all(|m| m.node_id != 2)
    });
    publish_on(
        cluster.node(3),
        "j-pub-3",
        "j/y",
        QoS::AtLeastOnce,
        "after the leave",
    )
    .await;
    assert_eq!(receive(&mut inbox, 1).await[0].0, "after the leave");
}

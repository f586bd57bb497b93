//! The broker as one node of a cluster: route changes for peers, forwarding to the peers whose
//! routes match (no duplicates, shared groups served once cluster-wide), delivering what peers
//! forward, and client-id claims (MQTT-3.1.4-3 across nodes).

use super::harness::*;
use crate::{Action, BrokerConfig, Event, NodeId, SharedStrategy};
use midge_codec::{Packet, QoS, ReasonCode, Subscribe, SubscribeProperties, TopicSubscription};
use std::sync::Arc;

fn cluster_config() -> BrokerConfig {
    BrokerConfig {
        cluster: true,
        ..config()
    }
}

fn routes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RouteAdd { route } => Some(format!("+{route}")),
            Action::RouteRemove { route } => Some(format!("-{route}")),
            _ => None,
        })
        .collect()
}

fn forwards(actions: &[Action]) -> Vec<(NodeId, String, Vec<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Forward {
                node,
                publish,
                groups,
                ..
            } => Some((
                *node,
                publish.topic.to_string(),
                groups.iter().map(|g| g.to_string()).collect(),
            )),
            _ => None,
        })
        .collect()
}

fn subscribe_raw(h: &mut H, conn: u64, filter: &str) -> Vec<Action> {
    h.packet(
        conn,
        Packet::Subscribe(Subscribe {
            packet_id: 5,
            filters: vec![TopicSubscription {
                filter: filter.to_string(),
                options: opts(QoS::AtLeastOnce),
            }],
            properties: SubscribeProperties::default(),
        }),
    )
}

fn peer_routes(h: &mut H, node: NodeId, full: bool, add: &[&str], remove: &[&str]) {
    let out = h.event(Event::PeerRoutes {
        node,
        full,
        add: add.iter().map(|s| s.to_string()).collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
    });
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn the_first_subscriber_adds_a_route_before_its_suback_and_the_last_removes_it() {
    let mut h = H::with(cluster_config());
    h.connect(1, "a", V5, true);
    h.connect(2, "b", V5, true);
    let first = subscribe_raw(&mut h, 1, "t/+");
    assert_eq!(routes(&first), ["+t/+"]);
    // Route before SUBACK: the server holds the SUBACK until peers acknowledged the route.
    assert!(matches!(first[0], Action::RouteAdd { .. }), "{first:?}");
    assert!(matches!(
        &first[1],
        Action::Send {
            packet: Packet::SubAck(_),
            ..
        }
    ));
    // A second subscriber to the same filter, or a re-subscribe, changes no route.
    assert!(routes(&subscribe_raw(&mut h, 2, "t/+")).is_empty());
    assert!(routes(&subscribe_raw(&mut h, 1, "t/+")).is_empty());
    assert_eq!(h.unsubscribe(1, &["t/+"]), [ReasonCode::Success]);
    let gone = h.closed(2);
    assert_eq!(routes(&gone), ["-t/+"]);
    assert_eq!(h.broker.take_routes(), Vec::<String>::new());
}

#[test]
fn shared_subscriptions_are_routes_with_their_group() {
    let mut h = H::with(cluster_config());
    h.connect(1, "a", V5, true);
    assert_eq!(
        routes(&subscribe_raw(&mut h, 1, "$share/g/t/#")),
        ["+$share/g/t/#"]
    );
    assert_eq!(h.broker.take_routes(), ["$share/g/t/#"]);
}

#[test]
fn a_publish_goes_once_to_each_peer_with_matching_routes() {
    let mut h = H::with(cluster_config());
    h.connect(1, "pub", V5, true);
    peer_routes(&mut h, 2, true, &["t/+", "t/#", "t/1"], &[]);
    peer_routes(&mut h, 3, true, &["other"], &[]);
    peer_routes(&mut h, 4, true, &["#"], &[]);
    let out = h.publish(1, publish("t/1", QoS::AtLeastOnce, Some(1), "m"));
    let mut f = forwards(&out);
    f.sort();
    assert_eq!(
        f,
        [(2, "t/1".into(), vec![]), (4, "t/1".into(), vec![])],
        "one copy per node however many of its filters match"
    );
    // Forwards come before the PUBACK, which counts them as matching subscribers (no 0x10).
    let puback = out.iter().position(|a| {
        matches!(
            a,
            Action::Send {
                packet: Packet::Ack(_),
                ..
            }
        )
    });
    let last_forward = out
        .iter()
        .rposition(|a| matches!(a, Action::Forward { .. }));
    assert!(last_forward < puback, "{out:?}");
    assert_eq!(
        acks(&out, 1, midge_codec::AckKind::PubAck)[0].reason,
        ReasonCode::Success
    );
    // `$SYS` topics never leave the node.
    assert!(forwards(&h.publish(1, publish("$SYS/x", QoS::AtMostOnce, None, "m"))).is_empty());
    // A delta removes one route; a gone peer takes all of its routes with it.
    peer_routes(&mut h, 2, false, &[], &["t/+", "t/#", "t/1"]);
    h.event(Event::PeerGone { node: 4 });
    assert!(forwards(&h.publish(1, publish("t/1", QoS::AtMostOnce, None, "m"))).is_empty());
    assert_eq!(h.broker.peer_route_count(3), 1);
}

#[test]
fn a_forwarded_publish_reaches_local_sessions_once_and_goes_no_further() {
    let mut h = H::with(cluster_config());
    h.connect(1, "sub", V5, true);
    h.connect(2, "member", V5, true);
    subscribe_raw(&mut h, 1, "t/+");
    subscribe_raw(&mut h, 1, "t/#");
    subscribe_raw(&mut h, 2, "$share/g/t/#");
    peer_routes(&mut h, 3, true, &["t/#"], &[]);
    let mut p = retained("t/1", QoS::AtLeastOnce, None, "fwd");
    p.retain = true;
    let out = h.event(Event::Forwarded {
        publish: p.clone(),
        groups: vec![],
        share_key: 0,
    });
    // MQTT-3.3.4-2 across nodes: one copy for the session, however many filters match.
    assert_eq!(payloads(&out, 1), ["fwd"]);
    // The group was not chosen for this node by the sender: its member gets nothing.
    assert!(payloads(&out, 2).is_empty());
    assert!(forwards(&out).is_empty(), "never forwarded again");
    // Not stored as retained here (Raft replicates retained messages).
    h.connect(4, "late", V5, true);
    let (_, late) = h.subscribe_with(4, "t/#", opts(QoS::AtMostOnce), None);
    assert!(payloads(&late, 4).is_empty());
    // When the sender chose this node for the group, one member gets it.
    let out = h.event(Event::Forwarded {
        publish: p,
        groups: vec![Arc::from("g/t/#")],
        share_key: 0,
    });
    assert_eq!(payloads(&out, 2), ["fwd"]);
}

#[test]
fn a_shared_group_is_served_once_cluster_wide_preferring_local_members() {
    let mut h = H::with(cluster_config());
    h.connect(1, "pub", V5, true);
    peer_routes(&mut h, 2, true, &["$share/g/t"], &[]);
    peer_routes(&mut h, 3, true, &["$share/g/t"], &[]);
    // No local member: each message goes to one peer, alternating.
    let mut chosen = Vec::new();
    for _ in 0..4 {
        let f = forwards(&h.publish(1, publish("t", QoS::AtMostOnce, None, "m")));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].2, ["g/t"]);
        chosen.push(f[0].0);
    }
    chosen.sort_unstable();
    assert_eq!(chosen, [2, 2, 3, 3]);
    // A connected local member takes them all.
    h.connect(4, "member", V5, true);
    subscribe_raw(&mut h, 4, "$share/g/t");
    for _ in 0..3 {
        let out = h.publish(1, publish("t", QoS::AtMostOnce, None, "m"));
        assert_eq!(payloads(&out, 4), ["m"]);
        assert!(forwards(&out).is_empty());
    }
}

/// Where each of `n` QoS 0 publishes from client slot 1 on `t` went: `0` for the local
/// member in slot 4, else the peer it was forwarded to.
fn destinations(h: &mut H, n: usize) -> Vec<NodeId> {
    (0..n)
        .map(|_| {
            let out = h.publish(1, publish("t", QoS::AtMostOnce, None, "m"));
            let f = forwards(&out);
            match (payloads(&out, 4).len(), f.as_slice()) {
                (1, []) => 0,
                (0, [(node, _, groups)]) if groups == &["g/t"] => *node,
                other => panic!("one copy per message: {other:?}"),
            }
        })
        .collect()
}

/// A cluster-configured harness with `strategy`, a publisher in slot 1, a connected local
/// member of `$share/g/t` in slot 4 and peers 2 and 3 holding members.
fn group_over_three_nodes(strategy: SharedStrategy) -> H {
    let mut h = H::with(BrokerConfig {
        shared_strategy: strategy,
        ..cluster_config()
    });
    h.connect(1, "pub", V5, true);
    h.connect(4, "member", V5, true);
    subscribe_raw(&mut h, 4, "$share/g/t");
    peer_routes(&mut h, 2, true, &["$share/g/t"], &[]);
    peer_routes(&mut h, 3, true, &["$share/g/t"], &[]);
    h
}

// MQTT 4.8.2 leaves the choice of member to the server; `shared_strategy = "round-robin"`
// spreads a group's messages over every node holding members, this one included.
#[test]
fn round_robin_spreads_a_group_over_this_node_and_the_peers() {
    let mut h = group_over_three_nodes(SharedStrategy::RoundRobin);
    let mut got = destinations(&mut h, 6);
    got.sort_unstable();
    assert_eq!(got, [0, 0, 2, 2, 3, 3]);
}

// `shared_strategy = "client-hash"`: every message of one publisher goes to the same node
// (and the key travels with the forward, so the peer picks the same member each time).
#[test]
fn client_hash_keeps_a_publisher_on_one_holder() {
    let mut h = group_over_three_nodes(SharedStrategy::ClientHash);
    let got = destinations(&mut h, 6);
    assert!(got.iter().all(|d| *d == got[0]), "{got:?}");
    let keys: Vec<u64> = h
        .publish(1, publish("t", QoS::AtMostOnce, None, "m"))
        .iter()
        .filter_map(|a| match a {
            Action::Forward { share_key, .. } => Some(*share_key),
            _ => None,
        })
        .collect();
    if got[0] != 0 {
        assert_eq!(keys, [crate::shared_strategy::share_key("pub")]);
    }
    // On the receiving node the key picks one member among several, the same every time.
    let mut r = H::with(BrokerConfig {
        shared_strategy: SharedStrategy::ClientHash,
        ..cluster_config()
    });
    for slot in 1..=3 {
        r.connect(slot, &format!("m{slot}"), V5, true);
        subscribe_raw(&mut r, slot, "$share/g/t");
    }
    let receivers: Vec<u64> = (0..5)
        .map(|_| {
            let out = r.event(Event::Forwarded {
                publish: publish("t", QoS::AtMostOnce, None, "m"),
                groups: vec![Arc::from("g/t")],
                share_key: 42,
            });
            let hit: Vec<u64> = (1..=3).filter(|s| payloads(&out, *s).len() == 1).collect();
            assert_eq!(hit.len(), 1, "one member: {hit:?}");
            hit[0]
        })
        .collect();
    assert!(
        receivers.iter().all(|s| *s == receivers[0]),
        "{receivers:?}"
    );
}

// The default, local-first, keeps every message on this node while it has a connected member.
#[test]
fn local_first_keeps_a_group_local_while_a_member_is_connected() {
    let mut h = group_over_three_nodes(SharedStrategy::LocalFirst);
    assert_eq!(destinations(&mut h, 4), [0, 0, 0, 0]);
}

// A peer whose link is down keeps its routes until the cluster releases it, but a shared
// group's message goes to a reachable holder while there is one (one member per message,
// MQTT 4.8.2, without waiting on a node that may be gone).
#[test]
fn a_shared_group_skips_an_unreachable_peer_while_another_holds_members() {
    let mut h = H::with(cluster_config());
    h.connect(1, "pub", V5, true);
    peer_routes(&mut h, 2, true, &["$share/g/t"], &[]);
    peer_routes(&mut h, 3, true, &["$share/g/t", "t"], &[]);
    h.event(Event::PeerReachable {
        node: 3,
        reachable: false,
    });
    for _ in 0..4 {
        let f = forwards(&h.publish(1, publish("t", QoS::AtLeastOnce, Some(1), "m")));
        // Node 3's ordinary route still gets the message (its forward fails, and the
        // publisher is not acknowledged); the group's copy goes to node 2.
        assert_eq!(
            f,
            [
                (3, "t".to_string(), vec![]),
                (2, "t".to_string(), vec!["g/t".to_string()])
            ]
        );
    }
    // With every holder unreachable the group still picks one (refused, not dropped).
    h.event(Event::PeerReachable {
        node: 2,
        reachable: false,
    });
    let f = forwards(&h.publish(1, publish("t", QoS::AtLeastOnce, Some(2), "m")));
    assert!(f.iter().any(|(_, _, groups)| groups == &["g/t"]), "{f:?}");
    h.event(Event::PeerReachable {
        node: 3,
        reachable: true,
    });
    let f = forwards(&h.publish(1, publish("t", QoS::AtLeastOnce, Some(3), "m")));
    assert_eq!(f, [(3, "t".to_string(), vec!["g/t".to_string()])]);
}

#[test]
fn an_offline_local_member_yields_to_a_peer_holding_members() {
    let mut h = H::with(cluster_config());
    h.connect(1, "pub", V5, true);
    h.connect_v5(2, "member", false, 100);
    subscribe_raw(&mut h, 2, "$share/g/t");
    h.closed(2);
    peer_routes(&mut h, 3, true, &["$share/g/t"], &[]);
    let f = forwards(&h.publish(1, publish("t", QoS::AtLeastOnce, Some(1), "m")));
    assert_eq!(f, [(3, "t".to_string(), vec!["g/t".to_string()])]);
    // Without a peer holding the group, the offline member's session queues it.
    h.event(Event::PeerGone { node: 3 });
    assert!(forwards(&h.publish(1, publish("t", QoS::AtLeastOnce, Some(2), "m"))).is_empty());
}

#[test]
fn a_claim_from_another_node_takes_the_session_over_with_0x8e() {
    let mut h = H::with(cluster_config());
    let mut connect = connect_packet(V5, "dev", true);
    connect.will = Some(will("wills/dev", "gone", QoS::AtMostOnce, false, None));
    let out = h.connect_with(1, connect);
    // Every connect claims its client id in the cluster, before the CONNACK.
    assert!(matches!(
        &out[0],
        Action::Claim { client_id, clean_start: true, persistent: false } if &**client_id == "dev"
    ));
    assert!(matches!(
        &out[1],
        Action::Send {
            packet: Packet::ConnAck(_),
            ..
        }
    ));
    h.connect(2, "watcher", V5, true);
    h.subscribe(2, "wills/#", QoS::AtMostOnce);
    let out = h.event(Event::Claimed {
        client_id: "dev".into(),
        clean_start: true,
        persistent: false,
    });
    // MQTT-3.1.4-3: the existing connection is closed; v5 gets DISCONNECT 0x8E.
    assert_disconnected(&out, 1, ReasonCode::SessionTakenOver);
    assert_eq!(payloads(&out, 2), ["gone"], "its will is published");
    // Client ids no longer (or never) here change nothing.
    for id in ["dev", "nobody"] {
        let claimed = Event::Claimed {
            client_id: id.into(),
            clean_start: true,
            persistent: false,
        };
        assert!(h.event(claimed).is_empty());
    }
}

#[test]
fn without_cluster_mode_no_route_or_claim_actions_are_emitted() {
    let mut h = H::new();
    let out = h.connect_with(1, connect_packet(V5, "a", true));
    assert!(!out.iter().any(|a| matches!(a, Action::Claim { .. })));
    h.subscribe(1, "t", QoS::AtMostOnce);
    assert!(h.broker.take_routes() == ["t"]);
}

fn durable_cluster_config() -> BrokerConfig {
    BrokerConfig {
        cluster: true,
        ..durable_config()
    }
}

#[test]
fn a_handed_off_session_is_adopted_with_its_subscriptions_and_messages() {
    // Node A: a persistent session with a subscription, one message in flight and one queued.
    let mut a = H::with(BrokerConfig {
        max_inflight: 1,
        ..cluster_config()
    });
    a.connect_v5(1, "dev", false, 300);
    subscribe_raw(&mut a, 1, "q/#");
    a.connect(2, "pub", V5, true);
    a.publish(2, publish("q/1", QoS::AtLeastOnce, Some(1), "inflight"));
    a.publish(2, publish("q/2", QoS::AtLeastOnce, Some(2), "queued"));
    let mut out = Vec::new();
    let ops = a
        .broker
        .hand_off(a.now, "dev", &mut out)
        .expect("the session is here");
    // The client is told (MQTT-3.1.4-3), the routes go, nothing durable changes on A.
    assert_disconnected(&out, 1, ReasonCode::SessionTakenOver);
    assert_eq!(routes(&out), ["-q/#"]);
    assert!(persisted(&out).is_empty());
    assert!(!a.broker.has_session("dev"));
    assert!(a.broker.hand_off(a.now, "dev", &mut out).is_none());

    // Node B rebuilds it from the ops and the client resumes there.
    let mut state = crate::DurableState::new();
    for op in ops {
        state.apply(a.now, op);
    }
    let session = state.into_restored().sessions.pop().expect("one session");
    let mut b = H::with(cluster_config());
    assert!(b.broker.adopt(b.now, session.clone()));
    assert!(!b.broker.adopt(b.now, session), "only once");
    let after = b.connect_with(7, connect_packet(V5, "dev", false));
    // The adopted session's route goes to peers before the CONNACK.
    let connack = after
        .iter()
        .position(|a| {
            matches!(
                a,
                Action::Send {
                    packet: Packet::ConnAck(_),
                    ..
                }
            )
        })
        .expect("CONNACK");
    assert!(matches!(
        &after[..connack],
        [Action::Claim { .. }, Action::RouteAdd { .. }]
    ));
    // MQTT-3.2.2-2: the session is present; the in-flight message is re-sent with DUP
    // (MQTT-4.4.0-1), then the queued one.
    let Action::Send {
        packet: Packet::ConnAck(ack),
        ..
    } = &after[connack]
    else {
        unreachable!()
    };
    assert!(ack.session_present);
    let got = publishes(&after, 7);
    assert_eq!(got.len(), 2, "{after:?}");
    assert!(got[0].dup);
    assert_eq!(&got[0].payload[..], b"inflight");
    assert_eq!(&got[1].payload[..], b"queued");
    assert!(routes(&after).contains(&"+q/#".to_string()));
}

#[test]
fn a_clean_session_is_not_handed_off() {
    let mut a = H::with(durable_cluster_config());
    a.connect(1, "clean", V5, true);
    let mut out = Vec::new();
    assert!(a.broker.hand_off(a.now, "clean", &mut out).is_none());
    assert!(out.is_empty());
}

#[test]
fn a_clean_start_elsewhere_deletes_the_stored_session_only_if_nothing_replaces_it() {
    for (persistent_there, deleted) in [(false, true), (true, false)] {
        let mut h = H::with(durable_cluster_config());
        let mut c = connect_packet(V5, "dev", false);
        c.properties.session_expiry_interval = Some(300);
        h.connect_with(1, c);
        let out = h.event(Event::Claimed {
            client_id: "dev".into(),
            clean_start: true,
            persistent: persistent_there,
        });
        assert_disconnected(&out, 1, ReasonCode::SessionTakenOver);
        let deletes = persisted(&out)
            .iter()
            .filter(|op| matches!(op, crate::DurableOp::SessionDelete { .. }))
            .count();
        assert_eq!(deletes == 1, deleted, "{out:?}");
        assert!(!h.broker.has_session("dev"));
    }
}

#[test]
fn a_clean_start_of_a_persistent_session_clears_what_another_node_stored() {
    let mut h = H::with(durable_cluster_config());
    let mut c = connect_packet(V5, "dev", true);
    c.properties.session_expiry_interval = Some(60);
    let out = h.connect_with(1, c);
    let ops = persisted(&out);
    assert!(
        matches!(ops.first(), Some(crate::DurableOp::SessionDelete { .. })),
        "{ops:?}"
    );
    assert!(matches!(
        ops.get(1),
        Some(crate::DurableOp::SessionPut { .. })
    ));
}

#[test]
fn a_leaving_members_unacknowledged_message_goes_to_a_peer_holding_the_group() {
    let mut h = H::with(cluster_config());
    h.connect(1, "pub", V5, true);
    h.connect(2, "member", V5, true);
    subscribe_raw(&mut h, 2, "$share/g/t");
    peer_routes(&mut h, 3, true, &["$share/g/t"], &[]);
    let out = h.publish(1, publish("t", QoS::AtLeastOnce, Some(1), "m"));
    assert_eq!(payloads(&out, 2), ["m"], "the local member first");
    let out = h.closed(2);
    assert_eq!(
        forwards(&out),
        [(3, "t".to_string(), vec!["g/t".to_string()])]
    );
}

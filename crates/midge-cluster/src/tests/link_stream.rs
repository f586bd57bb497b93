//! A broker link between two `Links` over real gRPC on 127.0.0.1: batches pipelined on one
//! stream arrive in order and are answered in order even when an early one waits longest for
//! durability; a peer that serves only the one-batch `Exchange` (a node from before the
//! stream) still gets everything; a peer that refuses the stream fails the publishes that
//! must arrive.

use crate::link_handler::{Applied, Inbound, LinkHandler};
use crate::link_service::LinkService;
use crate::pb;
use crate::pb::broker_link_server::{BrokerLink, BrokerLinkServer};
use crate::reply_stream::ReplyStream;
use crate::{LinkWake, Links, PeerChannels};
use bytes::Bytes;
use midge_codec::{Publish, QoS};
use midge_store::{MemStore, StateStore};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

/// Records the topics of the publishes it is handed, in order. The batch that carries
/// `slow` is made "durable" only after a while, so later batches are ready before it.
#[derive(Default)]
struct Recorder {
    topics: Mutex<Vec<String>>,
    /// Batches that carried publishes.
    batches: AtomicUsize,
    slow: Option<String>,
}

impl LinkHandler for Recorder {
    fn exchange(&self, _from: u64, batch: Inbound) -> Applied {
        let mut topics = self.topics.lock().unwrap();
        if !batch.publishes.is_empty() {
            self.batches.fetch_add(1, Ordering::Relaxed);
        }
        let mut slow = false;
        for (publish, _, _) in &batch.publishes {
            slow |= self.slow.as_deref() == Some(&*publish.topic);
            topics.push(publish.topic.to_string());
        }
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Vec::new()
        })
    }

    fn peer_reachable(&self, _node: u64, _reachable: bool) {}
}

fn links(node_id: u64) -> Links {
    paced_links(node_id, Duration::ZERO)
}

/// Links that send forwarded publishes at most once per `interval`.
fn paced_links(node_id: u64, interval: Duration) -> Links {
    let store: Arc<dyn StateStore> = Arc::new(MemStore::new());
    let (_, metrics) = tokio::sync::watch::channel(openraft::RaftMetrics::new_initial(node_id));
    Links::new(node_id, interval, PeerChannels::default(), &store, metrics)
}

fn publish(topic: String) -> Publish {
    Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: Arc::from(topic),
        packet_id: None,
        properties: Default::default(),
        payload: Bytes::from_static(b"p"),
    }
}

/// Serves `service` on a new 127.0.0.1 port; returns its address.
async fn serve<S: BrokerLink>(service: S) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(BrokerLinkServer::new(service))
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    addr
}

/// Node 1's links with a link to node 2 at `addr`.
fn sender(addr: &str) -> Links {
    paced_sender(addr, Duration::ZERO)
}

/// Node 1's links, sending publishes at most once per `interval`, with a link to node 2.
fn paced_sender(addr: &str, interval: Duration) -> Links {
    let links = paced_links(1, interval);
    links.set_peers(BTreeMap::from([(2, addr.to_string())]));
    links
}

/// Waits until `links`' link to node 2 has exchanged once.
async fn wait_up(links: &Links) {
    for _ in 0..500 {
        if links.stats().peers_up == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Node 2 recording what it is handed, and node 1's links to it (sending publishes at most
/// once per `interval`), once the link is up.
async fn recorded_pair(interval: Duration) -> (Links, Arc<Recorder>) {
    let receiver = links(2);
    let recorder = Arc::new(Recorder::default());
    receiver.set_handler(recorder.clone());
    let addr = serve(LinkService::new(receiver)).await;
    let links = paced_sender(&addr, interval);
    wait_up(&links).await;
    (links, recorder)
}

/// Forwards one QoS 1 publish to node 2 and wakes the link; returns its ticket.
fn forward_one(links: &Links, topic: &str) -> crate::Ticket {
    let mut wakes = Vec::new();
    let ticket = links
        .forward(
            2,
            publish(topic.to_string()),
            Vec::new(),
            0,
            true,
            &mut wakes,
        )
        .unwrap();
    wakes.into_iter().for_each(LinkWake::wake);
    ticket
}

/// Forwards `count` QoS 1 publishes `t/0`, `t/1`, ... to node 2; true if all were taken.
async fn forward_all(links: &Links, count: usize) -> bool {
    let mut tickets = Vec::new();
    let mut wakes = Vec::new();
    for i in 0..count {
        let p = publish(format!("t/{i}"));
        tickets.extend(links.forward(2, p, Vec::new(), 0, true, &mut wakes));
        if i % 100 == 0 {
            // Let the link send what is queued: several batches go out before any answer.
            wakes.drain(..).for_each(LinkWake::wake);
            tokio::task::yield_now().await;
        }
    }
    wakes.drain(..).for_each(LinkWake::wake);
    let mut all = true;
    for t in tickets {
        all &= t.wait().await;
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_arrive_and_are_answered_in_order() {
    let receiver = links(2);
    let recorder = Arc::new(Recorder {
        slow: Some("t/0".to_string()),
        ..Recorder::default()
    });
    receiver.set_handler(recorder.clone());
    let addr = serve(LinkService::new(receiver)).await;
    let links = sender(&addr);
    // The link starts up before the first forward is accepted.
    for _ in 0..500 {
        if links.stats().peers_up == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(forward_all(&links, 5000).await);
    // Pipelined: more than one batch.
    assert!(recorder.batches.load(Ordering::Relaxed) > 1);
    let topics = recorder.topics.lock().unwrap().clone();
    let expected: Vec<String> = (0..5000).map(|i| format!("t/{i}")).collect();
    assert_eq!(topics, expected);
    assert_eq!(links.stats().forwarded, 5000);
}

/// A node from before `ExchangeStream`: only `Exchange` is served.
struct UnaryOnly(LinkService);

#[tonic::async_trait]
impl BrokerLink for UnaryOnly {
    async fn exchange(
        &self,
        request: Request<pb::ExchangeRpc>,
    ) -> Result<Response<pb::ExchangeReply>, Status> {
        self.0.exchange(request).await
    }

    type ExchangeStreamStream = ReplyStream;

    async fn exchange_stream(
        &self,
        _request: Request<Streaming<pb::ExchangeRpc>>,
    ) -> Result<Response<ReplyStream>, Status> {
        Err(Status::unimplemented("no such method"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_stream_gets_one_batch_at_a_time() {
    let receiver = links(2);
    let recorder = Arc::new(Recorder::default());
    receiver.set_handler(recorder.clone());
    let addr = serve(UnaryOnly(LinkService::new(receiver))).await;
    let links = sender(&addr);
    for _ in 0..500 {
        if links.stats().peers_up == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(forward_all(&links, 2000).await);
    let topics = recorder.topics.lock().unwrap().clone();
    let expected: Vec<String> = (0..2000).map(|i| format!("t/{i}")).collect();
    assert_eq!(topics, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_a_peer_that_refuses_the_stream_fail() {
    // No handler: the peer's broker is "still starting", so it refuses every batch.
    let receiver = links(2);
    let addr = serve(LinkService::new(receiver)).await;
    let links = sender(&addr);
    let mut wakes = Vec::new();
    let ticket = links
        .forward(
            2,
            publish("t/x".to_string()),
            Vec::new(),
            0,
            true,
            &mut wakes,
        )
        .unwrap();
    wakes.into_iter().for_each(LinkWake::wake);
    assert!(!ticket.wait().await);
    assert!(links.stats().dropped >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_forwarded_before_the_wake_up_goes_as_one_batch() {
    let (links, recorder) = recorded_pair(Duration::ZERO).await;
    let mut tickets = Vec::new();
    let mut wakes = Vec::new();
    for i in 0..300 {
        let p = publish(format!("t/{i}"));
        tickets.extend(links.forward(2, p, Vec::new(), 0, true, &mut wakes));
    }
    // Only the first publish into the empty queue asks for a wake-up.
    assert_eq!(wakes.len(), 1);
    wakes.into_iter().for_each(LinkWake::wake);
    for t in tickets {
        assert!(t.wait().await);
    }
    assert_eq!(recorder.topics.lock().unwrap().len(), 300);
    assert_eq!(recorder.batches.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_after_a_paced_batch_gather_until_the_interval_passes() {
    let interval = Duration::from_secs(3);
    let (links, recorder) = recorded_pair(interval).await;
    // The first publish after a quiet spell goes at once, alone.
    let started = tokio::time::Instant::now();
    assert!(forward_one(&links, "t/a").wait().await);
    assert!(started.elapsed() < interval);
    assert_eq!(recorder.batches.load(Ordering::Relaxed), 1);
    // The next two, queued apart (the link has seen the first of them before the second is
    // queued), gather and go together once the interval has passed.
    let b = forward_one(&links, "t/b");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let c = forward_one(&links, "t/c");
    assert!(b.wait().await && c.wait().await);
    assert!(started.elapsed() >= interval);
    assert_eq!(recorder.batches.load(Ordering::Relaxed), 2);
    assert_eq!(*recorder.topics.lock().unwrap(), ["t/a", "t/b", "t/c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_goes_without_waiting_for_the_pace() {
    // An interval no test waits out.
    let (links, recorder) = recorded_pair(Duration::from_secs(1000)).await;
    assert!(forward_one(&links, "t/first").wait().await);
    // A full batch's worth, queued one by one with the link woken for each.
    let tickets: Vec<_> = (0..crate::batch_pace::FULL)
        .map(|i| forward_one(&links, &format!("t/{i}")))
        .collect();
    for t in tickets {
        assert!(t.wait().await);
    }
    assert_eq!(
        recorder.topics.lock().unwrap().len(),
        1 + crate::batch_pace::FULL
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_change_goes_at_once_and_takes_held_publishes_along() {
    let (links, recorder) = recorded_pair(Duration::from_secs(1000)).await;
    assert!(forward_one(&links, "t/first").wait().await);
    // Held by the pace...
    let held = forward_one(&links, "t/held");
    tokio::time::sleep(Duration::from_millis(20)).await;
    // ...until a new route (whose SUBACK waits for this peer) goes, and takes it along.
    for t in links.route_add("r/#".to_string()) {
        assert!(t.wait().await);
    }
    assert!(held.wait().await);
    assert_eq!(*recorder.topics.lock().unwrap(), ["t/first", "t/held"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_still_gathered_when_the_link_stops_fails() {
    let (links, recorder) = recorded_pair(Duration::from_secs(1000)).await;
    assert!(forward_one(&links, "t/first").wait().await);
    let held = forward_one(&links, "t/held");
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The peer leaves the cluster (its link stops) before the pace lets the publish go: the
    // publisher must not be acknowledged for a message the peer never took.
    links.set_peers(BTreeMap::new());
    assert!(!held.wait().await);
    assert_eq!(*recorder.topics.lock().unwrap(), ["t/first"]);
}

//! One node's broker link to one peer: a task that sends route changes, client-id claims and
//! forwarded publishes in batches, in the order they were queued, over one long-lived
//! `ExchangeStream` on the peer's shared gRPC channel. Up to `WINDOW` batches are in flight;
//! the peer applies them in order and answers each in order (with a peer that has no stream,
//! one `Exchange` RPC at a time). Publishes go at most once per the node's forward batch
//! interval unless a batch is full (`BatchPace`); anything else goes at once.
//!
//! The first batch, and the first after any failure or a `resync_routes` reply, carries the
//! whole route set. With nothing to send, an empty batch goes out every `HEARTBEAT`, so a
//! restarted peer asks for the routes within a second and a dead one is noticed. A batch not
//! answered within `RPC_TIMEOUT`, or a broken stream, fails every batch in flight. While the
//! peer is unreachable, queued items are dropped (their tickets complete, forwarded publishes
//! are counted as dropped) and the link retries with backoff; after `GRACE` of failures the
//! peer is lost: the Raft leader adopts its sessions and has the cluster release it (see
//! `Links::lost`), and only then does every node forget its routes.

use crate::batch_pace::BatchPace;
use crate::forwarded_batch::ForwardedBatch;
use crate::link_handler::LinkHandler;
use crate::link_queue::{LinkQueue, LinkWake};
use crate::link_stream::{exchange_once, LinkStream, Opened};
use crate::pb;
use crate::peer_channels::PeerChannels;
use crate::ticket::{Completion, Delivery};
use midge_codec::Publish;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Most publishes in one batch.
const MAX_BATCH: usize = 1024;
/// An idle link sends an empty batch this often.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Deadline of one exchange (and of opening the link's stream).
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Batches sent on a link's stream and not yet answered, at most.
const WINDOW: usize = 4;
/// How often a link checks its deadlines and whether a heartbeat is due.
const TICK: Duration = Duration::from_millis(250);
/// How long a peer may stay unreachable before it is lost.
pub(crate) const GRACE: Duration = Duration::from_secs(3);
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Publishes queued for one peer beyond which more are dropped (a peer that cannot keep up
/// must not exhaust this node's memory).
pub(crate) const MAX_QUEUED: usize = 100_000;

/// Counters shared by every link of a node.
#[derive(Debug, Default)]
pub(crate) struct LinkCounters {
    /// Publishes a peer acknowledged.
    pub(crate) forwarded: AtomicU64,
    /// Publishes dropped: the peer was unreachable or its queue was full.
    pub(crate) dropped: AtomicU64,
    /// Exchanges that failed.
    pub(crate) failures: AtomicU64,
    /// Batches answered.
    pub(crate) batches: AtomicU64,
}

/// Something queued for a peer.
#[derive(Debug)]
pub(crate) enum Item {
    /// A route added (`add`) or removed on this node.
    Route {
        route: String,
        add: bool,
        done: Option<Completion>,
    },
    /// A client connected (or is connecting) here; with `reply`, the peer hands over the
    /// client's session if it has it.
    Claim {
        claim: pb::Claim,
        done: Completion,
        reply: Option<oneshot::Sender<Vec<pb::Command>>>,
    },
    /// A publish for the peer's sessions and its members of `groups` (encoded by the link
    /// task, not under the broker lock that queued it).
    Publish {
        publish: Publish,
        groups: Vec<Arc<str>>,
        share_key: u64,
        done: Option<Delivery>,
    },
    /// Send the whole route set next (it was replaced).
    Resync,
    /// Completed once everything queued before it was exchanged (or the exchange failed).
    Barrier(Delivery),
}

/// Waits until `due` (forever if None: the caller disables the branch then).
async fn sleep_until_due(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Receives the round trip of each exchange that carried forwarded publishes.
pub type ForwardObserver = Box<dyn Fn(Duration) + Send + Sync>;

/// What the node shares with each of its links.
#[derive(Clone)]
pub(crate) struct LinkShared {
    pub(crate) node_id: u64,
    pub(crate) incarnation: u64,
    pub(crate) channels: PeerChannels,
    pub(crate) routes: Arc<Mutex<HashSet<String>>>,
    pub(crate) handler: Arc<OnceLock<Arc<dyn LinkHandler>>>,
    /// Told the round trip of every exchange that carried publishes (for a latency metric).
    pub(crate) forward_observer: Arc<OnceLock<ForwardObserver>>,
    pub(crate) counters: Arc<LinkCounters>,
    /// At most one batch of forwarded publishes per this interval to each peer (see
    /// [`BatchPace`]).
    pub(crate) forward_batch_interval: Duration,
    /// Per peer: (incarnation, last route batch) received from it.
    pub(crate) received: Arc<Mutex<HashMap<u64, (u64, u64)>>>,
    /// Lost peers (unreachable past `GRACE`, or removed from the group) not yet released,
    /// with the incarnation last received from each (0: none).
    pub(crate) lost: Arc<Mutex<HashMap<u64, u64>>>,
    /// Woken when a peer is lost.
    pub(crate) lost_changed: Arc<tokio::sync::Notify>,
}

impl LinkShared {
    /// The incarnation last received from peer `node`, if any.
    pub(crate) fn incarnation_of(&self, node: u64) -> Option<u64> {
        lock(&self.received).get(&node).map(|&(inc, _)| inc)
    }

    /// Marks peer `node` lost as start `incarnation` (the one it had when it went away; 0:
    /// unknown): forgets what it sent (its next batch must carry its routes whole). Its
    /// routes stay until the cluster releases it.
    pub(crate) fn mark_lost(&self, node: u64, incarnation: Option<u64>) {
        lock(&self.received).remove(&node);
        lock(&self.lost)
            .entry(node)
            .or_insert(incarnation.unwrap_or(0));
        self.lost_changed.notify_one();
    }
}

/// Locks `m`, recovering from a poisoned lock (the data are plain sets and maps).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handle of a running link; dropping it stops the task.
#[derive(Debug)]
pub(crate) struct PeerLink {
    pub(crate) addr: String,
    queue: Arc<LinkQueue>,
    queued: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
    /// Set by the first exchange that succeeds.
    confirmed: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PeerLink {
    /// Starts the link from this node to peer `to` at `addr`.
    pub(crate) fn start(shared: LinkShared, to: u64, addr: String) -> PeerLink {
        let queue = Arc::new(LinkQueue::default());
        let queued = Arc::new(AtomicUsize::new(0));
        // Up (not known to be down) from the start: what is queued before the first exchange
        // goes with it, and fails with it if the peer does not answer.
        let up = Arc::new(AtomicBool::new(true));
        let confirmed = Arc::new(AtomicBool::new(false));
        let task = LinkTask {
            shared,
            to,
            addr: addr.clone(),
            queue: queue.clone(),
            local: VecDeque::new(),
            queued: queued.clone(),
            up: up.clone(),
            confirmed: confirmed.clone(),
            seq: 0,
            needs_full: true,
            down_since: None,
            went_away_as: None,
            ever_up: false,
            gone_reported: false,
            backoff: BACKOFF_START,
            unary_noted: false,
        };
        PeerLink {
            addr,
            queue,
            queued,
            up,
            confirmed,
            task: tokio::spawn(task.run()),
        }
    }

    /// True unless the last exchange failed.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// True once an exchange succeeded and the last one did not fail (for metrics).
    pub(crate) fn is_confirmed_up(&self) -> bool {
        self.is_up() && self.confirmed.load(Ordering::Relaxed)
    }

    /// Queues `item` and wakes the link.
    pub(crate) fn send(&self, item: Item) {
        if let Some(wake) = self.push(item) {
            wake.wake();
        }
    }

    /// Queues `item`; returns the wake-up the link needs, for the caller to give once it has
    /// queued everything it is about to.
    pub(crate) fn push(&self, item: Item) -> Option<LinkWake> {
        if matches!(item, Item::Publish { .. }) {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        self.queue.push(item)
    }

    /// True if the peer has too many publishes queued to take another.
    pub(crate) fn is_full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= MAX_QUEUED
    }
}

/// The items of one exchange.
#[derive(Default)]
struct Batch {
    /// Last change per route (a route added and removed in one batch is removed).
    routes: HashMap<String, bool>,
    route_order: Vec<String>,
    claims: Vec<pb::Claim>,
    /// Who waits for a handed-over session, by client id.
    replies: Vec<(String, oneshot::Sender<Vec<pb::Command>>)>,
    publishes: ForwardedBatch,
    resync: bool,
    /// Items pushed, and how many of them were publishes (encoded or not).
    items: usize,
    publish_items: usize,
    /// Completed (dropped) once the exchange ends, answered or not.
    done: Vec<Completion>,
    /// Acknowledged publishes' completions: done when the peer answered, failed otherwise
    /// (dropped with the batch if the link stops first).
    must_arrive: Vec<Delivery>,
}

impl Batch {
    fn push(&mut self, item: Item) {
        self.items += 1;
        match item {
            Item::Route { route, add, done } => {
                if self.routes.insert(route.clone(), add).is_none() {
                    self.route_order.push(route);
                }
                self.done.extend(done);
            }
            Item::Claim { claim, done, reply } => {
                if let Some(reply) = reply {
                    self.replies.push((claim.client_id.clone(), reply));
                }
                self.claims.push(claim);
                self.done.push(done);
            }
            Item::Publish {
                publish,
                groups,
                share_key,
                done,
            } => {
                self.publish_items += 1;
                if self.publishes.push(publish, &groups, share_key) {
                    self.must_arrive.extend(done);
                } else {
                    // Not encodable: fails (dropped).
                    drop(done);
                }
            }
            Item::Resync => self.resync = true,
            Item::Barrier(done) => self.must_arrive.push(done),
        }
    }

    /// What waits for the answer to this batch, which carried `publishes`.
    fn into_sent(self, publishes: u64) -> Sent {
        Sent {
            replies: self.replies,
            done: self.done,
            must_arrive: self.must_arrive,
            publishes,
            at: Instant::now(),
        }
    }
}

/// An exchange sent and not yet answered.
struct Sent {
    replies: Vec<(String, oneshot::Sender<Vec<pb::Command>>)>,
    /// Completed once the exchange ends, answered or not.
    done: Vec<Completion>,
    /// Completed when answered, failed otherwise (also when dropped: the link stopped).
    must_arrive: Vec<Delivery>,
    publishes: u64,
    at: Instant,
}

struct LinkTask {
    shared: LinkShared,
    to: u64,
    addr: String,
    queue: Arc<LinkQueue>,
    /// Items taken from the queue and not yet batched.
    local: VecDeque<Item>,
    queued: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
    confirmed: Arc<AtomicBool>,
    /// Batches of this incarnation that carried route changes.
    seq: u64,
    needs_full: bool,
    /// When exchanges started failing (None: the last one was answered).
    down_since: Option<Instant>,
    /// The peer's start when it went away, for its release.
    went_away_as: Option<u64>,
    ever_up: bool,
    gone_reported: bool,
    backoff: Duration,
    /// The peer has no `ExchangeStream` (logged once).
    unary_noted: bool,
}

impl LinkTask {
    async fn run(mut self) {
        loop {
            if self.down_since.is_some() {
                self.drop_queued();
            }
            // Runs until an exchange fails (the peer is unreachable, refused a batch, or did
            // not answer); the task ends when its `PeerLink` is dropped.
            let error = match LinkStream::open(&self.shared.channels, &self.addr, RPC_TIMEOUT).await
            {
                Ok(Opened::Stream(stream)) => self.stream(*stream).await,
                Ok(Opened::Unary) => {
                    if !self.unary_noted {
                        self.unary_noted = true;
                        tracing::info!(
                            peer = self.to,
                            "the peer has no link stream; sending it one batch at a time"
                        );
                    }
                    self.unary().await
                }
                Err(error) => error,
            };
            self.failed(&error);
            tokio::time::sleep(self.backoff).await;
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The next queued item, if any.
    fn try_next(&mut self) -> Option<Item> {
        if self.local.is_empty() {
            self.queue.take_all(&mut self.local);
        }
        self.local.pop_front()
    }

    /// The next queued item, waiting for one (cancel-safe).
    async fn next(&mut self) -> Item {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            self.queue.ready().await;
        }
    }

    /// Sends batches on `stream` as items are queued and the pace allows (see
    /// [`BatchPace`]), up to `WINDOW` unanswered, until it fails. Every exchange in flight
    /// then fails with it, and so does what was gathered and not yet sent.
    async fn stream(&mut self, mut stream: LinkStream) -> String {
        let mut in_flight: VecDeque<Sent> = VecDeque::new();
        let mut pace = BatchPace::new(self.shared.forward_batch_interval);
        // Taken from the queue, not yet sent.
        let mut gathered = Batch::default();
        let mut last_sent = Instant::now();
        // One timer for deadlines and heartbeats, not one per batch.
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let error = loop {
            gathered = self.collect(gathered);
            // The whole route set goes out at once, whatever else is queued.
            let urgent = self.needs_full || gathered.items > gathered.publish_items;
            let now = tokio::time::Instant::now();
            if in_flight.len() < WINDOW && pace.may_send(gathered.publish_items, urgent, now) {
                pace.sent(gathered.publish_items, now);
                last_sent = Instant::now();
                match self.send(&stream, std::mem::take(&mut gathered)) {
                    Ok(sent) => in_flight.push_back(sent),
                    Err(error) => break error,
                }
                continue;
            }
            // Publishes gathered that only the pace holds back go when it is due.
            let due = pace
                .due()
                .filter(|_| gathered.publish_items > 0 && in_flight.len() < WINDOW);
            tokio::select! {
                reply = stream.reply() => match (reply, in_flight.pop_front()) {
                    (Ok(reply), Some(sent)) => self.answered(sent, reply),
                    (Ok(_), None) => break "an answer to no batch".to_string(),
                    (Err(error), sent) => {
                        if let Some(sent) = sent {
                            in_flight.push_front(sent);
                        }
                        break error;
                    }
                },
                // A full batch waits for the window only; what is still queued stays there.
                () = self.queue.ready(), if gathered.publish_items < MAX_BATCH => {}
                () = sleep_until_due(due), if due.is_some() => {}
                _ = tick.tick() => {
                    if let Some(oldest) = in_flight.front() {
                        if oldest.at.elapsed() >= RPC_TIMEOUT {
                            break "timed out".to_string();
                        }
                    } else if gathered.items == 0 && last_sent.elapsed() >= HEARTBEAT {
                        last_sent = Instant::now();
                        match self.send(&stream, Batch::default()) {
                            Ok(sent) => in_flight.push_back(sent),
                            Err(error) => break error,
                        }
                    }
                }
            }
        };
        let publishes = gathered.publishes.len() as u64;
        self.not_answered(gathered.into_sent(publishes));
        for sent in in_flight {
            self.not_answered(sent);
        }
        error
    }

    /// Sends one batch at a time with `Exchange`, until one fails.
    async fn unary(&mut self) -> String {
        loop {
            let mut batch = Batch::default();
            if !self.needs_full {
                if let Ok(item) = tokio::time::timeout(HEARTBEAT, self.next()).await {
                    batch.push(item);
                }
            }
            let batch = self.collect(batch);
            let (rpc, sent) = self.build(batch);
            match exchange_once(&self.shared.channels, &self.addr, rpc, RPC_TIMEOUT).await {
                Ok(reply) => self.answered(sent, reply),
                Err(error) => {
                    self.not_answered(sent);
                    return error;
                }
            }
        }
    }

    /// Adds what is queued to `batch` (up to `MAX_BATCH` publishes), and settles the
    /// queued count for the publishes it added.
    fn collect(&mut self, mut batch: Batch) -> Batch {
        let before = batch.publish_items;
        while batch.publish_items < MAX_BATCH {
            match self.try_next() {
                Some(item) => batch.push(item),
                None => break,
            }
        }
        self.queued
            .fetch_sub(batch.publish_items - before, Ordering::Relaxed);
        if batch.resync {
            self.needs_full = true;
        }
        batch
    }

    /// Sends `batch` on `stream`.
    fn send(&mut self, stream: &LinkStream, batch: Batch) -> Result<Sent, String> {
        let (rpc, sent) = self.build(batch);
        match stream.send(rpc) {
            Ok(()) => Ok(sent),
            Err(error) => {
                self.not_answered(sent);
                Err(error)
            }
        }
    }

    /// While the peer is unreachable, what was queued meanwhile is dropped; the routes go
    /// out whole with the next attempt.
    fn drop_queued(&mut self) {
        loop {
            let batch = self.collect(Batch::default());
            if batch.items == 0 {
                return;
            }
            self.not_answered(batch.into_sent(0));
        }
    }

    /// An exchange was answered.
    fn answered(&mut self, mut sent: Sent, reply: pb::ExchangeReply) {
        if sent.publishes > 0 {
            if let Some(observe) = self.shared.forward_observer.get() {
                observe(sent.at.elapsed());
            }
        }
        if self.gone_reported || !self.ever_up {
            // Reachable: not lost (an entry from before this link started, for a member
            // removed and added again, goes too).
            lock(&self.shared.lost).remove(&self.to);
        }
        if !self.ever_up {
            tracing::info!(peer = self.to, "broker link up");
            self.ever_up = true;
            self.confirmed.store(true, Ordering::Relaxed);
        } else if self.down_since.is_some() {
            tracing::info!(peer = self.to, "peer reachable again");
            if let Some(handler) = self.shared.handler.get() {
                handler.peer_reachable(self.to, true);
            }
        }
        self.down_since = None;
        self.up.store(true, Ordering::Relaxed);
        self.gone_reported = false;
        self.backoff = BACKOFF_START;
        if reply.resync_routes {
            self.needs_full = true;
        }
        let mut sessions = reply.sessions;
        for (client_id, waiter) in sent.replies.drain(..) {
            if let Some(pos) = sessions.iter().position(|s| s.client_id == client_id) {
                let _ = waiter.send(sessions.swap_remove(pos).ops);
            }
        }
        let counters = &self.shared.counters;
        counters
            .forwarded
            .fetch_add(sent.publishes, Ordering::Relaxed);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        sent.must_arrive.into_iter().for_each(Delivery::arrived);
        drop(sent.done);
    }

    /// An exchange was not answered (it failed, or was never sent): its publishes count as
    /// dropped and publishers whose messages did not arrive get no acknowledgement.
    fn not_answered(&self, sent: Sent) {
        self.shared
            .counters
            .dropped
            .fetch_add(sent.publishes, Ordering::Relaxed);
        // Dropped unanswered, they fail.
        drop(sent.must_arrive);
        // Route changes and claims complete anyway: nothing waits for an unreachable peer.
        drop(sent.done);
    }

    /// The connection to the peer failed.
    fn failed(&mut self, error: &str) {
        self.needs_full = true;
        self.shared
            .counters
            .failures
            .fetch_add(1, Ordering::Relaxed);
        let since = match self.down_since {
            Some(since) => since,
            None => {
                self.went_away_as = self.shared.incarnation_of(self.to);
                if let Some(handler) = self.shared.handler.get() {
                    handler.peer_reachable(self.to, false);
                }
                if self.ever_up {
                    tracing::warn!(peer = self.to, addr = %self.addr, %error,
                        "peer unreachable; dropping what is forwarded to it");
                }
                *self.down_since.insert(Instant::now())
            }
        };
        tracing::debug!(peer = self.to, %error, "exchange failed");
        self.up.store(false, Ordering::Relaxed);
        if !self.gone_reported && since.elapsed() >= GRACE {
            self.gone_reported = true;
            tracing::warn!(peer = self.to, grace = ?GRACE,
                "peer unreachable past the grace period; it is lost");
            self.shared.mark_lost(self.to, self.went_away_as);
        }
    }

    /// The exchange for `batch` (the whole route set when one is due), and what waits for
    /// its answer.
    fn build(&mut self, mut batch: Batch) -> (pb::ExchangeRpc, Sent) {
        let (full, add, remove) = if self.needs_full {
            self.needs_full = false;
            // Route changes queued before now are part of this set.
            let routes = lock(&self.shared.routes);
            (true, routes.iter().cloned().collect(), Vec::new())
        } else {
            let mut add = Vec::new();
            let mut remove = Vec::new();
            for route in batch.route_order.drain(..) {
                match batch.routes.get(&route) {
                    Some(true) => add.push(route),
                    _ => remove.push(route),
                }
            }
            (false, add, remove)
        };
        if full || !add.is_empty() || !remove.is_empty() {
            self.seq += 1;
        }
        let publishes = batch.publishes.len() as u64;
        let (publish_packets, groups) = batch.publishes.take();
        let rpc = pb::ExchangeRpc {
            from_node: self.shared.node_id,
            incarnation: self.shared.incarnation,
            routes_seq: self.seq,
            routes_full: full,
            routes_add: add,
            routes_remove: remove,
            claims: std::mem::take(&mut batch.claims),
            publish_packets,
            groups,
        };
        (rpc, batch.into_sent(publishes))
    }
}

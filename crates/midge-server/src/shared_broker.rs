//! The broker core behind a lock, plus the table that routes its actions to connections and
//! the queue that carries its durable changes to the committer.

use crate::commit_watch::CommitWatch;
use crate::committer::CommitQueue;
use crate::connection_handle::{ConnHandle, DrainNotice, Outbound, SendOutcome, WriterWake};
use crate::log_name::LogName;
use crate::staging::{Outlet, Staging};
use crate::waiting_reads::{WaitingRead, WaitingReads};
use midge_cluster::{Applied, Inbound, LinkHandler, LinkStats, LinkWake, Links, Remote, Ticket};
use midge_codec::{Connect, Packet, ReasonCode};
use midge_core::{
    Action, Broker, BrokerStats, ClusterSys, ConnId, EnhancedAuth, Event, IntMap, TrafficSys,
};
use parking_lot::{Mutex, MutexGuard};
use prometheus::local::LocalHistogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

/// How the core answered a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectOutcome {
    /// The session is up, under `client_id` (the core's copy; one it assigned if the client
    /// sent an empty id).
    Accepted { client_id: Arc<str> },
    /// The core refused it (its CONNACK carried `reason`) and closed the connection.
    Refused { reason: ReasonCode },
    /// The server is shutting down; the connection was not registered.
    ShuttingDown,
}

/// The one broker of this process, shared by every connection task and the tick task.
///
/// All access goes through short, synchronous critical sections: lock, feed events to the
/// core, hand each resulting action to its connection's queue (non-blocking), unlock. Actions
/// are dispatched while the lock is still held so that two events' packets to the same
/// connection can never be queued out of order. The lock is never held across an `.await`.
///
/// With storage, the `Persist` ops of one critical section form one batch, handed to the
/// committer when the section ends; a `SendDurable` whose batch (or an earlier one) is not
/// committed yet is queued behind an `Outbound::WaitFor` marker, so the connection's writer
/// holds it, and everything after it, until the commit (see `ConnWriter::task`).
pub(crate) struct SharedBroker {
    state: Mutex<State>,
    /// The committer's progress (`None` without storage), outside the lock: every connection
    /// gets a copy when it starts and when it leaves the dormant pool.
    commit_watch: Option<CommitWatch>,
    next_conn_id: AtomicU64,
    /// Reads left for whoever holds `state` (see [`SharedBroker::packets`]), in the order
    /// they were left.
    waiting: WaitingReads,
}

struct State {
    broker: Broker,
    /// Connections the core knows: inserted before `Event::Connect`, removed on
    /// `Action::Close` or when the connection ends. Membership is how we tell whether the core
    /// still expects an `Event::Closed` for a connection.
    conns: IntMap<ConnId, ConnHandle>,
    /// Reused for every event so dispatch does not allocate.
    actions: Vec<Action>,
    shutting_down: bool,
    /// Durable changes on their way to the committer (`None` without storage).
    commits: Option<CommitQueue>,
    /// The `SharedBroker` this state lives in, for writers reporting `Event::Drained`.
    me: Weak<SharedBroker>,
    /// QoS 0 publishes dropped by the slow-reader guard (`limits.max_pending_bytes`).
    slow_reader_dropped: u64,
    /// The links to peers (`None` without storage, which is what runs the cluster).
    links: Option<Links>,
    /// This node's Raft id (0 without a cluster).
    node_id: u64,
    /// Requests to peers made by the current `handle` call (new routes, a claim, QoS >= 1
    /// forwards). The connection whose event it is (`origin`) gets nothing more from this
    /// call until they are answered: its SUBACK, CONNACK or PUBACK waits for them.
    tickets: Vec<Ticket>,
    origin: Option<ConnId>,
    /// While set (`SharedBroker::packets`), what the core sends to connections is staged
    /// per connection in `staging` and queued when the whole read is handled (one lock per
    /// connection), and the wake-ups writers and peer links need collect here.
    deferred_wakes: Option<Wakes>,
    /// Empty but for the duration of a `SharedBroker::packets` call; its buffers are kept.
    staging: Staging,
    /// `midge_publish_latency_seconds` for reads left for the lock holder, added to the
    /// shared histogram on every tick.
    waited_latency: Option<LocalHistogram>,
}

/// The counters of one metrics scrape or `$SYS` round, read under one lock acquisition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatsSnapshot {
    /// The core's counters.
    pub(crate) broker: BrokerStats,
    /// QoS 0 publishes dropped because their client read too slowly.
    pub(crate) slow_reader_dropped: u64,
}

/// The core's clock. `tokio::time` so tests that pause time move the broker's timers too.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl SharedBroker {
    /// Wraps `broker` (fresh, or restored from storage). `commits` is where its durable
    /// changes go; it must be given exactly when the broker was configured `durable`.
    pub(crate) fn new(broker: Broker, commits: Option<CommitQueue>) -> Arc<SharedBroker> {
        let commit_watch = commits.as_ref().map(CommitQueue::watch);
        Arc::new_cyclic(|me| SharedBroker {
            commit_watch,
            state: Mutex::new(State {
                broker,
                conns: IntMap::default(),
                actions: Vec::new(),
                shutting_down: false,
                commits,
                me: me.clone(),
                slow_reader_dropped: 0,
                links: None,
                node_id: 0,
                tickets: Vec::new(),
                origin: None,
                deferred_wakes: None,
                staging: Staging::default(),
                waited_latency: None,
            }),
            next_conn_id: AtomicU64::new(1),
            waiting: WaitingReads::default(),
        })
    }

    /// Applies durable changes another node's broker decided and the cluster committed
    /// (retained messages, session owners, released nodes), under one lock acquisition.
    pub(crate) fn apply_replicated(&self, changes: Vec<Remote>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        for change in changes {
            match change {
                Remote::Retained(op) => state.broker.apply_replicated(op),
                Remote::SessionOwned { client_id, owner } => {
                    // Another node wrote this session: an offline copy here is stale (a
                    // survivor adopted it while this node was cut off). A connected one is
                    // kept: it may be a session just handed over here, older news arriving
                    // late; a moved client is told through its claim instead.
                    if owner != 0
                        && owner != state.node_id
                        && state.broker.has_offline_session(&client_id)
                    {
                        tracing::info!(
                            "The session of {client_id} is owned by node {owner} now; letting go."
                        );
                        state.handle(Event::Claimed {
                            client_id,
                            clean_start: false,
                            persistent: true,
                        });
                    }
                }
                Remote::NodeReleased { node, incarnation } => {
                    let forget = state
                        .links
                        .as_ref()
                        .is_some_and(|links| links.released(node, incarnation));
                    if forget {
                        tracing::info!(
                            "The cluster released node {node}, which was lost; forgetting its routes."
                        );
                        state.handle(Event::PeerGone { node });
                    }
                }
            }
        }
        state.flush_commits();
    }

    /// Connects the broker to its peers: they get its routes, and what they send is handled
    /// by it. Call once, before any client connects.
    pub(crate) fn attach_links(self: &Arc<Self>, links: Links) {
        let mut state = self.lock();
        links.set_routes(state.broker.take_routes());
        state.node_id = links.node_id();
        links.set_handler(Arc::new(PeerHandler {
            broker: Arc::downgrade(self),
        }));
        state.links = Some(links);
    }

    /// Applies a batch from peer `from` under one lock acquisition; returns the sessions it
    /// asked to have handed over (as ops) and the durable batch to wait for before the peer
    /// may acknowledge its publishers or adopt those sessions, if any.
    pub(crate) fn exchange(&self, from: u64, batch: Inbound) -> Exchanged {
        let mut guard = self.lock();
        // As for a client's read: writers are woken once the whole batch is routed.
        let deferring = DeferWakes::start(&mut guard);
        let state = &mut *deferring.0;
        if let Some(routes) = batch.routes {
            state.handle(Event::PeerRoutes {
                node: from,
                full: routes.full,
                add: routes.add,
                remove: routes.remove,
            });
        }
        let mut handed = Vec::new();
        for claim in batch.claims {
            if claim.hand_off {
                state.origin = None;
                let ops = state
                    .broker
                    .hand_off(now(), &claim.client_id, &mut state.actions);
                state.dispatch();
                if let Some(ops) = ops {
                    tracing::info!(
                        "Handing the session of {} over to node {from}.",
                        claim.client_id
                    );
                    handed.push((Arc::from(claim.client_id), ops));
                }
            } else {
                state.handle(Event::Claimed {
                    client_id: claim.client_id,
                    clean_start: claim.clean_start,
                    persistent: claim.persistent,
                });
            }
        }
        for (publish, groups, share_key) in batch.publishes {
            state.handle(Event::Forwarded {
                publish,
                groups,
                share_key,
            });
        }
        let wakes = deferring.finish();
        guard.flush_commits();
        let wait = guard
            .commits
            .as_ref()
            .and_then(|c| Some((c.hold_for()?, c.watch())));
        drop(guard);
        wakes.wake();
        Exchanged { handed, wait }
    }

    /// Before the core sees a CONNECT that resumes a session (clean start 0) it does not
    /// have: takes the session over from the peer that has it, or from the store if that
    /// peer is gone, so the client resumes it here.
    pub(crate) async fn fetch_session(&self, connect: &Connect) {
        if connect.clean_start || connect.client_id.is_empty() {
            return;
        }
        let links = {
            let state = self.lock();
            if state.broker.has_session(&connect.client_id) {
                return;
            }
            match &state.links {
                Some(links) => links.clone(),
                None => return,
            }
        };
        let Some(session) = links
            .take_session(&connect.client_id, crate::storage::wall_clock())
            .await
        else {
            return;
        };
        let mut state = self.lock();
        if state.broker.adopt(now(), session) {
            tracing::info!(
                "Took over the session of {} from another node.",
                connect.client_id
            );
        }
    }

    /// Adopts the persistent sessions of lost node `node` (this node leads the Raft group):
    /// messages for them are queued here from now on and the wills of clients that were
    /// connected there are published. Returns the commit to wait for, if any (their routes
    /// are queued on the links; `Links::barrier` waits for them).
    pub(crate) fn adopt_lost(
        &self,
        node: u64,
        sessions: Vec<midge_core::RestoredSession>,
    ) -> Option<(u64, CommitWatch)> {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.origin = None;
        let adopted = state
            .broker
            .adopt_orphans(now(), sessions, &mut state.actions);
        state.dispatch();
        state.flush_commits();
        tracing::warn!("Adopted {adopted} persistent session(s) of node {node}, which is lost.");
        state
            .commits
            .as_ref()
            .and_then(|c| Some((c.hold_for()?, c.watch())))
    }

    /// This node's connected clients (one lock acquisition; for the admin API).
    pub(crate) fn clients(&self) -> Vec<midge_core::ClientInfo> {
        self.lock().broker.clients()
    }

    /// Disconnects `client_id` with v5 0x98 Administrative action; false if it is not
    /// connected here.
    pub(crate) fn kick(&self, client_id: &str) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.origin = None;
        let kicked = state.broker.kick(now(), client_id, &mut state.actions);
        state.dispatch();
        state.flush_commits();
        kicked
    }

    /// The links' counters (`None` without a cluster).
    pub(crate) fn link_stats(&self) -> Option<LinkStats> {
        self.lock().links.as_ref().map(Links::stats)
    }

    /// The committer's progress, for a new connection's writer (`None` without storage).
    pub(crate) fn commit_watch(&self) -> Option<CommitWatch> {
        self.commit_watch.clone()
    }

    /// A connection id never used before in this process.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers `handle` as `conn` and hands the core its CONNECT, or, with `refused`, the
    /// server's refusal of it (the core answers with the CONNACK of the client's version).
    pub(crate) fn connect(
        &self,
        conn: ConnId,
        handle: ConnHandle,
        connect: Box<Connect>,
        refused: Option<ReasonCode>,
        auth: Option<EnhancedAuth>,
    ) -> ConnectOutcome {
        let mut guard = self.lock();
        let state = &mut *guard;
        if state.shutting_down {
            return ConnectOutcome::ShuttingDown;
        }
        state.conns.insert(conn, handle);
        let event = match refused {
            Some(reason) => Event::Refuse {
                conn,
                connect,
                reason,
            },
            None => Event::Connect {
                conn,
                connect,
                auth,
            },
        };
        state.broker.handle(now(), event, &mut state.actions);
        state.origin = Some(conn);
        let mut reason = ReasonCode::Success;
        for action in &state.actions {
            if let Action::Send {
                conn: to,
                packet: Packet::ConnAck(ack),
            }
            | Action::SendDurable {
                conn: to,
                packet: Packet::ConnAck(ack),
            } = action
            {
                if *to == conn {
                    reason = ack.reason;
                }
            }
        }
        state.dispatch();
        state.flush_commits();
        let client_id = state.broker.client_id_shared(conn);
        match client_id {
            Some(client_id) if state.conns.contains_key(&conn) && !reason.is_error() => {
                ConnectOutcome::Accepted { client_id }
            }
            _ => ConnectOutcome::Refused {
                reason: if reason.is_error() {
                    reason
                } else {
                    ReasonCode::UnspecifiedError
                },
            },
        }
    }

    /// Hands the core a batch of packets from `conn` under one lock acquisition, draining
    /// `packets`. Packets after one that made the core close the connection are discarded.
    ///
    /// If another task holds the lock, the read is left for it (at most 64 reads wait so),
    /// and this task goes back to its other work instead of blocking its thread: a worker
    /// thread waiting for the lock runs no writer meanwhile, which is most of what a
    /// fan-out's second core has to do. Every lock holder handles the reads left before
    /// anything else, so one connection's reads keep their order, and looks again after
    /// letting go, so none is left behind.
    ///
    /// Returns true if the read was handled before returning; a read left for the lock holder
    /// is counted in `midge_publish_latency_seconds` by the task that handles it, from
    /// `started` (`None`: the read has no PUBLISH to time).
    pub(crate) fn packets(
        &self,
        conn: ConnId,
        packets: &mut Vec<Packet>,
        started: Option<Instant>,
    ) -> bool {
        let guard = match self.state.try_lock() {
            Some(guard) => guard,
            None => {
                if self.waiting.leave(conn, packets, started) {
                    self.after_unlock();
                    return false;
                }
                self.state.lock()
            }
        };
        let mut guard = self.held(guard);
        // Writers are woken once the whole read is routed: a subscriber's writer then finds
        // every message of the burst queued and writes them with one syscall, instead of
        // waking for the first and racing the dispatch for the rest.
        let deferring = DeferWakes::start(&mut guard);
        deferring.0.handle_read(now(), conn, packets.drain(..));
        let wakes = deferring.finish();
        // One batch for the whole read: a client pipelining publishes costs one proposal.
        guard.flush_commits();
        guard.wakes.absorb(wakes);
        true
    }

    /// Where reads left for the lock holder are timed (`midge_publish_latency_seconds`).
    pub(crate) fn set_publish_latency(&self, histogram: &prometheus::Histogram) {
        self.lock().waited_latency = Some(histogram.local());
    }

    /// Locks the broker, first handling the reads left while it was busy.
    fn lock(&self) -> Held<'_> {
        let guard = self.state.lock();
        self.held(guard)
    }

    fn held<'a>(&'a self, guard: MutexGuard<'a, State>) -> Held<'a> {
        let mut held = Held {
            shared: self,
            guard: Some(guard),
            wakes: Wakes::default(),
        };
        if self.waiting.any() {
            held.wakes = self.handle_waiting(&mut held);
        }
        held
    }

    /// Handles every read left so far, as one batch.
    fn handle_waiting(&self, state: &mut State) -> Wakes {
        let reads = self.waiting.take();
        let timing = state.waited_latency.is_some();
        let mut timed = Vec::new();
        let deferring = DeferWakes::start(state);
        // One clock read for the batch: in a QoS 1 fan-out it is up to `MAX_WAITING` reads of
        // one acknowledgement each, and a read per packet was 3% of the broker's time.
        let now = now();
        for WaitingRead {
            conn,
            packets,
            started,
        } in reads
        {
            if let Some(started) = started.filter(|_| timing) {
                let publishes = packets
                    .iter()
                    .filter(|p| matches!(p, Packet::Publish(_)))
                    .count();
                timed.push((publishes, started));
            }
            deferring.0.handle_read(now, conn, packets);
        }
        let wakes = deferring.finish();
        state.flush_commits();
        if let Some(histogram) = &state.waited_latency {
            for (publishes, started) in timed {
                let seconds = started.elapsed().as_secs_f64();
                (0..publishes).for_each(|_| histogram.observe(seconds));
            }
        }
        wakes
    }

    /// After letting go of the lock: handles reads left meanwhile, unless another task took
    /// the lock (it will). A reader leaves its read and then calls this too; with the fence
    /// on both sides, either the reader sees the lock free or the holder sees the read.
    fn after_unlock(&self) {
        loop {
            if !self.waiting.any_after_unlock() {
                return;
            }
            let Some(mut guard) = self.state.try_lock() else {
                return;
            };
            let wakes = self.handle_waiting(&mut guard);
            drop(guard);
            wakes.wake();
        }
    }

    /// The connection ended on our side (EOF, I/O error, decode error, writer gone). Tells the
    /// core unless it had already closed the connection itself.
    pub(crate) fn closed(&self, conn: ConnId) {
        let mut guard = self.lock();
        if guard.conns.remove(&conn).is_some() {
            guard.handle(Event::Closed { conn });
            guard.flush_commits();
        }
    }

    /// `conn`'s writer wrote everything sent before the core's `NotifyDrained`.
    pub(crate) fn drained(&self, conn: ConnId) {
        let mut guard = self.lock();
        if guard.conns.contains_key(&conn) {
            guard.handle(Event::Drained { conn });
            guard.flush_commits();
        }
    }

    /// Drives the core's timers; `cluster` is the view `$SYS/cluster/...` reports.
    pub(crate) fn tick(&self, cluster: Option<ClusterSys>, traffic: TrafficSys) {
        let mut guard = self.lock();
        guard.broker.set_traffic_sys(traffic);
        if let Some(cluster) = cluster {
            guard.broker.set_cluster_sys(cluster);
        }
        guard.handle(Event::Tick);
        guard.flush_commits();
        if let Some(histogram) = &guard.waited_latency {
            histogram.flush();
        }
    }

    /// Tells the core the server is going away (v5 clients get DISCONNECT 0x8B and every
    /// connection is closed), and refuses later CONNECTs.
    pub(crate) fn shutdown(&self) {
        let mut guard = self.lock();
        guard.shutting_down = true;
        guard.handle(Event::Shutdown);
        guard.flush_commits();
    }

    /// Hands the last batch to the committer and closes its queue, so the committer ends once
    /// everything is committed. Called after the connections are drained at shutdown; changes
    /// the core makes later (none are expected) are dropped with a warning.
    pub(crate) fn close_commits(&self) {
        if let Some(commits) = self.lock().commits.as_mut() {
            commits.close();
        }
    }

    /// Installs the access policy (`None`: everything allowed) for every check from now on.
    pub(crate) fn set_authorizer(&self, authorizer: Option<Arc<dyn midge_core::Authorizer>>) {
        self.lock().broker.set_authorizer(authorizer);
    }

    /// The counters now (one lock acquisition; for metrics scrapes, not per message).
    pub(crate) fn stats(&self) -> StatsSnapshot {
        let guard = self.lock();
        StatsSnapshot {
            broker: guard.broker.stats(),
            slow_reader_dropped: guard.slow_reader_dropped,
        }
    }

    /// True once [`SharedBroker::shutdown`] ran.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.lock().shutting_down
    }
}

impl State {
    fn handle(&mut self, event: Event) {
        self.handle_at(now(), event);
    }

    /// [`State::handle`] at a time the caller read: one clock read serves a whole batch.
    fn handle_at(&mut self, now: Instant, event: Event) {
        self.origin = match &event {
            Event::Packet { conn, .. } => Some(*conn),
            _ => None,
        };
        self.broker.handle(now, event, &mut self.actions);
        self.dispatch();
    }

    /// Hands the core one read of `conn`'s, packet by packet, all at `now`; packets after one
    /// that made the core close the connection are discarded.
    fn handle_read(
        &mut self,
        now: Instant,
        conn: ConnId,
        packets: impl IntoIterator<Item = Packet>,
    ) {
        for packet in packets {
            if !self.conns.contains_key(&conn) {
                break;
            }
            self.handle_at(now, Event::Packet { conn, packet });
        }
    }

    /// Carries out the queued actions in order. Actions for connections that are already gone
    /// are dropped: the core may still address a connection whose socket just failed.
    fn dispatch(&mut self) {
        self.tickets.clear();
        for action in self.actions.drain(..) {
            match action {
                Action::RouteAdd { route } => {
                    if let Some(links) = &self.links {
                        self.tickets.extend(links.route_add(route));
                    }
                }
                Action::RouteRemove { route } => {
                    if let Some(links) = &self.links {
                        links.route_remove(route);
                    }
                }
                Action::Claim {
                    client_id,
                    clean_start,
                    persistent,
                } => {
                    if let Some(links) = &self.links {
                        self.tickets
                            .extend(links.claim(&client_id, clean_start, persistent));
                    }
                }
                Action::Forward {
                    node,
                    publish,
                    groups,
                    share_key,
                } => {
                    if let Some(links) = &self.links {
                        let ack = publish.qos > midge_codec::QoS::AtMostOnce;
                        let mut now = Vec::new();
                        let wakes = match self.deferred_wakes.as_mut() {
                            Some(deferred) => &mut deferred.links,
                            None => &mut now,
                        };
                        self.tickets
                            .extend(links.forward(node, publish, groups, share_key, ack, wakes));
                        now.into_iter().for_each(LinkWake::wake);
                    }
                }
                Action::Persist(op) => match self.commits.as_mut() {
                    Some(commits) => commits.persist(*op),
                    // The core only emits these with `BrokerConfig::durable`, which is set
                    // exactly when there is a commit queue.
                    None => tracing::debug!("Ignoring a durable change without storage."),
                },
                Action::Send { conn, packet } => {
                    if let Some(handle) = self.conns.get(&conn) {
                        let mut out = Outlet::new(
                            conn,
                            handle,
                            self.deferred_wakes.is_some().then_some(&mut self.staging),
                        );
                        if Some(conn) == self.origin && !self.tickets.is_empty() {
                            out.mark(Outbound::Gate(std::mem::take(&mut self.tickets)));
                        }
                        self.slow_reader_dropped +=
                            send(&mut out, handle, packet, (&self.broker, conn));
                    }
                }
                Action::SendDurable { conn, packet } => {
                    let Some(handle) = self.conns.get(&conn) else {
                        continue;
                    };
                    let mut out = Outlet::new(
                        conn,
                        handle,
                        self.deferred_wakes.is_some().then_some(&mut self.staging),
                    );
                    // It covers every op persisted so far, including this section's.
                    if let Some(seq) = self.commits.as_ref().and_then(CommitQueue::hold_for) {
                        out.mark(Outbound::WaitFor(seq));
                    }
                    if Some(conn) == self.origin && !self.tickets.is_empty() {
                        out.mark(Outbound::Gate(std::mem::take(&mut self.tickets)));
                    }
                    self.slow_reader_dropped +=
                        send(&mut out, handle, packet, (&self.broker, conn));
                }
                Action::NotifyDrained { conn } => {
                    if let Some(handle) = self.conns.get(&conn) {
                        let me = self.me.clone();
                        Outlet::new(
                            conn,
                            handle,
                            self.deferred_wakes.is_some().then_some(&mut self.staging),
                        )
                        .mark(Outbound::Drained(DrainNotice::new(
                            move || {
                                if let Some(broker) = me.upgrade() {
                                    broker.drained(conn);
                                }
                            },
                        )));
                    }
                }
                Action::Close { conn } => {
                    if let Some(handle) = self.conns.remove(&conn) {
                        Outlet::new(
                            conn,
                            &handle,
                            self.deferred_wakes.is_some().then_some(&mut self.staging),
                        )
                        .close();
                    }
                }
            }
        }
    }

    /// Ends the critical section's batch of durable changes.
    fn flush_commits(&mut self) {
        if let Some(commits) = self.commits.as_mut() {
            commits.flush();
        }
    }
}

/// Stages what is sent to connections and defers waking writers while it lives
/// ([`SharedBroker::packets`]). Should handling a packet panic, dropping it still queues what
/// was staged, wakes every writer that was queued for and ends the deferral, so later events
/// are not left queued without a wake-up.
/// The broker's lock, held: wakes writers and handles reads left meanwhile once let go.
struct Held<'a> {
    shared: &'a SharedBroker,
    guard: Option<MutexGuard<'a, State>>,
    /// Wake-ups due once the lock is let go.
    wakes: Wakes,
}

impl std::ops::Deref for Held<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        // Only `Drop` takes the guard.
        self.guard.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        std::mem::take(&mut self.wakes).wake();
        self.shared.after_unlock();
    }
}

struct DeferWakes<'a>(&'a mut State);

impl<'a> DeferWakes<'a> {
    fn start(state: &'a mut State) -> Self {
        state.deferred_wakes = Some(Wakes::default());
        DeferWakes(state)
    }

    /// Ends the deferral: queues what was staged, and returns the wake-ups due, for after
    /// the lock is let go.
    fn finish(self) -> Wakes {
        let mut wakes = self.0.deferred_wakes.take().unwrap_or_default();
        let state = &mut *self.0;
        state.staging.flush(&state.conns, &mut wakes.writers);
        wakes
    }
}

impl Drop for DeferWakes<'_> {
    fn drop(&mut self) {
        if let Some(mut wakes) = self.0.deferred_wakes.take() {
            let state = &mut *self.0;
            state.staging.flush(&state.conns, &mut wakes.writers);
            wakes.wake();
        }
    }
}

/// Wake-ups put off until a batch is routed: subscribers' writers and peers' links.
#[derive(Default)]
struct Wakes {
    writers: Vec<WriterWake>,
    links: Vec<LinkWake>,
}

impl Wakes {
    /// Adds `other`'s wake-ups to these.
    fn absorb(&mut self, other: Wakes) {
        if self.writers.is_empty() && self.links.is_empty() {
            *self = other;
        } else {
            self.writers.extend(other.writers);
            self.links.extend(other.links);
        }
    }

    fn wake(self) {
        self.writers.into_iter().for_each(WriterWake::wake);
        self.links.into_iter().for_each(LinkWake::wake);
    }
}

/// What [`SharedBroker::exchange`] produced.
pub(crate) struct Exchanged {
    /// Sessions handed over, as the ops that rebuild them.
    pub(crate) handed: Vec<(Arc<str>, Vec<midge_core::DurableOp>)>,
    /// The durable batch to wait for first, with the watch to wait on.
    pub(crate) wait: Option<(u64, CommitWatch)>,
}

/// Hands what peers send to the broker (the links hold it until the broker is attached).
struct PeerHandler {
    broker: Weak<SharedBroker>,
}

impl LinkHandler for PeerHandler {
    fn exchange(&self, from: u64, batch: Inbound) -> Applied {
        let Some(broker) = self.broker.upgrade() else {
            return Box::pin(std::future::ready(Vec::new()));
        };
        let Exchanged { handed, wait } = broker.exchange(from, batch);
        let Some((seq, mut watch)) = wait else {
            return Box::pin(std::future::ready(handed));
        };
        Box::pin(async move {
            // The peer is answered either way (its tickets complete on failure too); what
            // this node could not make durable is in its log.
            if let Err(failed) = watch.wait(seq).await {
                tracing::warn!(
                    peer = from,
                    ?failed,
                    "forwarded messages were not made durable"
                );
            }
            handed
        })
    }

    fn peer_reachable(&self, node: u64, reachable: bool) {
        if let Some(broker) = self.broker.upgrade() {
            let mut state = broker.lock();
            state.handle(Event::PeerReachable { node, reachable });
            state.flush_commits();
        }
    }
}

/// Queues `packet` for a connection, warning once if its slow-reader guard starts dropping.
/// Returns 1 when the guard dropped it, else 0 (for the counter).
/// `client` (the core and the connection) names the client in the warning.
fn send(
    out: &mut Outlet<'_>,
    handle: &ConnHandle,
    packet: Packet,
    (broker, conn): (&Broker, ConnId),
) -> u64 {
    if out.send(packet) != SendOutcome::DroppedSlowReader {
        return 0;
    }
    if handle.dropped_qos0() == 1 {
        // Once per connection: a warning per message would flood the log exactly when the
        // broker is under pressure.
        tracing::warn!(
            "Client {} is not reading fast enough; dropping QoS 0 messages to it while its \
             backlog is over limits.max_pending_bytes.",
            LogName(broker.client_id(conn).unwrap_or_default())
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::{AckKind, ProtocolVersion, Publish, QoS};
    use midge_core::BrokerConfig;

    fn publish(id: u16) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "t".into(),
            packet_id: Some(id),
            properties: Default::default(),
            payload: Bytes::new(),
        })
    }

    /// A v3.1.1 client connected to `broker`: its id and what is queued for it.
    fn connected(broker: &SharedBroker) -> (ConnId, crate::connection_handle::Outbox) {
        let (handle, outbox) = ConnHandle::new(1 << 20, None);
        let conn = broker.next_conn_id();
        let connect = Connect {
            protocol: ProtocolVersion::V3_1_1,
            clean_start: true,
            keep_alive: 0,
            client_id: "c1".into(),
            will: None,
            username: None,
            password: None,
            properties: Default::default(),
        };
        let outcome = broker.connect(conn, handle, Box::new(connect), None, None);
        assert_eq!(
            outcome,
            ConnectOutcome::Accepted {
                client_id: "c1".into()
            }
        );
        (conn, outbox)
    }

    /// The packet ids of the PUBACKs queued for the connection so far.
    fn pubacks(outbox: &mut crate::connection_handle::Outbox) -> Vec<u16> {
        std::iter::from_fn(|| outbox.rx.try_recv())
            .filter_map(|item| match item {
                Outbound::Packet(Packet::Ack(a)) if a.kind == AckKind::PubAck => Some(a.packet_id),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn reads_left_while_the_lock_is_busy_are_handled_in_order_once_it_is_let_go() {
        let broker = SharedBroker::new(Broker::new(BrokerConfig::default(), now()), None);
        let (conn, mut outbox) = connected(&broker);
        let latency =
            prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("l", "l")).unwrap();
        broker.set_publish_latency(&latency);
        let held = broker.lock();
        // Another thread's reads return at once instead of waiting for the lock, and say
        // they were left (so the reader does not time them).
        std::thread::scope(|s| {
            s.spawn(|| {
                for id in [1, 2, 3] {
                    let mut read = vec![publish(id)];
                    assert!(!broker.packets(conn, &mut read, Some(Instant::now())));
                    assert!(read.is_empty());
                }
            });
        });
        assert_eq!(broker.waiting.len(), 3);
        assert_eq!(pubacks(&mut outbox), Vec::<u16>::new());
        // Letting go handles them, in the order they were read (MQTT-4.6.0-2: PUBACKs in
        // the order the PUBLISHes were received).
        drop(held);
        assert_eq!(pubacks(&mut outbox), vec![1, 2, 3]);
        assert_eq!(broker.waiting.len(), 0);
        // A read made with the lock free is handled at once, as before, and left to the
        // reader to time.
        assert!(broker.packets(conn, &mut vec![publish(4)], Some(Instant::now())));
        assert_eq!(pubacks(&mut outbox), vec![4]);
        // The task that handled the three left reads timed their publishes.
        if let Some(local) = &broker.lock().waited_latency {
            local.flush();
        }
        assert_eq!(latency.get_sample_count(), 3);
    }

    #[tokio::test]
    async fn a_reader_finding_too_many_reads_left_waits_for_the_lock() {
        let broker = SharedBroker::new(Broker::new(BrokerConfig::default(), now()), None);
        let (conn, mut outbox) = connected(&broker);
        let count = crate::waiting_reads::MAX_WAITING as u16 + 1;
        let held = broker.lock();
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                for id in 1..=count {
                    broker.packets(conn, &mut vec![publish(id)], Some(Instant::now()));
                }
            });
            // The last read blocks until the lock is let go, and is handled after the others.
            while broker.waiting.len() < crate::waiting_reads::MAX_WAITING {
                std::thread::yield_now();
            }
            assert!(!reader.is_finished());
            drop(held);
        });
        assert_eq!(pubacks(&mut outbox), (1..=count).collect::<Vec<_>>());
    }
}

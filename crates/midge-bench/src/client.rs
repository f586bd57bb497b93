//! One client task from start to end: connect, then publish, subscribe or idle.

use crate::clock::{now_ns, ns_to_us};
use crate::connection::{ClientOptions, ConnError, Connection};
use crate::dialer::Dialer;
use crate::phase::{Phase, PhaseRx};
use crate::publisher::{PublishSpec, Publisher};
use crate::stats::Stats;
use crate::subscriber::{SubscribeSpec, Subscriber};
use crate::topic::TopicPattern;
use midge_codec::QoS;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What a client does once connected.
#[derive(Debug, Clone)]
pub enum Role {
    /// Holds the connection open (keepalive pings only).
    Idle,
    /// Publishes.
    Publisher(Arc<PublishSpec>),
    /// Subscribes to a filter pattern (`%i` = client index).
    Subscriber {
        /// Filter pattern.
        filter: TopicPattern,
        /// Requested QoS.
        qos: QoS,
        /// Messages to receive before leaving, if bounded.
        count: Option<u64>,
    },
}

impl Role {
    /// The role's name in client ids: `conn`, `pub` or `sub`.
    pub fn tag(&self) -> &'static str {
        match self {
            Role::Idle => "conn",
            Role::Publisher(_) => "pub",
            Role::Subscriber { .. } => "sub",
        }
    }
}

/// Everything a client task needs, shared by all clients of a run.
#[derive(Debug)]
pub struct ClientCtx {
    /// Where and how to connect.
    pub dialer: Dialer,
    /// Where subscribers connect, when not through `dialer`.
    pub sub_dialer: Option<Dialer>,
    /// CONNECT settings.
    pub options: ClientOptions,
    /// Client id prefix.
    pub prefix: String,
    /// Shared counters.
    pub stats: Arc<Stats>,
}

impl ClientCtx {
    /// The client id of client `index` in `role`.
    pub fn client_id(&self, role: &Role, index: u64) -> String {
        format!("{}_{}_{}", self.prefix, role.tag(), index)
    }

    /// Runs client `position` of its group (id index `index`) to the end, recording every
    /// outcome in the stats. Each client adds exactly 1 to `settled`, when it is ready to run
    /// or when it fails before that.
    pub async fn run_client(
        self: Arc<Self>,
        role: Role,
        position: u64,
        index: u64,
        phase: PhaseRx,
    ) {
        let is_publisher = matches!(role, Role::Publisher(_));
        self.run_inner(role, position, index, phase).await;
        if is_publisher {
            Stats::add(&self.stats.pubs_done, 1);
        }
    }

    async fn run_inner(&self, role: Role, position: u64, index: u64, phase: PhaseRx) {
        let stats = &self.stats;
        let mut settled = Settle::new(stats);
        let client_id = self.client_id(&role, index);
        let started = now_ns();
        let dialer = match (&role, &self.sub_dialer) {
            (Role::Subscriber { .. }, Some(d)) => d,
            _ => &self.dialer,
        };
        let conn = match Connection::open(dialer, index, &client_id, &self.options).await {
            Ok(conn) => conn,
            Err(e) => {
                Stats::add(&stats.connect_failed, 1);
                stats.note_error(format!("connect: {e}"));
                return;
            }
        };
        let connected_at = now_ns();
        stats.connect.record(ns_to_us(connected_at - started));
        stats.last_connack_ns.fetch_max(connected_at, Relaxed);
        Stats::add(&stats.connected, 1);
        Stats::add(&stats.live, 1);

        let result = match role {
            Role::Idle => {
                let sub = Subscriber::new(conn, None, self.options.connect_timeout, stats.clone());
                sub.run(phase.clone(), || settled.ready()).await
            }
            Role::Subscriber { filter, qos, count } => {
                let spec = SubscribeSpec {
                    filter: filter.expand(index, &client_id),
                    qos,
                    count,
                };
                let sub = Subscriber::new(
                    conn,
                    Some(spec),
                    self.options.connect_timeout,
                    stats.clone(),
                );
                sub.run(phase.clone(), || settled.ready()).await
            }
            Role::Publisher(spec) => {
                match Publisher::new(conn, spec, position, index, &client_id, stats.clone()) {
                    Ok(publisher) => {
                        settled.ready();
                        publisher.run(phase.clone()).await
                    }
                    Err(e) => {
                        stats.note_error(format!("publisher: {e}"));
                        Ok(())
                    }
                }
            }
        };
        stats.live.fetch_sub(1, Relaxed);
        if let Err(e) = result {
            match e {
                ConnError::SubscribeRefused(_) | ConnError::Timeout("SUBACK") => {
                    Stats::add(&stats.subscribe_failed, 1);
                }
                _ if *phase.borrow() < Phase::Done => Stats::add(&stats.dropped, 1),
                _ => {}
            }
            stats.note_error(e.to_string());
        }
    }
}

/// Adds to `ready` and `settled` at most once; adds to `settled` on drop if never ready.
struct Settle<'a> {
    stats: &'a Stats,
    done: bool,
}

impl<'a> Settle<'a> {
    fn new(stats: &'a Stats) -> Settle<'a> {
        Settle { stats, done: false }
    }

    fn ready(&mut self) {
        if !self.done {
            self.done = true;
            Stats::add(&self.stats.ready, 1);
            Stats::add(&self.stats.settled, 1);
        }
    }
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        if !self.done {
            Stats::add(&self.stats.settled, 1);
        }
    }
}

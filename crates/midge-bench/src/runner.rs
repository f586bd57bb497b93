//! Drives a run: connect the clients at the requested rate, start the measured phase, stop,
//! drain, disconnect, and summarise.

use crate::client::{ClientCtx, Role};
use crate::clock::now_ns;
use crate::phase::Phase;
use crate::plan::{Fanout, Plan};
use crate::progress::{LatencyKind, Progress};
use crate::publisher::Schedule;
use crate::stats::Stats;
use crate::summary::{
    per_sec, round_ms, BrokerMemory, Connections, Messages, ReceiveSpans, Summary,
};
use crate::usage::rss_kib;
use crate::usage::CpuSample;
use midge_codec::{ProtocolVersion, QoS};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// How often the runner re-checks its stop conditions.
const POLL: Duration = Duration::from_millis(10);
/// How long client tasks get to disconnect at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Clock readings at the start of a phase.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    ns: u64,
    cpu: CpuSample,
    broker: Option<CpuSample>,
    broker_rss_kib: Option<u64>,
}

/// One run of a plan.
#[derive(Debug)]
pub struct Runner {
    plan: Plan,
    stats: Arc<Stats>,
    ctx: Arc<ClientCtx>,
    phase_tx: watch::Sender<Phase>,
    tasks: JoinSet<()>,
    interrupted: Arc<AtomicBool>,
}

impl Runner {
    /// Prepares a run.
    pub fn new(plan: Plan) -> Runner {
        let stats = Arc::new(Stats::default());
        let ctx = Arc::new(ClientCtx {
            dialer: plan.dialer(),
            sub_dialer: plan.sub_dialer(),
            options: plan.options.clone(),
            prefix: plan.prefix.clone(),
            stats: stats.clone(),
        });
        let (phase_tx, _) = watch::channel(Phase::Connecting);
        Runner {
            plan,
            stats,
            ctx,
            phase_tx,
            tasks: JoinSet::new(),
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs to the end and returns the summary.
    pub async fn run(mut self) -> Summary {
        let begin = self.mark();
        let flag = self.interrupted.clone();
        let signal = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Relaxed);
            }
        });
        let progress = self.plan.progress.then(|| {
            Progress::new(self.stats.clone(), self.latency_kind(), begin.at)
                .spawn(self.phase_tx.subscribe())
        });

        let (run, subs_ready) = if self.plan.idle_clients > 0 {
            self.run_idle().await
        } else {
            self.run_messaging().await
        };
        let stop = self.mark();

        if self.plan.publishers.is_some() && !self.is_interrupted() {
            self.phase_tx.send_replace(Phase::Draining);
            let expected = self.expected(subs_ready);
            let pubs = self.plan.publishers.as_ref().map_or(0, |p| p.0);
            self.wait_until(stop.at + self.plan.drain, |s| {
                Stats::get(&s.pubs_done) >= pubs && expected.is_none_or(|e| unique_received(s) >= e)
            })
            .await;
        }
        let drained = Instant::now();
        self.phase_tx.send_replace(Phase::Done);
        let _ = timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        if let Some(p) = progress {
            p.abort();
        }
        signal.abort();
        let end = self.mark();
        self.summarise(&[begin, run, stop, end], drained, subs_ready)
    }

    /// `conn`: the measured phase starts at once and includes connecting.
    async fn run_idle(&mut self) -> (Mark, u64) {
        self.phase_tx.send_replace(Phase::Running);
        let run = self.mark();
        let deadline = run.at + self.plan.duration;
        self.spawn_group(Role::Idle, self.plan.idle_clients, Some(deadline))
            .await;
        self.wait_until(deadline, everyone_gone).await;
        (run, 0)
    }

    /// `pub`, `sub`, `pubsub`: subscribers first, then publishers, then the measured phase.
    /// `sub` alone has nothing to wait for: its measured phase starts before the subscribers
    /// connect, so what arrives right after SUBACK (retained messages) counts and is timed.
    async fn run_messaging(&mut self) -> (Mark, u64) {
        let receive_only = self.plan.publishers.is_none();
        let early = receive_only.then(|| {
            self.phase_tx.send_replace(Phase::Running);
            self.mark()
        });
        let mut spawned = 0;
        if let Some(subs) = self.plan.subscribers.clone() {
            let role = Role::Subscriber {
                filter: subs.filter,
                qos: subs.qos,
                count: subs.count,
            };
            spawned += self.spawn_group(role, subs.clients, None).await;
            self.wait_settled(spawned).await;
        }
        let subs_ready = Stats::get(&self.stats.ready);
        if let Some((clients, spec)) = self.plan.publishers.clone() {
            spawned += self.spawn_group(Role::Publisher(spec), clients, None).await;
            self.wait_settled(spawned).await;
        }
        let run = match early {
            Some(mark) => mark,
            None => {
                self.phase_tx.send_replace(Phase::Running);
                self.mark()
            }
        };
        let deadline = run.at + self.plan.duration;
        let count_bounded = self.plan.count_bounded;
        let pubs = self.plan.publishers.as_ref().map(|p| p.0);
        self.wait_until(deadline, |s| {
            let counts_done = match pubs {
                Some(p) => Stats::get(&s.pubs_done) >= p,
                None => Stats::get(&s.live) == 0,
            };
            (count_bounded && counts_done) || everyone_gone(s)
        })
        .await;
        (run, subs_ready)
    }

    /// Starts `n` clients at the connect rate; stops early at `stop_at` or on Ctrl-C.
    /// Returns how many were started.
    async fn spawn_group(&mut self, role: Role, n: u64, stop_at: Option<Instant>) -> u64 {
        let start = Instant::now();
        let rate = self.plan.connect_rate;
        let mut spawned = 0;
        for position in 0..n {
            if self.is_interrupted() {
                break;
            }
            if rate > 0.0 {
                let at = start + Duration::from_secs_f64(position as f64 / rate);
                if stop_at.is_some_and(|s| at >= s) {
                    break;
                }
                sleep_until(at).await;
            }
            let index = self.plan.start + position;
            let client = self.ctx.clone().run_client(
                role.clone(),
                position,
                index,
                self.phase_tx.subscribe(),
            );
            Stats::add(&self.stats.attempted, 1);
            self.tasks.spawn(client);
            spawned += 1;
        }
        spawned
    }

    /// Waits until `n` clients are ready or have failed (bounded by the connect timeouts).
    async fn wait_settled(&self, n: u64) {
        let limit = Instant::now() + 2 * self.plan.options.connect_timeout + Duration::from_secs(1);
        self.wait_until(limit, |s| Stats::get(&s.settled) >= n)
            .await;
    }

    /// Polls `done` until it holds, `deadline` passes, or Ctrl-C.
    async fn wait_until(&self, deadline: Instant, done: impl Fn(&Stats) -> bool) {
        loop {
            if self.is_interrupted() || done(&self.stats) {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            sleep(POLL.min(deadline - now)).await;
        }
    }

    fn is_interrupted(&self) -> bool {
        self.interrupted.load(Relaxed)
    }

    fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            ns: now_ns(),
            cpu: CpuSample::this_process(),
            broker: self.plan.broker_pid.and_then(CpuSample::other_process),
            broker_rss_kib: self.plan.broker_pid.and_then(rss_kib),
        }
    }

    fn paced(&self) -> bool {
        let schedule = self.plan.publishers.as_ref().map(|(_, spec)| spec.schedule);
        schedule.is_some_and(|s| s != Schedule::Flood)
    }

    fn latency_kind(&self) -> LatencyKind {
        match (&self.plan.subscribers, &self.plan.publishers) {
            (Some(_), _) => LatencyKind::EndToEnd,
            (None, Some((_, spec))) if spec.qos != QoS::AtMostOnce => LatencyKind::Ack,
            _ => LatencyKind::Connect,
        }
    }

    /// Deliveries `pubsub` should see, given how many subscribers were ready.
    fn expected(&self, subs_ready: u64) -> Option<u64> {
        let subs = self.plan.subscribers.as_ref()?;
        self.plan.publishers.as_ref()?;
        let sent = Stats::get(&self.stats.sent);
        Some(match subs.fanout {
            Fanout::All => sent * subs_ready,
            Fanout::One => sent * subs_ready.min(1),
        })
    }

    fn summarise(&self, marks: &[Mark; 4], drained: Instant, subs_ready: u64) -> Summary {
        let [begin, run, stop, end] = *marks;
        let s = &self.stats;
        let run_s = stop.at.duration_since(run.at).as_secs_f64();
        let last_connack = Stats::get(&s.last_connack_ns);
        let connect_window_s = last_connack.saturating_sub(begin.ns) as f64 / 1e9;
        let connected = Stats::get(&s.connected);
        let received = Stats::get(&s.received);
        let receiving = ReceiveSpans::new(run.ns, stop.ns, Stats::get(&s.last_receive_ns));
        let shared = self.plan.subscribers.as_ref().is_some_and(|p| p.shared);
        let expected = self.expected(subs_ready);
        let lost = expected.map(|e| e.saturating_sub(unique_received(s)));
        let connect_phase_s = if self.plan.idle_clients > 0 {
            connect_window_s
        } else {
            run.at.duration_since(begin.at).as_secs_f64()
        };
        let cpu_over =
            |from: &Mark, to: &Mark| from.cpu.usage_until(&to.cpu, to.at.duration_since(from.at));
        let broker_over = |from: &Mark, to: &Mark| match (&from.broker, &to.broker) {
            (Some(a), Some(b)) => Some(a.usage_until(b, to.at.duration_since(from.at))),
            _ => None,
        };
        Summary {
            scenario: self.plan.scenario,
            args: self.plan.args.clone(),
            broker: self.plan.broker.to_string(),
            protocol: protocol_name(self.plan.options.version),
            interrupted: self.is_interrupted(),
            connect_phase_s: round_ms(connect_phase_s),
            duration_s: round_ms(run_s),
            drain_s: round_ms(drained.duration_since(stop.at).as_secs_f64()),
            connections: Connections {
                attempted: Stats::get(&s.attempted),
                connected,
                failed: Stats::get(&s.connect_failed),
                subscribe_failed: Stats::get(&s.subscribe_failed),
                dropped: Stats::get(&s.dropped),
                connect_rate_per_s: per_sec(connected, connect_window_s),
                connect_latency_us: s.connect.summary(),
            },
            messages: Messages {
                sent: Stats::get(&s.sent),
                acked: Stats::get(&s.acked),
                rejected: Stats::get(&s.rejected),
                received,
                received_with_header: Stats::get(&s.received_with_header),
                stale: Stats::get(&s.stale),
                expected,
                lost,
                duplicates: Stats::get(&s.duplicates),
                gaps: (!shared).then(|| Stats::get(&s.gaps)),
                sent_per_s: per_sec(Stats::get(&s.sent), run_s),
                acked_per_s: per_sec(Stats::get(&s.acked), run_s),
                received_per_s: per_sec(received, receiving.rate_s),
                last_receive_s: (received > 0).then(|| round_ms(receiving.last_s)),
            },
            latency_us: s.e2e.summary(),
            ack_latency_us: s.ack.summary(),
            send_lag_us: self.paced().then(|| s.send_lag.summary()),
            tool_cpu: cpu_over(&begin, &end),
            tool_cpu_running: cpu_over(&run, &stop),
            broker_cpu: broker_over(&begin, &end),
            broker_cpu_running: broker_over(&run, &stop),
            broker_memory: BrokerMemory::between(
                begin.broker_rss_kib,
                stop.broker_rss_kib,
                connected,
            ),
            errors: s.errors(),
        }
    }
}

/// Every started client has settled and none is connected: nothing more can happen.
fn everyone_gone(s: &Stats) -> bool {
    Stats::get(&s.settled) >= Stats::get(&s.attempted) && Stats::get(&s.live) == 0
}

fn unique_received(s: &Stats) -> u64 {
    Stats::get(&s.received).saturating_sub(Stats::get(&s.duplicates))
}

fn protocol_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

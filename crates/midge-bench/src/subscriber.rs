//! A receiving client: subscribes, counts messages, checks sequences, measures latency, and
//! acknowledges QoS 1/2. Without a filter it is an idle client that only keeps alive (`conn`).

use crate::clock::{now_ns, ns_to_us};
use crate::connection::{is_success, ConnError, Connection, Wake};
use crate::frame::FrameKind;
use crate::payload::BenchHeader;
use crate::phase::{Phase, PhaseRx};
use crate::seq::{SeqOutcome, SeqTracker};
use crate::stats::Stats;
use midge_codec::{
    AckKind, Packet, QoS, Subscribe, SubscribeProperties, SubscriptionOptions, TopicSubscription,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What a subscriber subscribes to and when it stops.
#[derive(Debug, Clone)]
pub struct SubscribeSpec {
    /// The topic filter (already expanded for this client).
    pub filter: String,
    /// Requested QoS.
    pub qos: QoS,
    /// Stop after this many messages, if set.
    pub count: Option<u64>,
}

/// Per-batch counters, added to the shared [`Stats`] once per read.
#[derive(Debug, Default)]
struct Batch {
    received: u64,
    with_header: u64,
    stale: u64,
    duplicates: u64,
    gaps: u64,
}

/// One receiving client.
#[derive(Debug)]
pub struct Subscriber {
    conn: Connection,
    spec: Option<SubscribeSpec>,
    subscribed: bool,
    subscribe_deadline: Instant,
    tracker: SeqTracker,
    unique: u64,
    stats: Arc<Stats>,
    phase: Phase,
    latencies: Vec<u64>,
}

impl Subscriber {
    /// A subscriber for `spec`, or an idle client when `spec` is `None`. `ack_timeout` bounds
    /// the wait for SUBACK.
    pub fn new(
        conn: Connection,
        spec: Option<SubscribeSpec>,
        ack_timeout: Duration,
        stats: Arc<Stats>,
    ) -> Subscriber {
        Subscriber {
            conn,
            spec,
            subscribed: false,
            subscribe_deadline: Instant::now() + ack_timeout,
            tracker: SeqTracker::default(),
            unique: 0,
            stats,
            phase: Phase::Connecting,
            latencies: Vec::with_capacity(256),
        }
    }

    /// Runs until the run ends or the count is received. `on_ready` is called once, when the
    /// subscription is in place (at once for an idle client).
    pub async fn run(
        mut self,
        mut phase_rx: PhaseRx,
        on_ready: impl FnOnce(),
    ) -> Result<(), ConnError> {
        self.phase = *phase_rx.borrow_and_update();
        let mut on_ready = Some(on_ready);
        match &self.spec {
            Some(spec) => {
                let subscribe = subscribe_packet(&spec.filter, spec.qos);
                self.conn.queue(&subscribe)?;
                self.conn.flush_some()?;
            }
            None => self.subscribed = true,
        }
        loop {
            if self.subscribed {
                if let Some(ready) = on_ready.take() {
                    ready();
                }
            }
            if self.phase == Phase::Done || self.count_reached() {
                break;
            }
            let timer = (!self.subscribed).then_some(self.subscribe_deadline);
            match self.conn.wait(timer, &mut phase_rx).await? {
                Wake::Phase => self.phase = *phase_rx.borrow_and_update(),
                Wake::Io => self.handle_frames()?,
                Wake::Timer if !self.subscribed => return Err(ConnError::Timeout("SUBACK")),
                Wake::Timer => {}
            }
        }
        if self.count_reached() {
            Stats::add(&self.stats.subs_done, 1);
        }
        self.conn.close().await;
        Ok(())
    }

    fn count_reached(&self) -> bool {
        let count = self.spec.as_ref().and_then(|s| s.count);
        count.is_some_and(|c| self.unique >= c)
    }

    fn handle_frames(&mut self) -> Result<(), ConnError> {
        let mut batch = Batch::default();
        let mut now = 0;
        while let Some(frame) = self.conn.next_frame()? {
            match frame.kind {
                FrameKind::Publish {
                    qos,
                    packet_id,
                    payload,
                } => {
                    match qos {
                        1 => self.conn.queue_ack(AckKind::PubAck, packet_id)?,
                        2 => self.conn.queue_ack(AckKind::PubRec, packet_id)?,
                        _ => {}
                    }
                    if now == 0 {
                        now = now_ns();
                    }
                    let header = BenchHeader::read_from(&self.conn.read_buffer()[payload]);
                    self.observe(header, now, &mut batch);
                }
                FrameKind::PubRel(id) => self.conn.queue_ack(AckKind::PubComp, id)?,
                FrameKind::PubAck(..)
                | FrameKind::PubRec(..)
                | FrameKind::PubComp(_)
                | FrameKind::PingResp => {}
                FrameKind::Other => {
                    match self.conn.decode_next()? {
                        Some(Packet::SubAck(ack)) => {
                            let reason = ack.reasons.first().copied();
                            match reason {
                                Some(r) if is_success(r) => self.subscribed = true,
                                Some(r) => return Err(ConnError::SubscribeRefused(r)),
                                None => return Err(ConnError::Unexpected("empty SUBACK")),
                            }
                        }
                        Some(Packet::Disconnect(d)) => {
                            return Err(ConnError::Disconnected(d.reason))
                        }
                        Some(_) | None => {}
                    }
                    continue;
                }
            }
            self.conn.consume(frame.len);
        }
        self.flush_batch(&batch, now);
        if self.conn.pending_write() > 0 {
            self.conn.flush_some()?;
        }
        Ok(())
    }

    fn observe(&mut self, header: Option<BenchHeader>, now: u64, batch: &mut Batch) {
        if self.phase == Phase::Connecting {
            // Retained or left over from an earlier run: not part of this measurement.
            batch.stale += 1;
            return;
        }
        batch.received += 1;
        let Some(h) = header else {
            self.unique += 1;
            return;
        };
        batch.with_header += 1;
        match self.tracker.observe(h.publisher, h.seq) {
            SeqOutcome::Duplicate => {
                batch.duplicates += 1;
                return;
            }
            SeqOutcome::Gap(n) => batch.gaps += n,
            SeqOutcome::InOrder | SeqOutcome::Untracked => {}
        }
        self.unique += 1;
        self.latencies
            .push(ns_to_us(now.saturating_sub(h.timestamp_ns)));
    }

    fn flush_batch(&mut self, batch: &Batch, now: u64) {
        let s = &self.stats;
        Stats::add(&s.received, batch.received);
        Stats::add(&s.received_with_header, batch.with_header);
        Stats::add(&s.stale, batch.stale);
        Stats::add(&s.duplicates, batch.duplicates);
        Stats::add(&s.gaps, batch.gaps);
        if batch.received > 0 {
            s.last_receive_ns
                .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
        }
        s.e2e.record_all(&self.latencies);
        self.latencies.clear();
    }
}

fn subscribe_packet(filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![TopicSubscription {
            filter: filter.to_owned(),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
        properties: SubscribeProperties::default(),
    })
}

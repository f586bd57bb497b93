//! A publishing client: sends stamped messages on schedule and tracks QoS 1/2 acknowledgements.

use crate::clock::{now_ns, ns_to_us};
use crate::connection::{ConnError, Connection, Wake};
use crate::frame::FrameKind;
use crate::inflight::InflightWindow;
use crate::pacer::Pacer;
use crate::payload::BenchHeader;
use crate::phase::{Phase, PhaseRx};
use crate::stats::Stats;
use crate::template::{PublishTemplate, TemplateError};
use crate::topic::TopicPattern;
use midge_codec::{AckKind, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Stop adding messages to the write buffer beyond this many bytes; the socket drains it.
const HIGH_WATER: usize = 64 * 1024;

/// When publishers send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// As fast as the socket (QoS 0) or the in-flight window (QoS 1/2) allows.
    Flood,
    /// Each client sends one message per interval.
    Interval(Duration),
    /// All clients together send this many messages per second.
    TotalRate(f64),
}

/// What every publisher of a run does.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// Topic pattern (`%i` = client index).
    pub topic: TopicPattern,
    /// QoS of every message.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Payload size in bytes (the bench header needs 24).
    pub payload_len: usize,
    /// Maximum unacknowledged messages per client (QoS 1/2).
    pub inflight: usize,
    /// Send schedule.
    pub schedule: Schedule,
    /// Messages per client, if bounded by count.
    pub count: Option<u64>,
    /// Number of publishers (to share a total rate).
    pub clients: u64,
}

/// One publisher's state.
#[derive(Debug)]
pub struct Publisher {
    conn: Connection,
    template: PublishTemplate,
    window: InflightWindow,
    pacer: Option<Pacer>,
    spec: Arc<PublishSpec>,
    position: u64,
    id: u32,
    seq: u64,
    stats: Arc<Stats>,
    phase: Phase,
    latencies: Vec<u64>,
    lags: Vec<u64>,
}

impl Publisher {
    /// Prepares publisher number `position` (0-based within the run) with id `index`.
    pub fn new(
        conn: Connection,
        spec: Arc<PublishSpec>,
        position: u64,
        index: u64,
        client_id: &str,
        stats: Arc<Stats>,
    ) -> Result<Publisher, TemplateError> {
        let topic = spec.topic.expand(index, client_id);
        let template = PublishTemplate::new(
            &topic,
            spec.qos,
            spec.retain,
            spec.payload_len,
            conn.version(),
        )?;
        let mut window = InflightWindow::new(spec.inflight);
        if let Some(max) = conn.receive_maximum {
            window.cap(usize::from(max));
        }
        Ok(Publisher {
            conn,
            template,
            window,
            pacer: None,
            spec,
            position,
            id: index as u32,
            seq: 0,
            stats,
            phase: Phase::Connecting,
            latencies: Vec::with_capacity(256),
            lags: Vec::with_capacity(256),
        })
    }

    /// Runs until the count is sent and acknowledged, the run drains, or it ends.
    pub async fn run(mut self, mut phase_rx: PhaseRx) -> Result<(), ConnError> {
        self.set_phase(*phase_rx.borrow_and_update());
        loop {
            if self.phase == Phase::Running {
                self.produce()?;
            }
            if self.finished() {
                break;
            }
            if self.eager() {
                // The socket took everything: let other tasks run, pick up acks without
                // blocking, and go on producing.
                tokio::task::yield_now().await;
                if self.conn.fill()? > 0 {
                    self.handle_frames()?;
                }
                if phase_rx.has_changed().unwrap_or(true) {
                    self.set_phase(*phase_rx.borrow_and_update());
                }
                continue;
            }
            let timer = self.next_send_at();
            match self.conn.wait(timer, &mut phase_rx).await? {
                Wake::Phase => self.set_phase(*phase_rx.borrow_and_update()),
                Wake::Io => self.handle_frames()?,
                Wake::Timer => {}
            }
        }
        self.conn.close().await;
        Ok(())
    }

    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
        if phase == Phase::Running && self.pacer.is_none() {
            let start = now_ns();
            let clients = self.spec.clients;
            self.pacer = Some(match self.spec.schedule {
                Schedule::Flood => Pacer::unpaced(),
                Schedule::Interval(every) => {
                    Pacer::spread(every.as_nanos() as u64, clients, self.position, start)
                }
                Schedule::TotalRate(rate) => {
                    Pacer::share_of_rate(rate, clients, self.position, start)
                }
            });
        }
    }

    fn count_reached(&self) -> bool {
        self.spec.count.is_some_and(|c| self.seq >= c)
    }

    fn settled(&self) -> bool {
        self.conn.pending_write() == 0 && self.window.is_empty()
    }

    fn finished(&self) -> bool {
        match self.phase {
            Phase::Done => true,
            Phase::Draining => self.settled(),
            Phase::Running => self.count_reached() && self.settled(),
            Phase::Connecting => false,
        }
    }

    /// Flooding with nothing to wait for: the write buffer drained and more may be sent.
    fn eager(&self) -> bool {
        self.phase == Phase::Running
            && self.pacer.as_ref().is_some_and(|p| !p.is_paced())
            && self.conn.pending_write() == 0
            && self.can_queue()
    }

    fn can_queue(&self) -> bool {
        !self.count_reached()
            && self.conn.pending_write() < HIGH_WATER
            && (self.spec.qos == QoS::AtMostOnce || !self.window.is_full())
    }

    /// Appends every message that is due and allowed, then tries to write.
    fn produce(&mut self) -> Result<(), ConnError> {
        let Some(pacer) = self.pacer.as_mut() else {
            return Ok(());
        };
        let now = now_ns();
        let paced = pacer.is_paced();
        let mut queued = 0;
        while self.spec.count.is_none_or(|c| self.seq < c)
            && self.conn.pending_write() < HIGH_WATER
            && (self.spec.qos == QoS::AtMostOnce || !self.window.is_full())
        {
            let Some(due) = pacer.take_due(now) else {
                break;
            };
            if paced {
                self.lags.push(ns_to_us(now.saturating_sub(due)));
            }
            let packet_id = if self.spec.qos == QoS::AtMostOnce {
                0
            } else {
                self.window.acquire(now).unwrap_or(0)
            };
            let header = BenchHeader {
                timestamp_ns: now,
                publisher: self.id,
                seq: self.seq,
            };
            self.template
                .append(self.conn.write_buffer(), packet_id, &header);
            self.seq += 1;
            queued += 1;
        }
        if queued > 0 {
            Stats::add(&self.stats.sent, queued);
            self.stats.send_lag.record_all(&self.lags);
            self.lags.clear();
            self.conn.flush_some()?;
        }
        Ok(())
    }

    /// When the next paced message is due, if the publisher could send it.
    fn next_send_at(&self) -> Option<Instant> {
        if self.phase != Phase::Running || !self.can_queue() {
            return None;
        }
        let due = self.pacer.as_ref()?.next_due_ns()?;
        let wait = Duration::from_nanos(due.saturating_sub(now_ns()));
        Some(Instant::now() + wait)
    }

    fn handle_frames(&mut self) -> Result<(), ConnError> {
        let mut acked = 0;
        let mut rejected = 0;
        let mut now = 0;
        while let Some(frame) = self.conn.next_frame()? {
            match frame.kind {
                FrameKind::PubAck(id, reason) if self.spec.qos == QoS::AtLeastOnce => {
                    if reason >= 0x80 {
                        rejected += self.window.release(id).map_or(0, |_| 1);
                    } else {
                        acked += self.complete(id, &mut now);
                    }
                }
                FrameKind::PubComp(id) if self.spec.qos == QoS::ExactlyOnce => {
                    acked += self.complete(id, &mut now);
                }
                // A failed PUBREC ends the exchange: no PUBREL (MQTT 5, 4.3.3).
                FrameKind::PubRec(id, reason) if reason >= 0x80 => {
                    rejected += self.window.release(id).map_or(0, |_| 1);
                }
                FrameKind::PubRec(id, _) => self.conn.queue_ack(AckKind::PubRel, id)?,
                FrameKind::PubRel(id) => self.conn.queue_ack(AckKind::PubComp, id)?,
                FrameKind::Publish { qos, packet_id, .. } => match qos {
                    1 => self.conn.queue_ack(AckKind::PubAck, packet_id)?,
                    2 => self.conn.queue_ack(AckKind::PubRec, packet_id)?,
                    _ => {}
                },
                FrameKind::PubAck(..) | FrameKind::PubComp(_) | FrameKind::PingResp => {}
                FrameKind::Other => {
                    if let Some(Packet::Disconnect(d)) = self.conn.decode_next()? {
                        return Err(ConnError::Disconnected(d.reason));
                    }
                    continue;
                }
            }
            self.conn.consume(frame.len);
        }
        Stats::add(&self.stats.acked, acked);
        Stats::add(&self.stats.rejected, rejected);
        self.stats.ack.record_all(&self.latencies);
        self.latencies.clear();
        Ok(())
    }

    /// Releases an acknowledged id; returns 1 if it was ours.
    fn complete(&mut self, id: u16, now: &mut u64) -> u64 {
        let Some(sent) = self.window.release(id) else {
            return 0;
        };
        if *now == 0 {
            *now = now_ns();
        }
        self.latencies.push(ns_to_us(now.saturating_sub(sent)));
        1
    }
}

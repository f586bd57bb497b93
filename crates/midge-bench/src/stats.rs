//! Counters shared by all client tasks. Tasks add in batches; the reporter reads snapshots.

use crate::latency::Latency;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

/// How many distinct error messages are kept for the summary.
const MAX_ERROR_SAMPLES: usize = 10;

/// Run-wide counters and histograms.
#[derive(Debug, Default)]
pub struct Stats {
    /// Client tasks started (each makes one connection attempt).
    pub attempted: AtomicU64,
    /// CONNACKs with success.
    pub connected: AtomicU64,
    /// Connections that failed (TCP error, refusal, timeout, bad CONNACK).
    pub connect_failed: AtomicU64,
    /// Subscriptions the broker refused or that timed out.
    pub subscribe_failed: AtomicU64,
    /// Clients connected (and subscribed, for subscribers) and waiting to run.
    pub ready: AtomicU64,
    /// Clients currently connected.
    pub live: AtomicU64,
    /// Connections lost while they should have stayed up.
    pub dropped: AtomicU64,
    /// Publisher tasks that have finished (count reached or stopped).
    pub pubs_done: AtomicU64,
    /// Subscriber tasks that have received their `--count`.
    pub subs_done: AtomicU64,
    /// PUBLISH packets queued for sending.
    pub sent: AtomicU64,
    /// PUBACK / PUBCOMP received for our QoS 1/2 publishes.
    pub acked: AtomicU64,
    /// Publishes the broker refused (v5 PUBACK / PUBREC reason code 0x80 or above).
    pub rejected: AtomicU64,
    /// PUBLISH packets received during the run.
    pub received: AtomicU64,
    /// Received messages that carried a bench header.
    pub received_with_header: AtomicU64,
    /// Messages received before the run started (retained or left over); not counted.
    pub stale: AtomicU64,
    /// Messages seen again (sequence number at or below one already seen).
    pub duplicates: AtomicU64,
    /// Sequence numbers skipped (per publisher and subscriber).
    pub gaps: AtomicU64,
    /// Clients that are ready or have failed before becoming ready.
    pub settled: AtomicU64,
    /// Monotonic ns of the last CONNACK received.
    pub last_connack_ns: AtomicU64,
    /// Monotonic ns of the last batch of received messages.
    pub last_receive_ns: AtomicU64,
    /// End-to-end latency (payload stamp to receipt).
    pub e2e: Latency,
    /// Publish-to-acknowledgement latency (PUBACK for QoS 1, PUBCOMP for QoS 2).
    pub ack: Latency,
    /// How late paced messages left compared with their schedule (tool or broker backpressure).
    pub send_lag: Latency,
    /// TCP connect start to CONNACK.
    pub connect: Latency,
    errors: Mutex<Vec<String>>,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Stats::attempted`].
    pub attempted: u64,
    /// See [`Stats::connected`].
    pub connected: u64,
    /// See [`Stats::connect_failed`].
    pub connect_failed: u64,
    /// See [`Stats::live`].
    pub live: u64,
    /// See [`Stats::sent`].
    pub sent: u64,
    /// See [`Stats::acked`].
    pub acked: u64,
    /// See [`Stats::received`].
    pub received: u64,
}

impl Stats {
    /// Reads the counters the progress line needs.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            attempted: self.attempted.load(Relaxed),
            connected: self.connected.load(Relaxed),
            connect_failed: self.connect_failed.load(Relaxed),
            live: self.live.load(Relaxed),
            sent: self.sent.load(Relaxed),
            acked: self.acked.load(Relaxed),
            received: self.received.load(Relaxed),
        }
    }

    /// Adds `n` to a counter (no-op for 0, so hot loops can call it unconditionally).
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    /// Keeps an error message for the summary (the first few distinct ones).
    pub fn note_error(&self, msg: impl Into<String>) {
        let msg = msg.into();
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if errors.len() < MAX_ERROR_SAMPLES && !errors.contains(&msg) {
            errors.push(msg);
        }
    }

    /// The kept error messages.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_errors() {
        let s = Stats::default();
        Stats::add(&s.sent, 5);
        Stats::add(&s.sent, 0);
        Stats::add(&s.received, 3);
        let snap = s.snapshot();
        assert_eq!((snap.sent, snap.received), (5, 3));
        for i in 0..20 {
            s.note_error(format!("e{}", i % 12));
            s.note_error("same");
        }
        let errors = s.errors();
        assert_eq!(errors.len(), MAX_ERROR_SAMPLES);
        assert_eq!(errors.iter().filter(|e| *e == "same").count(), 1);
    }
}

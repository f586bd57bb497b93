//! The JSON summary printed at the end of a run.

use crate::latency::LatencySummary;
use crate::usage::CpuUsage;
use serde::Serialize;

/// The final report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: &'static str,
    /// The command-line arguments (password omitted).
    pub args: serde_json::Value,
    /// Broker address.
    pub broker: String,
    /// MQTT version spoken.
    pub protocol: &'static str,
    /// True when stopped by Ctrl-C.
    pub interrupted: bool,
    /// Seconds spent connecting (and subscribing) before the measured phase.
    pub connect_phase_s: f64,
    /// Seconds of the measured phase (publishing / holding).
    pub duration_s: f64,
    /// Seconds spent waiting for acks and deliveries after publishing stopped.
    pub drain_s: f64,
    /// Connection outcomes.
    pub connections: Connections,
    /// Message counts and rates.
    pub messages: Messages,
    /// End-to-end latency, payload stamp to receipt (µs).
    pub latency_us: LatencySummary,
    /// Publish to PUBACK (QoS 1) / PUBCOMP (QoS 2) latency (µs).
    pub ack_latency_us: LatencySummary,
    /// How late paced messages (`--rate`, `-I`) left against their schedule (µs); large
    /// values mean the offered rate was not kept.
    pub send_lag_us: Option<LatencySummary>,
    /// CPU used by midge-bench over the whole run.
    pub tool_cpu: CpuUsage,
    /// CPU used by midge-bench during the measured phase.
    pub tool_cpu_running: CpuUsage,
    /// CPU used by the broker over the whole run (with --broker-pid).
    pub broker_cpu: Option<CpuUsage>,
    /// CPU used by the broker during the measured phase (with --broker-pid).
    pub broker_cpu_running: Option<CpuUsage>,
    /// The broker's resident memory before the run and at the end of the measured phase
    /// (with --broker-pid), while every client is still connected.
    pub broker_memory: Option<BrokerMemory>,
    /// The first distinct errors seen.
    pub errors: Vec<String>,
}

/// Connection outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Attempts started.
    pub attempted: u64,
    /// Successful CONNACKs.
    pub connected: u64,
    /// Failed connects (TCP error, refusal, timeout).
    pub failed: u64,
    /// Subscriptions refused or timed out.
    pub subscribe_failed: u64,
    /// Connections lost during the run.
    pub dropped: u64,
    /// Connections per second achieved (first attempt to last CONNACK).
    pub connect_rate_per_s: f64,
    /// TCP connect start to CONNACK (µs).
    pub connect_latency_us: LatencySummary,
}

/// Message counts and rates.
#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    /// PUBLISH packets sent.
    pub sent: u64,
    /// PUBACK/PUBCOMP received.
    pub acked: u64,
    /// Publishes refused by a v5 broker (PUBACK / PUBREC reason code 0x80 or above).
    pub rejected: u64,
    /// PUBLISH packets received during the run.
    pub received: u64,
    /// Of those, carrying the bench header.
    pub received_with_header: u64,
    /// Received before the run started (retained / leftovers), not counted.
    pub stale: u64,
    /// Deliveries expected from what was sent (`pubsub`).
    pub expected: Option<u64>,
    /// Expected deliveries that did not arrive (`pubsub`).
    pub lost: Option<u64>,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Sequence numbers skipped per publisher and subscriber (`null` for shared
    /// subscriptions, where each subscriber sees only part of every stream).
    pub gaps: Option<u64>,
    /// Sent per second of the measured phase.
    pub sent_per_s: f64,
    /// Acknowledged per second of the measured phase.
    pub acked_per_s: f64,
    /// Received per second, from the start of the measured phase to the last delivery.
    pub received_per_s: f64,
    /// Seconds from the start of the measured phase to the last delivery (`null` when
    /// nothing arrived). For `sub` alone that phase starts before connecting, so this times
    /// e.g. a retained replay from the first connect to its last message.
    pub last_receive_s: Option<f64>,
}

/// The broker's resident set size (`VmRSS`) around a run.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct BrokerMemory {
    /// KiB before the first client connected.
    pub rss_before_kib: u64,
    /// KiB at the end of the measured phase, clients still connected.
    pub rss_running_kib: u64,
    /// The growth per connected client, KiB (`null` when none connected).
    pub per_connection_kib: Option<f64>,
}

impl BrokerMemory {
    /// From two readings and the number of clients connected in between.
    pub fn between(before: Option<u64>, running: Option<u64>, connected: u64) -> Option<Self> {
        let (before, running) = (before?, running?);
        let growth = running.saturating_sub(before) as f64;
        Some(BrokerMemory {
            rss_before_kib: before,
            rss_running_kib: running,
            per_connection_kib: (connected > 0)
                .then(|| (growth / connected as f64 * 100.0).round() / 100.0),
        })
    }
}

/// How long the receiving side of a run took, in seconds from the start of its measured phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiveSpans {
    /// To the last delivery or the end of the measured phase, whichever is later: the span a
    /// receive rate is over, so a broker that stops delivering early is not credited with the
    /// rate it had before.
    pub rate_s: f64,
    /// To the last delivery. Not to the end of the measured phase: that end is noticed by
    /// polling, up to `runner::POLL` after the last client left, which would add up to 10 ms
    /// to a short replay.
    pub last_s: f64,
}

impl ReceiveSpans {
    /// From the monotonic nanoseconds at which the measured phase started and stopped and the
    /// last delivery arrived.
    pub fn new(run_ns: u64, stop_ns: u64, last_receive_ns: u64) -> Self {
        let secs = |end: u64| end.saturating_sub(run_ns) as f64 / 1e9;
        ReceiveSpans {
            rate_s: secs(last_receive_ns.max(stop_ns)),
            last_s: secs(last_receive_ns),
        }
    }
}

/// `n / secs`, rounded to 0.1; 0 when `secs` is 0.
pub fn per_sec(n: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    (n as f64 / secs * 10.0).round() / 10.0
}

/// Rounds to milliseconds.
pub fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_delivery_is_timed_to_itself_and_a_rate_to_the_later_end() {
        // Everything arrived 12 ms in; the runner noticed the subscriber had left at 20 ms.
        let done_early = ReceiveSpans::new(1_000_000, 21_000_000, 13_000_000);
        assert_eq!(done_early.last_s, 0.012);
        assert_eq!(done_early.rate_s, 0.020);
        // Deliveries went on after the measured phase stopped (a flood draining).
        let draining = ReceiveSpans::new(0, 4_000_000_000, 4_500_000_000);
        assert_eq!(draining.last_s, 4.5);
        assert_eq!(draining.rate_s, 4.5);
    }

    #[test]
    fn memory_per_connection() {
        let m = BrokerMemory::between(Some(10_000), Some(30_000), 1_000).unwrap();
        assert_eq!(m.per_connection_kib, Some(20.0));
        assert_eq!(
            BrokerMemory::between(Some(10), Some(5), 0)
                .unwrap()
                .per_connection_kib,
            None
        );
        assert_eq!(BrokerMemory::between(None, Some(5), 3), None);
    }

    #[test]
    fn rates() {
        assert_eq!(per_sec(1000, 2.0), 500.0);
        assert_eq!(per_sec(1, 3.0), 0.3);
        assert_eq!(per_sec(5, 0.0), 0.0);
        assert_eq!(round_ms(1.23456), 1.235);
    }
}

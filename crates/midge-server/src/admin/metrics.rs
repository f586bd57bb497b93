//! The node's one metrics registry and the instruments observed on the data path.

use prometheus::core::Collector;
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The registry every part of the server registers its metrics in, passed down from
/// `Server::bind`. Scrape-time collectors read counters the core and the listeners already
/// keep; the histograms here are observed through per-connection local copies
/// ([`Histogram::local`]), so no message touches shared state.
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    publish_latency: Histogram,
    forward_latency: Histogram,
    parked: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry holding the histograms and `midge_build_info`.
    pub(crate) fn new(version: &str) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        // 10 µs to ~2.6 s in factors of 4: routing takes microseconds; anything in the
        // upper buckets means the broker lock was contended or the machine overloaded.
        let buckets = exponential_buckets(0.000_01, 4.0, 10)?;
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "midge_publish_latency_seconds",
                "Time from a PUBLISH being decoded to its deliveries being handed to the \
                 subscribers' connections.",
            )
            .buckets(buckets.clone()),
        )?;
        let forward_latency = Histogram::with_opts(
            HistogramOpts::new(
                "midge_forward_latency_seconds",
                "Round trip of a batch of forwarded publishes to a peer node, from sending \
                 it to the peer having taken them (no samples on a single node).",
            )
            .buckets(buckets),
        )?;
        let build = IntGauge::with_opts(
            Opts::new("midge_build_info", "Always 1; the label names the version.")
                .const_label("version", version),
        )?;
        build.set(1);
        let parked = IntGaugeVec::new(
            Opts::new(
                "midge_connections_parked",
                "Client connections whose reading (side=\"read\") or writing (side=\"write\") \
                 half is parked: quiet for 0.1 s or more, it holds no buffer and no future; \
                 side=\"dormant\": plain TCP connections quiet on both sides, which hold no \
                 task either.",
            ),
            &["side"],
        )?;
        registry.register(Box::new(publish_latency.clone()))?;
        registry.register(Box::new(forward_latency.clone()))?;
        registry.register(Box::new(build))?;
        registry.register(Box::new(parked.clone()))?;
        Ok(Metrics {
            registry,
            publish_latency,
            forward_latency,
            parked,
        })
    }

    /// Adds a collector (each part of the server registers its own).
    pub(crate) fn register(&self, collector: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(collector)
    }

    /// `midge_publish_latency_seconds`; connection tasks observe it through a local copy.
    pub(crate) fn publish_latency(&self) -> &Histogram {
        &self.publish_latency
    }

    /// `midge_connections_parked{side="read"}`, `{side="write"}` and `{side="dormant"}`,
    /// kept by the connections and the dormant pool.
    pub(crate) fn parked(&self) -> (IntGauge, IntGauge, IntGauge) {
        (
            self.parked.with_label_values(&["read"]),
            self.parked.with_label_values(&["write"]),
            self.parked.with_label_values(&["dormant"]),
        )
    }

    /// `midge_forward_latency_seconds`, observed by the broker links.
    pub(crate) fn forward_latency(&self) -> &Histogram {
        &self.forward_latency
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub(crate) fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on an inconsistent family (a programming error);
        // then the scrape shows what was encoded before it, and the error is logged.
        if let Err(err) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("Encoding metrics failed: {err}.");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_and_build_info_are_exported() {
        let metrics = Metrics::new("midge 0.0.0").expect("registry");
        let local = metrics.publish_latency().local();
        local.observe(0.001);
        local.flush();
        let text = metrics.encode();
        assert!(
            text.contains("midge_publish_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("midge_forward_latency_seconds_count 0"),
            "{text}"
        );
        assert!(
            text.contains("midge_build_info{version=\"midge 0.0.0\"} 1"),
            "{text}"
        );
    }
}

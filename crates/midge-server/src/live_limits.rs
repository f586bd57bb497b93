//! The `[limits]` values a reload may change, read where they are used.

use crate::connection::ConnectionSettings;
use crate::connection_slots::ConnectionSlots;
use crate::ip_guard::IpGuard;
use crate::overload::OverloadGuard;
use crate::publish_rate::PublishRateLimits;
use crate::LimitsSection;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Live limits: the listener reads them at each accept, the server at shutdown, and
/// [`LiveLimits::apply`] replaces them on reload. A connection keeps the settings it was
/// accepted with; new values apply to connections accepted afterwards.
#[derive(Debug)]
pub(crate) struct LiveLimits {
    connection: RwLock<Arc<ConnectionSettings>>,
    slots: Arc<ConnectionSlots>,
    shutdown_grace_secs: AtomicU64,
    /// `max_connections_per_ip` and `max_connection_rate_per_ip`.
    ip_guard: Arc<IpGuard>,
    /// `overload_lag_ms` and the overload state.
    overload: Arc<OverloadGuard>,
}

impl LiveLimits {
    /// Starts from the configuration's `[limits]` and the connection settings built from it.
    pub(crate) fn new(limits: &LimitsSection, connection: ConnectionSettings) -> Arc<LiveLimits> {
        Arc::new(LiveLimits {
            connection: RwLock::new(Arc::new(connection)),
            slots: ConnectionSlots::new(limits.max_connections),
            shutdown_grace_secs: AtomicU64::new(limits.shutdown_grace_secs),
            ip_guard: IpGuard::new(
                limits.max_connections_per_ip,
                limits.max_connection_rate_per_ip,
            ),
            overload: OverloadGuard::new(limits.overload_lag_ms),
        })
    }

    /// The publish rate limits for a connection accepted now.
    #[cfg(test)]
    pub(crate) fn publish_rate(&self) -> PublishRateLimits {
        self.connection.read().publish_rate
    }

    /// Overload mode.
    pub(crate) fn overload(&self) -> &Arc<OverloadGuard> {
        &self.overload
    }

    /// Settings for a connection accepted now.
    pub(crate) fn connection_settings(&self) -> Arc<ConnectionSettings> {
        self.connection.read().clone()
    }

    /// The `limits.max_connections` cap.
    pub(crate) fn slots(&self) -> &Arc<ConnectionSlots> {
        &self.slots
    }

    /// The per-address connection guards.
    pub(crate) fn ip_guard(&self) -> &Arc<IpGuard> {
        &self.ip_guard
    }

    /// `limits.shutdown_grace_secs` as it is now.
    pub(crate) fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs.load(Ordering::Relaxed))
    }

    /// Installs new values (already validated by `Config::load`).
    pub(crate) fn apply(&self, limits: &LimitsSection) {
        self.slots.set_max(limits.max_connections);
        self.ip_guard.set_limits(
            limits.max_connections_per_ip,
            limits.max_connection_rate_per_ip,
        );
        self.shutdown_grace_secs
            .store(limits.shutdown_grace_secs, Ordering::Relaxed);
        self.overload.set_limit_ms(limits.overload_lag_ms);
        let mut current = self.connection.write();
        let mut next = ConnectionSettings::clone(&current);
        next.connect_timeout = limits.connect_timeout();
        next.max_pending_bytes = limits.max_pending_bytes;
        next.dormant_after = limits.dormant_after();
        next.publish_rate = PublishRateLimits::from_limits(limits);
        *current = Arc::new(next);
    }
}

/// Connection settings from `config`, for unit tests.
#[cfg(test)]
pub(crate) fn test_settings(config: &crate::Config) -> ConnectionSettings {
    ConnectionSettings {
        connect_timeout: config.limits.connect_timeout(),
        max_packet_size: config.broker.max_packet_size,
        max_pending_bytes: config.limits.max_pending_bytes,
        dormant_after: config.limits.dormant_after(),
        publish_rate: PublishRateLimits::from_limits(&config.limits),
        publish_latency: prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
            "test_latency_seconds",
            "test",
        ))
        .expect("valid histogram"),
        parked_readers: prometheus::IntGauge::new("test_parked_read", "test").expect("valid gauge"),
        parked_writers: prometheus::IntGauge::new("test_parked_write", "test")
            .expect("valid gauge"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn apply_changes_what_new_connections_get() {
        let config = Config::default();
        let mut settings = test_settings(&config);
        settings.max_packet_size = 1000;
        let live = LiveLimits::new(&config.limits, settings);
        let before = live.connection_settings();
        let mut limits = config.limits.clone();
        limits.max_connections = 2;
        limits.connect_timeout_secs = 3;
        limits.max_pending_bytes = 4;
        limits.shutdown_grace_secs = 5;
        limits.max_publish_rate = 6;
        limits.max_publish_bytes_rate = 7;
        limits.overload_lag_ms = 8;
        live.apply(&limits);
        let after = live.connection_settings();
        assert_eq!(after.connect_timeout, Duration::from_secs(3));
        assert_eq!(after.max_pending_bytes, 4);
        assert_eq!(after.max_packet_size, 1000, "not a limit: kept");
        assert_eq!(before.max_pending_bytes, config.limits.max_pending_bytes);
        assert_eq!(live.slots().max(), 2);
        assert_eq!(live.shutdown_grace(), Duration::from_secs(5));
        assert_eq!(live.publish_rate().messages_per_sec, 6);
        assert_eq!(live.publish_rate().bytes_per_sec, 7);
        assert_eq!(live.overload().limit(), Duration::from_millis(8));
    }
}

//! How often the listeners' security guards refused something, for metrics and logs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of refusals by the listener-side guards (authentication, handshakes, per-IP
/// limits, publish rates, overload). Shared by every listener; the metrics exporter reads [`GuardCounters::snapshot`].
#[derive(Debug, Default)]
pub struct GuardCounters {
    /// Bytes and sockets of every client connection (not refusals, but counted beside them).
    pub(crate) traffic: crate::traffic::Traffic,
    auth_failed: AtomicU64,
    auth_rate_limited: AtomicU64,
    anonymous_refused: AtomicU64,
    tls_handshake_failed: AtomicU64,
    ws_handshake_failed: AtomicU64,
    per_ip_connections_refused: AtomicU64,
    connection_rate_refused: AtomicU64,
    publish_rate_throttled: AtomicU64,
    publish_rate_disconnected: AtomicU64,
    overload_refused: AtomicU64,
    listener_connections_refused: AtomicU64,
    packet_too_large: AtomicU64,
}

/// A copy of [`GuardCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardSnapshot {
    /// CONNECTs refused for a wrong username or password (0x86 / return code 4).
    pub auth_failed: u64,
    /// CONNECTs refused unchecked because their address failed too often (0x9F / rc 3).
    pub auth_rate_limited: u64,
    /// Anonymous CONNECTs refused on listeners with `allow_anonymous = false` (0x87 / rc 5).
    pub anonymous_refused: u64,
    /// TLS handshakes that failed (bad or missing client certificate, wrong protocol, ...).
    pub tls_handshake_failed: u64,
    /// WebSocket upgrades that failed (wrong path, not a WebSocket request, ...).
    pub ws_handshake_failed: u64,
    /// Connections closed because their address had `limits.max_connections_per_ip` open.
    pub per_ip_connections_refused: u64,
    /// Connections closed because their address opened more than
    /// `limits.max_connection_rate_per_ip` in the last second.
    pub connection_rate_refused: u64,
    /// Times a connection's reads were paused because it published faster than
    /// `limits.max_publish_rate` / `limits.max_publish_bytes_rate`.
    pub publish_rate_throttled: u64,
    /// v5 connections closed with DISCONNECT 0x96 for publishing too fast
    /// (`limits.publish_rate_action = "disconnect"`).
    pub publish_rate_disconnected: u64,
    /// CONNECTs refused with 0x89 Server busy (v3: return code 3) in overload mode.
    pub overload_refused: u64,
    /// Connections closed because their listener had its own `max_connections` open.
    pub listener_connections_refused: u64,
    /// Connections ended because a packet was over `broker.max_packet_size` (v5: 0x95).
    pub packet_too_large: u64,
}

/// Which guard fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    AuthFailed,
    AuthRateLimited,
    AnonymousRefused,
    TlsHandshakeFailed,
    WsHandshakeFailed,
    PerIpConnections,
    ConnectionRate,
    PublishRateThrottled,
    PublishRateDisconnected,
    Overload,
    ListenerConnections,
    PacketTooLarge,
}

impl GuardCounters {
    /// Counts one refusal by `guard`.
    pub(crate) fn count(&self, guard: Guard) {
        let counter = match guard {
            Guard::AuthFailed => &self.auth_failed,
            Guard::AuthRateLimited => &self.auth_rate_limited,
            Guard::AnonymousRefused => &self.anonymous_refused,
            Guard::TlsHandshakeFailed => &self.tls_handshake_failed,
            Guard::WsHandshakeFailed => &self.ws_handshake_failed,
            Guard::PerIpConnections => &self.per_ip_connections_refused,
            Guard::ConnectionRate => &self.connection_rate_refused,
            Guard::PublishRateThrottled => &self.publish_rate_throttled,
            Guard::PublishRateDisconnected => &self.publish_rate_disconnected,
            Guard::Overload => &self.overload_refused,
            Guard::ListenerConnections => &self.listener_connections_refused,
            Guard::PacketTooLarge => &self.packet_too_large,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn snapshot(&self) -> GuardSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GuardSnapshot {
            auth_failed: get(&self.auth_failed),
            auth_rate_limited: get(&self.auth_rate_limited),
            anonymous_refused: get(&self.anonymous_refused),
            tls_handshake_failed: get(&self.tls_handshake_failed),
            ws_handshake_failed: get(&self.ws_handshake_failed),
            per_ip_connections_refused: get(&self.per_ip_connections_refused),
            connection_rate_refused: get(&self.connection_rate_refused),
            publish_rate_throttled: get(&self.publish_rate_throttled),
            publish_rate_disconnected: get(&self.publish_rate_disconnected),
            overload_refused: get(&self.overload_refused),
            listener_connections_refused: get(&self.listener_connections_refused),
            packet_too_large: get(&self.packet_too_large),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_guard_has_its_own_counter() {
        let c = GuardCounters::default();
        c.count(Guard::AuthFailed);
        c.count(Guard::AuthFailed);
        c.count(Guard::ConnectionRate);
        let s = c.snapshot();
        assert_eq!(s.auth_failed, 2);
        assert_eq!(s.connection_rate_refused, 1);
        assert_eq!(s.anonymous_refused, 0);
    }
}

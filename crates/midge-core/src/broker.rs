//! The broker state machine.

use crate::{Action, BrokerConfig, Event};
use std::time::Instant;

/// Counters the server exposes as metrics and `$SYS` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Connected clients.
    pub clients_connected: u64,
    /// Sessions known (connected plus persistent offline).
    pub sessions: u64,
    /// Subscriptions across all sessions.
    pub subscriptions: u64,
    /// Retained messages stored.
    pub retained_messages: u64,
    /// PUBLISH packets received from clients.
    pub messages_received: u64,
    /// PUBLISH packets sent to clients.
    pub messages_sent: u64,
    /// Messages dropped (queue full, expired, too large for the client).
    pub messages_dropped: u64,
}

/// The whole broker: every session, subscription and retained message of this node.
pub struct Broker {
    config: BrokerConfig,
}

impl Broker {
    /// A broker with no sessions, started at `now`.
    pub fn new(config: BrokerConfig, now: Instant) -> Broker {
        let _ = now;
        Broker { config }
    }

    /// Reacts to `event` at time `now`, appending what the server must do to `out`.
    pub fn handle(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) {
        let _ = (now, event, out, &self.config);
        todo!("core helper")
    }

    /// Current counters.
    pub fn stats(&self) -> BrokerStats {
        todo!("core helper")
    }
}

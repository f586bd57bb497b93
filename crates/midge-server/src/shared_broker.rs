//! The broker core behind a lock, plus the table that routes its actions to connections.

use crate::connection_handle::{ConnHandle, SendOutcome};
use midge_codec::{Connect, Packet, ReasonCode};
use midge_core::{Action, Broker, BrokerConfig, ConnId, Event};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// How the core answered a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectOutcome {
    /// The session is up. `assigned_client_id` is set when the client sent an empty id and the
    /// core chose one (v5 CONNACK Assigned Client Identifier).
    Accepted { assigned_client_id: Option<String> },
    /// The core refused it (its CONNACK carried `reason`) and closed the connection.
    Refused { reason: ReasonCode },
    /// The server is shutting down; the connection was not registered.
    ShuttingDown,
}

/// The one broker of this process, shared by every connection task and the tick task.
///
/// All access goes through short, synchronous critical sections: lock, feed events to the
/// core, hand each resulting action to its connection's queue (non-blocking), unlock. Actions
/// are dispatched while the lock is still held so that two events' packets to the same
/// connection can never be queued out of order. The lock is never held across an `.await`.
pub(crate) struct SharedBroker {
    state: Mutex<State>,
    next_conn_id: AtomicU64,
}

struct State {
    broker: Broker,
    /// Connections the core knows: inserted before `Event::Connect`, removed on
    /// `Action::Close` or when the connection ends. Membership is how we tell whether the core
    /// still expects an `Event::Closed` for a connection.
    conns: HashMap<ConnId, ConnHandle>,
    /// Reused for every event so dispatch does not allocate.
    actions: Vec<Action>,
    shutting_down: bool,
}

/// The core's clock. `tokio::time` so tests that pause time move the broker's timers too.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl SharedBroker {
    /// A fresh broker.
    pub(crate) fn new(config: BrokerConfig) -> SharedBroker {
        SharedBroker {
            state: Mutex::new(State {
                broker: Broker::new(config, now()),
                conns: HashMap::new(),
                actions: Vec::new(),
                shutting_down: false,
            }),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// A connection id never used before in this process.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers `handle` as `conn` and hands the core its CONNECT.
    pub(crate) fn connect(
        &self,
        conn: ConnId,
        handle: ConnHandle,
        connect: Box<Connect>,
    ) -> ConnectOutcome {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.shutting_down {
            return ConnectOutcome::ShuttingDown;
        }
        state.conns.insert(conn, handle);
        state
            .broker
            .handle(now(), Event::Connect { conn, connect }, &mut state.actions);
        let mut reason = ReasonCode::Success;
        let mut assigned_client_id = None;
        for action in &state.actions {
            if let Action::Send {
                conn: to,
                packet: Packet::ConnAck(ack),
            } = action
            {
                if *to == conn {
                    reason = ack.reason;
                    assigned_client_id = ack.properties.assigned_client_identifier.clone();
                }
            }
        }
        state.dispatch();
        if state.conns.contains_key(&conn) && !reason.is_error() {
            ConnectOutcome::Accepted { assigned_client_id }
        } else {
            ConnectOutcome::Refused {
                reason: if reason.is_error() {
                    reason
                } else {
                    ReasonCode::UnspecifiedError
                },
            }
        }
    }

    /// Hands the core a batch of packets from `conn` under one lock acquisition, draining
    /// `packets`. Packets after one that made the core close the connection are discarded.
    pub(crate) fn packets(&self, conn: ConnId, packets: &mut Vec<Packet>) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        for packet in packets.drain(..) {
            if !state.conns.contains_key(&conn) {
                break;
            }
            state.handle(Event::Packet { conn, packet });
        }
    }

    /// The connection ended on our side (EOF, I/O error, decode error, writer gone). Tells the
    /// core unless it had already closed the connection itself.
    pub(crate) fn closed(&self, conn: ConnId) {
        let mut guard = self.state.lock();
        if guard.conns.remove(&conn).is_some() {
            guard.handle(Event::Closed { conn });
        }
    }

    /// Drives the core's timers.
    pub(crate) fn tick(&self) {
        self.state.lock().handle(Event::Tick);
    }

    /// Tells the core the server is going away (v5 clients get DISCONNECT 0x8B and every
    /// connection is closed), and refuses later CONNECTs.
    pub(crate) fn shutdown(&self) {
        let mut guard = self.state.lock();
        guard.shutting_down = true;
        guard.handle(Event::Shutdown);
    }

    /// True once [`SharedBroker::shutdown`] ran.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.lock().shutting_down
    }
}

impl State {
    fn handle(&mut self, event: Event) {
        self.broker.handle(now(), event, &mut self.actions);
        self.dispatch();
    }

    /// Carries out the queued actions in order. Actions for connections that are already gone
    /// are dropped: the core may still address a connection whose socket just failed.
    fn dispatch(&mut self) {
        for action in self.actions.drain(..) {
            match action {
                // No storage yet: nothing to persist, and durable acknowledgements go out at
                // once (the core only emits these with `BrokerConfig::durable` set).
                Action::Persist(_) => {}
                Action::Send { conn, packet } | Action::SendDurable { conn, packet } => {
                    let Some(handle) = self.conns.get(&conn) else {
                        continue;
                    };
                    if handle.send(packet) == SendOutcome::DroppedSlowReader
                        && handle.dropped_qos0() == 1
                    {
                        // Once per connection: a warning per message would flood the log
                        // exactly when the broker is under pressure.
                        tracing::warn!(
                            "Client {} is not reading fast enough; dropping QoS 0 messages to \
                             it while its backlog is over limits.max_pending_bytes.",
                            handle.label()
                        );
                    }
                }
                Action::Close { conn } => {
                    if let Some(handle) = self.conns.remove(&conn) {
                        handle.close();
                    }
                }
            }
        }
    }
}

//! Getting one message to one session: send now, put in flight, or queue.

use crate::action::Action;
use crate::connection::Connection;
use crate::dropped::{DropCounts, DropReason};
use crate::durable::{DurableOp, MessageState};
use crate::inflight::InflightState;
use crate::message::Message;
use crate::offline_queue::{Enqueued, QueueLimits};
use crate::session::Session;
use crate::topic_alias::AliasUse;
use midge_codec::{encoded_len, Ack, AckKind, Packet, Publish, QoS};
use std::num::NonZeroU32;
use std::time::Instant;

/// Message counters kept by the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// PUBLISH packets received from clients.
    pub received: u64,
    /// PUBLISH packets sent to clients.
    pub sent: u64,
    /// Messages dropped (queue full, expired, too large for the client).
    pub dropped: u64,
    /// The same, by reason.
    pub dropped_by: DropCounts,
    /// PUBLISH packets received, by QoS.
    pub received_qos: [u64; 3],
    /// Payload bytes of the PUBLISH packets received.
    pub received_bytes: u64,
    /// PUBLISH packets sent, by QoS.
    pub sent_qos: [u64; 3],
    /// Payload bytes of the PUBLISH packets sent.
    pub sent_bytes: u64,
    /// `Action::Persist` emitted.
    pub persisted: u64,
    /// `Action::Forward` emitted (publishes sent to peers).
    pub forwarded: u64,
    /// Publishes peers forwarded here.
    pub forwarded_in: u64,
    /// Retained publishes refused because `max_retained_messages` were stored.
    pub retained_refused_count: u64,
    /// Retained publishes refused because their payload was over `max_retained_payload`.
    pub retained_refused_payload: u64,
    /// Retained publishes refused because the store would hold over `max_retained_bytes`.
    pub retained_refused_bytes: u64,
    /// Connections accepted (CONNACK success), ever.
    pub connects: u64,
    /// Sessions removed because their expiry interval passed while offline.
    pub sessions_expired: u64,
}

impl Counters {
    /// Counts a message dropped for `reason`.
    pub fn drop_message(&mut self, reason: DropReason) {
        self.dropped += 1;
        self.dropped_by.add(reason);
    }

    /// Counts a PUBLISH received from a client.
    pub fn count_received(&mut self, publish: &Publish) {
        self.received += 1;
        self.received_qos[publish.qos as usize] += 1;
        self.received_bytes += publish.payload.len() as u64;
    }

    /// Counts a PUBLISH sent to a client.
    pub fn count_sent(&mut self, publish: &Publish) {
        self.sent += 1;
        self.sent_qos[publish.qos as usize] += 1;
        self.sent_bytes += publish.payload.len() as u64;
    }
}

/// Where delivery writes: the actions, the counters, and the queue settings.
pub struct Outbox<'a> {
    /// The current time.
    pub now: Instant,
    /// Actions for the server.
    pub out: &'a mut Vec<Action>,
    /// Message counters.
    pub counters: &'a mut Counters,
    /// Most messages queued per session.
    pub max_queued: usize,
    /// Most bytes queued per session (0: no limit).
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline sessions.
    pub queue_qos0: bool,
    /// Emit `Persist` for changes to persistent sessions.
    pub durable: bool,
}

impl Outbox<'_> {
    /// Queues `packet` for `conn`.
    pub fn send(&mut self, conn: &Connection, packet: Packet) {
        self.out.push(Action::Send {
            conn: conn.id,
            packet,
        });
    }

    /// Emits `op` as an `Action::Persist`.
    pub fn persist(&mut self, op: DurableOp) {
        self.counters.persisted += 1;
        self.out.push(Action::Persist(Box::new(op)));
    }
}

/// Sends `publish` on `conn` with a topic alias where possible, unless it exceeds the client's
/// Maximum Packet Size, in which case it is discarded as if sent (MQTT-3.1.2-24, -25).
/// `persist`, if given, is emitted just before the packet when it is sent. Returns true if it
/// was sent.
pub fn transmit(
    conn: &mut Connection,
    mut publish: Publish,
    ob: &mut Outbox,
    persist: Option<DurableOp>,
) -> bool {
    let alias = conn.aliases_out.apply(&mut publish);
    if let Some(max) = conn
        .max_packet_size
        .map(NonZeroU32::get)
        .filter(|&max| max < midge_codec::MAX_PACKET_SIZE)
    {
        let packet = Packet::Publish(publish);
        let fits = encoded_len(&packet, conn.version).is_ok_and(|len| len <= max as usize);
        if !fits {
            if let (AliasUse::New(_), Packet::Publish(p)) = (alias, &packet) {
                conn.aliases_out.forget(&p.topic);
            }
            ob.counters.drop_message(DropReason::TooLarge);
            return false;
        }
        if let Packet::Publish(p) = &packet {
            ob.counters.count_sent(p);
        }
        if let Some(op) = persist {
            ob.persist(op);
        }
        ob.send(conn, packet);
        return true;
    }
    ob.counters.count_sent(&publish);
    if let Some(op) = persist {
        ob.persist(op);
    }
    ob.send(conn, Packet::Publish(publish));
    true
}

impl Session {
    /// Delivers `message` to this session: to its connection (`conn`, which must be the
    /// session's) now if the inflight window allows, else into the queue.
    pub fn deliver(&mut self, conn: Option<&mut Connection>, message: Message, ob: &mut Outbox) {
        match conn {
            Some(conn) => {
                if message.publish.qos == QoS::AtMostOnce {
                    send_qos0(conn, message, ob);
                } else if self.queue.is_empty() && self.inflight.len() < usize::from(conn.window) {
                    let seq = self.take_seq();
                    self.send_in_flight(conn, seq, message, false, ob);
                } else {
                    let seq = self.take_seq();
                    self.enqueue(seq, message, false, ob);
                }
            }
            None => {
                if message.publish.qos == QoS::AtMostOnce && !ob.queue_qos0 {
                    return;
                }
                let seq = self.take_seq();
                self.enqueue(seq, message, false, ob);
            }
        }
    }

    /// Moves queued messages into the inflight window while it has room.
    pub fn fill_window(&mut self, conn: &mut Connection, ob: &mut Outbox) {
        while self.inflight.len() < usize::from(conn.window) {
            let Some((seq, message)) = self.queue.pop() else {
                break;
            };
            if message.publish.qos == QoS::AtMostOnce {
                send_qos0(conn, message, ob);
            } else {
                self.send_in_flight(conn, seq, message, true, ob);
            }
        }
    }

    /// After a resumed CONNACK: re-sends every unacknowledged PUBLISH with DUP=1 and every
    /// PUBREL, in the original order (MQTT-4.4.0-1, MQTT-4.6.0-1), then fills the window.
    pub fn resume(&mut self, conn: &mut Connection, ob: &mut Outbox) {
        let mut too_large = Vec::new();
        for (_, packet_id, state) in self.inflight.in_send_order() {
            match state {
                InflightState::Published(message) => {
                    let mut publish = message.to_send(ob.now);
                    publish.dup = true;
                    if !transmit(conn, publish, ob, None) {
                        too_large.push(packet_id);
                    }
                }
                InflightState::Released => {
                    ob.send(conn, Packet::Ack(Ack::new(AckKind::PubRel, packet_id)));
                }
            }
        }
        for packet_id in too_large {
            if let Some(entry) = self.inflight.remove(packet_id) {
                self.forget_message(entry.seq, ob);
            }
        }
        self.fill_window(conn, ob);
    }

    /// True if changes to this session's messages are emitted as `Persist`.
    pub fn persists(&self, ob: &Outbox) -> bool {
        ob.durable && self.is_persistent()
    }

    /// Emits `MessagePut` for message `seq` in `state`, if the session persists.
    pub fn persist_message(
        &self,
        seq: u64,
        message: &Message,
        state: MessageState,
        ob: &mut Outbox,
    ) {
        if self.persists(ob) && message.publish.qos != QoS::AtMostOnce {
            ob.persist(DurableOp::MessagePut {
                client_id: self.client_id.clone(),
                seq,
                message: message.clone(),
                state,
            });
        }
    }

    /// Emits `MessageDelete` for message `seq` (completed, dropped or expired), if the
    /// session persists.
    pub fn forget_message(&mut self, seq: u64, ob: &mut Outbox) {
        self.shared_seqs.remove(seq);
        if self.persists(ob) {
            ob.persist(DurableOp::MessageDelete {
                client_id: self.client_id.clone(),
                seq,
            });
        }
    }

    /// Puts a QoS 1/2 message in flight. `queued` says it comes from the queue, so it is
    /// already durable (as `Queued`) under `seq`.
    fn send_in_flight(
        &mut self,
        conn: &mut Connection,
        seq: u64,
        mut message: Message,
        queued: bool,
        ob: &mut Outbox,
    ) {
        if message.is_expired(ob.now) {
            ob.counters.drop_message(DropReason::Expired);
            if queued {
                self.forget_message(seq, ob);
            }
            return;
        }
        let Some(packet_id) = self.inflight.allocate_id() else {
            self.enqueue(seq, message, queued, ob);
            return;
        };
        message.publish.packet_id = Some(packet_id);
        message.publish.dup = false;
        let persist = self.persists(ob).then(|| DurableOp::MessagePut {
            client_id: self.client_id.clone(),
            seq,
            message: message.clone(),
            state: MessageState::Sent { packet_id },
        });
        if transmit(conn, message.to_send(ob.now), ob, persist) {
            self.inflight.insert(packet_id, seq, message);
        } else if queued {
            self.forget_message(seq, ob);
        }
    }

    /// Queues `message` under `seq`; `queued` says it is already durable as `Queued`.
    fn enqueue(&mut self, seq: u64, message: Message, queued: bool, ob: &mut Outbox) {
        let persist = !queued && self.persists(ob);
        let limits = QueueLimits {
            messages: ob.max_queued,
            bytes: ob.max_queued_bytes,
        };
        // Dropped QoS 0 messages were never persisted: nothing to forget durably.
        match self.queue.push(seq, message, limits) {
            Enqueued::Stored => {}
            Enqueued::StoredDroppingQoS0 {
                for_count,
                for_bytes,
            } => {
                for _ in 0..for_count {
                    ob.counters.drop_message(DropReason::QueueFull);
                }
                for _ in 0..for_bytes {
                    ob.counters.drop_message(DropReason::QueueBytes);
                }
            }
            Enqueued::Dropped(reason) => {
                ob.counters.drop_message(reason);
                if queued {
                    self.forget_message(seq, ob);
                }
                return;
            }
        }
        if persist {
            if let Some(message) = self.queue.last() {
                self.persist_message(seq, message, MessageState::Queued, ob);
            }
        }
    }
}

fn send_qos0(conn: &mut Connection, message: Message, ob: &mut Outbox) {
    if message.is_expired(ob.now) {
        ob.counters.drop_message(DropReason::Expired);
        return;
    }
    transmit(conn, message.into_send(ob.now), ob, None);
}

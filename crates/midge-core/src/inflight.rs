//! The outgoing inflight window: QoS 1 and 2 publishes sent to a client and not yet completed.

use crate::hash::IntMap;
use crate::message::Message;
use crate::packet_ids::PacketIdAllocator;
use midge_codec::{PacketId, QoS};

/// Where an outgoing QoS 1/2 message is in its acknowledgement flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflightState {
    /// PUBLISH sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2). The packet id is set.
    Published(Message),
    /// PUBREL sent; waiting for PUBCOMP.
    Released,
}

/// One entry of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InflightEntry {
    /// The session's sequence number of the message: send order, used to re-send in the
    /// original order on resume (MQTT-4.6.0-1), and its identity in durable state.
    pub seq: u64,
    /// Flow state.
    pub state: InflightState,
}

/// What a PUBREC did to the window.
// A short-lived return value; boxing the message would cost an allocation per PUBREC.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubRecOutcome {
    /// The QoS 2 message moved to "released": send PUBREL. Carries the message it no longer
    /// keeps, and its sequence number.
    Released {
        /// The message's sequence number.
        seq: u64,
        /// The message that was awaiting PUBREC.
        message: Message,
    },
    /// PUBREL was already sent (a repeated PUBREC): send PUBREL again.
    AlreadyReleased,
    /// No QoS 2 message with that id is in flight.
    Unknown,
}

/// Outgoing QoS 1/2 messages by packet id.
#[derive(Debug, Clone, Default)]
pub struct Inflight {
    entries: IntMap<PacketId, InflightEntry>,
    ids: PacketIdAllocator,
}

impl Inflight {
    /// Messages in flight (including those awaiting PUBCOMP).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// An unused, non-zero packet id.
    pub fn allocate_id(&mut self) -> Option<PacketId> {
        let entries = &self.entries;
        self.ids.allocate(|id| entries.contains_key(&id))
    }

    /// Records `message` (already carrying `packet_id`) with sequence number `seq` as sent.
    pub fn insert(&mut self, packet_id: PacketId, seq: u64, message: Message) {
        self.entries.insert(
            packet_id,
            InflightEntry {
                seq,
                state: InflightState::Published(message),
            },
        );
    }

    /// Records a QoS 2 flow with sequence number `seq` as released (PUBREL sent); used when
    /// restoring durable state.
    pub fn insert_released(&mut self, packet_id: PacketId, seq: u64) {
        self.entries.insert(
            packet_id,
            InflightEntry {
                seq,
                state: InflightState::Released,
            },
        );
    }

    /// A PUBACK arrived: completes a QoS 1 message. Returns its sequence number if it freed a
    /// slot.
    pub fn on_puback(&mut self, packet_id: PacketId) -> Option<u64> {
        let is_qos1 = matches!(
            self.entries.get(&packet_id),
            Some(InflightEntry { state: InflightState::Published(m), .. })
                if m.publish.qos == QoS::AtLeastOnce
        );
        self.remove_if(is_qos1, packet_id)
    }

    fn remove_if(&mut self, condition: bool, packet_id: PacketId) -> Option<u64> {
        if condition {
            self.entries.remove(&packet_id).map(|e| e.seq)
        } else {
            None
        }
    }

    /// A successful PUBREC arrived for a QoS 2 message.
    pub fn on_pubrec(&mut self, packet_id: PacketId) -> PubRecOutcome {
        let Some(entry) = self.entries.get_mut(&packet_id) else {
            return PubRecOutcome::Unknown;
        };
        match &entry.state {
            InflightState::Published(m) if m.publish.qos == QoS::ExactlyOnce => {
                match std::mem::replace(&mut entry.state, InflightState::Released) {
                    InflightState::Published(message) => PubRecOutcome::Released {
                        seq: entry.seq,
                        message,
                    },
                    InflightState::Released => PubRecOutcome::AlreadyReleased,
                }
            }
            InflightState::Released => PubRecOutcome::AlreadyReleased,
            InflightState::Published(_) => PubRecOutcome::Unknown,
        }
    }

    /// A PUBREC with an error reason (v5) ends a QoS 2 flow. Returns its sequence number if it
    /// freed a slot.
    pub fn on_pubrec_error(&mut self, packet_id: PacketId) -> Option<u64> {
        let awaiting = matches!(
            self.entries.get(&packet_id),
            Some(InflightEntry { state: InflightState::Published(m), .. })
                if m.publish.qos == QoS::ExactlyOnce
        );
        self.remove_if(awaiting, packet_id)
    }

    /// A PUBCOMP arrived. Returns the message's sequence number if it freed a slot.
    pub fn on_pubcomp(&mut self, packet_id: PacketId) -> Option<u64> {
        let released = matches!(
            self.entries.get(&packet_id),
            Some(InflightEntry {
                state: InflightState::Released,
                ..
            })
        );
        self.remove_if(released, packet_id)
    }

    /// Sequence numbers, packet ids and states in original send order (for re-sending on
    /// resume).
    pub fn in_send_order(&self) -> Vec<(u64, PacketId, &InflightState)> {
        let mut list: Vec<(u64, PacketId, &InflightState)> = self
            .entries
            .iter()
            .map(|(id, e)| (e.seq, *id, &e.state))
            .collect();
        list.sort_unstable_by_key(|(seq, _, _)| *seq);
        list
    }

    /// Forgets `packet_id` (used when a re-send is dropped as too large for the client).
    pub fn remove(&mut self, packet_id: PacketId) -> Option<InflightEntry> {
        self.entries.remove(&packet_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::Publish;

    fn msg(qos: QoS, id: PacketId) -> Message {
        Message {
            publish: Publish {
                dup: false,
                qos,
                retain: false,
                topic: "t".into(),
                packet_id: Some(id),
                properties: Default::default(),
                payload: Bytes::new(),
            },
            expires_at: None,
        }
    }

    #[test]
    fn qos1_flow() {
        let mut w = Inflight::default();
        let id = w.allocate_id().unwrap();
        assert_eq!(id, 1);
        w.insert(id, 7, msg(QoS::AtLeastOnce, id));
        assert_eq!(w.on_pubrec(id), PubRecOutcome::Unknown);
        assert_eq!(w.on_pubcomp(id), None);
        assert_eq!(w.on_puback(id), Some(7));
        assert_eq!(w.on_puback(id), None);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn qos2_flow_and_order() {
        let mut w = Inflight::default();
        for seq in [30, 10, 20] {
            let id = w.allocate_id().unwrap();
            w.insert(id, seq, msg(QoS::ExactlyOnce, id));
        }
        assert_eq!(w.on_puback(2), None);
        assert_eq!(
            w.on_pubrec(2),
            PubRecOutcome::Released {
                seq: 10,
                message: msg(QoS::ExactlyOnce, 2)
            }
        );
        assert_eq!(w.on_pubrec(2), PubRecOutcome::AlreadyReleased);
        let order: Vec<_> = w.in_send_order().into_iter().map(|(_, id, _)| id).collect();
        assert_eq!(order, vec![2, 3, 1]);
        assert_eq!(w.on_pubcomp(2), Some(10));
        assert_eq!(w.on_pubrec_error(3), Some(20));
        assert_eq!(w.len(), 1);
        // id 2 and 3 are free again, 1 is still in use
        assert_eq!(w.allocate_id(), Some(4));
    }
}

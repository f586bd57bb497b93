//! The outgoing inflight window: QoS 1 and 2 publishes sent to a client and not yet completed.
//!
//! Entries sit in a ring in send order, and a packet id is the ring position it was sent at
//! (ids count up from the oldest entry's, wrapping after 65,535). Acknowledgements come
//! mostly in send order, so completing one touches the session's oldest slot instead of a
//! hashed one: with 1,000 subscribers each holding messages in flight, a hashed slot is a
//! cache miss per acknowledgement and finding a free id was another. An entry whose
//! acknowledgement does not come while newer ones complete leaves completed slots behind it;
//! once those outnumber the live ones it moves to a small side table (`stuck`), so the ring
//! stays at most about twice the window and a client that never acknowledges one message
//! still gets new ones.

use crate::hash::IntMap;
use crate::message::Message;
use midge_codec::{PacketId, QoS};
use std::collections::VecDeque;

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

/// Packet ids there are (1 to 65,535): the most entries in flight at once.
const IDS: usize = u16::MAX as usize;

/// Completed slots the ring may hold beyond its live entries before the oldest entry moves
/// to the side table.
const SLACK: usize = 64;

/// Outgoing QoS 1/2 messages by packet id.
#[derive(Debug, Clone)]
pub struct Inflight {
    /// Entries in send order; slot `k` is packet id `head_id + k` (wrapping, never 0). `None`:
    /// completed while an older entry was still in flight. The front slot is never `None`.
    ring: VecDeque<Option<InflightEntry>>,
    /// The packet id of the front slot.
    head_id: PacketId,
    /// `Some` slots in `ring`.
    live: u32,
    /// Entries taken out of the ring's numbering: old ones still unacknowledged after many
    /// newer ones completed, and restored ones whose ids do not follow the ring's.
    stuck: Option<Box<IntMap<PacketId, InflightEntry>>>,
}

impl Default for Inflight {
    fn default() -> Self {
        Inflight {
            ring: VecDeque::new(),
            head_id: 1,
            live: 0,
            stuck: None,
        }
    }
}

/// How far `id` is past `from`, counting up and wrapping within 1..=65,535.
fn distance(from: PacketId, id: PacketId) -> usize {
    (usize::from(id) + IDS - usize::from(from)) % IDS
}

/// `id` advanced by `k` (wrapping within 1..=65,535).
fn id_after(id: PacketId, k: usize) -> PacketId {
    let zero_based = (usize::from(id) - 1 + k) % IDS;
    // In 0..65,535, so the id is in 1..=65,535.
    (zero_based + 1) as PacketId
}

impl Inflight {
    /// Messages in flight (including those awaiting PUBCOMP).
    pub fn len(&self) -> usize {
        self.live as usize + self.stuck.as_ref().map_or(0, |s| s.len())
    }

    fn stuck_has(&self, id: PacketId) -> bool {
        self.stuck.as_ref().is_some_and(|s| s.contains_key(&id))
    }

    /// The ring slot `id` would occupy, if the ring has one for it.
    fn offset(&self, id: PacketId) -> Option<usize> {
        if id == 0 || self.ring.is_empty() {
            return None;
        }
        let k = distance(self.head_id, id);
        (k < self.ring.len()).then_some(k)
    }

    /// The packet id the next slot at the back of the ring gets.
    fn tail_id(&self) -> PacketId {
        id_after(self.head_id, self.ring.len())
    }

    /// Drops completed slots from the front.
    fn trim(&mut self) {
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.head_id = id_after(self.head_id, 1);
        }
    }

    /// Moves the front entry to the side table.
    fn unstick_front(&mut self) {
        if let Some(front) = self.ring.pop_front() {
            if let Some(entry) = front {
                self.live -= 1;
                self.stuck
                    .get_or_insert_with(Default::default)
                    .insert(self.head_id, entry);
            }
            self.head_id = id_after(self.head_id, 1);
            self.trim();
        }
    }

    /// An unused, non-zero packet id (MQTT-2.2.1-4), or `None` if all 65,535 are in use.
    /// Until an entry is inserted under it, the same id is returned again.
    pub fn allocate_id(&mut self) -> Option<PacketId> {
        if self.len() >= IDS {
            return None;
        }
        loop {
            if self.ring.len() >= IDS {
                // The next id would be the front's own.
                self.unstick_front();
                continue;
            }
            let id = self.tail_id();
            if !self.stuck_has(id) {
                return Some(id);
            }
            // Taken by an entry in the side table: skip it.
            if self.ring.is_empty() {
                self.head_id = id_after(id, 1);
            } else {
                self.ring.push_back(None);
            }
        }
    }

    fn put(&mut self, packet_id: PacketId, entry: InflightEntry) {
        if packet_id == 0 {
            return;
        }
        self.take_stuck(packet_id);
        if self.ring.is_empty() {
            self.head_id = packet_id;
        }
        let k = distance(self.head_id, packet_id);
        if let Some(slot) = self.ring.get_mut(k) {
            if slot.is_none() {
                self.live += 1;
            }
            *slot = Some(entry);
        } else if k - self.ring.len() > self.ring.len().max(SLACK) {
            // Far ahead of the ring (only restored ids can be): a gap that size would be
            // mostly empty slots.
            self.stuck
                .get_or_insert_with(Default::default)
                .insert(packet_id, entry);
        } else {
            self.ring.resize(k, None);
            self.ring.push_back(Some(entry));
            self.live += 1;
        }
        while self.ring.len() > 2 * self.live as usize + SLACK {
            self.unstick_front();
        }
    }

    /// The entry for `packet_id`.
    fn get_mut(&mut self, packet_id: PacketId) -> Option<&mut InflightEntry> {
        match self.offset(packet_id) {
            Some(k) if matches!(self.ring.get(k), Some(Some(_))) => {
                self.ring.get_mut(k).and_then(Option::as_mut)
            }
            _ => self.stuck.as_mut()?.get_mut(&packet_id),
        }
    }

    /// Records `message` (already carrying `packet_id`) with sequence number `seq` as sent.
    pub fn insert(&mut self, packet_id: PacketId, seq: u64, message: Message) {
        self.put(
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
        self.put(
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
            self.get_mut(packet_id),
            Some(InflightEntry { state: InflightState::Published(m), .. })
                if m.publish.qos == QoS::AtLeastOnce
        );
        self.remove_if(is_qos1, packet_id)
    }

    fn remove_if(&mut self, condition: bool, packet_id: PacketId) -> Option<u64> {
        if condition {
            self.remove(packet_id).map(|e| e.seq)
        } else {
            None
        }
    }

    /// A successful PUBREC arrived for a QoS 2 message.
    pub fn on_pubrec(&mut self, packet_id: PacketId) -> PubRecOutcome {
        let Some(entry) = self.get_mut(packet_id) else {
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
            self.get_mut(packet_id),
            Some(InflightEntry { state: InflightState::Published(m), .. })
                if m.publish.qos == QoS::ExactlyOnce
        );
        self.remove_if(awaiting, packet_id)
    }

    /// A PUBCOMP arrived. Returns the message's sequence number if it freed a slot.
    pub fn on_pubcomp(&mut self, packet_id: PacketId) -> Option<u64> {
        let released = matches!(
            self.get_mut(packet_id),
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
        let ring = self.ring.iter().enumerate().filter_map(|(k, slot)| {
            slot.as_ref()
                .map(|e| (e.seq, id_after(self.head_id, k), &e.state))
        });
        let stuck = self
            .stuck
            .iter()
            .flat_map(|s| s.iter())
            .map(|(id, e)| (e.seq, *id, &e.state));
        let mut list: Vec<(u64, PacketId, &InflightState)> = ring.chain(stuck).collect();
        list.sort_unstable_by_key(|(seq, _, _)| *seq);
        list
    }

    /// Forgets `packet_id` (completed, or a re-send dropped as too large for the client).
    pub fn remove(&mut self, packet_id: PacketId) -> Option<InflightEntry> {
        if let Some(k) = self.offset(packet_id) {
            if let Some(entry) = self.ring.get_mut(k).and_then(Option::take) {
                self.live -= 1;
                self.trim();
                return Some(entry);
            }
        }
        self.take_stuck(packet_id)
    }

    /// Takes `packet_id` out of the side table, dropping the table once empty.
    fn take_stuck(&mut self, packet_id: PacketId) -> Option<InflightEntry> {
        let stuck = self.stuck.as_mut()?;
        let entry = stuck.remove(&packet_id);
        if stuck.is_empty() {
            self.stuck = None;
        }
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::Publish;
    use proptest::prelude::*;

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

    /// Sends one QoS 1 message with the next id, as delivery does.
    fn send(w: &mut Inflight, seq: u64) -> PacketId {
        let id = w.allocate_id().expect("a free id");
        w.insert(id, seq, msg(QoS::AtLeastOnce, id));
        id
    }

    #[test]
    fn ids_count_up_never_zero_and_wrap() {
        // MQTT-2.2.1-3: a QoS 1/2 PUBLISH has a non-zero packet identifier.
        let mut w = Inflight::default();
        w.insert(65_534, 0, msg(QoS::AtLeastOnce, 65_534));
        let ids: Vec<_> = (1..=3).map(|seq| send(&mut w, seq)).collect();
        assert_eq!(ids, [65_535, 1, 2]);
        assert_eq!(w.on_puback(1), Some(2));
        assert_eq!(w.on_puback(65_534), Some(0));
        assert_eq!(w.on_puback(65_535), Some(1));
        assert_eq!(w.on_puback(2), Some(3));
        assert_eq!((w.len(), w.ring.len()), (0, 0));
        // An id is not handed out twice before it is used.
        assert_eq!(w.allocate_id(), Some(3));
        assert_eq!(w.allocate_id(), Some(3));
        assert_eq!(w.on_puback(0), None);
    }

    #[test]
    fn acknowledgements_in_any_order() {
        let mut w = Inflight::default();
        let ids: Vec<_> = (0..10).map(|seq| send(&mut w, seq)).collect();
        for (seq, id) in ids.iter().enumerate().rev() {
            assert_eq!(w.on_puback(*id), Some(seq as u64));
            assert_eq!(w.on_puback(*id), None, "completed once");
        }
        assert_eq!((w.len(), w.ring.len()), (0, 0));
    }

    #[test]
    fn an_entry_never_acknowledged_moves_aside_and_its_id_stays_taken() {
        // MQTT-2.2.1-4: a new PUBLISH gets an identifier that is currently unused, also
        // after the ids wrap around past one that is still in flight.
        let mut w = Inflight::default();
        let stuck = send(&mut w, 0);
        for seq in 1..=70_000 {
            let id = send(&mut w, seq);
            assert_ne!(id, stuck);
            assert_eq!(w.on_puback(id), Some(seq));
            assert!(w.ring.len() <= SLACK + 4, "the ring stays small");
        }
        assert_eq!(w.len(), 1);
        assert_eq!(w.in_send_order().len(), 1);
        assert_eq!(w.on_puback(stuck), Some(0));
        assert_eq!(w.len(), 0);
        assert!(w.stuck.is_none());
    }

    #[test]
    fn restored_ids_in_any_pattern() {
        let mut w = Inflight::default();
        // Restored in sequence order, as `restore` does: gaps, a far-away id, one behind.
        for (seq, id) in [(1, 5), (2, 9), (3, 40_000), (4, 3)] {
            w.insert(id, seq, msg(QoS::AtLeastOnce, id));
        }
        w.insert_released(12, 5);
        let order: Vec<_> = w.in_send_order().into_iter().map(|(_, id, _)| id).collect();
        assert_eq!(order, [5, 9, 40_000, 3, 12]);
        let mut fresh = Vec::new();
        for seq in 6..20 {
            fresh.push(send(&mut w, seq));
        }
        assert!(fresh.iter().all(|id| ![5, 9, 40_000, 3, 12].contains(id)));
        assert_eq!(w.on_puback(40_000), Some(3));
        assert_eq!(w.on_puback(3), Some(4));
        assert_eq!(w.on_pubcomp(12), Some(5));
        assert_eq!(w.on_puback(9), Some(2));
        assert_eq!(w.on_puback(5), Some(1));
        assert_eq!(w.len(), fresh.len());
    }

    #[test]
    fn all_ids_in_use() {
        let mut w = Inflight::default();
        for seq in 0..u64::from(u16::MAX) {
            send(&mut w, seq);
        }
        assert_eq!(w.allocate_id(), None);
        assert_eq!(w.on_puback(7), Some(6));
        assert_eq!(w.allocate_id(), Some(7));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Send(QoS),
        Ack(usize),
        Rec(usize),
        Comp(usize),
        Restore(PacketId),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop_oneof![Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)].prop_map(Op::Send),
            3 => any::<usize>().prop_map(Op::Ack),
            1 => any::<usize>().prop_map(Op::Rec),
            1 => any::<usize>().prop_map(Op::Comp),
            1 => (1..=u16::MAX).prop_map(Op::Restore),
        ]
    }

    proptest! {
        /// Against a plain map of packet id -> entry: the same answers for every operation,
        /// and a fresh id is never one in use.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..300)) {
            let mut w = Inflight::default();
            let mut model: std::collections::HashMap<PacketId, InflightEntry> = Default::default();
            let mut seq = 0;
            for op in ops {
                seq += 1;
                // Acknowledge an id in flight (picked by index) or one that is not.
                let mut ids: Vec<PacketId> = model.keys().copied().collect();
                ids.sort_unstable();
                ids.push(seq as PacketId | 1);
                let pick = |i: usize| ids[i % ids.len()];
                match op {
                    Op::Send(qos) => {
                        let id = w.allocate_id().unwrap();
                        prop_assert!(id != 0 && !model.contains_key(&id));
                        w.insert(id, seq, msg(qos, id));
                        model.insert(id, InflightEntry { seq, state: InflightState::Published(msg(qos, id)) });
                    }
                    Op::Ack(i) => {
                        let id = pick(i);
                        let expect = match model.get(&id) {
                            Some(InflightEntry { state: InflightState::Published(m), .. })
                                if m.publish.qos == QoS::AtLeastOnce => model.remove(&id).map(|e| e.seq),
                            _ => None,
                        };
                        prop_assert_eq!(w.on_puback(id), expect);
                    }
                    Op::Rec(i) => {
                        let id = pick(i);
                        let expect = match model.get_mut(&id) {
                            Some(e) => match &e.state {
                                InflightState::Published(m) if m.publish.qos == QoS::ExactlyOnce => {
                                    let InflightState::Published(m) = std::mem::replace(&mut e.state, InflightState::Released) else { unreachable!() };
                                    PubRecOutcome::Released { seq: e.seq, message: m }
                                }
                                InflightState::Released => PubRecOutcome::AlreadyReleased,
                                InflightState::Published(_) => PubRecOutcome::Unknown,
                            },
                            None => PubRecOutcome::Unknown,
                        };
                        prop_assert_eq!(w.on_pubrec(id), expect);
                    }
                    Op::Comp(i) => {
                        let id = pick(i);
                        let expect = match model.get(&id) {
                            Some(InflightEntry { state: InflightState::Released, .. }) => model.remove(&id).map(|e| e.seq),
                            _ => None,
                        };
                        prop_assert_eq!(w.on_pubcomp(id), expect);
                    }
                    Op::Restore(id) => {
                        // As restoring durable state does (also over an id in use).
                        w.insert_released(id, seq);
                        model.insert(id, InflightEntry { seq, state: InflightState::Released });
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                let mut expect: Vec<_> = model.iter().map(|(id, e)| (e.seq, *id, &e.state)).collect();
                expect.sort_unstable_by_key(|(seq, _, _)| *seq);
                prop_assert_eq!(w.in_send_order(), expect);
            }
        }
    }
}

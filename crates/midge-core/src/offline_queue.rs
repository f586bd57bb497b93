//! Messages waiting for a session: offline, or beyond the client's inflight window.

use crate::dropped::DropReason;
use crate::message::Message;
use midge_codec::QoS;
use std::collections::VecDeque;

/// What happened when a message was offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; nothing dropped.
    Stored,
    /// Stored after dropping the oldest queued QoS 0 messages: `for_count` to stay within the
    /// message limit, `for_bytes` to stay within the byte limit.
    StoredDroppingQoS0 {
        /// Dropped for `max_queued_messages`.
        for_count: usize,
        /// Dropped for `max_queued_bytes`.
        for_bytes: usize,
    },
    /// The new message was dropped, for this reason (`QueueFull` or `QueueBytes`).
    Dropped(DropReason),
}

/// The queue's limits: messages and bytes (0 bytes: no byte limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most messages.
    pub messages: usize,
    /// Most bytes (payload and topic, see [`queued_size`]); 0 for no limit.
    pub bytes: usize,
}

impl QueueLimits {
    /// No limit at all (restoring what was already accepted).
    pub const NONE: QueueLimits = QueueLimits {
        messages: usize::MAX,
        bytes: 0,
    };
}

/// What a queued message counts against `max_queued_bytes`: its payload and topic.
pub fn queued_size(message: &Message) -> usize {
    message.publish.payload.len() + message.publish.topic.len()
}

/// A FIFO of messages, each with its per-session sequence number, bounded by a length and a
/// byte limit. QoS 0 messages go first when it is full: a new QoS 0 message that does not fit
/// the bytes is dropped, and queued QoS 0 messages (oldest first) are dropped to make room for
/// a newer message; if that cannot make room, the new message is dropped.
#[derive(Debug, Clone, Default)]
pub struct MessageQueue {
    items: VecDeque<(u64, Message)>,
    qos0: usize,
    bytes: usize,
    qos0_bytes: usize,
}

impl MessageQueue {
    /// Number of queued messages.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Bytes queued (see [`queued_size`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends `message` with sequence number `seq` within `limits`.
    pub fn push(&mut self, seq: u64, message: Message, limits: QueueLimits) -> Enqueued {
        let size = queued_size(&message);
        let is_qos0 = message.publish.qos == QoS::AtMostOnce;
        let len = self.items.len();
        // Decide before dropping anything, so nothing is dropped in vain.
        if limits.messages == 0 || (len >= limits.messages && self.qos0 == 0) {
            return Enqueued::Dropped(DropReason::QueueFull);
        }
        let over_bytes = limits.bytes > 0 && self.bytes + size > limits.bytes;
        if over_bytes
            && (is_qos0
                || size > limits.bytes
                || self.bytes - self.qos0_bytes + size > limits.bytes)
        {
            return Enqueued::Dropped(DropReason::QueueBytes);
        }
        let mut for_bytes = 0;
        while limits.bytes > 0 && self.bytes + size > limits.bytes && self.drop_oldest_qos0() {
            for_bytes += 1;
        }
        let mut for_count = 0;
        while self.items.len() >= limits.messages && self.drop_oldest_qos0() {
            for_count += 1;
        }
        if is_qos0 {
            self.qos0 += 1;
            self.qos0_bytes += size;
        }
        self.bytes += size;
        self.items.push_back((seq, message));
        if for_count + for_bytes == 0 {
            Enqueued::Stored
        } else {
            Enqueued::StoredDroppingQoS0 {
                for_count,
                for_bytes,
            }
        }
    }

    /// Removes the oldest queued QoS 0 message; false if there is none.
    fn drop_oldest_qos0(&mut self) -> bool {
        if self.qos0 == 0 {
            return false;
        }
        let Some(pos) = self
            .items
            .iter()
            .position(|(_, m)| m.publish.qos == QoS::AtMostOnce)
        else {
            return false;
        };
        self.remove_at(pos).is_some()
    }

    /// Removes the message at `pos`, keeping the counts.
    fn remove_at(&mut self, pos: usize) -> Option<(u64, Message)> {
        let (seq, m) = self.items.remove(pos)?;
        let size = queued_size(&m);
        self.bytes -= size;
        if m.publish.qos == QoS::AtMostOnce {
            self.qos0 -= 1;
            self.qos0_bytes -= size;
        }
        Some((seq, m))
    }

    /// The newest message.
    pub fn last(&self) -> Option<&Message> {
        self.items.back().map(|(_, m)| m)
    }

    /// Removes and returns the oldest message with its sequence number.
    pub fn pop(&mut self) -> Option<(u64, Message)> {
        self.remove_at(0)
    }

    /// Iterates the queue with sequence numbers, oldest first.
    pub fn iter_with_seq(&self) -> impl Iterator<Item = (u64, &Message)> {
        self.items.iter().map(|(seq, m)| (*seq, m))
    }

    /// Removes the message with sequence number `seq`; returns whether it was queued.
    pub fn remove_seq(&mut self, seq: u64) -> bool {
        let Some(pos) = self.items.iter().position(|(s, _)| *s == seq) else {
            return false;
        };
        self.remove_at(pos);
        true
    }

    /// Iterates the queue, oldest first.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.items.iter().map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::Publish;

    fn msg(qos: QoS, payload: &'static str) -> Message {
        Message {
            publish: Publish {
                dup: false,
                qos,
                retain: false,
                topic: "t".into(),
                packet_id: None,
                properties: Default::default(),
                payload: Bytes::from_static(payload.as_bytes()),
            },
            expires_at: None,
        }
    }

    fn payloads(q: &MessageQueue) -> Vec<&[u8]> {
        q.iter().map(|m| m.publish.payload.as_ref()).collect()
    }

    fn count(messages: usize) -> QueueLimits {
        QueueLimits { messages, bytes: 0 }
    }

    fn bytes(bytes: usize) -> QueueLimits {
        QueueLimits {
            messages: 100,
            bytes,
        }
    }

    const DROPPED_ONE_FOR_COUNT: Enqueued = Enqueued::StoredDroppingQoS0 {
        for_count: 1,
        for_bytes: 0,
    };

    #[test]
    fn drops_qos0_first_then_new() {
        let mut q = MessageQueue::default();
        assert_eq!(
            q.push(1, msg(QoS::AtLeastOnce, "a"), count(2)),
            Enqueued::Stored
        );
        assert_eq!(
            q.push(2, msg(QoS::AtMostOnce, "b"), count(2)),
            Enqueued::Stored
        );
        assert_eq!(
            q.push(3, msg(QoS::AtLeastOnce, "c"), count(2)),
            DROPPED_ONE_FOR_COUNT
        );
        assert_eq!(payloads(&q), vec![b"a".as_ref(), b"c"]);
        assert_eq!(q.last().map(|m| &m.publish.payload[..]), Some(&b"c"[..]));
        assert_eq!(
            q.push(4, msg(QoS::AtLeastOnce, "d"), count(2)),
            Enqueued::Dropped(DropReason::QueueFull)
        );
        let (seq, m) = q.pop().unwrap();
        assert_eq!((seq, &m.publish.payload[..]), (1, &b"a"[..]));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn zero_limit_stores_nothing() {
        let mut q = MessageQueue::default();
        assert_eq!(
            q.push(1, msg(QoS::AtMostOnce, "a"), count(0)),
            Enqueued::Dropped(DropReason::QueueFull)
        );
        assert!(q.is_empty());
    }

    #[test]
    fn bytes_count_payload_and_topic_and_are_given_back() {
        let mut q = MessageQueue::default();
        q.push(1, msg(QoS::AtLeastOnce, "abc"), bytes(100));
        q.push(2, msg(QoS::AtMostOnce, "de"), bytes(100));
        // "t" + payload each.
        assert_eq!(q.bytes(), 4 + 3);
        assert!(q.remove_seq(1));
        assert_eq!(q.bytes(), 3);
        q.pop();
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn a_new_qos0_message_over_the_bytes_is_dropped() {
        let mut q = MessageQueue::default();
        // 5 bytes each ("t" + 4).
        q.push(1, msg(QoS::AtMostOnce, "aaaa"), bytes(10));
        q.push(2, msg(QoS::AtLeastOnce, "bbbb"), bytes(10));
        assert_eq!(
            q.push(3, msg(QoS::AtMostOnce, "cccc"), bytes(10)),
            Enqueued::Dropped(DropReason::QueueBytes)
        );
        assert_eq!(payloads(&q), vec![b"aaaa".as_ref(), b"bbbb"]);
    }

    #[test]
    fn queued_qos0_messages_make_room_for_qos1_by_bytes() {
        let mut q = MessageQueue::default();
        q.push(1, msg(QoS::AtMostOnce, "aaaa"), bytes(15));
        q.push(2, msg(QoS::AtLeastOnce, "bbbb"), bytes(15));
        q.push(3, msg(QoS::AtMostOnce, "cccc"), bytes(15));
        // 15 queued; a 10-byte QoS 1 message needs both QoS 0 ones gone.
        assert_eq!(
            q.push(4, msg(QoS::AtLeastOnce, "ddddddddd"), bytes(15)),
            Enqueued::StoredDroppingQoS0 {
                for_count: 0,
                for_bytes: 2
            }
        );
        assert_eq!(payloads(&q), vec![b"bbbb".as_ref(), b"ddddddddd"]);
        assert_eq!(q.bytes(), 15);
    }

    #[test]
    fn when_qos0_cannot_make_room_nothing_is_dropped_but_the_new_message() {
        let mut q = MessageQueue::default();
        q.push(1, msg(QoS::AtMostOnce, "aaaa"), bytes(10));
        q.push(2, msg(QoS::AtLeastOnce, "bbbb"), bytes(10));
        // 11 bytes would need 6 free; dropping the QoS 0 message frees only 5.
        assert_eq!(
            q.push(3, msg(QoS::ExactlyOnce, "cccccccccc"), bytes(10)),
            Enqueued::Dropped(DropReason::QueueBytes)
        );
        assert_eq!(payloads(&q), vec![b"aaaa".as_ref(), b"bbbb"]);
        // Bigger than the whole limit: never stored.
        let mut empty = MessageQueue::default();
        assert_eq!(
            empty.push(1, msg(QoS::AtLeastOnce, "0123456789ab"), bytes(10)),
            Enqueued::Dropped(DropReason::QueueBytes)
        );
    }

    #[test]
    fn both_limits_apply_together() {
        let mut q = MessageQueue::default();
        let both = QueueLimits {
            messages: 2,
            bytes: 13,
        };
        q.push(1, msg(QoS::AtMostOnce, "a"), both);
        q.push(2, msg(QoS::AtMostOnce, "bbbb"), both);
        // 7 bytes queued: a 6-byte QoS 1 message fits the bytes, but the count is full.
        assert_eq!(
            q.push(3, msg(QoS::AtLeastOnce, "ccccc"), both),
            DROPPED_ONE_FOR_COUNT
        );
        // 11 bytes queued: a 3-byte QoS 1 message needs "bbbb" gone for the bytes.
        assert_eq!(
            q.push(4, msg(QoS::AtLeastOnce, "dd"), both),
            Enqueued::StoredDroppingQoS0 {
                for_count: 0,
                for_bytes: 1
            }
        );
        assert_eq!(payloads(&q), vec![b"ccccc".as_ref(), b"dd"]);
        assert_eq!(q.bytes(), 9);
    }
}

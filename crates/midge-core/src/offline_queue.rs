//! Messages waiting for a session: offline, or beyond the client's inflight window.

use crate::message::Message;
use midge_codec::QoS;
use std::collections::VecDeque;

/// What happened when a message was offered to a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored; nothing dropped.
    Stored,
    /// Stored after dropping the oldest queued QoS 0 message.
    StoredDroppingQoS0,
    /// The queue was full of QoS 1/2 messages: the new message was dropped.
    Dropped,
}

/// A FIFO of messages, each with its per-session sequence number, bounded by a length limit.
/// When full, a queued QoS 0 message is dropped to make room; if there is none, the new message
/// is dropped.
#[derive(Debug, Clone, Default)]
pub struct MessageQueue {
    items: VecDeque<(u64, Message)>,
    qos0: usize,
}

impl MessageQueue {
    /// Number of queued messages.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends `message` with sequence number `seq`, keeping at most `limit` messages.
    pub fn push(&mut self, seq: u64, message: Message, limit: usize) -> Enqueued {
        let mut outcome = Enqueued::Stored;
        if self.items.len() >= limit {
            if self.qos0 == 0 || limit == 0 {
                return Enqueued::Dropped;
            }
            if let Some(pos) = self
                .items
                .iter()
                .position(|(_, m)| m.publish.qos == QoS::AtMostOnce)
            {
                self.items.remove(pos);
                self.qos0 -= 1;
                outcome = Enqueued::StoredDroppingQoS0;
            }
        }
        if message.publish.qos == QoS::AtMostOnce {
            self.qos0 += 1;
        }
        self.items.push_back((seq, message));
        outcome
    }

    /// The newest message.
    pub fn last(&self) -> Option<&Message> {
        self.items.back().map(|(_, m)| m)
    }

    /// Removes and returns the oldest message with its sequence number.
    pub fn pop(&mut self) -> Option<(u64, Message)> {
        let (seq, m) = self.items.pop_front()?;
        if m.publish.qos == QoS::AtMostOnce {
            self.qos0 -= 1;
        }
        Some((seq, m))
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
        if let Some((_, m)) = self.items.remove(pos) {
            if m.publish.qos == QoS::AtMostOnce {
                self.qos0 -= 1;
            }
        }
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
    use midge_codec::{Publish, PublishProperties};

    fn msg(qos: QoS, payload: &'static str) -> Message {
        Message {
            publish: Publish {
                dup: false,
                qos,
                retain: false,
                topic: "t".into(),
                packet_id: None,
                properties: PublishProperties::default(),
                payload: Bytes::from_static(payload.as_bytes()),
            },
            expires_at: None,
        }
    }

    fn payloads(q: &MessageQueue) -> Vec<&[u8]> {
        q.iter().map(|m| m.publish.payload.as_ref()).collect()
    }

    #[test]
    fn drops_qos0_first_then_new() {
        let mut q = MessageQueue::default();
        assert_eq!(q.push(1, msg(QoS::AtLeastOnce, "a"), 2), Enqueued::Stored);
        assert_eq!(q.push(2, msg(QoS::AtMostOnce, "b"), 2), Enqueued::Stored);
        assert_eq!(
            q.push(3, msg(QoS::AtLeastOnce, "c"), 2),
            Enqueued::StoredDroppingQoS0
        );
        assert_eq!(payloads(&q), vec![b"a".as_ref(), b"c"]);
        assert_eq!(q.last().map(|m| &m.publish.payload[..]), Some(&b"c"[..]));
        assert_eq!(q.push(4, msg(QoS::AtLeastOnce, "d"), 2), Enqueued::Dropped);
        let (seq, m) = q.pop().unwrap();
        assert_eq!((seq, &m.publish.payload[..]), (1, &b"a"[..]));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn zero_limit_stores_nothing() {
        let mut q = MessageQueue::default();
        assert_eq!(q.push(1, msg(QoS::AtMostOnce, "a"), 0), Enqueued::Dropped);
        assert!(q.is_empty());
    }
}

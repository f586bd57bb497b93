//! The retained message store: a topic trie plus expiry bookkeeping.

use crate::message::Message;
use crate::retained_tree::RetainedTree;
use crate::timers::Deadlines;
use midge_codec::topic::is_sys_topic;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

/// Retained messages by topic (MQTT-3.3.1-5): one per topic, kept with their expiry instant
/// and dropped once it passes.
#[derive(Default)]
pub struct RetainedStore {
    tree: RetainedTree<Message>,
    expiry: Deadlines<Arc<str>>,
    /// Sum of the stored payloads' lengths, `$SYS` topics left out.
    payload_bytes: u64,
    /// Stored `$SYS` topics: the broker's own, not counted against the limits.
    sys: usize,
}

/// The retained-store limit a publish would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetainedLimit {
    /// `max_retained_messages` are stored and the topic is new.
    Count,
    /// The payload is over `max_retained_payload`.
    Payload,
    /// Storing it would take the store's payload bytes over `max_retained_bytes`.
    TotalBytes,
}

impl RetainedStore {
    /// Replaces the retained message of its topic, or deletes it when the payload is empty
    /// (an empty retained payload is never stored, MQTT-3.3.1-6, -7). Returns false if that
    /// changed nothing (a delete where nothing was retained).
    pub fn set(&mut self, mut message: Message) -> bool {
        let topic = message.publish.topic.clone();
        if message.publish.payload.is_empty() {
            return match self.tree.remove(&topic) {
                Some(old) => {
                    self.payload_bytes -= weight(&old);
                    self.sys -= usize::from(is_sys_topic(&topic));
                    true
                }
                None => false,
            };
        }
        // Kept until replaced: hold its own bytes, not the publisher's read buffer.
        message.publish.detach_buffers();
        if let Some(at) = message.expires_at {
            self.expiry.push(at, topic.clone());
        }
        self.payload_bytes += weight(&message);
        match self.tree.insert(&topic, message) {
            Some(old) => self.payload_bytes -= weight(&old),
            None => self.sys += usize::from(is_sys_topic(&topic)),
        }
        true
    }

    /// Calls `f(topic, message)` for every unexpired retained message whose topic matches
    /// `filter` and comes after topic `after`, in topic order, stopping when `f` breaks
    /// (returning `Break`).
    pub fn for_each_match_after<'a>(
        &'a self,
        filter: &str,
        after: Option<&str>,
        now: Instant,
        mut f: impl FnMut(&str, &'a Message) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.tree.for_each_match_after(filter, after, |topic, m| {
            if m.is_expired(now) {
                ControlFlow::Continue(())
            } else {
                f(topic, m)
            }
        })
    }

    /// Removes messages whose expiry has passed, calling `removed` with each one's topic.
    pub fn expire(&mut self, now: Instant, mut removed: impl FnMut(Arc<str>)) {
        while let Some(topic) = self.expiry.pop_due(now) {
            if self.tree.get(&topic).is_some_and(|m| m.is_expired(now)) {
                if let Some(old) = self.tree.remove(&topic) {
                    self.payload_bytes -= weight(&old);
                    self.sys -= usize::from(is_sys_topic(&topic));
                }
                removed(topic);
            }
        }
    }

    /// Number of stored `$SYS` topics (the broker's own).
    pub fn sys_len(&self) -> usize {
        self.sys
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Payload bytes of all retained messages but the broker's own `$SYS` ones.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Why storing a `payload`-byte message at `topic` would break a limit, if it would: a
    /// payload over `max_payload`, a new topic when `max_count` are stored, or a store
    /// holding over `max_bytes` of payload afterwards (0: no limit). Deleting never breaks a
    /// limit, replacing never breaks the count.
    pub fn over_limit(
        &self,
        topic: &str,
        payload: usize,
        max_count: usize,
        max_payload: usize,
        max_bytes: u64,
    ) -> Option<RetainedLimit> {
        if payload == 0 || is_sys_topic(topic) {
            return None;
        }
        if max_payload > 0 && payload > max_payload {
            return Some(RetainedLimit::Payload);
        }
        if max_count > 0
            && self.tree.len() - self.sys >= max_count
            && self.tree.get(topic).is_none()
        {
            return Some(RetainedLimit::Count);
        }
        if max_bytes > 0 {
            let replaced = self
                .tree
                .get(topic)
                .map_or(0, |old| old.publish.payload.len() as u64);
            if self.payload_bytes - replaced + payload as u64 > max_bytes {
                return Some(RetainedLimit::TotalBytes);
            }
        }
        None
    }
}

/// The bytes a message counts for in [`RetainedStore::payload_bytes`].
fn weight(message: &Message) -> u64 {
    if is_sys_topic(&message.publish.topic) {
        0
    } else {
        message.publish.payload.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::harness::retained;
    use midge_codec::QoS;

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            publish: retained(topic, QoS::AtMostOnce, None, payload),
            expires_at: None,
        }
    }

    #[test]
    fn a_stored_message_does_not_keep_the_publishers_read_buffer() {
        let read_buffer = bytes::Bytes::from(vec![7u8; 8192]);
        let mut m = message("a", "");
        m.publish.payload = read_buffer.slice(100..164);
        let mut store = RetainedStore::default();
        store.set(m);
        let mut seen = 0;
        let _ = store.for_each_match_after("#", None, Instant::now(), |_, stored| {
            assert_eq!(stored.publish.payload.len(), 64);
            assert!(stored.publish.payload.is_unique(), "a copy of its own");
            seen += 1;
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(seen, 1);
        assert_eq!(read_buffer.len(), 8192);
    }

    #[test]
    fn sys_topics_do_not_count_against_the_limits() {
        let mut store = RetainedStore::default();
        store.set(message("$SYS/broker/version", "midge"));
        store.set(message("$SYS/broker/uptime", "1"));
        store.set(message("a", "1"));
        assert_eq!(store.over_limit("b", 1, 2, 0, 0), None, "one of two used");
        store.set(message("b", "2"));
        assert_eq!(
            store.over_limit("c", 1, 2, 0, 0),
            Some(RetainedLimit::Count)
        );
        assert_eq!(
            store.over_limit("a", 1, 2, 0, 0),
            None,
            "replacing a stored topic"
        );
        // The broker's own topics are never refused.
        assert_eq!(store.over_limit("$SYS/broker/load", 100, 2, 4, 0), None);
        // Removing a $SYS topic keeps the count right.
        store.set(message("$SYS/broker/uptime", ""));
        assert_eq!(
            store.over_limit("c", 1, 2, 0, 0),
            Some(RetainedLimit::Count)
        );
        store.set(message("a", ""));
        assert_eq!(store.over_limit("c", 1, 2, 0, 0), None);
    }

    #[test]
    fn total_bytes_count_replacements_as_the_difference() {
        let mut store = RetainedStore::default();
        store.set(message("a", "12345"));
        store.set(message("b", "123"));
        // 8 stored: a new 3-byte message fits 11, not 10.
        assert_eq!(store.over_limit("c", 3, 0, 0, 11), None);
        assert_eq!(
            store.over_limit("c", 3, 0, 0, 10),
            Some(RetainedLimit::TotalBytes)
        );
        // Replacing a's 5 bytes with 7 adds 2.
        assert_eq!(store.over_limit("a", 7, 0, 0, 10), None);
        assert_eq!(
            store.over_limit("a", 8, 0, 0, 10),
            Some(RetainedLimit::TotalBytes)
        );
    }
}

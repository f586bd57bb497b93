//! The retained message store: a topic trie plus expiry bookkeeping.

use crate::message::Message;
use crate::retained_tree::RetainedTree;
use crate::timers::Deadlines;
use std::sync::Arc;
use std::time::Instant;

/// Retained messages by topic (MQTT-3.3.1-5): one per topic, kept with their expiry instant
/// and dropped once it passes.
#[derive(Default)]
pub struct RetainedStore {
    tree: RetainedTree<Message>,
    expiry: Deadlines<Arc<str>>,
}

impl RetainedStore {
    /// Replaces the retained message of its topic, or deletes it when the payload is empty
    /// (an empty retained payload is never stored, MQTT-3.3.1-6, -7). Returns false if that
    /// changed nothing (a delete where nothing was retained).
    pub fn set(&mut self, message: Message) -> bool {
        let topic = message.publish.topic.clone();
        if message.publish.payload.is_empty() {
            return self.tree.remove(&topic).is_some();
        }
        if let Some(at) = message.expires_at {
            self.expiry.push(at, topic.clone());
        }
        self.tree.insert(&topic, message);
        true
    }

    /// Calls `f` with every unexpired retained message whose topic matches `filter`.
    pub fn for_each_match<'a>(
        &'a self,
        filter: &str,
        now: Instant,
        mut f: impl FnMut(&'a Message),
    ) {
        self.tree.for_each_match(filter, |_, m| {
            if !m.is_expired(now) {
                f(m);
            }
        });
    }

    /// Removes messages whose expiry has passed, calling `removed` with each one's topic.
    pub fn expire(&mut self, now: Instant, mut removed: impl FnMut(Arc<str>)) {
        while let Some(topic) = self.expiry.pop_due(now) {
            if self.tree.get(&topic).is_some_and(|m| m.is_expired(now)) {
                self.tree.remove(&topic);
                removed(topic);
            }
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.tree.len()
    }
}

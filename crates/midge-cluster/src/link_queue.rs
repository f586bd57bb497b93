//! The queue between the broker and one peer's link task.
//!
//! Only the first item into an empty queue needs to wake the link, and the caller may put
//! that wake-up off ([`LinkWake`]) until it has queued a whole burst: a read of many publishes
//! then goes to the peer as one batch, instead of the link waking for the first publish and
//! sending it alone while the rest are still being routed.

use crate::peer_link::Item;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct LinkQueue {
    items: Mutex<VecDeque<Item>>,
    /// Signalled when the queue goes from empty to not empty.
    ready: Notify,
}

/// Wakes a link task later: what [`LinkQueue::push`] asks for.
#[derive(Debug)]
pub struct LinkWake(Arc<LinkQueue>);

impl LinkWake {
    /// Wakes the link (at once if it sleeps, else when it next looks).
    pub fn wake(self) {
        self.0.ready.notify_one();
    }
}

impl LinkQueue {
    /// Appends `item`; returns the wake-up the link needs, if any (only the first item into
    /// an empty queue needs one).
    pub(crate) fn push(self: &Arc<Self>, item: Item) -> Option<LinkWake> {
        let mut items = crate::peer_link::lock(&self.items);
        items.push_back(item);
        (items.len() == 1).then(|| LinkWake(self.clone()))
    }

    /// Moves everything queued to the back of `into`.
    pub(crate) fn take_all(&self, into: &mut VecDeque<Item>) {
        let mut items = crate::peer_link::lock(&self.items);
        if into.is_empty() {
            std::mem::swap(&mut *items, into);
        } else {
            into.append(&mut items);
        }
    }

    /// Waits until something may have been queued (cancel-safe: a wake-up taken by a wait
    /// that is dropped passes to the next one).
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }
}

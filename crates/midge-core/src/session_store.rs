//! All sessions, in reusable slots, indexed by client identifier.

use crate::session::Session;
use std::collections::HashMap;
use std::sync::Arc;

/// Index of a session slot. Slots are reused after a session ends; the session's `serial`
/// tells instances apart.
pub type SessionIdx = u32;

/// Sessions by slot, plus a client-id index.
///
/// Each session is boxed: the slot vector grows by doubling, so up to half of it is spare,
/// and a spare slot of boxes costs a pointer rather than a whole session record.
#[derive(Debug, Default)]
pub struct SessionStore {
    slots: Vec<Option<Box<Session>>>,
    free: Vec<SessionIdx>,
    by_client: HashMap<Arc<str>, SessionIdx>,
    next_serial: u64,
}

impl SessionStore {
    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// The slot of `client_id`'s session.
    pub fn find(&self, client_id: &str) -> Option<SessionIdx> {
        self.by_client.get(client_id).copied()
    }

    /// The session in slot `idx`.
    pub fn get(&self, idx: SessionIdx) -> Option<&Session> {
        self.slots.get(idx as usize).and_then(Option::as_deref)
    }

    /// The session in slot `idx`, mutably.
    pub fn get_mut(&mut self, idx: SessionIdx) -> Option<&mut Session> {
        self.slots
            .get_mut(idx as usize)
            .and_then(Option::as_deref_mut)
    }

    /// A serial number for a new session.
    pub fn next_serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// Stores `session` (whose client id must not have a session yet); returns its slot.
    pub fn insert(&mut self, session: Session) -> SessionIdx {
        let client_id = session.client_id.clone();
        let session = Box::new(session);
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = Some(session);
                idx
            }
            None => {
                self.slots.push(Some(session));
                (self.slots.len() - 1) as SessionIdx
            }
        };
        self.by_client.insert(client_id, idx);
        idx
    }

    /// Removes the session in slot `idx`.
    pub fn remove(&mut self, idx: SessionIdx) -> Option<Session> {
        let session = self.slots.get_mut(idx as usize)?.take()?;
        self.by_client.remove(&session.client_id);
        self.free.push(idx);
        Some(*session)
    }

    /// Every session with its slot.
    pub fn iter(&self) -> impl Iterator<Item = (SessionIdx, &Session)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_deref().map(|s| (i as SessionIdx, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused() {
        let mut store = SessionStore::default();
        let a = store.insert(Session::new("a".into(), 1, 0));
        let b = store.insert(Session::new("b".into(), 2, 0));
        assert_eq!(store.find("b"), Some(b));
        assert_eq!(store.remove(a).map(|s| s.serial), Some(1));
        assert_eq!(store.find("a"), None);
        let c = store.insert(Session::new("c".into(), 3, 0));
        assert_eq!(c, a);
        assert_eq!(store.get(c).map(|s| &*s.client_id), Some("c"));
        assert_eq!(store.len(), 2);
        assert_eq!(store.iter().count(), 2);
    }
}

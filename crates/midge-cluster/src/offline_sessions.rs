//! When each offline persistent session lost its client, for session expiry.

use crate::pb;
use midge_store::{StateStore, StateTable, StoreError};
use prost::Message;
use std::collections::HashMap;

/// The unix-ms time each offline session went offline. A session record is rewritten whole on
/// every change (a will published, an expiry changed); this keeps its expiry counting from the
/// moment the client left, not from the last rewrite. Rebuilt from the `sessions` table on
/// start and after a snapshot is installed.
#[derive(Debug, Default)]
pub(crate) struct OfflineSessions {
    since: HashMap<String, u64>,
}

impl OfflineSessions {
    /// Reads the offline sessions of a state store.
    pub(crate) fn load(store: &dyn StateStore) -> Result<OfflineSessions, StoreError> {
        let mut since = HashMap::new();
        store.scan(StateTable::Sessions, &mut |client_id, _, value| {
            let record = pb::SessionRecord::decode(value).map_err(|e| StoreError::Corrupt {
                table: StateTable::Sessions.name(),
                key: client_id.to_string(),
                reason: e.to_string(),
            })?;
            if let (false, Some(ms)) = (record.connected, record.offline_since_ms) {
                since.insert(client_id.to_string(), ms);
            }
            Ok(())
        })?;
        Ok(OfflineSessions { since })
    }

    /// Records a session write at `now_ms`; returns its offline-since time (`None` while
    /// connected).
    pub(crate) fn put(&mut self, client_id: &str, connected: bool, now_ms: u64) -> Option<u64> {
        if connected {
            self.since.remove(client_id);
            return None;
        }
        if let Some(&ms) = self.since.get(client_id) {
            return Some(ms);
        }
        self.since.insert(client_id.to_string(), now_ms);
        Some(now_ms)
    }

    /// Forgets a deleted session.
    pub(crate) fn remove(&mut self, client_id: &str) {
        self.since.remove(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_offline_time() {
        let mut offline = OfflineSessions::default();
        assert_eq!(offline.put("c", false, 100), Some(100));
        assert_eq!(offline.put("c", false, 200), Some(100));
        assert_eq!(offline.put("c", true, 300), None);
        assert_eq!(offline.put("c", false, 400), Some(400));
        offline.remove("c");
        assert_eq!(offline.put("c", false, 500), Some(500));
    }
}

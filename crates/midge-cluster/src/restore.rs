//! Reading the durable state back for `midge_core::Broker::restore`.

use crate::pb_impl::{message_from_pb, message_state_from_pb};
use crate::{pb, ClusterError, WallClock};
use midge_codec::LastWill;
use midge_core::{RestoredSession, RestoredState, Subscription};
use midge_store::{StateStore, StateTable, StoreError};
use prost::Message;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Session Expiry Interval meaning "never expires" (MQTT 3.1.2.11.2).
const NEVER_EXPIRES: u32 = u32::MAX;

/// Reads every table of `store` into a [`RestoredState`]: retained messages, and persistent
/// sessions with their subscriptions, messages (in `seq` order) and QoS 2 packet ids.
/// Stored unix-ms deadlines become instants relative to `now`: a message whose expiry has
/// passed gets an instant no later than `now.instant` (the core drops it); an offline
/// session expires `expiry_interval` after it went offline, a session that was connected when
/// the broker stopped expires `expiry_interval` after `now`. Rows of a client without a
/// session record are skipped with a warning. Blocking: it scans the whole store.
pub fn restore_state(
    store: &dyn StateStore,
    now: &WallClock,
    which: Sessions<'_>,
) -> Result<RestoredState, ClusterError> {
    let mut retained = Vec::new();
    // Only a full restore wants the retained messages.
    if let Sessions::OwnedBy(_) = which {
        scan(store, StateTable::Retained, which, |topic, _, value| {
            let stored = pb::StoredMessage::decode(value).map_err(|e| e.to_string())?;
            let message = message_from_pb(stored, now).map_err(|e| e.to_string())?;
            retained.push((Arc::<str>::from(topic), message));
            Ok(())
        })?;
    }

    let mut sessions: BTreeMap<String, RestoredSession> = BTreeMap::new();
    // Sessions left out on purpose (owned by another node): their rows are no orphans.
    let mut others: HashSet<String> = HashSet::new();
    scan(store, StateTable::Sessions, which, |client_id, _, value| {
        let record = pb::SessionRecord::decode(value).map_err(|e| e.to_string())?;
        if !which.includes(client_id, record.owner_node) {
            others.insert(client_id.to_string());
            return Ok(());
        }
        let session = restored_session(client_id, record, now)?;
        sessions.insert(client_id.to_string(), session);
        Ok(())
    })?;

    let mut orphans = 0u64;
    scan(
        store,
        StateTable::Subscriptions,
        which,
        |client_id, filter, value| {
            let filter = std::str::from_utf8(filter)
                .map_err(|e| format!("filter is not UTF-8: {e}"))?
                .to_string();
            let sub = pb::Subscription::decode(value).map_err(|e| e.to_string())?;
            let sub = Subscription::try_from(sub).map_err(|e| e.to_string())?;
            match sessions.get_mut(client_id) {
                Some(s) => s.subscriptions.push((filter, sub)),
                None if others.contains(client_id) => {}
                None => orphans += 1,
            }
            Ok(())
        },
    )?;

    scan(
        store,
        StateTable::Messages,
        which,
        |client_id, seq, value| {
            let seq = u64::from_be_bytes(
                seq.try_into()
                    .map_err(|_| format!("seq key part has {} bytes", seq.len()))?,
            );
            let stored = pb::SessionMessage::decode(value).map_err(|e| e.to_string())?;
            let state =
                message_state_from_pb(stored.state, stored.packet_id).map_err(|e| e.to_string())?;
            let message = stored
                .message
                .ok_or_else(|| "SessionMessage.message missing".to_string())?;
            let message = message_from_pb(message, now).map_err(|e| e.to_string())?;
            match sessions.get_mut(client_id) {
                Some(s) => s.messages.push((seq, message, state)),
                None if others.contains(client_id) => {}
                None => orphans += 1,
            }
            Ok(())
        },
    )?;

    scan(store, StateTable::Qos2, which, |client_id, packet_id, _| {
        let id = u16::from_be_bytes(
            packet_id
                .try_into()
                .map_err(|_| format!("packet id key part has {} bytes", packet_id.len()))?,
        );
        match sessions.get_mut(client_id) {
            Some(s) => s.qos2_received.push(id),
            None if others.contains(client_id) => {}
            None => orphans += 1,
        }
        Ok(())
    })?;

    if orphans > 0 {
        tracing::warn!(
            rows = orphans,
            "skipped stored rows of clients without a session"
        );
    }
    let sessions = sessions
        .into_values()
        .map(|mut s| {
            s.messages.sort_by_key(|(seq, _, _)| *seq);
            s
        })
        .collect();
    Ok(RestoredState { retained, sessions })
}

fn restored_session(
    client_id: &str,
    record: pb::SessionRecord,
    now: &WallClock,
) -> Result<RestoredSession, String> {
    let will = record
        .will
        .map(LastWill::try_from)
        .transpose()
        .map_err(|e| e.to_string())?;
    let interval_ms = u64::from(record.expiry_interval) * 1_000;
    let expires_at = match (
        record.expiry_interval,
        record.connected,
        record.offline_since_ms,
    ) {
        (NEVER_EXPIRES, _, _) => None,
        (_, false, Some(since)) => Some(now.to_instant(since.saturating_add(interval_ms))),
        // Connected at the crash (or no offline time recorded): it went offline just now.
        _ => Some(now.instant + Duration::from_millis(interval_ms)),
    };
    Ok(RestoredSession {
        client_id: Arc::from(client_id),
        expiry_interval: record.expiry_interval,
        expires_at,
        will,
        was_connected: record.connected,
        subscriptions: Vec::new(),
        messages: Vec::new(),
        qos2_received: Vec::new(),
    })
}

/// Which persistent sessions [`restore_state`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sessions<'a> {
    /// Those this node owns, and those written before sessions had owners (a restart).
    OwnedBy(u64),
    /// Those `node` owns (a node that is gone, whose sessions a survivor adopts).
    OwnedOnlyBy(u64),
    /// This client's, if another node owns it (adopting a session from a node that is gone;
    /// a session this node owns but its broker no longer has was ended here).
    ClientOwnedElsewhere {
        /// The client.
        client_id: &'a str,
        /// This node.
        node: u64,
    },
}

impl Sessions<'_> {
    fn includes(&self, client_id: &str, owner: u64) -> bool {
        match self {
            Sessions::OwnedBy(node) => owner == 0 || owner == *node,
            Sessions::OwnedOnlyBy(node) => owner == *node,
            Sessions::ClientOwnedElsewhere {
                client_id: id,
                node,
            } => *id == client_id && owner != 0 && owner != *node,
        }
    }
}

/// Scans a table (the rows of one client for `Sessions::ClientOwnedElsewhere`), turning a row `f` cannot
/// decode into an error naming the table and key.
fn scan(
    store: &dyn StateStore,
    table: StateTable,
    which: Sessions<'_>,
    mut f: impl FnMut(&str, &[u8], &[u8]) -> Result<(), String>,
) -> Result<(), ClusterError> {
    let mut failed = None;
    let mut visit = |key: &str, part: &[u8], value: &[u8]| {
        f(key, part, value).map_err(|reason| {
            let key = if part.is_empty() {
                key.to_string()
            } else {
                format!("{key}/{}", describe_part(table, part))
            };
            failed = Some(ClusterError::Corrupt {
                table: table.name(),
                key,
                reason,
            });
            StoreError::Invalid("decode failed".to_string())
        })
    };
    let result = match which {
        Sessions::ClientOwnedElsewhere { client_id, .. } if table != StateTable::Retained => {
            store.scan_client(table, client_id, &mut visit)
        }
        _ => store.scan(table, &mut visit),
    };
    match (failed, result) {
        (Some(e), _) => Err(e),
        (None, r) => Ok(r?),
    }
}

/// The second key part as a person reads it: the filter, the seq or the packet id.
fn describe_part(table: StateTable, part: &[u8]) -> String {
    match (table, part.len()) {
        (StateTable::Messages, 8) => {
            let mut b = [0u8; 8];
            b.copy_from_slice(part);
            u64::from_be_bytes(b).to_string()
        }
        (StateTable::Qos2, 2) => u16::from_be_bytes([part[0], part[1]]).to_string(),
        _ => String::from_utf8_lossy(part).into_owned(),
    }
}

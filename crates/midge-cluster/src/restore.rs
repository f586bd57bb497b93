//! Reading the durable state back for `midge_core::Broker::restore`.

use crate::pb_impl::{message_from_pb, message_state_from_pb};
use crate::{pb, ClusterError, WallClock};
use midge_codec::LastWill;
use midge_core::{RestoredSession, RestoredState, Subscription};
use midge_store::{StateStore, StateTable, StoreError};
use prost::Message;
use std::collections::BTreeMap;
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
) -> Result<RestoredState, ClusterError> {
    let mut retained = Vec::new();
    scan(store, StateTable::Retained, |topic, _, value| {
        let stored = pb::StoredMessage::decode(value).map_err(|e| e.to_string())?;
        let message = message_from_pb(stored, now).map_err(|e| e.to_string())?;
        retained.push((Arc::<str>::from(topic), message));
        Ok(())
    })?;

    let mut sessions: BTreeMap<String, RestoredSession> = BTreeMap::new();
    scan(store, StateTable::Sessions, |client_id, _, value| {
        let record = pb::SessionRecord::decode(value).map_err(|e| e.to_string())?;
        let session = restored_session(client_id, record, now)?;
        sessions.insert(client_id.to_string(), session);
        Ok(())
    })?;

    let mut orphans = 0u64;
    scan(
        store,
        StateTable::Subscriptions,
        |client_id, filter, value| {
            let filter = std::str::from_utf8(filter)
                .map_err(|e| format!("filter is not UTF-8: {e}"))?
                .to_string();
            let sub = pb::Subscription::decode(value).map_err(|e| e.to_string())?;
            let sub = Subscription::try_from(sub).map_err(|e| e.to_string())?;
            match sessions.get_mut(client_id) {
                Some(s) => s.subscriptions.push((filter, sub)),
                None => orphans += 1,
            }
            Ok(())
        },
    )?;

    scan(store, StateTable::Messages, |client_id, seq, value| {
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
            None => orphans += 1,
        }
        Ok(())
    })?;

    scan(store, StateTable::Qos2, |client_id, packet_id, _| {
        let id = u16::from_be_bytes(
            packet_id
                .try_into()
                .map_err(|_| format!("packet id key part has {} bytes", packet_id.len()))?,
        );
        match sessions.get_mut(client_id) {
            Some(s) => s.qos2_received.push(id),
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

/// Scans a table, turning a row `f` cannot decode into an error naming the table and key.
fn scan(
    store: &dyn StateStore,
    table: StateTable,
    mut f: impl FnMut(&str, &[u8], &[u8]) -> Result<(), String>,
) -> Result<(), ClusterError> {
    let mut failed = None;
    let result = store.scan(table, &mut |key, part, value| {
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
    });
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

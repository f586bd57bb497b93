//! Key encodings shared by every backend, so `MemStore` and `RocksStore` order rows alike and
//! a snapshot of one imports into the other.
//!
//! Log keys are big-endian u64 indexes, so byte order is log order. State rows that belong to
//! a client start with the client prefix `u16 BE length ++ client id`: the length makes the
//! prefix of "a" differ from the prefix of "ab", so deleting one client's range never touches
//! another's. After the prefix comes the filter (UTF-8), the seq (u64 BE) or the packet id
//! (u16 BE). Retained rows are keyed by topic, meta rows by name, both as plain UTF-8.

use crate::{StateTable, StoreError};

/// Name of the log column family, used in errors.
pub(crate) const LOG_TABLE: &str = "log";

/// The key of a log record.
pub(crate) fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Decodes a log key; anything but 8 bytes is corrupt.
pub(crate) fn decode_log_key(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::corrupt_key(LOG_TABLE, key, "log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The prefix every row of `client_id` starts with (also the whole session key).
pub(crate) fn client_prefix(client_id: &str) -> Result<Vec<u8>, StoreError> {
    let len = u16::try_from(client_id.len()).map_err(|_| {
        StoreError::Invalid(format!(
            "client id of {} bytes is longer than 65535",
            client_id.len()
        ))
    })?;
    let mut key = Vec::with_capacity(2 + client_id.len() + 8);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(client_id.as_bytes());
    Ok(key)
}

/// The first key after every key starting with `prefix`: the end of a range delete.
///
/// Returns `None` only for a prefix of all 0xFF bytes, which no client prefix is (UTF-8 never
/// contains 0xFF and the length comes first).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A subscription key.
pub(crate) fn subscription_key(client_id: &str, filter: &str) -> Result<Vec<u8>, StoreError> {
    let mut key = client_prefix(client_id)?;
    key.extend_from_slice(filter.as_bytes());
    Ok(key)
}

/// An outgoing message key.
pub(crate) fn message_key(client_id: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
    let mut key = client_prefix(client_id)?;
    key.extend_from_slice(&seq.to_be_bytes());
    Ok(key)
}

/// An incoming QoS 2 packet id key.
pub(crate) fn qos2_key(client_id: &str, packet_id: u16) -> Result<Vec<u8>, StoreError> {
    let mut key = client_prefix(client_id)?;
    key.extend_from_slice(&packet_id.to_be_bytes());
    Ok(key)
}

/// Splits a state key back into `(client id or topic or name, second part)` as documented on
/// `StateStore::scan`. Anything that could not have been written by this crate is `Corrupt`.
pub(crate) fn decode_state_key(table: StateTable, key: &[u8]) -> Result<(&str, &[u8]), StoreError> {
    let corrupt = |reason: &str| StoreError::corrupt_key(table.name(), key, reason);
    match table {
        StateTable::Retained | StateTable::Meta => {
            let name = std::str::from_utf8(key).map_err(|_| corrupt("key is not UTF-8"))?;
            Ok((name, &[]))
        }
        StateTable::Sessions
        | StateTable::Subscriptions
        | StateTable::Messages
        | StateTable::Qos2 => {
            let (client_id, rest) =
                split_client(key).ok_or_else(|| corrupt("bad client prefix"))?;
            let client_id =
                std::str::from_utf8(client_id).map_err(|_| corrupt("client id is not UTF-8"))?;
            let ok = match table {
                StateTable::Sessions => rest.is_empty(),
                StateTable::Subscriptions => std::str::from_utf8(rest).is_ok(),
                StateTable::Messages => rest.len() == 8,
                _ => rest.len() == 2,
            };
            if ok {
                Ok((client_id, rest))
            } else {
                Err(corrupt("bad suffix after the client id"))
            }
        }
    }
}

/// Splits `u16 BE length ++ client id ++ rest`, or `None` if the key is too short.
fn split_client(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = key.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_prefixes_do_not_nest() {
        let a = client_prefix("a").unwrap();
        let ab = client_prefix("ab").unwrap();
        assert!(!ab.starts_with(&a));
        let end = prefix_end(&a).unwrap();
        assert!(!(a.as_slice() <= ab.as_slice() && ab.as_slice() < end.as_slice()));
    }

    #[test]
    fn prefix_end_carries_past_ff() {
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[0, 0]), Some(vec![0, 1]));
    }

    #[test]
    fn keys_round_trip() {
        let key = message_key("c1", 7).unwrap();
        let (id, rest) = decode_state_key(StateTable::Messages, &key).unwrap();
        assert_eq!((id, rest), ("c1", &7u64.to_be_bytes()[..]));
        let key = subscription_key("", "a/#").unwrap();
        assert_eq!(
            decode_state_key(StateTable::Subscriptions, &key).unwrap(),
            ("", &b"a/#"[..])
        );
        assert_eq!(decode_log_key(&log_key(42)).unwrap(), 42);
    }

    #[test]
    fn malformed_keys_are_corrupt() {
        for (table, key) in [
            (StateTable::Sessions, &[0u8][..]),
            (StateTable::Sessions, &[0, 5, b'a'][..]),
            (StateTable::Messages, &[0, 1, b'a', 1, 2][..]),
            (StateTable::Qos2, &[0, 1, b'a'][..]),
            (StateTable::Retained, &[0xFF][..]),
        ] {
            let err = decode_state_key(table, key).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        }
        let err = decode_log_key(&[1, 2, 3]).unwrap_err().to_string();
        assert!(err.contains("log") && err.contains("010203"), "{err}");
    }

    #[test]
    fn long_client_id_is_invalid() {
        let id = "x".repeat(70_000);
        assert!(matches!(client_prefix(&id), Err(StoreError::Invalid(_))));
    }
}

//! The storage test suite, run against every backend (`MemStore` and `RocksStore`) through
//! the `backend_suite!` macro so both promise the same behaviour.

use midge_store::{
    FsyncPolicy, LogRecord, LogStore, MemStore, RocksStore, StateStore, StateTable, StateWrite,
    StoreError,
};
use std::ops::Deref;
use tempfile::TempDir;

/// A store plus whatever must live as long as it (the temporary directory).
struct Fixture<S> {
    store: S,
    _dir: Option<TempDir>,
}

impl<S> Deref for Fixture<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

fn mem() -> Fixture<MemStore> {
    Fixture {
        store: MemStore::new(),
        _dir: None,
    }
}

fn rocks() -> Fixture<RocksStore> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).expect("open");
    Fixture {
        store,
        _dir: Some(dir),
    }
}

fn rec(index: u64) -> LogRecord {
    LogRecord {
        index,
        bytes: format!("entry-{index}").into_bytes(),
    }
}

fn recs(indexes: std::ops::RangeInclusive<u64>) -> Vec<LogRecord> {
    indexes.map(rec).collect()
}

fn indexes(records: &[LogRecord]) -> Vec<u64> {
    records.iter().map(|r| r.index).collect()
}

type Row = (String, Vec<u8>, Vec<u8>);

/// Every row of every table, decoded.
fn dump(store: &dyn StateStore) -> Vec<(StateTable, Row)> {
    let mut rows = Vec::new();
    for table in StateTable::ALL {
        store
            .scan(table, &mut |first, second, value| {
                rows.push((table, (first.to_string(), second.to_vec(), value.to_vec())));
                Ok(())
            })
            .expect("scan");
    }
    rows
}

fn rows_of(store: &dyn StateStore, table: StateTable) -> Vec<Row> {
    dump(store)
        .into_iter()
        .filter(|(t, _)| *t == table)
        .map(|(_, row)| row)
        .collect()
}

fn sub(client: &str, filter: &str) -> StateWrite {
    StateWrite::SubscriptionPut {
        client_id: client.into(),
        filter: filter.into(),
        value: format!("{client}:{filter}").into_bytes(),
    }
}

fn msg(client: &str, seq: u64) -> StateWrite {
    StateWrite::MessagePut {
        client_id: client.into(),
        seq,
        value: vec![seq as u8],
    }
}

fn qos2(client: &str, packet_id: u16) -> StateWrite {
    StateWrite::Qos2Put {
        client_id: client.into(),
        packet_id,
    }
}

fn session(client: &str) -> StateWrite {
    StateWrite::SessionPut {
        client_id: client.into(),
        value: client.as_bytes().to_vec(),
    }
}

/// Rows for two clients where one id is a prefix of the other, plus the other tables.
fn populated(store: &dyn StateStore) {
    let mut writes = Vec::new();
    for client in ["a", "ab"] {
        writes.extend([
            session(client),
            sub(client, "x/#"),
            sub(client, "y/+"),
            msg(client, 1),
            msg(client, 2),
            qos2(client, 7),
        ]);
    }
    writes.extend([
        StateWrite::RetainedPut {
            topic: "t/1".into(),
            value: b"r1".to_vec(),
        },
        StateWrite::MetaPut {
            key: "last_applied".into(),
            value: b"42".to_vec(),
        },
    ]);
    store.apply(&writes).expect("apply");
}

fn log_append_range_last(s: &impl LogStore) {
    assert_eq!(s.last().unwrap(), None);
    assert!(s.range(1, 10).unwrap().is_empty());
    s.append(&recs(1..=5)).unwrap();
    s.append(&recs(6..=6)).unwrap();
    s.append(&[]).unwrap();
    assert_eq!(s.range(1, 100).unwrap(), recs(1..=6));
    assert_eq!(indexes(&s.range(2, 4).unwrap()), vec![2, 3]);
    assert!(s.range(4, 4).unwrap().is_empty());
    assert!(s.range(5, 2).unwrap().is_empty());
    assert_eq!(s.range(6, u64::MAX).unwrap(), recs(6..=6));
    assert_eq!(s.last().unwrap(), Some(rec(6)));
}

fn log_append_replaces(s: &impl LogStore) {
    s.append(&recs(1..=5)).unwrap();
    let replaced = LogRecord {
        index: 3,
        bytes: b"new".to_vec(),
    };
    s.append(std::slice::from_ref(&replaced)).unwrap();
    let got = s.range(1, 10).unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(got[2], replaced);
}

fn log_append_rejects_bad_indexes(s: &impl LogStore) {
    let err = s.append(&[rec(1), rec(3)]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let err = s.append(&[rec(u64::MAX), rec(0)]).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(s.last().unwrap(), None, "a rejected append wrote something");
    // openraft's first entry (the initial membership) has index 0.
    s.append(&recs(0..=1)).unwrap();
    assert_eq!(s.range(0, 2).unwrap(), recs(0..=1));
    s.purge(0).unwrap();
    assert_eq!(s.range(0, 2).unwrap(), recs(1..=1));
}

fn log_range_stops_at_gap(s: &impl LogStore) {
    s.append(&recs(1..=3)).unwrap();
    s.append(&recs(5..=6)).unwrap();
    assert_eq!(indexes(&s.range(1, 10).unwrap()), vec![1, 2, 3]);
    assert_eq!(indexes(&s.range(4, 10).unwrap()), vec![5, 6]);
}

fn log_truncate(s: &impl LogStore) {
    s.append(&recs(1..=10)).unwrap();
    s.truncate(7).unwrap();
    assert_eq!(s.last().unwrap(), Some(rec(6)));
    assert_eq!(s.range(1, 100).unwrap(), recs(1..=6));
    s.truncate(100).unwrap();
    assert_eq!(s.last().unwrap(), Some(rec(6)));
    s.append(&recs(7..=8)).unwrap();
    assert_eq!(s.last().unwrap(), Some(rec(8)));
    s.truncate(0).unwrap();
    assert_eq!(s.last().unwrap(), None);
}

fn log_purge(s: &impl LogStore) {
    s.append(&recs(1..=10)).unwrap();
    s.purge(4).unwrap();
    assert_eq!(s.range(0, 100).unwrap(), recs(5..=10));
    assert!(s.range(1, 5).unwrap().is_empty());
    assert_eq!(s.last().unwrap(), Some(rec(10)));
    s.purge(10).unwrap();
    assert_eq!(s.last().unwrap(), None);
    // After purging everything, the log continues past the snapshot.
    s.append(&recs(20..=21)).unwrap();
    assert_eq!(s.range(0, u64::MAX).unwrap(), recs(20..=21));
    s.purge(u64::MAX).unwrap();
    assert_eq!(s.last().unwrap(), None);
}

fn raft_meta<S: LogStore + StateStore>(s: &S) {
    assert_eq!(LogStore::get_meta(s, "vote").unwrap(), None);
    s.put_meta("vote", b"term 3").unwrap();
    s.put_meta("vote", b"term 4").unwrap();
    s.put_meta("committed", b"").unwrap();
    assert_eq!(
        LogStore::get_meta(s, "vote").unwrap(),
        Some(b"term 4".to_vec())
    );
    assert_eq!(
        LogStore::get_meta(s, "committed").unwrap(),
        Some(Vec::new())
    );
    // Raft metadata and state machine metadata are separate namespaces.
    assert_eq!(StateStore::get_meta(s, "vote").unwrap(), None);
    s.apply(&[StateWrite::MetaPut {
        key: "vote".into(),
        value: b"sm".to_vec(),
    }])
    .unwrap();
    assert_eq!(
        StateStore::get_meta(s, "vote").unwrap(),
        Some(b"sm".to_vec())
    );
    assert_eq!(
        LogStore::get_meta(s, "vote").unwrap(),
        Some(b"term 4".to_vec())
    );
}

fn apply_in_order(s: &impl StateStore) {
    let put = |v: &[u8]| StateWrite::RetainedPut {
        topic: "t".into(),
        value: v.to_vec(),
    };
    let del = StateWrite::RetainedDelete { topic: "t".into() };
    s.apply(&[put(b"1"), put(b"2")]).unwrap();
    assert_eq!(
        rows_of(s, StateTable::Retained),
        vec![("t".into(), vec![], b"2".to_vec())]
    );
    s.apply(&[put(b"3"), del.clone()]).unwrap();
    assert!(rows_of(s, StateTable::Retained).is_empty());
    s.apply(&[del, put(b"4")]).unwrap();
    assert_eq!(
        rows_of(s, StateTable::Retained),
        vec![("t".into(), vec![], b"4".to_vec())]
    );
    // A session deleted and recreated in one batch keeps only what came after the delete.
    s.apply(&[
        session("c"),
        sub("c", "old"),
        StateWrite::SessionDelete {
            client_id: "c".into(),
        },
        session("c"),
        sub("c", "new"),
    ])
    .unwrap();
    let subs = rows_of(s, StateTable::Subscriptions);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].1, b"new");
    assert_eq!(rows_of(s, StateTable::Sessions).len(), 1);
}

fn apply_is_atomic(s: &impl StateStore) {
    populated(s);
    let before = dump(s);
    let too_long = "x".repeat(70_000);
    let err = s
        .apply(&[
            StateWrite::RetainedDelete {
                topic: "t/1".into(),
            },
            StateWrite::SessionDelete {
                client_id: "a".into(),
            },
            session(&too_long),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(dump(s), before, "a failed apply changed something");
}

fn session_delete_spares_prefix_clients(s: &impl StateStore) {
    populated(s);
    s.apply(&[sub("", "z"), session("")]).unwrap();
    s.apply(&[StateWrite::SessionDelete {
        client_id: "a".into(),
    }])
    .unwrap();
    for table in [
        StateTable::Sessions,
        StateTable::Subscriptions,
        StateTable::Messages,
        StateTable::Qos2,
    ] {
        let clients: Vec<String> = rows_of(s, table).into_iter().map(|r| r.0).collect();
        assert!(
            !clients.contains(&"a".to_string()),
            "{table:?} kept a row of a"
        );
        assert!(
            clients.contains(&"ab".to_string()),
            "{table:?} lost a row of ab"
        );
    }
    assert_eq!(rows_of(s, StateTable::Subscriptions).len(), 3);
    assert_eq!(rows_of(s, StateTable::Retained).len(), 1);
    s.apply(&[StateWrite::SessionDelete {
        client_id: String::new(),
    }])
    .unwrap();
    let clients: Vec<String> = rows_of(s, StateTable::Subscriptions)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(clients, vec!["ab", "ab"]);
}

fn single_deletes(s: &impl StateStore) {
    populated(s);
    s.apply(&[
        StateWrite::SubscriptionDelete {
            client_id: "a".into(),
            filter: "x/#".into(),
        },
        StateWrite::MessageDelete {
            client_id: "a".into(),
            seq: 1,
        },
        StateWrite::Qos2Delete {
            client_id: "ab".into(),
            packet_id: 7,
        },
    ])
    .unwrap();
    let subs = rows_of(s, StateTable::Subscriptions);
    assert_eq!(subs.len(), 3);
    assert!(!subs.contains(&("a".into(), b"x/#".to_vec(), b"a:x/#".to_vec())));
    assert_eq!(rows_of(s, StateTable::Messages).len(), 3);
    assert_eq!(
        rows_of(s, StateTable::Qos2),
        vec![("a".into(), 7u16.to_be_bytes().to_vec(), vec![])]
    );
}

fn scan_decodes_parts(s: &impl StateStore) {
    populated(s);
    assert_eq!(
        rows_of(s, StateTable::Retained),
        vec![("t/1".into(), vec![], b"r1".to_vec())]
    );
    assert_eq!(
        rows_of(s, StateTable::Sessions),
        vec![
            ("a".into(), vec![], b"a".to_vec()),
            ("ab".into(), vec![], b"ab".to_vec())
        ]
    );
    let subs = rows_of(s, StateTable::Subscriptions);
    assert_eq!(subs[0], ("a".into(), b"x/#".to_vec(), b"a:x/#".to_vec()));
    assert_eq!(subs.len(), 4);
    let msgs = rows_of(s, StateTable::Messages);
    assert_eq!(msgs[1], ("a".into(), 2u64.to_be_bytes().to_vec(), vec![2]));
    assert_eq!(
        rows_of(s, StateTable::Meta),
        vec![("last_applied".into(), vec![], b"42".to_vec())]
    );
    assert_eq!(
        StateStore::get_meta(s, "last_applied").unwrap(),
        Some(b"42".to_vec())
    );
    // Messages come out in seq order, not byte-string order of the decimal.
    s.apply(&[msg("m", 256), msg("m", 3)]).unwrap();
    let seqs: Vec<Vec<u8>> = rows_of(s, StateTable::Messages)
        .into_iter()
        .filter(|r| r.0 == "m")
        .map(|r| r.1)
        .collect();
    assert_eq!(
        seqs,
        vec![3u64.to_be_bytes().to_vec(), 256u64.to_be_bytes().to_vec()]
    );
    // A callback error stops the scan and comes back.
    let err = s
        .scan(StateTable::Sessions, &mut |_, _, _| {
            Err(StoreError::Invalid("stop".into()))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
}

fn export_import_round_trip<S: StateStore>(s: &S, fresh: &S) {
    populated(s);
    // The target's own rows must be replaced, not merged.
    fresh
        .apply(&[
            sub("zzz", "gone"),
            StateWrite::MetaPut {
                key: "old".into(),
                value: vec![],
            },
        ])
        .unwrap();
    let mut bytes = Vec::new();
    let written = s.export(&mut bytes).unwrap();
    assert_eq!(written as usize, bytes.len());
    fresh.import(&mut bytes.as_slice()).unwrap();
    assert_eq!(dump(fresh), dump(s));
    // An empty store exports and imports too.
    let mut empty = Vec::new();
    MemStore::new().export(&mut empty).unwrap();
    fresh.import(&mut empty.as_slice()).unwrap();
    assert!(dump(fresh).is_empty());
}

fn import_bad_stream_changes_nothing<S: StateStore>(s: &S, target: &S) {
    populated(s);
    let mut bytes = Vec::new();
    s.export(&mut bytes).unwrap();
    target.apply(&[sub("keep", "me"), msg("keep", 9)]).unwrap();
    let before = dump(target);
    for cut in [
        0,
        7,
        8,
        20,
        bytes.len() / 2,
        bytes.len() - 5,
        bytes.len() - 1,
    ] {
        let err = target.import(&mut &bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, StoreError::Snapshot(_)),
            "cut at {cut}: {err}"
        );
        assert_eq!(dump(target), before, "cut at {cut} changed the target");
    }
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    assert!(target.import(&mut flipped.as_slice()).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(target.import(&mut trailing.as_slice()).is_err());
    assert_eq!(dump(target), before);
    // The target still works and a good stream still imports.
    target.import(&mut bytes.as_slice()).unwrap();
    assert_eq!(dump(target), dump(s));
}

macro_rules! backend_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[test]
            fn log_append_range_last() {
                super::log_append_range_last(&*$backend());
            }
            #[test]
            fn log_append_replaces() {
                super::log_append_replaces(&*$backend());
            }
            #[test]
            fn log_append_rejects_bad_indexes() {
                super::log_append_rejects_bad_indexes(&*$backend());
            }
            #[test]
            fn log_range_stops_at_gap() {
                super::log_range_stops_at_gap(&*$backend());
            }
            #[test]
            fn log_truncate() {
                super::log_truncate(&*$backend());
            }
            #[test]
            fn log_purge() {
                super::log_purge(&*$backend());
            }
            #[test]
            fn raft_meta() {
                super::raft_meta(&*$backend());
            }
            #[test]
            fn apply_in_order() {
                super::apply_in_order(&*$backend());
            }
            #[test]
            fn apply_is_atomic() {
                super::apply_is_atomic(&*$backend());
            }
            #[test]
            fn session_delete_spares_prefix_clients() {
                super::session_delete_spares_prefix_clients(&*$backend());
            }
            #[test]
            fn single_deletes() {
                super::single_deletes(&*$backend());
            }
            #[test]
            fn scan_decodes_parts() {
                super::scan_decodes_parts(&*$backend());
            }
            #[test]
            fn export_import_round_trip() {
                super::export_import_round_trip(&*$backend(), &*$backend());
            }
            #[test]
            fn import_bad_stream_changes_nothing() {
                super::import_bad_stream_changes_nothing(&*$backend(), &*$backend());
            }
        }
    };
}

backend_suite!(mem);
backend_suite!(rocks);

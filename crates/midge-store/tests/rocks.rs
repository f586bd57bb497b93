//! RocksStore-only tests: durability across reopen, the fsync policies, damaged data
//! directories, malformed keys, crash recovery of an import, and equivalence with `MemStore`
//! under random writes.

use midge_store::{
    FsyncPolicy, LogRecord, LogStore, MemStore, RocksStore, StateStore, StateTable, StateWrite,
    StoreError,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::path::{Path, PathBuf};

fn rec(index: u64) -> LogRecord {
    LogRecord {
        index,
        bytes: vec![index as u8; 100],
    }
}

type Dump = Vec<(StateTable, String, Vec<u8>, Vec<u8>)>;

fn dump(store: &dyn StateStore) -> Dump {
    let mut rows = Vec::new();
    for table in StateTable::ALL {
        store
            .scan(table, &mut |a, b, v| {
                rows.push((table, a.to_string(), b.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
    }
    rows
}

fn sample_state() -> Vec<StateWrite> {
    vec![
        StateWrite::SessionPut {
            client_id: "c1".into(),
            value: b"s".to_vec(),
        },
        StateWrite::SubscriptionPut {
            client_id: "c1".into(),
            filter: "a/#".into(),
            value: b"q1".to_vec(),
        },
        StateWrite::RetainedPut {
            topic: "a/b".into(),
            value: b"hello".to_vec(),
        },
        StateWrite::MetaPut {
            key: "last_applied".into(),
            value: b"7".to_vec(),
        },
    ]
}

/// A store in `dir` with log, raft metadata and state written, flushed to table files.
fn write_sample(dir: &Path) -> Dump {
    let store = RocksStore::open(dir, FsyncPolicy::Always).unwrap();
    store
        .append(&(1..=50).map(rec).collect::<Vec<_>>())
        .unwrap();
    store.put_meta("vote", b"v").unwrap();
    store.apply(&sample_state()).unwrap();
    store.flush().unwrap();
    dump(&store)
}

fn files_named(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pred(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    found.sort();
    found
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
        store
            .append(&(1..=10).map(rec).collect::<Vec<_>>())
            .unwrap();
        store.truncate(9).unwrap();
        store.purge(2).unwrap();
        store.put_meta("vote", b"v1").unwrap();
        store.apply(&sample_state()).unwrap();
        dump(&store)
    };
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(
        store.range(0, 100).unwrap(),
        (3..=8).map(rec).collect::<Vec<_>>()
    );
    assert_eq!(
        LogStore::get_meta(&store, "vote").unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(dump(&store), before);
}

#[test]
fn interval_policy_appends_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path(), FsyncPolicy::IntervalMs(5)).unwrap();
        for i in 1..=20 {
            store.append(&[rec(i)]).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        // Dropping stops the sync thread (the test would hang otherwise).
    }
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(store.last().unwrap(), Some(rec(20)));
}

#[test]
fn zero_interval_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let err = RocksStore::open(dir.path(), FsyncPolicy::IntervalMs(0)).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

#[test]
fn creates_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    RocksStore::open(&nested, FsyncPolicy::Always).unwrap();
    assert!(nested.join("CURRENT").exists());
}

/// Damages files of a written store and checks that open fails naming the data directory.
fn assert_open_fails(damage: impl Fn(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path());
    damage(dir.path());
    let err =
        RocksStore::open(dir.path(), FsyncPolicy::Always).expect_err("a damaged data dir opened");
    let message = err.to_string();
    let dir_name = dir.path().display().to_string();
    assert!(
        message.contains(&dir_name),
        "error does not name {dir_name}: {message}"
    );
    eprintln!("open error: {message}");
    message
}

#[test]
fn truncated_sst_is_an_error() {
    assert_open_fails(|dir| {
        let ssts = files_named(dir, |n| n.ends_with(".sst"));
        assert!(!ssts.is_empty(), "flush wrote no table file");
        for sst in ssts {
            let len = std::fs::metadata(&sst).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(&sst).unwrap();
            file.set_len(len / 2).unwrap();
        }
    });
}

#[test]
fn garbage_sst_is_an_error() {
    assert_open_fails(|dir| {
        for sst in files_named(dir, |n| n.ends_with(".sst")) {
            let len = std::fs::metadata(&sst).unwrap().len() as usize;
            std::fs::write(&sst, vec![0xA5; len]).unwrap();
        }
    });
}

#[test]
fn garbage_manifest_is_an_error() {
    assert_open_fails(|dir| {
        for manifest in files_named(dir, |n| n.starts_with("MANIFEST-")) {
            let len = std::fs::metadata(&manifest).unwrap().len() as usize;
            std::fs::write(&manifest, vec![0x5A; len]).unwrap();
        }
    });
}

#[test]
fn garbage_current_is_an_error() {
    assert_open_fails(|dir| std::fs::write(dir.join("CURRENT"), b"MANIFEST-999999\n").unwrap());
    assert_open_fails(|dir| std::fs::write(dir.join("CURRENT"), b"").unwrap());
}

#[test]
fn missing_current_is_an_error() {
    let message = assert_open_fails(|dir| std::fs::remove_file(dir.join("CURRENT")).unwrap());
    assert!(message.contains("CURRENT"), "{message}");
}

#[test]
fn existing_database_missing_a_table_is_an_error() {
    // What a MANIFEST cut short after the default column family looks like to RocksDB: a
    // database without our tables. Creating them empty would silently lose every retained
    // message and session.
    let message = assert_open_fails(|dir| {
        std::fs::remove_dir_all(dir).unwrap();
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir).unwrap();
        db.put(b"k", b"v").unwrap();
    });
    assert!(message.contains("olumn famil"), "{message}");
}

/// Writes `key` straight into column family `cf` of a closed store.
fn put_raw(dir: &Path, cf: &str, key: &[u8]) {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, names).unwrap();
    db.put_cf(db.cf_handle(cf).unwrap(), key, b"v").unwrap();
}

#[test]
fn malformed_state_key_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path());
    put_raw(dir.path(), "messages", &[0, 2, b'c', b'1', 0xAB]);
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let err = store
        .scan(StateTable::Messages, &mut |_, _, _| Ok(()))
        .unwrap_err();
    match &err {
        StoreError::Corrupt { table, key, .. } => {
            assert_eq!(*table, "messages");
            assert_eq!(key, "00026331ab");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // Export refuses to carry a row no import would accept.
    assert!(matches!(
        store.export(&mut Vec::new()),
        Err(StoreError::Corrupt { .. })
    ));
    // Other tables still read.
    assert_eq!(dump_table_len(&store, StateTable::Sessions), 1);
}

fn dump_table_len(store: &dyn StateStore, table: StateTable) -> usize {
    let mut n = 0;
    store
        .scan(table, &mut |_, _, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
    n
}

#[test]
fn malformed_log_key_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path());
    put_raw(dir.path(), "log", &[0xFF; 9]);
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let err = store.last().unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { table: "log", key, .. } if key == &"ff".repeat(9)),
        "{err}"
    );
}

#[test]
fn interrupted_import_finishes_on_open() {
    let source = MemStore::new();
    source.apply(&sample_state()).unwrap();
    let mut snapshot = Vec::new();
    source.export(&mut snapshot).unwrap();

    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path());
    {
        let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
        store
            .apply(&[StateWrite::RetainedPut {
                topic: "stale".into(),
                value: vec![],
            }])
            .unwrap();
    }
    // What a crash after import step 2 leaves behind: the verified copy and the marker.
    std::fs::write(dir.path().join("midge-import.spool"), &snapshot).unwrap();
    put_raw(dir.path(), "default", b"midge-store/import-pending");
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    assert_eq!(dump(&store), dump(&source));
    assert!(!dir.path().join("midge-import.spool").exists());
    // The log is not part of a snapshot.
    assert_eq!(store.last().unwrap(), Some(rec(50)));
}

#[test]
fn interrupted_import_without_its_copy_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path());
    put_raw(dir.path(), "default", b"midge-store/import-pending");
    let err = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    assert!(err.to_string().contains("midge-import.spool"), "{err}");
}

#[test]
fn failed_import_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    store.apply(&sample_state()).unwrap();
    let before = dump(&store);
    let mut bytes = Vec::new();
    store.export(&mut bytes).unwrap();
    let listing = || files_named(dir.path(), |n| n.starts_with("midge-import"));
    assert!(store.import(&mut &bytes[..bytes.len() - 1]).is_err());
    assert_eq!(listing(), Vec::<PathBuf>::new());
    store.import(&mut bytes.as_slice()).unwrap();
    assert_eq!(listing(), Vec::<PathBuf>::new());
    assert_eq!(dump(&store), before);
}

#[test]
fn snapshots_move_between_backends() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    let mem = MemStore::new();
    mem.apply(&sample_state()).unwrap();
    let mut bytes = Vec::new();
    mem.export(&mut bytes).unwrap();
    rocks.import(&mut bytes.as_slice()).unwrap();
    assert_eq!(dump(&rocks), dump(&mem));
    let mut again = Vec::new();
    rocks.export(&mut again).unwrap();
    assert_eq!(
        again, bytes,
        "both backends write the same bytes for the same rows"
    );
}

#[test]
fn export_is_point_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
    store.apply(&sample_state()).unwrap();
    let before = dump(&store);
    // A writer that changes the store after the first bytes were written.
    struct Meddler<'a>(&'a RocksStore, Vec<u8>, bool);
    impl std::io::Write for Meddler<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.2 {
                self.2 = true;
                self.0
                    .apply(&[StateWrite::RetainedPut {
                        topic: "late".into(),
                        value: vec![],
                    }])
                    .unwrap();
            }
            self.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Meddler(&store, Vec::new(), false);
    store.export(&mut out).unwrap();
    let copy = MemStore::new();
    copy.import(&mut out.1.as_slice()).unwrap();
    assert_eq!(dump(&copy), before);
}

fn arb_client() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "a", "ab", "b", "a\u{e9}"]).prop_map(String::from)
}

fn arb_write() -> impl Strategy<Value = StateWrite> {
    let value = prop::collection::vec(any::<u8>(), 0..4);
    let filter = prop::sample::select(vec!["", "x", "x/#", "+"]).prop_map(String::from);
    prop_oneof![
        (filter.clone(), value.clone())
            .prop_map(|(topic, value)| StateWrite::RetainedPut { topic, value }),
        filter
            .clone()
            .prop_map(|topic| StateWrite::RetainedDelete { topic }),
        (arb_client(), value.clone())
            .prop_map(|(client_id, value)| StateWrite::SessionPut { client_id, value }),
        arb_client().prop_map(|client_id| StateWrite::SessionDelete { client_id }),
        (arb_client(), filter.clone(), value.clone()).prop_map(|(client_id, filter, value)| {
            StateWrite::SubscriptionPut {
                client_id,
                filter,
                value,
            }
        }),
        (arb_client(), filter)
            .prop_map(|(client_id, filter)| StateWrite::SubscriptionDelete { client_id, filter }),
        (arb_client(), 0u64..4, value.clone()).prop_map(|(client_id, seq, value)| {
            StateWrite::MessagePut {
                client_id,
                seq,
                value,
            }
        }),
        (arb_client(), 0u64..4)
            .prop_map(|(client_id, seq)| StateWrite::MessageDelete { client_id, seq }),
        (arb_client(), 0u16..3).prop_map(|(client_id, packet_id)| StateWrite::Qos2Put {
            client_id,
            packet_id
        }),
        (arb_client(), 0u16..3).prop_map(|(client_id, packet_id)| StateWrite::Qos2Delete {
            client_id,
            packet_id
        }),
        (prop::sample::select(vec!["m1", "m2"]), value).prop_map(|(key, value)| {
            StateWrite::MetaPut {
                key: key.into(),
                value,
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        // Integration tests have no lib.rs beside them: keep failures next to this file.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_writes_scan_equal_on_both_backends(
        batches in prop::collection::vec(prop::collection::vec(arb_write(), 1..8), 1..12)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksStore::open(dir.path(), FsyncPolicy::Always).unwrap();
        let mem = MemStore::new();
        for batch in &batches {
            rocks.apply(batch).unwrap();
            mem.apply(batch).unwrap();
        }
        prop_assert_eq!(dump(&rocks), dump(&mem));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        rocks.export(&mut a).unwrap();
        mem.export(&mut b).unwrap();
        prop_assert_eq!(a, b);
    }
}

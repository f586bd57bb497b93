//! Export and import of a large RocksStore (100k retained rows, ~200 MiB) stream: the
//! process's peak resident memory grows by far less than the data. Alone in its own test
//! binary so no other test moves the numbers.

use midge_store::{FsyncPolicy, RocksStore, StateStore, StateTable, StateWrite};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

const ROWS: u64 = 100_000;
const VALUE_LEN: usize = 2048;
const BATCH: u64 = 1_000;

/// Reads a `Vm*` line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak-RSS counter (Linux >= 4.0); false where that is not possible.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs `f` and returns how far the peak RSS rose above the RSS before it, in MiB.
fn peak_growth_mib(f: impl FnOnce()) -> Option<u64> {
    if !reset_peak() {
        f();
        return None;
    }
    let before = status_kib("VmRSS:")?;
    f();
    let peak = status_kib("VmHWM:")?;
    Some(peak.saturating_sub(before) / 1024)
}

/// Deterministic, poorly compressible bytes.
fn value(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..VALUE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fill(store: &RocksStore) {
    for start in (0..ROWS).step_by(BATCH as usize) {
        let writes: Vec<StateWrite> = (start..start + BATCH)
            .map(|i| match i % 10 {
                0..=5 => StateWrite::MessagePut {
                    client_id: format!("client-{}", i % 1000),
                    seq: i,
                    value: value(i),
                },
                6..=8 => StateWrite::SubscriptionPut {
                    client_id: format!("client-{}", i % 1000),
                    filter: format!("f/{i}/#"),
                    value: value(i),
                },
                _ => StateWrite::RetainedPut {
                    topic: format!("t/{i}"),
                    value: value(i),
                },
            })
            .collect();
        store.apply(&writes).expect("apply");
    }
}

fn count(store: &RocksStore) -> u64 {
    let mut n = 0;
    for table in StateTable::ALL {
        store
            .scan(table, &mut |_, _, _| {
                n += 1;
                Ok(())
            })
            .expect("scan");
    }
    n
}

fn same_file(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (
        BufReader::new(File::open(a).unwrap()),
        BufReader::new(File::open(b).unwrap()),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
            return false;
        }
    }
}

#[test]
fn large_export_import_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let source = RocksStore::open(&dir.path().join("source"), FsyncPolicy::Always).unwrap();
    fill(&source);
    assert_eq!(count(&source), ROWS);

    let exported = dir.path().join("export.snap");
    let export_growth = peak_growth_mib(|| {
        let mut out = File::create(&exported).unwrap();
        source.export(&mut out).unwrap();
    });
    let size_mib = std::fs::metadata(&exported).unwrap().len() >> 20;
    assert!(size_mib >= 190, "snapshot is only {size_mib} MiB");

    let target = RocksStore::open(&dir.path().join("target"), FsyncPolicy::Always).unwrap();
    let import_growth = peak_growth_mib(|| {
        let mut input = File::open(&exported).unwrap();
        target.import(&mut input).unwrap();
    });
    assert_eq!(count(&target), ROWS);
    let again = dir.path().join("again.snap");
    target.export(&mut File::create(&again).unwrap()).unwrap();
    assert!(same_file(&exported, &again), "imported rows differ");

    eprintln!(
        "snapshot {size_mib} MiB; peak RSS growth: export {export_growth:?} MiB, import {import_growth:?} MiB"
    );
    if let Some(growth) = export_growth {
        assert!(growth < size_mib / 3, "export grew RSS by {growth} MiB");
    }
    if let Some(growth) = import_growth {
        // The store caps memtables at 64 MiB; the import itself holds one ~4 MiB batch.
        assert!(growth < 96, "import grew RSS by {growth} MiB");
        assert!(growth < size_mib / 2, "import grew RSS by {growth} MiB");
    }
}

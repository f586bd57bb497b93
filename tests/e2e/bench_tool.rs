//! `midge-bench` against a real broker: the numbers `docs/benchmarks.md` reports come from
//! these fields, so they are checked to count what they say they count.

use crate::harness::Midge;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bench_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_midge")).with_file_name("midge-bench");
    assert!(
        bin.exists(),
        "{} is built by `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Runs `midge-bench ARGS -p PORT --quiet --json FILE` and returns the summary.
fn run_bench(m: &Midge, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("summary.json");
    let out = Command::new(bench_bin())
        .args(args)
        .args(["-p", &m.port().to_string(), "--quiet", "--json"])
        .arg(&json)
        .output()
        .expect("run midge-bench");
    assert!(
        out.status.success(),
        "midge-bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).expect("summary written");
    serde_json::from_str(&text).expect("summary is JSON")
}

// The retained-replay measurement: messages retained before `sub` starts are counted and timed
// (MQTT-3.3.1-9: a new subscription gets the matching retained messages), not set aside as
// stale, and a count-bounded `sub` ends by itself once it has them all.
#[test]
fn sub_counts_and_times_a_retained_replay() {
    let m = Midge::start();
    let set = run_bench(
        &m,
        &[
            "pub",
            "-c",
            "300",
            "--count",
            "1",
            "-r",
            "-q",
            "1",
            "-s",
            "16",
            "-t",
            "r/%i",
            "--connect-rate",
            "0",
            "--duration",
            "30",
        ],
    );
    assert_eq!(set["messages"]["acked"], 300, "{set}");
    let replay = run_bench(
        &m,
        &["sub", "-t", "r/#", "--count", "300", "--duration", "30"],
    );
    let messages = &replay["messages"];
    assert_eq!(messages["received"], 300, "{replay}");
    assert_eq!(messages["stale"], 0, "{replay}");
    let last = messages["last_receive_s"].as_f64().expect("last_receive_s");
    // Bounded by --count, not by --duration.
    assert!(last > 0.0 && last < 30.0, "{replay}");
    assert!(
        replay["duration_s"].as_f64().is_some_and(|d| d < 30.0),
        "{replay}"
    );
}

// Idle memory per connection: `conn --broker-pid` reads the broker's VmRSS before the clients
// connect and while they are all still connected, and divides the growth by their number.
#[test]
fn conn_reports_the_brokers_memory_per_connection() {
    let m = Midge::start();
    let pid = m.pid().to_string();
    let summary = run_bench(
        &m,
        &[
            "conn",
            "-c",
            "200",
            "--connect-rate",
            "0",
            "--duration",
            "2",
            "--broker-pid",
            &pid,
        ],
    );
    assert_eq!(summary["connections"]["connected"], 200, "{summary}");
    let memory = &summary["broker_memory"];
    let before = memory["rss_before_kib"].as_u64().expect("rss_before_kib");
    let running = memory["rss_running_kib"].as_u64().expect("rss_running_kib");
    assert!(running > before, "200 connections take memory: {summary}");
    let per = memory["per_connection_kib"]
        .as_f64()
        .expect("per_connection_kib");
    let expected = (running - before) as f64 / 200.0;
    assert!((per - expected).abs() < 0.01, "{summary}");
    // Without --broker-pid there is nothing to report.
    let bare = run_bench(&m, &["conn", "-c", "5", "--duration", "0.5"]);
    assert!(bare["broker_memory"].is_null(), "{bare}");
}

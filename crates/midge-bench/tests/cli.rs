//! The `midge-bench` executable's command line: help, and a clear error for a bad argument.
//! (Also makes `cargo test --workspace` build the executable, which the e2e partition test
//! runs inside a container.)

use std::process::Command;

#[test]
fn help_lists_the_scenarios_and_a_bad_argument_is_named() {
    let bin = env!("CARGO_BIN_EXE_midge-bench");
    let help = Command::new(bin).arg("--help").output().expect("run");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for scenario in ["conn", "pub", "sub", "pubsub"] {
        assert!(text.contains(scenario), "{text}");
    }
    let bad = Command::new(bin)
        .args(["pub", "--qos", "3"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--qos"));
}

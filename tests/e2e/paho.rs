//! Eclipse paho-mqtt (Python) against a real broker: each test runs one script of
//! `tests/paho/` (QoS, retained, will, session, MQTT 5 features, shared subscriptions) for
//! MQTT 3.1.1 and 5.0. The scripts print one PASS/FAIL line per named check.

use crate::harness::Midge;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for one script (they take a few seconds and bound every wait themselves).
const SCRIPT_LIMIT: Duration = Duration::from_secs(120);

/// True if `python3` can import paho-mqtt 2.x (the scripts use its `CallbackAPIVersion`
/// API). Under CI a missing module fails the test; elsewhere the test is skipped with a
/// message saying what to install.
pub fn have_paho() -> bool {
    let found = Command::new("python3")
        .args(["-c", "from paho.mqtt.client import CallbackAPIVersion"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        let hint = "pip install 'paho-mqtt>=2'";
        if std::env::var_os("CI").is_some() {
            panic!("python3 with paho-mqtt 2.x is required under CI: {hint}");
        }
        eprintln!("SKIPPED: python3 paho-mqtt 2.x not installed ({hint})");
    }
    found
}

/// Runs `cmd` to completion, killing it after `limit`. Returns its output and whether it
/// was killed for running too long.
pub fn output_within(cmd: &mut Command, limit: Duration) -> (Output, bool) {
    output_with_input(cmd, None, limit)
}

/// Like [`output_within`], writing `input` (if any) to the command's stdin and closing it.
pub fn output_with_input(
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    limit: Duration,
) -> (Output, bool) {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    )
}

/// Starts a broker, runs `tests/paho/<script>` against it and asserts every check passed.
fn run_script(script: &str) {
    if !have_paho() {
        return;
    }
    let m = Midge::start();
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "paho", script]
        .iter()
        .collect();
    let (out, timed_out) = output_within(
        Command::new("python3")
            .arg("-u")
            .arg(&path)
            .args(["--port", &m.port().to_string()])
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SCRIPT_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && !timed_out {
        println!("{stdout}");
        return;
    }
    panic!(
        "{script} failed ({}{})\n--- script output ---\n{stdout}\n\
         --- script stderr ---\n{stderr}\n--- broker log ---\n{}",
        out.status,
        if timed_out {
            ", killed after the time limit"
        } else {
            ""
        },
        m.log()
    );
}

#[test]
fn qos() {
    run_script("qos.py");
}

#[test]
fn retained() {
    run_script("retained.py");
}

#[test]
fn will() {
    run_script("will.py");
}

#[test]
fn session() {
    run_script("session.py");
}

#[test]
fn v5() {
    run_script("v5.py");
}

#[test]
fn shared() {
    run_script("shared.py");
}

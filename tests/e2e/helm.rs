//! The Helm chart (`helm/midge`): `tests/helm/test_chart.py` renders and lints it with the
//! real Helm engine (the `helm-python-sdk` package embeds Helm's Go SDK, so no `helm` binary
//! or cluster is needed), validates every manifest against the Kubernetes API schemas and
//! checks the chart's promises (seeds, volumes, probes, disruption budget, a `midge.toml`
//! that only uses keys of `default.toml`). This test runs it and shows its output.

use crate::paho::output_within;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Rendering a handful of value sets and validating them takes a few seconds.
const SCRIPT_LIMIT: Duration = Duration::from_secs(180);

/// The pip packages the script needs.
const PACKAGES: &str = "pip install helm-python-sdk kubernetes-validate";

/// True if `python3` can import both packages. Under CI a missing one fails the test;
/// elsewhere the test is skipped with a message saying what to install.
fn have_packages() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import helm_python, kubernetes_validate, yaml"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("python3 with helm-python-sdk and kubernetes-validate is required under CI: {PACKAGES}");
        }
        eprintln!(
            "SKIPPED: python3 helm-python-sdk / kubernetes-validate not installed ({PACKAGES})"
        );
    }
    found
}

#[test]
fn chart_renders_lints_and_validates() {
    if !have_packages() {
        return;
    }
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "helm", "test_chart.py"]
        .iter()
        .collect();
    let (out, timed_out) = output_within(
        Command::new("python3")
            .arg("-u")
            .arg(&script)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        SCRIPT_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && !timed_out,
        "tests/helm/test_chart.py failed ({}{})\n--- output ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status,
        if timed_out {
            ", killed after the time limit"
        } else {
            ""
        }
    );
}

//! Process-wide logging setup: a `RUST_LOG`-style filter and text or JSON lines on stderr.

use crate::{LogFormat, LogSection};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The Raft library's log target.
const RAFT_TARGET: &str = "openraft";
/// Its level unless the filter names it.
const RAFT_QUIET: &str = "openraft=warn";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    /// `RUST_LOG` holds directives that do not parse (`log.level` was checked at load).
    #[error("invalid RUST_LOG filter {value:?}: {reason}")]
    InvalidFilter {
        /// The variable's value.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("logging was already initialised: {0}")]
    AlreadyInitialized(String),
}

/// Installs the global subscriber. `rust_log` is the `RUST_LOG` variable, passed in rather than
/// read here so callers decide where it comes from; when set and non-empty it overrides
/// `log.level`, as operators expect from Rust programs.
pub fn init_logging(log: &LogSection, rust_log: Option<&str>) -> Result<(), LogInitError> {
    let directives = match rust_log {
        Some(v) if !v.trim().is_empty() => v,
        _ => log.level.as_str(),
    };
    let mut filter =
        EnvFilter::builder()
            .parse(directives)
            .map_err(|e| LogInitError::InvalidFilter {
                value: directives.to_string(),
                reason: e.to_string(),
            })?;
    if !directives.contains(RAFT_TARGET) {
        // Openraft narrates every election and startup step at INFO; for a broker operator
        // only its warnings matter. Naming `openraft` in the filter turns this off.
        filter =
            filter.add_directive(
                RAFT_QUIET
                    .parse()
                    .map_err(|e| LogInitError::InvalidFilter {
                        value: RAFT_QUIET.to_string(),
                        reason: format!("{e}"),
                    })?,
            );
    }
    // The target (module path) is left out of text lines to keep them close to Mosquitto's;
    // colours only when a person is watching, never in files or pipes that tools parse.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| LogInitError::AlreadyInitialized(e.to_string()))
}

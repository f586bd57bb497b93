//! Process-wide logging setup: a `RUST_LOG`-style filter and text or JSON lines on stderr.

use crate::{LogFormat, LogSection};
use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

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

/// Changes the running log filter on reload. Returned by [`init_logging`].
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` as given at startup: while set, it wins over `log.level`, on reload too.
    rust_log: Option<String>,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle")
            .field("rust_log", &self.rust_log)
            .finish_non_exhaustive()
    }
}

impl LogHandle {
    /// The filter `level` would install, or `None` when `RUST_LOG` overrides `log.level`.
    pub(crate) fn prepare(&self, level: &str) -> Result<Option<EnvFilter>, LogInitError> {
        if self.rust_log.is_some() {
            return Ok(None);
        }
        build_filter(level).map(Some)
    }

    /// True when `RUST_LOG` decides the filter, so `log.level` changes have no effect.
    pub(crate) fn overridden(&self) -> bool {
        self.rust_log.is_some()
    }

    /// Installs a filter made by [`LogHandle::prepare`].
    pub(crate) fn apply(&self, filter: EnvFilter) {
        if let Err(err) = self.filter.reload(filter) {
            // Only possible once the subscriber is gone, i.e. while the process exits.
            tracing::warn!("Cannot change the log filter: {err}.");
        }
    }
}

/// `directives` as a filter, with the Raft library quietened unless the filter names it.
fn build_filter(directives: &str) -> Result<EnvFilter, LogInitError> {
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
    Ok(filter)
}

/// Installs the global subscriber. `rust_log` is the `RUST_LOG` variable, passed in rather than
/// read here so callers decide where it comes from; when set and non-empty it overrides
/// `log.level`, as operators expect from Rust programs. The returned handle changes the
/// filter later (SIGHUP); the line format cannot change after startup.
pub fn init_logging(log: &LogSection, rust_log: Option<&str>) -> Result<LogHandle, LogInitError> {
    let rust_log = rust_log.filter(|v| !v.trim().is_empty());
    let filter = build_filter(rust_log.unwrap_or(log.level.as_str()))?;
    let (filter, handle) = reload::Layer::new(filter);
    // The target (module path) is left out of text lines to keep them close to Mosquitto's;
    // colours only when a person is watching, never in files or pipes that tools parse.
    let ansi = std::io::stderr().is_terminal();
    let (text, json) = match log.format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .with_target(false),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_target(false),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init()
        .map_err(|e| LogInitError::AlreadyInitialized(e.to_string()))?;
    Ok(LogHandle {
        filter: handle,
        rust_log: rust_log.map(str::to_string),
    })
}

//! Reloading the configuration while running (SIGHUP).
//!
//! A reload re-reads the configuration layers exactly as at startup ([`ConfigSource`]) and
//! applies what can change live. It runs in two phases so that a bad configuration changes
//! nothing: every step first *prepares* against the new configuration (parses, reads its
//! files, checks) without touching live state; only when all of them succeeded does each
//! step *apply* what it prepared, which cannot fail. On an error the running configuration is
//! kept and the error is logged. Afterwards one INFO line names what was reloaded, and one
//! WARN line names changed keys that only take effect after a restart.
//!
//! Adding a step (TLS certificates, password and ACL files, ...):
//! 1. a field in [`ReloadContext`] for the live state the step swaps, set in
//!    `BoundServer::reloader`;
//! 2. a `prepare_*` method returning `Ok(None)` when nothing changed, else the checked new
//!    value, and an `apply_*` method installing it;
//! 3. one line for it in each phase of [`ReloadContext::reload`], with the name the log line
//!    shows;
//! 4. the keys it makes live in [`LIVE_KEYS`], so they are not reported as needing a restart.

use crate::live_limits::LiveLimits;
use crate::logging::{LogHandle, LogInitError};
use crate::security_reload::{PreparedSecurity, SecurityReload, SecurityReloadError};
use crate::{Config, ConfigError, ConfigSource, LimitsSection};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Keys a reload applies to the running server: an entry names a key, or a whole table when
/// it ends with a dot. Changes to any other key are reported as needing a restart.
const LIVE_KEYS: &[&str] = &["log.level", "limits.", "auth.acl_file"];

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration layers do not load (the message names the key or file).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A certificate, key, password or ACL file does not load.
    #[error(transparent)]
    Security(#[from] SecurityReloadError),
    /// The new `log.level` does not parse.
    #[error("`log.level`: {0}")]
    LogLevel(#[from] LogInitError),
}

/// What one successful reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// What was applied live, as the log line names it (e.g. `log level`, `limits`).
    pub applied: Vec<&'static str>,
    /// Changed keys that take effect only after a restart.
    pub restart_needed: Vec<String>,
}

/// Triggers reloads; cheap to clone. Made by `BoundServer::reloader`.
#[derive(Debug, Clone)]
pub struct Reloader {
    ctx: Arc<ReloadContext>,
}

/// Everything a reload may change, and the configuration in force.
#[derive(Debug)]
pub(crate) struct ReloadContext {
    /// The layers to read again.
    pub(crate) source: ConfigSource,
    /// The configuration in force; also serialises reloads.
    pub(crate) current: Mutex<Config>,
    /// The log filter (`None` when the embedding program set up logging itself).
    pub(crate) log: Option<LogHandle>,
    /// `[limits]`.
    pub(crate) limits: Arc<LiveLimits>,
    /// TLS certificates, password and ACL files (`None` in tests that only reload config).
    pub(crate) security: Option<SecurityReload>,
}

/// What the prepare phase produced; each `Some` is applied.
#[derive(Default)]
struct Prepared {
    log: Option<EnvFilter>,
    limits: Option<LimitsSection>,
    security: Option<PreparedSecurity>,
}

impl Reloader {
    pub(crate) fn new(ctx: ReloadContext) -> Reloader {
        Reloader { ctx: Arc::new(ctx) }
    }

    /// Reloads, returning what changed. Blocking (it reads files): call it from a blocking
    /// thread, as the SIGHUP handler does.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        self.ctx.reload()
    }

    /// Reloads and logs the outcome: one INFO line naming what was reloaded, a WARN line for
    /// changes that need a restart, or an ERROR line saying why nothing changed.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(reloaded) => {
                if reloaded.applied.is_empty() {
                    tracing::info!("Configuration reloaded: nothing to change.");
                } else {
                    tracing::info!("Configuration reloaded: {}.", reloaded.applied.join(", "));
                }
                if !reloaded.restart_needed.is_empty() {
                    tracing::warn!(
                        "Configuration reload: {} changed but only take(s) effect after a \
                         restart.",
                        reloaded.restart_needed.join(", ")
                    );
                }
            }
            Err(err) => tracing::error!(
                "Configuration reload failed, keeping the running configuration: {err}"
            ),
        }
    }
}

impl Reloader {
    /// Installs the SIGHUP handler now and returns the loop that reloads (and logs) on each
    /// signal; it never ends.
    #[cfg(unix)]
    pub fn on_hangup(self) -> std::io::Result<impl std::future::Future<Output = ()>> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        Ok(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading the configuration.");
                let reloader = self.clone();
                // Reloading reads files: keep that off the async worker threads.
                if let Err(err) =
                    tokio::task::spawn_blocking(move || reloader.reload_and_log()).await
                {
                    tracing::error!("The configuration reload failed: {err}.");
                }
            }
        })
    }

    /// Without SIGHUP there is nothing to wait for.
    #[cfg(not(unix))]
    pub fn on_hangup(self) -> std::io::Result<impl std::future::Future<Output = ()>> {
        Ok(std::future::pending::<()>())
    }
}

impl ReloadContext {
    fn reload(&self) -> Result<Reloaded, ReloadError> {
        let mut current = self.current.lock();
        let new = self.source.load()?;
        let old = &*current;

        // Phase 1: check everything; nothing live changes yet.
        let prepared = Prepared {
            log: self.prepare_log(old, &new)?,
            limits: self.prepare_limits(old, &new),
            security: self
                .security
                .as_ref()
                .map(|s| s.prepare(&new))
                .transpose()?,
        };

        // Phase 2: apply; nothing here fails.
        let mut applied = Vec::new();
        if let Some(filter) = prepared.log {
            self.apply_log(filter);
            applied.push("log level");
        }
        if let Some(limits) = prepared.limits {
            self.limits.apply(&limits);
            applied.push("limits");
        }
        if let (Some(security), Some(prepared)) = (&self.security, prepared.security) {
            security.apply(prepared);
            applied.push("certificates, password and ACL files");
        }

        let restart_needed = changed_keys(old, &new)
            .into_iter()
            .filter(|key| !is_live(key))
            .collect();
        *current = new;
        Ok(Reloaded {
            applied,
            restart_needed,
        })
    }

    /// `log.level`: a new filter, unless `RUST_LOG` decides it.
    fn prepare_log(&self, old: &Config, new: &Config) -> Result<Option<EnvFilter>, ReloadError> {
        let Some(log) = &self.log else {
            return Ok(None);
        };
        if old.log.level == new.log.level {
            return Ok(None);
        }
        if log.overridden() {
            tracing::info!(
                "log.level changed, but RUST_LOG is set and decides the filter; not changed."
            );
        }
        Ok(log.prepare(&new.log.level)?)
    }

    fn apply_log(&self, filter: EnvFilter) {
        if let Some(log) = &self.log {
            log.apply(filter);
        }
    }

    /// `[limits]`: validated by `Config::load` already.
    fn prepare_limits(&self, old: &Config, new: &Config) -> Option<LimitsSection> {
        (old.limits != new.limits).then(|| new.limits.clone())
    }
}

/// True when a reload applies `key` live.
fn is_live(key: &str) -> bool {
    LIVE_KEYS.iter().any(|live| {
        if live.ends_with('.') {
            key.starts_with(live)
        } else {
            key == *live
        }
    })
}

/// The dotted keys whose values differ between `old` and `new`.
fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (old, new) = (flatten(old), flatten(new));
    let mut keys: Vec<String> = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(new.keys().filter(|k| !old.contains_key(*k)).cloned());
    keys.sort();
    keys
}

/// Every leaf of the configuration as `section.key` -> value.
fn flatten(config: &Config) -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, value: toml::Value, out: &mut BTreeMap<String, toml::Value>) {
        match value {
            toml::Value::Table(table) => {
                for (k, v) in table {
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf);
            }
        }
    }
    let mut out = BTreeMap::new();
    // The configuration is plain data that serialised at startup (`--print-default-config`
    // tests prove it); should that ever fail, reporting no key is the harmless outcome.
    if let Ok(value) = toml::Value::try_from(config) {
        walk("", value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigOverrides;
    use std::io::Write;

    fn context(file: &std::path::Path) -> ReloadContext {
        let source = ConfigSource {
            file: Some(file.to_path_buf()),
            env: vec![],
            overrides: ConfigOverrides::default(),
        };
        let config = source.load().expect("initial config");
        let settings = crate::live_limits::test_settings(&config);
        ReloadContext {
            limits: LiveLimits::new(&config.limits, settings),
            current: Mutex::new(config),
            source,
            log: None,
            security: None,
        }
    }

    fn write(path: &std::path::Path, text: &str) {
        let mut f = std::fs::File::create(path).expect("create");
        f.write_all(text.as_bytes()).expect("write");
    }

    #[test]
    fn limits_apply_live_and_other_keys_are_reported() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("midge.toml");
        write(&file, "[limits]\nmax_connections = 5\n");
        let ctx = context(&file);
        assert_eq!(ctx.reload().expect("unchanged"), Reloaded::default());

        write(
            &file,
            "[limits]\nmax_connections = 7\nmax_pending_bytes = 99\n[listener]\nport = 1999\n",
        );
        let reloaded = ctx.reload().expect("reloads");
        assert_eq!(reloaded.applied, vec!["limits"]);
        assert_eq!(reloaded.restart_needed, vec!["listener.port".to_string()]);
        assert_eq!(ctx.limits.slots().max(), 7);
        assert_eq!(ctx.limits.connection_settings().max_pending_bytes, 99);
        assert_eq!(ctx.current.lock().limits.max_connections, 7);
    }

    #[test]
    fn a_bad_file_changes_nothing_and_names_the_key() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("midge.toml");
        write(&file, "[limits]\nmax_connections = 5\n");
        let ctx = context(&file);
        write(&file, "[limits]\nmax_connections = 0\n");
        let err = ctx.reload().expect_err("refused").to_string();
        assert!(err.contains("limits.max_connections"), "{err}");
        write(&file, "[limits]\nmax_connections = 6\nmax_conections = 1\n");
        let err = ctx.reload().expect_err("refused").to_string();
        assert!(err.contains("max_conections"), "{err}");
        assert_eq!(ctx.limits.slots().max(), 5);
        assert_eq!(ctx.current.lock().limits.max_connections, 5);
    }

    #[test]
    fn live_keys_match_whole_tables_or_exact_keys() {
        assert!(is_live("limits.max_connections"));
        assert!(is_live("log.level"));
        assert!(!is_live("log.format"));
        assert!(!is_live("limitsx.y"));
        assert!(!is_live("listener.port"));
    }
}

//! The typed server configuration: loaded once at startup from layered sources, validated, then
//! passed down. Nothing reads configuration from globals or the environment later on.

mod admin;
mod auth;
mod error;
mod listeners;
mod overrides;
mod sections;
mod source;

pub use admin::AdminSection;
pub use auth::AuthSection;
pub use error::ConfigError;
pub use listeners::{ListenerProtocol, ListenerSection};
pub use overrides::ConfigOverrides;
pub use sections::{
    BrokerSection, ClusterSection, FsyncMode, LimitsSection, LogFormat, LogSection,
    PublishRateAction, StorageSection,
};
pub use source::ConfigSource;

use config::{Environment, File, FileFormat};
use midge_core::BrokerConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tracing_subscriber::EnvFilter;

/// The built-in defaults, with a comment per key; also what `midge --print-default-config`
/// prints, so the documentation and the behaviour cannot drift apart.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../../default.toml");

/// Prefix of configuration environment variables: `MIDGE__LISTENER__PORT` sets
/// `listener.port`. The double underscore separates levels because keys contain single ones.
const ENV_PREFIX: &str = "MIDGE";
const ENV_SEPARATOR: &str = "__";

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for durable state, created at startup.
    pub data_dir: PathBuf,
    /// `[listener]`: the default plain-TCP listener.
    pub listener: ListenerSection,
    /// `[listeners.NAME]`: more listeners (TLS, WebSocket, other ports or auth modes).
    #[serde(default)]
    pub listeners: BTreeMap<String, ListenerSection>,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSection,
    /// `[broker]`.
    pub broker: BrokerSection,
    /// `[limits]`.
    pub limits: LimitsSection,
    /// `[storage]`.
    pub storage: StorageSection,
    /// `[cluster]`.
    pub cluster: ClusterSection,
    /// `[log]`.
    pub log: LogSection,
    /// `[admin]`: metrics and health checks over HTTP.
    pub admin: AdminSection,
}

impl Default for Config {
    /// The embedded defaults. They are a compile-time asset checked by the tests below, not user
    /// input, so failing to parse them is a build defect.
    fn default() -> Self {
        toml::from_str(DEFAULT_CONFIG_TOML).expect("embedded default.toml is valid")
    }
}

impl Config {
    /// Loads the layers in order (embedded defaults, then `file`, then the `MIDGE__...`
    /// variables in `env`, then `overrides`) and validates the result.
    ///
    /// `env` is a parameter rather than read here so tests can pass a map instead of mutating
    /// the process environment; `main` passes `std::env::vars()`.
    pub fn load<I>(
        file: Option<&Path>,
        env: I,
        overrides: &ConfigOverrides,
    ) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut builder = config::Config::builder()
            .add_source(File::from_str(DEFAULT_CONFIG_TOML, FileFormat::Toml));
        if let Some(path) = file {
            // The format is fixed so a file named e.g. `midge.conf` still parses as TOML.
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        let env: config::Map<String, String> = env.into_iter().collect();
        let hostname = env.get("HOSTNAME").cloned();
        builder = builder.add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .source(Some(env)),
        );
        let mut config: Config = builder.build()?.try_deserialize()?;
        overrides.apply(&mut config);
        if config.cluster.node_id == 0 {
            config.cluster.node_id = node_id_from_hostname(hostname)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The version string reported in `$SYS/broker/version`.
    pub fn version() -> String {
        format!("midge {}", env!("CARGO_PKG_VERSION"))
    }

    /// The broker core's settings (durable when storage is enabled).
    pub fn broker_config(&self) -> BrokerConfig {
        let mut config = self.broker.to_core(Config::version());
        config.durable = self.storage.enabled;
        // Storage runs the Raft node, which is what makes a broker a cluster member.
        config.cluster = self.storage.enabled;
        config
    }

    /// Range checks that types alone cannot express. Each error names its key.
    fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                reason: reason.into(),
            }
        }
        let b = &self.broker;
        if b.max_packet_size == 0 || b.max_packet_size > midge_codec::MAX_PACKET_SIZE {
            return Err(invalid(
                "broker.max_packet_size",
                format!("must be between 1 and {}", midge_codec::MAX_PACKET_SIZE),
            ));
        }
        // MQTT 5 makes a Receive Maximum of 0 a protocol error (3.2.2.3.3).
        if b.receive_maximum == 0 {
            return Err(invalid("broker.receive_maximum", "must be at least 1"));
        }
        if b.max_inflight == 0 {
            return Err(invalid("broker.max_inflight", "must be at least 1"));
        }
        if b.max_keep_alive == 0 {
            return Err(invalid("broker.max_keep_alive", "must be at least 1"));
        }
        if b.maximum_qos > 2 {
            return Err(invalid("broker.maximum_qos", "must be 0, 1 or 2"));
        }
        let l = &self.limits;
        if l.max_connections == 0 || l.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(invalid(
                "limits.max_connections",
                format!(
                    "must be between 1 and {}",
                    tokio::sync::Semaphore::MAX_PERMITS
                ),
            ));
        }
        if l.connect_timeout_secs == 0 {
            return Err(invalid("limits.connect_timeout_secs", "must be at least 1"));
        }
        if l.max_pending_bytes == 0 {
            return Err(invalid("limits.max_pending_bytes", "must be at least 1"));
        }
        if l.publish_burst_secs == 0 {
            return Err(invalid("limits.publish_burst_secs", "must be at least 1"));
        }
        let s = &self.storage;
        if s.fsync == FsyncMode::Interval && s.fsync_interval_ms == 0 {
            return Err(invalid(
                "storage.fsync_interval_ms",
                "must be at least 1 with fsync = \"interval\"",
            ));
        }
        if s.snapshot_logs == 0 {
            return Err(invalid("storage.snapshot_logs", "must be at least 1"));
        }
        if self.cluster.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "cluster.bind",
                "must be an IP address and port, e.g. 127.0.0.1:7946",
            ));
        }
        if self.cluster.voters == 0 {
            return Err(invalid("cluster.voters", "must be at least 1"));
        }
        if self.cluster.forward_batch_ms > 1000 {
            return Err(invalid("cluster.forward_batch_ms", "must be at most 1000"));
        }
        if let Some(seed) = self.cluster.seeds.iter().find(|s| !s.contains(':')) {
            return Err(invalid(
                "cluster.seeds",
                format!("{seed:?} must be host:port"),
            ));
        }
        if let Err(err) = EnvFilter::builder().parse(&self.log.level) {
            return Err(invalid("log.level", err.to_string()));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if let Some(problem) = self.listener.problem() {
            return Err(invalid("listener", problem));
        }
        for (name, listener) in &self.listeners {
            if let Some(problem) = listener.problem() {
                return Err(invalid(
                    "listeners",
                    format!("[listeners.{name}]: {problem}"),
                ));
            }
        }
        Ok(())
    }
}

/// `cluster.node_id = 0`: the id is the ordinal at the end of the host name plus one, as a
/// Kubernetes StatefulSet names its pods (`midge-0` is node 1, `midge-2` node 3). The name is
/// `$HOSTNAME`, else the kernel's.
fn node_id_from_hostname(hostname: Option<String>) -> Result<u64, ConfigError> {
    let hostname = hostname
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default();
    let hostname = hostname.trim();
    hostname
        .rsplit_once('-')
        .and_then(|(_, ordinal)| ordinal.parse::<u64>().ok())
        .and_then(|ordinal| ordinal.checked_add(1))
        .ok_or_else(|| ConfigError::Invalid {
            key: "cluster.node_id",
            reason: format!(
                "0 takes the id from a host name ending in -<ordinal> (midge-2 is node 3), \
                 but the host name is {hostname:?}"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn no_env() -> HashMap<String, String> {
        HashMap::new()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A config file in the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> TempFile {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "midge-config-test-{}-{}.toml",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut f = std::fs::File::create(&path).expect("create temp file");
            f.write_all(contents.as_bytes()).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn load_err(file: Option<&Path>, env: HashMap<String, String>) -> String {
        match Config::load(file, env, &ConfigOverrides::default()) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_load_without_any_layer() {
        let c = Config::load(None, no_env(), &ConfigOverrides::default()).expect("defaults");
        assert_eq!(c, Config::default());
        assert_eq!(c.listener.socket_addr().to_string(), "127.0.0.1:1883");
        assert_eq!(c.limits.max_connections, 10_000);
        assert_eq!(c.limits.connect_timeout_secs, 10);
        assert_eq!(c.limits.max_pending_bytes, 8 * 1024 * 1024);
        assert_eq!(c.limits.shutdown_grace_secs, 5);
        assert_eq!(c.log.level, "info");
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.storage.enabled);
        assert_eq!(c.storage.fsync, FsyncMode::Always);
        assert_eq!(c.storage.fsync_policy(), midge_store::FsyncPolicy::Always);
        assert_eq!(c.storage.fsync_interval_ms, 100);
        assert_eq!(c.storage.snapshot_logs, 10_000);
        assert_eq!(c.cluster.node_id, 1);
        assert!(c.broker_config().durable);
    }

    #[test]
    fn cluster_settings_from_env_and_file() {
        let c = Config::default();
        assert_eq!(c.cluster.bind, "127.0.0.1:7946");
        assert!(c.cluster.advertise.is_empty() && c.cluster.seeds.is_empty());
        assert_eq!(c.cluster.voters, 3);
        assert_eq!(c.cluster.forward_batch_ms, 2);
        let vars = env(&[
            ("MIDGE__CLUSTER__SEEDS", "10.0.0.1:7946, peers.example:7946"),
            ("MIDGE__CLUSTER__BIND", "0.0.0.0:0"),
            ("MIDGE__CLUSTER__VOTERS", "5"),
        ]);
        let c = Config::load(None, vars, &ConfigOverrides::default()).expect("ok");
        assert_eq!(c.cluster.seeds, ["10.0.0.1:7946", "peers.example:7946"]);
        assert_eq!(c.cluster.bind, "0.0.0.0:0");
        assert_eq!(c.cluster.voters, 5);
        let file = TempFile::new("[cluster]\nseeds = [\"a:1\", \"b:2\"]\n");
        let c = Config::load(Some(&file.0), no_env(), &ConfigOverrides::default()).expect("ok");
        assert_eq!(c.cluster.seeds, ["a:1", "b:2"]);
        let err = load_err(None, env(&[("MIDGE__CLUSTER__BIND", "somewhere")]));
        assert!(err.contains("cluster.bind"), "{err}");
        let err = load_err(None, env(&[("MIDGE__CLUSTER__SEEDS", "no-port")]));
        assert!(err.contains("cluster.seeds"), "{err}");
    }

    #[test]
    fn storage_settings_from_env() {
        let vars = env(&[
            ("MIDGE__STORAGE__ENABLED", "false"),
            ("MIDGE__STORAGE__FSYNC", "interval"),
            ("MIDGE__STORAGE__FSYNC_INTERVAL_MS", "250"),
            ("MIDGE__CLUSTER__NODE_ID", "7"),
        ]);
        let c = Config::load(None, vars, &ConfigOverrides::default()).expect("ok");
        assert!(!c.storage.enabled);
        assert!(!c.broker_config().durable);
        assert_eq!(
            c.storage.fsync_policy(),
            midge_store::FsyncPolicy::IntervalMs(250)
        );
        assert_eq!(c.cluster.node_id, 7);
        let msg = load_err(None, env(&[("MIDGE__STORAGE__FSYNC", "sometimes")]));
        assert!(msg.contains("storage.fsync"), "{msg}");
    }

    #[test]
    fn broker_defaults_match_the_core() {
        let ours = Config::default().broker_config();
        assert_eq!(ours.version, format!("midge {}", env!("CARGO_PKG_VERSION")));
        // Every other setting is the core's default (whether storage is on is the server's).
        let core = BrokerConfig {
            version: ours.version.clone(),
            durable: ours.durable,
            cluster: ours.cluster,
            ..BrokerConfig::default()
        };
        assert_eq!(ours, core);
    }

    #[test]
    fn printed_defaults_parse_back_and_every_key_is_documented() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG_TOML).expect("parses");
        assert_eq!(parsed, Config::default());
        // Serializing the defaults yields exactly the keys of the file, so no field is missing
        // from the printed (and commented) defaults.
        let serialized = toml::to_string(&parsed).expect("serializes");
        let reparsed: Config = toml::from_str(&serialized).expect("round trip");
        assert_eq!(reparsed, parsed);
        let lines: Vec<&str> = DEFAULT_CONFIG_TOML.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let is_key = !line.starts_with('#') && !line.starts_with('[') && line.contains(" = ");
            if is_key {
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "key without a comment: {line}"
                );
            }
        }
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let file = TempFile::new("[listener]\nport = 1999\n[log]\nformat = \"json\"\n");
        let c = Config::load(Some(&file.0), no_env(), &ConfigOverrides::default()).expect("ok");
        assert_eq!(c.listener.port, 1999);
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.listener.bind.to_string(), "127.0.0.1");
        assert_eq!(c.broker, Config::default().broker);
    }

    #[test]
    fn env_overrides_file() {
        let file = TempFile::new("[listener]\nport = 1999\n");
        let vars = env(&[
            ("MIDGE__LISTENER__PORT", "1884"),
            ("MIDGE__BROKER__MAX_QUEUED_MESSAGES", "7"),
            ("MIDGE__BROKER__RETAIN_AVAILABLE", "false"),
            ("MIDGE__DATA_DIR", "/tmp/midge-data"),
            // Unrelated variables are ignored.
            ("PATH", "/usr/bin"),
            ("MIDGEX", "1"),
        ]);
        let c = Config::load(Some(&file.0), vars, &ConfigOverrides::default()).expect("ok");
        assert_eq!(c.listener.port, 1884);
        assert_eq!(c.broker.max_queued_messages, 7);
        assert!(!c.broker.retain_available);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/midge-data"));
    }

    #[test]
    fn flags_override_env() {
        let vars = env(&[
            ("MIDGE__LISTENER__PORT", "1884"),
            ("MIDGE__LOG__LEVEL", "warn"),
        ]);
        let flags = ConfigOverrides {
            bind: Some("::1".parse().expect("ip")),
            port: Some(0),
            data_dir: Some(PathBuf::from("elsewhere")),
            log_level: Some("debug".into()),
        };
        let c = Config::load(None, vars, &flags).expect("ok");
        assert_eq!(c.listener.socket_addr().to_string(), "[::1]:0");
        assert_eq!(c.data_dir, PathBuf::from("elsewhere"));
        assert_eq!(c.log.level, "debug");
    }

    #[test]
    fn bad_type_in_env_names_the_key() {
        let msg = load_err(None, env(&[("MIDGE__LISTENER__PORT", "http")]));
        assert!(msg.contains("listener.port"), "{msg}");
        let msg = load_err(None, env(&[("MIDGE__LISTENER__PORT", "70000")]));
        assert!(msg.contains("listener.port"), "{msg}");
    }

    #[test]
    fn bad_value_in_file_names_the_key() {
        let file = TempFile::new("[listener]\nbind = \"not-an-address\"\n");
        let msg = load_err(Some(&file.0), no_env());
        assert!(msg.contains("listener.bind"), "{msg}");
        let file = TempFile::new("[log]\nformat = \"xml\"\n");
        let msg = load_err(Some(&file.0), no_env());
        assert!(msg.contains("log.format"), "{msg}");
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let file = TempFile::new("[listener]\nprot = 1884\n");
        let msg = load_err(Some(&file.0), no_env());
        assert!(msg.contains("prot"), "{msg}");
        let msg = load_err(None, env(&[("MIDGE__LIMITS__MAX_CONECTIONS", "5")]));
        assert!(msg.contains("max_conections"), "{msg}");
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        for (key, var, value) in [
            ("broker.maximum_qos", "MIDGE__BROKER__MAXIMUM_QOS", "3"),
            (
                "broker.receive_maximum",
                "MIDGE__BROKER__RECEIVE_MAXIMUM",
                "0",
            ),
            (
                "broker.max_packet_size",
                "MIDGE__BROKER__MAX_PACKET_SIZE",
                "0",
            ),
            (
                "limits.max_connections",
                "MIDGE__LIMITS__MAX_CONNECTIONS",
                "0",
            ),
            (
                "limits.connect_timeout_secs",
                "MIDGE__LIMITS__CONNECT_TIMEOUT_SECS",
                "0",
            ),
            ("log.level", "MIDGE__LOG__LEVEL", "loud=[[["),
            (
                "storage.snapshot_logs",
                "MIDGE__STORAGE__SNAPSHOT_LOGS",
                "0",
            ),
            ("cluster.voters", "MIDGE__CLUSTER__VOTERS", "0"),
            (
                "cluster.forward_batch_ms",
                "MIDGE__CLUSTER__FORWARD_BATCH_MS",
                "1001",
            ),
        ] {
            let msg = load_err(None, env(&[(var, value)]));
            assert!(msg.contains(key), "{key}: {msg}");
        }
    }

    #[test]
    fn node_id_zero_comes_from_the_statefulset_ordinal() {
        let pod = |name: &str| {
            Config::load(
                None,
                env(&[("MIDGE__CLUSTER__NODE_ID", "0"), ("HOSTNAME", name)]),
                &ConfigOverrides::default(),
            )
        };
        assert_eq!(pod("midge-0").expect("midge-0").cluster.node_id, 1);
        assert_eq!(pod("my-midge-12").expect("my-midge-12").cluster.node_id, 13);
        for bad in ["midge", "midge-x", "midge-"] {
            let msg = pod(bad).expect_err(bad).to_string();
            assert!(
                msg.contains("cluster.node_id") && msg.contains(bad),
                "{msg}"
            );
        }
    }

    #[test]
    fn zero_fsync_interval_is_refused_only_when_used() {
        let vars = env(&[
            ("MIDGE__STORAGE__FSYNC", "interval"),
            ("MIDGE__STORAGE__FSYNC_INTERVAL_MS", "0"),
        ]);
        let msg = load_err(None, vars);
        assert!(msg.contains("storage.fsync_interval_ms"), "{msg}");
        let vars = env(&[("MIDGE__STORAGE__FSYNC_INTERVAL_MS", "0")]);
        Config::load(None, vars, &ConfigOverrides::default()).expect("unused interval");
    }

    #[test]
    fn missing_file_is_an_error() {
        let path = std::env::temp_dir().join("midge-config-test-does-not-exist.toml");
        let msg = load_err(Some(&path), no_env());
        assert!(msg.contains("does-not-exist"), "{msg}");
    }
}

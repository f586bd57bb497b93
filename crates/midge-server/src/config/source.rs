//! Where the configuration came from, kept so a reload reads the very same layers again.

use super::{Config, ConfigError, ConfigOverrides};
use std::path::PathBuf;

/// The layers of one configuration: the file given with `-c`, the environment, and the
/// command-line flags. [`ConfigSource::load`] builds the configuration from them, at startup and
/// again on every reload, so both see the same layering rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSource {
    /// `-c FILE`, re-read on each load.
    pub file: Option<PathBuf>,
    /// The process environment as it was at startup (only `MIDGE__...` variables matter).
    /// A process's environment cannot be changed from outside, so keeping it is the same as
    /// reading it again.
    pub env: Vec<(String, String)>,
    /// The flags, the strongest layer.
    pub overrides: ConfigOverrides,
}

impl ConfigSource {
    /// Loads and validates the configuration from these layers.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(self.file.as_deref(), self.env.clone(), &self.overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_layers_give_the_same_config() {
        let source = ConfigSource {
            file: None,
            env: vec![("MIDGE__LIMITS__MAX_CONNECTIONS".into(), "7".into())],
            overrides: ConfigOverrides {
                port: Some(0),
                ..ConfigOverrides::default()
            },
        };
        let first = source.load().expect("loads");
        assert_eq!(first.limits.max_connections, 7);
        assert_eq!(first.listener.port, 0);
        assert_eq!(source.load().expect("loads again"), first);
    }
}

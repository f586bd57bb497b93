//! Settings given on the command line, the last and strongest configuration layer.

use std::net::IpAddr;
use std::path::PathBuf;

/// Values from command-line flags; `None` leaves the lower layers' value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// `--bind ADDR`: `listener.bind`.
    pub bind: Option<IpAddr>,
    /// `-p PORT`: `listener.port`.
    pub port: Option<u16>,
    /// `--data-dir DIR`: `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `-v`: `log.level`.
    pub log_level: Option<String>,
}

impl ConfigOverrides {
    /// Writes every value that is set into `config`.
    pub(crate) fn apply(&self, config: &mut super::Config) {
        if let Some(bind) = self.bind {
            config.listener.bind = bind;
        }
        if let Some(port) = self.port {
            config.listener.port = port;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(level) = &self.log_level {
            config.log.level = level.clone();
        }
    }
}

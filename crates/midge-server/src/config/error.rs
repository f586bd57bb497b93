//! Why a configuration could not be loaded.

/// A configuration error; the message names the offending key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A layer could not be read or parsed, or a value has the wrong type or an unknown key
    /// was given. The `config` crate's message names the key and where it came from.
    #[error(transparent)]
    Source(#[from] config::ConfigError),
    /// A value parsed but is out of range.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// Dotted key, e.g. `limits.max_connections`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

//! `[auth]`: settings of authentication and authorization shared by every listener.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[auth]`: the ACL file and the failed-login limiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Mosquitto ACL file; unset: every client may publish and subscribe to everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_file: Option<PathBuf>,
    /// Failed logins allowed back to back from one address before it is held off.
    pub login_failures_burst: u32,
    /// Seconds after which one failed login of an address is forgiven.
    pub login_failures_refill_secs: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            acl_file: None,
            login_failures_burst: 5,
            login_failures_refill_secs: 12,
        }
    }
}

impl AuthSection {
    /// The limiter's settings.
    pub fn login_limiter(&self) -> midge_auth::LoginLimiterConfig {
        midge_auth::LoginLimiterConfig {
            burst: self.login_failures_burst,
            refill_interval: Duration::from_secs(self.login_failures_refill_secs),
            ..midge_auth::LoginLimiterConfig::default()
        }
    }
}

//! `[admin]`: the HTTP listener for metrics and health checks.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// `[admin]`: where `/metrics`, `/healthz` and `/readyz` are served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Address to bind.
    pub bind: IpAddr,
    /// TCP port; 0 asks the OS for a free one.
    pub port: u16,
}

impl AdminSection {
    /// The socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }
}

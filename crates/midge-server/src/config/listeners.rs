//! `[listener]` and `[listeners.NAME]`: where clients connect, over which transport, and how
//! they must authenticate there.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// The transport a listener speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerProtocol {
    /// MQTT over plain TCP.
    #[default]
    Mqtt,
    /// MQTT over TLS (rustls, TLS 1.2 and 1.3).
    Tls,
    /// MQTT over WebSocket (path `/mqtt`, subprotocol `mqtt`).
    Ws,
    /// MQTT over WebSocket over TLS.
    Wss,
}

impl ListenerProtocol {
    /// The URL scheme used in logs: `tcp`, `tls`, `ws` or `wss`.
    pub fn scheme(self) -> &'static str {
        match self {
            ListenerProtocol::Mqtt => "tcp",
            ListenerProtocol::Tls => "tls",
            ListenerProtocol::Ws => "ws",
            ListenerProtocol::Wss => "wss",
        }
    }

    /// True for the transports that run over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, ListenerProtocol::Tls | ListenerProtocol::Wss)
    }

    /// True for the WebSocket transports.
    pub fn is_websocket(self) -> bool {
        matches!(self, ListenerProtocol::Ws | ListenerProtocol::Wss)
    }
}

/// One listener. `[listener]` is the default plain-TCP one (`-p`, `--bind`); more are added as
/// `[listeners.NAME]` tables (e.g. `MIDGE__LISTENERS__SECURE__PORT=8883`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// Address to bind.
    #[serde(default = "default_bind")]
    pub bind: IpAddr,
    /// TCP port; 0 asks the OS for a free one.
    pub port: u16,
    /// Transport: `mqtt`, `tls`, `ws` or `wss`.
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// Accept clients that give no username (and, with `use_identity_as_username`, no
    /// certificate identity).
    #[serde(default = "default_true")]
    pub allow_anonymous: bool,
    /// Mosquitto password file checked for clients that give a username; unset: usernames
    /// are not checked (only `allow_anonymous` applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PEM certificate chain of the server (`tls` and `wss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certfile: Option<PathBuf>,
    /// PEM private key of the server (`tls` and `wss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyfile: Option<PathBuf>,
    /// PEM CA certificates that client certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cafile: Option<PathBuf>,
    /// Refuse the TLS handshake of clients without a valid certificate (mTLS).
    #[serde(default)]
    pub require_certificate: bool,
    /// Use the client certificate's Common Name as the username (no password is checked).
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// Most connections open on this listener at once; 0: only `limits.max_connections`
    /// applies. Read at startup.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_connections: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn default_bind() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn default_true() -> bool {
    true
}

impl ListenerSection {
    /// The socket address to bind.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// What is wrong with this listener's settings, if anything.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let tls = self.protocol.is_tls();
        if tls && (self.certfile.is_none() || self.keyfile.is_none()) {
            return Some("protocol \"tls\" and \"wss\" need certfile and keyfile");
        }
        if !tls && (self.certfile.is_some() || self.require_certificate) {
            return Some("certfile and require_certificate need protocol \"tls\" or \"wss\"");
        }
        if self.require_certificate && self.cafile.is_none() {
            return Some("require_certificate needs cafile");
        }
        if self.use_identity_as_username && !self.require_certificate {
            return Some("use_identity_as_username needs require_certificate = true");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(toml: &str) -> ListenerSection {
        toml::from_str(toml).expect("parses")
    }

    #[test]
    fn a_port_alone_is_an_open_plain_listener_on_localhost() {
        let l = listener("port = 1884");
        assert_eq!(l.socket_addr().to_string(), "127.0.0.1:1884");
        assert_eq!(l.protocol, ListenerProtocol::Mqtt);
        assert!(l.allow_anonymous);
        assert_eq!(l.problem(), None);
    }

    #[test]
    fn tls_settings_must_fit_together() {
        let tls = listener("port = 1\nprotocol = \"tls\"");
        assert!(tls.problem().is_some_and(|p| p.contains("certfile")));
        let mtls = listener(
            "port = 1\nprotocol = \"wss\"\ncertfile = \"c\"\nkeyfile = \"k\"\n\
             require_certificate = true",
        );
        assert!(mtls.problem().is_some_and(|p| p.contains("cafile")));
        let identity = listener(
            "port = 1\nprotocol = \"tls\"\ncertfile = \"c\"\nkeyfile = \"k\"\n\
             use_identity_as_username = true",
        );
        assert!(identity.problem().is_some_and(|p| p.contains("require_")));
        let plain_cert = listener("port = 1\ncertfile = \"c\"");
        assert!(plain_cert.problem().is_some());
        let ok = listener(
            "port = 1\nprotocol = \"tls\"\ncertfile = \"c\"\nkeyfile = \"k\"\ncafile = \"a\"\n\
             require_certificate = true\nuse_identity_as_username = true",
        );
        assert_eq!(ok.problem(), None);
        assert_eq!(ok.protocol.scheme(), "tls");
    }
}

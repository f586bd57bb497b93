//! What one listener serves: its transport (TCP, TLS, WebSocket, secure WebSocket), its TLS
//! material, and its authentication policy. Built once at startup from its configuration
//! table; SIGHUP reloads its certificates and password file in place.

use crate::authenticator::ListenerAuth;
use crate::config::{ListenerProtocol, ListenerSection};
use crate::connection_slots::ConnectionSlots;
use crate::tls::{ReloadableTls, TlsError};
use midge_auth::{AuthError, PasswordFile};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Its certificate, key or CA file.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Its password file.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A listener's freshly read certificates and password file, not in use yet.
pub(crate) struct PreparedEndpoint {
    tls: Option<TlsAcceptor>,
    passwords: Option<Arc<PasswordFile>>,
}

/// One listener's settings, shared by its accept loop and its connections.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// How it is named in logs: `listener` or `listeners.NAME`.
    pub(crate) name: String,
    pub(crate) protocol: ListenerProtocol,
    /// Set exactly for `tls` and `wss`.
    pub(crate) tls: Option<ReloadableTls>,
    pub(crate) auth: ListenerAuth,
    /// The listener's own connection cap (`max_connections`), if it has one.
    pub(crate) slots: Option<Arc<ConnectionSlots>>,
}

impl Endpoint {
    /// Reads the files `section` names (certificates, keys, password file).
    pub(crate) fn load(name: String, section: &ListenerSection) -> Result<Endpoint, EndpointError> {
        Ok(Endpoint {
            name,
            protocol: section.protocol,
            tls: ReloadableTls::load(section)?,
            auth: ListenerAuth::load(section)?,
            slots: (section.max_connections > 0)
                .then(|| ConnectionSlots::new(section.max_connections)),
        })
    }

    /// Re-reads the certificates and the password file, without using them yet.
    pub(crate) fn prepare_reload(&self) -> Result<PreparedEndpoint, EndpointError> {
        Ok(PreparedEndpoint {
            tls: self.tls.as_ref().map(ReloadableTls::prepare).transpose()?,
            passwords: self.auth.passwords().map(|p| p.prepare()).transpose()?,
        })
    }

    /// Uses what [`Endpoint::prepare_reload`] read, for new connections and logins.
    pub(crate) fn apply_reload(&self, prepared: PreparedEndpoint) {
        if let (Some(tls), Some(acceptor)) = (&self.tls, prepared.tls) {
            tls.install(acceptor);
        }
        if let (Some(passwords), Some(file)) = (self.auth.passwords(), prepared.passwords) {
            passwords.install(file);
        }
    }
}

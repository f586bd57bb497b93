//! The SIGHUP step for security material: every TLS listener's certificate, key and CA file,
//! every listener's password file, and the ACL file. Connections already up are untouched
//! (their TLS sessions and logins stand); new handshakes, logins and every access check from
//! then on use the new files. A file that no longer parses fails the whole reload, and the
//! running files stay in force.

use crate::acl_authorizer::AclAuthorizer;
use crate::endpoint::{Endpoint, EndpointError, PreparedEndpoint};
use crate::shared_broker::SharedBroker;
use crate::Config;
use midge_auth::AuthError;
use std::sync::Arc;

/// Why the security files could not be reloaded.
#[derive(Debug, thiserror::Error)]
pub enum SecurityReloadError {
    /// A listener's certificate, key or password file.
    #[error("[{name}]: {source}")]
    Listener {
        /// `listener` or `listeners.NAME`.
        name: String,
        /// What is wrong with which file.
        #[source]
        source: EndpointError,
    },
    /// The ACL file.
    #[error("auth.acl_file: {0}")]
    Acl(#[source] AuthError),
}

/// What a reload may swap: the listeners' files and the broker's access policy.
pub(crate) struct SecurityReload {
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    pub(crate) broker: Arc<SharedBroker>,
}

impl std::fmt::Debug for SecurityReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityReload")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// Files read by [`SecurityReload::prepare`], not in use yet.
pub(crate) struct PreparedSecurity {
    endpoints: Vec<PreparedEndpoint>,
    acl: Option<Arc<AclAuthorizer>>,
}

impl SecurityReload {
    /// Reads every file again (the ACL file named by `new`'s `auth.acl_file`).
    pub(crate) fn prepare(&self, new: &Config) -> Result<PreparedSecurity, SecurityReloadError> {
        let mut endpoints = Vec::with_capacity(self.endpoints.len());
        for endpoint in &self.endpoints {
            let prepared =
                endpoint
                    .prepare_reload()
                    .map_err(|source| SecurityReloadError::Listener {
                        name: endpoint.name.clone(),
                        source,
                    })?;
            endpoints.push(prepared);
        }
        let acl = match &new.auth.acl_file {
            Some(path) => Some(Arc::new(
                AclAuthorizer::load(path).map_err(SecurityReloadError::Acl)?,
            )),
            None => None,
        };
        Ok(PreparedSecurity { endpoints, acl })
    }

    /// Installs what [`SecurityReload::prepare`] read.
    pub(crate) fn apply(&self, prepared: PreparedSecurity) {
        for (endpoint, files) in self.endpoints.iter().zip(prepared.endpoints) {
            endpoint.apply_reload(files);
        }
        let acl = prepared
            .acl
            .map(|acl| acl as Arc<dyn midge_core::Authorizer>);
        self.broker.set_authorizer(acl);
    }
}

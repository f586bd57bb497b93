//! TLS for the `tls` and `wss` listeners: the rustls server configuration built from PEM
//! files, swappable at run time so SIGHUP can load renewed certificates without dropping
//! connections (a handshake uses the configuration current when it starts).

use crate::config::ListenerSection;
use parking_lot::RwLock;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Why a TLS configuration could not be built; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot read {}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the material (key not matching the certificate, bad CA, ...).
    #[error("invalid TLS settings: {0}")]
    Rustls(String),
}

/// Where a listener's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsFiles {
    certfile: PathBuf,
    keyfile: PathBuf,
    cafile: Option<PathBuf>,
    require_certificate: bool,
}

/// A listener's TLS acceptor, replaced as a whole by [`ReloadableTls::reload`].
pub(crate) struct ReloadableTls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
}

impl std::fmt::Debug for ReloadableTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadableTls {
    /// Loads the listener's certificate, key and CA files. `None` for listeners without TLS.
    pub(crate) fn load(listener: &ListenerSection) -> Result<Option<ReloadableTls>, TlsError> {
        let (Some(certfile), Some(keyfile)) = (&listener.certfile, &listener.keyfile) else {
            return Ok(None);
        };
        if !listener.protocol.is_tls() {
            return Ok(None);
        }
        let files = TlsFiles {
            certfile: certfile.clone(),
            keyfile: keyfile.clone(),
            cafile: listener.cafile.clone(),
            require_certificate: listener.require_certificate,
        };
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&files)?));
        Ok(Some(ReloadableTls {
            files,
            current: RwLock::new(acceptor),
        }))
    }

    /// The acceptor for a new handshake.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.current.read().clone()
    }

    /// Reads the files again into a new acceptor, without using it yet.
    pub(crate) fn prepare(&self) -> Result<TlsAcceptor, TlsError> {
        Ok(TlsAcceptor::from(Arc::new(server_config(&self.files)?)))
    }

    /// Uses `acceptor` (from [`ReloadableTls::prepare`]) for handshakes from now on;
    /// connections already up keep their session.
    pub(crate) fn install(&self, acceptor: TlsAcceptor) {
        *self.current.write() = acceptor;
    }
}

/// A rustls server configuration: TLS 1.2 and 1.3 only (rustls has nothing older), the ring
/// provider, and client certificates verified against `cafile` when one is given (required
/// with `require_certificate`, otherwise optional but still verified when presented).
fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let certs = read_certs(&files.certfile)?;
    let key = PrivateKeyDer::from_pem_file(&files.keyfile).map_err(|err| TlsError::Pem {
        path: files.keyfile.clone(),
        reason: err.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| TlsError::Rustls(err.to_string()))?;
    let builder = match &files.cafile {
        Some(cafile) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(cafile)? {
                roots.add(cert).map_err(|err| TlsError::Pem {
                    path: cafile.clone(),
                    reason: err.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if files.require_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|err| TlsError::Rustls(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|err| TlsError::Rustls(err.to_string()))
}

/// Every certificate in a PEM file; an empty file is an error.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| pem_err(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_err(err.to_string()))?;
    if certs.is_empty() {
        return Err(pem_err("no certificate in the file".to_string()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenerProtocol;

    fn listener(certfile: &Path, keyfile: &Path) -> ListenerSection {
        let mut l: ListenerSection = toml::from_str("port = 0").expect("parses");
        l.protocol = ListenerProtocol::Tls;
        l.certfile = Some(certfile.to_owned());
        l.keyfile = Some(keyfile.to_owned());
        l
    }

    #[test]
    fn missing_or_empty_files_name_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        let err = ReloadableTls::load(&listener(&cert, &key)).expect_err("no files");
        assert!(err.to_string().contains("server.crt"), "{err}");
        std::fs::write(&cert, "not pem\n").expect("write");
        let err = ReloadableTls::load(&listener(&cert, &key)).expect_err("empty");
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    #[test]
    fn plain_listeners_have_no_tls() {
        let l: ListenerSection = toml::from_str("port = 0").expect("parses");
        assert!(ReloadableTls::load(&l).expect("ok").is_none());
    }
}

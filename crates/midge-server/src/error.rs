//! Errors of starting and running the server.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listener could not bind (port in use, address not local, permission denied).
    #[error("cannot listen on tcp://{addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

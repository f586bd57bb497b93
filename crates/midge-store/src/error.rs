//! Storage errors.

use std::path::Path;

/// Why a storage operation failed. Messages name the file or column family involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error (I/O, corruption: its message names the file).
    #[error("storage error in {path}: {message}")]
    Rocks {
        /// The data directory or file involved.
        path: String,
        /// RocksDB's message.
        message: String,
    },
    /// A record on disk does not have the expected shape.
    #[error("corrupt record in {table} at key {key}: {reason}")]
    Corrupt {
        /// Column family.
        table: &'static str,
        /// The key, hex encoded.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A caller broke the contract (e.g. a gap in appended log indexes).
    #[error("invalid storage request: {0}")]
    Invalid(String),
    /// A snapshot stream given to `import` is truncated, corrupt or not a snapshot.
    #[error("invalid snapshot stream: {0}")]
    Snapshot(String),
    /// Reading or writing a snapshot stream or a file of the store failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file when there is one.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Wraps a RocksDB error with the path it concerns.
    pub(crate) fn rocks(path: &Path, err: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: path.display().to_string(),
            message: err.into_string(),
        }
    }

    /// A malformed key: names the table and shows the key in hex.
    pub(crate) fn corrupt_key(table: &'static str, key: &[u8], reason: &str) -> StoreError {
        StoreError::Corrupt {
            table,
            key: hex(key),
            reason: reason.to_string(),
        }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Lowercase hex, so corrupt keys can be shown whatever bytes they hold.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

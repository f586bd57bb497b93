//! Errors for loading and editing the password and ACL files.

use std::path::PathBuf;

/// Why a password file, ACL file or credential string could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A line of a password file is not a usable `username:hash` entry.
    #[error("password file line {line}: {reason}")]
    PasswordFile { line: usize, reason: String },
    /// A line of a password file has a hash Midge cannot read.
    #[error("password file line {line}: {source}")]
    PasswordHash { line: usize, source: HashError },
    /// A line of an ACL file is not a `user`, `topic` or `pattern` line Midge understands.
    #[error("acl file line {line}: {reason}")]
    AclFile { line: usize, reason: String },
    /// A username that cannot be stored in a password file.
    #[error("invalid username {username:?}: {reason}")]
    InvalidUsername {
        username: String,
        reason: &'static str,
    },
    /// A stored SCRAM credential string that does not parse.
    #[error("invalid SCRAM credentials: {0}")]
    ScramCredentials(&'static str),
    /// Reading a file from disk failed.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a single password hash string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The hash does not start with `$6$` or `$7$`.
    #[error(
        "unknown password hash form {0:?}: only $6$ (sha512) and $7$ (sha512-pbkdf2) are \
         supported; plain-text passwords must be hashed first (mosquitto_passwd -U)"
    )]
    UnknownForm(String),
    /// The hash has a known prefix but its fields are wrong.
    #[error("malformed {form} password hash: {reason}")]
    Malformed {
        form: &'static str,
        reason: &'static str,
    },
}

//! midge-auth: Mosquitto-compatible authentication and authorization, as a pure library.
//!
//! Owns the `password_file` format (`$6$` salted SHA-512 and `$7$` PBKDF2-HMAC-SHA512 hashes,
//! reading and writing), the `acl_file` format and its evaluation (`topic`, `pattern`, `user`,
//! `deny`, `%c`/`%u`), MQTT topic-filter matching and containment for ACL checks, a per-IP
//! failed-login limiter, and the MQTT v5 enhanced-authentication seam (`AuthMethod`) with a
//! SCRAM-SHA-256 server. Everything takes its inputs as values (`&str`, `Instant`, bytes) and
//! returns decisions; the only I/O is the small `load` helpers that read a file from a path.
//!
//! Must not touch: sockets, tokio, threads, clocks (time is passed in), logging, broker state or
//! config parsing beyond these two file formats. The server decides how to act on a decision
//! (CONNACK reason code, SUBACK code, dropping a delivery).
#![forbid(unsafe_code)]

mod acl;
mod acl_filter;
mod acl_match;
mod auth_method;
mod error;
mod hash;
mod login_limiter;
mod password_file;
mod scram;
mod scram_credentials;
mod scram_message;

pub use acl::{Access, Acl};
pub use acl_match::{
    filter_covers, filter_matches_topic, filters_overlap, valid_filter, valid_topic,
};
pub use auth_method::{AuthFailure, AuthMethod, AuthState, AuthStep};
pub use error::{AuthError, HashError};
pub use hash::PasswordHash;
pub use login_limiter::{LoginLimiter, LoginLimiterConfig};
pub use password_file::PasswordFile;
pub use scram::ScramSha256;
pub use scram_credentials::{ScramCredentialStore, ScramCredentials};

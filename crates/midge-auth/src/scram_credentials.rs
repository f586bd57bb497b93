//! Stored SCRAM-SHA-256 credentials: what a server keeps instead of the password (RFC 5802 §3).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::AuthError;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of SHA-256 output, and so of every SCRAM-SHA-256 key.
pub(crate) const KEY_LEN: usize = 32;

/// Salt, iteration count, StoredKey and ServerKey for one user.
///
/// The password is not recoverable from these, and StoredKey alone does not let anyone log in
/// (it only checks a client's proof).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: [u8; KEY_LEN],
    server_key: [u8; KEY_LEN],
}

impl ScramCredentials {
    /// Iteration count for new credentials: RFC 7677's minimum recommendation.
    pub const DEFAULT_ITERATIONS: u32 = 4096;
    /// Salt length for new credentials.
    pub const SALT_LEN: usize = 16;

    /// Credentials for `password` with a fresh random salt and the default iteration count.
    pub fn new(password: &str) -> Self {
        let mut salt = vec![0u8; Self::SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self::derive(password, salt, Self::DEFAULT_ITERATIONS)
    }

    /// Derives credentials from a password, salt and iteration count.
    ///
    /// The password is used as its UTF-8 bytes; SASLprep is not applied, which gives the same
    /// result for any password that SASLprep leaves unchanged (all printable ASCII).
    pub fn derive(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let server_key = hmac(&salted, b"Server Key");
        Self {
            salt,
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key,
        }
    }

    /// The salt sent to the client.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The iteration count sent to the client.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// `H(ClientKey)`, which a client proof must hash to.
    pub fn stored_key(&self) -> &[u8; KEY_LEN] {
        &self.stored_key
    }

    /// The key the server signs the exchange with.
    pub fn server_key(&self) -> &[u8; KEY_LEN] {
        &self.server_key
    }
}

/// `HMAC-SHA-256(key, message)`.
pub(crate) fn hmac(key: &[u8], message: &[u8]) -> [u8; KEY_LEN] {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// RFC 5803's form: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64).
impl fmt::Display for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

impl FromStr for ScramCredentials {
    type Err = AuthError;

    fn from_str(text: &str) -> Result<Self, AuthError> {
        let bad = AuthError::ScramCredentials;
        let rest = text
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(bad("missing SCRAM-SHA-256$ prefix"))?;
        let (params, keys) = rest.split_once('$').ok_or(bad("missing '$' before keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or(bad("missing ':' after iterations"))?;
        let (stored, server) = keys
            .split_once(':')
            .ok_or(bad("missing ':' between keys"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is zero"));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| bad("salt is not base64"))?;
        let key = |text: &str| -> Result<[u8; KEY_LEN], AuthError> {
            let bytes = STANDARD
                .decode(text)
                .map_err(|_| bad("key is not base64"))?;
            bytes.try_into().map_err(|_| bad("key is not 32 bytes"))
        };
        Ok(Self {
            salt,
            iterations,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

/// Never prints the keys.
impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Where the SCRAM server looks up a user's credentials.
pub trait ScramCredentialStore: Send + Sync {
    /// The credentials of `username`, or `None` if there is no such user.
    fn credentials(&self, username: &str) -> Option<ScramCredentials>;
}

impl ScramCredentialStore for HashMap<String, ScramCredentials> {
    fn credentials(&self, username: &str) -> Option<ScramCredentials> {
        self.get(username).cloned()
    }
}

impl<T: ScramCredentialStore + ?Sized> ScramCredentialStore for std::sync::Arc<T> {
    fn credentials(&self, username: &str) -> Option<ScramCredentials> {
        (**self).credentials(username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_is_deterministic_and_new_is_salted() {
        let a = ScramCredentials::derive("pencil", b"salt".to_vec(), 4096);
        let b = ScramCredentials::derive("pencil", b"salt".to_vec(), 4096);
        assert_eq!(a, b);
        assert_ne!(
            ScramCredentials::new("pencil"),
            ScramCredentials::new("pencil")
        );
        assert_eq!(
            ScramCredentials::new("x").salt().len(),
            ScramCredentials::SALT_LEN
        );
    }

    #[test]
    fn string_form_round_trips() {
        let creds = ScramCredentials::derive("pencil", b"0123456789abcdef".to_vec(), 4096);
        let text = creds.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"));
        assert_eq!(text.parse::<ScramCredentials>().expect("parses"), creds);
        for bad in [
            "",
            "SCRAM-SHA-1$4096:c2FsdA==$a:b",
            "SCRAM-SHA-256$x:c2FsdA==$a:b",
            "SCRAM-SHA-256$0:c2FsdA==$a:b",
            "SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:c2hvcnQ=",
        ] {
            assert!(bad.parse::<ScramCredentials>().is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_keys() {
        let creds = ScramCredentials::derive("p", b"s".to_vec(), 1);
        let shown = format!("{creds:?}");
        assert!(!shown.contains(&STANDARD.encode(creds.stored_key())));
    }
}

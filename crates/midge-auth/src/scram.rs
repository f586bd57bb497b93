//! SCRAM-SHA-256 (RFC 7677 / RFC 5802), server side, as an MQTT v5 enhanced-auth method.
//!
//! The exchange over MQTT: CONNECT carries client-first-message; the server answers AUTH 0x18
//! with server-first-message; the client answers AUTH 0x18 with client-final-message; the
//! server accepts with CONNACK carrying server-final-message (`v=<ServerSignature>`), which lets
//! the client check that the server knew its credentials too. Channel binding is not offered.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth_method::{AuthFailure, AuthMethod, AuthState, AuthStep};
use crate::scram_credentials::{hmac, ScramCredentialStore, ScramCredentials, KEY_LEN};
use crate::scram_message::{parse_client_final, parse_client_first, valid_nonce};

/// Random bytes in a server nonce (base64-encoded to 24 characters).
const SERVER_NONCE_BYTES: usize = 18;

type NonceSource = Box<dyn Fn() -> String + Send + Sync>;

/// The SCRAM-SHA-256 server, looking users up in a [`ScramCredentialStore`].
pub struct ScramSha256<S> {
    store: S,
    nonce: NonceSource,
    /// Keys the made-up salt for unknown users, so they look like real ones.
    decoy_secret: [u8; KEY_LEN],
}

/// What the server remembers between server-first and client-final.
struct Exchange {
    username: String,
    /// `None` for an unknown user: the exchange runs to the end and then fails.
    credentials: Option<ScramCredentials>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl<S: ScramCredentialStore> ScramSha256<S> {
    /// The Authentication Method name clients send.
    pub const NAME: &'static str = "SCRAM-SHA-256";

    /// A server using `store`, with random server nonces.
    pub fn new(store: S) -> Self {
        let mut decoy_secret = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut decoy_secret);
        Self {
            store,
            nonce: Box::new(|| {
                let mut bytes = [0u8; SERVER_NONCE_BYTES];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                STANDARD.encode(bytes)
            }),
            decoy_secret,
        }
    }

    /// Replaces the server-nonce source (for reproducing test vectors); each call must return
    /// a fresh printable string without `,`.
    pub fn with_nonce_source(mut self, nonce: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.nonce = Box::new(nonce);
        self
    }

    fn client_first(&self, connect_username: Option<&str>, data: &[u8]) -> AuthStep {
        let Ok(msg) = std::str::from_utf8(data) else {
            return reject("client-first-message is not UTF-8");
        };
        let first = match parse_client_first(msg) {
            Ok(first) => first,
            Err(reason) => return reject(reason),
        };
        if connect_username.is_some_and(|u| u != first.username) {
            return reject("SCRAM username differs from the CONNECT username");
        }
        let credentials = self.store.credentials(&first.username);
        let (salt, iterations) = match &credentials {
            Some(c) => (c.salt().to_vec(), c.iterations()),
            None => (
                hmac(&self.decoy_secret, first.username.as_bytes())[..ScramCredentials::SALT_LEN]
                    .to_vec(),
                ScramCredentials::DEFAULT_ITERATIONS,
            ),
        };
        let server_nonce = (self.nonce)();
        if !valid_nonce(&server_nonce) {
            return reject("server nonce source returned an invalid nonce");
        }
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(salt));
        AuthStep::Continue {
            data: server_first.clone().into_bytes(),
            state: AuthState::new(Exchange {
                username: first.username,
                credentials,
                gs2_header: first.gs2_header.to_owned(),
                client_first_bare: first.bare.to_owned(),
                server_first,
                nonce,
            }),
        }
    }

    fn client_final(&self, exchange: Exchange, data: &[u8]) -> AuthStep {
        let Ok(msg) = std::str::from_utf8(data) else {
            return reject("client-final-message is not UTF-8");
        };
        let fin = match parse_client_final(msg) {
            Ok(fin) => fin,
            Err(reason) => return reject(reason),
        };
        if fin.channel_binding != exchange.gs2_header.as_bytes() {
            return reject("channel binding does not repeat the gs2 header");
        }
        if fin.nonce != exchange.nonce {
            return reject("nonce does not match");
        }
        let Some(credentials) = exchange.credentials else {
            return AuthStep::Failure(AuthFailure::BadCredentials);
        };
        let Ok(proof) = <[u8; KEY_LEN]>::try_from(fin.proof.as_slice()) else {
            return AuthStep::Failure(AuthFailure::BadCredentials);
        };
        let auth_message = format!(
            "{},{},{}",
            exchange.client_first_bare, exchange.server_first, fin.without_proof
        );
        let client_signature = hmac(credentials.stored_key(), auth_message.as_bytes());
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(client_signature) {
            *k ^= s;
        }
        let stored_key: [u8; KEY_LEN] = Sha256::digest(client_key).into();
        if !bool::from(stored_key.ct_eq(credentials.stored_key())) {
            return AuthStep::Failure(AuthFailure::BadCredentials);
        }
        let server_signature = hmac(credentials.server_key(), auth_message.as_bytes());
        AuthStep::Success {
            data: format!("v={}", STANDARD.encode(server_signature)).into_bytes(),
            username: exchange.username,
        }
    }
}

impl<S: ScramCredentialStore> AuthMethod for ScramSha256<S> {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn start(&self, username: Option<&str>, data: &[u8]) -> AuthStep {
        self.client_first(username, data)
    }

    fn next(&self, state: AuthState, data: &[u8]) -> AuthStep {
        match state.downcast::<Exchange>() {
            Some(exchange) => self.client_final(exchange, data),
            None => reject("state does not belong to SCRAM-SHA-256"),
        }
    }
}

fn reject(reason: &'static str) -> AuthStep {
    AuthStep::Failure(AuthFailure::Rejected(reason))
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;

//! Mosquitto password hashes: `$6$` (salted SHA-512) and `$7$` (PBKDF2-HMAC-SHA512), plus
//! Midge's own `SCRAM-SHA-256$` form, which also serves MQTT v5 SCRAM-SHA-256 authentication.
//!
//! Both forms store the salt and digest base64-encoded (standard alphabet, padded). `$6$` is
//! `SHA512(password || salt)`, Mosquitto 1.x's form; `$7$<iterations>$` is PBKDF2-HMAC-SHA512
//! over the raw salt bytes, Mosquitto 2.0's default (101 iterations, 12-byte salt, 64-byte hash).

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{AuthError, HashError};
use crate::scram_credentials::ScramCredentials;

/// Iteration count Mosquitto 2.0's `mosquitto_passwd` uses for `$7$` hashes.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 101;
/// Salt length Mosquitto uses for both hash forms.
pub const SALT_LEN: usize = 12;
/// Digest length of SHA-512, and the PBKDF2 output length Mosquitto writes.
const DIGEST_LEN: usize = 64;
/// Refuse absurd iteration counts so a hostile file cannot stall every login.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Decodes with or without trailing `=`: other tools that write Mosquitto hashes drop it.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One stored password hash from a Mosquitto password file.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$<salt>$<hash>`: `SHA512(password || salt)`.
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
    /// `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5803): checks plain
    /// passwords and SCRAM-SHA-256 exchanges alike. Mosquitto does not read this form.
    Scram(ScramCredentials),
}

/// Prefix of the [`PasswordHash::Scram`] form.
const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";

impl PasswordHash {
    /// Parses the part of a password-file line after the first `:`.
    pub fn parse(text: &str) -> Result<Self, HashError> {
        if text.starts_with(SCRAM_PREFIX) {
            return match text.parse::<ScramCredentials>() {
                Ok(credentials) if credentials.iterations() <= MAX_PBKDF2_ITERATIONS => {
                    Ok(Self::Scram(credentials))
                }
                Ok(_) => Err(HashError::Malformed {
                    form: "SCRAM-SHA-256",
                    reason: "iteration count out of range 1..=10000000",
                }),
                Err(AuthError::ScramCredentials(reason)) => Err(HashError::Malformed {
                    form: "SCRAM-SHA-256",
                    reason,
                }),
                Err(_) => Err(HashError::Malformed {
                    form: "SCRAM-SHA-256",
                    reason: "unreadable",
                }),
            };
        }
        if let Some(rest) = text.strip_prefix("$6$") {
            const FORM: &str = "$6$ (sha512)";
            let (salt, hash) = rest.split_once('$').ok_or(HashError::Malformed {
                form: FORM,
                reason: "expected $6$<salt>$<hash>",
            })?;
            let salt = decode(FORM, "salt", salt)?;
            let hash = decode(FORM, "hash", hash)?;
            if hash.len() != DIGEST_LEN {
                return Err(HashError::Malformed {
                    form: FORM,
                    reason: "hash is not 64 bytes",
                });
            }
            Ok(Self::Sha512 { salt, hash })
        } else if let Some(rest) = text.strip_prefix("$7$") {
            const FORM: &str = "$7$ (sha512-pbkdf2)";
            let mut fields = rest.split('$');
            let (Some(iterations), Some(salt), Some(hash), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(HashError::Malformed {
                    form: FORM,
                    reason: "expected $7$<iterations>$<salt>$<hash>",
                });
            };
            let iterations: u32 = iterations.parse().map_err(|_| HashError::Malformed {
                form: FORM,
                reason: "iteration count is not a number",
            })?;
            if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
                return Err(HashError::Malformed {
                    form: FORM,
                    reason: "iteration count out of range 1..=10000000",
                });
            }
            let salt = decode(FORM, "salt", salt)?;
            let hash = decode(FORM, "hash", hash)?;
            if hash.is_empty() || hash.len() > DIGEST_LEN * 4 {
                return Err(HashError::Malformed {
                    form: FORM,
                    reason: "hash length out of range",
                });
            }
            Ok(Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            })
        } else {
            let form: String = match text.strip_prefix('$') {
                Some(rest) => format!("${}", rest.split('$').next().unwrap_or_default()),
                None => "plain text".to_owned(),
            };
            Err(HashError::UnknownForm(form.chars().take(32).collect()))
        }
    }

    /// A fresh `$7$` hash of `password` with a random 12-byte salt and Mosquitto's defaults.
    pub fn new_pbkdf2(password: &str) -> Self {
        let mut salt = vec![0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self::pbkdf2_with_salt(password, salt, DEFAULT_PBKDF2_ITERATIONS)
    }

    /// A `$7$` hash with a caller-chosen salt and iteration count (deterministic; for tests).
    pub fn pbkdf2_with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let mut hash = vec![0u8; DIGEST_LEN];
        pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, iterations, &mut hash);
        Self::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        }
    }

    /// A `$6$` hash with a caller-chosen salt, for writing files older Mosquitto can read.
    pub fn sha512_with_salt(password: &str, salt: Vec<u8>) -> Self {
        let hash = sha512_salted(password.as_bytes(), &salt);
        Self::Sha512 { salt, hash }
    }

    /// Whether `password` hashes to this value; the comparison is constant-time.
    pub fn verify(&self, password: &str) -> bool {
        let (candidate, stored) = match self {
            Self::Sha512 { salt, hash } => (sha512_salted(password.as_bytes(), salt), hash),
            Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, *iterations, &mut out);
                (out, hash)
            }
            Self::Scram(stored) => {
                let candidate =
                    ScramCredentials::derive(password, stored.salt().to_vec(), stored.iterations());
                return candidate.stored_key().ct_eq(stored.stored_key()).into();
            }
        };
        candidate.ct_eq(stored).into()
    }

    /// SCRAM-SHA-256 credentials for `password` with a fresh salt.
    pub fn new_scram(password: &str) -> Self {
        Self::Scram(ScramCredentials::new(password))
    }

    /// The SCRAM credentials this hash holds, if it is of that form.
    pub fn scram(&self) -> Option<&ScramCredentials> {
        match self {
            Self::Scram(credentials) => Some(credentials),
            _ => None,
        }
    }
}

fn sha512_salted(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut digest = Sha512::new();
    digest.update(password);
    digest.update(salt);
    digest.finalize().to_vec()
}

fn decode(form: &'static str, field: &'static str, text: &str) -> Result<Vec<u8>, HashError> {
    let reason = if field == "salt" {
        "salt is not valid base64"
    } else {
        "hash is not valid base64"
    };
    if text.is_empty() {
        return Err(HashError::Malformed {
            form,
            reason: if field == "salt" {
                "salt is empty"
            } else {
                "hash is empty"
            },
        });
    }
    LENIENT_B64
        .decode(text)
        .map_err(|_| HashError::Malformed { form, reason })
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
            }
            Self::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                STANDARD.encode(salt),
                STANDARD.encode(hash)
            ),
            Self::Scram(credentials) => credentials.fmt(f),
        }
    }
}

/// Never prints the digest, so a hash does not end up in logs by accident.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha512 { .. } => f.write_str("PasswordHash::Sha512(..)"),
            Self::Pbkdf2Sha512 { iterations, .. } => {
                write!(
                    f,
                    "PasswordHash::Pbkdf2Sha512(iterations: {iterations}, ..)"
                )
            }
            Self::Scram(credentials) => write!(f, "PasswordHash::Scram({credentials:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Both lines were written by Mosquitto 2.0.11's mosquitto_passwd.
    const SHA512_HUNTER2: &str = "$6$tVlnjEHL7A01CvVn$jdpONoly+LmOp3ml/VzexcZnp2o9meG6xp815GnyIal3\
        g2Xbr1W+UjUEfYnlgUK9OOQlKk54EfRuKYc+krufOQ==";
    const PBKDF2_SECRET: &str = "$7$101$Fg2NbUDfa5NwK26Z$oKv8I4+jgxm0NGGK9sVmd9CKP214Ns2CUTaBsGkn\
        Us3SpAZ7ZFwJ1T81662DKW6XpAd9fKRWi1iqHhjwWfhalA==";

    #[test]
    fn scram_form_checks_plain_passwords_and_round_trips() {
        let hash = PasswordHash::new_scram("pencil");
        let text = hash.to_string();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        let parsed = PasswordHash::parse(&text).expect("parses");
        assert_eq!(parsed, hash);
        assert!(parsed.verify("pencil"));
        assert!(!parsed.verify("pencils"));
        assert!(parsed.scram().is_some());
        let err = PasswordHash::parse("SCRAM-SHA-256$0:c2FsdA==$AA==:AA==").unwrap_err();
        assert!(err.to_string().contains("SCRAM-SHA-256"), "{err}");
    }

    #[test]
    fn verifies_mosquitto_sha512() {
        let hash = PasswordHash::parse(SHA512_HUNTER2).expect("parses");
        assert!(hash.verify("hunter2"));
        assert!(!hash.verify("hunter3"));
        assert!(!hash.verify(""));
        assert_eq!(hash.to_string(), SHA512_HUNTER2);
    }

    #[test]
    fn verifies_mosquitto_pbkdf2() {
        let hash = PasswordHash::parse(PBKDF2_SECRET).expect("parses");
        assert!(hash.verify("secret"));
        assert!(!hash.verify("Secret"));
        assert_eq!(hash.to_string(), PBKDF2_SECRET);
    }

    #[test]
    fn accepts_unpadded_base64() {
        let unpadded = PBKDF2_SECRET.trim_end_matches('=');
        assert!(PasswordHash::parse(unpadded)
            .expect("parses")
            .verify("secret"));
    }

    #[test]
    fn new_hash_round_trips_and_uses_random_salt() {
        let a = PasswordHash::new_pbkdf2("pw");
        let b = PasswordHash::new_pbkdf2("pw");
        assert_ne!(a, b);
        let reparsed = PasswordHash::parse(&a.to_string()).expect("parses");
        assert_eq!(reparsed, a);
        assert!(reparsed.verify("pw"));
        assert!(a.to_string().starts_with("$7$101$"));
    }

    #[test]
    fn sha512_writer_round_trips() {
        let hash = PasswordHash::sha512_with_salt("pw", vec![7; SALT_LEN]);
        let reparsed = PasswordHash::parse(&hash.to_string()).expect("parses");
        assert!(reparsed.verify("pw"));
        assert!(!reparsed.verify("pW"));
    }

    #[test]
    fn rejects_unknown_and_malformed_forms() {
        for (text, want_unknown) in [
            ("plaintext", true),
            ("$argon2id$v=19$m=65536$abc$def", true),
            ("$5$abc$def", true),
            ("$6$onlysalt", false),
            ("$6$!!!$abcd", false),
            ("$6$c2FsdA==$c2hvcnQ=", false),
            ("$7$abc$c2FsdA==$aGFzaA==", false),
            ("$7$0$c2FsdA==$aGFzaA==", false),
            ("$7$101$c2FsdA==", false),
            ("$7$101$c2FsdA==$aGFzaA==$extra", false),
            ("$7$101$$aGFzaA==", false),
        ] {
            let err = PasswordHash::parse(text).expect_err(text);
            assert_eq!(
                matches!(err, HashError::UnknownForm(_)),
                want_unknown,
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn debug_hides_digest() {
        let hash = PasswordHash::parse(PBKDF2_SECRET).expect("parses");
        assert!(!format!("{hash:?}").contains("oKv8"));
    }
}

//! Mosquitto's `password_file`: `username:hash` lines, with comments and blank lines kept.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::AuthError;
use crate::hash::PasswordHash;
use crate::scram_credentials::{ScramCredentialStore, ScramCredentials};

/// A parsed password file that can be checked against and edited without losing its layout.
///
/// Lines that are blank or start with `#` are kept verbatim; entries keep their original text
/// until they are replaced, so `parse(s).to_string() == s` for any valid `\n`-terminated file.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    lines: Vec<Line>,
}

#[derive(Debug, Clone)]
enum Line {
    /// A comment or blank line, written back exactly.
    Verbatim(String),
    Entry {
        username: String,
        hash: PasswordHash,
        /// The line as read, so untouched entries are written back byte for byte.
        text: String,
    },
}

impl PasswordFile {
    /// An empty password file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a password file's contents; an error names the 1-based line.
    ///
    /// Every entry must carry a `$6$` or `$7$` hash: plain-text passwords, entries without a
    /// password and duplicate usernames are errors rather than silently skipped.
    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let mut lines = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                lines.push(Line::Verbatim(raw.to_owned()));
                continue;
            }
            let Some((username, hash_text)) = trimmed.split_once(':') else {
                return Err(AuthError::PasswordFile {
                    line,
                    reason: format!("entry {trimmed:?} has no ':' and no password hash"),
                });
            };
            validate_username(username).map_err(|reason| AuthError::PasswordFile {
                line,
                reason: reason.to_owned(),
            })?;
            if hash_text.is_empty() {
                return Err(AuthError::PasswordFile {
                    line,
                    reason: format!("user {username:?} has no password hash"),
                });
            }
            let hash = PasswordHash::parse(hash_text)
                .map_err(|source| AuthError::PasswordHash { line, source })?;
            if let Some(first) = lines.iter().position(|l| l.username() == Some(username)) {
                return Err(AuthError::PasswordFile {
                    line,
                    reason: format!(
                        "user {username:?} appears again (first at line {})",
                        first + 1
                    ),
                });
            }
            lines.push(Line::Entry {
                username: username.to_owned(),
                hash,
                text: raw.to_owned(),
            });
        }
        Ok(Self { lines })
    }

    /// Reads and parses the password file at `path`.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Whether `username` exists and `password` matches its hash.
    ///
    /// An unknown user still costs one `$7$` derivation, so response time does not reveal
    /// which usernames exist.
    pub fn verify(&self, username: &str, password: &str) -> bool {
        match self.hash(username) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = decoy_hash().verify(password);
                false
            }
        }
    }

    /// The stored hash for `username`, if any.
    pub fn hash(&self, username: &str) -> Option<&PasswordHash> {
        self.lines.iter().find_map(|line| match line {
            Line::Entry {
                username: u, hash, ..
            } if u == username => Some(hash),
            _ => None,
        })
    }

    /// Usernames in file order.
    pub fn usernames(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(Line::username)
    }

    /// Adds `username`, or replaces its password in place, with a fresh `$7$` hash.
    pub fn set(&mut self, username: &str, password: &str) -> Result<(), AuthError> {
        self.set_hash(username, PasswordHash::new_pbkdf2(password))
    }

    /// Adds `username`, or replaces its password in place, with SCRAM-SHA-256 credentials
    /// (usable for plain logins and for v5 SCRAM-SHA-256 authentication).
    pub fn set_scram(&mut self, username: &str, password: &str) -> Result<(), AuthError> {
        self.set_hash(username, PasswordHash::new_scram(password))
    }

    /// Adds `username`, or replaces its hash in place, with a given hash.
    pub fn set_hash(&mut self, username: &str, hash: PasswordHash) -> Result<(), AuthError> {
        validate_username(username).map_err(|reason| AuthError::InvalidUsername {
            username: username.to_owned(),
            reason,
        })?;
        let text = format!("{username}:{hash}");
        let entry = Line::Entry {
            username: username.to_owned(),
            hash,
            text,
        };
        match self
            .lines
            .iter_mut()
            .find(|l| l.username() == Some(username))
        {
            Some(existing) => *existing = entry,
            None => self.lines.push(entry),
        }
        Ok(())
    }

    /// Removes `username`; returns whether it was present.
    pub fn delete(&mut self, username: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|l| l.username() != Some(username));
        self.lines.len() != before
    }
}

impl Line {
    fn username(&self) -> Option<&str> {
        match self {
            Line::Entry { username, .. } => Some(username),
            Line::Verbatim(_) => None,
        }
    }
}

/// Writes the file back with `\n` line endings, one line per entry or comment.
/// Users whose entry is in the `SCRAM-SHA-256$` form can authenticate with SCRAM-SHA-256;
/// the others are unknown to it (their hashes cannot answer a SCRAM exchange).
impl ScramCredentialStore for PasswordFile {
    fn credentials(&self, username: &str) -> Option<ScramCredentials> {
        self.hash(username)?.scram().cloned()
    }
}

impl fmt::Display for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            match line {
                Line::Verbatim(text) | Line::Entry { text, .. } => writeln!(f, "{text}")?,
            }
        }
        Ok(())
    }
}

fn validate_username(username: &str) -> Result<(), &'static str> {
    if username.is_empty() {
        return Err("username is empty");
    }
    if username.contains(':') {
        return Err("username contains ':'");
    }
    if username.chars().any(char::is_control) {
        return Err("username contains a control character");
    }
    if username.trim() != username {
        return Err("username starts or ends with whitespace");
    }
    if username.starts_with('#') {
        return Err("username starts with '#', which would read back as a comment");
    }
    Ok(())
}

/// A fixed `$7$` hash checked for unknown users, so they cost as much as known ones.
fn decoy_hash() -> &'static PasswordHash {
    static DECOY: OnceLock<PasswordHash> = OnceLock::new();
    DECOY.get_or_init(|| PasswordHash::pbkdf2_with_salt("decoy", vec![0; 12], 101))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# Midge users
alice:$7$101$Fg2NbUDfa5NwK26Z$oKv8I4+jgxm0NGGK9sVmd9CKP214Ns2CUTaBsGknUs3SpAZ7ZFwJ1T81662DKW6XpAd9fKRWi1iqHhjwWfhalA==

bob:$6$tVlnjEHL7A01CvVn$jdpONoly+LmOp3ml/VzexcZnp2o9meG6xp815GnyIal3g2Xbr1W+UjUEfYnlgUK9OOQlKk54EfRuKYc+krufOQ==
  # indented comment
";

    #[test]
    fn parses_and_verifies_both_forms() {
        let file = PasswordFile::parse(FILE).expect("parses");
        assert!(file.verify("alice", "secret"));
        assert!(!file.verify("alice", "hunter2"));
        assert!(file.verify("bob", "hunter2"));
        assert!(!file.verify("bob", "secret"));
        assert!(!file.verify("carol", "secret"));
        assert_eq!(file.usernames().collect::<Vec<_>>(), ["alice", "bob"]);
    }

    #[test]
    fn round_trips_exactly() {
        let file = PasswordFile::parse(FILE).expect("parses");
        assert_eq!(file.to_string(), FILE);
    }

    #[test]
    fn set_replaces_in_place_and_appends_new() {
        let mut file = PasswordFile::parse(FILE).expect("parses");
        file.set("bob", "new-pw").expect("valid user");
        file.set("carol", "c-pw").expect("valid user");
        let text = file.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# Midge users");
        assert!(lines[3].starts_with("bob:$7$101$"), "{text}");
        assert!(lines[5].starts_with("carol:$7$101$"), "{text}");
        let reread = PasswordFile::parse(&text).expect("parses");
        assert!(reread.verify("bob", "new-pw"));
        assert!(!reread.verify("bob", "hunter2"));
        assert!(reread.verify("carol", "c-pw"));
        assert!(reread.verify("alice", "secret"));
    }

    #[test]
    fn delete_keeps_other_lines() {
        let mut file = PasswordFile::parse(FILE).expect("parses");
        assert!(file.delete("alice"));
        assert!(!file.delete("alice"));
        let text = file.to_string();
        assert!(!text.contains("alice"));
        assert!(text.contains("# Midge users") && text.contains("# indented comment"));
        assert!(PasswordFile::parse(&text)
            .expect("parses")
            .verify("bob", "hunter2"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("# c\nalice:plaintext\n", 2, "unknown password hash form"),
            ("\n\nalice\n", 3, "no ':'"),
            ("alice:\n", 1, "no password hash"),
            ("alice:$6$abc\n", 1, "malformed $6$"),
            ("alice:$argon2id$v=19$x\n", 1, "$argon2id"),
            (
                "a:$6$tVlnjEHL7A01CvVn$jdpONoly+LmOp3ml/VzexcZnp2o9meG6xp815GnyIal3g2Xbr1W+UjUEfY\
                 nlgUK9OOQlKk54EfRuKYc+krufOQ==\na:$6$tVlnjEHL7A01CvVn$jdpONoly+LmOp3ml/VzexcZnp\
                 2o9meG6xp815GnyIal3g2Xbr1W+UjUEfYnlgUK9OOQlKk54EfRuKYc+krufOQ==\n",
                2,
                "first at line 1",
            ),
        ];
        for (text, line, needle) in cases {
            let err = PasswordFile::parse(text).expect_err(text).to_string();
            assert!(
                err.starts_with(&format!("password file line {line}:")),
                "{err}"
            );
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn rejects_bad_usernames_on_set() {
        let mut file = PasswordFile::new();
        for bad in ["", "a:b", "a\nb", " a", "#a"] {
            assert!(file
                .set_hash(bad, PasswordHash::sha512_with_salt("x", vec![1]))
                .is_err());
        }
        assert_eq!(file.to_string(), "");
    }

    #[test]
    fn crlf_files_parse() {
        let text = FILE.replace('\n', "\r\n");
        let file = PasswordFile::parse(&text).expect("parses");
        assert!(file.verify("alice", "secret"));
    }
}

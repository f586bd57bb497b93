//! `midge passwd`: creates and edits Mosquitto password files, like `mosquitto_passwd`.
//!
//! New passwords get `$7$` (PBKDF2-HMAC-SHA512) hashes with Mosquitto's own parameters, so the
//! file stays usable by Mosquitto and `mosquitto_passwd`. Comments, blank lines and the order
//! of entries are kept. The file is replaced atomically (written next to it, then renamed).
//! `--scram` stores SCRAM-SHA-256 credentials instead (Midge's own form, not readable by
//! Mosquitto): they check plain logins too, and let v5 clients use SCRAM-SHA-256.

use clap::Args;
use midge_auth::{AuthError, PasswordFile};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// `midge passwd [-c | -D | -b] FILE USER [PASSWORD]`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PasswdArgs {
    /// Create a new file (replacing an existing one) with just this user.
    #[arg(short = 'c', conflicts_with = "delete")]
    pub create: bool,
    /// Delete the user instead of setting a password.
    #[arg(short = 'D')]
    pub delete: bool,
    /// Batch mode: the password is the last argument instead of being prompted for.
    #[arg(short = 'b', conflicts_with = "delete")]
    pub batch: bool,
    /// Store SCRAM-SHA-256 credentials (for v5 enhanced authentication; Mosquitto cannot
    /// read such entries) instead of a `$7$` hash.
    #[arg(long = "scram", conflicts_with = "delete")]
    pub scram: bool,
    /// The password file.
    pub file: PathBuf,
    /// The user name.
    pub username: String,
    /// The password (only with -b; visible to other users of the machine, as with
    /// mosquitto_passwd).
    pub password: Option<String>,
}

/// Why `midge passwd` failed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// The file does not parse, or the user name is not allowed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Reading the password or writing the file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The arguments do not fit together.
    #[error("{0}")]
    Usage(&'static str),
    /// `-D` for a user the file does not have.
    #[error("user {0:?} is not in the password file")]
    NoSuchUser(String),
}

/// Runs `midge passwd`. Without `-b` the password is read from the terminal (twice).
pub fn run_passwd(args: &PasswdArgs) -> Result<(), PasswdError> {
    if args.batch != args.password.is_some() {
        return Err(PasswdError::Usage(
            "give the password as the last argument exactly when -b is used",
        ));
    }
    let mut file = if args.create {
        PasswordFile::new()
    } else {
        PasswordFile::load(&args.file)?
    };
    if args.delete {
        if !file.delete(&args.username) {
            return Err(PasswdError::NoSuchUser(args.username.clone()));
        }
    } else {
        let password = match &args.password {
            Some(p) => p.clone(),
            None => prompt_password()?,
        };
        if args.scram {
            file.set_scram(&args.username, &password)?;
        } else {
            file.set(&args.username, &password)?;
        }
    }
    write_atomically(&args.file, &file.to_string())
}

/// Reads the password twice from stdin, with echo off when stdin is a terminal.
fn prompt_password() -> Result<String, PasswdError> {
    let io_err = |what: &str| {
        let what = what.to_string();
        move |source| PasswdError::Io { what, source }
    };
    let echo = Echo::off();
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines();
    let mut ask = |prompt: &str| -> Result<String, PasswdError> {
        eprint!("{prompt}");
        io::stderr().flush().map_err(io_err("writing the prompt"))?;
        let line = lines
            .next()
            .unwrap_or(Ok(String::new()))
            .map_err(io_err("reading the password"))?;
        eprintln!();
        Ok(line)
    };
    let first = ask("Password: ")?;
    let second = ask("Reenter password: ")?;
    drop(echo);
    if first != second {
        return Err(PasswdError::Usage("passwords do not match"));
    }
    Ok(first)
}

/// Turns terminal echo off while alive (best effort: does nothing when stdin is no terminal).
struct Echo(bool);

impl Echo {
    fn off() -> Echo {
        Echo(stty("-echo"))
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if self.0 {
            stty("echo");
        }
    }
}

fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes `text` to a new file beside `path` (owner-only permissions) and renames it over
/// `path`, so a reader (or a SIGHUP reload) never sees half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), PasswdError> {
    let io_err = |what: String| move |source| PasswdError::Io { what, source };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "passwd".to_string());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options
        .open(&tmp)
        .map_err(io_err(format!("creating {}", tmp.display())))?;
    out.write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(io_err(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("replacing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &str, file: &Path, user: &str, password: Option<&str>) -> PasswdArgs {
        PasswdArgs {
            create: flags.contains('c'),
            delete: flags.contains('D'),
            batch: flags.contains('b'),
            scram: flags.contains('s'),
            file: file.to_owned(),
            username: user.into(),
            password: password.map(str::to_string),
        }
    }

    #[test]
    fn scram_entries_check_plain_passwords_too() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("passwd");
        run_passwd(&args("cb", &file, "alice", Some("one"))).expect("create");
        run_passwd(&args("bs", &file, "carol", Some("pencil"))).expect("scram entry");
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains("carol:SCRAM-SHA-256$4096:"), "{text}");
        let parsed = PasswordFile::load(&file).expect("load");
        assert!(parsed.verify("carol", "pencil") && parsed.verify("alice", "one"));
    }

    #[test]
    fn create_add_update_delete_keeping_comments() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("passwd");
        run_passwd(&args("cb", &file, "alice", Some("one"))).expect("create");
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.starts_with("alice:$7$101$"), "{text}");
        std::fs::write(&file, format!("# keep me\n{text}")).expect("comment");
        run_passwd(&args("b", &file, "bob", Some("two"))).expect("add");
        run_passwd(&args("b", &file, "alice", Some("three"))).expect("update");
        let parsed = PasswordFile::load(&file).expect("load");
        assert!(parsed.verify("alice", "three") && parsed.verify("bob", "two"));
        run_passwd(&args("D", &file, "bob", None)).expect("delete");
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.starts_with("# keep me\nalice:$7$") && !text.contains("bob"));
        assert!(matches!(
            run_passwd(&args("D", &file, "bob", None)),
            Err(PasswdError::NoSuchUser(_))
        ));
        assert!(matches!(
            run_passwd(&args("b", &file, "x", None)),
            Err(PasswdError::Usage(_))
        ));
        assert!(matches!(
            run_passwd(&args("b", &file, "#x", Some("p"))),
            Err(PasswdError::Auth(_))
        ));
    }
}

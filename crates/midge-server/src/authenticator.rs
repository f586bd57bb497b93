//! Authentication at CONNECT, per listener: anonymous on or off, Mosquitto password files,
//! client-certificate identities, and the per-address failed-login limiter.
//!
//! It runs in the connection task before the core sees the CONNECT, outside the broker lock:
//! a `$7$` hash costs one PBKDF2 derivation (tens of milliseconds), so it runs on the blocking
//! pool. A refusal is a v5 reason code; the core turns it into the CONNACK of the client's
//! protocol version (v3 return codes 4 and 5 for 0x86 and 0x87).

use crate::config::ListenerSection;
use crate::guard_counters::{Guard, GuardCounters};
use midge_auth::{
    AuthError, AuthMethod, LoginLimiter, LoginLimiterConfig, PasswordFile, ScramSha256,
};
use midge_codec::{Connect, ReasonCode};
use parking_lot::{Mutex, RwLock};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A password file that SIGHUP can re-read.
#[derive(Debug)]
pub(crate) struct ReloadablePasswords {
    path: PathBuf,
    current: RwLock<Arc<PasswordFile>>,
}

impl ReloadablePasswords {
    /// Reads `path`.
    pub(crate) fn load(path: &Path) -> Result<ReloadablePasswords, AuthError> {
        Ok(ReloadablePasswords {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(PasswordFile::load(path)?)),
        })
    }

    /// Reads the file again, without using it yet.
    pub(crate) fn prepare(&self) -> Result<Arc<PasswordFile>, AuthError> {
        Ok(Arc::new(PasswordFile::load(&self.path)?))
    }

    /// Checks logins against `file` (from [`ReloadablePasswords::prepare`]) from now on.
    pub(crate) fn install(&self, file: Arc<PasswordFile>) {
        *self.current.write() = file;
    }

    fn get(&self) -> Arc<PasswordFile> {
        self.current.read().clone()
    }
}

/// The failed-login limiter shared by every listener.
#[derive(Debug)]
pub(crate) struct LoginGuard {
    limiter: Mutex<LoginLimiter>,
    counters: Arc<GuardCounters>,
}

impl LoginGuard {
    /// A limiter with `config`, counting into `counters`.
    pub(crate) fn new(config: LoginLimiterConfig, counters: Arc<GuardCounters>) -> LoginGuard {
        LoginGuard {
            limiter: Mutex::new(LoginLimiter::new(config)),
            counters,
        }
    }

    /// Whether `ip` may try to log in now; a refusal is counted and is the reason to send.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<(), ReasonCode> {
        if self
            .limiter
            .lock()
            .check(ip, crate::shared_broker::now())
            .is_err()
        {
            self.counters.count(Guard::AuthRateLimited);
            return Err(ReasonCode::ConnectionRateExceeded);
        }
        Ok(())
    }

    /// Records (and counts) a failed login from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr) {
        self.limiter
            .lock()
            .record_failure(ip, crate::shared_broker::now());
        self.counters.count(Guard::AuthFailed);
    }
}

/// How one listener authenticates.
#[derive(Debug)]
pub(crate) struct ListenerAuth {
    allow_anonymous: bool,
    use_identity_as_username: bool,
    passwords: Option<Arc<ReloadablePasswords>>,
}

impl ListenerAuth {
    /// The listener's policy; reads its password file.
    pub(crate) fn load(listener: &ListenerSection) -> Result<ListenerAuth, AuthError> {
        let passwords = match &listener.password_file {
            Some(path) => Some(Arc::new(ReloadablePasswords::load(path)?)),
            None => None,
        };
        Ok(ListenerAuth {
            allow_anonymous: listener.allow_anonymous,
            use_identity_as_username: listener.use_identity_as_username,
            passwords,
        })
    }

    /// The v5 enhanced-authentication method named `name` on this listener: SCRAM-SHA-256
    /// for the users of its password file whose entries are in the `SCRAM-SHA-256$` form.
    pub(crate) fn method(&self, name: &str) -> Option<Box<dyn AuthMethod>> {
        let passwords = self.passwords.as_ref()?;
        (name == ScramSha256::<Arc<PasswordFile>>::NAME)
            .then(|| Box::new(ScramSha256::new(passwords.get())) as Box<dyn AuthMethod>)
    }

    /// The listener's password file, for SIGHUP.
    pub(crate) fn passwords(&self) -> Option<&Arc<ReloadablePasswords>> {
        self.passwords.as_ref()
    }

    /// Decides whether `connect` from `ip` may proceed, or the v5 reason to refuse it with.
    /// With `use_identity_as_username`, the certificate's CN (`identity`) replaces the
    /// CONNECT's username and no password is checked, as in Mosquitto.
    pub(crate) async fn check(
        &self,
        guard: &LoginGuard,
        ip: IpAddr,
        connect: &mut Connect,
        identity: Option<String>,
    ) -> Result<(), ReasonCode> {
        if self.use_identity_as_username {
            return match identity {
                Some(name) => {
                    connect.username = Some(name);
                    Ok(())
                }
                None => self.anonymous(guard),
            };
        }
        let (Some(username), Some(passwords)) = (&connect.username, &self.passwords) else {
            // Without a password file a username proves nothing: only the anonymous rule
            // applies (Mosquitto behaves the same).
            return self.anonymous(guard);
        };
        guard.admit(ip)?;
        let file = passwords.get();
        let username = username.clone();
        // A password that is not UTF-8 cannot match any hash made by mosquitto_passwd, but it
        // still costs a derivation, so a wrong guess takes as long as any other.
        let password = connect
            .password
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let valid_utf8 = connect
            .password
            .as_ref()
            .is_none_or(|p| std::str::from_utf8(p).is_ok());
        let verified = tokio::task::spawn_blocking(move || file.verify(&username, &password))
            .await
            .unwrap_or(false);
        if verified && valid_utf8 {
            Ok(())
        } else {
            guard.failed(ip);
            Err(ReasonCode::BadUserNameOrPassword)
        }
    }

    fn anonymous(&self, guard: &LoginGuard) -> Result<(), ReasonCode> {
        if self.allow_anonymous {
            Ok(())
        } else {
            guard.counters.count(Guard::AnonymousRefused);
            Err(ReasonCode::NotAuthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::{ConnectProperties, ProtocolVersion};
    use std::time::Duration;

    fn connect(username: Option<&str>, password: Option<&str>) -> Connect {
        Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "c".into(),
            will: None,
            username: username.map(str::to_string),
            password: password.map(|p| Bytes::copy_from_slice(p.as_bytes())),
            properties: ConnectProperties::default(),
        }
    }

    fn guard(burst: u32) -> LoginGuard {
        LoginGuard::new(
            LoginLimiterConfig {
                burst,
                refill_interval: Duration::from_secs(3600),
                ..LoginLimiterConfig::default()
            },
            Arc::new(GuardCounters::default()),
        )
    }

    fn listener(extra: &str, passwd: Option<&Path>) -> ListenerAuth {
        let mut l: ListenerSection = toml::from_str(&format!("port = 0\n{extra}")).expect("toml");
        l.password_file = passwd.map(Path::to_owned);
        ListenerAuth::load(&l).expect("loads")
    }

    fn password_file(dir: &Path) -> PathBuf {
        let mut file = PasswordFile::new();
        // A cheap hash keeps the test fast; `$7$` is covered by midge-auth and the e2e tests.
        let hash = midge_auth::PasswordHash::pbkdf2_with_salt("secret", vec![7; 12], 10);
        file.set_hash("alice", hash).expect("user");
        let path = dir.join("passwd");
        std::fs::write(&path, file.to_string()).expect("write");
        path
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn anonymous_is_per_listener() {
        let g = guard(5);
        let open = listener("", None);
        assert_eq!(
            open.check(&g, IP, &mut connect(None, None), None).await,
            Ok(())
        );
        let closed = listener("allow_anonymous = false", None);
        assert_eq!(
            closed.check(&g, IP, &mut connect(None, None), None).await,
            Err(ReasonCode::NotAuthorized)
        );
        // A username proves nothing without a password file.
        assert_eq!(
            closed
                .check(&g, IP, &mut connect(Some("x"), Some("y")), None)
                .await,
            Err(ReasonCode::NotAuthorized)
        );
        assert_eq!(g.counters.snapshot().anonymous_refused, 2);
    }

    #[tokio::test]
    async fn passwords_are_checked_and_failures_rate_limited() {
        let dir = tempfile::tempdir().expect("dir");
        let path = password_file(dir.path());
        let g = guard(2);
        let l = listener("allow_anonymous = false", Some(&path));
        let ok = l
            .check(&g, IP, &mut connect(Some("alice"), Some("secret")), None)
            .await;
        assert_eq!(ok, Ok(()));
        for (user, pass) in [("alice", "wrong"), ("mallory", "secret")] {
            let res = l
                .check(&g, IP, &mut connect(Some(user), Some(pass)), None)
                .await;
            assert_eq!(res, Err(ReasonCode::BadUserNameOrPassword), "{user}");
        }
        // Two failures used the burst: even the right password is refused unchecked now.
        let limited = l
            .check(&g, IP, &mut connect(Some("alice"), Some("secret")), None)
            .await;
        assert_eq!(limited, Err(ReasonCode::ConnectionRateExceeded));
        let other_ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        let res = l
            .check(
                &g,
                other_ip,
                &mut connect(Some("alice"), Some("secret")),
                None,
            )
            .await;
        assert_eq!(res, Ok(()));
        let s = g.counters.snapshot();
        assert_eq!((s.auth_failed, s.auth_rate_limited), (2, 1));
    }

    #[tokio::test]
    async fn certificate_identity_becomes_the_username() {
        let g = guard(5);
        let l = listener(
            "protocol = \"tls\"\nallow_anonymous = false\nrequire_certificate = true\n\
             use_identity_as_username = true",
            None,
        );
        let mut c = connect(Some("claimed"), None);
        assert_eq!(
            l.check(&g, IP, &mut c, Some("device-7".into())).await,
            Ok(())
        );
        assert_eq!(c.username.as_deref(), Some("device-7"));
        assert_eq!(
            l.check(&g, IP, &mut connect(None, None), None).await,
            Err(ReasonCode::NotAuthorized)
        );
    }

    #[tokio::test]
    async fn reload_picks_up_new_users_and_a_broken_file_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = password_file(dir.path());
        let passwords = ReloadablePasswords::load(&path).expect("load");
        assert!(passwords.get().hash("bob").is_none());
        let mut file = PasswordFile::load(&path).expect("load");
        file.set_hash(
            "bob",
            midge_auth::PasswordHash::pbkdf2_with_salt("pw", vec![1; 12], 10),
        )
        .expect("bob");
        std::fs::write(&path, file.to_string()).expect("write");
        passwords.install(passwords.prepare().expect("reload"));
        assert!(passwords.get().hash("bob").is_some());
        std::fs::write(&path, "broken line\n").expect("write");
        assert!(passwords.prepare().is_err());
        assert!(passwords.get().hash("bob").is_some());
    }
}

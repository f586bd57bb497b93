//! Running the real Mosquitto tools from tests: finding them, a broker on an ephemeral port,
//! and client commands with bounded waits.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one client command may run before it is killed.
const COMMAND_LIMIT: Duration = Duration::from_secs(15);
/// How long a broker may take to accept connections.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// Absolute paths of the Mosquitto programs the tests run.
#[derive(Debug, Clone)]
pub struct Tools {
    pub mosquitto: PathBuf,
    pub passwd: PathBuf,
    pub publish: PathBuf,
    pub subscribe: PathBuf,
}

/// The tools, or `None` (after saying why) when they are not installed. Under `CI` a missing
/// tool fails the test instead, so CI cannot pass by skipping.
pub fn tools(test: &str) -> Option<Tools> {
    let found = (
        find("mosquitto"),
        find("mosquitto_passwd"),
        find("mosquitto_pub"),
        find("mosquitto_sub"),
    );
    if let (Some(mosquitto), Some(passwd), Some(publish), Some(subscribe)) = found {
        return Some(Tools {
            mosquitto,
            passwd,
            publish,
            subscribe,
        });
    }
    let message = format!(
        "{test}: mosquitto, mosquitto_passwd, mosquitto_pub and mosquitto_sub are needed \
         (Debian packages `mosquitto` and `mosquitto-clients`)"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping {message}");
    None
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What a finished (or killed) command left behind.
#[derive(Debug)]
pub struct Outcome {
    /// `None` if the command had to be killed at the time limit.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `command` to completion, killing it after [`COMMAND_LIMIT`].
pub fn run(command: &mut Command) -> Outcome {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
    let deadline = Instant::now() + COMMAND_LIMIT;
    let code = loop {
        match child.try_wait().expect("polling child") {
            Some(status) => break status.code(),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    Outcome {
        code,
        stdout,
        stderr,
    }
}

/// A `mosquitto` process on an ephemeral 127.0.0.1 port, stopped on drop.
pub struct Broker {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Broker {
    /// Starts a broker using `password_file` (and `acl_file` if given) from a config in `dir`.
    pub fn start(
        tools: &Tools,
        dir: &Path,
        password_file: &Path,
        acl_file: Option<&Path>,
        allow_anonymous: bool,
    ) -> Broker {
        // The port is found free and then handed to mosquitto; another process could take it
        // in between, so a failed start is retried on a new port.
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let config = dir.join(format!("mosquitto-{attempt}.conf"));
            let mut text = format!(
                "listener {port} 127.0.0.1\nallow_anonymous {allow_anonymous}\n\
                 password_file {}\npersistence false\n\
                 # Running as root, mosquitto would otherwise drop to a user that cannot read\n\
                 # the test's private directory.\nuser root\n",
                password_file.display()
            );
            if let Some(acl) = acl_file {
                text.push_str(&format!("acl_file {}\n", acl.display()));
            }
            std::fs::write(&config, text).expect("writing mosquitto.conf");
            let log = dir.join(format!("mosquitto-{attempt}.log"));
            let child = Command::new(&tools.mosquitto)
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("creating broker log"))
                .spawn()
                .expect("spawning mosquitto");
            let mut broker = Broker { child, port, log };
            if broker.wait_ready() {
                return broker;
            }
            last_log = broker.log_text();
        }
        panic!("mosquitto did not start; last log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + STARTUP_LIMIT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The broker's log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `mosquitto_pub` against this broker with the given extra arguments.
    pub fn publish(&self, tools: &Tools, args: &[&str]) -> Outcome {
        run(Command::new(&tools.publish)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args))
    }

    /// `mosquitto_sub` against this broker with the given extra arguments.
    pub fn subscribe(&self, tools: &Tools, args: &[&str]) -> Outcome {
        run(Command::new(&tools.subscribe)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

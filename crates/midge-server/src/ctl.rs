//! `midge ctl`: operator commands that talk to a running node's admin HTTP API.

use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long `midge ctl` waits for a node (a join includes the new node catching up).
const CTL_TIMEOUT: Duration = Duration::from_secs(90);

/// `midge ctl [--admin URL] ...`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct CtlArgs {
    /// The admin HTTP address of any node of the cluster.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:8888",
        global = true
    )]
    pub admin: String,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// `midge ctl` commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CtlCommand {
    /// Cluster membership.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The clients connected to the node.
    #[command(subcommand)]
    Clients(ClientsCommand),
}

/// `midge ctl clients ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClientsCommand {
    /// List the node's connected clients.
    List,
    /// Disconnect a client (v5 DISCONNECT 0x98 Administrative action).
    Kick {
        /// The client identifier.
        client_id: String,
    },
}

/// `midge ctl cluster ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClusterCommand {
    /// Print the node's view: leader, term, members with their role and addresses.
    Status,
    /// Add a running node (learner first, then voter while there is room).
    Join {
        /// The new node's `cluster.node_id`.
        #[arg(long)]
        node_id: u64,
        /// The new node's cluster address (`cluster.advertise`), host:port.
        #[arg(long, value_name = "HOST:PORT")]
        cluster_addr: String,
        /// The new node's MQTT address (informational).
        #[arg(long, value_name = "HOST:PORT", default_value = "")]
        mqtt_addr: String,
    },
    /// Remove a node (alive or dead) from the membership.
    Leave {
        /// The node's id.
        #[arg(long)]
        node_id: u64,
    },
}

/// Why a `midge ctl` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The `--admin` value is not `http://host:port`.
    #[error("--admin {0:?}: expected http://HOST:PORT")]
    BadUrl(String),
    /// The node could not be reached or the connection failed.
    #[error("cannot talk to {addr}")]
    Io {
        /// The admin address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The node answered with an error status.
    #[error("{addr} answered {status}: {body}")]
    Refused {
        /// The admin address.
        addr: String,
        /// The HTTP status line's code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// The node's answer is not HTTP.
    #[error("{addr} sent an unreadable answer")]
    BadResponse {
        /// The admin address.
        addr: String,
    },
}

/// Runs `args` against the node's admin API; returns what to print.
pub fn run_ctl(args: &CtlArgs) -> Result<String, CtlError> {
    let command = match &args.command {
        CtlCommand::Cluster(command) => command,
        CtlCommand::Clients(ClientsCommand::List) => {
            return pretty(http(&args.admin, "GET", "/api/v1/clients", None)?);
        }
        CtlCommand::Clients(ClientsCommand::Kick { client_id }) => {
            let path = format!("/api/v1/clients/{}", percent_encode(client_id));
            http(&args.admin, "DELETE", &path, None)?;
            return Ok(format!("disconnected {client_id}"));
        }
    };
    let (method, path, body) = match command {
        ClusterCommand::Status => ("GET", "/api/v1/cluster", None),
        ClusterCommand::Join {
            node_id,
            cluster_addr,
            mqtt_addr,
        } => (
            "POST",
            "/api/v1/cluster/join",
            Some(serde_json::json!({
                "node_id": node_id,
                "cluster_addr": cluster_addr,
                "mqtt_addr": mqtt_addr,
            })),
        ),
        ClusterCommand::Leave { node_id } => (
            "POST",
            "/api/v1/cluster/leave",
            Some(serde_json::json!({ "node_id": node_id })),
        ),
    };
    let body = body.map(|b| b.to_string());
    pretty(http(&args.admin, method, path, body.as_deref())?)
}

/// JSON pretty-printed, anything else as sent.
fn pretty(answer: String) -> Result<String, CtlError> {
    Ok(match serde_json::from_str::<serde_json::Value>(&answer) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or(answer),
        Err(_) => answer,
    })
}

/// `s` as one URL path segment: unreserved characters kept, every other byte %-encoded.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.1 request with `Connection: close`; returns the body of a 2xx answer.
fn http(url: &str, method: &str, path: &str, body: Option<&str>) -> Result<String, CtlError> {
    let addr = url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(|| CtlError::BadUrl(url.to_string()))?;
    let io = |source| CtlError::Io {
        addr: addr.to_string(),
        source,
    };
    let target = addr
        .to_socket_addrs()
        .map_err(io)?
        .next()
        .ok_or_else(|| CtlError::BadUrl(url.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&target, CTL_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(CTL_TIMEOUT)).map_err(io)?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io)?;
    let response = String::from_utf8_lossy(&response);
    let bad = || CtlError::BadResponse {
        addr: addr.to_string(),
    };
    let (head, payload) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    // axum answers small bodies with a Content-Length; a chunked one is decoded here.
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        unchunk(payload).ok_or_else(bad)?
    } else {
        payload.to_string()
    };
    if (200..300).contains(&status) {
        Ok(payload)
    } else {
        Err(CtlError::Refused {
            addr: addr.to_string(),
            status,
            body: payload.trim().to_string(),
        })
    }
}

/// The body of a chunked transfer encoding.
fn unchunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_become_one_path_segment() {
        assert_eq!(percent_encode("a-b_c.d~9"), "a-b_c.d~9");
        assert_eq!(percent_encode("kick me/ä"), "kick%20me%2F%C3%A4");
    }

    #[test]
    fn decodes_chunked_bodies() {
        assert_eq!(
            unchunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(),
            Some("abcde")
        );
        assert_eq!(unchunk("zz\r\n"), None);
    }

    #[test]
    fn refuses_urls_other_than_http_host_port() {
        let args = CtlArgs {
            admin: "https://x:1".into(),
            command: CtlCommand::Cluster(ClusterCommand::Status),
        };
        assert!(matches!(run_ctl(&args), Err(CtlError::BadUrl(_))));
    }
}

//! Command line: `midge-bench conn|pub|sub|pubsub [options]`.
//!
//! `-h` is the broker host (as in other MQTT load tools), so help is `--help` only, and `-V`
//! is the protocol version.

use clap::{ArgAction, Args, Parser, Subcommand};
use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// MQTT load generator for any MQTT 3.1.1 / 5.0 broker.
#[derive(Debug, Parser)]
#[command(name = "midge-bench", disable_help_flag = true)]
pub struct Cli {
    /// Print help.
    #[arg(long, action = ArgAction::Help, global = true)]
    help: Option<bool>,
    /// The scenario to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Open connections at a given rate and hold them idle (keepalive pings only).
    #[command(disable_help_flag = true)]
    Conn(ConnArgs),
    /// Publish from many clients.
    #[command(disable_help_flag = true)]
    Pub(PubArgs),
    /// Subscribe with many clients and count (and check) what arrives.
    #[command(disable_help_flag = true)]
    Sub(SubArgs),
    /// Publishers and subscribers in one process, measuring end-to-end latency and loss.
    #[command(disable_help_flag = true)]
    Pubsub(PubSubArgs),
}

impl Command {
    /// The scenario name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Conn(_) => "conn",
            Command::Pub(_) => "pub",
            Command::Sub(_) => "sub",
            Command::Pubsub(_) => "pubsub",
        }
    }

    /// The options every scenario has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Command::Conn(a) => &a.common,
            Command::Pub(a) => &a.common,
            Command::Sub(a) => &a.common,
            Command::Pubsub(a) => &a.common,
        }
    }
}

/// Options shared by every scenario.
#[derive(Debug, Clone, Args, Serialize)]
pub struct CommonArgs {
    /// Broker host name or address.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(short = 'p', long, default_value_t = 1883)]
    pub port: u16,
    /// MQTT protocol version: 3 (3.1), 4 (3.1.1) or 5.
    #[arg(short = 'V', long = "protocol", default_value_t = 5,
          value_parser = clap::value_parser!(u8).range(3..=5))]
    pub protocol: u8,
    /// Keepalive in seconds (0 = none).
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u16,
    /// Run for this many seconds (default 10, or until --count is done).
    #[arg(long)]
    pub duration: Option<f64>,
    /// New connections per second (0 = as fast as possible).
    #[arg(long = "connect-rate", default_value_t = 1000.0)]
    pub connect_rate: f64,
    /// Seconds allowed for TCP connect + CONNACK, and again for SUBACK.
    #[arg(long = "connect-timeout", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Source addresses to spread clients over, comma separated (e.g. 127.0.0.2,127.0.0.3).
    #[arg(long, value_delimiter = ',')]
    pub ifaddr: Vec<IpAddr>,
    /// Client id prefix: ids are PREFIX_ROLE_INDEX.
    #[arg(long, default_value = "midge-bench")]
    pub prefix: String,
    /// First client index (for %i and ids; lets several processes share a broker).
    #[arg(short = 'n', long = "start", default_value_t = 0)]
    pub start: u64,
    /// User name.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long)]
    #[serde(skip)]
    pub password: Option<String>,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Runtime worker threads (1 = single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Persistent sessions: clean session 0 (v3) / clean start 0 with a one-hour Session
    /// Expiry Interval (v5), so QoS 1/2 messages for subscribers are queued durably.
    #[arg(long)]
    pub persistent: bool,
    /// PID of the broker, to report its CPU time and memory next to the tool's.
    #[arg(long = "broker-pid")]
    pub broker_pid: Option<u32>,
    /// No per-second progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `conn`: connection scenario.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ConnArgs {
    /// Number of connections.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub clients: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
}

/// Publishing options shared by `pub` and `pubsub`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct PublishArgs {
    /// Topic to publish to; %i = client index, %c = client id.
    #[arg(short = 't', long, default_value = "bench/%i")]
    pub topic: String,
    /// Payload size in bytes (24 or more carries the timestamp/sequence header).
    #[arg(short = 's', long, default_value_t = 256)]
    pub size: usize,
    /// QoS 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Milliseconds between messages per client (0 = as fast as possible).
    #[arg(short = 'I', long, default_value_t = 0.0)]
    pub interval: f64,
    /// Fixed total rate in messages per second over all publishers (open loop).
    #[arg(long, conflicts_with = "interval")]
    pub rate: Option<f64>,
    /// Unacknowledged QoS 1/2 messages allowed per client.
    #[arg(long, default_value_t = 64)]
    pub inflight: usize,
    /// Messages per publisher.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds to wait for outstanding acks and deliveries after publishing stops.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
}

/// `pub`: publish scenario.
#[derive(Debug, Clone, Args, Serialize)]
pub struct PubArgs {
    /// Number of publishers.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub clients: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub publish: PublishArgs,
    /// Set the retain flag.
    #[arg(short = 'r', long)]
    pub retain: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
}

/// `sub`: subscribe scenario.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SubArgs {
    /// Number of subscribers.
    #[arg(short = 'c', long, default_value_t = 1)]
    pub clients: u64,
    /// Topic filter; %i = client index, %c = client id.
    #[arg(short = 't', long, default_value = "bench/#")]
    pub topic: String,
    /// Requested QoS 0, 1 or 2.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Messages per subscriber, after which it leaves.
    #[arg(long)]
    pub count: Option<u64>,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
}

/// `pubsub`: publishers and subscribers together.
#[derive(Debug, Clone, Args, Serialize)]
pub struct PubSubArgs {
    /// Number of publishers.
    #[arg(long, default_value_t = 1)]
    pub pubs: u64,
    /// Number of subscribers.
    #[arg(long, default_value_t = 1)]
    pub subs: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub publish: PublishArgs,
    /// Subscribers' filter (default: the topic with each %i level replaced by +, so every
    /// subscriber gets every publisher's messages). A filter with %i pairs subscriber i with
    /// publisher i.
    #[arg(long = "sub-topic")]
    pub sub_topic: Option<String>,
    /// Subscribe through the shared group `$share/GROUP/...`: each message goes to one
    /// subscriber.
    #[arg(long, num_args = 0..=1, default_missing_value = "midge-bench", value_name = "GROUP")]
    pub shared: Option<String>,
    /// Connect the subscribers to this port of the same host instead of `--port` (another
    /// node of a cluster: publishes then cross between nodes).
    #[arg(long = "sub-port")]
    pub sub_port: Option<u16>,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("midge-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let cli = parse(&["conn"]).unwrap();
        let Command::Conn(a) = &cli.command else {
            panic!()
        };
        assert_eq!(a.clients, 100);
        let c = cli.command.common();
        assert_eq!(
            (c.host.as_str(), c.port, c.protocol),
            ("127.0.0.1", 1883, 5)
        );
        assert_eq!(c.duration, None);
        assert_eq!(c.threads, 1);
        assert_eq!(cli.command.name(), "conn");
    }

    #[test]
    fn emqtt_bench_style_short_flags() {
        let cli = parse(&[
            "pub", "-h", "10.1.1.1", "-p", "18830", "-V", "4", "-c", "8", "-t", "t/%i", "-s", "64",
            "-q", "2", "-I", "10", "-r", "-k", "30", "-u", "me", "-P", "pw", "-n", "100",
        ])
        .unwrap();
        let Command::Pub(a) = &cli.command else {
            panic!()
        };
        assert_eq!(a.clients, 8);
        assert_eq!(a.publish.topic, "t/%i");
        assert_eq!(
            (a.publish.size, a.publish.qos, a.publish.interval),
            (64, 2, 10.0)
        );
        assert!(a.retain);
        let c = &a.common;
        assert_eq!(
            (c.host.as_str(), c.port, c.protocol, c.keepalive),
            ("10.1.1.1", 18830, 4, 30)
        );
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("me"), Some("pw"))
        );
        assert_eq!(c.start, 100);
    }

    #[test]
    fn pubsub_options() {
        let cli = parse(&[
            "pubsub",
            "--pubs",
            "4",
            "--subs",
            "3",
            "--shared",
            "--rate",
            "10000",
            "--duration",
            "5",
            "--ifaddr",
            "127.0.0.2,127.0.0.3",
            "--json",
            "/tmp/x.json",
            "--count",
            "50",
        ])
        .unwrap();
        let Command::Pubsub(a) = &cli.command else {
            panic!()
        };
        assert_eq!((a.pubs, a.subs), (4, 3));
        assert_eq!(a.shared.as_deref(), Some("midge-bench"));
        assert_eq!(a.publish.rate, Some(10_000.0));
        assert_eq!(a.publish.count, Some(50));
        assert_eq!(a.common.duration, Some(5.0));
        assert_eq!(a.common.ifaddr.len(), 2);
        let named = parse(&["pubsub", "--shared", "grp"]).unwrap();
        let Command::Pubsub(a) = &named.command else {
            panic!()
        };
        assert_eq!(a.shared.as_deref(), Some("grp"));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&["pub", "-q", "3"]).is_err());
        assert!(parse(&["pub", "-V", "6"]).is_err());
        assert!(parse(&["pub", "-I", "5", "--rate", "100"]).is_err());
        assert!(parse(&["sub", "--ifaddr", "not-an-ip"]).is_err());
        assert!(parse(&["nosuch"]).is_err());
        let help = parse(&["pub", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn args_serialize_without_password() {
        let cli = parse(&["sub", "-P", "secret", "-t", "a/#"]).unwrap();
        let json = serde_json::to_value(&cli.command).unwrap();
        assert_eq!(json["sub"]["topic"], "a/#");
        assert!(json["sub"].get("password").is_none());
    }
}

//! The `midge` command line, in Mosquitto's spirit: `midge [-c FILE] [-p PORT] [-v]`.

use crate::ctl::CtlArgs;
use crate::passwd::PasswdArgs;
use crate::ConfigOverrides;
use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

/// Command-line arguments of the `midge` binary.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "midge",
    version,
    about = "Midge: an MQTT 3.1 / 3.1.1 / 5.0 broker"
)]
pub struct Cli {
    /// Configuration file (TOML); see --print-default-config for every key.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Port of the MQTT listener; 0 picks a free port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,
    /// Address of the MQTT listener.
    #[arg(long = "bind", value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Directory for durable state.
    #[arg(long = "data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Verbose: log at debug level (RUST_LOG still takes precedence).
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Print the default configuration, with a comment per key, and exit.
    #[arg(long = "print-default-config")]
    pub print_default_config: bool,
    /// A tool to run instead of the broker.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// Tools `midge` runs instead of the broker.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CliCommand {
    /// Create or edit a Mosquitto password file, like mosquitto_passwd:
    /// `midge passwd [-c] FILE USER`, `midge passwd -b FILE USER PASSWORD`,
    /// `midge passwd -D FILE USER`.
    Passwd(PasswdArgs),
    /// Operate a running cluster through a node's admin HTTP API:
    /// `midge ctl [--admin http://127.0.0.1:8888] cluster status|join|leave`.
    Ctl(CtlArgs),
}

impl Cli {
    /// Parses the process arguments, exiting with usage on error (what `main` wants).
    pub fn from_args() -> Cli {
        Cli::parse()
    }

    /// The configuration layer the flags form.
    pub fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            bind: self.bind,
            port: self.port,
            data_dir: self.data_dir.clone(),
            log_level: self.verbose.then(|| "debug".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("midge").chain(args.iter().copied()))
            .expect("valid arguments")
    }

    #[test]
    fn no_flags_override_nothing() {
        let cli = parse(&[]);
        assert_eq!(cli.overrides(), ConfigOverrides::default());
        assert!(!cli.print_default_config);
        assert_eq!(cli.config, None);
    }

    #[test]
    fn mosquitto_style_flags() {
        let cli = parse(&[
            "-c",
            "midge.toml",
            "-p",
            "0",
            "--bind",
            "0.0.0.0",
            "--data-dir",
            "/var/lib/midge",
            "-v",
        ]);
        assert_eq!(cli.config, Some(PathBuf::from("midge.toml")));
        let o = cli.overrides();
        assert_eq!(o.port, Some(0));
        assert_eq!(o.bind, Some("0.0.0.0".parse().expect("ip")));
        assert_eq!(o.data_dir, Some(PathBuf::from("/var/lib/midge")));
        assert_eq!(o.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn passwd_subcommand_like_mosquitto_passwd() {
        let cli = parse(&["passwd", "-c", "-b", "pw", "alice", "secret"]);
        let Some(CliCommand::Passwd(args)) = cli.command else {
            panic!("expected passwd");
        };
        assert!(args.create && args.batch && !args.delete);
        assert_eq!(args.file, PathBuf::from("pw"));
        assert_eq!(args.password.as_deref(), Some("secret"));
        assert!(Cli::try_parse_from(["midge", "passwd", "-c", "-D", "pw", "u"]).is_err());
    }

    #[test]
    fn ctl_cluster_subcommands() {
        use crate::ctl::{ClusterCommand, CtlCommand};
        let cli = parse(&[
            "ctl",
            "--admin",
            "http://127.0.0.1:9000",
            "cluster",
            "status",
        ]);
        let Some(CliCommand::Ctl(args)) = cli.command else {
            panic!("expected ctl");
        };
        assert_eq!(args.admin, "http://127.0.0.1:9000");
        assert_eq!(args.command, CtlCommand::Cluster(ClusterCommand::Status));
        let cli = parse(&["ctl", "cluster", "leave", "--node-id", "3"]);
        let Some(CliCommand::Ctl(args)) = cli.command else {
            panic!("expected ctl");
        };
        assert_eq!(args.admin, "http://127.0.0.1:8888");
        assert_eq!(
            args.command,
            CtlCommand::Cluster(ClusterCommand::Leave { node_id: 3 })
        );
    }

    #[test]
    fn print_default_config_flag() {
        assert!(parse(&["--print-default-config"]).print_default_config);
    }

    #[test]
    fn bad_port_is_rejected() {
        assert!(Cli::try_parse_from(["midge", "-p", "65536"]).is_err());
        assert!(Cli::try_parse_from(["midge", "--bind", "localhostx"]).is_err());
    }
}

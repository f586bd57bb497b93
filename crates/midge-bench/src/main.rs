//! midge-bench: an MQTT load generator for any MQTT 3.1.1 / 5.0 broker.
//!
//! Scenarios `conn`, `pub`, `sub` and `pubsub`; see the crate README. Progress goes to stderr
//! once a second, the JSON summary to stdout (and to `--json PATH`).
#![forbid(unsafe_code)]

mod cli;
mod client;
mod clock;
mod connection;
mod dialer;
mod frame;
mod inflight;
mod latency;
mod pacer;
mod payload;
mod phase;
mod plan;
mod progress;
mod publisher;
mod runner;
mod seq;
mod stats;
mod subscriber;
mod summary;
mod template;
mod topic;
mod usage;

use anyhow::{bail, Context};
use clap::Parser;
use std::io::Write as _;
use std::net::SocketAddr;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let common = cli.command.common().clone();
    let runtime = if common.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(common.threads)
            .enable_all()
            .build()?
    };
    let summary = runtime.block_on(async {
        let broker = resolve(&common.host, common.port).await?;
        let plan = plan::Plan::new(&cli.command, broker)?;
        anyhow::Ok(runner::Runner::new(plan).run().await)
    })?;
    // Client tasks still disconnecting must not hold the process open.
    runtime.shutdown_background();

    let json = serde_json::to_string_pretty(&summary)? + "\n";
    if let Some(path) = &common.json {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    std::io::stdout()
        .lock()
        .write_all(json.as_bytes())
        .context("writing the summary to stdout")?;
    if summary.connections.attempted > 0 && summary.connections.connected == 0 {
        bail!("no client could connect to {}", summary.broker);
    }
    Ok(())
}

/// The broker address, preferring IPv4.
async fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .collect();
    match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
        Some(a) => Ok(*a),
        None => bail!("{host} has no address"),
    }
}

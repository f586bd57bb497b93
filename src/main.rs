//! The `midge` binary: parse flags, load the configuration, set up logging, bind, and serve
//! until SIGINT or SIGTERM. Everything else lives in the `midge-server` library.
#![forbid(unsafe_code)]

use anyhow::Context;
use midge_server::{
    init_logging, run_ctl, run_passwd, Cli, CliCommand, ConfigSource, Server, DEFAULT_CONFIG_TOML,
};
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc rather than the system allocator: the broker allocates a block on one thread and
/// frees it on another all the time (packets, queue entries, per-connection state). With
/// glibc's malloc, QoS 1 fan-out to 1,000 subscribers was 1.25-1.35x slower and an idle
/// connection 0.2 KiB larger (`docs/benchmarks.md`, tenth session).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with the whole cause chain ("invalid configuration: ... for key
            // `listener.port` ..."), never a backtrace: these are operator errors, not bugs.
            eprintln!("midge: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Turns transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is set
/// (mimalloc's own switch, which then decides).
///
/// mimalloc asks for huge pages on its arenas, and a kernel in `madvise` mode (Debian's and
/// Ubuntu's default) then backs them 2 MiB at a time: a broker holding many small idle
/// connections grew by 1.5-1.9 KiB per connection (varying from run to run with where the
/// huge pages fell) instead of 1.2 (`docs/benchmarks.md`, thirteenth session). Redis and
/// others advise against transparent huge pages for the same reason, and for the latency of
/// compacting them.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // Best effort: a kernel without the switch has no transparent huge pages either.
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::from_args();
    if let Some(CliCommand::Passwd(args)) = &cli.command {
        return run_passwd(args).with_context(|| format!("midge passwd {}", args.file.display()));
    }
    if let Some(CliCommand::Ctl(args)) = &cli.command {
        println!("{}", run_ctl(args).context("midge ctl")?);
        return Ok(());
    }
    if cli.print_default_config {
        print!("{DEFAULT_CONFIG_TOML}");
        return Ok(());
    }
    // Configuration is complete and valid before any port is bound or thread started.
    // Kept for SIGHUP, which reads the very same layers again.
    let source = ConfigSource {
        file: cli.config.clone(),
        env: std::env::vars().collect(),
        overrides: cli.overrides(),
    };
    let config = source.load().context("invalid configuration")?;
    let log = init_logging(&config.log, std::env::var("RUST_LOG").ok().as_deref())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Handlers are installed before the listening line is printed, so a SIGTERM sent as
        // soon as a supervisor sees that line already takes the graceful path.
        let mut shutdown = Box::pin(shutdown_signal().context("cannot install signal handlers")?);
        // Startup may wait (a new node joining through seeds that do not answer yet): a stop
        // request then ends the process instead of waiting for it.
        let server = tokio::select! {
            bound = Server::bind(config) => bound?,
            () = &mut shutdown => {
                eprintln!("midge: stopped before startup finished");
                return anyhow::Ok(());
            }
        };
        // Installed before the listening line too: SIGHUP's default action would end the
        // process.
        let reloads = server
            .reloader(source, Some(log))
            .on_hangup()
            .context("cannot install the SIGHUP handler")?;
        let reloads = tokio::spawn(reloads);
        server.run(shutdown).await?;
        reloads.abort();
        anyhow::Ok(())
    })?;
    // `run` already drained within the grace period; tasks still alive are abandoned rather
    // than waited for, so the process exits promptly.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future that resolves on the
/// first of them.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Returns a future that resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        // Without a handler there is nothing to wait for; never resolve rather than stop.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

//! `workload`: parse flags, set up logs, resolve identity, serve.

use anyhow::Context;
use clap::Parser;
use std::io::{IsTerminal, Write};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use workload::config::{Args, Command, Config, LogFormat};
use workload::identity::Identity;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Calibrate { n, duration, threads }) = args.command {
        let calibration = workload::fib::calibrate(n, duration, usize::from(threads));
        println!("{}", serde_json::to_string(&calibration)?);
        return Ok(());
    }
    let config = Config::from_args(args);
    init_logs(config.args.log_format, config.args.log.clone())?;
    let identity = Identity::resolve(&config.args).map_err(workload::Error::ResolveIdentity)?;
    actix_web::rt::System::new().block_on(workload::serve(config, identity, |addrs| {
        // One machine-readable line on stdout, for scripts and tests.
        if let Some(addr) = addrs.first() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on http://{addr}");
            let _ = out.flush();
        }
    }))?;
    Ok(())
}

fn init_logs(format: LogFormat, targets: Targets) -> anyhow::Result<()> {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(targets);
    match format {
        LogFormat::Json => registry.with(layer.json()).try_init(),
        LogFormat::Text => registry.with(layer).try_init(),
    }
    .context("installing the log subscriber")
}

//! `loadtest`: load runs against a URL, and policy backtests on recorded traffic.
//! The command line; each subcommand's body is in `cli/`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use functions::policy::{GroupPolicy, Policy};
use loadtest::backtest::print::{chart_of, label, print_comparison, print_summary};
use loadtest::backtest::{Model, Report, fixed_fleet, oracle_instances, peak_instances, run};
use loadtest::trace::Trace;

/// Each subcommand's flags and body; this file keeps the command line.
mod cli {
    pub(crate) mod backtest;
    pub(crate) mod run;
    pub(crate) mod shadow;
    pub(crate) mod trace;
    pub(crate) mod verify;
}

use cli::{backtest::*, run::*, shadow::*, trace::*, verify::*};

#[derive(Debug, Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Load runs, and backtests of scaling policies on recorded traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The end-to-end scenario: start the local cloud, load it, check it scales out and back in.
    Verify(Box<VerifyArgs>),
    /// Send GET requests to a URL, closed loop (--connections) or open loop (--rate, --ramp), and report.
    Run(RunArgs),
    /// Read a group's recorded traffic (its load balancer's requests a
    /// minute) from CloudWatch into a trace for `backtest`, and derive what
    /// one instance serves at 100% CPU from its CPU and instances in service.
    Trace(TraceArgs),
    /// Compare a policy deciding in dry run (a stack deployed with
    /// DryRun=true) with what the group's own scaling did: instance-hours,
    /// minutes of shortfall, and where ours would have scaled.
    Shadow(ShadowArgs),
    /// Replay a request-rate trace through a policy and report cost and shortfall.
    Backtest {
        /// CSV: timestamp,requests_per_second, one row a minute.
        #[arg(long)]
        trace: PathBuf,
        /// The policy file.
        #[arg(long)]
        policy: PathBuf,
        /// The group to replay (default: the first of the file).
        #[arg(long)]
        group: Option<String>,
        /// Requests per second one instance serves at 100% CPU.
        #[arg(long, default_value_t = 100.0, value_parser = positive)]
        capacity_rps: f64,
        /// Launch to in service.
        #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
        boot: Duration,
        /// A warm pool's initialised instance from the pool to in service
        /// (groups with a [group.warm_pool] only); at most --boot.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        warm_start: Duration,
        /// From the start of a minute until CloudWatch shows its datapoints:
        /// 3m as EC2 detailed monitoring (the least allowed), or longer.
        #[arg(long, default_value = "3m", value_parser = ingestion_delay)]
        ingestion_delay: Duration,
        /// The oracle's utilisation: it keeps ceil(load / (capacity x U))
        /// instances in service each minute, launched a boot time ahead.
        #[arg(long, default_value = "70%", value_parser = utilisation_flag)]
        oracle_utilisation: f64,
        /// Price of one instance-hour.
        #[arg(long, default_value_t = 0.0416, value_parser = non_negative)]
        price: f64,
        /// Also replay these, side by side: `fixed-peak` (a fleet fixed at the
        /// peak size) or policy files (their group named --group, or their first).
        #[arg(long, value_delimiter = ',')]
        compare: Vec<String>,
        /// Print the report as JSON (with the minute-by-minute timeline); with
        /// --compare, an array of reports, this policy's first.
        #[arg(long)]
        json: bool,
        /// Write a chart of instances vs load over time (SVG).
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<PathBuf>,
    },
}

/// CloudWatch's ingestion delay or longer: a shorter one would replay a
/// policy more leniently than AWS runs it.
fn ingestion_delay(text: &str) -> Result<Duration, String> {
    use functions::cloudwatch::{INGESTION_DELAY, MAX_INGESTION_DELAY};
    let allowed = || {
        format!(
            "allowed: {} (CloudWatch's) to {}",
            humantime::format_duration(INGESTION_DELAY),
            humantime::format_duration(MAX_INGESTION_DELAY)
        )
    };
    let delay = humantime::parse_duration(text).map_err(|e| format!("{e}; {}", allowed()))?;
    if !(INGESTION_DELAY..=MAX_INGESTION_DELAY).contains(&delay) {
        return Err(format!("{text} is out of range; {}", allowed()));
    }
    Ok(delay)
}

/// `--oracle-utilisation`: a percentage in (0, 100], `70%` or `70`.
fn utilisation_flag(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 100.0)
        .map(|v| v / 100.0)
        .ok_or_else(|| format!("{text:?}: allowed: a percentage above 0 and at most 100, e.g. 70%"))
}

fn positive(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| "must be a number > 0".into())
}

fn non_negative(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| "must be a number >= 0".into())
}

fn main() -> std::process::ExitCode {
    match run_cli(Cli::parse()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("loadtest: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Ok(false): ran, but an expectation failed.
fn run_cli(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Verify(args) => verify(*args),
        Command::Run(args) => run_load(args),
        backtest @ Command::Backtest { .. } => backtest_cli(backtest).map(|()| true),
        Command::Trace(args) => trace_cli(args).map(|()| true),
        Command::Shadow(args) => shadow_cli(args).map(|()| true),
    }
}

//! `loadtest`: policy backtests on recorded traffic.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use functions::policy::Policy;
use loadtest::backtest::{Model, Report, run};
use loadtest::trace::Trace;

#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about = "Backtest scaling policies on recorded traffic")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
        /// Price of one instance-hour.
        #[arg(long, default_value_t = 0.0416, value_parser = non_negative)]
        price: f64,
        /// Print the report as JSON (with the minute-by-minute timeline).
        #[arg(long)]
        json: bool,
    },
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
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadtest: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run_cli(cli: Cli) -> Result<()> {
    let Command::Backtest {
        trace,
        policy,
        group,
        capacity_rps,
        boot,
        price,
        json,
    } = cli.command;
    let trace = Trace::load(&trace)?;
    let policy = Policy::load(&policy)?;
    let group = match &group {
        Some(name) => policy.group(name).with_context(|| {
            let names: Vec<&str> = policy.groups.iter().map(|g| g.name.as_str()).collect();
            format!("--group {name:?}: the policy has {}", names.join(", "))
        })?,
        None => &policy.groups[0],
    };
    let report = run(
        &trace,
        group,
        Model {
            capacity_rps,
            boot,
            price_per_hour: price,
        },
    );
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_summary(&mut out, &report)?;
    }
    Ok(())
}

/// The human summary.
fn print_summary(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "model: one instance serves {} req/s at 100% CPU, boots in {}, costs {}/h",
        r.model.capacity_rps,
        humantime::format_duration(r.model.boot),
        r.model.price_per_hour
    )?;
    writeln!(
        out,
        "group {} over {} minutes ({:.1} h)",
        r.group,
        r.minutes,
        r.minutes as f64 / 60.0
    )?;
    writeln!(
        out,
        "  instance-hours      {:.1} (cost {:.2}) = {:.3} x a fleet fixed at the peak ({} instances, {:.1} h)",
        r.instance_hours, r.cost, r.ratio_to_fixed_peak, r.fixed_peak_instances, r.fixed_peak_instance_hours
    )?;
    writeln!(
        out,
        "  over capacity       {:.0} of {:.0} requests ({:.3}%), {} minutes",
        r.requests_over_capacity,
        r.requests,
        100.0 * r.over_capacity_fraction,
        r.minutes_over_capacity
    )?;
    writeln!(out, "  highest utilisation {:.0}%", r.highest_cpu_percent)?;
    writeln!(out, "  scaling actions     {}", r.scaling_actions)?;
    let longest = r.shortfalls.iter().map(|s| s.minutes).max().unwrap_or(0);
    writeln!(
        out,
        "  shortfalls          {} (longest {} min)",
        r.shortfalls.len(),
        longest
    )
}

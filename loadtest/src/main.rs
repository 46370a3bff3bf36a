//! `loadtest`: load runs against a URL, and policy backtests on recorded traffic.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use functions::policy::{GroupPolicy, Policy};
use loadtest::backtest::print::{chart_of, label, print_comparison, print_summary};
use loadtest::backtest::{Model, Report, fixed_fleet, oracle_instances, peak_instances, run};
use loadtest::trace::Trace;

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

/// `loadtest trace`: a group's recorded traffic, or a synthetic shape, as a trace.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["aws", "shape"])))]
struct TraceArgs {
    /// Read from AWS: CloudWatch and Auto Scaling, with credentials, region
    /// and AWS_ENDPOINT_URL from the environment, as for the AWS CLI.
    #[arg(long, requires = "group")]
    aws: bool,
    /// Write a synthetic shape instead (see README "Backtests").
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(loadtest::trace::SHAPES), conflicts_with_all = ["group", "since", "until", "target_group"])]
    shape: Option<String>,
    /// The Auto Scaling group (with --aws).
    #[arg(long)]
    group: Option<String>,
    /// How far back from --until (at most 15d: CloudWatch keeps one-minute datapoints 15 days).
    #[arg(long, default_value = "14d", value_parser = trace_since)]
    since: Duration,
    /// The end of the window (RFC 3339; default: now).
    #[arg(long)]
    until: Option<jiff::Timestamp>,
    /// The target group to read (`targetgroup/NAME/ID`; default: the group's one target group).
    #[arg(long)]
    target_group: Option<String>,
    /// Write the trace here (default: standard output).
    #[arg(long, value_name = "FILE.csv")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["stack", "namespace"])))]
struct ShadowArgs {
    /// Read from AWS (CloudWatch and Auto Scaling; credentials, region and
    /// AWS_ENDPOINT_URL from the environment). On the local cloud, run
    /// `loadtest verify --shadow POLICY` instead.
    #[arg(long, required = true)]
    aws: bool,
    /// The Auto Scaling group.
    #[arg(long)]
    group: String,
    /// The dry-run stack: its functions write their decisions in the metric
    /// namespace Autoscaler/STACK.
    #[arg(long)]
    stack: Option<String>,
    /// The metric namespace of the dry-run decisions instead of --stack.
    #[arg(long)]
    namespace: Option<String>,
    /// How far back from --until (at most 15d).
    #[arg(long, default_value = "1d", value_parser = trace_since)]
    since: Duration,
    /// The end of the window (RFC 3339; default: now).
    #[arg(long)]
    until: Option<jiff::Timestamp>,
    /// The target group whose requests are the load (`targetgroup/NAME/ID`; default: the group's one).
    #[arg(long)]
    target_group: Option<String>,
    /// Requests per second one instance serves at 100% CPU (default: derived
    /// from the same history, as `loadtest trace --aws` does).
    #[arg(long, value_parser = positive)]
    capacity_rps: Option<f64>,
    /// Launch to in service (the template's instance warm-up).
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    boot: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn shadow_cli(args: ShadowArgs) -> Result<()> {
    let namespace = match (&args.namespace, &args.stack) {
        (Some(namespace), _) => namespace.clone(),
        (None, Some(stack)) => format!("{}/{stack}", functions::emf::DEFAULT_NAMESPACE),
        (None, None) => anyhow::bail!("--stack or --namespace: where the dry-run decisions are"),
    };
    let until = args.until.unwrap_or_else(jiff::Timestamp::now);
    let since = until - jiff::SignedDuration::try_from(args.since)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (history, shadow, activities) = runtime
        .block_on(async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let autoscaling = aws_sdk_autoscaling::Client::new(&config);
            let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
            let history = functions::history::read(
                &autoscaling,
                &cloudwatch,
                &args.group,
                args.target_group.as_deref(),
                since,
                until,
            )
            .await?;
            let shadow = functions::history::read_shadow(&cloudwatch, &args.group, &namespace, since, until).await?;
            let activities = functions::history::read_activities(&autoscaling, &args.group, since, until).await?;
            Ok::<_, String>((history, shadow, activities))
        })
        .map_err(anyhow::Error::msg)?;
    let capacity_rps = match args.capacity_rps {
        Some(given) => given,
        None => loadtest::trace::calibrate(&history.requests, &history.cpu, &history.in_service)
            .map(|c| c.capacity_rps)
            .context("the capacity of one instance could not be derived from the history (no minute at 20-90% CPU with instances in service): pass --capacity-rps")?,
    };
    let recorded = loadtest::shadow::Recorded {
        requests: &history.requests,
        desired: &shadow.desired,
        recommended: &shadow.recommended,
        before: &shadow.before,
        activities: &activities,
    };
    let input = loadtest::shadow::from_recorded(&args.group, &recorded, since, until, capacity_rps, args.boot)
        .map_err(anyhow::Error::msg)?;
    let report = loadtest::shadow::report(&input).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        loadtest::shadow::print(&report, &mut out)?;
    }
    Ok(())
}

/// `--since`: a duration of at most 15 days.
fn trace_since(text: &str) -> std::result::Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| format!("{e}; expected e.g. 14d, 36h"))?;
    if value.is_zero() || value > Duration::from_secs(15 * 24 * 3600) {
        return Err("must be more than 0 and at most 15d (CloudWatch keeps one-minute datapoints 15 days)".into());
    }
    Ok(value)
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// What to show: `load` (scale out under load, hold, scale back in) or
    /// `schedule` (the group's scheduled actions fire at their times, no load).
    #[arg(long, value_enum, default_value_t = Kind::Load)]
    scenario: Kind,
    /// Run against a deployed stack instead of the local cloud: needs
    /// --group (the Auto Scaling group), --url (its load balancer) and --rate.
    /// AWS credentials and region come from the environment, as for the AWS CLI.
    #[arg(long, requires_all = ["group", "url", "rate"], conflicts_with_all = ["policy", "speed", "cpu_limit", "load_cores", "boot", "binaries"])]
    aws: bool,
    /// The load balancer of the group (with --aws), e.g. http://web-alb-123.eu-west-1.elb.amazonaws.com.
    #[arg(long, requires = "aws")]
    url: Option<String>,
    /// Requests per second to send (default on the local cloud: --load-cores worth).
    #[arg(long, value_parser = positive, conflicts_with = "load_cores")]
    rate: Option<f64>,
    /// The policy file (the shipped two-tier policy by default).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The group to load (default: the policy's first).
    #[arg(long)]
    group: Option<String>,
    /// Cloud time runs this many times faster than the wall clock.
    #[arg(long, default_value_t = 60.0, value_parser = localcloud::clock::parse_speed)]
    speed: f64,
    /// CPU cap of each instance (fraction of a core).
    #[arg(long, default_value_t = 0.1, value_parser = cpu_limit)]
    cpu_limit: f64,
    /// The Fibonacci n of each request.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(10..=38))]
    n: u32,
    /// The load, in cores of Fibonacci work (default: enough to need the max group at 60% CPU).
    #[arg(long, value_parser = positive)]
    load_cores: Option<f64>,
    /// Quiet time before the load (cloud time).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    baseline: Duration,
    /// The scale-out to min+2 and to max must happen within this (cloud time).
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    scale_out_within: Duration,
    /// Full load at max for this long (cloud time).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// After the load stops, the group must be back at min within this (cloud time).
    #[arg(long, default_value = "40m", value_parser = humantime::parse_duration)]
    scale_in_within: Duration,
    /// Launch to in service (cloud time).
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    boot: Duration,
    /// Kill one instance half way through the hold (local: SIGKILL; AWS:
    /// terminate without lowering desired): it must be replaced.
    #[arg(long)]
    kill_one: bool,
    /// Shadow mode: a second policy for the same group decides in dry run
    /// beside --policy (its own alarms, schedules and ticks); the run ends
    /// with the shadow report comparing the two (target/verify/shadow.json).
    #[arg(long, conflicts_with = "aws")]
    shadow: Option<PathBuf>,
    /// With --kill-one: the replacement must be in service within this
    /// (cloud time; the full load goes on meanwhile, past the hold if need be).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    replace_within: Duration,
    /// The share of the load that stays while the group scales in (0 to 1; 0: none).
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    residual_load: f64,
    /// Where verify.json, verify.svg and the instance logs go.
    #[arg(long, default_value = "target/verify")]
    out: PathBuf,
    /// The workload and function binaries (default: beside this binary, built by cargo if needed).
    #[arg(long)]
    binaries: Option<PathBuf>,
    /// Print only phases and the report, not a line a second.
    #[arg(long)]
    quiet: bool,
}

fn fraction(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=1.0).contains(v))
        .ok_or_else(|| "must be a number from 0 to 1".into())
}

fn cpu_limit(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 4.0)
        .ok_or_else(|| "must be a fraction of a core above 0, at most 4".into())
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// http://HOST:PORT/PATH
    url: String,
    /// Concurrent connections (closed loop: each sends when its last request is answered).
    #[arg(long, short = 'c', default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// How long to send.
    #[arg(long, short = 'd', default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Open loop at this many requests per second (latency from the scheduled send time).
    #[arg(long, value_parser = positive, conflicts_with = "ramp")]
    rate: Option<f64>,
    /// Open loop with a rate ramp, e.g. 0:100,60s:500.
    #[arg(long, value_parser = loadtest::engine::Ramp::parse)]
    ramp: Option<loadtest::engine::Ramp>,
    /// Stop after this many requests.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Longest one request may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the report as JSON (with the per-second timeline).
    #[arg(long)]
    json: bool,
    /// Expectations that set the exit code, e.g. success>=99.9,p99<=200ms,rps>=100.
    #[arg(long, value_parser = checks)]
    check: Option<Checks>,
}

/// The expectations of `--check`.
#[derive(Debug, Clone)]
struct Checks(Vec<loadtest::run::Expectation>);

fn checks(text: &str) -> Result<Checks, String> {
    loadtest::run::Expectation::parse_list(text).map(Checks)
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

/// Writes `csv` to `--out` whole or not at all (a temporary file beside
/// it, renamed), or to standard output.
fn write_trace(out: Option<&std::path::Path>, csv: &str) -> Result<()> {
    match out {
        Some(path) => {
            let partial = path.with_extension("csv.partial");
            std::fs::write(&partial, csv)
                .and_then(|()| std::fs::rename(&partial, path))
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(&partial);
                })
                .with_context(|| format!("--out {}: cannot write the trace", path.display()))?;
        }
        None => std::io::stdout().write_all(csv.as_bytes())?,
    }
    Ok(())
}

fn trace_cli(args: TraceArgs) -> Result<()> {
    if let Some(shape) = &args.shape {
        let trace = Trace::synthetic(shape).with_context(|| format!("--shape {shape}: unknown"))?;
        write_trace(args.out.as_deref(), &trace.to_csv())?;
        eprintln!(
            "shape {shape}: {} minutes from {}, mean {:.1} req/s, peak {:.1}",
            trace.samples.len(),
            trace.samples[0].at,
            trace.mean(),
            trace.peak()
        );
        return Ok(());
    }
    let group = args.group.clone().context("--aws needs --group")?;
    let until = args.until.unwrap_or_else(jiff::Timestamp::now);
    let since = until - jiff::SignedDuration::try_from(args.since)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let history = runtime
        .block_on(async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            functions::history::read(
                &aws_sdk_autoscaling::Client::new(&config),
                &aws_sdk_cloudwatch::Client::new(&config),
                &group,
                args.target_group.as_deref(),
                since,
                until,
            )
            .await
        })
        .map_err(anyhow::Error::msg)?;
    let trace =
        Trace::from_requests_a_minute(&history.requests, since, until).context("the window holds no whole minute")?;
    write_trace(args.out.as_deref(), &trace.to_csv())?;
    let mean = trace.mean();
    eprintln!(
        "group {}: {} minutes from {} to {} (target group {}, load balancer {}), {} with requests; mean {mean:.1} req/s, peak {:.1}",
        history.group,
        trace.samples.len(),
        trace.samples[0].at,
        until,
        history.target_group,
        history.load_balancer,
        history.requests.len(),
        trace.peak()
    );
    let name = args
        .out
        .as_ref()
        .map_or("TRACE.csv".to_string(), |p| p.display().to_string());
    match loadtest::trace::calibrate(&history.requests, &history.cpu, &history.in_service) {
        Some(calibration) => eprintln!(
            "capacity: {:.1} req/s per instance at 100% CPU (the median of {} minutes at {:.0}-{:.0}% CPU)\nreplay it: loadtest backtest --trace {name} --capacity-rps {:.1} --policy POLICY.toml",
            calibration.capacity_rps,
            calibration.minutes,
            loadtest::trace::CALIBRATION_CPU.start(),
            loadtest::trace::CALIBRATION_CPU.end(),
            calibration.capacity_rps
        ),
        None => eprintln!(
            "capacity: not derived: {} CPU and {} GroupInServiceInstances datapoints, no minute with both at {:.0}-{:.0}% CPU (GroupInServiceInstances needs the group's metrics collection on: EnableMetricsCollection)\nreplay it: loadtest backtest --trace {name} --capacity-rps N --policy POLICY.toml",
            history.cpu.len(),
            history.in_service.len(),
            loadtest::trace::CALIBRATION_CPU.start(),
            loadtest::trace::CALIBRATION_CPU.end()
        ),
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    Load,
    Schedule,
}

fn verify(args: VerifyArgs) -> Result<bool> {
    if let (Some(shadow), Kind::Schedule) = (&args.shadow, args.scenario) {
        anyhow::bail!(
            "--shadow {}: the shadow report comes with --scenario load (the schedule scenario sends no load to compare capacity against)",
            shadow.display()
        );
    }
    let scenario = loadtest::verify::Scenario {
        n: args.n,
        baseline: args.baseline,
        scale_out_within: args.scale_out_within,
        hold: args.hold,
        scale_in_within: args.scale_in_within,
        kill_one: args.kill_one,
        replace_within: args.replace_within,
        residual_load: args.residual_load,
        out: args.out.clone(),
        live: !args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut out = std::io::stdout();
    let report = if args.aws {
        if args.scenario != Kind::Load {
            anyhow::bail!("--scenario schedule runs on the local cloud only (drop --aws)");
        }
        let (Some(group), Some(url), Some(rate)) = (args.group, args.url, args.rate) else {
            anyhow::bail!("--aws needs --group, --url and --rate");
        };
        let parsed: http::Uri = url
            .parse()
            .with_context(|| format!("--url {url:?}: expected http://HOST[:PORT]"))?;
        if parsed.scheme_str() != Some("http") || parsed.host().is_none() {
            anyhow::bail!("--url {url:?}: expected http://HOST[:PORT] (plain HTTP, the load balancer's listener)");
        }
        let url = if parsed.port().is_none() {
            format!("http://{}:80", parsed.host().unwrap_or_default())
        } else {
            format!("http://{}", parsed.authority().map_or("", |a| a.as_str()))
        };
        runtime.block_on(async {
            let target = loadtest::verify::AwsTarget::from_env(group).await;
            loadtest::verify::run_aws(target, &url, rate, scenario, &mut out).await
        })?
    } else {
        let policy = match args.policy {
            Some(path) => path,
            None => {
                let here = PathBuf::from("policies/two-tier.toml");
                if here.is_file() {
                    here
                } else {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/two-tier.toml")
                }
            }
        };
        let loaded = Policy::load(&policy)?;
        let group = pick_group(&loaded, args.group.as_deref(), true)?;
        let binaries = match args.binaries {
            Some(dir) => dir,
            None => localcloud::binaries::beside_current_exe().map_err(anyhow::Error::msg)?,
        };
        localcloud::binaries::ensure(&binaries, env!("CARGO_PKG_NAME")).map_err(anyhow::Error::msg)?;
        // Enough work to need the max group at 60% CPU (above a 50% target).
        let load_cores = args.load_cores.unwrap_or(f64::from(group.max) * args.cpu_limit * 0.6);
        let local = loadtest::verify::Local {
            policy_file: policy,
            group: args.group,
            speed: args.speed,
            cpu_limit: args.cpu_limit,
            load_cores,
            rate: args.rate,
            boot: args.boot,
            binaries,
            shadow: args.shadow,
        };
        match args.scenario {
            Kind::Load => runtime.block_on(loadtest::verify::run_local(local, scenario, &mut out))?,
            Kind::Schedule => runtime.block_on(loadtest::verify::run_schedule(local, scenario, &mut out))?,
        }
    };
    loadtest::verify::print_report(&mut out, &report)?;
    println!(
        "report: {}, chart: {}",
        args.out.join("verify.json").display(),
        args.out.join("verify.svg").display()
    );
    Ok(report.passed)
}

fn run_load(args: RunArgs) -> Result<bool> {
    use loadtest::engine::{Mode, Plan, Ramp};
    let url: http::Uri = args
        .url
        .parse()
        .with_context(|| format!("URL {:?}: expected http://HOST:PORT/PATH", args.url))?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        anyhow::bail!("URL {:?}: expected http://HOST:PORT/PATH (plain HTTP)", args.url);
    }
    let url = if url.port().is_none() {
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{}:80{path}", url.host().unwrap_or_default()).parse()?
    } else {
        url
    };
    let connections = args.connections as usize;
    let mode = match (args.rate, args.ramp) {
        (Some(rate), _) => Mode::Open {
            connections,
            ramp: Ramp::constant(rate),
        },
        (None, Some(ramp)) => Mode::Open { connections, ramp },
        (None, None) => Mode::Closed { connections },
    };
    let plan = Plan {
        url,
        mode,
        duration: args.duration,
        max_requests: args.requests,
        timeout: args.timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(loadtest::run::execute(plan.clone()));
    let report = loadtest::run::RunReport::new(&plan, &outcome);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
    }
    let mut all = true;
    for expectation in args.check.map(|c| c.0).unwrap_or_default() {
        let (value, ok) = expectation.check(&report);
        all &= ok;
        eprintln!(
            "check {}: {value:.2} {}",
            expectation.text,
            if ok { "ok" } else { "FAILED" }
        );
    }
    Ok(all)
}

fn backtest_cli(command: Command) -> Result<()> {
    let Command::Backtest {
        trace: trace_path,
        policy: policy_path,
        group,
        capacity_rps,
        boot,
        warm_start,
        ingestion_delay,
        oracle_utilisation,
        price,
        compare,
        json,
        chart,
    } = command
    else {
        unreachable!("called with a backtest");
    };
    if warm_start > boot {
        anyhow::bail!(
            "--warm-start {}: at most --boot ({}): an initialised instance does not start slower than a new one",
            humantime::format_duration(warm_start),
            humantime::format_duration(boot)
        );
    }
    let trace = Trace::load(&trace_path)?;
    let model = Model {
        capacity_rps,
        boot,
        price_per_hour: price,
        ingestion_delay,
        oracle_utilisation,
        warm_start,
    };
    // Everything is loaded and checked before anything runs.
    let main = pick_group(&Policy::load(&policy_path)?, group.as_deref(), true)?;
    let mut runs = vec![(label(&policy_path), main)];
    for entry in &compare {
        let entry = entry.trim();
        if entry == "fixed-peak" {
            let instances = peak_instances(&trace, &model);
            runs.push(("fixed-peak".into(), fixed_fleet("fixed-peak", instances)?));
        } else if entry.is_empty() {
            anyhow::bail!("--compare: empty entry; allowed: fixed-peak or a policy file, comma-separated");
        } else {
            let path = PathBuf::from(entry);
            let policy = Policy::load(&path).with_context(|| {
                format!("--compare {entry:?}: allowed: fixed-peak or a policy file, comma-separated")
            })?;
            runs.push((label(&path), pick_group(&policy, group.as_deref(), false)?));
        }
    }
    let oracle_billed = oracle_instances(&trace, &model, runs[0].1.min);
    let mut reports: Vec<(String, Report)> = runs
        .into_iter()
        .map(|(name, group)| {
            let report = run(&trace, &group, model).with_context(|| format!("backtest of {name}"))?;
            Ok((name, report))
        })
        .collect::<Result<_>>()?;
    // The fixed fleet's min is its size: it is judged by the policy's oracle.
    let oracle = reports[0].1.oracle_instance_hours;
    for (name, report) in &mut reports {
        if name == "fixed-peak" {
            report.set_oracle(oracle);
        }
    }

    if let Some(path) = &chart {
        std::fs::write(path, chart_of(&trace_path, &reports, &model, &oracle_billed).to_svg())
            .with_context(|| format!("--chart {}: could not write", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        if compare.is_empty() {
            serde_json::to_writer_pretty(&mut out, &reports[0].1)?;
        } else {
            let all: Vec<&Report> = reports.iter().map(|(_, r)| r).collect();
            serde_json::to_writer_pretty(&mut out, &all)?;
        }
        writeln!(out)?;
    } else {
        print_summary(&mut out, &reports[0].1)?;
        if reports.len() > 1 {
            writeln!(out)?;
            print_comparison(&mut out, &reports)?;
        }
        if let Some(path) = &chart {
            writeln!(out, "chart written to {}", path.display())?;
        }
    }
    Ok(())
}

/// The group to replay from a policy file: the one named, or the first.
/// A compared file without that name falls back to its first group.
fn pick_group(policy: &Policy, name: Option<&str>, strict: bool) -> Result<GroupPolicy> {
    match name {
        Some(name) if !strict && policy.group(name).is_none() => Ok(policy.groups[0].clone()),
        _ => loadtest::verify::pick_group(policy, name),
    }
}

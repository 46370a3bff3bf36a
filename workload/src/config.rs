//! Configuration: flags and environment, validated once at start.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::filter::Targets;

use crate::cpu::available_cores;
use crate::fib::MAX_REPRESENTABLE_N;

/// The workload service: a deliberately recursive Fibonacci over HTTP.
///
/// Every flag can also be set by the environment variable shown.
#[derive(Debug, Clone, Parser)]
#[command(name = "workload", version, about)]
pub struct Args {
    /// Without a command, the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on (IP:PORT); port 0 picks a free port, printed at start.
    #[arg(long, env = "WORKLOAD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Largest n accepted by /fibo/{n} (0 to 92; the default keeps one
    /// request well under a second on one core).
    #[arg(long, env = "WORKLOAD_MAX_N", default_value_t = 38,
          value_parser = clap::value_parser!(u32).range(0..=MAX_REPRESENTABLE_N as i64))]
    pub max_n: u32,

    /// Compute threads (default: the cores, or enough cores for --cpu-limit).
    #[arg(long, env = "WORKLOAD_COMPUTE_WORKERS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub compute_workers: Option<u16>,

    /// Most requests that may wait for a compute thread, whatever their
    /// expected wait (bounds memory; default: 256 per compute thread).
    #[arg(long, env = "WORKLOAD_QUEUE",
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub queue: Option<u32>,

    /// Longest expected wait a request is admitted with: beyond it new
    /// requests are shed with 503. The wait is the work admitted ahead
    /// (estimated from measured job times) divided among the compute threads.
    #[arg(long, env = "WORKLOAD_QUEUE_BUDGET", default_value = "2s", value_parser = parse_up_to_a_minute)]
    pub queue_budget: Duration,

    /// Least time before a shed request is answered, so closed-loop clients
    /// cannot spin on instant 503s (0s answers at once).
    #[arg(long, env = "WORKLOAD_SHED_DELAY", default_value = "1s", value_parser = parse_up_to_a_minute)]
    pub shed_delay: Duration,

    /// Most shed requests answered per second (more wait, up to ten times
    /// --shed-delay).
    #[arg(long, env = "WORKLOAD_SHED_RATE", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub shed_rate: u32,

    /// Cap on compute, as a fraction of one core (e.g. 0.15); CPU utilisation
    /// is then reported relative to this cap. Default: no cap.
    #[arg(long, env = "WORKLOAD_CPU_LIMIT", value_parser = parse_cpu_limit)]
    pub cpu_limit: Option<f64>,

    /// Window over which CPU utilisation is averaged (e.g. 60s, 5s, 500ms).
    #[arg(long, env = "WORKLOAD_CPU_WINDOW", default_value = "60s", value_parser = parse_window)]
    pub cpu_window: Duration,

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "WORKLOAD_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_drain)]
    pub drain_timeout: Duration,

    /// HTTP worker threads (default: the cores, at most 4).
    #[arg(long, env = "WORKLOAD_HTTP_WORKERS",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub http_workers: Option<u16>,

    /// Niceness of compute threads (0 to 19), so health checks win the CPU.
    #[arg(long, env = "WORKLOAD_COMPUTE_NICE", default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub compute_nice: i32,

    /// Instance id reported in /health (default: from IMDS with --imds, else the host name).
    #[arg(long, env = "WORKLOAD_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Host name reported in responses (default: the system's host name).
    #[arg(long, env = "WORKLOAD_HOSTNAME")]
    pub hostname: Option<String>,

    /// Private IP reported in responses (default: from IMDS with --imds, else
    /// the listen address, else the first non-loopback IPv4 address).
    #[arg(long, env = "WORKLOAD_PRIVATE_IP")]
    pub private_ip: Option<IpAddr>,

    /// Availability zone reported in /health (default: from IMDS with --imds).
    #[arg(long, env = "WORKLOAD_AVAILABILITY_ZONE")]
    pub availability_zone: Option<String>,

    /// Read identity not given by flags from the EC2 instance metadata
    /// service (IMDSv2) at start.
    #[arg(long, env = "WORKLOAD_IMDS")]
    pub imds: bool,

    /// Base URL of the instance metadata service (http only).
    #[arg(long, env = "WORKLOAD_IMDS_ENDPOINT", default_value = "http://169.254.169.254")]
    pub imds_endpoint: String,

    /// Log format.
    #[arg(long, env = "WORKLOAD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter: a level (error, warn, info, debug, trace) or
    /// `target=level` pairs separated by commas.
    #[arg(long, env = "WORKLOAD_LOG", default_value = "info", value_parser = parse_log_filter)]
    pub log: Targets,
}

/// Commands besides serving.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Measure how fast this machine computes the bare fibo(n) (no HTTP), and
    /// print one JSON line: the reference for capacity planning and benchmarks.
    Calibrate {
        /// The n to compute.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=45))]
        n: u32,
        /// How long to compute.
        #[arg(long, default_value = "2s", value_parser = parse_calibrate_duration)]
        duration: Duration,
        /// Threads computing at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: u16,
    },
}

fn parse_calibrate_duration(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, Duration::from_millis(10), Duration::from_secs(600))
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable lines.
    Text,
}

/// The smallest CPU cap: below 1% of a core a request never finishes in a
/// useful time (issue 25.8: 1e-300 was accepted and nothing was computed).
pub const MIN_CPU_LIMIT: f64 = 0.01;

fn parse_cpu_limit(value: &str) -> Result<f64, String> {
    let cores = available_cores() as f64;
    let limit: f64 = value
        .parse()
        .map_err(|_| format!("expected a number of cores in [{MIN_CPU_LIMIT}, {cores}], e.g. 0.15"))?;
    if limit.is_finite() && (MIN_CPU_LIMIT..=cores).contains(&limit) {
        Ok(limit)
    } else {
        Err(format!(
            "must be in [{MIN_CPU_LIMIT}, {cores}] (1% of a core up to this machine's {cores} cores)"
        ))
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A level, or `target=level` pairs; unlike `Targets`' own parser a bare word
/// must be a level, so a typo is an error rather than a silent target name.
fn parse_log_filter(value: &str) -> Result<Targets, String> {
    let allowed = || {
        format!(
            "expected a level ({}) or target=level pairs separated by commas",
            LEVELS.join(", ")
        )
    };
    for directive in value.split(',').map(str::trim) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("{directive:?}: {}", allowed()));
        }
    }
    value.parse().map_err(|e| format!("{e}: {}", allowed()))
}

fn parse_duration_in(value: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(value).map_err(|e| format!("{e}; expected a duration such as 60s, 500ms or 2m"))?;
    if duration < min || duration > max {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(duration)
}

fn parse_window(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, Duration::from_millis(100), Duration::from_secs(3600))
}

/// `--queue-budget` and `--shed-delay`: 0s to a minute.
fn parse_up_to_a_minute(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, Duration::ZERO, Duration::from_secs(60))
}

fn parse_drain(value: &str) -> Result<Duration, String> {
    parse_duration_in(value, Duration::ZERO, Duration::from_secs(3600))
}

/// Validated settings derived from [`Args`].
#[derive(Debug, Clone)]
pub struct Config {
    pub args: Args,
    pub compute_workers: usize,
    pub queue: usize,
    pub http_workers: usize,
}

impl Config {
    /// Derives defaults that depend on the machine and on other flags.
    pub fn from_args(args: Args) -> Self {
        let cores = available_cores();
        let compute_workers = match (args.compute_workers, args.cpu_limit) {
            (Some(n), _) => usize::from(n),
            // A cap of 0.15 needs one thread; 1.5 needs two.
            (None, Some(limit)) => (limit.ceil() as usize).clamp(1, cores),
            (None, None) => cores,
        };
        let queue = args.queue.map_or(compute_workers * 256, |q| q as usize);
        let http_workers = args.http_workers.map_or(cores.min(4), usize::from);
        Self {
            args,
            compute_workers,
            queue,
            http_workers,
        }
    }

    /// What 100% CPU utilisation means, in cores.
    pub fn cpu_capacity_cores(&self) -> f64 {
        self.args.cpu_limit.unwrap_or(available_cores() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("workload").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::from_args(parse(&[]).expect("defaults parse"));
        assert_eq!(config.args.max_n, 38);
        assert_eq!(config.compute_workers, available_cores());
        assert_eq!(config.queue, 256 * available_cores());
        assert_eq!(config.args.queue_budget, Duration::from_secs(2));
        assert_eq!(config.args.shed_delay, Duration::from_secs(1));
        assert_eq!(config.args.shed_rate, 200);
        assert_eq!(config.args.listen.to_string(), "127.0.0.1:8080");
        assert!(parse(&["--log", "warn,actix_server=info"]).is_ok());
        assert_eq!(config.args.command, None);
        assert_eq!(
            parse(&["calibrate", "--duration", "100ms"]).expect("calibrate").command,
            Some(Command::Calibrate {
                n: 30,
                duration: Duration::from_millis(100),
                threads: 1
            })
        );
    }

    #[test]
    fn cpu_limit_sizes_the_pool() {
        let config = Config::from_args(parse(&["--cpu-limit", "0.15"]).expect("parse"));
        assert_eq!(config.compute_workers, 1);
        assert_eq!(config.cpu_capacity_cores(), 0.15);
    }

    #[test]
    fn bad_values_name_the_flag_and_the_allowed_range() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("zero cpu", &["--cpu-limit", "0"], &["--cpu-limit", "must be in [0.01,"]),
            (
                "nan cpu",
                &["--cpu-limit", "NaN"],
                &["--cpu-limit", "must be in [0.01,"],
            ),
            (
                "tiny cpu",
                &["--cpu-limit", "1e-300"],
                &["--cpu-limit", "must be in [0.01,"],
            ),
            (
                "text cpu",
                &["--cpu-limit", "lots"],
                &["--cpu-limit", "number of cores"],
            ),
            ("huge max-n", &["--max-n", "93"], &["--max-n", "0..=92"]),
            ("negative queue", &["--queue=-1"], &["--queue", "0..=100000"]),
            (
                "bad listen",
                &["--listen", "localhost"],
                &["--listen", "invalid socket address"],
            ),
            (
                "bad window",
                &["--cpu-window", "10 parsecs"],
                &["--cpu-window", "such as 60s"],
            ),
            (
                "tiny window",
                &["--cpu-window", "1ms"],
                &["--cpu-window", "must be between 100ms and 1h"],
            ),
            ("bad nice", &["--compute-nice", "20"], &["--compute-nice", "0..=19"]),
            (
                "long budget",
                &["--queue-budget", "2m"],
                &["--queue-budget", "must be between 0s and 1m"],
            ),
            (
                "text budget",
                &["--queue-budget", "soon"],
                &["--queue-budget", "such as 60s"],
            ),
            (
                "long shed delay",
                &["--shed-delay", "61s"],
                &["--shed-delay", "must be between 0s and 1m"],
            ),
            ("zero shed rate", &["--shed-rate", "0"], &["--shed-rate", "1..=1000000"]),
            (
                "zero workers",
                &["--compute-workers", "0"],
                &["--compute-workers", "1..=1024"],
            ),
            ("calibrate n", &["calibrate", "--n", "50"], &["--n", "0..=45"]),
            (
                "bad log format",
                &["--log-format", "xml"],
                &["--log-format", "json", "text"],
            ),
            ("bad log level", &["--log", "loud"], &["--log", "\"loud\"", "debug"]),
            (
                "bad target level",
                &["--log", "info,actix_web=noisy"],
                &["--log", "actix_web=noisy"],
            ),
        ];
        for (name, args, expected) in cases {
            let message = parse(args).expect_err(name).to_string();
            for fragment in *expected {
                assert!(message.contains(fragment), "{name}: {fragment:?} not in {message:?}");
            }
        }
    }
}

//! `localcloud`: run the embedded local cloud, look at it, and inject faults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use localcloud::cloud::Status;
use localcloud::lb::{Algorithm, LbConfig};
use localcloud::{Cloud, Config};
use scaling::policy::Policy;

#[path = "main_up.rs"]
mod up;

use up::*;

#[derive(Debug, Parser)]
#[command(
    name = "localcloud",
    version,
    about = "The embedded local cloud: instance groups, load balancers and a control API on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the groups of a policy file and run until Ctrl-C or SIGTERM.
    Up(Box<Up>),
    /// Show instances, load balancer targets and recent activities.
    Status {
        #[command(flatten)]
        control: Control,
        /// Print the JSON of GET /status.
        #[arg(long)]
        json: bool,
    },
    /// Set a group's desired capacity.
    SetDesired {
        #[command(flatten)]
        control: Control,
        group: String,
        desired: u32,
    },
    /// Protect an instance from scale-in (or, with --off, stop protecting it).
    Protect {
        #[command(flatten)]
        control: Control,
        group: String,
        instance: String,
        #[arg(long)]
        off: bool,
    },
    /// Fault: kill an instance's process with SIGKILL.
    Kill {
        #[command(flatten)]
        control: Control,
        instance: String,
    },
    /// Fault: mark an instance unhealthy; the group replaces it.
    Unhealthy {
        #[command(flatten)]
        control: Control,
        instance: String,
    },
    /// Fault: an availability zone fails (its instances die, nothing launches there).
    StopAz {
        #[command(flatten)]
        control: Control,
        az: String,
    },
    /// The availability zone is back.
    RestoreAz {
        #[command(flatten)]
        control: Control,
        az: String,
    },
}

#[derive(Debug, clap::Args)]
struct Control {
    /// The control API of a running local cloud.
    #[arg(long, env = "LOCALCLOUD_CONTROL", default_value = "127.0.0.1:4599")]
    control: SocketAddr,
}

#[derive(Debug, clap::Args)]
struct Up {
    /// The policy file: groups with min/max/desired.
    #[arg(long, env = "LOCALCLOUD_POLICY", default_value = "policies/two-tier.toml")]
    policy: PathBuf,
    /// A second policy for the same groups, decided by its own function in
    /// dry run next to the deciding one (shadow mode: `loadtest shadow
    /// --local` compares the two).
    #[arg(long)]
    shadow: Option<PathBuf>,
    /// Cloud time runs this many times faster (60: a 300 s cooldown lasts 5 s).
    #[arg(long, default_value_t = 60.0, value_parser = localcloud::clock::parse_speed)]
    speed: f64,
    /// Cloud time at start, e.g. 2026-11-24T02:58:00Z to watch an 11:00
    /// Asia/Shanghai schedule fire two cloud minutes later (default: now).
    #[arg(long, value_parser = localcloud::clock::parse_start)]
    start: Option<jiff::Timestamp>,
    /// Launch to in service, in cloud time.
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    boot: Duration,
    /// After in service, failed load balancer health checks do not replace an instance for this long (cloud time).
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    health_grace: Duration,
    /// Availability zones (1 to 6).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=6))]
    azs: u8,
    /// Instances of group k get 127.A.(B+k).N (A.B).
    #[arg(long, default_value = "0.1", value_parser = subnet)]
    subnet: [u8; 2],
    /// Port every instance listens on.
    #[arg(long, default_value_t = 8080)]
    instance_port: u16,
    /// Load balancer port of the first group (the next groups take the next ports; 0: free ports).
    #[arg(long, default_value_t = 8000)]
    lb_port: u16,
    /// Control API port (0: a free port).
    #[arg(long, default_value_t = 4599)]
    control_port: u16,
    /// How the load balancer spreads requests.
    #[arg(long, value_enum, default_value_t = Algorithm::RoundRobin)]
    algorithm: Algorithm,
    /// Load balancer health check interval (wall clock).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    health_interval: Duration,
    /// Load balancer health check timeout (wall clock).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    health_timeout: Duration,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    healthy_threshold: u32,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    unhealthy_threshold: u32,
    /// The load balancer closes a client connection idle this long, or that
    /// takes this long to send a request head (an ALB's idle timeout, wall clock).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Client connections each load balancer keeps open at once; more are
    /// closed at once (default: 10000, or fewer when the open-files limit
    /// holds fewer: one descriptor per connection, 1024 kept for the rest).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Longest wait for a deregistered instance's in-flight requests (wall clock).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    deregistration_delay: Duration,
    /// CPU cap of each instance, as a fraction of one core.
    #[arg(long, default_value_t = 0.2)]
    cpu_limit: f64,
    /// The workload binary (default: `workload` beside this binary).
    #[arg(long)]
    workload: Option<PathBuf>,
    /// Where instance logs go (default: a new directory under the system temp dir).
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// How long an instance may finish in-flight requests after SIGTERM (wall clock).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// From the start of a minute until CloudWatch shows its datapoints
    /// (cloud time): 3m as EC2 detailed monitoring, or longer.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    ingestion_delay: Duration,
    /// Where the function binaries are (default: beside this binary).
    #[arg(long)]
    functions: Option<PathBuf>,
    /// Run no functions: alarms, schedules and ticks are only recorded.
    #[arg(long, conflicts_with = "functions")]
    no_functions: bool,
}

fn subnet(text: &str) -> Result<[u8; 2], String> {
    let parts: Vec<&str> = text.split('.').collect();
    match parts.as_slice() {
        [a, b] => match (a.parse::<u8>(), b.parse::<u8>()) {
            (Ok(a), Ok(b)) if b < 240 => Ok([a, b]),
            _ => Err("must be A.B with A in 0..=255 and B in 0..=239 (instances get 127.A.B.N)".into()),
        },
        _ => Err("must be A.B with A in 0..=255 and B in 0..=239 (instances get 127.A.B.N)".into()),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("localcloud: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("localcloud: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up(up) => run_up(*up).await,
        Command::Status { control, json } => {
            let text = call(control.control, "GET", "/status", None).await?;
            if json {
                println!("{text}");
            } else {
                let status: Status = serde_json::from_str(&text).context("the control API's status")?;
                localcloud::report::print_status(&mut std::io::stdout().lock(), &status, 10)?;
            }
            Ok(())
        }
        Command::SetDesired {
            control,
            group,
            desired,
        } => {
            let body = serde_json::json!({ "desired": desired, "cause": "set by localcloud set-desired" });
            print(call(control.control, "PUT", &format!("/groups/{group}/capacity"), Some(body)).await?)
        }
        Command::Protect {
            control,
            group,
            instance,
            off,
        } => {
            let body = serde_json::json!({ "protected": !off });
            let path = format!("/groups/{group}/instances/{instance}/protection");
            print(call(control.control, "PUT", &path, Some(body)).await?)
        }
        Command::Kill { control, instance } => {
            let body = serde_json::json!({ "instance": instance });
            print(call(control.control, "POST", "/faults/kill", Some(body)).await?)
        }
        Command::Unhealthy { control, instance } => {
            let body = serde_json::json!({ "instance": instance });
            print(call(control.control, "POST", "/faults/unhealthy", Some(body)).await?)
        }
        Command::StopAz { control, az } => {
            let body = serde_json::json!({ "az": az });
            print(call(control.control, "POST", "/faults/stop-az", Some(body)).await?)
        }
        Command::RestoreAz { control, az } => {
            let body = serde_json::json!({ "az": az });
            print(call(control.control, "POST", "/faults/restore-az", Some(body)).await?)
        }
    }
}

fn print(text: String) -> Result<()> {
    println!("{text}");
    Ok(())
}

/// One call to the control API; a refusal becomes an error with its message.
async fn call(control: SocketAddr, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<String> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{control}{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .with_context(|| format!("the control API at {control} did not answer within 10 s"))?
        .with_context(|| format!("no local cloud answers at {control} (start one: localcloud up)"))?;
    let status = response.status();
    let text = String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes()).into_owned();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("{message}");
    }
    Ok(text)
}

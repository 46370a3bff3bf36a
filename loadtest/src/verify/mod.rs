//! `loadtest verify`: the product's end-to-end scenario. Start the embedded
//! local cloud from a policy file (real workload instances, load balancer,
//! alarms, schedules and the real function binaries), drive load through the
//! load balancer, and check from outside that the group scaled out (to at
//! least min + 2, and to max when the load needs it) and back in to min, in
//! bounded time. Reports the activity table, assertions, JSON and a chart.

mod output;
mod report;
mod scenario;
mod schedule;
mod targets;
mod watch;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use functions::policy::{GroupPolicy, Policy};
use functions::ports::GroupPort;
use jiff::Timestamp;
use serde::Serialize;

pub use output::{chart, print_report};
use output::{minutes, report};
pub use report::{ActivityRow, Assertion, Report, Sample};
use scenario::{p99_over, run_scenario};
pub use schedule::run_schedule;
use schedule::{quiet_start, scenario_span};
pub use targets::{AwsTarget, LocalTarget, start_local};
use watch::Watch;

/// The scenario's phases and bounds (cloud time), whatever the target.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The Fibonacci n each request computes.
    pub n: u32,
    pub baseline: Duration,
    pub scale_out_within: Duration,
    pub hold: Duration,
    pub scale_in_within: Duration,
    /// Kill one instance in the middle of the hold (local: SIGKILL; AWS:
    /// terminate it without lowering desired); it must be replaced.
    pub kill_one: bool,
    /// How long the replacement of the killed instance may take (the full
    /// load goes on meanwhile, past the hold if need be).
    pub replace_within: Duration,
    /// The share of the load that stays while the group scales in (0: none).
    pub residual_load: f64,
    /// Where verify.json and verify.svg go.
    pub out: PathBuf,
    /// Print a live line every sample (else only phases and the report).
    pub live: bool,
}

/// The embedded local cloud verify starts.
#[derive(Debug, Clone)]
pub struct Local {
    pub policy_file: PathBuf,
    /// The group to load (default: the policy's first).
    pub group: Option<String>,
    pub speed: f64,
    /// CPU cap of every instance (fraction of a core).
    pub cpu_limit: f64,
    /// The load, in cores of Fibonacci work (converted to a request rate by calibration).
    pub load_cores: f64,
    /// A request rate to send instead (no calibration).
    pub rate: Option<f64>,
    pub boot: Duration,
    /// The workload and function binaries.
    pub binaries: PathBuf,
    /// A second policy deciding in dry run beside the first (shadow mode):
    /// the run ends with the shadow report (`shadow.json`).
    pub shadow: Option<PathBuf>,
}

/// What verify watches and acts on: the embedded local cloud or a deployed
/// group. Times are the target's (cloud time for the local cloud).
pub trait Target: Sync {
    /// `local` or `aws`, for the report.
    fn kind(&self) -> &'static str;
    /// How many times faster than the wall clock the target's time runs.
    fn speed(&self) -> f64;
    fn now(&self) -> Timestamp;
    /// Wall time between two samples.
    fn poll(&self) -> Duration;
    /// The group's capacity and its live instances.
    fn observe(&self) -> impl Future<Output = Result<Observed>> + Send;
    /// The group's newest one-minute average CPU (%), when known.
    fn cpu(&self) -> impl Future<Output = Option<f64>> + Send;
    /// Takes an instance away without lowering desired capacity.
    fn kill(&self, instance: &str) -> impl Future<Output = Result<()>> + Send;
    /// Changes of desired capacity since `since`, with their causes and the
    /// deciding function's reasons where known (`end` left for the caller).
    fn activities(&self, since: Timestamp) -> impl Future<Output = Vec<ActivityRow>> + Send;
    /// Launches and terminations, for the JSON report.
    fn instance_activities(&self) -> Vec<localcloud::group::InstanceActivity> {
        Vec::new()
    }
    /// Wall time from "in service" to getting requests that [`Observed::serving`]
    /// cannot see (AWS: the target group's health checks).
    fn health_settle(&self) -> Duration {
        Duration::ZERO
    }
}

/// What one look at the group shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// Live instances (not yet terminated): id, and whether in service.
    pub instances: Vec<(String, bool)>,
    /// In-service instances the load balancer sends requests to (local:
    /// those its health checks passed; AWS: every in-service one, with
    /// [`Target::health_settle`] for the health checks it cannot see).
    pub serving: u32,
}

impl Observed {
    fn in_service(&self) -> u32 {
        self.instances.iter().filter(|(_, up)| *up).count() as u32
    }
}

/// The request rate that makes `load_cores` of fibo(n) work on this machine.
pub fn calibrate(workload: &std::path::Path, n: u32, load_cores: f64) -> Result<f64> {
    let out = std::process::Command::new(workload)
        .args(["calibrate", "--n", &n.to_string(), "--duration", "1s"])
        .output()
        .with_context(|| format!("running {} calibrate", workload.display()))?;
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).context("workload calibrate's JSON")?;
    // Per CPU-second, not per wall second: the calibration may share the
    // cores with whatever else starts at the same time, the instances' CPU
    // metric counts CPU time.
    let per_core = line["calls_per_cpu_s"]
        .as_f64()
        .context("calls_per_cpu_s in workload calibrate's JSON")?;
    Ok(per_core * load_cores)
}

/// The group of a policy file: the named one or the first.
pub fn pick_group(policy: &Policy, name: Option<&str>) -> Result<GroupPolicy> {
    match name {
        Some(name) => policy.group(name).cloned().with_context(|| {
            let names: Vec<&str> = policy.groups.iter().map(|g| g.name.as_str()).collect();
            format!("--group {name:?}: the policy has {}", names.join(", "))
        }),
        None => Ok(policy.groups[0].clone()),
    }
}

/// Runs the scenario on the embedded local cloud, writing live lines to `out`.
pub async fn run_local(local: Local, scenario: Scenario, out: &mut (impl Write + Send)) -> Result<Report> {
    let policy = Policy::load(&local.policy_file)?;
    let group = pick_group(&policy, local.group.as_deref())?;
    if group.max < group.min + 2 {
        bail!(
            "group {}: max {} must be at least min + 2 ({}) to show a scale-out",
            group.name,
            group.max,
            group.min + 2
        );
    }
    let rate = match local.rate {
        Some(rate) => rate,
        None => calibrate(&local.binaries.join("workload"), scenario.n, local.load_cores)?,
    };
    // The load scenario is not about schedules: its clock starts where none
    // of the group's scheduled actions fires during it (run at 11:00
    // Shanghai, the lunch-hour action raised min to 4 mid-scenario and the
    // group could not return to 2).
    let now = Timestamp::now();
    let (start, schedule_note) = quiet_start(&group, now, scenario_span(&scenario, local.boot))?;
    let cloud = start_local(&local, &scenario.out, (start != now).then_some(start)).await?;
    let result = async {
        if let Some(note) = &schedule_note {
            writeln!(out, "{note}")?;
        }
        let lb = cloud.lb_addr(&group.name)?;
        writeln!(
            out,
            "local cloud at speed {}x: group {} ({}..{} instances, CPU cap {} core each) behind http://{lb}",
            local.speed, group.name, group.min, group.max, local.cpu_limit
        )?;
        writeln!(
            out,
            "load: {rate:.0} req/s of /fibo/{}{}",
            scenario.n,
            if local.rate.is_some() {
                String::new()
            } else {
                format!(
                    " ({} cores of work, {:.1}x what the max group serves at 50% CPU)",
                    local.load_cores,
                    local.load_cores / (f64::from(group.max) * local.cpu_limit * 0.5)
                )
            }
        )?;
        let target = LocalTarget {
            cloud: &cloud,
            group: group.name.clone(),
        };
        let limits = Limits {
            group: group.name.clone(),
            min: group.min,
            max: group.max,
            start: group.desired.unwrap_or(group.min),
        };
        let report = run_scenario(&target, &limits, &format!("http://{lb}"), rate, &scenario, out).await?;
        let shadow = match &local.shadow {
            Some(_) => Some(shadow_of(&local, &scenario, &cloud, &group.name, &report)?),
            None => None,
        };
        anyhow::Ok((report, shadow))
    }
    .await;
    writeln!(out, "stopping the local cloud...")?;
    cloud.shutdown().await;
    let (report, shadow) = result?;
    write_outputs(&scenario, &report)?;
    if let Some(shadow) = shadow {
        writeln!(out)?;
        crate::shadow::print(&shadow, out)?;
        let json = scenario.out.join("shadow.json");
        std::fs::write(&json, serde_json::to_vec_pretty(&shadow)?)
            .with_context(|| format!("writing {}", json.display()))?;
        writeln!(out, "shadow report: {}", json.display())?;
    }
    Ok(report)
}

/// The shadow report of a local run: the load and desired capacity of the
/// run's samples a minute, the group's changes, and every decision the
/// shadow function made for the group in dry run; one instance's capacity
/// is calibrated on this machine (`--cpu-limit` of fibo(n) per second).
fn shadow_of(
    local: &Local,
    scenario: &Scenario,
    cloud: &localcloud::Cloud,
    group: &str,
    report: &Report,
) -> Result<crate::shadow::Report> {
    use crate::shadow::{Change, Input, Minute, Recommendation, per_minute};
    let load = per_minute(
        &report
            .samples
            .iter()
            .map(|s| (s.at, s.requests_per_second))
            .collect::<Vec<_>>(),
    );
    let desired = per_minute(
        &report
            .samples
            .iter()
            .map(|s| (s.at, f64::from(s.desired)))
            .collect::<Vec<_>>(),
    );
    let minutes = load
        .iter()
        .zip(&desired)
        .map(|(&(at, load_rps), &(_, desired))| Minute {
            at,
            load_rps,
            desired: desired as u32,
        })
        .collect();
    let ours = cloud
        .shadow()
        .map(|r| r.invocations())
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.group == group)
        .filter_map(|i| {
            let result = i.result?;
            let decision: functions::decide::Decision = serde_json::from_value(result.get("decision")?.clone()).ok()?;
            Some(Recommendation {
                at: i.finished.unwrap_or(i.at),
                from: decision.from,
                recommended: decision.desired_after(),
                reason: decision.reason,
            })
        })
        .collect();
    let input = Input {
        group: group.to_string(),
        minutes,
        actual: report
            .activities
            .iter()
            .map(|a| Change {
                at: a.start,
                from: a.from,
                to: a.to,
                cause: a.reason.clone().unwrap_or_else(|| a.cause.clone()),
            })
            .collect(),
        ours,
        capacity_rps: calibrate(&local.binaries.join("workload"), scenario.n, local.cpu_limit)?,
        boot: local.boot,
    };
    crate::shadow::report(&input).map_err(anyhow::Error::msg)
}

/// Runs the scenario against a deployed group: `url` is its load balancer,
/// `rate` the requests per second to send.
pub async fn run_aws(
    target: AwsTarget,
    url: &str,
    rate: f64,
    scenario: Scenario,
    out: &mut (impl Write + Send),
) -> Result<Report> {
    let observed = target
        .groups
        .describe(&target.group)
        .await
        .with_context(|| format!("reading group {}", target.group))?;
    if observed.max < observed.min + 2 {
        bail!(
            "group {}: max {} must be at least min + 2 ({}) to show a scale-out",
            target.group,
            observed.max,
            observed.min + 2
        );
    }
    writeln!(
        out,
        "AWS: group {} ({}..{} instances, desired {}) behind {url}",
        target.group, observed.min, observed.max, observed.desired
    )?;
    writeln!(out, "load: {rate:.0} req/s of /fibo/{}", scenario.n)?;
    std::fs::create_dir_all(&scenario.out).with_context(|| format!("creating {}", scenario.out.display()))?;
    let limits = Limits {
        group: target.group.clone(),
        min: observed.min,
        max: observed.max,
        start: observed.desired.max(observed.min),
    };
    let report = run_scenario(&target, &limits, url.trim_end_matches('/'), rate, &scenario, out).await?;
    write_outputs(&scenario, &report)?;
    Ok(report)
}

fn write_outputs(scenario: &Scenario, report: &Report) -> Result<()> {
    let json = scenario.out.join("verify.json");
    std::fs::write(&json, serde_json::to_vec_pretty(report)?).with_context(|| format!("writing {}", json.display()))?;
    let svg = scenario.out.join("verify.svg");
    std::fs::write(&svg, chart(report)).with_context(|| format!("writing {}", svg.display()))?;
    Ok(())
}

/// The group's bounds as the scenario sees them.
struct Limits {
    group: String,
    min: u32,
    max: u32,
    /// The capacity the baseline waits for.
    start: u32,
}

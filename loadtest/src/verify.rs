//! `loadtest verify`: the product's end-to-end scenario. Start the embedded
//! local cloud from a policy file (real workload instances, load balancer,
//! alarms, schedules and the real function binaries), drive load through the
//! load balancer, and check from outside that the group scaled out (to at
//! least min + 2, and to max when the load needs it) and back in to min, in
//! bounded time. Reports the activity table, assertions, JSON and a chart.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use functions::policy::Policy;
use jiff::Timestamp;
use localcloud::group::State;
use localcloud::lb::{Algorithm, LbConfig};
use localcloud::metrics::SeriesKey;
use localcloud::{Cloud, Config};
use serde::Serialize;

use crate::chart::{Chart, Series, stack};
use crate::engine::{Batch, Live, Mode, Plan, Ramp};
use crate::stats::Stats;

/// What to verify, and the bounds (cloud time).
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy_file: PathBuf,
    /// The group to load (default: the policy's first).
    pub group: Option<String>,
    pub speed: f64,
    /// CPU cap of every instance (fraction of a core).
    pub cpu_limit: f64,
    /// The Fibonacci n each request computes.
    pub n: u32,
    /// The load, in cores of Fibonacci work (converted to a request rate by calibration).
    pub load_cores: f64,
    pub baseline: Duration,
    pub scale_out_within: Duration,
    pub hold: Duration,
    pub scale_in_within: Duration,
    pub boot: Duration,
    /// Kill one instance (SIGKILL) in the middle of the hold; it must be replaced.
    pub kill_one: bool,
    /// The share of the load that stays while the group scales in (0: none).
    pub residual_load: f64,
    /// The workload and function binaries.
    pub binaries: PathBuf,
    /// Where verify.json and verify.svg go.
    pub out: PathBuf,
    /// Print a live line every second (else only phases and the report).
    pub live: bool,
}

/// One second of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub at: Timestamp,
    pub phase: &'static str,
    pub desired: u32,
    pub in_service: u32,
    /// The group's newest one-minute CPU average (% of the instances' caps).
    pub cpu_percent: Option<f64>,
    pub requests_per_second: f64,
    pub failures_per_second: f64,
    /// p99 latency over the 5 seconds of load before the sample.
    pub p99_ms: Option<f64>,
    /// Seconds since the load started (None: before it).
    #[serde(skip)]
    load_second: Option<u64>,
}

/// One checked expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Assertion {
    /// Held when `at` (the cloud time it happened) is Some: the detail says
    /// how long after `from`, else `otherwise`.
    fn reached(name: String, at: Option<Timestamp>, from: Timestamp, after: &str, otherwise: &str) -> Self {
        Self {
            name,
            passed: at.is_some(),
            detail: at.map_or_else(|| otherwise.to_string(), |at| format!("{} {after}", minutes(at, from))),
        }
    }
}

/// A change of desired capacity, with the decision that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityRow {
    pub start: Timestamp,
    /// When the in-service count reached the new desired (None: it did not).
    pub end: Option<Timestamp>,
    pub from: u32,
    pub to: u32,
    pub cause: String,
    pub reason: Option<String>,
}

/// The scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub group: String,
    pub speed: f64,
    pub min: u32,
    pub max: u32,
    pub request_rate: f64,
    pub fibo_n: u32,
    pub requests: u64,
    pub failures: u64,
    pub activities: Vec<ActivityRow>,
    pub instance_activities: Vec<localcloud::group::InstanceActivity>,
    pub assertions: Vec<Assertion>,
    pub samples: Vec<Sample>,
    pub passed: bool,
}

/// The request rate that makes `load_cores` of fibo(n) work on this machine.
pub fn calibrate(workload: &std::path::Path, n: u32, load_cores: f64) -> Result<f64> {
    let out = std::process::Command::new(workload)
        .args(["calibrate", "--n", &n.to_string(), "--duration", "1s"])
        .output()
        .with_context(|| format!("running {} calibrate", workload.display()))?;
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).context("workload calibrate's JSON")?;
    let per_core = line["calls_per_s"]
        .as_f64()
        .context("calls_per_s in workload calibrate's JSON")?;
    Ok(per_core * load_cores)
}

/// Runs the scenario on the embedded local cloud, writing live lines to `out`.
pub async fn run_local(settings: Settings, out: &mut (impl Write + Send)) -> Result<Report> {
    let text = std::fs::read_to_string(&settings.policy_file)
        .with_context(|| format!("reading {}", settings.policy_file.display()))?;
    let policy = Policy::parse(&settings.policy_file.display().to_string(), &text)?;
    let group = match &settings.group {
        Some(name) => policy
            .group(name)
            .with_context(|| {
                let names: Vec<&str> = policy.groups.iter().map(|g| g.name.as_str()).collect();
                format!("--group {name:?}: the policy has {}", names.join(", "))
            })?
            .clone(),
        None => policy.groups[0].clone(),
    };
    if group.max < group.min + 2 {
        bail!(
            "group {}: max {} must be at least min + 2 ({}) to show a scale-out",
            group.name,
            group.max,
            group.min + 2
        );
    }
    let workload = settings.binaries.join("workload");
    let rate = calibrate(&workload, settings.n, settings.load_cores)?;
    std::fs::create_dir_all(&settings.out).with_context(|| format!("creating {}", settings.out.display()))?;
    let config = Config {
        policy,
        speed: settings.speed,
        boot: settings.boot,
        health_grace: Duration::from_secs(300),
        azs: vec!["local-1a".into(), "local-1b".into()],
        subnet: [0, 1],
        instance_port: 8080,
        lb_port: 0,
        control_port: 0,
        lb: LbConfig {
            algorithm: Algorithm::LeastOutstandingRequests,
            interval: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            deregistration_delay: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        },
        workload,
        cpu_limit: settings.cpu_limit,
        log_dir: settings.out.join("logs"),
        drain_timeout: Duration::from_secs(10),
        functions: Some(settings.binaries.clone()),
        policy_file: Some(settings.policy_file.clone()),
    };
    let cloud = Cloud::start(config).await.context("starting the local cloud")?;
    let result = scenario(&cloud, &settings, &group, rate, out).await;
    writeln!(out, "stopping the local cloud...")?;
    cloud.shutdown().await;
    let report = result?;
    std::fs::write(settings.out.join("verify.json"), serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(settings.out.join("verify.svg"), chart(&report))?;
    Ok(report)
}

struct Watch<'a> {
    cloud: &'a Cloud,
    group: String,
    live: Arc<Live>,
    seconds: Arc<Mutex<BTreeMap<u64, Stats>>>,
    load_started: Option<Instant>,
    samples: Vec<Sample>,
    last_requests: u64,
    last_failures: u64,
    last_at: Instant,
    print: bool,
}

impl Watch<'_> {
    /// Follows another load engine's counters.
    fn switch(&mut self, live: Arc<Live>) {
        self.live = live;
        (self.last_requests, self.last_failures) = (0, 0);
        self.last_at = Instant::now();
    }

    /// Takes one sample (and prints the live line).
    fn sample(&mut self, phase: &'static str, out: &mut impl Write) -> Result<Sample> {
        let snapshot = self.cloud.group(&self.group)?;
        let now = self.cloud.clock().now();
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", &self.group)]);
        let minute = jiff::SignedDuration::from_mins(1);
        let cpu = {
            let points = self.cloud.points(&key, now - minute * 3, now);
            let newest = points.last().map(|(t, _)| *t);
            let values: Vec<f64> = points
                .iter()
                .filter(|(t, _)| Some(*t) == newest)
                .map(|(_, v)| *v)
                .collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let wall = self.last_at.elapsed().as_secs_f64().max(1e-3);
        self.last_at = Instant::now();
        let requests = self.live.requests.load(Ordering::Relaxed);
        let failures = self.live.failures.load(Ordering::Relaxed);
        let (rps, fps) = (
            (requests - self.last_requests) as f64 / wall,
            (failures - self.last_failures) as f64 / wall,
        );
        (self.last_requests, self.last_failures) = (requests, failures);
        let load_second = self.load_started.map(|started| started.elapsed().as_secs());
        // Workers report each second when they finish their next request: the
        // seconds from 4 to 8 ago are complete.
        let p99 = load_second.and_then(|now| p99_over(&self.seconds, now.checked_sub(8)?, now.checked_sub(4)?));
        let sample = Sample {
            at: now,
            phase,
            desired: snapshot.desired,
            in_service: snapshot
                .instances
                .iter()
                .filter(|i| i.state == State::InService)
                .count() as u32,
            cpu_percent: cpu,
            requests_per_second: rps,
            failures_per_second: fps,
            p99_ms: p99,
            load_second,
        };
        if self.print {
            writeln!(
                out,
                "[{}] {:<9} instances {:>2} in service / {:>2} desired  CPU {:>5}  {:>6.0} req/s  {:>5.0} failed/s  p99 {}",
                now.strftime("%H:%M:%S"),
                phase,
                sample.in_service,
                sample.desired,
                cpu.map_or_else(|| "-".to_string(), |c| format!("{c:.0}%")),
                rps,
                fps,
                p99.map_or_else(|| "-".to_string(), |p| format!("{p:.0} ms"))
            )?;
        }
        self.samples.push(sample.clone());
        Ok(sample)
    }

    /// Samples every second until `done` or `within` (cloud time) passes; the cloud time it held, if it did.
    async fn until(
        &mut self,
        phase: &'static str,
        within: Duration,
        out: &mut impl Write,
        done: impl Fn(&Sample) -> bool,
    ) -> Result<Option<Timestamp>> {
        let wall_limit = self.cloud.clock().wall(within);
        let started = Instant::now();
        loop {
            let sample = self.sample(phase, out)?;
            if done(&sample) {
                return Ok(Some(sample.at));
            }
            if started.elapsed() >= wall_limit {
                return Ok(None);
            }
            tokio::time::sleep(
                Duration::from_secs(1)
                    .min(wall_limit / 4)
                    .max(Duration::from_millis(100)),
            )
            .await;
        }
    }
}

async fn scenario(
    cloud: &Cloud,
    settings: &Settings,
    group: &functions::policy::GroupPolicy,
    rate: f64,
    out: &mut (impl Write + Send),
) -> Result<Report> {
    let name = group.name.clone();
    let lb = cloud.lb_addr(&name)?;
    writeln!(
        out,
        "local cloud at speed {}x: group {} ({}..{} instances, CPU cap {} core each) behind http://{lb}",
        settings.speed, name, group.min, group.max, settings.cpu_limit
    )?;
    writeln!(
        out,
        "load: {:.0} req/s of /fibo/{} ({} cores of work, {:.1}x what the max group serves at 50% CPU)",
        rate,
        settings.n,
        settings.load_cores,
        settings.load_cores / (f64::from(group.max) * settings.cpu_limit * 0.5)
    )?;
    let live = Arc::new(Live::default());
    let seconds: Arc<Mutex<BTreeMap<u64, Stats>>> = Arc::default();
    let mut watch = Watch {
        cloud,
        group: name.clone(),
        live: live.clone(),
        seconds: seconds.clone(),
        load_started: None,
        samples: Vec::new(),
        last_requests: 0,
        last_failures: 0,
        last_at: Instant::now(),
        print: settings.live,
    };
    let mut assertions = Vec::new();
    let min = group.desired.unwrap_or(group.min);

    // Baseline: min instances in service, then a quiet spell.
    writeln!(out, "phase baseline: waiting for {min} instances in service")?;
    let ready = watch
        .until(
            "baseline",
            Duration::from_secs(600).max(Duration::from_secs(30).mul_f64(settings.speed)),
            out,
            |s| s.in_service >= min,
        )
        .await?;
    assertions.push(Assertion {
        name: format!("the group starts with {min} instances in service"),
        passed: ready.is_some(),
        detail: ready.map_or("not in service in time".into(), |at| format!("at {at}")),
    });
    if ready.is_none() {
        return Ok(report(&watch, cloud, settings, group, rate, assertions));
    }
    watch.until("baseline", settings.baseline, out, |_| false).await?;

    // Load above capacity.
    writeln!(out, "phase load: {rate:.0} req/s through the load balancer")?;
    let url = format!("http://{lb}/fibo/{}", settings.n);
    let full = start_load(
        &url,
        rate,
        cloud.clock().wall(settings.scale_out_within + settings.hold) + Duration::from_secs(60),
        &seconds,
        0,
    )?;
    watch.switch(full.live.clone());
    watch.load_started = Some(Instant::now());
    let load_at = cloud.clock().now();
    let out_by = watch
        .until("load", settings.scale_out_within, out, |s| s.desired >= min + 2)
        .await?;
    assertions.push(Assertion::reached(
        format!(
            "scale-out to at least {} within {}",
            min + 2,
            humantime::format_duration(settings.scale_out_within)
        ),
        out_by,
        load_at,
        "after the load started",
        "did not happen",
    ));
    let left = settings
        .scale_out_within
        .saturating_sub(out_by.map_or(Duration::ZERO, |at| {
            Duration::try_from(at.duration_since(load_at)).unwrap_or_default()
        }));
    let max_by = watch
        .until("load", left, out, |s| {
            s.desired >= group.max && s.in_service >= group.max
        })
        .await?;
    assertions.push(Assertion::reached(
        format!(
            "scale-out to max {} in service within {}",
            group.max,
            humantime::format_duration(settings.scale_out_within)
        ),
        max_by,
        load_at,
        "after the load started",
        "did not happen",
    ));

    // Hold at max (optionally losing an instance half way).
    writeln!(
        out,
        "phase hold: {} at full load",
        humantime::format_duration(settings.hold)
    )?;
    let hold_from = (
        full.live.requests.load(Ordering::Relaxed),
        full.live.failures.load(Ordering::Relaxed),
    );
    if settings.kill_one {
        watch.until("hold", settings.hold / 2, out, |_| false).await?;
        let victim = cloud
            .group(&name)?
            .instances
            .iter()
            .find(|i| i.state == State::InService)
            .map(|i| i.id.clone());
        if let Some(victim) = victim {
            writeln!(out, "fault: kill -9 {victim}")?;
            cloud.kill(&victim)?;
            let killed_at = cloud.clock().now();
            let gone = |cloud: &Cloud| {
                cloud
                    .group(&name)
                    .ok()
                    .and_then(|g| g.instance(&victim).map(|i| i.state == State::Terminated))
                    .unwrap_or(false)
            };
            let replaced = watch
                .until("hold", settings.hold / 2, out, |s| {
                    s.in_service >= group.max && gone(cloud)
                })
                .await?;
            assertions.push(Assertion::reached(
                "a killed instance is replaced".into(),
                replaced,
                killed_at,
                "after the kill",
                "not replaced in time",
            ));
        }
    } else {
        watch.until("hold", settings.hold, out, |_| false).await?;
    }

    let hold_to = (
        full.live.requests.load(Ordering::Relaxed),
        full.live.failures.load(Ordering::Relaxed),
    );
    let (hold_requests, hold_failures) = (hold_to.0 - hold_from.0, hold_to.1 - hold_from.1);
    let allowed = hold_requests / 1000;
    assertions.push(Assertion {
        name: if settings.kill_one {
            "at most 0.1% failed requests during the hold, an instance killed included".into()
        } else {
            "at most 0.1% failed requests during the hold".into()
        },
        passed: hold_failures <= allowed,
        detail: format!("{hold_failures} of {hold_requests}"),
    });

    // A tenth of the load stays: the scale-in happens under traffic.
    let offset = watch.load_started.map_or(0, |s| s.elapsed().as_secs() + 1);
    let total = full.stop().await;
    let cool_rate = rate * settings.residual_load;
    writeln!(
        out,
        "phase cool: load down to {cool_rate:.0} req/s, waiting for the group to return to {}",
        group.min
    )?;
    let residual = start_load(
        &url,
        cool_rate,
        cloud.clock().wall(settings.scale_in_within) + Duration::from_secs(60),
        &seconds,
        offset,
    )?;
    watch.switch(residual.live.clone());
    let stopped_at = cloud.clock().now();
    let in_by = watch
        .until("cool", settings.scale_in_within, out, |s| {
            s.desired <= group.min && s.in_service <= group.min
        })
        .await?;
    assertions.push(Assertion::reached(
        format!(
            "scale-in back to min {} within {}",
            group.min,
            humantime::format_duration(settings.scale_in_within)
        ),
        in_by,
        stopped_at,
        "after the load dropped",
        "did not happen",
    ));
    let cool = residual.stop().await;
    if cool_rate > 0.0 {
        assertions.push(Assertion {
            name: "no failed request while scaling in under load".into(),
            passed: cool.failures() == 0 && cool.requests > 0,
            detail: format!("{} of {}", cool.failures(), cool.requests),
        });
    }
    let mut r = report(&watch, cloud, settings, group, rate, assertions);
    r.requests = total.requests + cool.requests;
    r.failures = total.failures() + cool.failures();
    Ok(r)
}

/// p99 (ms) of the requests completed in seconds `from..=to` of the load.
fn p99_over(seconds: &Mutex<BTreeMap<u64, Stats>>, from: u64, to: u64) -> Option<f64> {
    let seconds = seconds.lock().ok()?;
    let mut window = Stats::default();
    for (_, s) in seconds.range(from..=to) {
        window.merge(s);
    }
    (window.requests > 0).then(|| window.quantile(0.99).as_secs_f64() * 1e3)
}

/// A load engine running in the background, its batches merged into the
/// shared per-second map (shifted by `offset` seconds).
struct Load {
    live: Arc<Live>,
    engine: tokio::task::JoinHandle<()>,
    collector: tokio::task::JoinHandle<Stats>,
}

fn start_load(
    url: &str,
    rate: f64,
    duration: Duration,
    seconds: &Arc<Mutex<BTreeMap<u64, Stats>>>,
    offset: u64,
) -> Result<Load> {
    let plan = Plan {
        url: url.parse()?,
        mode: Mode::Open {
            connections: ((rate * 2.0).ceil() as usize).clamp(16, 512),
            ramp: Ramp::constant(rate),
        },
        duration,
        max_requests: None,
        timeout: Duration::from_secs(30),
    };
    let live = Arc::new(Live::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Batch>();
    let engine = tokio::spawn(crate::engine::run(plan, tx, live.clone()));
    let seconds = seconds.clone();
    let collector = tokio::spawn(async move {
        let mut total = Stats::default();
        while let Some(batch) = rx.recv().await {
            total.merge(&batch.stats);
            if let Ok(mut seconds) = seconds.lock() {
                seconds.entry(batch.second + offset).or_default().merge(&batch.stats);
            }
        }
        total
    });
    Ok(Load {
        live,
        engine,
        collector,
    })
}

impl Load {
    async fn stop(self) -> Stats {
        self.live.stop.store(true, Ordering::Relaxed);
        let _ = self.engine.await;
        self.collector.await.unwrap_or_default()
    }
}

fn minutes(at: Timestamp, from: Timestamp) -> String {
    let s = at.duration_since(from).as_secs_f64();
    format!("{:.1} min (cloud)", s / 60.0)
}

fn report(
    watch: &Watch<'_>,
    cloud: &Cloud,
    settings: &Settings,
    group: &functions::policy::GroupPolicy,
    rate: f64,
    assertions: Vec<Assertion>,
) -> Report {
    let snapshot = cloud.group(&group.name).ok();
    let invocations = cloud.functions().map(|r| r.invocations()).unwrap_or_default();
    let activities = snapshot
        .as_ref()
        .map(|g| {
            g.capacity_changes
                .iter()
                .map(|c| ActivityRow {
                    start: c.start,
                    end: watch
                        .samples
                        .iter()
                        .find(|s| s.at >= c.start && s.in_service == c.to)
                        .map(|s| s.at),
                    from: c.from,
                    to: c.to,
                    cause: c.cause.clone(),
                    reason: invocations.iter().rev().find_map(|i| {
                        let decision = &i.result.as_ref()?["decision"];
                        (decision["cause"].as_str() == Some(c.cause.as_str()))
                            .then(|| decision["reason"].as_str().map(str::to_string))?
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let passed = !assertions.is_empty() && assertions.iter().all(|a| a.passed);
    // Now every second is complete: the p99 of the 5 seconds before each sample.
    let samples = watch
        .samples
        .iter()
        .map(|s| Sample {
            p99_ms: s
                .load_second
                .and_then(|second| p99_over(&watch.seconds, second.saturating_sub(5), second.saturating_sub(1))),
            ..s.clone()
        })
        .collect();
    Report {
        group: group.name.clone(),
        speed: settings.speed,
        min: group.min,
        max: group.max,
        request_rate: rate,
        fibo_n: settings.n,
        requests: watch.live.requests.load(Ordering::Relaxed),
        failures: watch.live.failures.load(Ordering::Relaxed),
        activities,
        instance_activities: snapshot.map(|g| g.activities).unwrap_or_default(),
        assertions,
        samples,
        passed,
    }
}

/// The activity table and the assertions.
pub fn print_report(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(out, "\nscaling activities of group {} (cloud time):", report.group)?;
    writeln!(out, "  {:<8} {:<8} {:<9} CAUSE", "START", "END", "CHANGE")?;
    for a in &report.activities {
        writeln!(
            out,
            "  {:<8} {:<8} {:<9} {}",
            a.start.strftime("%H:%M:%S"),
            a.end
                .map_or_else(|| "-".to_string(), |e| e.strftime("%H:%M:%S").to_string()),
            format!("{} -> {}", a.from, a.to),
            a.reason.as_deref().unwrap_or(&a.cause)
        )?;
    }
    writeln!(
        out,
        "\nload: {} requests at {:.0} req/s of /fibo/{}, {} without a 2xx answer (shed while the group was too small)",
        report.requests, report.request_rate, report.fibo_n, report.failures
    )?;
    writeln!(out, "\nassertions:")?;
    for a in &report.assertions {
        writeln!(
            out,
            "  {} {} ({})",
            if a.passed { "PASS" } else { "FAIL" },
            a.name,
            a.detail
        )?;
    }
    writeln!(
        out,
        "\n{}",
        if report.passed {
            "verify: PASSED"
        } else {
            "verify: FAILED"
        }
    )
}

/// Instances, CPU, request rate and p99 over time.
pub fn chart(report: &Report) -> String {
    let points = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<(Timestamp, f64)> {
        report.samples.iter().filter_map(|s| f(s).map(|v| (s.at, v))).collect()
    };
    stack(&[
        Chart {
            title: format!("verify: group {} at speed {}x (cloud time)", report.group, report.speed),
            y_label: "instances".into(),
            series: vec![
                Series {
                    name: "desired".into(),
                    color: "#1f77b4".into(),
                    points: points(&|s| Some(f64::from(s.desired))),
                },
                Series {
                    name: "in service".into(),
                    color: "#2ca02c".into(),
                    points: points(&|s| Some(f64::from(s.in_service))),
                },
            ],
            x_range: None,
        },
        Chart {
            title: "group CPU utilisation (% of the instances' caps, one-minute average)".into(),
            y_label: "CPU %".into(),
            series: vec![Series {
                name: "CPU".into(),
                color: "#d62728".into(),
                points: points(&|s| s.cpu_percent),
            }],
            x_range: None,
        },
        Chart {
            title: "load through the load balancer".into(),
            y_label: "requests/s".into(),
            series: vec![
                Series {
                    name: "requests/s".into(),
                    color: "#9467bd".into(),
                    points: points(&|s| Some(s.requests_per_second)),
                },
                Series {
                    name: "failed/s".into(),
                    color: "#ff7f0e".into(),
                    points: points(&|s| Some(s.failures_per_second)),
                },
            ],
            x_range: None,
        },
        Chart {
            title: "latency".into(),
            y_label: "p99 ms".into(),
            series: vec![Series {
                name: "p99".into(),
                color: "#8c564b".into(),
                points: points(&|s| s.p99_ms),
            }],
            x_range: None,
        },
    ])
}

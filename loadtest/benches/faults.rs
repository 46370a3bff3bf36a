//! Failed requests through the local cloud's load balancer when the group
//! changes under steady load (issue 4's targets): a group of 4 instances
//! behind the load balancer, an open-loop load of `--rate` requests/s of
//! `--path` for `--duration`, and a third of the way in
//!
//! 1. one instance killed with SIGKILL (`localcloud kill`): at most 0.1% of
//!    the requests may fail; reported with the load balancer's retries, how
//!    long the dead instance stayed in rotation (target: within two health
//!    intervals) and how long the group took to have 4 healthy instances
//!    again;
//! 2. the group scaled in from 4 to 2 (`localcloud set-desired`): no
//!    request may fail (deregistration drains before SIGTERM).
//!
//! `cargo bench -p loadtest --bench faults -- [--duration 30s] [--rate 200] [--path /fibo/27] [--check]`.
//! `--check` fails the run when a target is missed. Only failures are
//! gated: the times are reported. Failures are split into answers of the
//! load balancer itself (no target, a target that failed: what the fault
//! handling must avoid) and the rest (an instance's 503 when its compute
//! queue is full). The default load leaves the instances far from their
//! cap (the busiest one's CPU is reported) so that the second kind stays
//! out: at 400 req/s a busy host made instances shed (86 of 7999 with a
//! busy loop on one core).

mod support;

use std::time::{Duration, Instant};

use localcloud::cloud::{GroupStatus, InstanceStatus, Status};
use localcloud::group::State;
use localcloud::lb::TargetHealth;
use support::{LocalCloud, Run};

const GROUP: &str = "faults";
const POLICY: &str = "[[group]]\nname = \"faults\"\nmin = 2\nmax = 4\ndesired = 4\n";
/// The load balancer's health check interval (passed to the local cloud).
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// How often the group is looked at while a fault plays out.
const POLL: Duration = Duration::from_millis(100);

fn group(status: &Status) -> &GroupStatus {
    support::group(status, GROUP)
}

/// Whether the load balancer sends the instance requests.
fn in_rotation(instance: &InstanceStatus) -> bool {
    instance
        .target
        .as_ref()
        .is_some_and(|t| t.health == TargetHealth::Healthy)
}

/// In service and healthy behind the load balancer.
fn healthy(status: &Status) -> Vec<String> {
    group(status)
        .instances
        .iter()
        .filter(|i| i.instance.state == State::InService && in_rotation(i))
        .map(|i| i.instance.id.clone())
        .collect()
}

/// The highest CPU utilisation (% of its cap) of an instance in service.
fn busiest(status: &Status) -> f64 {
    group(status)
        .instances
        .iter()
        .filter(|i| i.instance.state == State::InService)
        .filter_map(|i| i.cpu_percent)
        .fold(0.0, f64::max)
}

fn wait_healthy(cloud: &LocalCloud, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let now = healthy(&cloud.status());
        if now.len() == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} instances healthy after {limit:?}",
            now.len()
        );
        std::thread::sleep(POLL);
    }
}

/// Runs the load in the background; the fault is `act` a third of the way
/// in, then `watch` is called every [`POLL`] with what `act` returned and
/// the time since, until the load ends.
fn under_load<T>(
    cloud: &LocalCloud,
    loadtest: &std::path::Path,
    url: &str,
    rate: &str,
    duration: Duration,
    act: impl FnOnce(&Status) -> T,
    mut watch: impl FnMut(&T, &Status, Duration),
) -> (Run, f64) {
    let (loadtest, url, rate) = (loadtest.to_path_buf(), url.to_string(), rate.to_string());
    let seconds = format!("{}s", duration.as_secs().max(1));
    let load = std::thread::spawn(move || {
        support::loadtest(&loadtest, &url, &["--rate", &rate, "-d", &seconds, "--timeout", "10s"])
    });
    std::thread::sleep(duration / 3);
    let acted = act(&cloud.status());
    let fault = Instant::now();
    let mut cpu = 0.0_f64;
    while !load.is_finished() {
        let status = cloud.status();
        cpu = cpu.max(busiest(&status));
        watch(&acted, &status, fault.elapsed());
        std::thread::sleep(POLL);
    }
    (load.join().expect("the load thread"), cpu)
}

fn percent(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}

fn seconds(at: Option<Duration>) -> String {
    at.map_or_else(|| "never".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let duration = support::duration_arg(Duration::from_secs(30));
    let rate = support::arg("--rate").unwrap_or_else(|| "200".into());
    assert!(
        rate.parse::<f64>().is_ok_and(|r| r > 0.0),
        "--rate: requests per second > 0, got {rate:?}"
    );
    let path = support::arg("--path").unwrap_or_else(|| "/fibo/27".into());
    assert!(path.starts_with('/'), "--path: starts with /, got {path:?}");

    let bin = support::release_binaries();
    let dir = support::scratch_dir("faults");
    let interval = format!("{}ms", HEALTH_INTERVAL.as_millis());
    let cloud = LocalCloud::start(
        &bin,
        &dir,
        POLICY,
        231,
        &[
            "--speed",
            "60",
            "--boot",
            "1s",
            "--cpu-limit",
            "0.5",
            "--health-interval",
            &interval,
        ],
    );
    let url = format!("http://{}{path}", cloud.lb());
    let loadtest = bin("loadtest");
    wait_healthy(&cloud, 4, Duration::from_secs(60));
    println!(
        "4 instances at --cpu-limit 0.5 behind the local cloud's load balancer, {rate} req/s of {path} for {} s, the fault at a third",
        duration.as_secs()
    );

    // 1. One instance killed.
    let before = group(&cloud.status()).lb_counters;
    let (mut out_of_rotation, mut replaced) = (None, None);
    let (killed, killed_cpu) = under_load(
        &cloud,
        &loadtest,
        &url,
        &rate,
        duration,
        |status| {
            let victim = healthy(status).first().cloned().expect("a healthy instance to kill");
            cloud.command("kill", &[&victim]);
            victim
        },
        |victim, status, since| {
            let victim_in_rotation = group(status)
                .instances
                .iter()
                .any(|i| i.instance.id == *victim && in_rotation(i));
            if !victim_in_rotation && out_of_rotation.is_none() {
                out_of_rotation = Some(since);
            }
            let others = healthy(status).into_iter().filter(|id| id != victim).count();
            if others == 4 && replaced.is_none() {
                replaced = Some(since);
            }
        },
    );
    let after = group(&cloud.status()).lb_counters;
    let (retries, lb_errors) = (after.retries - before.retries, after.errors - before.errors);
    let kill_met = killed.requests > 0 && killed.failed * 1000 <= killed.requests;
    println!("1. one of 4 instances killed (SIGKILL)");
    println!(
        "   {} requests, {} failed = {:.3}% (target <= 0.1%: {}; {}; {lb_errors} answered by the load balancer), {retries} retried on another instance, p99 {:.1} ms, busiest instance {killed_cpu:.0}% of its cap",
        killed.requests,
        killed.failed,
        percent(killed.failed, killed.requests),
        support::verdict(kill_met),
        killed.failures(),
        killed.p99_ms
    );
    println!(
        "   out of rotation after {} (two health intervals: {:.1} s), 4 healthy again after {}",
        seconds(out_of_rotation),
        2.0 * HEALTH_INTERVAL.as_secs_f64(),
        seconds(replaced)
    );

    // 2. Scale-in from 4 to 2.
    wait_healthy(&cloud, 4, Duration::from_secs(60));
    let before = group(&cloud.status()).lb_counters;
    let mut scaled_in = None;
    let (scaling_in, scaling_in_cpu) = under_load(
        &cloud,
        &loadtest,
        &url,
        &rate,
        duration,
        |_| {
            cloud.command("set-desired", &[GROUP, "2"]);
        },
        |(), status, since| {
            let left = group(status)
                .instances
                .iter()
                .filter(|i| i.instance.state != State::Terminated)
                .count();
            if left == 2 && scaled_in.is_none() {
                scaled_in = Some(since);
            }
        },
    );
    let lb_errors = group(&cloud.status()).lb_counters.errors - before.errors;
    let scale_in_met = scaling_in.requests > 0 && scaling_in.failed == 0;
    println!("2. scale-in from 4 to 2 (deregistration drains, then SIGTERM)");
    println!(
        "   {} requests, {} failed (target 0: {}; {}; {lb_errors} answered by the load balancer), p99 {:.1} ms, busiest instance {scaling_in_cpu:.0}% of its cap, 2 left after {}",
        scaling_in.requests,
        scaling_in.failed,
        support::verdict(scale_in_met),
        scaling_in.failures(),
        scaling_in.p99_ms,
        seconds(scaled_in)
    );

    // Stopped here: exit() below runs no destructor.
    drop(cloud);
    std::fs::remove_dir_all(&dir).ok();
    if check && !(kill_met && scale_in_met) {
        eprintln!(
            "faults bench: killed {} of {} failed, scale-in {} of {} failed",
            killed.failed, killed.requests, scaling_in.failed, scaling_in.requests
        );
        std::process::exit(1);
    }
}

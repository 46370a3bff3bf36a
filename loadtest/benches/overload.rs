//! The workload under overload through the local cloud's load balancer
//! (issue 24's target "with the local cloud's default `--cpu-limit`, the
//! same ratio through the load balancer"): one instance at the default CPU
//! cap behind the load balancer, closed-loop `loadtest run` clients on
//! 15, 64 and 256 connections, on `/fibo/30` and `/fibo/35`. Each setting's
//! served rate is a ratio of the rate at 4 connections (target >= 0.9),
//! measured in `--slices` slices alternated with 4-connection slices so the
//! host's drift hits both alike.
//!
//! The served rate is the instance's own count (`compute.completed` in its
//! `/health`), polled every 5 ms by a separate client straight at the
//! instance (as the load balancer's health checks reach it), and taken
//! between the first and the last completion seen in the window: at a
//! fifth of a core `/fibo/35` completes about four times a second, and a
//! count per window would be off by up to one job at each end. The same
//! polls time `/health` (reported), and the instance must stay in rotation
//! with nothing answered by the load balancer itself (gated).
//!
//! `cargo bench -p loadtest --bench overload -- [--duration 6s] [--slices 3] [--check]`
//! (`--duration` per setting and side, split into the slices).

mod support;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use localcloud::cloud::{GroupStatus, Status};
use localcloud::lb::TargetHealth;
use support::{LocalCloud, Run};

const GROUP: &str = "overload";
const POLICY: &str = "[[group]]\nname = \"overload\"\nmin = 1\nmax = 1\n";
const INSTANCE_PORT: u16 = 8080;
const TARGET: f64 = 0.9;
const REFERENCE_CONNECTIONS: u32 = 4;
const CONNECTIONS: [u32; 3] = [15, 64, 256];
const PATHS: [&str; 2] = ["/fibo/30", "/fibo/35"];
/// Until every connection is up and the instance's queue is full.
const WARMUP: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(5);

fn group(status: &Status) -> &GroupStatus {
    support::group(status, GROUP)
}

/// The instance's address (`IP:PORT`) once it is in service and healthy behind the load balancer.
fn wait_in_rotation(cloud: &LocalCloud) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cloud.status();
        let healthy = group(&status)
            .instances
            .iter()
            .find(|i| i.target.as_ref().is_some_and(|t| t.health == TargetHealth::Healthy));
        if let Some(instance) = healthy {
            return format!("{}:{INSTANCE_PORT}", instance.instance.ip);
        }
        assert!(Instant::now() < deadline, "no instance in rotation after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the polls of the instance's `/health` saw over one slice.
struct Polls {
    /// (time, `compute.completed`) at each poll.
    samples: Vec<(Instant, u64)>,
    /// `/health` latency, µs.
    latency: Histogram<u64>,
}

impl Polls {
    /// Completions per second between the first and the last completion
    /// seen in `[from, until)`: exact to a poll interval, not to a job.
    fn served_rate(&self, from: Instant, until: Instant) -> Option<(u64, f64)> {
        let inside: Vec<&(Instant, u64)> = self.samples.iter().filter(|(t, _)| *t >= from && *t < until).collect();
        let changes: Vec<(Instant, u64)> = inside.windows(2).filter(|w| w[1].1 > w[0].1).map(|w| *w[1]).collect();
        let (first, last) = (changes.first()?, changes.last()?);
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        (seconds > 0.0).then(|| (last.1 - first.1, (last.1 - first.1) as f64 / seconds))
    }
}

/// Runs `body` on a kept-alive `/health` connection to `instance` (its own
/// small runtime: the benchmark's threads are plain threads).
fn with_health<T>(instance: &str, body: impl AsyncFnOnce(&mut loadtest::h1::Connection) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut connection = loadtest::h1::Connection::connect(instance, "/health")
            .await
            .expect("connect to the instance");
        body(&mut connection).await
    })
}

/// One `/health` answer as JSON.
async fn health(connection: &mut loadtest::h1::Connection) -> serde_json::Value {
    let answer = connection.get().await.expect("/health of the instance");
    assert_eq!(answer.status, 200, "/health of the instance answered {}", answer.status);
    serde_json::from_slice(answer.body).expect("/health JSON")
}

/// `/health` of `instance` polled every [`POLL`] until `until`.
fn poll_health(instance: &str, until: Instant) -> Polls {
    with_health(instance, async |connection| {
        let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let mut samples = Vec::new();
        while Instant::now() < until {
            let sent = Instant::now();
            let health = health(connection).await;
            let at = Instant::now();
            latency
                .record(at.duration_since(sent).as_micros() as u64)
                .expect("record");
            samples.push((at, health["compute"]["completed"].as_u64().expect("compute.completed")));
            tokio::time::sleep(POLL).await;
        }
        Polls { samples, latency }
    })
}

/// Waits until the instance computes and queues nothing (the last slice's tail).
fn settle(instance: &str) {
    with_health(instance, async |connection| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = health(connection).await;
            if health["compute"]["running"] == 0 && health["compute"]["queued"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the instance did not go idle: {health}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// One slice, or several merged.
#[derive(Debug, Clone, Default)]
struct Slice {
    /// Completions counted by the instance, and the seconds they span.
    served: u64,
    served_s: f64,
    /// What the clients got over their whole run (the warm-up, the window
    /// and the queue's tail after it).
    client_2xx: u64,
    client_503: u64,
    client_other: u64,
    health: Option<Histogram<u64>>,
}

impl Slice {
    fn rate(&self) -> f64 {
        self.served as f64 / self.served_s.max(f64::MIN_POSITIVE)
    }

    fn add(&mut self, other: Slice) {
        self.served += other.served;
        self.served_s += other.served_s;
        self.client_2xx += other.client_2xx;
        self.client_503 += other.client_503;
        self.client_other += other.client_other;
        match (&mut self.health, other.health) {
            (Some(mine), Some(theirs)) => mine.add(theirs).expect("same bounds"),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }

    fn health_ms(&self, quantile: f64) -> f64 {
        self.health
            .as_ref()
            .map_or(0.0, |h| h.value_at_quantile(quantile) as f64 / 1000.0)
    }
}

fn slice(
    loadtest: &std::path::Path,
    lb: &str,
    instance: &str,
    path: &str,
    connections: u32,
    window: Duration,
) -> Slice {
    settle(instance);
    let started = Instant::now();
    let (from, until) = (started + WARMUP, started + WARMUP + window);
    let run_for = format!("{}ms", (WARMUP + window).as_millis());
    let (loadtest, url) = (loadtest.to_path_buf(), format!("http://{lb}{path}"));
    let load = std::thread::spawn(move || {
        support::loadtest(&loadtest, &url, &["-c", &connections.to_string(), "-d", &run_for])
    });
    let polls = poll_health(instance, until);
    let run: Run = load.join().expect("the load thread");
    let (served, served_s) = polls
        .served_rate(from, until)
        .map_or((0, window.as_secs_f64()), |(n, rate)| (n, n as f64 / rate));
    let status = |code: &str| run.report["statuses"][code].as_u64().unwrap_or(0);
    let (ok, shed) = (
        run.report["statuses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(code, _)| code.starts_with('2'))
            .filter_map(|(_, n)| n.as_u64())
            .sum(),
        status("503"),
    );
    Slice {
        served,
        served_s,
        client_2xx: ok,
        client_503: shed,
        client_other: run.requests.saturating_sub(ok + shed),
        health: Some(polls.latency),
    }
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let duration = support::duration_arg(Duration::from_secs(6));
    let slices = u32::try_from(support::count_arg("--slices", 3)).expect("--slices: at most 2^32 - 1");
    let window = duration / slices;
    assert!(
        window >= Duration::from_millis(500),
        "--duration / --slices: at least 500ms per slice, got {window:?}"
    );

    let bin = support::release_binaries();
    let dir = support::scratch_dir("overload");
    // The local cloud's default --cpu-limit on purpose: not passed. At
    // --speed 1 the instance runs the workload's own admission defaults (2 s
    // budget, 1 s shed delay), as on AWS; faster, the local cloud scales them.
    let cloud = LocalCloud::start(
        &bin,
        &dir,
        POLICY,
        232,
        &[
            "--speed",
            "1",
            "--boot",
            "1s",
            "--instance-port",
            &INSTANCE_PORT.to_string(),
        ],
    );
    let lb = cloud.lb().to_string();
    let instance = wait_in_rotation(&cloud);
    let loadtest = bin("loadtest");
    let cap = with_health(&instance, async |connection| {
        health(connection).await["cpu_limit_cores"].as_f64().unwrap_or(0.0)
    });
    println!(
        "one instance at the local cloud's default CPU cap ({cap} cores) behind its load balancer; closed loop, {slices} slices of {:.1} s per side (after {:.1} s to fill), alternated with {REFERENCE_CONNECTIONS} connections; served = the instance's own count",
        window.as_secs_f64(),
        WARMUP.as_secs_f64()
    );
    let before = group(&cloud.status()).lb_counters;
    let mut met = true;
    let mut missed = Vec::new();
    for path in PATHS {
        for connections in CONNECTIONS {
            let (mut reference, mut tested) = (Slice::default(), Slice::default());
            for _ in 0..slices {
                reference.add(slice(&loadtest, &lb, &instance, path, REFERENCE_CONNECTIONS, window));
                tested.add(slice(&loadtest, &lb, &instance, path, connections, window));
            }
            let ratio = tested.rate() / reference.rate();
            let ok = ratio >= TARGET && tested.client_other == 0 && reference.client_other == 0;
            met &= ok;
            if !ok {
                missed.push(format!("{path} at {connections} connections: {ratio:.3} x"));
            }
            for (side, connections, ratio) in [
                (&reference, REFERENCE_CONNECTIONS, None),
                (&tested, connections, Some(ratio)),
            ] {
                println!(
                    "  {path:<9} {connections:>4} conns {:>7.2} req/s served{}  (clients got {} 2xx, {} 503, {} other)  /health p99 {:.2} ms max {:.2} ms",
                    side.rate(),
                    ratio.map_or(String::from("          "), |r| format!(" = {r:.3} x")),
                    side.client_2xx,
                    side.client_503,
                    side.client_other,
                    side.health_ms(0.99),
                    side.health_ms(1.0),
                );
            }
        }
    }
    let after = group(&cloud.status()).lb_counters;
    let lb_errors = after.errors - before.errors;
    let still_in_rotation = wait_in_rotation(&cloud) == instance;
    println!(
        "  target >= {TARGET} x the {REFERENCE_CONNECTIONS}-connection rate: {}; answered by the load balancer itself: {lb_errors} (target 0); the instance stayed in rotation: {still_in_rotation}",
        support::verdict(met)
    );
    // Stopped here: exit() below runs no destructor.
    drop(cloud);
    std::fs::remove_dir_all(&dir).ok();
    if check && !(met && lb_errors == 0 && still_in_rotation) {
        eprintln!(
            "overload bench: {}; {lb_errors} answered by the load balancer",
            if missed.is_empty() {
                "ratios met".into()
            } else {
                missed.join(", ")
            }
        );
        std::process::exit(1);
    }
}

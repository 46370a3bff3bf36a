//! Two comparisons measured in the same run, on loopback, 64 connections,
//! closed loop, each side for `--duration`, sides interleaved over
//! `--rounds` rounds (default 3) and reported as medians:
//!
//! 1. The load generator: `loadtest run` against nginx serving a small
//!    static file, vs wrk on the same URL (issue 5's target: >= 1.0 x wrk's
//!    requests/s, <= 50 MB peak memory).
//! 2. The local cloud's load balancer: `/health` of one workload instance
//!    directly, through `localcloud`'s load balancer and through nginx as a
//!    reverse proxy (issue 4's target: >= 0.8 x nginx's requests/s), with the
//!    p50/p99 each proxy adds.
//!
//! `cargo bench -p loadtest --bench proxy -- [--duration 5s] [--rounds 3] [--check]`.
//! Needs nginx and wrk (`.ci/run` installs them); without them it skips
//! with a printed reason, except in CI (`CI=true`), where that fails.
//! `--check` fails the run on any failed request, a load generator over
//! 50 MB or under 0.8 x wrk, or a load balancer under 0.7 x nginx
//! (regression floors under the 1.0 and 0.8 targets, which shared-machine
//! noise can dip below); both targets are reported as met or MISSED.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Guard, LocalCloud, Run, free_port, wait_listening};

/// Requests/s of wrk.
fn wrk(wrk: &Path, url: &str, duration: Duration) -> f64 {
    let out = Command::new(wrk)
        .args(["-t2", "-c64", &format!("-d{}s", duration.as_secs().max(1)), url])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

/// One closed-loop `loadtest run` with 64 connections.
fn loadtest(binary: &Path, url: &str, duration: Duration) -> Run {
    let seconds = format!("{}s", duration.as_secs().max(1));
    support::loadtest(binary, url, &["-c", "64", "-d", &seconds])
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn runs(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ")
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let duration = support::duration_arg(Duration::from_secs(5));
    let rounds = support::count_arg("--rounds", 3);
    let (Some(nginx), Some(wrk_bin)) = (support::find("nginx"), support::find("wrk")) else {
        assert!(
            !support::in_ci(),
            "CI=true but nginx or wrk is missing; .ci/run installs them (apt-get install nginx wrk)"
        );
        println!("SKIPPED: nginx and wrk are needed (apt-get install nginx wrk)");
        return;
    };

    let bin = support::release_binaries();
    let dir = support::scratch_dir("proxy");
    std::fs::create_dir_all(dir.join("www")).expect("dir");
    std::fs::write(dir.join("www/hello.txt"), "hello, world\n").expect("static file");

    // One workload instance (uncapped), the local cloud's load balancer in
    // front of a one-instance group, and nginx (static file + reverse proxy).
    let instance_port = free_port();
    let instance = Guard(
        Command::new(bin("workload"))
            .args(["--listen", &format!("127.0.0.1:{instance_port}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("workload"),
    );
    wait_listening(instance_port);
    let (static_port, proxy_port) = (free_port(), free_port());
    let conf = format!(
        "worker_processes 2;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\ndaemon off;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {dir}/tmp; proxy_temp_path {dir}/tmp; fastcgi_temp_path {dir}/tmp; uwsgi_temp_path {dir}/tmp; scgi_temp_path {dir}/tmp;\n  upstream instance {{ server 127.0.0.1:{instance_port}; keepalive 64; }}\n  server {{ listen 127.0.0.1:{static_port}; root {dir}/www; }}\n  server {{ listen 127.0.0.1:{proxy_port}; location / {{ proxy_pass http://instance; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n",
        dir = dir.display()
    );
    std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let nginx_process = Guard(
        Command::new(&nginx)
            .args([
                "-c",
                &dir.join("nginx.conf").display().to_string(),
                "-p",
                &dir.display().to_string(),
            ])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx"),
    );
    wait_listening(static_port);
    wait_listening(proxy_port);
    let cpus = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .to_string();
    let cloud = LocalCloud::start(
        &bin,
        &dir,
        "[[group]]\nname = \"bench\"\nmin = 1\nmax = 1\n",
        230,
        &["--speed", "60", "--boot", "1s", "--cpu-limit", &cpus],
    );
    let lb = cloud.lb().to_string();
    // Until the instance is in service behind it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = loadtest(&bin("loadtest"), &format!("http://{lb}/health"), Duration::from_secs(1));
        if run.requests_per_second > 0.0 && run.failed == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the load balancer never served");
    }

    println!(
        "closed loop, 64 connections, {} s each, {rounds} interleaved rounds, medians (measured in this run)",
        duration.as_secs()
    );
    // Loopback numbers on a shared 2-core machine drift by tens of percent
    // between runs, so each comparison alternates its sides over several
    // rounds and reports medians: a drift hits both sides alike.
    let static_url = format!("http://127.0.0.1:{static_port}/hello.txt");
    let (mut wrk_runs, mut our_runs, mut memory) = (Vec::new(), Vec::new(), 0.0_f64);
    for round in 0..rounds {
        let ours = || loadtest(&bin("loadtest"), &static_url, duration);
        let (theirs, run) = if round % 2 == 0 {
            (wrk(&wrk_bin, &static_url, duration), ours())
        } else {
            let o = ours();
            (wrk(&wrk_bin, &static_url, duration), o)
        };
        wrk_runs.push(theirs);
        our_runs.push(run.requests_per_second);
        memory = memory.max(run.peak_memory_mb);
    }
    let (wrk_rps, ours) = (median(&wrk_runs), median(&our_runs));
    println!("1. load generator vs wrk on nginx's static file");
    println!("   wrk            {wrk_rps:>10.0} req/s  (runs {})", runs(&wrk_runs));
    println!(
        "   loadtest run   {ours:>10.0} req/s  (runs {}) = {:.2} x wrk (target >= 1.0: {}), peak memory {memory:.1} MB (target <= 50: {})",
        runs(&our_runs),
        ours / wrk_rps,
        support::verdict(ours >= wrk_rps),
        support::verdict(memory <= 50.0)
    );

    let health = |port: String| format!("http://{port}/health");
    let urls = [
        health(format!("127.0.0.1:{instance_port}")),
        health(lb.clone()),
        health(format!("127.0.0.1:{proxy_port}")),
    ];
    // [direct, load balancer, nginx] x rounds of (req/s, p50, p99, failed).
    let mut health_runs: [Vec<(f64, f64, f64, u64)>; 3] = Default::default();
    for round in 0..rounds {
        let mut order = [0, 1, 2];
        order.rotate_left(round % 3);
        for side in order {
            let run = loadtest(&bin("loadtest"), &urls[side], duration);
            health_runs[side].push((run.requests_per_second, run.p50_ms, run.p99_ms, run.failed));
        }
    }
    let summary = |side: usize| {
        let r = &health_runs[side];
        let rps: Vec<f64> = r.iter().map(|x| x.0).collect();
        (
            median(&rps),
            median(&r.iter().map(|x| x.1).collect::<Vec<_>>()),
            median(&r.iter().map(|x| x.2).collect::<Vec<_>>()),
            r.iter().map(|x| x.3).sum::<u64>(),
            runs(&rps),
        )
    };
    let (direct, d50, d99, direct_failed, direct_runs) = summary(0);
    let (via_lb, l50, l99, lb_failed, lb_runs) = summary(1);
    let (via_nginx, n50, n99, nginx_failed, nginx_runs) = summary(2);
    println!("2. /health of one workload instance");
    println!(
        "   direct         {direct:>10.0} req/s  p50 {d50:.2} ms  p99 {d99:.2} ms  failed {direct_failed}  (runs {direct_runs})"
    );
    println!(
        "   local cloud LB {via_lb:>10.0} req/s  p50 +{:.2} ms  p99 +{:.2} ms  failed {lb_failed}  (runs {lb_runs}) = {:.2} x nginx (target >= 0.8: {})",
        l50 - d50,
        l99 - d99,
        via_lb / via_nginx,
        support::verdict(via_lb >= 0.8 * via_nginx)
    );
    println!(
        "   nginx proxy    {via_nginx:>10.0} req/s  p50 +{:.2} ms  p99 +{:.2} ms  failed {nginx_failed}  (runs {nginx_runs})",
        n50 - d50,
        n99 - d99
    );
    let mut failed = Vec::new();
    if lb_failed > 0 || direct_failed > 0 || nginx_failed > 0 {
        failed.push(format!(
            "failed requests: direct {direct_failed}, load balancer {lb_failed}, nginx {nginx_failed}"
        ));
    }
    if via_lb < 0.7 * via_nginx {
        failed.push(format!(
            "load balancer at {:.2} x nginx (under the 0.7 regression floor)",
            via_lb / via_nginx
        ));
    }
    if ours < 0.8 * wrk_rps {
        failed.push(format!(
            "load generator at {:.2} x wrk (under the 0.8 regression floor)",
            ours / wrk_rps
        ));
    }
    if memory > 50.0 {
        failed.push(format!("load generator peak memory {memory:.1} MB (> 50)"));
    }
    // Stopped here: exit() below runs no destructor.
    drop((cloud, nginx_process, instance));
    std::fs::remove_dir_all(&dir).ok();
    if check && !failed.is_empty() {
        eprintln!("proxy bench: {}", failed.join("; "));
        std::process::exit(1);
    }
}

//! The load engine against an in-process server: exact counts, the open
//! loop's rate, errors classified, instances read from the answers.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use loadtest::engine::{Mode, Plan, Ramp};
use loadtest::run::{RunReport, execute};
use loadtest::stats::ErrorKind;
use support::server;

fn plan(url: String, mode: Mode, duration: Duration, max: Option<u64>) -> Plan {
    Plan {
        url: url.parse().expect("url"),
        mode,
        duration,
        max_requests: max,
        timeout: Duration::from_millis(300),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_sends_exactly_the_requests_asked_and_counts_instances() {
    let (addr, served, task) = server().await;
    let plan = plan(
        format!("http://{addr}/ok"),
        Mode::Closed { connections: 8 },
        Duration::from_secs(30),
        Some(1000),
    );
    let outcome = execute(plan.clone()).await;
    assert_eq!(outcome.total.requests, 1000);
    assert_eq!(outcome.total.successes, 1000);
    assert_eq!(served.load(Ordering::Relaxed), 1000);
    assert_eq!(outcome.total.instances.len(), 2);
    assert_eq!(outcome.total.instances.values().sum::<u64>(), 1000);
    let per_second: u64 = outcome.seconds.values().map(|s| s.requests).sum();
    assert_eq!(per_second, 1000, "the timeline adds up");
    let report = RunReport::new(&plan, &outcome);
    assert_eq!(report.statuses[&200], 1000);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_holds_its_rate() {
    let (addr, served, task) = server().await;
    let plan = plan(
        format!("http://{addr}/ok"),
        Mode::Open {
            connections: 16,
            ramp: Ramp::constant(400.0),
        },
        Duration::from_secs(3),
        None,
    );
    let outcome = execute(plan).await;
    let sent = outcome.total.requests as f64;
    assert!(
        (sent - 1200.0).abs() <= 0.02 * 1200.0,
        "{sent} requests for 400/s over 3 s"
    );
    assert_eq!(served.load(Ordering::Relaxed), outcome.total.requests);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_sends_the_area_under_it() {
    let (addr, _, task) = server().await;
    // 0 -> 400 req/s over 2 s: 400 requests.
    let plan = plan(
        format!("http://{addr}/ok"),
        Mode::Open {
            connections: 16,
            ramp: Ramp::parse("0:0,2s:400").expect("ramp"),
        },
        Duration::from_secs(2),
        None,
    );
    let outcome = execute(plan).await;
    let sent = outcome.total.requests as f64;
    assert!((sent - 400.0).abs() <= 0.05 * 400.0, "{sent}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified() {
    let (addr, _, task) = server().await;
    let run = |path: &str, max: u64| {
        execute(plan(
            format!("http://{addr}{path}"),
            Mode::Closed { connections: 2 },
            Duration::from_secs(10),
            Some(max),
        ))
    };
    let fail = run("/fail", 10).await;
    assert_eq!((fail.total.requests, fail.total.successes), (10, 0));
    assert_eq!(fail.total.statuses[&503], 10);
    let slow = run("/slow", 2).await;
    assert_eq!(slow.total.errors.get(&ErrorKind::Timeout), Some(&2));
    let dropped = run("/drop", 4).await;
    assert_eq!(dropped.total.errors.get(&ErrorKind::Connection), Some(&4));
    // A port nobody listens on.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let refused = execute(plan(
        format!("http://{unused}/"),
        Mode::Closed { connections: 1 },
        Duration::from_secs(5),
        Some(3),
    ))
    .await;
    assert_eq!(refused.total.errors.get(&ErrorKind::Connect), Some(&3));
    task.abort();
}

#[test]
fn the_binary_checks_expectations_and_refuses_bad_flags() {
    let loadtest = env!("CARGO_BIN_EXE_loadtest");
    for (args, code, expected) in [
        (vec!["run", "ftp://x/"], 2, "expected http://HOST:PORT/PATH"),
        (
            vec!["run", "http://127.0.0.1:9/", "--ramp", "5s:1"],
            2,
            "first point must be at 0",
        ),
        (
            vec!["run", "http://127.0.0.1:9/", "--check", "p99<=soon"],
            2,
            "bad value",
        ),
        (
            vec!["run", "http://127.0.0.1:9/", "--rate", "0"],
            2,
            "must be a number > 0",
        ),
        (
            vec!["run", "http://127.0.0.1:9/", "-n", "2", "--check", "success>=50"],
            1,
            "FAILED",
        ),
    ] {
        let out = std::process::Command::new(loadtest).args(&args).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

//! A week of backtest, per shipped policy, against the reference of parsing
//! the week's trace (work every backtest does anyway), in the same run.
//! Target: a week's replay in under a second.
//!
//! `cargo bench -p loadtest --bench backtest -- [--check]`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use functions::policy::Policy;
use loadtest::backtest::{Model, run, run_with_full_history};
use loadtest::trace::Trace;

const TARGET: Duration = Duration::from_secs(1);

fn root(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Median time of `f` over `runs` runs, after one warm-up.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            black_box(f());
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let path = root("tests/fixtures/traces/lunch-peak-week.csv");
    let text = std::fs::read_to_string(&path).expect("trace");
    let trace = Trace::parse("lunch-peak-week.csv", &text).expect("trace");
    let model = Model {
        capacity_rps: 100.0,
        boot: Duration::from_secs(90),
        price_per_hour: 0.0416,
        ingestion_delay: functions::cloudwatch::INGESTION_DELAY,
        oracle_utilisation: loadtest::backtest::ORACLE_UTILISATION,
        warm_start: loadtest::backtest::WARM_START,
    };
    let parse = median(21, || Trace::parse("lunch-peak-week.csv", black_box(&text)));
    println!(
        "a week ({} minutes) of backtest per policy, median of 11; reference: parsing the trace {:.1} ms",
        trace.samples.len(),
        parse.as_secs_f64() * 1e3
    );
    let mut missed = false;
    for name in ["seed-step", "course-target-tracking", "recommended", "two-tier"] {
        let policy = Policy::load(&root(&format!("../policies/{name}.toml"))).expect("policy");
        let group = &policy.groups[0];
        let took = median(11, || run(black_box(&trace), group, model).expect("backtest"));
        // The same replay handing decide() the whole hour of metrics (the
        // reference of the fast path): the same report, and how much slower.
        let started = Instant::now();
        let reference = run_with_full_history(&trace, group, model).expect("backtest");
        let reference_took = started.elapsed();
        let same = reference == run(&trace, group, model).expect("backtest");
        let ok = took < TARGET && same;
        missed |= !ok;
        println!(
            "  {name:<24} {:>8.1} ms = {:>6.1} x parsing (whole-hour reference {:.1} ms, {}) target < {} ms: {}",
            took.as_secs_f64() * 1e3,
            took.as_secs_f64() / parse.as_secs_f64(),
            reference_took.as_secs_f64() * 1e3,
            if same { "same report" } else { "REPORTS DIFFER" },
            TARGET.as_millis(),
            if ok { "met" } else { "MISSED" }
        );
    }
    // Issue 23: a year of one-minute traffic through the recommended policy
    // (the recorded week, 52 times over, each a week later), once.
    let week = trace.samples.len() as i64;
    let year = Trace {
        samples: (0..52 * week)
            .map(|k| {
                let s = trace.samples[(k % week) as usize];
                loadtest::trace::Sample {
                    at: trace.samples[0].at + jiff::SignedDuration::from_mins(k),
                    rps: s.rps,
                }
            })
            .collect(),
    };
    let policy = Policy::load(&root("../policies/recommended.toml")).expect("policy");
    let started = Instant::now();
    let report = run(black_box(&year), &policy.groups[0], model).expect("backtest");
    let took = started.elapsed();
    println!(
        "a year ({} minutes) through recommended: {:.2} s = {:.1} x the week's parse x 52 ({} actions; target <= {} s: {})",
        year.samples.len(),
        took.as_secs_f64(),
        took.as_secs_f64() / (parse.as_secs_f64() * 52.0),
        report.scaling_actions,
        YEAR_TARGET.as_secs(),
        if took <= YEAR_TARGET { "met" } else { "MISSED" }
    );
    if check && missed {
        eprintln!("backtest bench: a week's replay took a second or more, or the fast path's report differed");
        std::process::exit(1);
    }
}

/// Issue 23's target for a year through the recommended policy (reported).
const YEAR_TARGET: Duration = Duration::from_secs(2);

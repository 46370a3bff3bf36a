//! Start-to-first-response of the release function binary under a local
//! Lambda Runtime API: spawn, init (policy, AWS clients), first invocation
//! answered. Reference in the same run: spawning and reaping `true`, the
//! operating system's floor for any process. Target: <= 5 ms.
//!
//! `cargo bench -p functions --bench cold_start -- [--check]`

#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runtime_api::{Answer, RuntimeApi, start_function};

const TARGET: Duration = Duration::from_millis(5);
const RUNS: usize = 15;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let policy = root.join("../policies/two-tier.toml").display().to_string();
    let event =
        std::fs::read_to_string(root.join("tests/fixtures/events/malformed/unrelated-event.json")).expect("event");

    let floor = median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                std::process::Command::new("true").status().expect("true");
                started.elapsed()
            })
            .collect(),
    );
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let mut api = RuntimeApi::start();
        // Queued before the start, so the first poll gets it at once.
        api.invoke(&event);
        let started = Instant::now();
        let mut child = start_function(env!("CARGO_BIN_EXE_scaler"), &api, &policy, &[]);
        let answer = api.answer(Duration::from_secs(10)).expect("answer");
        let _ = child.kill();
        let _ = child.wait();
        match answer {
            Answer::Response { at, .. } => samples.push(at - started),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let max = *samples.iter().max().expect("samples");
    let median = median(samples);
    let ok = median <= TARGET;
    println!(
        "scaler start to first response: median {:.2} ms, max {:.2} ms over {RUNS} starts ({:.1} x spawning `true`, {:.2} ms); target median <= {} ms {}",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        median.as_secs_f64() / floor.as_secs_f64(),
        floor.as_secs_f64() * 1e3,
        TARGET.as_millis(),
        if ok { "PASS" } else { "MISS" }
    );
    if check && !ok {
        std::process::exit(1);
    }
}

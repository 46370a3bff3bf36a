//! decide() time per trigger kind, against the reference of parsing the
//! event JSON that carries it (work every invocation does anyway), in the
//! same run. Target: each decide() <= 10 us.
//!
//! `cargo bench -p functions --bench decide -- [--check]`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use functions::decide::{Trigger, decide};
use functions::policy::Policy;
use functions::state::State;
use functions::trigger::{Parsed, Routed, parse_str};
use jiff::Timestamp;

const TARGET: Duration = Duration::from_micros(10);

fn root(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Mean time of `f` over about `budget`, after a warm-up.
fn time<T>(budget: Duration, mut f: impl FnMut() -> T) -> Duration {
    for _ in 0..100 {
        black_box(f());
    }
    let started = Instant::now();
    let mut runs = 0u32;
    while started.elapsed() < budget {
        for _ in 0..100 {
            black_box(f());
        }
        runs += 100;
    }
    started.elapsed() / runs
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let policy = Policy::load(&root("../policies/two-tier.toml")).expect("policy");
    let web = policy.group("web").expect("web");
    let state_text = std::fs::read_to_string(root("tests/fixtures/state/web-two-busy.json")).expect("state");
    let state = State::parse("state", &state_text).expect("state");
    let mut missed = false;
    println!("decide() per trigger (mean over ~1 s each), vs parsing the event JSON");
    for (name, file, now) in [
        (
            "alarm (step scaling)",
            "alarm-eventbridge-cpu-high.json",
            "2026-11-20T11:05:01Z",
        ),
        ("schedule", "schedule-lunch-scale-out.json", "2026-11-20T03:00:01Z"),
        (
            "tick (target tracking + alarm re-check)",
            "schedule-tick-target-tracking.json",
            "2026-11-20T11:07:00Z",
        ),
    ] {
        let text = std::fs::read_to_string(root(&format!("tests/fixtures/events/{file}"))).expect("event");
        let now: Timestamp = now.parse().expect("now");
        let trigger: Trigger = match parse_str(&text).expect("parse") {
            Parsed::Event(event) => match event.route(&policy, &state.alarms) {
                Routed::Decide { trigger, .. } => trigger,
                Routed::Ignored(reason) => panic!("{file}: {reason}"),
            },
            Parsed::Ignored(reason) => panic!("{file}: {reason}"),
        };
        let parse = time(Duration::from_millis(500), || parse_str(black_box(&text)));
        let decided = time(Duration::from_secs(1), || {
            decide(
                web,
                &state.observed,
                &state.metrics,
                &state.activities,
                black_box(&trigger),
                now,
            )
            .expect("decide")
        });
        let ok = decided <= TARGET;
        missed |= !ok;
        println!(
            "  {name:<42} {:>8.2} us  ({:.2} x parsing the event, {:.2} us)  target <= {} us {}",
            decided.as_secs_f64() * 1e6,
            decided.as_secs_f64() / parse.as_secs_f64(),
            parse.as_secs_f64() * 1e6,
            TARGET.as_micros(),
            if ok { "PASS" } else { "MISS" }
        );
    }
    if check && missed {
        std::process::exit(1);
    }
}

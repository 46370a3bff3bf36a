//! The `loadtest backtest` command as users run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn loadtest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run loadtest")
}

const CC: &str = "loadtest/tests/fixtures/traces/cc-attack-6h.csv";

#[test]
fn compares_side_by_side_and_writes_a_chart() {
    let chart = std::env::temp_dir().join(format!("loadtest-cli-{}.svg", std::process::id()));
    let out = loadtest(&[
        "backtest",
        "--trace",
        CC,
        "--policy",
        "policies/recommended.toml",
        "--compare",
        "fixed-peak,policies/seed-step.toml",
        "--chart",
        chart.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = stdout
        .lines()
        .find(|l| l.contains("fixed-peak"))
        .expect("comparison header");
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["recommended", "fixed-peak", "seed-step"]);
    let ratio_row = stdout
        .lines()
        .find(|l| l.starts_with("x fixed at peak"))
        .expect("ratio row");
    assert!(ratio_row.contains(" 1.000"), "{ratio_row}");
    assert!(stdout.contains("surge at 2026-11-16T00:50:00Z"), "{stdout}");
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    std::fs::remove_file(&chart).ok();
    // The load and one line per replay.
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert!(svg.contains("seed-step: instances"));
}

#[test]
fn json_with_compare_is_an_array_of_reports() {
    let out = loadtest(&[
        "backtest",
        "--trace",
        CC,
        "--policy",
        "policies/recommended.toml",
        "--compare",
        "fixed-peak",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let reports = reports.as_array().expect("array");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[1]["group"], "fixed-peak");
    assert_eq!(reports[1]["scaling_actions"], 0);
    assert_eq!(reports[0]["surges"].as_array().map(Vec::len), Some(3));
}

#[test]
fn bad_arguments_name_the_flag_and_change_nothing() {
    let chart = std::env::temp_dir().join(format!("loadtest-cli-bad-{}.svg", std::process::id()));
    for (args, expected) in [
        (vec!["--compare", "fixed-peak,nope.toml"], "--compare \"nope.toml\""),
        (vec!["--compare", "fixed-peak,,"], "--compare: empty entry"),
        (vec!["--group", "db"], "--group \"db\": the policy has web"),
        (vec!["--capacity-rps", "0"], "must be a number > 0"),
        // Shorter than CloudWatch's delay would replay more leniently than AWS.
        (
            vec!["--ingestion-delay", "1m"],
            "--ingestion-delay <INGESTION_DELAY>': 1m is out of range; allowed: 3m (CloudWatch's) to 1h",
        ),
        (vec!["--ingestion-delay", "soon"], "allowed: 3m (CloudWatch's) to 1h"),
    ] {
        let mut all = vec![
            "backtest",
            "--trace",
            CC,
            "--policy",
            "policies/recommended.toml",
            "--chart",
            chart.to_str().expect("utf-8 path"),
        ];
        all.extend(args.iter().copied());
        let out = loadtest(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!chart.exists(), "{args:?}: nothing is written on a refused command");
    }
    // Issue 25.8: input files are read up to a limit, named in the error.
    for (args, expected) in [
        (
            ["--trace", "/dev/zero", "--policy", "policies/recommended.toml"],
            "larger than 256 MiB",
        ),
        (["--trace", CC, "--policy", "/dev/zero"], "larger than 1 MiB"),
    ] {
        let out = loadtest(&[&["backtest"], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

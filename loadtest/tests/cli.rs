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

/// `loadtest ARGS` with AWS credentials and an endpoint nothing answers on.
fn against_no_aws(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
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
    // Issue 22: every column is judged against the same oracle (the
    // policy's): the fixed fleet costs most; the policy more than the
    // oracle; the seed's step policy less, as it leaves load unserved.
    let oracle_row = stdout.lines().find(|l| l.starts_with("x oracle")).expect("oracle row");
    let ratios: Vec<f64> = oracle_row
        .split_whitespace()
        .skip(2)
        .map(|v| v.parse().expect("a ratio"))
        .collect();
    assert_eq!(ratios.len(), 3, "{oracle_row}");
    assert!(ratios[1] > ratios[0] && ratios[0] > 1.0, "{oracle_row}");
    assert!(ratios[2] < 1.0, "{oracle_row}");
    assert!(stdout.contains("vs the oracle"), "{stdout}");
    assert!(stdout.contains("surge at 2026-11-16T00:50:00Z"), "{stdout}");
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    std::fs::remove_file(&chart).ok();
    // The load, the oracle and one line per replay.
    assert_eq!(svg.matches("<polyline").count(), 5);
    assert!(svg.contains("oracle at 70%: instances"));
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
    // Both judged against the policy's oracle: the same instance-hours.
    assert_eq!(reports[0]["oracle_instance_hours"], reports[1]["oracle_instance_hours"]);
    assert_eq!(reports[0]["model"]["oracle_utilisation"], 0.7);
    for report in reports {
        let ratio = report["ratio_to_oracle"].as_f64().expect("ratio_to_oracle");
        let hours = report["instance_hours"].as_f64().expect("hours");
        let oracle = report["oracle_instance_hours"].as_f64().expect("oracle hours");
        assert!((ratio - hours / oracle).abs() < 1e-9, "{report}");
    }
}

#[test]
fn the_oracle_utilisation_flag_moves_the_yardstick() {
    let oracle_hours = |utilisation: &str| {
        let out = loadtest(&[
            "backtest",
            "--trace",
            CC,
            "--policy",
            "policies/recommended.toml",
            "--oracle-utilisation",
            utilisation,
            "--json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        report["oracle_instance_hours"].as_f64().expect("hours")
    };
    // A fuller fleet needs fewer instances; "90" and "90%" are the same.
    assert!(oracle_hours("90%") < oracle_hours("70%"));
    assert_eq!(oracle_hours("90"), oracle_hours("90%"));
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
        (
            vec!["--oracle-utilisation", "0"],
            "--oracle-utilisation <ORACLE_UTILISATION>': \"0\": allowed: a percentage above 0 and at most 100",
        ),
        (
            vec!["--oracle-utilisation", "120%"],
            "allowed: a percentage above 0 and at most 100",
        ),
        (vec!["--warm-start", "2m"], "--warm-start 2m: at most --boot (1m 30s)"),
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

/// `loadtest trace`: bad flags name the flag and what is allowed; an
/// unreachable CloudWatch is named and leaves no file behind.
#[test]
fn trace_refuses_bad_flags_and_leaves_no_partial_file() {
    for (args, wanted) in [
        (&["trace", "--group", "web"][..], "--aws"),
        (
            &["trace", "--aws", "--group", "web", "--since", "20d"][..],
            "at most 15d (CloudWatch keeps one-minute datapoints 15 days)",
        ),
        (&["trace", "--aws", "--group", "web", "--since", "soon"][..], "--since"),
        (
            &["trace", "--aws", "--group", "web", "--until", "yesterday"][..],
            "--until",
        ),
    ] {
        let out = loadtest(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {wanted:?} not in {stderr}");
    }
    let file = std::env::temp_dir().join(format!("loadtest-trace-{}.csv", std::process::id()));
    let out = against_no_aws(&[
        "trace",
        "--aws",
        "--group",
        "web",
        "--target-group",
        "targetgroup/web/1",
        "--out",
        file.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("loadtest: ListMetrics:"), "{stderr}");
    assert!(!file.exists(), "no file when nothing was read");
}

/// `loadtest shadow`: bad flags name the flag; an unreachable CloudWatch
/// is named (exit 2), as is a `verify --shadow` with the schedule scenario.
#[test]
fn shadow_refuses_bad_flags_and_names_what_it_cannot_read() {
    for (args, wanted) in [
        (&["shadow", "--group", "web", "--stack", "s"][..], "--aws"),
        (&["shadow", "--aws", "--group", "web"][..], "--stack"),
        (
            &["shadow", "--aws", "--group", "web", "--stack", "s", "--since", "16d"][..],
            "at most 15d",
        ),
        (
            &[
                "shadow",
                "--aws",
                "--group",
                "web",
                "--stack",
                "s",
                "--capacity-rps",
                "0",
            ][..],
            "--capacity-rps",
        ),
        (
            &[
                "verify",
                "--scenario",
                "schedule",
                "--shadow",
                "policies/recommended.toml",
            ][..],
            "--shadow",
        ),
    ] {
        let out = loadtest(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {wanted:?} not in {stderr}");
    }
    let out = against_no_aws(&[
        "shadow",
        "--aws",
        "--group",
        "web",
        "--stack",
        "s",
        "--target-group",
        "targetgroup/web/1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("loadtest: ListMetrics:"), "{stderr}");
}

/// `loadtest trace --shape`: a synthetic trace the backtest reads back;
/// an unknown shape lists the allowed ones, and a shape cannot be mixed
/// with the flags that read AWS.
#[test]
fn trace_writes_a_synthetic_shape_the_backtest_replays() {
    for (args, wanted) in [
        (
            &["trace", "--shape", "sine"][..],
            "[possible values: square, ramp, two-peaks, holiday-week, holiday-month]",
        ),
        (&["trace", "--shape", "ramp", "--group", "web"][..], "--group"),
        (&["trace"][..], "--aws"),
    ] {
        let out = loadtest(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {wanted:?} not in {stderr}");
    }
    let file = std::env::temp_dir().join(format!("loadtest-shape-{}.csv", std::process::id()));
    let path = file.to_str().expect("utf-8 path");
    let out = loadtest(&["trace", "--shape", "square", "--out", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("shape square: 1440 minutes from 2026-11-16T00:00:00Z"),
        "{stderr}"
    );
    let out = loadtest(&[
        "backtest",
        "--trace",
        path,
        "--policy",
        "policies/office-hours.toml",
        "--json",
    ]);
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"minutes\": 1440") || stdout.contains("\"minutes\":1440"),
        "{stdout}"
    );
}

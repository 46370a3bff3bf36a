//! The end-to-end scenario, shortened (speed 120): the shipped two-tier
//! policy's web group grows from 2 to 10 under load, keeps serving when an
//! instance is killed, and shrinks back to 2 under residual load without a
//! failed request; the report, JSON and chart say so.

use std::time::Duration;

use loadtest::verify::{Settings, print_report, run_local};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_scales_out_survives_a_kill_and_scales_in() {
    let out = std::env::temp_dir().join(format!("loadtest-verify-{}", std::process::id()));
    let settings = Settings {
        policy_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/two-tier.toml"),
        group: Some("web".into()),
        speed: 120.0,
        cpu_limit: 0.1,
        n: 30,
        load_cores: 0.6,
        baseline: Duration::from_secs(60),
        scale_out_within: Duration::from_secs(20 * 60),
        hold: Duration::from_secs(4 * 60),
        scale_in_within: Duration::from_secs(40 * 60),
        boot: Duration::from_secs(90),
        kill_one: true,
        residual_load: 0.1,
        binaries: localcloud::binaries::for_tests(),
        out: out.clone(),
        live: false,
    };
    let mut log = Vec::new();
    let report = run_local(settings, &mut log).await.expect("verify ran");
    let mut text = String::from_utf8_lossy(&log).into_owned();
    let mut printed = Vec::new();
    print_report(&mut printed, &report).expect("print");
    text.push_str(&String::from_utf8_lossy(&printed));
    eprintln!("{text}");
    assert!(report.passed, "{text}");
    let names: Vec<&str> = report.assertions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    assert!(names.iter().any(|n| n.contains("killed instance is replaced")));
    // Out to 10 and back to 2, each change explained.
    assert_eq!(report.activities.iter().map(|a| a.to).max(), Some(10));
    assert_eq!(report.activities.last().map(|a| a.to), Some(2));
    assert!(
        report.activities.iter().all(|a| a.reason.is_some()),
        "{:#?}",
        report.activities
    );
    assert!(text.contains("scaling activities of group web"));
    assert!(text.contains("verify: PASSED"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("verify.json")).expect("verify.json")).expect("JSON");
    assert_eq!(json["passed"], true);
    let svg = std::fs::read_to_string(out.join("verify.svg")).expect("verify.svg");
    assert_eq!(
        svg.matches("<polyline").count(),
        6,
        "instances x2, CPU, requests, failures, p99"
    );
    std::fs::remove_dir_all(&out).ok();
}

//! The end-to-end scenario, shortened (speed 120): the shipped two-tier
//! policy's web group grows from 2 to 10 under load, keeps serving when an
//! instance is killed, and shrinks back to 2 under residual load without a
//! failed request; the report, JSON and chart say so. The schedule scenario
//! (the lunch-hour actions fire at their Shanghai times), and the same load
//! scenario watching a group through the AWS API (moto).

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use loadtest::verify::{AwsTarget, Local, Scenario, print_report, run_aws, run_local, run_schedule};

fn local(speed: f64) -> Local {
    Local {
        policy_file: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/two-tier.toml"),
        group: Some("web".into()),
        speed,
        cpu_limit: 0.1,
        // The tests run the debug build of the workload, where a served
        // /fibo/30 costs about 1.8x the CPU of the bare fibo(30) that
        // verify calibrates with (15 vs 8.2 ms here; 1.2x in release, the
        // default 0.6 is sized for that): 0.45 calibrated cores are about
        // 0.8 cores served, which needs the group's max 10 x 0.1 at the 50%
        // target and still fits in it.
        load_cores: 0.45,
        rate: None,
        boot: Duration::from_secs(90),
        binaries: localcloud::binaries::for_tests(),
        shadow: None,
    }
}

/// The report's text as the binary prints it, after the scenario's log.
fn text(log: &[u8], report: &loadtest::verify::Report) -> String {
    let mut text = String::from_utf8_lossy(log).into_owned();
    let mut printed = Vec::new();
    print_report(&mut printed, report).expect("print");
    text.push_str(&String::from_utf8_lossy(&printed));
    eprintln!("{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_scales_out_survives_a_kill_and_scales_in() {
    let out = std::env::temp_dir().join(format!("loadtest-verify-{}", std::process::id()));
    let scenario = Scenario {
        n: 30,
        baseline: Duration::from_secs(60),
        scale_out_within: Duration::from_secs(20 * 60),
        hold: Duration::from_secs(4 * 60),
        scale_in_within: Duration::from_secs(40 * 60),
        kill_one: true,
        replace_within: Duration::from_secs(10 * 60),
        // About 0.04 cores served: 13% of 3 instances, well under the 33%
        // at which target tracking takes 3 to 2 (0.1 sat at 28-35% with the
        // idle cost of health checks and metrics at speed 120: flaky).
        residual_load: 0.05,
        out: out.clone(),
        live: false,
    };
    let mut log = Vec::new();
    // With recommended.toml deciding in dry run beside it (shadow mode).
    let shadowed = Local {
        shadow: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/recommended.toml")),
        ..local(120.0)
    };
    let report = run_local(shadowed, scenario, &mut log).await.expect("verify ran");
    let text = text(&log, &report);
    assert!(report.passed, "{text}");
    // The shadow report: the dry-run function decided on every tick, and
    // the group's own changes are the report's.
    assert!(text.contains("shadow report of group web"), "{text}");
    let shadow: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("shadow.json")).expect("shadow.json")).expect("JSON");
    let decisions = shadow["dry_run_decisions"].as_u64().unwrap_or(0);
    let minutes = shadow["minutes"].as_u64().unwrap_or(0);
    assert!(minutes > 10 && decisions + 5 >= minutes, "{shadow:#}");
    assert_eq!(
        shadow["actual_changes"].as_array().map(Vec::len),
        Some(report.activities.len()),
        "{shadow:#}"
    );
    assert_eq!(shadow["actual"]["peak"], 10, "{shadow:#}");
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
    // The full load runs through the hold: no sample there (not even the
    // first, right after the load phase's last) shows a rate of 0.
    let hold: Vec<f64> = report
        .samples
        .iter()
        .filter(|s| s.phase == "hold")
        .map(|s| s.requests_per_second)
        .collect();
    assert!(!hold.is_empty() && hold.iter().all(|&rps| rps > 1.0), "{hold:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lunch_hour_schedule_fires_at_its_shanghai_times_and_the_group_follows() {
    let out = std::env::temp_dir().join(format!("loadtest-verify-schedule-{}", std::process::id()));
    let scenario = Scenario {
        n: 30,
        baseline: Duration::from_secs(120),
        scale_out_within: Duration::from_secs(20 * 60),
        hold: Duration::from_secs(5 * 60),
        scale_in_within: Duration::from_secs(40 * 60),
        kill_one: false,
        replace_within: Duration::from_secs(10 * 60),
        residual_load: 0.0,
        out: out.clone(),
        live: false,
    };
    let mut log = Vec::new();
    let report = run_schedule(local(240.0), scenario, &mut log)
        .await
        .expect("verify ran");
    let text = text(&log, &report);
    assert!(report.passed, "{text}");
    let names: Vec<&str> = report.assertions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(
        names[1].contains("web-lunch-scale-out (min 4) at 11:00 Asia/Shanghai"),
        "{names:?}"
    );
    assert!(
        names[3].contains("web-lunch-scale-in (min 2) at 13:00 Asia/Shanghai"),
        "{names:?}"
    );
    // 2 -> 4 by the schedule at 11:00 Shanghai (03:00 UTC), back to 2 after 13:00.
    let up = report.activities.iter().find(|a| a.to == 4).expect("a change to 4");
    assert_eq!((up.from, up.to), (2, 4));
    assert!(up.cause.contains("web-lunch-scale-out"), "{}", up.cause);
    let zone = functions::schedule::time_zone("Asia/Shanghai").expect("zone");
    let local_start = up.start.to_zoned_datetime(zone.clone());
    assert_eq!((local_start.hour(), local_start.minute()), (11, 0), "{}", up.start);
    let last = report.activities.last().expect("activities");
    assert_eq!(last.to, 2);
    assert!(last.start.to_zoned_datetime(zone).hour() >= 13, "{}", last.start);
    assert!(text.contains("verify: PASSED"));
    std::fs::remove_dir_all(&out).ok();
}

/// The load scenario watching a group through the Auto Scaling API (moto):
/// a stand-in autoscaler in the test sets desired capacity from the request
/// rate it sees, verify observes the changes, terminates one instance and
/// sees its replacement, and reads the activity table from AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_watches_a_group_through_the_aws_api() {
    let Some(moto) = functions::contract::start_moto() else {
        return;
    };
    moto.create_group("web", 2, 4, 2).await;
    let (addr, served, server) = support::server().await;
    let groups = functions::aws::AwsGroups::new(moto.autoscaling());
    let scaler = tokio::spawn(async move {
        use functions::ports::GroupPort;
        // Each second: 4 instances while more than 50 req/s arrive, else 2.
        let mut last = served.load(Ordering::Relaxed);
        let mut desired = 2;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = served.load(Ordering::Relaxed);
            let wanted = if now - last > 50 { 4 } else { 2 };
            last = now;
            if wanted != desired {
                groups
                    .set_desired("web", wanted, &format!("test scaler: {desired} -> {wanted}"))
                    .await
                    .expect("set desired");
                desired = wanted;
            }
        }
    });
    let out = std::env::temp_dir().join(format!("loadtest-verify-aws-{}", std::process::id()));
    let scenario = Scenario {
        n: 10,
        baseline: Duration::from_secs(2),
        scale_out_within: Duration::from_secs(20),
        hold: Duration::from_secs(8),
        scale_in_within: Duration::from_secs(20),
        kill_one: true,
        replace_within: Duration::from_secs(10 * 60),
        residual_load: 0.05,
        out: out.clone(),
        live: true,
    };
    let target = AwsTarget::new(
        functions::aws::AwsGroups::new(moto.autoscaling()),
        functions::aws::AwsMetrics::new(moto.cloudwatch(), Default::default()),
        "web",
    )
    .poll_every(Duration::from_millis(500));
    let mut log = Vec::new();
    let report = run_aws(target, &format!("http://{addr}"), 200.0, scenario, &mut log)
        .await
        .expect("verify ran");
    scaler.abort();
    server.abort();
    let text = text(&log, &report);
    assert!(report.passed, "{text}");
    assert_eq!(report.target, "aws");
    assert_eq!((report.min, report.max), (2, 4));
    let names: Vec<&str> = report.assertions.iter().map(|a| a.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.contains("killed instance is replaced")),
        "{names:?}"
    );
    // The activity history as AWS keeps it: moto records no scaling
    // activities, so only the last decision's cause (the group tag) shows.
    let last = report.activities.last().expect("an activity");
    assert_eq!((last.from, last.to), (4, 2), "{:#?}", report.activities);
    assert_eq!(last.cause, "test scaler: 4 -> 2");
    assert!(text.contains("AWS: group web (2..4 instances, desired 2)"), "{text}");
    assert!(text.contains("terminate (desired kept)"), "{text}");
    // moto does not speak the CloudWatch SDK's protocol: CPU is shown as unknown.
    assert!(report.samples.iter().all(|s| s.cpu_percent.is_none()));
    std::fs::remove_dir_all(&out).ok();
}

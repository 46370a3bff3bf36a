//! The CloudWatch adapter against recorded rpcv2Cbor answers (moto does not
//! speak the protocol the current SDK uses): requests are checked, answers
//! are CBOR documents shaped as CloudWatch sends them.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_cbor::Encoder;
use aws_smithy_types::DateTime;
use functions::aws::AwsMetrics;
use functions::decide::AlarmState;
use functions::policy::Policy;
use functions::ports::MetricsPort;
use jiff::Timestamp;

/// GetMetricData: two datapoints per query id, values `base + index`.
fn metric_data(ids: &[String], base: f64) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    e.map(1).str("MetricDataResults").array(ids.len());
    for (index, id) in ids.iter().enumerate() {
        e.map(4).str("Id").str(id).str("StatusCode").str("Complete");
        e.str("Timestamps")
            .array(2)
            .timestamp(&DateTime::from_secs(1_763_636_640))
            .timestamp(&DateTime::from_secs(1_763_636_580));
        e.str("Values").array(2).double(base + index as f64).double(base - 10.0);
    }
    e.into_writer()
}

fn describe_alarms() -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    e.map(1).str("MetricAlarms").array(1).map(4);
    e.str("AlarmName").str("web-cpu-high");
    e.str("StateValue").str("ALARM");
    e.str("StateTransitionedTimestamp")
        .timestamp(&DateTime::from_secs(1_763_636_700));
    e.str("StateReasonData").str(r#"{"version":"1.0","recentDatapoints":[84.2,88.0,91.5],"evaluatedDatapoints":[{"timestamp":"2026-11-20T11:00:00.000+0000","value":91.5},{"timestamp":"2026-11-20T10:55:00.000+0000","value":88.0}]}"#);
    e.into_writer()
}

/// Pulls the query ids out of a GetMetricData request body (CBOR text strings "m0", "m1", ...).
fn query_ids(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut ids: Vec<String> = (0..10)
        .map(|i| format!("m{i}"))
        .filter(|id| text.contains(id.as_str()))
        .collect();
    for extra in ["l0", "r0"] {
        if text.contains(extra) {
            ids.push(extra.into());
        }
    }
    ids
}

fn client(seen: Arc<Mutex<Vec<String>>>) -> aws_sdk_cloudwatch::Client {
    support::recorded_cloudwatch(move |path, body| {
        seen.lock().expect("seen").push(path.to_string());
        if path.ends_with("/operation/GetMetricData") {
            Some(metric_data(&query_ids(body), 91.0))
        } else if path.ends_with("/operation/DescribeAlarms") {
            Some(describe_alarms())
        } else {
            None
        }
    })
}

#[tokio::test]
async fn reads_per_instance_cpu_latest_values_and_alarm_states() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let metrics = AwsMetrics::new(client(Arc::clone(&seen)), Default::default());
    // The two-tier web, tracking CPU (the shipped one tracks cpu_demand, below).
    let mut web = support::two_tier_group("web");
    web.target_tracking[0].metric =
        functions::policy::TrackedMetric::Predefined(functions::policy::PredefinedMetric::Cpu);
    let web = &web;
    let until: Timestamp = "2026-11-20T11:05:00Z".parse().expect("until");
    let since: Timestamp = "2026-11-20T10:05:00Z".parse().expect("since");

    let history = metrics
        .history(web, &["i-a".into(), "i-b".into()], since, until)
        .await
        .expect("history");
    let cpu: &BTreeMap<String, Vec<functions::decide::Datapoint>> = history.metrics.get("cpu").expect("cpu");
    assert_eq!(cpu.len(), 2);
    // Sorted oldest first; each instance its own query.
    assert_eq!(cpu["i-a"].iter().map(|d| d.value).collect::<Vec<_>>(), [81.0, 91.0]);
    assert_eq!(cpu["i-b"].last().expect("point").value, 92.0);
    assert_eq!(cpu["i-a"].last().expect("point").at.as_second(), 1_763_636_640);

    let high = web.alarm_policy("web-cpu-high").expect("alarm");
    assert_eq!(metrics.latest(&high.metric, until).await.expect("latest"), Some(91.0));

    let states = metrics.alarm_states(&["web-cpu-high".into()]).await.expect("alarms");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].state, AlarmState::Alarm);
    assert_eq!(states[0].value, Some(91.5), "the newest evaluated datapoint");
    assert_eq!(states[0].state_since.as_second(), 1_763_636_700);
    assert!(metrics.alarm_states(&[]).await.expect("none").is_empty());

    let seen = seen.lock().expect("seen");
    assert!(
        seen.iter()
            .all(|p| p.starts_with("/service/GraniteServiceVersion20100801/operation/")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn request_count_per_target_needs_the_groups_own_target_group() {
    let policy = Policy::parse("t.toml", "[[group]]\nname = \"g\"\nmin = 1\nmax = 3\n[[group.target_tracking]]\nmetric = \"request_count_per_target\"\ntarget = 100\n").expect("policy");
    let now = Timestamp::now();
    // Another group's target group is not this group's (issue 18: every
    // function read the first group's).
    let others = functions::aws::parse_target_groups("web=targetgroup/web/0123").expect("pairs");
    let metrics = AwsMetrics::new(client(Arc::new(Mutex::new(Vec::new()))), others);
    let error = metrics
        .history(&policy.groups[0], &["i-a".into()], now, now)
        .await
        .expect_err("no target group");
    assert!(
        error
            .to_string()
            .contains("request_count_per_target of group g needs its target group in SCALER_TARGET_GROUPS"),
        "{error}"
    );
    let own = functions::aws::parse_target_groups("web=targetgroup/web/0123, g=targetgroup/g/4567").expect("pairs");
    assert_eq!(own["g"], "targetgroup/g/4567");
    let metrics = AwsMetrics::new(client(Arc::new(Mutex::new(Vec::new()))), own);
    let history = metrics
        .history(&policy.groups[0], &["i-a".into(), "i-b".into()], now, now)
        .await
        .expect("history");
    let per_target = &history.metrics["request_count_per_target"];
    assert_eq!(
        per_target["i-a"], per_target["i-b"],
        "one group-level figure for every target"
    );
}

/// `SCALER_TARGET_GROUPS`: pairs checked at start against the policy file,
/// each refusal naming the variable, the value and the expected form.
#[test]
fn target_groups_are_checked_against_the_policy_at_start() {
    let policy = Policy::parse(
        "t.toml",
        "[[group]]\nname = \"web\"\nmin = 1\nmax = 3\n[[group.target_tracking]]\nmetric = \"request_count_per_target\"\ntarget = 100\n[[group]]\nname = \"session\"\nmin = 1\nmax = 3\n",
    )
    .expect("policy");
    let ok = functions::lambda::target_groups(&policy, Some("web=targetgroup/web/1,session=targetgroup/session/2"))
        .expect("both");
    assert_eq!(ok.len(), 2);
    for (value, problem) in [
        (
            None,
            "group web tracks request_count_per_target and has no target group here",
        ),
        (
            Some("session=targetgroup/session/2"),
            "group web tracks request_count_per_target",
        ),
        (
            Some("web=targetgroup/web/1,api=targetgroup/api/3"),
            "api is not a group of the policy file (groups: web, session)",
        ),
        (Some("web"), "\"web\" is not GROUP=targetgroup/NAME/ID"),
        (
            Some("web=arn:aws:elasticloadbalancing:x"),
            "is not GROUP=targetgroup/NAME/ID",
        ),
        (
            Some("web=targetgroup/web/1,web=targetgroup/web/2"),
            "group web is named twice",
        ),
    ] {
        let error = functions::lambda::target_groups(&policy, value).expect_err("refused");
        let text = error.to_string();
        assert!(
            text.starts_with("SCALER_TARGET_GROUPS=")
                && text.contains(problem)
                && text.contains("expected GROUP=targetgroup/NAME/ID"),
            "{value:?}: {text}"
        );
    }
}

/// `cpu_demand` on AWS: each instance's CPUUtilization and the group's own
/// load balancer's RequestCount and HTTPCode_Target_5XX_Count (dimension
/// `LoadBalancer`, Sum: "CloudWatch metrics for your Application Load
/// Balancer"), in one GetMetricData call, combined by the core's
/// `tracking::cpu_demand` (the same function the local cloud uses).
#[tokio::test]
async fn cpu_demand_reads_cpu_and_the_groups_load_balancer_counts() {
    let policy = Policy::parse(
        "t.toml",
        "[[group]]\nname = \"g\"\nmin = 1\nmax = 3\n[[group.target_tracking]]\nmetric = \"cpu_demand\"\ntarget = 50\n",
    )
    .expect("policy");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let client = support::recorded_cloudwatch(move |path, body| {
        seen.lock()
            .expect("seen")
            .push(String::from_utf8_lossy(body).into_owned());
        path.ends_with("/operation/GetMetricData").then(|| {
            support::metric_data_answer(&[
                ("m0", &[(1_763_636_580, 50.0), (1_763_636_640, 100.0)]),
                ("m1", &[(1_763_636_640, 90.0)]),
                ("requests", &[(1_763_636_580, 1000.0), (1_763_636_640, 6000.0)]),
                // Published only in a minute with a nonzero count.
                ("shed", &[(1_763_636_640, 4500.0)]),
            ])
        })
    });
    let now = Timestamp::now();
    let without = AwsMetrics::new(client.clone(), Default::default());
    let error = without
        .history(&policy.groups[0], &["i-a".into()], now, now)
        .await
        .expect_err("no load balancer");
    assert!(
        error
            .to_string()
            .contains("cpu_demand of group g needs its load balancer in SCALER_LOAD_BALANCERS"),
        "{error}"
    );
    let balancers = functions::aws::parse_load_balancers("g=app/g-lb/50dc6c495c0c9188").expect("pairs");
    let metrics = AwsMetrics::new(client, Default::default()).with_load_balancers(balancers);
    let history = metrics
        .history(&policy.groups[0], &["i-a".into(), "i-b".into()], now, now)
        .await
        .expect("history");
    let demand = &history.metrics["cpu_demand"];
    let values = |id: &str| demand[id].iter().map(|d| d.value).collect::<Vec<_>>();
    assert_eq!(values("i-a"), [50.0, 400.0], "x1 (none shed), then x4 (3 of 4 shed)");
    assert_eq!(values("i-b"), [360.0]);
    let bodies = bodies.lock().expect("bodies");
    let request = bodies.last().expect("one call");
    for part in [
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "LoadBalancer",
        "app/g-lb/50dc6c495c0c9188",
        "Sum",
    ] {
        assert!(request.contains(part), "{part} not in the GetMetricData request");
    }
}

/// `SCALER_LOAD_BALANCERS`: checked at start like `SCALER_TARGET_GROUPS`.
#[test]
fn load_balancers_are_checked_against_the_policy_at_start() {
    let policy = Policy::parse(
        "t.toml",
        "[[group]]\nname = \"web\"\nmin = 1\nmax = 3\n[[group.target_tracking]]\nmetric = \"cpu_demand\"\ntarget = 50\n[[group]]\nname = \"session\"\nmin = 1\nmax = 3\n",
    )
    .expect("policy");
    let ok = functions::lambda::load_balancers(&policy, Some("web=app/web/1")).expect("web");
    assert_eq!(ok["web"], "app/web/1");
    for (value, problem) in [
        (None, "group web tracks cpu_demand and has no load balancer here"),
        (
            Some("web=app/web/1,api=app/api/3"),
            "api is not a group of the policy file (groups: web, session)",
        ),
        (
            Some("web=targetgroup/web/1"),
            "\"web=targetgroup/web/1\" is not GROUP=app/NAME/ID",
        ),
        (Some("web=app/web/1,web=app/web/2"), "group web is named twice"),
    ] {
        let text = functions::lambda::load_balancers(&policy, value)
            .expect_err("refused")
            .to_string();
        assert!(
            text.starts_with("SCALER_LOAD_BALANCERS=")
                && text.contains(problem)
                && text.contains("expected GROUP=app/NAME/ID"),
            "{value:?}: {text}"
        );
    }
}

/// Predictive scaling's load through GetMetricData: hourly (Period 3600)
/// Sums of the group's CPU by AutoScalingGroupName and of its load
/// balancer's RequestCount and HTTPCode_Target_5XX_Count by LoadBalancer,
/// made into the mean per-minute load by `predictive::hourly_load`.
#[tokio::test]
async fn predictive_load_reads_hourly_sums_by_group_and_load_balancer() {
    let policy = Policy::parse(
        "t.toml",
        "[[group]]\nname = \"g\"\nmin = 1\nmax = 3\n[group.predictive]\nmetric = \"cpu_demand\"\ntarget = 50\n",
    )
    .expect("policy");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let client = support::recorded_cloudwatch(move |path, body| {
        seen.lock().expect("seen").push(body.to_vec());
        path.ends_with("/operation/GetMetricData").then(|| {
            support::metric_data_answer(&[
                // Two hours: 6000 = 100% total CPU a minute, then 300%.
                ("cpu", &[(1_763_632_800, 6000.0), (1_763_636_400, 18_000.0)]),
                ("requests", &[(1_763_632_800, 60_000.0), (1_763_636_400, 240_000.0)]),
                ("shed", &[(1_763_636_400, 120_000.0)]),
            ])
        })
    });
    let now = Timestamp::now();
    let metric = &policy.groups[0].predictive.as_ref().expect("predictive").metric;
    let without = AwsMetrics::new(client.clone(), Default::default());
    let error = without
        .load(&policy.groups[0], metric, now, now)
        .await
        .expect_err("no load balancer");
    assert!(error.to_string().contains("needs SCALER_LOAD_BALANCERS"), "{error}");
    let balancers = functions::aws::parse_load_balancers("g=app/g-lb/50dc6c495c0c9188").expect("pairs");
    let metrics = AwsMetrics::new(client, Default::default()).with_load_balancers(balancers);
    let load = metrics.load(&policy.groups[0], metric, now, now).await.expect("load");
    let values: Vec<f64> = load.iter().map(|d| d.value).collect();
    assert_eq!(values, [100.0, 600.0], "300% x 2 (half shed) in the second hour");
    let bodies = bodies.lock().expect("bodies");
    let request = bodies.last().expect("one call");
    let text = String::from_utf8_lossy(request);
    for part in [
        "AutoScalingGroupName",
        "CPUUtilization",
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "app/g-lb/50dc6c495c0c9188",
        "Sum",
        "Period",
    ] {
        assert!(text.contains(part), "{part} not in the GetMetricData request");
    }
    // Period 3600 as CBOR encodes it (0x19: a two-byte unsigned integer).
    assert!(
        request.windows(3).any(|w| w == [0x19, 0x0e, 0x10]),
        "no period of 3600 s"
    );
}

//! The CloudWatch adapter against recorded rpcv2Cbor answers (moto does not
//! speak the protocol the current SDK uses): requests are checked, answers
//! are CBOR documents shaped as CloudWatch sends them.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_cbor::Encoder;
use aws_smithy_types::DateTime;
use functions::aws::AwsMetrics;
use functions::decide::AlarmState;
use functions::policy::Policy;
use functions::ports::MetricsPort;
use jiff::Timestamp;

fn cbor_response(body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("content-type", "application/cbor")
        .body(body)
        .expect("response")
}

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
    let http = aws_smithy_http_client::test_util::infallible_client_fn(
        move |request: http::Request<aws_smithy_types::body::SdkBody>| {
            let path = request.uri().path().to_string();
            seen.lock().expect("seen").push(path.clone());
            let body = request.body().bytes().unwrap_or_default().to_vec();
            if path.ends_with("/operation/GetMetricData") {
                cbor_response(metric_data(&query_ids(&body), 91.0))
            } else if path.ends_with("/operation/DescribeAlarms") {
                cbor_response(describe_alarms())
            } else {
                http::Response::builder()
                    .status(400)
                    .body(Vec::new())
                    .expect("response")
            }
        },
    );
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "recorded"))
        .http_client(http)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

#[tokio::test]
async fn reads_per_instance_cpu_latest_values_and_alarm_states() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let metrics = AwsMetrics::new(client(Arc::clone(&seen)), None);
    let web = &support::two_tier_group("web");
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
async fn request_count_per_target_needs_the_target_group() {
    let metrics = AwsMetrics::new(client(Arc::new(Mutex::new(Vec::new()))), None);
    let policy = Policy::parse("t.toml", "[[group]]\nname = \"g\"\nmin = 1\nmax = 3\n[[group.target_tracking]]\nmetric = \"request_count_per_target\"\ntarget = 100\n").expect("policy");
    let now = Timestamp::now();
    let error = metrics
        .history(&policy.groups[0], &["i-a".into()], now, now)
        .await
        .expect_err("no target group");
    assert!(error.to_string().contains("SCALER_TARGET_GROUP"), "{error}");
    let metrics = AwsMetrics::new(
        client(Arc::new(Mutex::new(Vec::new()))),
        Some("targetgroup/web/0123".into()),
    );
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

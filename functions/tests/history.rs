//! `functions::history` (what `loadtest trace --aws` reads) against
//! recorded rpcv2Cbor answers: moto does not speak the protocol the
//! CloudWatch SDK uses (ListMetrics, GetMetricData).

mod support;

use std::sync::{Arc, Mutex};

use aws_smithy_cbor::Encoder;
use jiff::Timestamp;

const TG: &str = "targetgroup/web-tg/0123456789abcdef";
const LB: &str = "app/web-lb/50dc6c495c0c9188";

fn list_metrics(with_load_balancer: bool) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    e.map(1).str("Metrics").array(usize::from(with_load_balancer));
    if with_load_balancer {
        e.map(3)
            .str("Namespace")
            .str("AWS/ApplicationELB")
            .str("MetricName")
            .str("RequestCount");
        e.str("Dimensions").array(2);
        e.map(2).str("Name").str("TargetGroup").str("Value").str(TG);
        e.map(2).str("Name").str("LoadBalancer").str("Value").str(LB);
    }
    e.into_writer()
}

/// An Auto Scaling client that must not be called (the target group is given).
fn unused_autoscaling() -> aws_sdk_autoscaling::Client {
    use aws_sdk_autoscaling::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_autoscaling::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    aws_sdk_autoscaling::Client::from_conf(config)
}

const T0: i64 = 1_765_000_800;

#[tokio::test]
async fn a_groups_history_is_its_target_groups_requests_with_the_load_balancer_listmetrics_names() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let cloudwatch = support::recorded_cloudwatch(move |path, body| {
        seen.lock()
            .expect("bodies")
            .push((path.to_string(), String::from_utf8_lossy(body).into_owned()));
        if path.ends_with("/operation/ListMetrics") {
            Some(list_metrics(true))
        } else if path.ends_with("/operation/GetMetricData") {
            Some(support::metric_data_answer(&[
                ("requests", &[(T0, 6000.0), (T0 + 120, 9000.0)]),
                ("cpu", &[(T0, 50.0), (T0 + 60, 3.0), (T0 + 120, 50.0)]),
                ("inservice", &[(T0, 2.0), (T0 + 60, 2.0), (T0 + 120, 2.0)]),
            ]))
        } else {
            None
        }
    });
    let since = Timestamp::from_second(T0).expect("since");
    let until = Timestamp::from_second(T0 + 180).expect("until");
    let history = functions::history::read(&unused_autoscaling(), &cloudwatch, "web", Some(TG), since, until)
        .await
        .expect("history");
    assert_eq!(
        (history.target_group.as_str(), history.load_balancer.as_str()),
        (TG, LB)
    );
    let values = |points: &[functions::decide::Datapoint]| points.iter().map(|d| d.value).collect::<Vec<_>>();
    assert_eq!(values(&history.requests), [6000.0, 9000.0]);
    assert_eq!(values(&history.cpu), [50.0, 3.0, 50.0]);
    assert_eq!(history.in_service.len(), 3);
    assert_eq!(history.requests[0].at.as_second(), T0, "oldest first");
    let bodies = bodies.lock().expect("bodies");
    let (_, data) = bodies
        .iter()
        .find(|(path, _)| path.ends_with("GetMetricData"))
        .expect("GetMetricData called");
    for part in [
        "RequestCount",
        TG,
        LB,
        "CPUUtilization",
        "GroupInServiceInstances",
        "AutoScalingGroupName",
        "Sum",
        "Average",
    ] {
        assert!(data.contains(part), "{part} not in the GetMetricData request");
    }
}

#[tokio::test]
async fn what_cannot_be_read_is_named() {
    let cloudwatch =
        support::recorded_cloudwatch(|path, _| path.ends_with("/operation/ListMetrics").then(|| list_metrics(false)));
    let until = Timestamp::from_second(T0).expect("until");
    let day = jiff::SignedDuration::from_hours(24);
    let autoscaling = unused_autoscaling();
    let read = |since: Timestamp, until: Timestamp| {
        functions::history::read(&autoscaling, &cloudwatch, "web", Some(TG), since, until)
    };
    let error = read(until - day, until).await.expect_err("no metric");
    assert!(
        error.contains("CloudWatch has no RequestCount of target group targetgroup/web-tg/"),
        "{error}"
    );
    let error = read(until - day * 16, until).await.expect_err("too long");
    assert!(error.contains("more than 15 days"), "{error}");
    let error = read(until, until).await.expect_err("empty");
    assert!(error.contains("is not before"), "{error}");
}

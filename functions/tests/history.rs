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

/// `loadtest shadow --aws`: the group's desired capacity and the dry-run
/// function's embedded-metric-format series (`functions::emf`) by Group in
/// the stack's namespace.
#[tokio::test]
async fn the_shadow_reads_desired_capacity_and_the_dry_run_decisions_of_the_stacks_namespace() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let cloudwatch = support::recorded_cloudwatch(move |path, body| {
        seen.lock()
            .expect("bodies")
            .push(String::from_utf8_lossy(body).into_owned());
        path.ends_with("/operation/GetMetricData").then(|| {
            support::metric_data_answer(&[
                ("desired", &[(T0, 2.0), (T0 + 60, 4.0)]),
                ("recommended", &[(T0, 5.0)]),
                ("before", &[(T0, 2.0)]),
                ("decisions", &[(T0, 1.0)]),
            ])
        })
    });
    let since = Timestamp::from_second(T0).expect("since");
    let until = Timestamp::from_second(T0 + 120).expect("until");
    let shadow = functions::history::read_shadow(&cloudwatch, "web", "Autoscaler/shadow-stack", since, until)
        .await
        .expect("shadow");
    let values = |points: &[functions::decide::Datapoint]| points.iter().map(|d| d.value).collect::<Vec<_>>();
    assert_eq!(values(&shadow.desired), [2.0, 4.0]);
    assert_eq!(values(&shadow.recommended), [5.0]);
    assert_eq!(values(&shadow.before), [2.0]);
    let query = bodies.lock().expect("bodies").join("");
    for needle in [
        "Autoscaler/shadow-stack",
        "RecommendedCapacity",
        "CapacityBefore",
        "GroupDesiredCapacity",
        "Group",
    ] {
        assert!(query.contains(needle), "{needle} not asked for");
    }
    // No decision recorded: the error says how to get some.
    let empty = support::recorded_cloudwatch(|path, _| {
        path.ends_with("/operation/GetMetricData")
            .then(|| support::metric_data_answer(&[("desired", &[(T0, 2.0)])]))
    });
    let error = functions::history::read_shadow(&empty, "web", "Autoscaler/shadow-stack", since, until)
        .await
        .expect_err("no decisions");
    assert!(
        error.contains("no RecommendedCapacity by Group=web in namespace Autoscaler/shadow-stack")
            && error.contains("DryRun=true"),
        "{error}"
    );
}

/// An Auto Scaling client answered by `answer(request body)` with awsQuery XML.
fn recorded_autoscaling(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> aws_sdk_autoscaling::Client {
    use aws_sdk_autoscaling::config::{BehaviorVersion, Credentials, Region};
    let http = aws_smithy_http_client::test_util::infallible_client_fn(
        move |request: http::Request<aws_smithy_types::body::SdkBody>| {
            let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            http::Response::builder()
                .status(200)
                .header("content-type", "text/xml")
                .body(answer(&body))
                .expect("response")
        },
    );
    let config = aws_sdk_autoscaling::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "recorded"))
        .http_client(http)
        .build();
    aws_sdk_autoscaling::Client::from_conf(config)
}

fn activities_page(activities: &[(i64, &str)], next: Option<&str>) -> String {
    let members: String = activities
        .iter()
        .enumerate()
        .map(|(k, (at, cause))| {
            let start = Timestamp::from_second(*at).expect("start");
            format!(
                "<member><ActivityId>a{k}-{at}</ActivityId><AutoScalingGroupName>web</AutoScalingGroupName><Cause>{cause}</Cause><StartTime>{start}</StartTime><StatusCode>Successful</StatusCode><Progress>100</Progress></member>"
            )
        })
        .collect();
    let token = next.map(|t| format!("<NextToken>{t}</NextToken>")).unwrap_or_default();
    format!(
        r#"<DescribeScalingActivitiesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeScalingActivitiesResult><Activities>{members}</Activities>{token}</DescribeScalingActivitiesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>"#
    )
}

/// DescribeScalingActivities answers newest first, 100 a page: the pages are
/// read until one reaches before the window, and the window's activities
/// come back oldest first.
#[tokio::test]
async fn the_groups_activities_are_read_page_by_page_until_before_the_window() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let autoscaling = recorded_autoscaling(move |body| {
        seen.lock().expect("calls").push(body.to_string());
        if body.contains("NextToken=page2") {
            activities_page(&[(T0 + 60, "second"), (T0 - 60, "before the window")], Some("page3"))
        } else {
            activities_page(&[(T0 + 600, "after the window"), (T0 + 120, "third")], Some("page2"))
        }
    });
    let since = Timestamp::from_second(T0).expect("since");
    let until = Timestamp::from_second(T0 + 300).expect("until");
    let found = functions::history::read_activities(&autoscaling, "web", since, until)
        .await
        .expect("activities");
    let causes: Vec<&str> = found.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(causes, ["second", "third"]);
    assert_eq!(calls.lock().expect("calls").len(), 2, "page 3 is not asked for");
}

/// `scalectl import --parameters`: the adopt template's parameters of each
/// group, its target group from the group and its load balancer the way
/// `trace --aws` finds it; what cannot be found is named and left empty.
#[tokio::test]
async fn the_adopt_parameters_name_each_groups_target_group_and_load_balancer() {
    let cloudwatch = support::recorded_cloudwatch(|path, body| {
        let body = String::from_utf8_lossy(body);
        (path.ends_with("/operation/ListMetrics")).then(|| list_metrics(body.contains("web-tg")))
    });
    let group = |name: &str| functions::policy_import::SourceGroup {
        name: name.into(),
        ..Default::default()
    };
    let mut read = functions::import::Read {
        groups: vec![group("web"), group("api")],
        ..Default::default()
    };
    read.target_groups.insert(
        "web".into(),
        vec!["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/0123456789abcdef".into()],
    );
    read.target_groups.insert("api".into(), Vec::new());
    let (parameters, unreadable) = functions::import::adopt_parameters(&cloudwatch, &read).await;
    assert_eq!(
        parameters,
        serde_json::json!([
            { "ParameterKey": "WebTargetGroup", "ParameterValue": TG },
            { "ParameterKey": "WebLoadBalancer", "ParameterValue": LB },
            { "ParameterKey": "ApiTargetGroup", "ParameterValue": "" },
            { "ParameterKey": "ApiLoadBalancer", "ParameterValue": "" }
        ])
    );
    let parts: Vec<&str> = unreadable.iter().map(|u| u.part.as_str()).collect();
    assert_eq!(
        parts,
        [
            "parameter ApiTargetGroup of group api",
            "parameter ApiLoadBalancer of group api"
        ]
    );
    assert!(
        unreadable[0].error.contains("group api has no target group"),
        "{:?}",
        unreadable[0]
    );
}

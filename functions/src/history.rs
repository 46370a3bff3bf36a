//! `loadtest trace --aws`: a group's recorded history from CloudWatch
//! through the SDK (credentials, region and `AWS_ENDPOINT_URL` from the
//! standard environment): its load balancer's requests a minute, its CPU
//! and its instances in service, one-minute datapoints, so the backtest can
//! replay the operator's own traffic with the operator's own capacity.
//!
//! Which series: `AWS/ApplicationELB RequestCount` (Sum) by `TargetGroup`
//! and `LoadBalancer` (the ALB publishes request counts of a target group
//! only with its load balancer beside it: found through ListMetrics),
//! `AWS/EC2 CPUUtilization` (Average) and `AWS/AutoScaling
//! GroupInServiceInstances` (Average; only when the group's metrics
//! collection is on, as the template turns it on) by
//! `AutoScalingGroupName`. CloudWatch keeps one-minute datapoints for 15
//! days ("Metrics concepts", retention), so no more is asked.

use jiff::{SignedDuration, Timestamp};

use crate::aws::{AwsMetrics, aws_smithy_error_chain, cw_metric};
use crate::decide::Datapoint;

/// How far back one-minute datapoints exist (CloudWatch keeps them 15 days).
pub const ONE_MINUTE_RETENTION: SignedDuration = SignedDuration::from_hours(15 * 24);

/// What was read for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupHistory {
    pub group: String,
    /// `targetgroup/NAME/ID` and `app/NAME/ID`: the dimensions read.
    pub target_group: String,
    pub load_balancer: String,
    /// Requests a minute (Sum), CPU % (Average), instances in service
    /// (Average), each at its minute's start, oldest first; a minute
    /// CloudWatch has no datapoint for is absent.
    pub requests: Vec<Datapoint>,
    pub cpu: Vec<Datapoint>,
    pub in_service: Vec<Datapoint>,
}

/// The one target group of a group, as the `TargetGroup` dimension
/// (`targetgroup/NAME/ID`, the end of its ARN): none or several is an
/// error naming what to pass instead.
pub fn target_group_dimension(group: &str, arns: &[String]) -> Result<String, String> {
    let dimension = |arn: &str| {
        arn.split_once(":targetgroup/")
            .map(|(_, rest)| format!("targetgroup/{rest}"))
            .ok_or_else(|| format!("{arn:?} is not a target group ARN"))
    };
    match arns {
        [] => Err(format!(
            "group {group} has no target group (its traffic is not behind an Application Load Balancer): pass --target-group targetgroup/NAME/ID"
        )),
        [one] => dimension(one),
        many => Err(format!(
            "group {group} has {} target groups ({}): pass the one to read as --target-group targetgroup/NAME/ID",
            many.len(),
            many.join(", ")
        )),
    }
}

/// The load balancer (`app/NAME/ID`) a target group's `RequestCount` is
/// published with: ListMetrics by the `TargetGroup` dimension (the ALB
/// publishes a target group's counts only with its load balancer beside it,
/// and only while requests flow; CloudWatch keeps them 15 days).
pub async fn load_balancer_of(cloudwatch: &aws_sdk_cloudwatch::Client, target_group: &str) -> Result<String, String> {
    let listed = cloudwatch
        .list_metrics()
        .namespace("AWS/ApplicationELB")
        .metric_name("RequestCount")
        .dimensions(
            aws_sdk_cloudwatch::types::DimensionFilter::builder()
                .name("TargetGroup")
                .value(target_group)
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("ListMetrics: {}", aws_smithy_error_chain(&e)))?;
    listed
        .metrics()
        .iter()
        .flat_map(|m| m.dimensions())
        .find(|d| d.name() == Some("LoadBalancer"))
        .and_then(|d| d.value())
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "CloudWatch has no RequestCount of target group {target_group} (the load balancer publishes it only while requests flow, and keeps it 15 days)"
            )
        })
}

/// Reads `group`'s history in `[since, until)` (until at most now, since at
/// most 15 days before it); `target_group` overrides the group's own.
pub async fn read(
    autoscaling: &aws_sdk_autoscaling::Client,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    group: &str,
    target_group: Option<&str>,
    since: Timestamp,
    until: Timestamp,
) -> Result<GroupHistory, String> {
    if since >= until {
        return Err(format!("--since {since} is not before --until {until}"));
    }
    if until.duration_since(since) > ONE_MINUTE_RETENTION {
        return Err(format!(
            "{since} to {until} is more than 15 days: CloudWatch keeps one-minute datapoints 15 days"
        ));
    }
    let target_group = match target_group {
        Some(given) => given.to_string(),
        None => {
            let answer = autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(group)
                .send()
                .await
                .map_err(|e| format!("DescribeAutoScalingGroups: {}", aws_smithy_error_chain(&e)))?;
            let found = answer
                .auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(group))
                .ok_or_else(|| format!("no Auto Scaling group named {group}"))?;
            target_group_dimension(group, found.target_group_arns())?
        }
    };
    let load_balancer = load_balancer_of(cloudwatch, &target_group).await?;
    let by_group = [("AutoScalingGroupName", group)];
    let queries = vec![
        (
            "requests".to_string(),
            cw_metric(
                "AWS/ApplicationELB",
                "RequestCount",
                &[("TargetGroup", &target_group), ("LoadBalancer", &load_balancer)],
            ),
            "Sum".to_string(),
        ),
        (
            "cpu".to_string(),
            cw_metric("AWS/EC2", "CPUUtilization", &by_group),
            "Average".to_string(),
        ),
        (
            "inservice".to_string(),
            cw_metric("AWS/AutoScaling", "GroupInServiceInstances", &by_group),
            "Average".to_string(),
        ),
    ];
    let mut data = AwsMetrics::new(cloudwatch.clone(), Default::default())
        .metric_data(queries, since, until)
        .await
        .map_err(|e| e.to_string())?;
    let mut take = |id: &str| data.remove(id).unwrap_or_default();
    Ok(GroupHistory {
        group: group.to_string(),
        target_group,
        load_balancer,
        requests: take("requests"),
        cpu: take("cpu"),
        in_service: take("inservice"),
    })
}

/// What `loadtest shadow --aws` reads beside the group's history: the
/// group's desired capacity a minute (`AWS/AutoScaling
/// GroupDesiredCapacity`, Maximum) and what the dry-run function decided,
/// from its embedded-metric-format lines (`crate::emf`) in `namespace`
/// (the template's `Autoscaler/STACK`): `RecommendedCapacity` and
/// `CapacityBefore` (Maximum: the largest ask of the minute) and
/// `Decisions` (Sum) by `Group`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowHistory {
    pub desired: Vec<Datapoint>,
    pub recommended: Vec<Datapoint>,
    pub before: Vec<Datapoint>,
    pub decisions: Vec<Datapoint>,
}

/// Reads the shadow series of `group` in `[since, until)`.
pub async fn read_shadow(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    group: &str,
    namespace: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<ShadowHistory, String> {
    let by_group = [("Group", group)];
    let queries = vec![
        (
            "desired".to_string(),
            cw_metric(
                "AWS/AutoScaling",
                "GroupDesiredCapacity",
                &[("AutoScalingGroupName", group)],
            ),
            "Maximum".to_string(),
        ),
        (
            "recommended".to_string(),
            cw_metric(namespace, "RecommendedCapacity", &by_group),
            "Maximum".to_string(),
        ),
        (
            "before".to_string(),
            cw_metric(namespace, "CapacityBefore", &by_group),
            "Maximum".to_string(),
        ),
        (
            "decisions".to_string(),
            cw_metric(namespace, "Decisions", &by_group),
            "Sum".to_string(),
        ),
    ];
    let mut data = AwsMetrics::new(cloudwatch.clone(), Default::default())
        .metric_data(queries, since, until)
        .await
        .map_err(|e| e.to_string())?;
    let mut take = |id: &str| data.remove(id).unwrap_or_default();
    let history = ShadowHistory {
        desired: take("desired"),
        recommended: take("recommended"),
        before: take("before"),
        decisions: take("decisions"),
    };
    if history.desired.is_empty() {
        return Err(format!(
            "CloudWatch has no GroupDesiredCapacity of group {group} from {since} to {until} (the group's metrics collection must be on: EnableMetricsCollection)"
        ));
    }
    if history.recommended.is_empty() {
        return Err(format!(
            "CloudWatch has no RecommendedCapacity by Group={group} in namespace {namespace} from {since} to {until}: no dry-run decision was recorded (deploy the stack with DryRun=true; its functions write the metric in Autoscaler/STACK)"
        ));
    }
    Ok(history)
}

/// The group's scaling activities that started in `[since, until)`, oldest
/// first, as (start, cause): DescribeScalingActivities, newest first, page
/// by page until one starts before `since` (at most 20 pages of 100).
pub async fn read_activities(
    autoscaling: &aws_sdk_autoscaling::Client,
    group: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<(Timestamp, String)>, String> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let answer = autoscaling
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .max_records(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| format!("DescribeScalingActivities {group}: {}", aws_smithy_error_chain(&e)))?;
        let mut older = false;
        for activity in answer.activities() {
            let Some(start) = activity
                .start_time()
                .and_then(|t| Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok())
            else {
                continue;
            };
            if start < since {
                older = true;
                continue;
            }
            if start < until {
                found.push((start, activity.cause().unwrap_or_default().to_string()));
            }
        }
        token = answer.next_token().map(str::to_string);
        if older || token.is_none() {
            break;
        }
    }
    found.sort_by_key(|(at, _)| *at);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_group_dimension_is_the_end_of_its_one_arn() {
        let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-tg/0123456789abcdef".to_string();
        assert_eq!(
            target_group_dimension("web", std::slice::from_ref(&arn)).as_deref(),
            Ok("targetgroup/web-tg/0123456789abcdef")
        );
        let none = target_group_dimension("web", &[]).expect_err("none");
        assert!(
            none.contains("group web has no target group") && none.contains("--target-group"),
            "{none}"
        );
        let two = target_group_dimension("web", &[arn.clone(), arn.replace("web-tg", "api-tg")]).expect_err("two");
        assert!(two.contains("has 2 target groups") && two.contains("api-tg"), "{two}");
        let odd = target_group_dimension("web", &["arn:aws:s3:::bucket".into()]).expect_err("not a TG");
        assert!(odd.contains("is not a target group ARN"), "{odd}");
    }
}

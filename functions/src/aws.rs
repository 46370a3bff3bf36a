//! The AWS adapters: [`AwsGroups`] over EC2 Auto Scaling
//! (aws-sdk-autoscaling) and [`AwsMetrics`] over CloudWatch
//! (aws-sdk-cloudwatch). Clients are built once per process.
//!
//! EC2 Auto Scaling has no field for a caller's cause, so each change also
//! writes the decision's cause (its idempotency key) to a group tag,
//! [`CAUSE_TAG`]; reading activities joins it back to the activity it caused.

use std::collections::BTreeMap;
use std::fmt::Display;

use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_autoscaling::types::{LifecycleState, Tag};
use jiff::{SignedDuration, Timestamp};

use crate::decide::{Activity, Instance, Lifecycle, Observation};
use crate::ports::{GroupPort, PortError};

/// The group tag holding the last decision: `UNIX_SECONDS FROM TO CAUSE`.
pub const CAUSE_TAG: &str = "autoscaler:last-decision";

/// EC2 Auto Scaling through the SDK.
#[derive(Debug, Clone)]
pub struct AwsGroups {
    client: aws_sdk_autoscaling::Client,
}

impl AwsGroups {
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }
}

/// Maps an SDK error: validation is not retryable, a missing group is
/// NotFound, everything else (throttling, network, 5xx) may succeed later.
fn port_error<E, R>(operation: String, error: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + Display + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().unwrap_or_default().to_string();
    let message = error.message().unwrap_or_default().to_string();
    let detail = if code.is_empty() && message.is_empty() {
        aws_smithy_error_chain(&error)
    } else {
        format!("{code}: {message}")
    };
    let not_found = message.to_ascii_lowercase().contains("not found");
    match error {
        SdkError::ServiceError(_) if not_found => PortError::not_found(operation, detail),
        SdkError::ServiceError(_) if code == "ValidationError" => PortError::invalid(operation, detail),
        _ => PortError::unavailable(operation, detail),
    }
}

/// An error and its sources, joined with `: ` (the SDK's display alone
/// often says only "dispatch failure").
pub(crate) fn aws_smithy_error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn timestamp(time: &aws_smithy_types::DateTime) -> Timestamp {
    Timestamp::new(time.secs(), time.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn lifecycle(state: Option<&LifecycleState>) -> Lifecycle {
    match state {
        Some(LifecycleState::Pending | LifecycleState::PendingWait | LifecycleState::PendingProceed) => {
            Lifecycle::Pending
        }
        Some(LifecycleState::InService) => Lifecycle::InService,
        // Leaving, in standby or otherwise out of service: not counted as capacity.
        _ => Lifecycle::Terminating,
    }
}

/// `... changing the desired capacity from 2 to 5.` in an activity's cause.
fn desired_change(cause: &str) -> Option<(u32, u32)> {
    let rest = cause.split("changing the desired capacity from ").nth(1)?;
    let mut words = rest.split_whitespace();
    let from = words.next()?.parse().ok()?;
    let _to_word = words.next().filter(|w| *w == "to")?;
    let to = words.next()?.trim_end_matches(['.', ',']).parse().ok()?;
    Some((from, to))
}

/// The launch time of each instance, from "Launching a new EC2 instance: i-..." activities.
fn launch_times(activities: &[aws_sdk_autoscaling::types::Activity]) -> BTreeMap<String, Timestamp> {
    activities
        .iter()
        .filter_map(|a| {
            let id = a.description()?.strip_prefix("Launching a new EC2 instance: ")?;
            Some((id.trim().to_string(), timestamp(a.start_time()?)))
        })
        .collect()
}

/// Parses the [`CAUSE_TAG`] value.
fn parse_cause_tag(value: &str) -> Option<Activity> {
    let mut parts = value.splitn(4, ' ');
    let at = Timestamp::from_second(parts.next()?.parse().ok()?).ok()?;
    let from = parts.next()?.parse().ok()?;
    let to = parts.next()?.parse().ok()?;
    Some(Activity {
        start: at,
        end: Some(at),
        from,
        to,
        cause: parts.next()?.to_string(),
    })
}

impl AwsGroups {
    async fn raw_activities(&self, group: &str) -> Result<Vec<aws_sdk_autoscaling::types::Activity>, PortError> {
        let output = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .max_records(100)
            .send()
            .await
            .map_err(|e| port_error(format!("DescribeScalingActivities {group}"), e))?;
        Ok(output.activities().to_vec())
    }

    async fn write_cause(&self, group: &str, from: u32, to: u32, cause: &str) -> Result<(), PortError> {
        let now = Timestamp::now().as_second();
        // Tag values hold at most 256 characters.
        let value: String = format!("{now} {from} {to} {cause}").chars().take(256).collect();
        let tag = Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(CAUSE_TAG)
            .value(value)
            .propagate_at_launch(false)
            .build();
        self.client
            .create_or_update_tags()
            .tags(tag)
            .send()
            .await
            .map_err(|e| port_error(format!("CreateOrUpdateTags {group}"), e))?;
        Ok(())
    }

    /// Terminates one instance of its group (TerminateInstanceInAutoScalingGroup);
    /// with `decrement` false the group launches a replacement. Not a port
    /// call: the functions never terminate; `loadtest verify --aws --kill-one` does.
    pub async fn terminate_instance(&self, instance: &str, decrement: bool) -> Result<(), PortError> {
        self.client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .map_err(|e| port_error(format!("TerminateInstanceInAutoScalingGroup {instance}"), e))?;
        Ok(())
    }

    async fn group(&self, group: &str) -> Result<aws_sdk_autoscaling::types::AutoScalingGroup, PortError> {
        let operation = format!("DescribeAutoScalingGroups {group}");
        let output = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| port_error(operation.clone(), e))?;
        output
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(group))
            .cloned()
            .ok_or_else(|| PortError::not_found(operation, format!("no group named {group}")))
    }
}

/// An SDK count as u32 (absent or negative: 0).
pub(crate) fn count(value: Option<i32>) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

/// The observation of `asg`, launch times from its activities `raw`.
fn observation(
    asg: &aws_sdk_autoscaling::types::AutoScalingGroup,
    raw: &[aws_sdk_autoscaling::types::Activity],
) -> Observation {
    let launched = launch_times(raw);
    let instances = asg
        .instances()
        .iter()
        .filter_map(|i| {
            let id = i.instance_id()?.to_string();
            Some(Instance {
                // Older than the activity history: long since warmed up.
                launched_at: launched.get(&id).copied().unwrap_or(Timestamp::UNIX_EPOCH),
                lifecycle: lifecycle(i.lifecycle_state()),
                protected: i.protected_from_scale_in().unwrap_or(false),
                id,
            })
        })
        .collect();
    Observation {
        min: count(asg.min_size()),
        max: count(asg.max_size()),
        desired: count(asg.desired_capacity()),
        instances,
    }
}

/// The group's changes since `since` from its activities `raw`, our
/// cause joined back from the group's tag.
fn changes(
    asg: &aws_sdk_autoscaling::types::AutoScalingGroup,
    raw: &[aws_sdk_autoscaling::types::Activity],
    since: Timestamp,
) -> Vec<Activity> {
    // One desired-capacity change launches or terminates several
    // instances, each its own AWS activity with the same cause: one change.
    let mut changes: BTreeMap<String, Activity> = BTreeMap::new();
    for raw in raw {
        let (Some(cause), Some(start)) = (raw.cause(), raw.start_time()) else {
            continue;
        };
        let Some((from, to)) = desired_change(cause) else {
            continue;
        };
        let start = timestamp(start);
        let end = raw.end_time().map(timestamp);
        changes
            .entry(cause.to_string())
            .and_modify(|a| {
                a.start = a.start.min(start);
                a.end = match (a.end, end) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    _ => None,
                };
            })
            .or_insert(Activity {
                start,
                end,
                from,
                to,
                cause: cause.to_string(),
            });
    }
    let mut activities: Vec<Activity> = changes.into_values().collect();
    // Join our cause to the change it made, or keep it as its own record.
    let ours = asg
        .tags()
        .iter()
        .find(|t| t.key() == Some(CAUSE_TAG))
        .and_then(|t| parse_cause_tag(t.value()?));
    if let Some(ours) = ours {
        let window = ours.start - SignedDuration::from_secs(5)..=ours.start + SignedDuration::from_secs(60);
        match activities
            .iter_mut()
            .filter(|a| a.from == ours.from && a.to == ours.to && window.contains(&a.start))
            .min_by_key(|a| a.start)
        {
            Some(matching) => matching.cause = ours.cause,
            None => activities.push(ours),
        }
    }
    activities.retain(|a| a.start >= since);
    activities.sort_by_key(|a| a.start);
    activities
}

impl GroupPort for AwsGroups {
    async fn describe(&self, group: &str) -> Result<Observation, PortError> {
        let asg = self.group(group).await?;
        Ok(observation(&asg, &self.raw_activities(group).await?))
    }

    async fn activities(&self, group: &str, since: Timestamp) -> Result<Vec<Activity>, PortError> {
        let asg = self.group(group).await?;
        Ok(changes(&asg, &self.raw_activities(group).await?, since))
    }

    /// One DescribeAutoScalingGroups and one DescribeScalingActivities.
    async fn observe(&self, group: &str, since: Timestamp) -> Result<(Observation, Vec<Activity>), PortError> {
        let asg = self.group(group).await?;
        let raw = self.raw_activities(group).await?;
        Ok((observation(&asg, &raw), changes(&asg, &raw, since)))
    }

    /// No DescribeAutoScalingGroups: the limits and the current desired are
    /// the observation's (EC2 Auto Scaling still refuses a desired outside
    /// limits a schedule changed since).
    async fn set_desired_observed(
        &self,
        group: &str,
        observed: &Observation,
        desired: u32,
        cause: &str,
    ) -> Result<(), PortError> {
        self.set_desired_within(group, (observed.min, observed.max, observed.desired), desired, cause)
            .await
    }

    async fn set_limits_observed(
        &self,
        group: &str,
        observed: &Observation,
        (min, max, desired): (u32, u32, u32),
        cause: &str,
    ) -> Result<(), PortError> {
        self.set_limits_from(group, observed.desired, (min, max, desired), cause)
            .await
    }

    async fn set_desired(&self, group: &str, desired: u32, cause: &str) -> Result<(), PortError> {
        let asg = self.group(group).await?;
        let limits = (
            count(asg.min_size()),
            count(asg.max_size()),
            count(asg.desired_capacity()),
        );
        self.set_desired_within(group, limits, desired, cause).await
    }

    async fn set_limits(&self, group: &str, min: u32, max: u32, desired: u32, cause: &str) -> Result<(), PortError> {
        let from = count(self.group(group).await?.desired_capacity());
        self.set_limits_from(group, from, (min, max, desired), cause).await
    }
}

impl AwsGroups {
    /// SetDesiredCapacity within `(min, max, from)` as read, then the cause tag.
    async fn set_desired_within(
        &self,
        group: &str,
        (min, max, from): (u32, u32, u32),
        desired: u32,
        cause: &str,
    ) -> Result<(), PortError> {
        let operation = format!("SetDesiredCapacity {group}");
        // Checked here too: EC2 Auto Scaling refuses it, some emulators do not.
        if !(min..=max).contains(&desired) {
            return Err(PortError::invalid(
                operation,
                format!("desired {desired} is outside min..=max ({min}..={max})"),
            ));
        }
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(desired as i32)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| port_error(operation, e))?;
        self.write_cause(group, from, desired, cause).await
    }

    /// UpdateAutoScalingGroup (the three together or none), then the cause tag.
    async fn set_limits_from(
        &self,
        group: &str,
        from: u32,
        (min, max, desired): (u32, u32, u32),
        cause: &str,
    ) -> Result<(), PortError> {
        let operation = format!("UpdateAutoScalingGroup {group}");
        if min > max || !(min..=max).contains(&desired) {
            return Err(PortError::invalid(
                operation,
                format!("min {min}, max {max}, desired {desired}: desired must be within min..=max"),
            ));
        }
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(group)
            .min_size(min as i32)
            .max_size(max as i32)
            .desired_capacity(desired as i32)
            .send()
            .await
            .map_err(|e| port_error(operation, e))?;
        self.write_cause(group, from, desired, cause).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_desired_change_from_aws_causes() {
        let cause = "At 2026-11-20T11:05:01Z a user request update of AutoScalingGroup constraints to min: 2, max: 10, desired: 5 changing the desired capacity from 2 to 5.  At 2026-11-20T11:05:10Z an instance was started in response to a difference between desired and actual capacity, increasing the capacity from 2 to 5.";
        assert_eq!(desired_change(cause), Some((2, 5)));
        assert_eq!(
            desired_change("At ... an instance was taken out of service in response to an EC2 health check"),
            None
        );
    }

    #[test]
    fn cause_tag_round_trip() {
        let activity = parse_cause_tag("1763636701 2 5 alarm web-cpu-high at 2026-11-20T11:05:00.218Z").expect("tag");
        assert_eq!((activity.from, activity.to), (2, 5));
        assert_eq!(activity.cause, "alarm web-cpu-high at 2026-11-20T11:05:00.218Z");
        assert_eq!(activity.start.as_second(), 1_763_636_701);
        assert!(parse_cause_tag("garbage").is_none());
    }

    #[test]
    fn lifecycle_states() {
        assert_eq!(lifecycle(Some(&LifecycleState::PendingWait)), Lifecycle::Pending);
        assert_eq!(lifecycle(Some(&LifecycleState::InService)), Lifecycle::InService);
        assert_eq!(lifecycle(Some(&LifecycleState::Standby)), Lifecycle::Terminating);
        assert_eq!(lifecycle(None), Lifecycle::Terminating);
    }
}

/// Each group's target group (`targetgroup/NAME/ID`, the `TargetGroup`
/// dimension of its load balancer metrics), by group name.
pub type TargetGroups = BTreeMap<String, String>;

/// Each group's load balancer (`app/NAME/ID`, the `LoadBalancer`
/// dimension of its metrics; one load balancer per group), by group name.
pub type LoadBalancers = BTreeMap<String, String>;

/// Parses `GROUP=targetgroup/NAME/ID` pairs, comma-separated (env
/// `SCALER_TARGET_GROUPS`, which the template sets for every group).
pub fn parse_target_groups(text: &str) -> Result<TargetGroups, String> {
    parse_group_resources(text, "targetgroup")
}

/// Parses `GROUP=app/NAME/ID` pairs, comma-separated (env
/// `SCALER_LOAD_BALANCERS`, which the template sets for every group).
pub fn parse_load_balancers(text: &str) -> Result<LoadBalancers, String> {
    parse_group_resources(text, "app")
}

/// `GROUP=KIND/NAME/ID` pairs, comma-separated: a load balancer
/// resource's full name (its metrics' dimension value) for each group.
fn parse_group_resources(text: &str, kind: &str) -> Result<BTreeMap<String, String>, String> {
    let mut groups = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let refuse = || format!("{pair:?} is not GROUP={kind}/NAME/ID");
        let (group, resource) = pair.split_once('=').ok_or_else(refuse)?;
        let parts: Vec<&str> = resource.split('/').collect();
        if group.is_empty() || parts.len() != 3 || parts[0] != kind || parts[1].is_empty() || parts[2].is_empty() {
            return Err(refuse());
        }
        if groups.insert(group.to_string(), resource.to_string()).is_some() {
            return Err(format!("group {group} is named twice"));
        }
    }
    Ok(groups)
}

/// CloudWatch through the SDK (which speaks rpcv2Cbor).
#[derive(Debug, Clone)]
pub struct AwsMetrics {
    client: aws_sdk_cloudwatch::Client,
    /// Each group's target group, for `request_count_per_target`.
    target_groups: TargetGroups,
    /// Each group's load balancer, for `cpu_demand`.
    load_balancers: LoadBalancers,
}

/// The period of the datapoints read (CloudWatch's detailed monitoring).
const PERIOD_S: i32 = 60;
/// GetMetricData takes at most 500 queries per call.
const QUERIES_PER_CALL: usize = 500;

impl AwsMetrics {
    pub fn new(client: aws_sdk_cloudwatch::Client, target_groups: TargetGroups) -> Self {
        Self {
            client,
            target_groups,
            load_balancers: LoadBalancers::new(),
        }
    }

    /// Each group's load balancer (`SCALER_LOAD_BALANCERS`), for `cpu_demand`.
    pub fn with_load_balancers(self, load_balancers: LoadBalancers) -> Self {
        Self { load_balancers, ..self }
    }

    /// Each instance's CPUUtilization (Average), one query each (`m0`, `m1`, ...).
    async fn instance_cpu(
        &self,
        instances: &[String],
        extra: Vec<(String, aws_sdk_cloudwatch::types::Metric, String)>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<
        (
            BTreeMap<String, Vec<crate::decide::Datapoint>>,
            BTreeMap<String, Vec<crate::decide::Datapoint>>,
        ),
        PortError,
    > {
        let mut queries: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    format!("m{i}"),
                    cw_metric("AWS/EC2", "CPUUtilization", &[("InstanceId", id)]),
                    "Average".to_string(),
                )
            })
            .collect();
        queries.extend(extra);
        let mut data = self.metric_data(queries, since, until).await?;
        let per_instance = instances
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((id.clone(), data.remove(&format!("m{i}"))?)))
            .collect();
        Ok((per_instance, data))
    }

    /// Runs `queries` (id, metric, stat) over the window; datapoints by id.
    pub(crate) async fn metric_data(
        &self,
        queries: Vec<(String, aws_sdk_cloudwatch::types::Metric, String)>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<BTreeMap<String, Vec<crate::decide::Datapoint>>, PortError> {
        self.metric_data_every(queries, since, until, PERIOD_S).await
    }

    /// [`Self::metric_data`] at a period of `period_s` seconds.
    pub(crate) async fn metric_data_every(
        &self,
        queries: Vec<(String, aws_sdk_cloudwatch::types::Metric, String)>,
        since: Timestamp,
        until: Timestamp,
        period_s: i32,
    ) -> Result<BTreeMap<String, Vec<crate::decide::Datapoint>>, PortError> {
        use aws_sdk_cloudwatch::types::{MetricDataQuery, MetricStat};
        let mut results: BTreeMap<String, Vec<crate::decide::Datapoint>> = BTreeMap::new();
        for chunk in queries.chunks(QUERIES_PER_CALL) {
            let mut request = self
                .client
                .get_metric_data()
                .start_time(aws_smithy_types::DateTime::from_secs(since.as_second()))
                .end_time(aws_smithy_types::DateTime::from_secs(until.as_second()));
            for (id, metric, stat) in chunk {
                request = request.metric_data_queries(
                    MetricDataQuery::builder()
                        .id(id)
                        .metric_stat(
                            MetricStat::builder()
                                .metric(metric.clone())
                                .period(period_s)
                                .stat(stat)
                                .build(),
                        )
                        .return_data(true)
                        .build(),
                );
            }
            let mut token: Option<String> = None;
            loop {
                let output = request
                    .clone()
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| port_error("GetMetricData".to_string(), e))?;
                for result in output.metric_data_results() {
                    let Some(id) = result.id() else { continue };
                    let points = results.entry(id.to_string()).or_default();
                    for (time, value) in result.timestamps().iter().zip(result.values()) {
                        points.push(crate::decide::Datapoint {
                            at: timestamp(time),
                            value: *value,
                        });
                    }
                }
                token = output.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        for points in results.values_mut() {
            points.sort_by_key(|d| d.at);
        }
        Ok(results)
    }
}

pub(crate) fn cw_metric(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> aws_sdk_cloudwatch::types::Metric {
    use aws_sdk_cloudwatch::types::{Dimension, Metric};
    let mut metric = Metric::builder().namespace(namespace).metric_name(name);
    for (key, value) in dimensions {
        metric = metric.dimensions(Dimension::builder().name(*key).value(*value).build());
    }
    metric.build()
}

impl crate::ports::MetricsPort for AwsMetrics {
    async fn history(
        &self,
        group: &crate::policy::GroupPolicy,
        instances: &[String],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<crate::decide::MetricHistory, PortError> {
        use crate::policy::{PredefinedMetric, TrackedMetric};
        let mut history = crate::decide::MetricHistory::default();
        for policy in &group.target_tracking {
            let key = crate::tracking::metric_key(&policy.metric);
            let per_instance = match &policy.metric {
                TrackedMetric::Predefined(PredefinedMetric::Cpu) => {
                    self.instance_cpu(instances, vec![], since, until).await?.0
                }
                TrackedMetric::Predefined(PredefinedMetric::CpuDemand) => {
                    // CPU x RequestCount / (RequestCount - HTTPCode_Target_5XX_Count)
                    // of the group's own load balancer (one per group; both
                    // published by `LoadBalancer` alone, Sum their statistic).
                    let load_balancer = self.load_balancers.get(&group.name).ok_or_else(|| {
                        PortError::invalid(
                            "GetMetricData RequestCount",
                            format!(
                                "cpu_demand of group {} needs its load balancer in SCALER_LOAD_BALANCERS (GROUP=app/NAME/ID, comma-separated)",
                                group.name
                            ),
                        )
                    })?;
                    let dimension = [("LoadBalancer", load_balancer.as_str())];
                    let extra = vec![
                        (
                            "requests".to_string(),
                            cw_metric("AWS/ApplicationELB", "RequestCount", &dimension),
                            "Sum".to_string(),
                        ),
                        (
                            "shed".to_string(),
                            cw_metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", &dimension),
                            "Sum".to_string(),
                        ),
                    ];
                    let (cpu, balancer) = self.instance_cpu(instances, extra, since, until).await?;
                    let none = Vec::new();
                    let requests = balancer.get("requests").unwrap_or(&none);
                    let shed = balancer.get("shed").unwrap_or(&none);
                    cpu.into_iter()
                        .map(|(id, points)| (id, crate::tracking::cpu_demand(&points, requests, shed)))
                        .collect()
                }
                TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => {
                    // Each group's own target group (issue 18: every function read the first group's).
                    let target_group = self.target_groups.get(&group.name).ok_or_else(|| {
                        PortError::invalid(
                            "GetMetricData RequestCountPerTarget",
                            format!(
                                "request_count_per_target of group {} needs its target group in SCALER_TARGET_GROUPS (GROUP=targetgroup/NAME/ID, comma-separated)",
                                group.name
                            ),
                        )
                    })?;
                    let metric = cw_metric(
                        "AWS/ApplicationELB",
                        "RequestCountPerTarget",
                        &[("TargetGroup", target_group)],
                    );
                    let data = self
                        .metric_data(vec![("r0".into(), metric, "Sum".into())], since, until)
                        .await?;
                    // Already a per-target figure: every instance gets the group's value.
                    let points = data.get("r0").cloned().unwrap_or_default();
                    instances.iter().map(|id| (id.clone(), points.clone())).collect()
                }
                TrackedMetric::Custom(spec) => {
                    let queries = instances
                        .iter()
                        .enumerate()
                        .map(|(i, id)| {
                            let mut dims: Vec<(&str, &str)> =
                                spec.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                            dims.push(("InstanceId", id));
                            (
                                format!("c{i}"),
                                cw_metric(&spec.namespace, &spec.name, &dims),
                                spec.stat.to_string(),
                            )
                        })
                        .collect();
                    let data = self.metric_data(queries, since, until).await?;
                    instances
                        .iter()
                        .enumerate()
                        .filter_map(|(i, id)| Some((id.clone(), data.get(&format!("c{i}"))?.clone())))
                        .collect()
                }
            };
            history.metrics.insert(key, per_instance);
        }
        Ok(history)
    }

    async fn load(
        &self,
        group: &crate::policy::GroupPolicy,
        metric: &crate::policy::TrackedMetric,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<crate::decide::Datapoint>, PortError> {
        // Hourly Sums (GetMetricData, period 3600): the group's CPU by
        // AutoScalingGroupName (one datapoint per instance and minute with
        // detailed monitoring), its load balancer's counts by LoadBalancer.
        let (cpu, requests, shed) = crate::predictive::sums_needed(metric);
        let mut queries = Vec::new();
        if cpu {
            queries.push((
                "cpu".to_string(),
                cw_metric("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", &group.name)]),
                "Sum".to_string(),
            ));
        }
        if requests || shed {
            let load_balancer = self.load_balancers.get(&group.name).ok_or_else(|| {
                PortError::invalid(
                    "GetMetricData RequestCount",
                    format!(
                        "predictive scaling of group {} reads its load balancer's RequestCount: it needs SCALER_LOAD_BALANCERS (GROUP=app/NAME/ID, comma-separated)",
                        group.name
                    ),
                )
            })?;
            let dimension = [("LoadBalancer", load_balancer.as_str())];
            for (id, name, wanted) in [
                ("requests", "RequestCount", requests),
                ("shed", "HTTPCode_Target_5XX_Count", shed),
            ] {
                if wanted {
                    queries.push((
                        id.to_string(),
                        cw_metric("AWS/ApplicationELB", name, &dimension),
                        "Sum".to_string(),
                    ));
                }
            }
        }
        let mut data = self.metric_data_every(queries, since, until, 3600).await?;
        let sums = crate::predictive::HourlySums {
            cpu: data.remove("cpu").unwrap_or_default(),
            requests: data.remove("requests").unwrap_or_default(),
            shed: data.remove("shed").unwrap_or_default(),
        };
        Ok(crate::predictive::hourly_load(metric, &sums))
    }

    async fn latest(&self, metric: &crate::policy::MetricSpec, until: Timestamp) -> Result<Option<f64>, PortError> {
        let dims: Vec<(&str, &str)> = metric
            .dimensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let query = cw_metric(&metric.namespace, &metric.name, &dims);
        let since = until - SignedDuration::from_mins(15);
        let data = self
            .metric_data(vec![("l0".into(), query, metric.stat.to_string())], since, until)
            .await?;
        Ok(data.get("l0").and_then(|points| points.last()).map(|d| d.value))
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<crate::decide::AlarmStatus>, PortError> {
        use aws_sdk_cloudwatch::types::StateValue;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("DescribeAlarms".to_string(), e))?;
        let mut states = Vec::new();
        for alarm in output.metric_alarms() {
            let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) else {
                continue;
            };
            let state = match state {
                StateValue::Alarm => crate::decide::AlarmState::Alarm,
                StateValue::Ok => crate::decide::AlarmState::Ok,
                StateValue::InsufficientData => crate::decide::AlarmState::InsufficientData,
                _ => continue,
            };
            let since = alarm
                .state_transitioned_timestamp()
                .or(alarm.state_updated_timestamp())
                .map(timestamp)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let newest = alarm.state_reason_data().and_then(newest_reason_datapoint);
            states.push(crate::decide::AlarmStatus {
                name: name.to_string(),
                state,
                state_since: since,
                value: newest.map(|(_, v)| v),
                data_at: newest.and_then(|(at, _)| at),
            });
        }
        Ok(states)
    }
}

/// The newest datapoint in an alarm's `StateReasonData` JSON: (its period
/// start when given, value).
fn newest_reason_datapoint(json: &str) -> Option<(Option<Timestamp>, f64)> {
    let data: serde_json::Value = serde_json::from_str(json).ok()?;
    let evaluated = data.get("evaluatedDatapoints").and_then(|v| v.as_array());
    let newest = evaluated.and_then(|points| {
        points
            .iter()
            .filter_map(|p| Some((p.get("timestamp")?.as_str()?.to_string(), p.get("value")?.as_f64()?)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(at, v)| (crate::trigger::parse_aws_time(&at), v))
    });
    newest.or_else(|| Some((None, data.get("recentDatapoints")?.as_array()?.last()?.as_f64()?)))
}

/// Both AWS adapters, with their clients built once per process by a
/// start-up task that does not hold up the runtime: the first invocation is
/// taken at once, and only a call that needs AWS waits for the clients
/// (loading the configuration and the TLS roots takes a few milliseconds).
#[derive(Debug, Clone)]
pub struct LazyAws {
    cell: std::sync::Arc<tokio::sync::OnceCell<(AwsGroups, AwsMetrics)>>,
    target_groups: TargetGroups,
    load_balancers: LoadBalancers,
}

impl LazyAws {
    /// Starts building the clients in the background (needs a Tokio runtime).
    pub fn start(target_groups: TargetGroups, load_balancers: LoadBalancers) -> Self {
        let lazy = Self {
            cell: std::sync::Arc::new(tokio::sync::OnceCell::new()),
            target_groups,
            load_balancers,
        };
        let background = lazy.clone();
        tokio::spawn(async move {
            background.clients().await;
        });
        lazy
    }

    async fn clients(&self) -> &(AwsGroups, AwsMetrics) {
        self.cell
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                (
                    AwsGroups::new(aws_sdk_autoscaling::Client::new(&config)),
                    AwsMetrics::new(aws_sdk_cloudwatch::Client::new(&config), self.target_groups.clone())
                        .with_load_balancers(self.load_balancers.clone()),
                )
            })
            .await
    }
}

impl GroupPort for LazyAws {
    async fn describe(&self, group: &str) -> Result<Observation, PortError> {
        self.clients().await.0.describe(group).await
    }

    async fn activities(&self, group: &str, since: Timestamp) -> Result<Vec<Activity>, PortError> {
        self.clients().await.0.activities(group, since).await
    }

    async fn set_desired(&self, group: &str, desired: u32, cause: &str) -> Result<(), PortError> {
        self.clients().await.0.set_desired(group, desired, cause).await
    }

    async fn set_limits(&self, group: &str, min: u32, max: u32, desired: u32, cause: &str) -> Result<(), PortError> {
        self.clients().await.0.set_limits(group, min, max, desired, cause).await
    }

    async fn observe(&self, group: &str, since: Timestamp) -> Result<(Observation, Vec<Activity>), PortError> {
        self.clients().await.0.observe(group, since).await
    }

    async fn set_desired_observed(
        &self,
        group: &str,
        observed: &Observation,
        desired: u32,
        cause: &str,
    ) -> Result<(), PortError> {
        self.clients()
            .await
            .0
            .set_desired_observed(group, observed, desired, cause)
            .await
    }

    async fn set_limits_observed(
        &self,
        group: &str,
        observed: &Observation,
        limits: (u32, u32, u32),
        cause: &str,
    ) -> Result<(), PortError> {
        self.clients()
            .await
            .0
            .set_limits_observed(group, observed, limits, cause)
            .await
    }
}

impl crate::ports::MetricsPort for LazyAws {
    async fn history(
        &self,
        group: &crate::policy::GroupPolicy,
        instances: &[String],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<crate::decide::MetricHistory, PortError> {
        self.clients().await.1.history(group, instances, since, until).await
    }

    async fn load(
        &self,
        group: &crate::policy::GroupPolicy,
        metric: &crate::policy::TrackedMetric,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<crate::decide::Datapoint>, PortError> {
        self.clients().await.1.load(group, metric, since, until).await
    }

    async fn latest(&self, metric: &crate::policy::MetricSpec, until: Timestamp) -> Result<Option<f64>, PortError> {
        self.clients().await.1.latest(metric, until).await
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<crate::decide::AlarmStatus>, PortError> {
        self.clients().await.1.alarm_states(names).await
    }
}

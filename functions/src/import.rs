//! `scalectl import`: reads groups, their scaling policies, scheduled
//! actions and the alarms that invoke the policies through the AWS SDK
//! (credentials, region and `AWS_ENDPOINT_URL` from the standard
//! environment) into the core's import types (`scaling::import`), which
//! write the policy file. A part that cannot be read is named and the rest
//! is written anyway; a group that does not exist is an error.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::date_time::Format;

use crate::aws::{aws_smithy_error_chain, count};
use scaling::import::{
    SourceAlarm, SourceGroup, SourceMetric, SourcePolicy, SourceSchedule, SourceTargetTracking, Unreadable,
};

/// What was read: the groups in the order asked, the alarms by name, and
/// the parts that could not be read.
#[derive(Debug, Default)]
pub struct Read {
    pub groups: Vec<SourceGroup>,
    pub alarms: BTreeMap<String, SourceAlarm>,
    pub unreadable: Vec<Unreadable>,
    /// Each group's target group ARNs (for the adopt template's parameters).
    pub target_groups: BTreeMap<String, Vec<String>>,
}

/// `CODE: message` of an SDK error, else its whole chain.
fn describe_error<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_smithy_error_chain(error),
    }
}

fn seconds(value: Option<i32>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

/// Reads `names` (each must exist) and everything that drives them.
pub async fn read(
    autoscaling: &aws_sdk_autoscaling::Client,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<Read, String> {
    let answer = autoscaling
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| format!("DescribeAutoScalingGroups: {}", describe_error(&e)))?;
    let found = answer.auto_scaling_groups();
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !found.iter().any(|g| g.auto_scaling_group_name() == Some(n.as_str())))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!("no Auto Scaling group named {}", missing.join(", ")));
    }
    let mut read = Read::default();
    for name in names {
        let Some(asg) = found
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name.as_str()))
        else {
            continue;
        };
        read.target_groups
            .insert(name.clone(), asg.target_group_arns().to_vec());
        let mut group = SourceGroup {
            name: name.clone(),
            arn: asg.auto_scaling_group_arn().map(str::to_string),
            min: count(asg.min_size()),
            max: count(asg.max_size()),
            desired: count(asg.desired_capacity()),
            default_cooldown: seconds(asg.default_cooldown()),
            default_warmup: seconds(asg.default_instance_warmup()).filter(|s| *s > 0),
            zones: asg.availability_zones().to_vec(),
            termination_policies: asg.termination_policies().to_vec(),
            protect_from_scale_in: asg.new_instances_protected_from_scale_in().unwrap_or(false),
            policies: Vec::new(),
            scheduled: Vec::new(),
        };
        match policies(autoscaling, name).await {
            Ok(policies) => group.policies = policies,
            Err(error) => read.unreadable.push(Unreadable {
                part: format!("the scaling policies of group {name}"),
                error,
            }),
        }
        match scheduled(autoscaling, name).await {
            Ok(scheduled) => group.scheduled = scheduled,
            Err(error) => read.unreadable.push(Unreadable {
                part: format!("the scheduled actions of group {name}"),
                error,
            }),
        }
        read.groups.push(group);
    }
    let mut alarm_names: Vec<String> = read
        .groups
        .iter()
        .flat_map(|g| &g.policies)
        .flat_map(|p| p.alarms.iter().cloned())
        .collect();
    alarm_names.sort();
    alarm_names.dedup();
    // DescribeAlarms takes at most 100 names a call.
    for chunk in alarm_names.chunks(100) {
        match alarms(cloudwatch, chunk).await {
            Ok(found) => read.alarms.extend(found.into_iter().map(|a| (a.name.clone(), a))),
            Err(error) => read.unreadable.push(Unreadable {
                part: format!("the alarms {}", chunk.join(", ")),
                error,
            }),
        }
    }
    Ok(read)
}

async fn policies(client: &aws_sdk_autoscaling::Client, group: &str) -> Result<Vec<SourcePolicy>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_policies()
            .auto_scaling_group_name(group)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("DescribePolicies: {}", describe_error(&e)))?;
        for p in page.scaling_policies() {
            out.push(SourcePolicy {
                name: p.policy_name().unwrap_or_default().to_string(),
                arn: p.policy_arn().map(str::to_string),
                policy_type: p.policy_type().unwrap_or("SimpleScaling").to_string(),
                enabled: p.enabled().unwrap_or(true),
                adjustment_type: p.adjustment_type().map(str::to_string),
                scaling_adjustment: p.scaling_adjustment().map(i64::from),
                min_adjustment_magnitude: p.min_adjustment_magnitude().and_then(|m| u32::try_from(m).ok()),
                cooldown: seconds(p.cooldown()),
                estimated_warmup: seconds(p.estimated_instance_warmup()),
                metric_aggregation: p.metric_aggregation_type().map(str::to_string),
                steps: p
                    .step_adjustments()
                    .iter()
                    .map(|s| {
                        (
                            s.metric_interval_lower_bound(),
                            s.metric_interval_upper_bound(),
                            i64::from(s.scaling_adjustment().unwrap_or(0)),
                        )
                    })
                    .collect(),
                target_tracking: p.target_tracking_configuration().map(|t| {
                    let custom = t.customized_metric_specification();
                    SourceTargetTracking {
                        predefined: t
                            .predefined_metric_specification()
                            .and_then(|s| s.predefined_metric_type().map(|m| m.as_str().to_string())),
                        metric_math: custom.is_some_and(|c| !c.metrics().is_empty()),
                        custom: custom.filter(|c| c.metrics().is_empty()).map(|c| SourceMetric {
                            namespace: c.namespace().unwrap_or_default().to_string(),
                            name: c.metric_name().unwrap_or_default().to_string(),
                            stat: c.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
                            dimensions: c
                                .dimensions()
                                .iter()
                                .map(|d| {
                                    (
                                        d.name().unwrap_or_default().to_string(),
                                        d.value().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect(),
                        }),
                        target: t.target_value().unwrap_or_default(),
                        disable_scale_in: t.disable_scale_in().unwrap_or(false),
                    }
                }),
                predictive: p.predictive_scaling_configuration().map(|c| {
                    let spec = c.metric_specifications().first();
                    let pair = spec.and_then(|s| {
                        let pair = s
                            .predefined_metric_pair_specification()
                            .and_then(|p| p.predefined_metric_type())
                            .map(|t| t.as_str().to_string());
                        // A load metric given apart names its pair.
                        let load = s
                            .predefined_load_metric_specification()
                            .and_then(|l| l.predefined_metric_type())
                            .map(|t| match t.as_str() {
                                "ASGTotalCPUUtilization" => "ASGCPUUtilization".to_string(),
                                "ALBTargetGroupRequestCount" => "ALBRequestCount".to_string(),
                                other => other.to_string(),
                            });
                        pair.or(load)
                    });
                    scaling::import::SourcePredictive {
                        pair,
                        target: spec.and_then(|s| s.target_value()).unwrap_or_default(),
                        mode: c.mode().map(|m| m.as_str().to_string()),
                        scheduling_buffer: c.scheduling_buffer_time().and_then(|b| u64::try_from(b).ok()),
                        max_capacity_breach: c.max_capacity_breach_behavior().map(|b| b.as_str().to_string()),
                        max_capacity_buffer: c.max_capacity_buffer().and_then(|b| u32::try_from(b).ok()),
                    }
                }),
                alarms: p
                    .alarms()
                    .iter()
                    .filter_map(|a| a.alarm_name().map(str::to_string))
                    .collect(),
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

async fn scheduled(client: &aws_sdk_autoscaling::Client, group: &str) -> Result<Vec<SourceSchedule>, String> {
    let time = |t: Option<&aws_smithy_types::DateTime>| t.and_then(|t| t.fmt(Format::DateTime).ok());
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_scheduled_actions()
            .auto_scaling_group_name(group)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("DescribeScheduledActions: {}", describe_error(&e)))?;
        for a in page.scheduled_update_group_actions() {
            out.push(SourceSchedule {
                name: a.scheduled_action_name().unwrap_or_default().to_string(),
                arn: a.scheduled_action_arn().map(str::to_string),
                recurrence: a.recurrence().map(str::to_string),
                time_zone: a.time_zone().map(str::to_string),
                start_time: time(a.start_time()),
                end_time: time(a.end_time()),
                min: a.min_size().and_then(|v| u32::try_from(v).ok()),
                max: a.max_size().and_then(|v| u32::try_from(v).ok()),
                desired: a.desired_capacity().and_then(|v| u32::try_from(v).ok()),
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// DescribeAlarms of `names` (at most 100), as the core's import types.
pub async fn alarms(client: &aws_sdk_cloudwatch::Client, names: &[String]) -> Result<Vec<SourceAlarm>, String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| format!("DescribeAlarms: {}", describe_error(&e)))?;
        for a in page.metric_alarms() {
            let stat = a
                .extended_statistic()
                .map(str::to_string)
                .or_else(|| a.statistic().map(|s| s.as_str().to_string()))
                .unwrap_or_default();
            out.push(SourceAlarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                arn: a.alarm_arn().map(str::to_string),
                metric: a.metrics().is_empty().then(|| SourceMetric {
                    namespace: a.namespace().unwrap_or_default().to_string(),
                    name: a.metric_name().unwrap_or_default().to_string(),
                    stat,
                    dimensions: a
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_string(),
                                d.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                }),
                period: seconds(a.period()).unwrap_or(60),
                evaluation_periods: count(a.evaluation_periods()).max(1),
                datapoints_to_alarm: a.datapoints_to_alarm().and_then(|v| u32::try_from(v).ok()),
                threshold: a.threshold().unwrap_or_default(),
                comparison: a
                    .comparison_operator()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                treat_missing_data: a.treat_missing_data().map(str::to_string),
            });
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// The adopt template's parameters of `groups` (`scalectl import
/// --parameters`): each group's `{Id}TargetGroup` (its one target group, as
/// CloudWatch names it) and `{Id}LoadBalancer` (found as `loadtest trace
/// --aws` finds it: the load balancer CloudWatch publishes the target
/// group's RequestCount with), as `[{"ParameterKey", "ParameterValue"}]`,
/// the file `aws cloudformation create-stack --parameters file://F` and
/// `deploy --parameter-overrides file://F` read. A value that cannot be
/// found is left empty (the template's pattern refuses it at deploy) and
/// named in the second list.
pub async fn adopt_parameters(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    read: &Read,
) -> (serde_json::Value, Vec<Unreadable>) {
    let mut parameters = Vec::new();
    let mut unreadable = Vec::new();
    for group in &read.groups {
        let id = crate::cfn::logical(&group.name);
        let arns = read.target_groups.get(&group.name).cloned().unwrap_or_default();
        let target_group = crate::history::target_group_dimension(&group.name, &arns);
        let load_balancer = match &target_group {
            Ok(tg) => crate::history::load_balancer_of(cloudwatch, tg).await,
            Err(error) => Err(error.clone()),
        };
        for (key, value) in [
            (format!("{id}TargetGroup"), target_group),
            (format!("{id}LoadBalancer"), load_balancer),
        ] {
            let value = value.unwrap_or_else(|error| {
                unreadable.push(Unreadable {
                    part: format!("parameter {key} of group {}", group.name),
                    error,
                });
                String::new()
            });
            parameters.push(serde_json::json!({ "ParameterKey": key, "ParameterValue": value }));
        }
    }
    (serde_json::Value::Array(parameters), unreadable)
}

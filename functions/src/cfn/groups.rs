//! Per policy group: its Auto Scaling group, target group, listener and
//! alarms.

use super::*;

pub(super) fn group_resources(
    resources: &mut Map<String, Value>,
    outputs: &mut Map<String, Value>,
    group: &GroupPolicy,
    exposure: Exposure,
) {
    let id = logical(&group.name);
    let (security_group, _, _) = alb_security_group(exposure);
    let (scheme, subnets) = match exposure {
        Exposure::Internet => ("internet-facing", ["PublicSubnetA", "PublicSubnetB"]),
        Exposure::Internal => ("internal", ["PrivateSubnetA", "PrivateSubnetB"]),
    };
    // A load balancer per group: the 503s it answers for want of a target
    // (HTTPCode_ELB_503_Count, what scales a group out from zero) are
    // published by load balancer only, so a shared one could not say which
    // group they were for.
    resources.insert(
        format!("LoadBalancer{id}"),
        json!({
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Scheme": scheme,
                "Subnets": subnets.map(reference),
                "SecurityGroups": [reference(security_group)],
                "LoadBalancerAttributes": [
                    { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" },
                    { "Key": "idle_timeout.timeout_seconds", "Value": "60" }
                ]
            }
        }),
    );
    resources.insert(
        format!("TargetGroup{id}"),
        json!({
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": {
                "VpcId": reference("Vpc"),
                "Protocol": "HTTP",
                "Port": SERVICE_PORT,
                "TargetType": "instance",
                "HealthCheckPath": "/health",
                "HealthCheckIntervalSeconds": HEALTH_CHECK_INTERVAL_S,
                "HealthCheckTimeoutSeconds": 5,
                "HealthyThresholdCount": HEALTHY_THRESHOLD,
                "UnhealthyThresholdCount": 2,
                "Matcher": { "HttpCode": "200" },
                "TargetGroupAttributes": [
                    { "Key": "deregistration_delay.timeout_seconds", "Value": "30" },
                    { "Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests" }
                ]
            }
        }),
    );
    resources.insert(
        format!("Listener{id}"),
        json!({
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": reference(&format!("LoadBalancer{id}")),
                "Protocol": "HTTP",
                "Port": 80,
                "DefaultActions": [{ "Type": "forward", "TargetGroupArn": reference(&format!("TargetGroup{id}")) }]
            }
        }),
    );
    // The instances' own endpoints are not the internet's: the target group
    // health-checks /health on the instances directly, not through the
    // listener, so answering these paths here changes nothing for it.
    if exposure == Exposure::Internet {
        resources.insert(
            format!("Listener{id}Private"),
            json!({
                "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
                "Properties": {
                    "ListenerArn": reference(&format!("Listener{id}")),
                    "Priority": 1,
                    "Conditions": [{ "Field": "path-pattern", "PathPatternConfig": { "Values": ["/metrics", "/metrics/*", "/health", "/health/*"] } }],
                    "Actions": [{ "Type": "fixed-response", "FixedResponseConfig": { "StatusCode": "404", "ContentType": "text/plain", "MessageBody": "not found" } }]
                }
            }),
        );
    }
    let warmup = group.warmup().as_secs();
    resources.insert(
        format!("Group{id}"),
        json!({
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            // The policy's starting size: deploy.sh sets it once, when it
            // creates the stack (the template pins no DesiredCapacity).
            "Metadata": { "autoscaler:initial-desired": group.desired.unwrap_or(group.min) },
            "Properties": {
                "AutoScalingGroupName": group.name,
                "MinSize": reference(&format!("{id}Min")),
                "MaxSize": reference(&format!("{id}Max")),
                "LaunchTemplate": { "LaunchTemplateId": reference("LaunchTemplate"), "Version": get_att("LaunchTemplate", "LatestVersionNumber") },
                "VPCZoneIdentifier": [reference("PrivateSubnetA"), reference("PrivateSubnetB")],
                "TargetGroupARNs": [reference(&format!("TargetGroup{id}"))],
                "HealthCheckType": "ELB",
                "HealthCheckGracePeriod": 120,
                "DefaultInstanceWarmup": warmup,
                "Cooldown": group.cooldown.as_secs().to_string(),
                "TerminationPolicies": ["OldestInstance"],
                "NewInstancesProtectedFromScaleIn": false,
                "MetricsCollection": [{ "Granularity": "1Minute" }],
                // Instances that fail to launch or terminate tell the operator.
                "NotificationConfigurations": [{ "TopicARN": reference("AlertTopic"), "NotificationTypes": ["autoscaling:EC2_INSTANCE_LAUNCH_ERROR", "autoscaling:EC2_INSTANCE_TERMINATE_ERROR"] }],
                "Tags": [
                    { "Key": "Name", "Value": sub(&format!("${{AWS::StackName}}-{}", group.name)), "PropagateAtLaunch": true },
                    { "Key": "autoscaler:group", "Value": group.name, "PropagateAtLaunch": true }
                ]
            },
            // Capacity is the scaler's: no DesiredCapacity (CloudFormation
            // would set it back on every stack update) and, per the
            // AutoScalingScheduledAction update policy, MinSize and MaxSize
            // are changed only when the template changes them (the scaler's
            // schedules change them too).
            "UpdatePolicy": {
                "AutoScalingRollingUpdate": { "MinInstancesInService": reference(&format!("{id}Min")), "MaxBatchSize": 1 },
                "AutoScalingScheduledAction": { "IgnoreUnmodifiedGroupSizeProperties": true }
            }
        }),
    );
    // A warm pool (PutWarmPool's settings; the pool follows the group's
    // max unless MaxGroupPreparedCapacity says otherwise).
    if let Some(pool) = &group.warm_pool {
        let mut properties = json!({
            "AutoScalingGroupName": reference(&format!("Group{id}")),
            "MinSize": pool.min_size,
            "PoolState": pool.pool_state.aws(),
            "InstanceReusePolicy": { "ReuseOnScaleIn": pool.reuse_on_scale_in }
        });
        if let Some(prepared) = pool.max_group_prepared_capacity {
            properties["MaxGroupPreparedCapacity"] = json!(prepared);
        }
        resources.insert(
            format!("WarmPool{id}"),
            json!({ "Type": "AWS::AutoScaling::WarmPool", "Properties": properties }),
        );
    }
    outputs.insert(
        format!("Url{id}"),
        json!({
            "Description": format!("Group {} through its load balancer", group.name),
            "Value": sub(&format!("http://${{LoadBalancer{id}.DNSName}}"))
        }),
    );
}

/// A dimension value as CloudWatch publishes it: a policy file names a target
/// group or a load balancer by its group (see [`crate::policy::published`]),
/// CloudWatch by the full name (`targetgroup/NAME/ID`, `app/NAME/ID`); the
/// Auto Scaling group has the group's own name.
pub fn dimension_value(name: &str, value: &str) -> Value {
    match name {
        "TargetGroup" => get_att(&format!("TargetGroup{}", logical(value)), "TargetGroupFullName"),
        "LoadBalancer" => get_att(&format!("LoadBalancer{}", logical(value)), "LoadBalancerFullName"),
        _ => json!(value),
    }
}

pub(super) fn alarm_resource(_group: &GroupPolicy, alarm: &AlarmPolicy) -> Value {
    let mut properties = json!({
        "AlarmName": alarm.alarm,
        "AlarmDescription": format!(
            "{} {} {} for {} of {} periods of {} s (policy file); state changes go to the alarm-scaler function",
            alarm.metric.name,
            alarm.comparison.symbol(),
            alarm.threshold,
            alarm.datapoints_to_alarm.unwrap_or(alarm.evaluation_periods),
            alarm.evaluation_periods,
            alarm.period.as_secs()
        ),
        "Namespace": alarm.metric.namespace,
        "MetricName": alarm.metric.name,
        "Dimensions": alarm.metric.dimensions.iter().map(|(k, v)| json!({ "Name": k, "Value": dimension_value(k, v) })).collect::<Vec<_>>(),
        "Period": alarm.period.as_secs(),
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.datapoints_to_alarm.unwrap_or(alarm.evaluation_periods),
        "Threshold": alarm.threshold,
        "ComparisonOperator": comparison_operator(alarm.comparison),
        "TreatMissingData": treat_missing_data(alarm.missing_data),
        "ActionsEnabled": false
    });
    if alarm.metric.stat.is_percentile() {
        properties["ExtendedStatistic"] = json!(alarm.metric.stat);
    } else {
        properties["Statistic"] = json!(alarm.metric.stat);
    }
    json!({ "Type": "AWS::CloudWatch::Alarm", "Properties": properties })
}

/// The ARN of the Auto Scaling group named `name` (IAM resources).
pub(super) fn group_arn(name: &str) -> Value {
    sub(&format!(
        "arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:autoScalingGroupName/{name}"
    ))
}

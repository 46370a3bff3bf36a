//! Alerts and the per-group dashboard.

use super::*;

/// A stack that tells you when it breaks: an SNS topic (an email
/// subscription when `AlertEmail` is set) and alarms on what would
/// otherwise fail silently. Each alarm's reason is in its description.
pub(super) fn alerts(resources: &mut Map<String, Value>, policy: &Policy) {
    // No KMS key: CloudWatch alarms cannot publish to a topic under the
    // AWS-managed SNS key (a customer key would need a key policy for them).
    resources.insert(
        "AlertTopic".into(),
        json!({ "Type": "AWS::SNS::Topic", "Properties": { "TopicName": sub("${AWS::StackName}-alerts") } }),
    );
    resources.insert(
        "AlertSubscription".into(),
        json!({
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlertEmail",
            "Properties": { "TopicArn": reference("AlertTopic"), "Protocol": "email", "Endpoint": reference("AlertEmail") }
        }),
    );
    let alarm = |name: &str,
                 description: String,
                 namespace: &str,
                 metric: &str,
                 dimensions: Value,
                 statistic: &str,
                 periods: u32| {
        json!({
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": sub(&format!("${{AWS::StackName}}-{name}")),
                "AlarmDescription": description,
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": dimensions,
                "Statistic": statistic,
                "Period": 60,
                "EvaluationPeriods": periods,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [reference("AlertTopic")],
                "OKActions": [reference("AlertTopic")]
            }
        })
    };
    let function = json!([{ "Name": "FunctionName", "Value": reference(FUNCTION.1) }]);
    resources.insert(
        "AlertFunctionErrors".into(),
        alarm(
            "function-errors",
            "The scaler function failed (a trigger was retried, or dropped as malformed): see its log group".into(),
            "AWS/Lambda",
            "Errors",
            function.clone(),
            "Sum",
            1,
        ),
    );
    resources.insert(
        "AlertFunctionThrottles".into(),
        alarm(
            "function-throttles",
            "The scaler function was throttled: decisions wait (account concurrency?)".into(),
            "AWS/Lambda",
            "Throttles",
            function,
            "Sum",
            1,
        ),
    );
    for (id, what) in [
        (
            "DeadLetterQueue",
            "a trigger EventBridge or the scheduler could not deliver to the trigger queue",
        ),
        ("TriggerDeadLetters", "a trigger the function failed on three times"),
    ] {
        resources.insert(
            format!("Alert{id}"),
            alarm(
                &format!("{}-depth", id.to_lowercase()),
                format!("{what} waits in {id}: look at it, then redrive or delete it"),
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                json!([{ "Name": "QueueName", "Value": get_att(id, "QueueName") }]),
                "Maximum",
                1,
            ),
        );
    }
    for group in &policy.groups {
        let id = logical(&group.name);
        let name = &group.name;
        if resources.contains_key(&format!("Tick{id}")) {
            resources.insert(
                format!("Alert{id}TickFailed"),
                alarm(
                    &format!("{name}-tick-failed"),
                    format!("EventBridge could not deliver group {name}'s tick to the trigger queue: no target tracking, no alarm re-check, no predictive scaling"),
                    "AWS/Events",
                    "FailedInvocations",
                    json!([{ "Name": "RuleName", "Value": reference(&format!("Tick{id}")) }]),
                    "Sum",
                    1,
                ),
            );
        }
        resources.insert(
            format!("Alert{id}Unhealthy"),
            alarm(
                &format!("{name}-unhealthy-targets"),
                format!("Group {name} has targets failing their health checks for 5 minutes"),
                "AWS/ApplicationELB",
                "UnHealthyHostCount",
                json!([
                    { "Name": "TargetGroup", "Value": get_att(&format!("TargetGroup{id}"), "TargetGroupFullName") },
                    { "Name": "LoadBalancer", "Value": get_att(&format!("LoadBalancer{id}"), "LoadBalancerFullName") }
                ]),
                "Maximum",
                5,
            ),
        );
        // In service below desired for 10 minutes: launches failing, or
        // instances that never become healthy (Auto Scaling group metrics).
        let dimension = json!([{ "Name": "AutoScalingGroupName", "Value": name }]);
        resources.insert(
            format!("Alert{id}BelowDesired"),
            json!({
                "Type": "AWS::CloudWatch::Alarm",
                "DependsOn": format!("Group{id}"),
                "Properties": {
                    "AlarmName": sub(&format!("${{AWS::StackName}}-{name}-below-desired")),
                    "AlarmDescription": format!("Group {name} has had fewer instances in service than desired for 10 minutes"),
                    "Metrics": [
                        { "Id": "desired", "ReturnData": false, "MetricStat": { "Metric": { "Namespace": "AWS/AutoScaling", "MetricName": "GroupDesiredCapacity", "Dimensions": dimension }, "Period": 60, "Stat": "Minimum" } },
                        { "Id": "inservice", "ReturnData": false, "MetricStat": { "Metric": { "Namespace": "AWS/AutoScaling", "MetricName": "GroupInServiceInstances", "Dimensions": dimension }, "Period": 60, "Stat": "Maximum" } },
                        { "Id": "missing", "Expression": "desired - inservice", "Label": "instances short", "ReturnData": true }
                    ],
                    "EvaluationPeriods": 10,
                    "Threshold": 0,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [reference("AlertTopic")],
                    "OKActions": [reference("AlertTopic")]
                }
            }),
        );
    }
}

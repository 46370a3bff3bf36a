//! What invokes the functions: the alarm-state rule, each group's tick, the
//! scheduled actions' schedules, all through the trigger queue.

use super::*;

/// The EventBridge rules that send to the queue (for its policy).
pub(super) fn trigger_rules(policy: &Policy) -> Vec<String> {
    policy
        .groups
        .iter()
        .flat_map(|g| {
            let id = logical(&g.name);
            let alarms = (!g.alarm_policies.is_empty()).then(|| format!("AlarmState{id}"));
            let tick = g.needs_tick().then(|| format!("Tick{id}"));
            alarms.into_iter().chain(tick)
        })
        .collect()
}

/// A target that sends to the queue in `group`'s message group.
pub(super) fn queue_target(id: &str, group: &str, extra: Value) -> Value {
    let mut target = json!({
        "Id": id,
        "Arn": get_att(QUEUE, "Arn"),
        "SqsParameters": { "MessageGroupId": group },
        "DeadLetterConfig": { "Arn": get_att("DeadLetterQueue", "Arn") }
    });
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        target.extend(extra);
    }
    target
}

pub(super) fn triggers(resources: &mut Map<String, Value>, policy: &Policy) {
    for group in &policy.groups {
        let id = logical(&group.name);
        // One rule per group: its message group is the group.
        if !group.alarm_policies.is_empty() {
            resources.insert(
                format!("AlarmState{id}"),
                json!({
                    "Type": "AWS::Events::Rule",
                    "DependsOn": format!("Group{id}"),
                    "Properties": {
                        "Description": format!("State changes of group {}'s alarms, into its message group of the trigger queue", group.name),
                        "EventPattern": {
                            "source": ["aws.cloudwatch"],
                            "detail-type": ["CloudWatch Alarm State Change"],
                            "resources": group.alarm_policies.iter().map(|a| get_att(&format!("Alarm{}", logical(&a.alarm)), "Arn")).collect::<Vec<_>>()
                        },
                        "State": "ENABLED",
                        "Targets": [queue_target("trigger-queue", &group.name, json!({ "RetryPolicy": { "MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": crate::queue::RETENTION_S } }))]
                    }
                }),
            );
        }
        if !group.needs_tick() {
            continue;
        }
        // The event names its group (detail.group), which the function
        // routes by: EventBridge's input transformer keeps the Scheduled
        // Event's fields and adds the group.
        resources.insert(
            format!("Tick{id}"),
            json!({
                "Type": "AWS::Events::Rule",
                // No tick before its group exists, nor while it is deleted.
                "DependsOn": format!("Group{id}"),
                "Properties": {
                    "Name": sub(&format!("{}-${{AWS::StackName}}-tick", group.name)),
                    "Description": format!("Every minute: target tracking of group {} and a re-check of its alarms still in ALARM", group.name),
                    "ScheduleExpression": "rate(1 minute)",
                    "State": "ENABLED",
                    "Targets": [queue_target("trigger-queue", &group.name, json!({ "InputTransformer": tick_input(&group.name), "RetryPolicy": { "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60 } }))]
                }
            }),
        );
    }
    let schedules: Vec<(&GroupPolicy, &crate::policy::Schedule)> = policy
        .groups
        .iter()
        .flat_map(|g| g.schedules.iter().map(move |s| (g, s)))
        .collect();
    if schedules.is_empty() {
        return;
    }
    resources.insert(
        "SchedulerRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "Service": "scheduler.amazonaws.com" }, "Action": "sts:AssumeRole", "Condition": { "StringEquals": { "aws:SourceAccount": reference("AWS::AccountId") } } }] },
                "Policies": [{
                    "PolicyName": "send-to-the-trigger-queue",
                    "PolicyDocument": { "Version": "2012-10-17", "Statement": [
                        { "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": [get_att(QUEUE, "Arn"), get_att("DeadLetterQueue", "Arn")] }
                    ] }
                }]
            }
        }),
    );
    for (group, schedule) in schedules {
        let Some(expression) = schedule.expression() else {
            continue;
        };
        resources.insert(
            format!("Schedule{}", logical(&schedule.name)),
            json!({
                "Type": "AWS::Scheduler::Schedule",
                "DependsOn": format!("Group{}", logical(&group.name)),
                "Properties": {
                    "Name": schedule.name,
                    "Description": format!("Scheduled action {} of the policy file", schedule.name),
                    "ScheduleExpression": expression,
                    "ScheduleExpressionTimezone": schedule.timezone.as_deref().unwrap_or("UTC"),
                    "FlexibleTimeWindow": { "Mode": "OFF" },
                    "State": "ENABLED",
                    "Target": {
                        "Arn": get_att(QUEUE, "Arn"),
                        "RoleArn": get_att("SchedulerRole", "Arn"),
                        "SqsParameters": { "MessageGroupId": group.name },
                        "Input": sub(&scheduled_event_input(&schedule.name)),
                        "RetryPolicy": { "MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": crate::queue::RETENTION_S },
                        "DeadLetterConfig": { "Arn": get_att("DeadLetterQueue", "Arn") }
                    }
                }
            }),
        );
    }
}

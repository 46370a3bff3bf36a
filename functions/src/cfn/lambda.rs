//! The scaling functions: their code, roles, queues, log groups and
//! concurrency.

use super::*;

/// The groups' FIFO queue, its dead letters, and the one function that
/// consumes it (see [`crate::queue`]: one decision at a time per group).
pub(super) fn functions(resources: &mut Map<String, Value>, policy: &Policy) {
    use crate::queue::{FUNCTION_TIMEOUT_S, MAX_BATCH, MAX_RECEIVES, RETENTION_S, VISIBILITY_TIMEOUT_S};
    // Deliveries EventBridge and the scheduler could not make. Their DLQ
    // must be a standard queue; EventBridge cannot write to a queue under
    // the AWS-managed KMS key, so SSE-SQS and a queue policy.
    resources.insert(
        "DeadLetterQueue".into(),
        json!({ "Type": "AWS::SQS::Queue", "Properties": { "MessageRetentionPeriod": 1_209_600, "SqsManagedSseEnabled": true } }),
    );
    // Triggers the function failed on MAX_RECEIVES times (a FIFO queue's
    // redrive target is a FIFO queue).
    resources.insert(
        "TriggerDeadLetters".into(),
        json!({ "Type": "AWS::SQS::Queue", "Properties": {
            "FifoQueue": true,
            "QueueName": sub("${AWS::StackName}-trigger-dead-letters.fifo"),
            "MessageRetentionPeriod": 1_209_600,
            "SqsManagedSseEnabled": true
        } }),
    );
    resources.insert(
        QUEUE.into(),
        json!({ "Type": "AWS::SQS::Queue", "Properties": {
            "FifoQueue": true,
            "QueueName": sub("${AWS::StackName}-triggers.fifo"),
            // Required by EventBridge Scheduler's FIFO targets.
            "ContentBasedDeduplication": true,
            "VisibilityTimeout": VISIBILITY_TIMEOUT_S,
            "MessageRetentionPeriod": RETENTION_S,
            "SqsManagedSseEnabled": true,
            "RedrivePolicy": { "deadLetterTargetArn": get_att("TriggerDeadLetters", "Arn"), "maxReceiveCount": MAX_RECEIVES }
        } }),
    );
    let rules: Vec<Value> = trigger_rules(policy).into_iter().map(|r| get_att(&r, "Arn")).collect();
    if !rules.is_empty() {
        resources.insert(
            "QueuePolicy".into(),
            json!({
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [reference(QUEUE), reference("DeadLetterQueue")],
                    "PolicyDocument": { "Version": "2012-10-17", "Statement": [{
                        "Sid": "ThisStacksRules",
                        "Effect": "Allow",
                        "Principal": { "Service": "events.amazonaws.com" },
                        "Action": "sqs:SendMessage",
                        "Resource": [get_att(QUEUE, "Arn"), get_att("DeadLetterQueue", "Arn")],
                        "Condition": { "ArnEquals": { "aws:SourceArn": rules } }
                    }] }
                }
            }),
        );
    }
    let group_arns: Vec<Value> = policy.groups.iter().map(|g| group_arn(&g.name)).collect();
    // UpdateAutoScalingGroup (the schedules' min and max) only within the
    // limits the policy's schedules and the stack's parameters allow: the
    // autoscaling:MinSize / autoscaling:MaxSize condition keys ("IfExists":
    // a call may set one of them; a list of values matches any).
    let limits: Vec<Value> = policy
        .groups
        .iter()
        .map(|g| {
            let id = logical(&g.name);
            let lowest = g.schedules.iter().filter_map(|s| s.min).chain([g.min]).min().unwrap_or(g.min);
            let highest = g.schedules.iter().filter_map(|s| s.max).chain([g.max]).max().unwrap_or(g.max);
            json!({
                "Sid": format!("LimitsOf{id}"),
                "Effect": "Allow",
                "Action": "autoscaling:UpdateAutoScalingGroup",
                "Resource": group_arn(&g.name),
                "Condition": {
                    "NumericGreaterThanEqualsIfExists": { "autoscaling:MinSize": [lowest, reference(&format!("{id}Min"))] },
                    "NumericLessThanEqualsIfExists": { "autoscaling:MaxSize": [highest, reference(&format!("{id}Max"))] }
                }
            })
        })
        .collect();
    resources.insert(
        "FunctionRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "Service": "lambda.amazonaws.com" }, "Action": "sts:AssumeRole" }] },
                "ManagedPolicyArns": [sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")],
                "Policies": [{
                    "PolicyName": "scale-this-stacks-groups",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            { "Sid": "ChangeOnlyTheseGroups", "Effect": "Allow", "Action": "autoscaling:SetDesiredCapacity", "Resource": group_arns },
                            // Only the decision tag (EC2 Auto Scaling: aws:TagKeys on CreateOrUpdateTags).
                            { "Sid": "OnlyTheDecisionTag", "Effect": "Allow", "Action": "autoscaling:CreateOrUpdateTags", "Resource": group_arns, "Condition": { "ForAllValues:StringEquals": { "aws:TagKeys": [crate::aws::CAUSE_TAG] } } },
                            // These three and GetMetricData have no resource types (Service
                            // Authorization Reference: Resource "*").
                            { "Sid": "ReadGroupsAndMetrics", "Effect": "Allow", "Action": ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities", "autoscaling:DescribeTags", "cloudwatch:GetMetricData"], "Resource": "*" },
                            { "Sid": "ConsumeTheTriggerQueue", "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"], "Resource": get_att(QUEUE, "Arn") }
                        ]
                    }
                }]
            }
        }),
    );
    // DescribeAlarms takes the alarm resource type: only the policy's own
    // alarms, the ones the functions re-check (by name; composite alarms,
    // which need "*", are not used).
    let mut alarm_names: Vec<&str> = policy
        .groups
        .iter()
        .flat_map(|g| &g.alarm_policies)
        .map(|a| a.alarm.as_str())
        .collect();
    alarm_names.sort_unstable();
    alarm_names.dedup();
    let read_alarms = (!alarm_names.is_empty()).then(|| {
        let arns: Vec<Value> = alarm_names
            .iter()
            .map(|name| sub(&format!("arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{name}")))
            .collect();
        json!({ "Sid": "ReadOnlyThePolicysAlarms", "Effect": "Allow", "Action": "cloudwatch:DescribeAlarms", "Resource": arns })
    });
    if let Some(Value::Array(statements)) = resources
        .get_mut("FunctionRole")
        .and_then(|r| r.pointer_mut("/Properties/Policies/0/PolicyDocument/Statement"))
    {
        statements.extend(read_alarms);
        statements.extend(limits);
    }
    // Each group's own target group, by name (issue 18: the first group's was read for all).
    let target_groups = sub(&policy
        .groups
        .iter()
        .map(|g| format!("{}=${{TargetGroup{}.TargetGroupFullName}}", g.name, logical(&g.name)))
        .collect::<Vec<_>>()
        .join(","));
    // Each group's own load balancer (one per group), for cpu_demand.
    let load_balancers = sub(&policy
        .groups
        .iter()
        .map(|g| format!("{}=${{LoadBalancer{}.LoadBalancerFullName}}", g.name, logical(&g.name)))
        .collect::<Vec<_>>()
        .join(","));
    let (binary, id) = FUNCTION;
    resources.insert(
        format!("{id}Logs"),
        json!({
            "Type": "AWS::Logs::LogGroup",
            "Properties": { "LogGroupName": sub(&format!("/aws/lambda/${{AWS::StackName}}-{binary}")), "RetentionInDays": 30 }
        }),
    );
    // No reserved concurrency: the FIFO queue serialises each group, and
    // Lambda refuses reserved concurrency that leaves an account below its
    // minimum unreserved (new accounts). No async DLQ: the queue's redrive
    // policy keeps what failed.
    resources.insert(
        id.into(),
        json!({
            "Type": "AWS::Lambda::Function",
            "DependsOn": format!("{id}Logs"),
            "Properties": {
                "FunctionName": sub(&format!("${{AWS::StackName}}-{binary}")),
                "Description": format!("{binary}: decides and sets each group's desired capacity, one trigger at a time per group (see the repository's README)"),
                "Runtime": "provided.al2023",
                "Architectures": ["arm64"],
                "Handler": "bootstrap",
                "MemorySize": 128,
                "Timeout": FUNCTION_TIMEOUT_S,
                "Role": get_att("FunctionRole", "Arn"),
                "Code": { "S3Bucket": reference("ArtifactBucket"), "S3Key": sub(&format!("functions/{binary}-${{{id}Sha256}}.zip")) },
                "TracingConfig": { "Mode": "PassThrough" },
                "Environment": { "Variables": {
                    "SCALER_POLICY": "policy.toml",
                    "SCALER_DRY_RUN": reference("DryRun"),
                    "SCALER_TARGET_GROUPS": target_groups,
                    "SCALER_LOAD_BALANCERS": load_balancers,
                    "SCALER_METRICS_NAMESPACE": sub(crate::dashboard::NAMESPACE)
                } }
            }
        }),
    );
    resources.insert(
        format!("{id}Queue"),
        json!({
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": reference(id),
                "EventSourceArn": get_att(QUEUE, "Arn"),
                "BatchSize": MAX_BATCH,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "Enabled": true
            }
        }),
    );
}

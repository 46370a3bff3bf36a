//! The AWS stack as a CloudFormation template generated from the policy
//! file, so the alarms, schedules and groups AWS runs are the ones the
//! functions read (`scalectl template`; `infra/aws/template.json` is its
//! output for `policies/two-tier.toml`, kept in step by a test).
//!
//! Shape: a VPC with two public subnets (the load balancer) and two private
//! subnets (the instances; no NAT: the only egress they need is S3, through a
//! gateway endpoint); an internet-facing ALB with one listener per group
//! (port 80 for the first, 8001, 8002, ... for the next) and a target group
//! health-checking `/health`; one launch template (IMDSv2 only, encrypted
//! disk, an instance profile that may read only the workload binary) and an
//! Auto Scaling group per policy group, named as in the policy; a CloudWatch
//! alarm per alarm policy, named as in the policy; the three functions
//! (provided.al2023, arm64, reserved concurrency 1, a dead-letter queue, log
//! retention, IAM limited to the stack's groups); an EventBridge rule for
//! the alarms' state changes, a one-minute `GROUP-STACK-tick` rule per group,
//! and an EventBridge Scheduler schedule per scheduled action (schedules
//! have time zones; plain EventBridge rules do not), whose input is the
//! "Scheduled Event" JSON the schedule function reads.

use serde_json::{Map, Value, json};

use crate::policy::{AlarmPolicy, Comparison, Exposure, GroupPolicy, MissingData, Policy};

/// The function binary and its template id (the core's one list).
pub use scaling::FUNCTION;

mod adopt;
mod alerts;
mod groups;
mod lambda;
mod network;
mod triggers;

pub use adopt::{adopt_template, referenced_names};
pub use groups::dimension_value;
pub use network::{USER_DATA, user_data};
use {alerts::*, groups::*, lambda::*, network::*, triggers::*};

/// The groups' trigger queue (SQS FIFO, one message group per group).
pub const QUEUE: &str = "TriggerQueue";

/// The port the workload listens on in the instances.
pub const SERVICE_PORT: u16 = 8080;
/// The target group's health checks: a new target gets requests after
/// `HEALTHY_THRESHOLD` passes `HEALTH_CHECK_INTERVAL_S` apart (`verify
/// --aws` waits that long after the group reaches max before its hold).
pub const HEALTH_CHECK_INTERVAL_S: u32 = 10;
pub const HEALTHY_THRESHOLD: u32 = 2;

/// `web-api` -> `WebApi`: a CloudFormation logical id part.
pub fn logical(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

/// CloudWatch's name of a comparison.
pub fn comparison_operator(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::Greater => "GreaterThanThreshold",
        Comparison::GreaterOrEqual => "GreaterThanOrEqualToThreshold",
        Comparison::Less => "LessThanThreshold",
        Comparison::LessOrEqual => "LessThanOrEqualToThreshold",
    }
}

/// CloudWatch's name of a missing-data treatment.
pub fn treat_missing_data(missing: MissingData) -> &'static str {
    match missing {
        MissingData::Missing => "missing",
        MissingData::Ignore => "ignore",
        MissingData::Breaching => "breaching",
        MissingData::NotBreaching => "notBreaching",
    }
}

/// The whole template.
pub fn template(policy: &Policy) -> Value {
    let mut resources = Map::new();
    let mut outputs = Map::new();
    network(&mut resources);
    let exposures: Vec<Exposure> = (0..policy.groups.len()).map(|i| policy.exposure(i)).collect();
    instances(&mut resources, &exposures, user_data(policy));
    for (group, exposure) in policy.groups.iter().zip(&exposures) {
        group_resources(&mut resources, &mut outputs, group, *exposure);
    }
    let alarms: Vec<(&GroupPolicy, &AlarmPolicy)> = policy
        .groups
        .iter()
        .flat_map(|g| g.alarm_policies.iter().map(move |a| (g, a)))
        .collect();
    for (group, alarm) in &alarms {
        resources.insert(format!("Alarm{}", logical(&alarm.alarm)), alarm_resource(group, alarm));
    }
    functions(&mut resources, policy);
    triggers(&mut resources, policy);
    alerts(&mut resources, policy);
    for group in &policy.groups {
        let id = logical(&group.name);
        resources.insert(format!("Dashboard{id}"), crate::dashboard::dashboard(group, &id));
        outputs.insert(
            format!("Dashboard{id}"),
            json!({ "Description": format!("Group {}'s CloudWatch dashboard", group.name), "Value": sub(&format!("https://${{AWS::Region}}.console.aws.amazon.com/cloudwatch/home?region=${{AWS::Region}}#dashboards:name=${{AWS::StackName}}-{}", group.name)) }),
        );
    }
    outputs.insert(
        "DeadLetterQueue".into(),
        json!({ "Description": "Triggers EventBridge or the scheduler could not deliver to the trigger queue", "Value": reference("DeadLetterQueue") }),
    );
    outputs.insert(
        "AlertTopic".into(),
        json!({ "Description": "Where the stack's own alarms go (subscribe, or set AlertEmail)", "Value": reference("AlertTopic") }),
    );
    outputs.insert(
        "TriggerDeadLetters".into(),
        json!({ "Description": "Triggers the function failed on three times", "Value": reference("TriggerDeadLetters") }),
    );
    let groups: Vec<&str> = policy.groups.iter().map(|g| g.name.as_str()).collect();
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "Serverless autoscaler: groups {} with their alarms, schedules and scaling functions (generated by `scalectl template` from the policy file; do not edit by hand)",
            groups.join(", ")
        ),
        "Parameters": parameters(policy),
        "Conditions": {
            "HasAlertEmail": { "Fn::Not": [{ "Fn::Equals": [reference("AlertEmail"), ""] }] },
            "Burstable": { "Fn::Equals": [{ "Fn::Select": [0, { "Fn::Split": [".", reference("InstanceType")] }] }, "t4g"] }
        },
        "Resources": resources,
        "Outputs": outputs,
    })
}

fn parameters(policy: &Policy) -> Value {
    let mut parameters = json!({
        "ArtifactBucket": {
            "Type": "String",
            "Description": "S3 bucket holding the workload binary and the function zips (see infra/aws/README.md)"
        },
        "WorkloadSha256": {
            "Type": "String",
            "AllowedPattern": "^[0-9a-f]{64}$",
            "ConstraintDescription": "the SHA-256 of the workload binary, as deploy.sh computes it",
            "Description": "SHA-256 of the workload binary (linux arm64): its key is workload/workload-SHA256. Content-addressed: CloudFormation does not look inside S3 objects, so a new binary must be a new key"
        },
        "FUNCTION_SHA": {
            "Type": "String",
            "AllowedPattern": "^[0-9a-f]{64}$",
            "ConstraintDescription": "the SHA-256 of the function's code, as deploy.sh computes it",
            "Description": "SHA-256 of the scaler function's code (bootstrap and policy.toml): its zip's key is functions/scaler-SHA256.zip. Content-addressed: \"changes to a deployment package in Amazon S3 are not detected automatically\""
        },
        "InstanceType": {
            "Type": "String",
            "Default": "t4g.small",
            "AllowedValues": ["t4g.micro", "t4g.small", "t4g.medium", "c7g.medium", "c7g.large"],
            "Description": "Graviton instance type of the group"
        },
        "ImageId": {
            "Type": "AWS::EC2::Image::Id",
            "Description": "The instances' AMI (Amazon Linux 2023 arm64), pinned: deploy.sh resolves the latest on the first deploy and keeps the stack's on updates unless --new-ami, so a new AMI never replaces every instance during an unrelated deploy"
        },
        "AlertEmail": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^$|^[^@\\s]+@[^@\\s]+$",
            "ConstraintDescription": "an email address, or empty for no subscription",
            "Description": "Who hears when the stack breaks (the AlertTopic's email subscription; empty: subscribe yourself)"
        },
        "DryRun": {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["true", "false"],
            "Description": "true: the functions decide and log, and change nothing"
        }
    });
    // The function's code parameter, named after its template id.
    if let Some(code) = parameters.as_object_mut().and_then(|p| p.remove("FUNCTION_SHA")) {
        parameters[format!("{}Sha256", FUNCTION.1)] = code;
    }
    for group in &policy.groups {
        let id = logical(&group.name);
        for (suffix, default, what) in [("Min", group.min, "minimum"), ("Max", group.max, "maximum")] {
            parameters[format!("{id}{suffix}")] = json!({
                "Type": "Number",
                "Default": default,
                "MinValue": 0,
                "MaxValue": 1000,
                "Description": format!("Group {}: {what} capacity (default: the policy file)", group.name)
            });
        }
    }
    parameters
}

/// What a stack named `stack` would name that AWS would refuse: every name
/// the template builds from the stack's name, with the service's limit
/// (CloudFormation stack names: a letter, then letters, digits and `-`, at
/// most 128; Lambda function names and EventBridge rule names: 64; SQS
/// queue names: 80, `.fifo` included). Empty when the stack can be created.
pub fn name_problems(policy: &Policy, stack: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let valid = stack.len() <= 128
        && stack.starts_with(|c: char| c.is_ascii_alphabetic())
        && stack.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        problems.push(format!(
            "stack name {stack:?}: a letter, then letters, digits and -, at most 128 characters"
        ));
    }
    // The names as the template writes them (`${AWS::StackName}-...`), so
    // a name changed there is checked here without a second copy of it.
    let template = template(policy);
    let named = |id: &str, property: &str| {
        template["Resources"][id]["Properties"][property]["Fn::Sub"]
            .as_str()
            .map(|name| name.replace("${AWS::StackName}", stack))
    };
    let mut names: Vec<(String, Option<String>, usize)> = vec![
        ("the function".into(), named(FUNCTION.1, "FunctionName"), 64),
        ("the trigger queue".into(), named(QUEUE, "QueueName"), 80),
        (
            "the trigger dead letters".into(),
            named("TriggerDeadLetters", "QueueName"),
            80,
        ),
    ];
    for group in &policy.groups {
        let tick = named(&format!("Tick{}", logical(&group.name)), "Name");
        if tick.is_some() {
            names.push((format!("group {}'s tick rule", group.name), tick, 64));
        }
    }
    for (what, name, limit) in names {
        let Some(name) = name else { continue };
        if name.len() > limit {
            problems.push(format!(
                "{what} would be named {name:?} ({} characters; at most {limit}): use a stack name at most {} characters long",
                name.len(),
                stack.len() - (name.len() - limit)
            ));
        }
    }
    problems
}

/// The tick rule's input transformer: the Scheduled Event as EventBridge
/// sends it (id, time, account, region and resources from the event), with
/// the group in `detail.group` (EventBridge InputTransformer: placeholders
/// outside quotes take the JSON value as it is).
pub fn tick_input(group: &str) -> Value {
    json!({
        "InputPathsMap": {
            "id": "$.id",
            "time": "$.time",
            "account": "$.account",
            "region": "$.region",
            "resources": "$.resources"
        },
        "InputTemplate": tick_template(group)
    })
}

/// The tick's `InputTemplate` for `group`.
pub fn tick_template(group: &str) -> String {
    format!(
        r#"{{"version":"0","id":<id>,"detail-type":"Scheduled Event","source":"aws.events","account":<account>,"time":<time>,"region":<region>,"resources":<resources>,"detail":{{"group":{}}}}}"#,
        json!(group)
    )
}

/// The input EventBridge Scheduler sends: the "Scheduled Event" shape the
/// schedule function reads, with the schedule's name as the rule name
/// (`${...}` for CloudFormation, `<aws.scheduler...>` filled in at each run).
pub fn scheduled_event_input(name: &str) -> String {
    format!(
        r#"{{"version":"0","id":"<aws.scheduler.execution-id>","detail-type":"Scheduled Event","source":"aws.scheduler","account":"${{AWS::AccountId}}","time":"<aws.scheduler.scheduled-time>","region":"${{AWS::Region}}","resources":["arn:aws:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/{name}"],"detail":{{}}}}"#
    )
}

//! The AWS template and the policy file agree: the checked-in
//! infra/aws/template.json is what `scalectl template` makes of
//! policies/two-tier.toml, and every alarm, schedule, tick and group in it
//! matches the policy field by field (so a hand edit of either is caught
//! with the field that disagrees).

mod support;

use std::path::Path;

use functions::cfn::{comparison_operator, logical, scheduled_event_input, template, treat_missing_data};
use functions::policy::Policy;
use functions::trigger::{Parsed, Routed, parse_str};
use serde_json::Value;

fn root(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn policy() -> Policy {
    Policy::load(&root("policies/two-tier.toml")).expect("policy")
}

fn checked_in() -> Value {
    let text = std::fs::read_to_string(root("infra/aws/template.json")).expect("infra/aws/template.json");
    serde_json::from_str(&text).expect("template JSON")
}

#[test]
fn the_checked_in_template_is_generated_from_the_policy() {
    // Compared as JSON (key order may differ between builds of serde_json).
    let generated = template(&policy());
    assert!(
        generated == checked_in(),
        "infra/aws/template.json is stale: run `cargo run -p functions --bin scalectl -- template --policy policies/two-tier.toml --out infra/aws/template.json`"
    );
}

#[test]
fn alarms_match_the_policy_field_by_field() {
    let policy = policy();
    let template = checked_in();
    let resources = template["Resources"].as_object().expect("resources");
    // The policy's alarms are named as in the policy; the stack's own
    // alerts (`the_stack_alarms_on_what_would_fail_silently`) carry the
    // stack's name and go to the alert topic only.
    let (alarms, alerts): (Vec<&Value>, Vec<&Value>) = resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .partition(|r| r["Properties"]["AlarmName"].is_string());
    assert!(
        alerts
            .iter()
            .all(|a| a["Properties"]["AlarmActions"][0]["Ref"] == "AlertTopic")
    );
    let expected: Vec<_> = policy.groups.iter().flat_map(|g| g.alarm_policies.iter()).collect();
    assert_eq!(alarms.len(), expected.len(), "one alarm per alarm policy, no more");
    for a in expected {
        let found = alarms
            .iter()
            .find(|r| r["Properties"]["AlarmName"] == a.alarm.as_str())
            .unwrap_or_else(|| panic!("alarm {} is missing from the template", a.alarm));
        let p = &found["Properties"];
        let check = |field: &str, want: Value| assert_eq!(p[field], want, "alarm {}: {field}", a.alarm);
        check("Namespace", a.metric.namespace.clone().into());
        check("MetricName", a.metric.name.clone().into());
        check("Threshold", a.threshold.into());
        check("Period", a.period.as_secs().into());
        check("EvaluationPeriods", a.evaluation_periods.into());
        check(
            "DatapointsToAlarm",
            a.datapoints_to_alarm.unwrap_or(a.evaluation_periods).into(),
        );
        check("ComparisonOperator", comparison_operator(a.comparison).into());
        check("TreatMissingData", treat_missing_data(a.missing_data).into());
        check("Statistic", a.metric.stat.to_string().into());
        let dimensions: Vec<(String, Value)> = p["Dimensions"]
            .as_array()
            .expect("dimensions")
            .iter()
            .map(|d| (d["Name"].as_str().unwrap_or("").into(), d["Value"].clone()))
            .collect();
        // A target group by the full name CloudWatch publishes it under (ALB
        // docs: the TargetGroup dimension is targetgroup/NAME/ID).
        let want: Vec<(String, Value)> = a
            .metric
            .dimensions
            .iter()
            .map(|(k, v)| {
                let value = if k == "TargetGroup" {
                    serde_json::json!({ "Fn::GetAtt": [format!("TargetGroup{}", logical(v)), "TargetGroupFullName"] })
                } else {
                    Value::from(v.as_str())
                };
                (k.clone(), value)
            })
            .collect();
        assert_eq!(dimensions, want, "alarm {}: Dimensions", a.alarm);
        // Its state changes reach its group's rule (its message group).
        let group = policy
            .groups
            .iter()
            .find(|g| g.alarm_policy(&a.alarm).is_some())
            .expect("group");
        let rule =
            &resources[&format!("AlarmState{}", logical(&group.name))]["Properties"]["EventPattern"]["resources"];
        let arn = serde_json::json!({ "Fn::GetAtt": [format!("Alarm{}", logical(&a.alarm)), "Arn"] });
        assert!(
            rule.as_array().is_some_and(|r| r.contains(&arn)),
            "alarm {} is not routed",
            a.alarm
        );
    }
}

#[test]
fn groups_schedules_and_ticks_match_the_policy() {
    let policy = policy();
    let template = checked_in();
    let resources = &template["Resources"];
    let parameters = &template["Parameters"];
    for group in &policy.groups {
        let id = logical(&group.name);
        let asg = &resources[format!("Group{id}")]["Properties"];
        assert_eq!(
            asg["AutoScalingGroupName"],
            group.name.as_str(),
            "the functions call the group by this name"
        );
        assert_eq!(
            parameters[format!("{id}Min")]["Default"],
            group.min,
            "{}: min",
            group.name
        );
        assert_eq!(
            parameters[format!("{id}Max")]["Default"],
            group.max,
            "{}: max",
            group.name
        );
        assert_eq!(
            asg["Cooldown"],
            group.cooldown.as_secs().to_string(),
            "{}: cooldown",
            group.name
        );
        assert_eq!(asg["HealthCheckType"], "ELB");
        let tick = &resources[format!("Tick{id}")]["Properties"];
        assert_eq!(tick["ScheduleExpression"], "rate(1 minute)");
        let name = tick["Name"]["Fn::Sub"].as_str().expect("tick name");
        assert!(
            name.starts_with(&format!("{}-", group.name)) && name.ends_with("-tick"),
            "{name}: GROUP-STACK-tick"
        );
        // What EventBridge delivers through the input transformer (each
        // placeholder replaced by the event's JSON value at its path) parses
        // as a Scheduled Event and routes to this group by detail.group.
        let transformer = &tick["Targets"][0]["InputTransformer"];
        let sample: Value =
            serde_json::from_str(&support::event_text("schedule-tick-target-tracking.json")).expect("sample tick");
        let mut delivered = transformer["InputTemplate"]
            .as_str()
            .expect("InputTemplate")
            .to_string();
        for (variable, path) in transformer["InputPathsMap"].as_object().expect("InputPathsMap") {
            let field = path
                .as_str()
                .and_then(|p| p.strip_prefix("$."))
                .expect("a $.field path");
            delivered = delivered.replace(&format!("<{variable}>"), &sample[field].to_string());
        }
        // A group named like another's prefix must not be confused with it.
        let parsed = parse_str(&delivered).unwrap_or_else(|e| panic!("{}: {e}: {delivered}", group.name));
        let Parsed::Event(event) = parsed else {
            panic!("{}: ignored: {delivered}", group.name)
        };
        match event.route(&policy, &[]) {
            Routed::Decide { group: routed, .. } => assert_eq!(routed, group.name),
            other => panic!("{}: {other:?}", group.name),
        }
        for schedule in &group.schedules {
            let s = &resources[format!("Schedule{}", logical(&schedule.name))]["Properties"];
            assert_eq!(s["Name"], schedule.name.as_str());
            assert_eq!(
                s["ScheduleExpression"],
                schedule.expression().expect("expression"),
                "{}: expression",
                schedule.name
            );
            assert_eq!(
                s["ScheduleExpressionTimezone"],
                schedule.timezone.as_deref().unwrap_or("UTC"),
                "{}: time zone",
                schedule.name
            );
        }
    }
    // IAM: the functions may change exactly these groups.
    let statements = &resources["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let change = statements
        .as_array()
        .expect("statements")
        .iter()
        .find(|s| s["Sid"] == "ChangeOnlyTheseGroups")
        .expect("statement");
    let arns: Vec<String> = change["Resource"]
        .as_array()
        .expect("arns")
        .iter()
        .map(|a| a["Fn::Sub"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(arns.len(), policy.groups.len());
    for (arn, group) in arns.iter().zip(&policy.groups) {
        assert!(arn.ends_with(&format!(":autoScalingGroupName/{}", group.name)), "{arn}");
    }
    // The function: arm64, provided.al2023, no reserved concurrency (Lambda
    // refuses it in new accounts; the FIFO queue serialises each group).
    let f = &resources["Scaler"]["Properties"];
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Architectures"][0], "arm64");
    assert!(f.get("ReservedConcurrentExecutions").is_none());
}

/// Every trigger of a group goes into the FIFO queue in the group's message
/// group, and one function consumes it with partial batch responses (issue
/// 18: one decision at a time per group). Docs: Lambda "Lambda parameters
/// for Amazon SQS event source mappings" (FIFO batch <= 10), "Creating and
/// configuring an Amazon SQS event source mapping" (visibility timeout >= 6
/// x the function's timeout), EventBridge Scheduler `SqsParameters`
/// (content-based deduplication on a FIFO target), EventBridge
/// `SqsParameters` (MessageGroupId required for FIFO).
#[test]
fn every_trigger_of_a_group_goes_through_the_fifo_queue_in_its_message_group() {
    let policy = policy();
    let template = template(&policy);
    let resources = &template["Resources"];
    let queue = &resources["TriggerQueue"]["Properties"];
    assert_eq!(queue["FifoQueue"], true);
    assert_eq!(queue["ContentBasedDeduplication"], true);
    assert_eq!(
        queue["SqsManagedSseEnabled"], true,
        "EventBridge cannot use the AWS-managed KMS key"
    );
    assert!(queue.get("KmsMasterKeyId").is_none());
    let timeout = resources["Scaler"]["Properties"]["Timeout"].as_u64().expect("timeout");
    assert!(queue["VisibilityTimeout"].as_u64().expect("visibility") >= 6 * timeout);
    assert!(queue["QueueName"]["Fn::Sub"].as_str().expect("name").ends_with(".fifo"));
    // Its dead letters: a FIFO queue's redrive target is FIFO.
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0],
        "TriggerDeadLetters"
    );
    assert_eq!(resources["TriggerDeadLetters"]["Properties"]["FifoQueue"], true);
    // EventBridge's and the scheduler's own DLQ: standard, SSE-SQS.
    let dlq = &resources["DeadLetterQueue"]["Properties"];
    assert!(dlq.get("FifoQueue").is_none() && dlq["SqsManagedSseEnabled"] == true);
    // One consumer, batches of at most 10, partial batch responses.
    let mappings: Vec<&Value> = resources
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .collect();
    assert_eq!(mappings.len(), 1);
    let mapping = &mappings[0]["Properties"];
    assert_eq!(mapping["EventSourceArn"]["Fn::GetAtt"][0], "TriggerQueue");
    assert_eq!(mapping["FunctionName"]["Ref"], "Scaler");
    assert!(mapping["BatchSize"].as_u64().expect("batch") <= 10);
    assert_eq!(mapping["FunctionResponseTypes"][0], "ReportBatchItemFailures");
    // No trigger invokes a function directly: every target is the queue, in
    // the message group of the group the trigger is for.
    let mut targets = 0;
    for (id, resource) in resources.as_object().expect("resources") {
        let list: Vec<&Value> = match resource["Type"].as_str() {
            Some("AWS::Events::Rule") => resource["Properties"]["Targets"]
                .as_array()
                .expect("targets")
                .iter()
                .collect(),
            Some("AWS::Scheduler::Schedule") => vec![&resource["Properties"]["Target"]],
            Some("AWS::Lambda::Permission") => panic!("{id}: a trigger may not invoke the function directly"),
            _ => continue,
        };
        let group = policy
            .groups
            .iter()
            .find(|g| {
                let l = logical(&g.name);
                *id == format!("AlarmState{l}")
                    || *id == format!("Tick{l}")
                    || g.schedules
                        .iter()
                        .any(|s| *id == format!("Schedule{}", logical(&s.name)))
            })
            .unwrap_or_else(|| panic!("{id}: a trigger of no group"));
        for target in list {
            targets += 1;
            assert_eq!(target["Arn"]["Fn::GetAtt"][0], "TriggerQueue", "{id}");
            assert_eq!(target["SqsParameters"]["MessageGroupId"], group.name.as_str(), "{id}");
        }
    }
    let expected: usize = policy
        .groups
        .iter()
        .map(|g| usize::from(!g.alarm_policies.is_empty()) + usize::from(g.needs_tick()) + g.schedules.len())
        .sum();
    assert_eq!(targets, expected);
    // EventBridge may send only for this stack's rules; the scheduler by its role.
    let statement = &resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let scheduler = &resources["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(scheduler["Action"], "sqs:SendMessage");
}

#[test]
fn the_scheduler_input_is_the_event_the_schedule_function_routes() {
    let policy = policy();
    for schedule in policy.groups.iter().flat_map(|g| g.schedules.iter()) {
        // What CloudFormation and the scheduler fill in.
        let input = scheduled_event_input(&schedule.name)
            .replace("${AWS::AccountId}", "123456789012")
            .replace("${AWS::Region}", "ap-shanghai-1")
            .replace("<aws.scheduler.execution-id>", "0f2b6d3a-1b1c-4a5e-9e0d-6b7f1c2d3e4f")
            .replace("<aws.scheduler.scheduled-time>", "2026-11-20T03:00:00Z");
        let Ok(Parsed::Event(event)) = parse_str(&input) else {
            panic!("{}: the input does not parse: {input}", schedule.name)
        };
        match event.route(&policy, &[]) {
            Routed::Decide { group, trigger } => {
                assert_eq!(group, "web");
                assert_eq!(
                    serde_json::to_value(&trigger).expect("json")["scheduled"]["name"],
                    schedule.name.as_str()
                );
            }
            Routed::Ignored(reason) => panic!("{}: ignored: {reason}", schedule.name),
        }
    }
}

/// Scale from zero (issue 18): each group has its own load balancer, since
/// HTTPCode_ELB_503_Count (the requests answered for want of a target) is
/// published by load balancer only (ALB docs, "CloudWatch metrics for your
/// Application Load Balancer"); an alarm on it names the group's own.
#[test]
fn each_group_has_its_own_load_balancer_and_a_503_alarm_watches_it() {
    let policy = Policy::parse(
        "zero.toml",
        r#"
[[group]]
name = "web"
min = 0
max = 4
[[group.alarm_policy]]
type = "step"
alarm = "web-from-zero"
metric = { namespace = "AWS/ApplicationELB", name = "HTTPCode_ELB_503_Count", stat = "Sum", dimensions = { LoadBalancer = "web" } }
comparison = ">"
threshold = 0
period = "60s"
evaluation_periods = 1
missing_data = "not_breaching"
adjustment = "change_in_capacity"
steps = [{ lower = 0, change = 2 }]

[[group]]
name = "api"
min = 1
max = 3
"#,
    )
    .expect("policy");
    let template = template(&policy);
    let resources = &template["Resources"];
    for group in ["Web", "Api"] {
        let lb = &resources[&format!("LoadBalancer{group}")];
        assert_eq!(lb["Type"], "AWS::ElasticLoadBalancingV2::LoadBalancer", "{group}");
        let listener = &resources[&format!("Listener{group}")]["Properties"];
        assert_eq!(listener["LoadBalancerArn"]["Ref"], format!("LoadBalancer{group}"));
        assert_eq!(listener["Port"], 80);
        let url = template["Outputs"][&format!("Url{group}")]["Value"]["Fn::Sub"]
            .as_str()
            .expect("url");
        assert_eq!(url, format!("http://${{LoadBalancer{group}.DNSName}}"));
    }
    assert!(
        resources.get("LoadBalancer").is_none(),
        "no load balancer shared by the groups"
    );
    let alarm = &resources["AlarmWebFromZero"]["Properties"];
    assert_eq!(alarm["MetricName"], "HTTPCode_ELB_503_Count");
    assert_eq!(alarm["Statistic"], "Sum");
    assert_eq!(alarm["Dimensions"][0]["Name"], "LoadBalancer");
    assert_eq!(
        alarm["Dimensions"][0]["Value"],
        serde_json::json!({ "Fn::GetAtt": ["LoadBalancerWeb", "LoadBalancerFullName"] })
    );
    assert_eq!(alarm["TreatMissingData"], "notBreaching");
}

/// Issue 20, updates that update and keep the scaler's capacity:
/// artifacts are content-addressed (Lambda: "changes to a deployment
/// package in Amazon S3 are not detected automatically"; CloudFormation
/// compares parameters, not objects), no DesiredCapacity is pinned (a stack
/// update would set it back) and MinSize/MaxSize change only when the
/// template does (UpdatePolicy AutoScalingScheduledAction
/// IgnoreUnmodifiedGroupSizeProperties), and the AMI is a plain parameter
/// that deploy.sh pins (an SSM default would re-resolve on every deploy).
#[test]
fn updates_change_code_by_key_and_leave_capacity_to_the_scaler() {
    let policy = policy();
    let template = template(&policy);
    let parameters = &template["Parameters"];
    for name in ["ScalerSha256", "WorkloadSha256"] {
        assert_eq!(parameters[name]["AllowedPattern"], "^[0-9a-f]{64}$", "{name}");
        assert!(
            parameters[name].get("Default").is_none(),
            "{name}: no default key to go stale"
        );
    }
    assert_eq!(
        template["Resources"]["Scaler"]["Properties"]["Code"]["S3Key"]["Fn::Sub"],
        "functions/scaler-${ScalerSha256}.zip"
    );
    let user_data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
        ["Fn::Sub"]
        .as_str()
        .expect("user data");
    assert!(
        user_data.contains("key=\"workload/workload-${WorkloadSha256}\""),
        "{user_data}"
    );
    assert_eq!(parameters["ImageId"]["Type"], "AWS::EC2::Image::Id");
    assert!(parameters["ImageId"].get("Default").is_none());
    for group in &policy.groups {
        let id = logical(&group.name);
        let asg = &template["Resources"][&format!("Group{id}")];
        assert!(
            asg["Properties"].get("DesiredCapacity").is_none(),
            "{id}: desired pinned"
        );
        assert!(parameters.get(format!("{id}Desired")).is_none());
        assert_eq!(
            asg["UpdatePolicy"]["AutoScalingScheduledAction"]["IgnoreUnmodifiedGroupSizeProperties"],
            true
        );
        // The policy's starting size, which deploy.sh sets once at creation.
        assert_eq!(
            asg["Metadata"]["autoscaler:initial-desired"],
            group.desired.unwrap_or(group.min)
        );
    }
}

/// Issue 20, wiring and least privilege found by review: triggers depend on
/// their groups (no tick before a group exists or while it is deleted); the
/// function may tag only with the decision tag (`aws:TagKeys`) and change a
/// group's limits only within what its schedules and parameters allow
/// (`autoscaling:MinSize`/`MaxSize`, EC2 Auto Scaling's condition keys);
/// the load balancers' security group has no default allow-all egress (EC2
/// removes it only when the group itself lists an egress rule); burstable
/// instances say their CPU credits; the instance unit never stops
/// restarting and the download retries.
#[test]
fn triggers_wait_for_their_groups_and_the_function_may_do_only_its_job() {
    let policy = policy();
    let template = template(&policy);
    let resources = &template["Resources"];
    for group in &policy.groups {
        let id = logical(&group.name);
        for trigger in [format!("AlarmState{id}"), format!("Tick{id}")] {
            assert_eq!(resources[&trigger]["DependsOn"], format!("Group{id}"), "{trigger}");
        }
        for schedule in &group.schedules {
            let name = format!("Schedule{}", logical(&schedule.name));
            assert_eq!(resources[&name]["DependsOn"], format!("Group{id}"), "{name}");
        }
    }
    let statements = resources["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("statements");
    let sid = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    };
    // DescribeAlarms only on the policy's alarms (it takes the alarm
    // resource type; "*" is needed only for composite alarms, not used).
    let alarms = sid("ReadOnlyThePolicysAlarms");
    assert_eq!(alarms["Action"], "cloudwatch:DescribeAlarms");
    let mut names: Vec<&str> = policy
        .groups
        .iter()
        .flat_map(|g| &g.alarm_policies)
        .map(|a| a.alarm.as_str())
        .collect();
    names.sort_unstable();
    let arns: Vec<&str> = alarms["Resource"]
        .as_array()
        .expect("alarm ARNs")
        .iter()
        .map(|a| a["Fn::Sub"].as_str().expect("Fn::Sub"))
        .collect();
    assert_eq!(arns.len(), names.len(), "{arns:?}");
    for (arn, name) in arns.iter().zip(&names) {
        assert!(
            arn.starts_with("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:")
                && arn.ends_with(&format!(":alarm:{name}")),
            "{arn}"
        );
    }
    for statement in statements {
        if statement["Sid"] != "ReadOnlyThePolicysAlarms" {
            assert!(
                !statement["Action"].to_string().contains("DescribeAlarms"),
                "{statement}"
            );
        }
    }
    let tags = sid("OnlyTheDecisionTag");
    assert_eq!(tags["Action"], "autoscaling:CreateOrUpdateTags");
    assert_eq!(
        tags["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"],
        serde_json::json!([functions::aws::CAUSE_TAG])
    );
    // No statement grants UpdateAutoScalingGroup without the limits.
    for statement in statements {
        let actions = statement["Action"].to_string();
        if actions.contains("UpdateAutoScalingGroup") {
            assert!(
                statement["Condition"]["NumericGreaterThanEqualsIfExists"]["autoscaling:MinSize"].is_array(),
                "{statement}"
            );
        }
    }
    let web = policy.group("web").expect("web");
    let limits = sid("LimitsOfWeb");
    let lowest = web
        .schedules
        .iter()
        .filter_map(|s| s.min)
        .chain([web.min])
        .min()
        .expect("min");
    let highest = web
        .schedules
        .iter()
        .filter_map(|s| s.max)
        .chain([web.max])
        .max()
        .expect("max");
    assert_eq!(
        limits["Condition"]["NumericGreaterThanEqualsIfExists"]["autoscaling:MinSize"],
        serde_json::json!([lowest, { "Ref": "WebMin" }])
    );
    assert_eq!(
        limits["Condition"]["NumericLessThanEqualsIfExists"]["autoscaling:MaxSize"],
        serde_json::json!([highest, { "Ref": "WebMax" }])
    );
    // The load balancers reach only the instances.
    let egress = &resources["AlbSecurityGroup"]["Properties"]["SecurityGroupEgress"];
    assert_eq!(egress.as_array().map(Vec::len), Some(1));
    assert_eq!(egress[0]["CidrIp"], "255.255.255.255/32");
    assert_eq!(resources["AlbToInstances"]["Properties"]["FromPort"], 8080);
    let data = &resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"];
    assert_eq!(data["CreditSpecification"]["Fn::If"][0], "Burstable");
    assert!(template["Conditions"]["Burstable"].is_object());
    let user_data = data["UserData"]["Fn::Base64"]["Fn::Sub"].as_str().expect("user data");
    assert!(user_data.contains("StartLimitIntervalSec=0"));
    assert!(user_data.contains("for attempt in 1 2 3 4 5 6"));
}

/// Issue 20: a tier's exposure is a policy setting, internal by default
/// for every group but the first (the seeds put the session tier behind an
/// internal load balancer): an internal load balancer in the private
/// subnets, reachable from the VPC only; the internet-facing one does not
/// serve the instances' /metrics and /health (a fixed 404 rule: the target
/// group's health checks go to the instances directly).
#[test]
fn tiers_are_internal_unless_exposed_and_the_internet_never_sees_metrics() {
    let policy = policy();
    let template = template(&policy);
    let resources = &template["Resources"];
    assert_eq!(policy.groups[0].name, "web");
    let web = &resources["LoadBalancerWeb"]["Properties"];
    assert_eq!(web["Scheme"], "internet-facing");
    assert_eq!(web["SecurityGroups"][0]["Ref"], "AlbSecurityGroup");
    let session = &resources["LoadBalancerSession"]["Properties"];
    assert_eq!(session["Scheme"], "internal");
    assert_eq!(session["Subnets"][0]["Ref"], "PrivateSubnetA");
    assert_eq!(session["SecurityGroups"][0]["Ref"], "InternalAlbSecurityGroup");
    let ingress = &resources["InternalAlbSecurityGroup"]["Properties"]["SecurityGroupIngress"];
    assert_eq!(ingress[0]["CidrIp"], "10.40.0.0/16");
    assert_eq!(
        (ingress[0]["FromPort"].as_u64(), ingress.as_array().map(Vec::len)),
        (Some(80), Some(1))
    );
    let public = &resources["AlbSecurityGroup"]["Properties"]["SecurityGroupIngress"];
    assert_eq!(
        (public[0]["FromPort"].as_u64(), public.as_array().map(Vec::len)),
        (Some(80), Some(1)),
        "only the listeners' port"
    );
    for from in ["InstancesFromAlb", "InstancesFromInternalAlb"] {
        assert_eq!(
            resources[from]["Properties"]["GroupId"]["Ref"], "InstanceSecurityGroup",
            "{from}"
        );
    }
    let rule = &resources["ListenerWebPrivate"]["Properties"];
    assert_eq!(rule["Actions"][0]["FixedResponseConfig"]["StatusCode"], "404");
    let paths = rule["Conditions"][0]["PathPatternConfig"]["Values"].to_string();
    assert!(
        paths.contains("\"/metrics\"") && paths.contains("\"/health\""),
        "{paths}"
    );
    assert!(
        resources.get("ListenerSessionPrivate").is_none(),
        "internal: nothing to hide"
    );
    // The setting wins over the default.
    let text = std::fs::read_to_string(root("policies/two-tier.toml"))
        .expect("policy")
        .replace("name = \"session\"", "name = \"session\"\nexposure = \"internet\"");
    let exposed = Policy::parse("exposed.toml", &text).expect("policy");
    let template = functions::cfn::template(&exposed);
    assert_eq!(
        template["Resources"]["LoadBalancerSession"]["Properties"]["Scheme"],
        "internet-facing"
    );
    assert!(template["Resources"].get("InternalAlbSecurityGroup").is_none());
}

/// Issue 20, "a stack that tells you when it breaks": an SNS topic (an
/// email subscription when AlertEmail is set) and alarms on the failures
/// that are otherwise silent: the function's errors and throttles, either
/// dead-letter queue holding a message, a group's tick not delivered,
/// unhealthy targets, in service below desired for 10 minutes (metric
/// math on the groups' 1-minute metrics), and launch or terminate errors
/// (Auto Scaling notifications).
#[test]
fn the_stack_alarms_on_what_would_fail_silently() {
    let policy = policy();
    let template = template(&policy);
    let resources = &template["Resources"];
    assert_eq!(resources["AlertTopic"]["Type"], "AWS::SNS::Topic");
    assert_eq!(resources["AlertSubscription"]["Condition"], "HasAlertEmail");
    assert_eq!(template["Parameters"]["AlertEmail"]["Default"], "");
    let to_topic = |id: &str| {
        let alarm = &resources[id]["Properties"];
        assert_eq!(alarm["AlarmActions"][0]["Ref"], "AlertTopic", "{id}");
        alarm.clone()
    };
    assert_eq!(to_topic("AlertFunctionErrors")["MetricName"], "Errors");
    assert_eq!(
        to_topic("AlertFunctionErrors")["Dimensions"][0]["Value"]["Ref"],
        "Scaler"
    );
    assert_eq!(to_topic("AlertFunctionThrottles")["MetricName"], "Throttles");
    for queue in ["DeadLetterQueue", "TriggerDeadLetters"] {
        let alarm = to_topic(&format!("Alert{queue}"));
        assert_eq!(alarm["MetricName"], "ApproximateNumberOfMessagesVisible");
        assert_eq!(alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0], queue);
    }
    for group in &policy.groups {
        let id = logical(&group.name);
        assert_eq!(
            to_topic(&format!("Alert{id}TickFailed"))["Dimensions"][0]["Value"]["Ref"],
            format!("Tick{id}")
        );
        assert_eq!(
            to_topic(&format!("Alert{id}Unhealthy"))["MetricName"],
            "UnHealthyHostCount"
        );
        let below = to_topic(&format!("Alert{id}BelowDesired"));
        assert_eq!(below["Metrics"][2]["Expression"], "desired - inservice");
        assert_eq!(below["EvaluationPeriods"], 10);
        let notifications = &resources[&format!("Group{id}")]["Properties"]["NotificationConfigurations"][0];
        assert_eq!(notifications["TopicARN"]["Ref"], "AlertTopic");
        assert!(
            notifications["NotificationTypes"]
                .to_string()
                .contains("EC2_INSTANCE_LAUNCH_ERROR")
        );
    }
    // None of them is a policy alarm: the trigger rules match the policy's alarms only.
    for group in &policy.groups {
        let rule =
            &resources[&format!("AlarmState{}", logical(&group.name))]["Properties"]["EventPattern"]["resources"];
        assert!(!rule.to_string().contains("Alert"), "{rule}");
    }
}

/// Issue 20: a dashboard per group whose body is valid JSON once
/// CloudFormation substitutes it, every `${...}` naming a pseudo parameter
/// or an attribute of a resource the template has, and graphing the
/// scaler's own decisions in the namespace the function is given.
#[test]
fn each_group_has_a_dashboard_of_capacity_load_and_decisions() {
    let policy = policy();
    let template = template(&policy);
    let resources = &template["Resources"];
    let namespace = &resources["Scaler"]["Properties"]["Environment"]["Variables"]["SCALER_METRICS_NAMESPACE"];
    assert_eq!(namespace["Fn::Sub"], functions::dashboard::NAMESPACE);
    for group in &policy.groups {
        let id = logical(&group.name);
        let dashboard = &resources[&format!("Dashboard{id}")];
        assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
        let body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
            .as_str()
            .expect("body");
        // Every placeholder is a pseudo parameter or Resource.Attribute of this template.
        let mut substituted = String::new();
        let mut rest = body;
        while let Some(start) = rest.find("${") {
            substituted.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed") + start;
            let name = &rest[start + 2..end];
            match name.split_once('.') {
                Some((resource, attribute)) => {
                    assert!(resources[resource].is_object(), "{name}: no such resource");
                    assert!(attribute.ends_with("FullName"), "{name}");
                }
                None => assert!(["AWS::Region", "AWS::StackName"].contains(&name), "{name}"),
            }
            substituted.push('x');
            rest = &rest[end + 1..];
        }
        substituted.push_str(rest);
        let body: Value = serde_json::from_str(&substituted).expect("the body is JSON");
        let widgets = body["widgets"].as_array().expect("widgets");
        assert_eq!(widgets.len(), 5);
        let text = body.to_string();
        for metric in [
            "GroupInServiceInstances",
            "CPUUtilization",
            "RequestCount",
            "TargetResponseTime",
            "RecommendedCapacity",
            "Decisions",
        ] {
            assert!(text.contains(metric), "{}: {metric}", group.name);
        }
        // The CPU thresholds the policy acts on are drawn.
        for alarm in group
            .alarm_policies
            .iter()
            .filter(|a| a.metric.name == "CPUUtilization")
        {
            assert!(text.contains(&alarm.alarm), "{}", alarm.alarm);
        }
        assert!(
            template["Outputs"][&format!("Dashboard{id}")]["Value"]["Fn::Sub"]
                .as_str()
                .is_some_and(|url| url.contains("#dashboards:name=${AWS::StackName}-"))
        );
    }
}

/// Every name a template refers to exists in it: a parameter, a resource,
/// a condition or a pseudo parameter (`AWS::Region`, ...). CloudFormation
/// refuses the template otherwise ("Unresolved resource dependencies").
fn unresolved(template: &Value) -> Vec<String> {
    let defined = |section: &str| {
        template[section]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let known: Vec<String> = ["Parameters", "Resources", "Conditions"]
        .iter()
        .flat_map(|s| defined(s))
        .collect();
    functions::cfn::referenced_names(template)
        .into_iter()
        .filter(|name| !name.starts_with("AWS::") && !known.contains(name))
        .collect()
}

#[test]
fn every_reference_of_the_full_template_resolves() {
    assert_eq!(unresolved(&checked_in()), Vec::<String>::new());
}

fn checked_in_adopt() -> Value {
    let text = std::fs::read_to_string(root("infra/aws/adopt.json")).expect("infra/aws/adopt.json");
    serde_json::from_str(&text).expect("adopt template JSON")
}

#[test]
fn the_checked_in_adopt_template_is_generated_from_the_policy() {
    assert!(
        functions::cfn::adopt_template(&policy()) == checked_in_adopt(),
        "infra/aws/adopt.json is stale: run `cargo run -p functions --bin scalectl -- template --adopt --policy policies/two-tier.toml --out infra/aws/adopt.json`"
    );
}

/// Issue 21's adopt mode: groups made in a console keep running as they
/// are; the stack adds only the policy's alarms, schedules, ticks,
/// functions, its own alarms and dashboards, and names each group's target
/// group and load balancer by parameter.
#[test]
fn the_adopt_template_makes_no_group_and_names_each_groups_load_balancer_by_parameter() {
    let adopt = checked_in_adopt();
    let full = checked_in();
    let resources = adopt["Resources"].as_object().expect("resources");
    let types: std::collections::BTreeSet<&str> = resources.values().filter_map(|r| r["Type"].as_str()).collect();
    let made: Vec<&&str> = types
        .iter()
        .filter(|t| {
            t.starts_with("AWS::EC2::")
                || t.starts_with("AWS::ElasticLoadBalancingV2::")
                || t.starts_with("AWS::AutoScaling::")
        })
        .collect();
    assert!(made.is_empty(), "the adopt template makes {made:?}");
    assert!(!resources.contains_key("InstanceRole") && !resources.contains_key("InstanceProfile"));
    assert_eq!(unresolved(&adopt), Vec::<String>::new());
    // Every other resource is the full template's, the same but for the
    // references to the groups' target groups and load balancers.
    for (id, resource) in resources {
        let mut original = full["Resources"][id].clone();
        assert!(!original.is_null(), "{id} is not in the full template");
        let mut adopted = resource.clone();
        if let Some(on) = adopted.as_object_mut().and_then(|m| m.remove("DependsOn")) {
            let on: Vec<&str> = on.as_array().map_or_else(
                || vec![on.as_str().unwrap_or("")],
                |a| a.iter().filter_map(Value::as_str).collect(),
            );
            assert!(on.iter().all(|d| resources.contains_key(*d)), "{id} depends on {on:?}");
        }
        if let Some(map) = original.as_object_mut() {
            map.remove("DependsOn");
        }
        as_adopted(&mut original);
        assert_eq!(adopted, original, "{id} differs from the full template's");
    }
    // Every alarm, schedule and tick of the policy is there.
    let alarms = resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .count();
    let full_alarms = full["Resources"]
        .as_object()
        .expect("resources")
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .count();
    assert_eq!(alarms, full_alarms);
    let parameters = adopt["Parameters"].as_object().expect("parameters");
    for group in &policy().groups {
        let id = logical(&group.name);
        for (key, example) in [
            ("TargetGroup", "targetgroup/web-tg/0123456789abcdef"),
            ("LoadBalancer", "app/web-lb/50dc6c495c0c9188"),
        ] {
            let parameter = &parameters[&format!("{id}{key}")];
            assert_eq!(parameter["Type"], "String", "{id}{key}");
            let pattern = parameter["AllowedPattern"].as_str().expect("pattern");
            assert!(
                pattern.starts_with(&format!("^{}", example.split('/').next().unwrap_or(""))),
                "{pattern}"
            );
        }
    }
    for gone in ["ImageId", "InstanceType", "WorkloadSha256"] {
        assert!(
            !parameters.contains_key(gone),
            "{gone} is a parameter of the adopt template"
        );
    }
    // The function reads each group's target group and load balancer from the parameters.
    let env = &resources[functions::cfn::FUNCTION.1]["Properties"]["Environment"]["Variables"];
    assert!(env.to_string().contains("web=${WebTargetGroup}"), "{env}");
    assert!(env.to_string().contains("web=${WebLoadBalancer}"), "{env}");
}

/// The full template's references to a group's target group or load
/// balancer, as the adopt template writes them (its parameters).
fn as_adopted(value: &mut Value) {
    let renames = [
        ("TargetGroup", "TargetGroupFullName"),
        ("LoadBalancer", "LoadBalancerFullName"),
    ];
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(target)) = map.get("Fn::GetAtt")
                && let [Value::String(resource), Value::String(attribute)] = target.as_slice()
            {
                for (kind, full_name) in renames {
                    if let Some(id) = resource.strip_prefix(kind).filter(|_| attribute == full_name) {
                        *value = serde_json::json!({ "Ref": format!("{id}{kind}") });
                        return;
                    }
                }
            }
            if let Some(Value::String(text)) = map.get_mut("Fn::Sub") {
                for id in ["Web", "Session"] {
                    for (kind, full_name) in renames {
                        *text = text.replace(&format!("${{{kind}{id}.{full_name}}}"), &format!("${{{id}{kind}}}"));
                    }
                }
            }
            map.values_mut().for_each(as_adopted);
        }
        Value::Array(items) => items.iter_mut().for_each(as_adopted),
        _ => {}
    }
}

/// Predictive scaling decides on the group's one-minute tick, like
/// target tracking: a group that scales on its forecast alone still gets
/// its tick rule (and its delivery alarm); the policy is the function's,
/// read at run time, so the template needs nothing else of it.
#[test]
fn a_group_that_scales_on_its_forecast_alone_gets_its_tick() {
    let text = "[[group]]\nname = \"batch\"\nmin = 1\nmax = 8\n\n[group.predictive]\nmetric = \"cpu\"\ntarget = 60\nmode = \"forecast_and_scale\"\n";
    let policy = Policy::parse("p.toml", text).expect("valid");
    let generated = template(&policy);
    let resources = &generated["Resources"];
    let tick = &resources[format!("Tick{}", logical("batch"))];
    assert_eq!(tick["Properties"]["ScheduleExpression"], "rate(1 minute)", "{tick:#}");
    assert!(resources[format!("Alert{}TickFailed", logical("batch"))].is_object());
    let without: Policy = Policy::parse("p.toml", "[[group]]\nname = \"batch\"\nmin = 1\nmax = 8\n").expect("valid");
    assert!(template(&without)["Resources"][format!("Tick{}", logical("batch"))].is_null());
}

/// A warm pool (`[group.warm_pool]`) becomes an `AWS::AutoScaling::WarmPool`
/// with PutWarmPool's settings, and the launch template's user data runs at
/// every boot: EC2 Auto Scaling stops an instance launched into the pool
/// without waiting for its user data ("Use lifecycle hooks with a warm
/// pool"), so the bootstrap finishes when it starts again. Without a warm
/// pool the user data is the bootstrap alone; the adopt template, which
/// never changes the group, makes none.
#[test]
fn a_warm_pool_is_made_with_its_settings_and_the_bootstrap_runs_at_every_boot() {
    let policy = Policy::load(&root("policies/spiky-consumer.toml")).expect("policy");
    let generated = template(&policy);
    let pool = &generated["Resources"][format!("WarmPool{}", logical("web"))];
    assert_eq!(pool["Type"], "AWS::AutoScaling::WarmPool");
    let properties = &pool["Properties"];
    assert_eq!(
        properties["AutoScalingGroupName"]["Ref"],
        format!("Group{}", logical("web"))
    );
    assert_eq!(properties["MaxGroupPreparedCapacity"], 40);
    assert_eq!(properties["MinSize"], 0);
    assert_eq!(properties["PoolState"], "Stopped");
    assert_eq!(properties["InstanceReusePolicy"]["ReuseOnScaleIn"], true);
    let user_data = |template: &Value| {
        template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
            .as_str()
            .expect("user data")
            .to_string()
    };
    let every_boot = user_data(&generated);
    assert!(
        every_boot.starts_with("Content-Type: multipart/mixed; boundary=\"==BOUNDARY==\""),
        "{every_boot}"
    );
    assert!(every_boot.contains("#cloud-config\ncloud_final_modules:\n- [scripts-user, always]\n"));
    assert!(every_boot.contains(functions::cfn::USER_DATA));
    assert!(every_boot.ends_with("--==BOUNDARY==--\n"));
    assert_eq!(user_data(&template(&self::policy())), functions::cfn::USER_DATA);
    let adopt = functions::cfn::adopt_template(&policy);
    assert!(adopt["Resources"][format!("WarmPool{}", logical("web"))].is_null());
}

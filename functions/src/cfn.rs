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

use crate::policy::{AlarmPolicy, Comparison, GroupPolicy, MissingData, Policy};

/// The function binary (every trigger of every group) and its template id.
pub const FUNCTION: (&str, &str) = ("scaler", "Scaler");

/// The groups' trigger queue (SQS FIFO, one message group per group).
pub const QUEUE: &str = "TriggerQueue";

/// The port the workload listens on in the instances.
pub const SERVICE_PORT: u16 = 8080;

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

/// The listener port of the group at `index`.
pub fn listener_port(index: usize) -> u16 {
    if index == 0 { 80 } else { 8000 + index as u16 }
}

/// The whole template.
pub fn template(policy: &Policy) -> Value {
    let mut resources = Map::new();
    let mut outputs = Map::new();
    network(&mut resources);
    instances(&mut resources);
    resources.insert(
        "LoadBalancer".into(),
        json!({
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                "Scheme": "internet-facing",
                "Subnets": [reference("PublicSubnetA"), reference("PublicSubnetB")],
                "SecurityGroups": [reference("AlbSecurityGroup")],
                "LoadBalancerAttributes": [
                    { "Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true" },
                    { "Key": "idle_timeout.timeout_seconds", "Value": "60" }
                ]
            }
        }),
    );
    for (index, group) in policy.groups.iter().enumerate() {
        group_resources(&mut resources, &mut outputs, group, index);
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
    outputs.insert(
        "LoadBalancerDns".into(),
        json!({ "Description": "The load balancer (port 80: the first group)", "Value": get_att("LoadBalancer", "DNSName") }),
    );
    outputs.insert(
        "DeadLetterQueue".into(),
        json!({ "Description": "Triggers EventBridge or the scheduler could not deliver to the trigger queue", "Value": reference("DeadLetterQueue") }),
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
        "WorkloadKey": {
            "Type": "String",
            "Default": "workload/workload",
            "Description": "S3 key of the workload binary (linux arm64)"
        },
        "FunctionsPrefix": {
            "Type": "String",
            "Default": "functions/",
            "Description": "S3 key prefix of the function zips (alarm-scaler.zip, schedule-scaler.zip, target-tracker.zip)"
        },
        "InstanceType": {
            "Type": "String",
            "Default": "t4g.small",
            "AllowedValues": ["t4g.micro", "t4g.small", "t4g.medium", "c7g.medium", "c7g.large"],
            "Description": "Graviton instance type of the group"
        },
        "ImageId": {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
            "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
            "Description": "Amazon Linux 2023 arm64, resolved at deploy time"
        },
        "DryRun": {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["true", "false"],
            "Description": "true: the functions decide and log, and change nothing"
        }
    });
    for group in &policy.groups {
        let id = logical(&group.name);
        let desired = group.desired.unwrap_or(group.min);
        for (suffix, default, what) in [
            ("Min", group.min, "minimum"),
            ("Max", group.max, "maximum"),
            ("Desired", desired, "initial desired"),
        ] {
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

fn network(resources: &mut Map<String, Value>) {
    let tag = |name: &str| json!([{ "Key": "Name", "Value": sub(&format!("${{AWS::StackName}}-{name}")) }]);
    resources.insert(
        "Vpc".into(),
        json!({ "Type": "AWS::EC2::VPC", "Properties": { "CidrBlock": "10.40.0.0/16", "EnableDnsSupport": true, "EnableDnsHostnames": true, "Tags": tag("vpc") } }),
    );
    resources.insert(
        "InternetGateway".into(),
        json!({ "Type": "AWS::EC2::InternetGateway", "Properties": { "Tags": tag("igw") } }),
    );
    resources.insert(
        "GatewayAttachment".into(),
        json!({ "Type": "AWS::EC2::VPCGatewayAttachment", "Properties": { "VpcId": reference("Vpc"), "InternetGatewayId": reference("InternetGateway") } }),
    );
    for (name, cidr, az, public) in [
        ("PublicSubnetA", "10.40.0.0/24", 0, true),
        ("PublicSubnetB", "10.40.1.0/24", 1, true),
        ("PrivateSubnetA", "10.40.10.0/24", 0, false),
        ("PrivateSubnetB", "10.40.11.0/24", 1, false),
    ] {
        resources.insert(
            name.into(),
            json!({
                "Type": "AWS::EC2::Subnet",
                "Properties": {
                    "VpcId": reference("Vpc"),
                    "CidrBlock": cidr,
                    "AvailabilityZone": { "Fn::Select": [az, { "Fn::GetAZs": "" }] },
                    "MapPublicIpOnLaunch": false,
                    "Tags": tag(if public { "public" } else { "private" })
                }
            }),
        );
    }
    resources.insert(
        "PublicRouteTable".into(),
        json!({ "Type": "AWS::EC2::RouteTable", "Properties": { "VpcId": reference("Vpc"), "Tags": tag("public") } }),
    );
    resources.insert(
        "PublicDefaultRoute".into(),
        json!({
            "Type": "AWS::EC2::Route",
            "DependsOn": "GatewayAttachment",
            "Properties": { "RouteTableId": reference("PublicRouteTable"), "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": reference("InternetGateway") }
        }),
    );
    resources.insert(
        "PrivateRouteTable".into(),
        json!({ "Type": "AWS::EC2::RouteTable", "Properties": { "VpcId": reference("Vpc"), "Tags": tag("private") } }),
    );
    for (subnet, table) in [
        ("PublicSubnetA", "PublicRouteTable"),
        ("PublicSubnetB", "PublicRouteTable"),
        ("PrivateSubnetA", "PrivateRouteTable"),
        ("PrivateSubnetB", "PrivateRouteTable"),
    ] {
        resources.insert(
            format!("{subnet}Routes"),
            json!({ "Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": { "SubnetId": reference(subnet), "RouteTableId": reference(table) } }),
        );
    }
    // The instances' only egress: S3 (the workload binary), through a free gateway endpoint.
    resources.insert(
        "S3Endpoint".into(),
        json!({
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcId": reference("Vpc"),
                "ServiceName": sub("com.amazonaws.${AWS::Region}.s3"),
                "VpcEndpointType": "Gateway",
                "RouteTableIds": [reference("PrivateRouteTable")]
            }
        }),
    );
}

fn instances(resources: &mut Map<String, Value>) {
    resources.insert(
        "AlbSecurityGroup".into(),
        json!({
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "The load balancer: HTTP from anywhere",
                "VpcId": reference("Vpc"),
                "SecurityGroupIngress": [{ "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0", "Description": "HTTP, first group" },
                                         { "IpProtocol": "tcp", "FromPort": 8001, "ToPort": 8016, "CidrIp": "0.0.0.0/0", "Description": "HTTP, further groups" }]
            }
        }),
    );
    resources.insert(
        "InstanceSecurityGroup".into(),
        json!({
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "Instances: the service port from the load balancer only; HTTPS out (S3 endpoint)",
                "VpcId": reference("Vpc"),
                "SecurityGroupIngress": [{ "IpProtocol": "tcp", "FromPort": SERVICE_PORT, "ToPort": SERVICE_PORT, "SourceSecurityGroupId": reference("AlbSecurityGroup"), "Description": "the workload, from the load balancer" }],
                "SecurityGroupEgress": [{ "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS to S3 through the gateway endpoint (there is no other route out)" }]
            }
        }),
    );
    resources.insert(
        "AlbToInstances".into(),
        json!({
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": { "GroupId": reference("AlbSecurityGroup"), "IpProtocol": "tcp", "FromPort": SERVICE_PORT, "ToPort": SERVICE_PORT, "DestinationSecurityGroupId": reference("InstanceSecurityGroup"), "Description": "to the workload" }
        }),
    );
    resources.insert(
        "InstanceRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }] },
                "Policies": [{
                    "PolicyName": "read-the-workload-binary",
                    "PolicyDocument": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "s3:GetObject", "Resource": sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}/${WorkloadKey}") }] }
                }]
            }
        }),
    );
    resources.insert(
        "InstanceProfile".into(),
        json!({ "Type": "AWS::IAM::InstanceProfile", "Properties": { "Roles": [reference("InstanceRole")] } }),
    );
    resources.insert(
        "LaunchTemplate".into(),
        json!({
            "Type": "AWS::EC2::LaunchTemplate",
            "Properties": {
                "LaunchTemplateData": {
                    "ImageId": reference("ImageId"),
                    "InstanceType": reference("InstanceType"),
                    "IamInstanceProfile": { "Arn": get_att("InstanceProfile", "Arn") },
                    "SecurityGroupIds": [reference("InstanceSecurityGroup")],
                    "MetadataOptions": { "HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1 },
                    "Monitoring": { "Enabled": true },
                    "BlockDeviceMappings": [{ "DeviceName": "/dev/xvda", "Ebs": { "VolumeSize": 8, "VolumeType": "gp3", "Encrypted": true, "DeleteOnTermination": true } }],
                    "UserData": { "Fn::Base64": sub(USER_DATA) }
                }
            }
        }),
    );
}

/// The instance bootstrap (also `infra/aws/bootstrap.sh`, checked by shellcheck;
/// a test keeps the two the same).
pub const USER_DATA: &str = include_str!("../../infra/aws/bootstrap.sh");

fn group_resources(
    resources: &mut Map<String, Value>,
    outputs: &mut Map<String, Value>,
    group: &GroupPolicy,
    index: usize,
) {
    let id = logical(&group.name);
    let port = listener_port(index);
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
                "HealthCheckIntervalSeconds": 10,
                "HealthCheckTimeoutSeconds": 5,
                "HealthyThresholdCount": 2,
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
                "LoadBalancerArn": reference("LoadBalancer"),
                "Protocol": "HTTP",
                "Port": port,
                "DefaultActions": [{ "Type": "forward", "TargetGroupArn": reference(&format!("TargetGroup{id}")) }]
            }
        }),
    );
    let warmup = group.warmup().as_secs();
    resources.insert(
        format!("Group{id}"),
        json!({
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "AutoScalingGroupName": group.name,
                "MinSize": reference(&format!("{id}Min")),
                "MaxSize": reference(&format!("{id}Max")),
                "DesiredCapacity": reference(&format!("{id}Desired")),
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
                "Tags": [
                    { "Key": "Name", "Value": sub(&format!("${{AWS::StackName}}-{}", group.name)), "PropagateAtLaunch": true },
                    { "Key": "autoscaler:group", "Value": group.name, "PropagateAtLaunch": true }
                ]
            },
            "UpdatePolicy": { "AutoScalingRollingUpdate": { "MinInstancesInService": reference(&format!("{id}Min")), "MaxBatchSize": 1 } }
        }),
    );
    outputs.insert(
        format!("Url{id}"),
        json!({
            "Description": format!("Group {} through the load balancer", group.name),
            "Value": sub(&format!("http://${{LoadBalancer.DNSName}}:{port}"))
        }),
    );
}

/// A dimension value as CloudWatch publishes it: a policy file names a target
/// group by its group (see [`crate::policy::published`]), CloudWatch by the
/// target group's full name (`targetgroup/NAME/ID`); the Auto Scaling group
/// has the group's own name.
pub fn dimension_value(name: &str, value: &str) -> Value {
    match name {
        "TargetGroup" => get_att(&format!("TargetGroup{}", logical(value)), "TargetGroupFullName"),
        _ => json!(value),
    }
}

fn alarm_resource(_group: &GroupPolicy, alarm: &AlarmPolicy) -> Value {
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

/// The groups' FIFO queue, its dead letters, and the one function that
/// consumes it (see [`crate::queue`]: one decision at a time per group).
fn functions(resources: &mut Map<String, Value>, policy: &Policy) {
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
    let group_arns: Vec<Value> = policy
        .groups
        .iter()
        .map(|g| sub(&format!("arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:autoScalingGroupName/{}", g.name)))
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
                            { "Sid": "ChangeOnlyTheseGroups", "Effect": "Allow", "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:UpdateAutoScalingGroup", "autoscaling:CreateOrUpdateTags"], "Resource": group_arns },
                            { "Sid": "ReadGroupsAndMetrics", "Effect": "Allow", "Action": ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeScalingActivities", "autoscaling:DescribeTags", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"], "Resource": "*" },
                            { "Sid": "ConsumeTheTriggerQueue", "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"], "Resource": get_att(QUEUE, "Arn") }
                        ]
                    }
                }]
            }
        }),
    );
    // Each group's own target group, by name (issue 18: the first group's was read for all).
    let target_groups = sub(&policy
        .groups
        .iter()
        .map(|g| format!("{}=${{TargetGroup{}.TargetGroupFullName}}", g.name, logical(&g.name)))
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
                "Code": { "S3Bucket": reference("ArtifactBucket"), "S3Key": sub(&format!("${{FunctionsPrefix}}{binary}.zip")) },
                "TracingConfig": { "Mode": "PassThrough" },
                "Environment": { "Variables": {
                    "SCALER_POLICY": "policy.toml",
                    "SCALER_DRY_RUN": reference("DryRun"),
                    "SCALER_TARGET_GROUPS": target_groups
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

/// The EventBridge rules that send to the queue (for its policy).
fn trigger_rules(policy: &Policy) -> Vec<String> {
    policy
        .groups
        .iter()
        .flat_map(|g| {
            let id = logical(&g.name);
            let alarms = (!g.alarm_policies.is_empty()).then(|| format!("AlarmState{id}"));
            let tick = (!g.target_tracking.is_empty() || !g.alarm_policies.is_empty()).then(|| format!("Tick{id}"));
            alarms.into_iter().chain(tick)
        })
        .collect()
}

/// A target that sends to the queue in `group`'s message group.
fn queue_target(id: &str, group: &str, extra: Value) -> Value {
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

fn triggers(resources: &mut Map<String, Value>, policy: &Policy) {
    for group in &policy.groups {
        let id = logical(&group.name);
        // One rule per group: its message group is the group.
        if !group.alarm_policies.is_empty() {
            resources.insert(
                format!("AlarmState{id}"),
                json!({
                    "Type": "AWS::Events::Rule",
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
        if group.target_tracking.is_empty() && group.alarm_policies.is_empty() {
            continue;
        }
        // The event names its group (detail.group), which the function
        // routes by: EventBridge's input transformer keeps the Scheduled
        // Event's fields and adds the group.
        resources.insert(
            format!("Tick{id}"),
            json!({
                "Type": "AWS::Events::Rule",
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

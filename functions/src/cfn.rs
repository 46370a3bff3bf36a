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

/// The adopt mode (issue 21): the same stack without what makes the groups
/// (network, instances, launch template, load balancers, target groups,
/// Auto Scaling groups), for groups that already exist, made in a console:
/// each policy group is the existing group of that name, and its target
/// group and load balancer are parameters (`{Id}TargetGroup`:
/// `targetgroup/NAME/ID`, `{Id}LoadBalancer`: `app/NAME/ID`, as CloudWatch
/// names them; `scalectl import --parameters` writes them). Everything else
/// is [`template`]'s, resource for resource: the alarms, the functions and
/// their trigger queue, the ticks and schedules, the stack's own alarms and
/// the dashboards. With `DryRun=true` next to the group's own scaling, it is
/// the shadow that `loadtest shadow --aws` compares.
pub fn adopt_template(policy: &Policy) -> Value {
    let mut template = template(policy);
    // What makes the groups, made by the same functions, to take out.
    let mut made = Map::new();
    let mut made_outputs = Map::new();
    network(&mut made);
    let exposures: Vec<Exposure> = (0..policy.groups.len()).map(|i| policy.exposure(i)).collect();
    instances(&mut made, &exposures, user_data(policy));
    for (group, exposure) in policy.groups.iter().zip(&exposures) {
        group_resources(&mut made, &mut made_outputs, group, *exposure);
    }
    if let Some(resources) = template["Resources"].as_object_mut() {
        resources.retain(|id, _| !made.contains_key(id));
    }
    if let Some(outputs) = template["Outputs"].as_object_mut() {
        outputs.retain(|id, _| !made_outputs.contains_key(id));
    }
    // References to a group's target group and load balancer become the parameters.
    let mut renames: Vec<(String, String)> = Vec::new();
    for group in &policy.groups {
        let id = logical(&group.name);
        for (resource, attribute, parameter) in [
            (
                format!("TargetGroup{id}"),
                "TargetGroupFullName",
                format!("{id}TargetGroup"),
            ),
            (
                format!("LoadBalancer{id}"),
                "LoadBalancerFullName",
                format!("{id}LoadBalancer"),
            ),
        ] {
            renames.push((format!("${{{resource}.{attribute}}}"), format!("${{{parameter}}}")));
        }
    }
    adopt_references(&mut template, &renames, &made);
    let mut parameters = template["Parameters"].take();
    if let Some(p) = parameters.as_object_mut() {
        for group in &policy.groups {
            let id = logical(&group.name);
            p.insert(
                format!("{id}TargetGroup"),
                json!({
                    "Type": "String",
                    "AllowedPattern": "^targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$",
                    "ConstraintDescription": "the target group's full name as CloudWatch names it: targetgroup/NAME/ID (the end of its ARN)",
                    "Description": format!("Group {}: its existing target group, targetgroup/NAME/ID (scalectl import --parameters writes it)", group.name)
                }),
            );
            p.insert(
                format!("{id}LoadBalancer"),
                json!({
                    "Type": "String",
                    "AllowedPattern": "^app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$",
                    "ConstraintDescription": "the load balancer's full name as CloudWatch names it: app/NAME/ID (the end of its ARN)",
                    "Description": format!("Group {}: the Application Load Balancer of its target group, app/NAME/ID", group.name)
                }),
            );
        }
    }
    // Only what is still used: the instance and workload parameters and
    // conditions go (conditions first: one may be all that uses a parameter).
    let conditions = template["Conditions"].take();
    let used = referenced_names(&template);
    template["Conditions"] = conditions;
    if let Some(conditions) = template["Conditions"].as_object_mut() {
        conditions.retain(|name, _| used.contains(name));
    }
    let used = referenced_names(&template);
    if let Some(p) = parameters.as_object_mut() {
        p.retain(|name, _| used.contains(name));
    }
    template["Parameters"] = parameters;
    let groups: Vec<&str> = policy.groups.iter().map(|g| g.name.as_str()).collect();
    template["Description"] = json!(format!(
        "Serverless autoscaler adopting existing groups {}: their alarms, schedules and scaling functions, no group, network or load balancer (generated by `scalectl template --adopt` from the policy file; do not edit by hand)",
        groups.join(", ")
    ));
    template
}

/// Rewrites references for the adopt mode: `Fn::GetAtt` of a target group's
/// or load balancer's full name and the same in `Fn::Sub` strings become the
/// group's parameter (`renames`: `${Resource.Attribute}` -> `${Parameter}`);
/// `DependsOn` entries naming a resource no longer made are dropped.
fn adopt_references(value: &mut Value, renames: &[(String, String)], made: &Map<String, Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(target)) = map.get("Fn::GetAtt")
                && let [Value::String(resource), Value::String(attribute)] = target.as_slice()
            {
                let token = format!("${{{resource}.{attribute}}}");
                if let Some((_, to)) = renames.iter().find(|(from, _)| *from == token) {
                    *value = json!({ "Ref": to.trim_start_matches("${").trim_end_matches('}') });
                    return;
                }
            }
            if let Some(Value::String(text)) = map.get_mut("Fn::Sub") {
                for (from, to) in renames {
                    *text = text.replace(from.as_str(), to);
                }
            }
            match map.get("DependsOn").cloned() {
                Some(Value::String(on)) if made.contains_key(&on) => {
                    map.remove("DependsOn");
                }
                Some(Value::Array(on)) => {
                    let kept: Vec<Value> = on
                        .into_iter()
                        .filter(|d| d.as_str().is_none_or(|d| !made.contains_key(d)))
                        .collect();
                    if kept.is_empty() {
                        map.remove("DependsOn");
                    } else {
                        map.insert("DependsOn".into(), Value::Array(kept));
                    }
                }
                _ => {}
            }
            for (_, v) in map.iter_mut() {
                adopt_references(v, renames, made);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| adopt_references(v, renames, made)),
        _ => {}
    }
}

/// Every name a template refers to: `Ref`s, `Fn::GetAtt` resources,
/// `${NAME}` and `${NAME.Attribute}` in `Fn::Sub` strings, `DependsOn`,
/// and condition names (`Fn::If`, a resource's `Condition`).
pub fn referenced_names(template: &Value) -> std::collections::BTreeSet<String> {
    fn walk(value: &Value, found: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("Ref" | "Condition", Value::String(name)) => {
                            found.insert(name.clone());
                        }
                        ("Fn::GetAtt", Value::Array(target)) => {
                            found.extend(target.first().and_then(Value::as_str).map(str::to_string));
                        }
                        ("Fn::If", Value::Array(branches)) => {
                            found.extend(branches.first().and_then(Value::as_str).map(str::to_string));
                        }
                        ("DependsOn", Value::String(name)) => {
                            found.insert(name.clone());
                        }
                        ("DependsOn", Value::Array(names)) => {
                            found.extend(names.iter().filter_map(Value::as_str).map(str::to_string));
                        }
                        ("Fn::Sub", Value::String(text)) => {
                            let mut rest = text.as_str();
                            while let Some(start) = rest.find("${") {
                                let after = &rest[start + 2..];
                                let Some(end) = after.find('}') else { break };
                                let token = &after[..end];
                                if !token.starts_with('!') {
                                    found.insert(token.split('.').next().unwrap_or(token).to_string());
                                }
                                rest = &after[end + 1..];
                            }
                        }
                        _ => {}
                    }
                    walk(v, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = std::collections::BTreeSet::new();
    for section in ["Resources", "Outputs", "Conditions"] {
        walk(&template[section], &mut found);
    }
    found
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

/// The load balancers' security group for `exposure`, and who may reach it.
fn alb_security_group(exposure: Exposure) -> (&'static str, Value, &'static str) {
    match exposure {
        Exposure::Internet => ("AlbSecurityGroup", json!("0.0.0.0/0"), "HTTP from anywhere"),
        Exposure::Internal => (
            "InternalAlbSecurityGroup",
            json!(VPC_CIDR),
            "HTTP from inside the VPC only",
        ),
    }
}

/// The VPC's address range.
const VPC_CIDR: &str = "10.40.0.0/16";

fn instances(resources: &mut Map<String, Value>, exposures: &[Exposure], user_data: String) {
    let kinds = [Exposure::Internet, Exposure::Internal]
        .into_iter()
        .filter(|kind| exposures.contains(kind));
    resources.insert(
        "InstanceSecurityGroup".into(),
        json!({
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "Instances: the service port from the load balancers only; HTTPS out (S3 endpoint)",
                "VpcId": reference("Vpc"),
                "SecurityGroupEgress": [{ "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS to S3 through the gateway endpoint (there is no other route out)" }]
            }
        }),
    );
    for exposure in kinds {
        let (name, from, what) = alb_security_group(exposure);
        resources.insert(
            name.into(),
            json!({
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {
                    "GroupDescription": format!("Load balancers: {what}"),
                    "VpcId": reference("Vpc"),
                    "SecurityGroupIngress": [{ "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": from, "Description": format!("{what}, the listeners' only port") }],
                    // An egress rule here removes EC2's default allow-all egress
                    // (a standalone SecurityGroupEgress does not): this one allows
                    // nothing; {name}ToInstances adds the only way out.
                    "SecurityGroupEgress": [{ "IpProtocol": "icmp", "FromPort": 252, "ToPort": 86, "CidrIp": "255.255.255.255/32", "Description": "no traffic: removes the default allow-all egress" }]
                }
            }),
        );
        let prefix = name.trim_end_matches("SecurityGroup");
        resources.insert(
            format!("{prefix}ToInstances"),
            json!({
                "Type": "AWS::EC2::SecurityGroupEgress",
                "Properties": { "GroupId": reference(name), "IpProtocol": "tcp", "FromPort": SERVICE_PORT, "ToPort": SERVICE_PORT, "DestinationSecurityGroupId": reference("InstanceSecurityGroup"), "Description": "to the workload" }
            }),
        );
        resources.insert(
            format!("InstancesFrom{prefix}"),
            json!({
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": { "GroupId": reference("InstanceSecurityGroup"), "IpProtocol": "tcp", "FromPort": SERVICE_PORT, "ToPort": SERVICE_PORT, "SourceSecurityGroupId": reference(name), "Description": "the workload, from the load balancers" }
            }),
        );
    }
    resources.insert(
        "InstanceRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "Service": "ec2.amazonaws.com" }, "Action": "sts:AssumeRole" }] },
                "Policies": [{
                    "PolicyName": "read-the-workload-binary",
                    "PolicyDocument": { "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "s3:GetObject", "Resource": sub("arn:${AWS::Partition}:s3:::${ArtifactBucket}/workload/workload-${WorkloadSha256}") }] }
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
                    // Burstable (t4g) instances: CPU credits said explicitly
                    // (unlimited, T4g's default: a CPU-bound service throttled
                    // to its baseline would send the scaler a false CPU).
                    "CreditSpecification": { "Fn::If": ["Burstable", { "CpuCredits": "unlimited" }, reference("AWS::NoValue")] },
                    "BlockDeviceMappings": [{ "DeviceName": "/dev/xvda", "Ebs": { "VolumeSize": 8, "VolumeType": "gp3", "Encrypted": true, "DeleteOnTermination": true } }],
                    "UserData": { "Fn::Base64": sub(&user_data) }
                }
            }
        }),
    );
}

/// The instance bootstrap (also `infra/aws/bootstrap.sh`, checked by shellcheck;
/// a test keeps the two the same).
pub const USER_DATA: &str = include_str!("../../infra/aws/bootstrap.sh");

/// The launch template's user data: [`USER_DATA`], run at the first boot;
/// with a warm pool in the policy, at every boot. EC2 Auto Scaling stops
/// an instance "as soon as an instance finishes launching into the warm
/// pool" and "does not wait for user data to finish running", and
/// cloud-init runs user data at the first boot only ("Use lifecycle hooks
/// with a warm pool"): an instance could leave the pool with its bootstrap
/// cut short. Run at every boot (AWS's third remedy: cloud-init's
/// `scripts-user` module set to `always`, in a MIME multi-part document),
/// the bootstrap, which is idempotent, finishes when the instance starts
/// again; the target group's health check keeps requests away until it
/// has. (A launch lifecycle hook would need the Auto Scaling API from the
/// instances, which have no route out but the S3 endpoint.)
pub fn user_data(policy: &Policy) -> String {
    if policy.groups.iter().all(|g| g.warm_pool.is_none()) {
        return USER_DATA.to_string();
    }
    let part = |kind: &str, file: &str, body: &str| {
        format!(
            "--==BOUNDARY==\nContent-Type: {kind}; charset=\"us-ascii\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\nContent-Disposition: attachment; filename=\"{file}\"\n\n{body}\n"
        )
    };
    format!(
        "Content-Type: multipart/mixed; boundary=\"==BOUNDARY==\"\nMIME-Version: 1.0\n\n{}{}--==BOUNDARY==--\n",
        part(
            "text/cloud-config",
            "cloud-config.txt",
            "#cloud-config\ncloud_final_modules:\n- [scripts-user, always]\n"
        ),
        part("text/x-shellscript", "bootstrap.sh", USER_DATA)
    )
}

fn group_resources(
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

/// The ARN of the Auto Scaling group named `name` (IAM resources).
fn group_arn(name: &str) -> Value {
    sub(&format!(
        "arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:autoScalingGroupName/{name}"
    ))
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

/// The EventBridge rules that send to the queue (for its policy).
fn trigger_rules(policy: &Policy) -> Vec<String> {
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

/// A stack that tells you when it breaks: an SNS topic (an email
/// subscription when `AlertEmail` is set) and alarms on what would
/// otherwise fail silently. Each alarm's reason is in its description.
fn alerts(resources: &mut Map<String, Value>, policy: &Policy) {
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

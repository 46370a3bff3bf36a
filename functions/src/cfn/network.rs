//! The network (VPC, subnets, the S3 gateway endpoint, security groups) and
//! the instances' launch template, role and user data.

use super::*;

pub(super) fn network(resources: &mut Map<String, Value>) {
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
pub(super) fn alb_security_group(exposure: Exposure) -> (&'static str, Value, &'static str) {
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
pub(super) const VPC_CIDR: &str = "10.40.0.0/16";

pub(super) fn instances(resources: &mut Map<String, Value>, exposures: &[Exposure], user_data: String) {
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
pub const USER_DATA: &str = include_str!("../../../infra/aws/bootstrap.sh");

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

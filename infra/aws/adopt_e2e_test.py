"""Issue 21's adopt mode end to end against moto_server (.ci/run runs it after the tests):
a group made by hand (boto3, as a console would) is imported with `scalectl import
--parameters`, the adopt template of the imported policy (`scalectl template --adopt`)
is created as a stack in dry run next to the group, and the group is left as it was,
during the stack's life and after its deletion. Then infra/aws/deploy.sh --adopt itself
(the AWS CLI, the arm64 zip `deploy.sh --build-only` built), twice: created, then an
unchanged redeploy that uploads nothing and is no error.

moto's CloudFormation has no model for some of the template's types (the CloudWatch
alarms, the scheduler's schedules, the SNS subscription, the queue policy): it accepts
them without creating anything, so they are checked by cfn-lint and checkov, not here.

Needs: MOTO_SERVER (the moto_server binary), SCALECTL (default target/debug/scalectl);
for the deploy.sh test also `aws` and `cargo-lambda` on PATH and target/lambda built.
moto's limits met here: a code-only UpdateStack does not update a function's code
(CodeSha256 stays), Architectures is dropped, and a template URL is read path-style only
on a "localhost" endpoint.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request
import zipfile
from pathlib import Path

import boto3

import check_artifacts

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AdoptEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        moto = os.environ.get("MOTO_SERVER")
        if not moto:
            if os.environ.get("CI") == "true":
                raise RuntimeError("MOTO_SERVER is not set (CI=true: a missing tool is a failure)")
            raise unittest.SkipTest("MOTO_SERVER not set: the moto_server binary")
        cls.scalectl = os.environ.get("SCALECTL", str(ROOT / "target/debug/scalectl"))
        if not Path(cls.scalectl).is_file():
            raise RuntimeError(f"{cls.scalectl} is missing: cargo build -p functions --bin scalectl")
        port = free_port()
        cls.endpoint = f"http://127.0.0.1:{port}"
        cls.server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(cls.endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    cls.server.kill()
                    raise
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.server.terminate()
        cls.server.wait(timeout=10)

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def run_scalectl(self, *args):
        env = dict(
            os.environ,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION=REGION,
            AWS_MAX_ATTEMPTS="1",
        )
        env.pop("AWS_PROFILE", None)
        done = subprocess.run([self.scalectl, *args], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, f"scalectl {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done

    def console_group(self, name):
        """A group as a console makes one: a target group, 2 to 12 instances
        (3 running), target tracking at 60% CPU. Returns its target group ARN."""
        ec2, elb, asg = self.client("ec2"), self.client("elbv2"), self.client("autoscaling")
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=8080, VpcId=vpc, HealthCheckPath="/health")
        tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
        asg.create_launch_configuration(LaunchConfigurationName=f"{name}-lc", ImageId="ami-12c6146b", InstanceType="t4g.small")
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName=f"{name}-lc",
            MinSize=2,
            MaxSize=12,
            DesiredCapacity=3,
            AvailabilityZones=["eu-west-1a", "eu-west-1b"],
            TargetGroupARNs=[tg_arn],
        )
        asg.put_scaling_policy(
            AutoScalingGroupName=name,
            PolicyName=f"{name}-cpu-60",
            PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration={
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
                "TargetValue": 60.0,
            },
        )
        return tg_arn

    def test_a_console_group_is_imported_and_adopted_in_dry_run_and_left_as_it_was(self):
        asg = self.client("autoscaling")
        tg_arn = self.console_group("shop")
        asg.put_scheduled_update_group_action(
            AutoScalingGroupName="shop", ScheduledActionName="shop-lunch", Recurrence="45 10 * * 1-5", TimeZone="Asia/Shanghai", MinSize=4
        )
        before = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop"])["AutoScalingGroups"][0]

        work = Path(tempfile.mkdtemp())
        policy, parameters, template = work / "shop.toml", work / "params.json", work / "adopt.json"
        imported = self.run_scalectl("import", "--group", "shop", "--out", str(policy), "--parameters", str(parameters))
        # The target group is the group's; its load balancer comes from
        # CloudWatch's ListMetrics, which moto does not speak (rpcv2Cbor): named, left empty.
        values = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(parameters.read_text())}
        self.assertEqual(values["ShopTargetGroup"], "targetgroup/" + tg_arn.split(":targetgroup/")[1])
        self.assertEqual(values["ShopLoadBalancer"], "")
        self.assertIn("not found: parameter ShopLoadBalancer of group shop", imported.stderr)
        self.run_scalectl("validate", "--policy", str(policy))
        self.run_scalectl("template", "--adopt", "--policy", str(policy), "--out", str(template))

        body = template.read_text()
        self.assertLess(len(body.encode()), 51_200, "an inline template is at most 51,200 bytes")
        self.assertNotIn("AWS::AutoScaling::AutoScalingGroup", body)
        cfn = self.client("cloudformation")
        # The function's code, content-addressed as deploy.sh uploads it.
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("bootstrap", b"\x7fELF")
            archive.writestr("policy.toml", policy.read_bytes())
        sha = hashlib.sha256(code.getvalue()).hexdigest()
        s3 = self.client("s3")
        s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket="artifacts", Key=f"functions/scaler-{sha}.zip", Body=code.getvalue())
        cfn.create_stack(
            StackName="shop-shadow",
            TemplateBody=body,
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[
                {"ParameterKey": "ArtifactBucket", "ParameterValue": "artifacts"},
                {"ParameterKey": "ScalerSha256", "ParameterValue": sha},
                {"ParameterKey": "ShopTargetGroup", "ParameterValue": values["ShopTargetGroup"]},
                {"ParameterKey": "ShopLoadBalancer", "ParameterValue": "app/shop-lb/50dc6c495c0c9188"},
                {"ParameterKey": "DryRun", "ParameterValue": "true"},
            ],
        )
        stack = cfn.describe_stacks(StackName="shop-shadow")["Stacks"][0]
        self.assertEqual(stack["StackStatus"], "CREATE_COMPLETE", stack.get("StackStatusReason"))
        resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="shop-shadow")["StackResourceSummaries"]}
        for made in ["Scaler", "ScalerQueue", "TriggerQueue", "TickShop", "FunctionRole", "DashboardShop"]:
            self.assertEqual(resources[made]["ResourceStatus"], "CREATE_COMPLETE", made)
        # The function is in dry run and reads the adopted group's target group and load balancer.
        function = self.client("lambda").get_function(FunctionName=resources["Scaler"]["PhysicalResourceId"])
        variables = function["Configuration"]["Environment"]["Variables"]
        self.assertEqual(variables["SCALER_DRY_RUN"], "true")
        self.assertEqual(variables["SCALER_TARGET_GROUPS"], "shop=" + values["ShopTargetGroup"])
        self.assertEqual(variables["SCALER_LOAD_BALANCERS"], "shop=app/shop-lb/50dc6c495c0c9188")
        self.assertEqual(function["Configuration"]["CodeSha256"], base64.b64encode(hashlib.sha256(code.getvalue()).digest()).decode())
        # The group is as it was: same limits, capacity and instances.
        during = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop"])["AutoScalingGroups"][0]
        for key in ["MinSize", "MaxSize", "DesiredCapacity", "TargetGroupARNs"]:
            self.assertEqual(during[key], before[key], key)
        self.assertEqual(sorted(i["InstanceId"] for i in during["Instances"]), sorted(i["InstanceId"] for i in before["Instances"]))
        # Deleting the stack removes what it made (the function, its
        # queues) and leaves the adopted group (it never owned it).
        queues = [resources[q]["PhysicalResourceId"] for q in ["TriggerQueue", "DeadLetterQueue", "TriggerDeadLetters"]]
        cfn.delete_stack(StackName="shop-shadow")
        with self.assertRaises(self.client("lambda").exceptions.ResourceNotFoundException):
            self.client("lambda").get_function(FunctionName=resources["Scaler"]["PhysicalResourceId"])
        left = self.client("sqs").list_queues().get("QueueUrls", [])
        self.assertEqual([q for q in left if any(q.endswith(name.rsplit("/", 1)[-1]) for name in queues)], [])
        after = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop"])["AutoScalingGroups"]
        self.assertEqual(len(after), 1)
        self.assertEqual(after[0]["DesiredCapacity"], before["DesiredCapacity"])


    def test_deploy_sh_adopts_a_group_in_dry_run_and_an_unchanged_redeploy_is_no_error(self):
        """infra/aws/deploy.sh --adopt itself, with the AWS CLI, on the arm64
        artifacts `deploy.sh --build-only` built (run after it)."""
        zip_path = ROOT / "target/lambda/scaler/bootstrap.zip"
        missing = [tool for tool in ["aws", "cargo-lambda"] if not shutil.which(tool)]
        if missing or not zip_path.is_file():
            why = f"needs {missing or ''} {'' if zip_path.is_file() else zip_path} (deploy.sh --build-only builds it)"
            if os.environ.get("CI") == "true":
                self.fail(why)
            self.skipTest(why)
        asg = self.client("autoscaling")
        self.console_group("cart")
        before = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["cart"])["AutoScalingGroups"][0]
        work = Path(tempfile.mkdtemp())
        policy, parameters = work / "cart.toml", work / "params.json"
        self.run_scalectl("import", "--group", "cart", "--out", str(policy), "--parameters", str(parameters))
        # moto's CloudWatch cannot name the load balancer: filled in by hand, as an operator would.
        values = json.loads(parameters.read_text())
        for p in values:
            if p["ParameterKey"] == "CartLoadBalancer":
                p["ParameterValue"] = "app/cart-lb/0123456789abcdef"
        parameters.write_text(json.dumps(values))
        self.client("s3").create_bucket(Bucket="cart-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
        env = dict(
            os.environ,
            # `cloudformation deploy` hands CloudFormation a path-style
            # template URL on the endpoint; moto reads the bucket from the
            # path only when the host is "localhost".
            AWS_ENDPOINT_URL=self.endpoint.replace("127.0.0.1", "localhost"),
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_MAX_ATTEMPTS="1",
            DEPLOY_EXTRA_PARAMETERS="DryRun=true",
        )
        env.pop("AWS_PROFILE", None)
        deploy = [str(ROOT / "infra/aws/deploy.sh"), "--adopt", str(parameters), "cart-shadow", "cart-artifacts", str(policy)]
        for attempt in ["create", "unchanged"]:
            done = subprocess.run(["bash", *deploy], env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
            self.assertEqual(done.returncode, 0, f"deploy.sh ({attempt}):\n{done.stdout}\n{done.stderr}")
            self.assertIn("adopted.", done.stdout, attempt)
        self.assertIn("already there", done.stdout, "the second deploy uploads nothing")
        cfn = self.client("cloudformation")
        stack = cfn.describe_stacks(StackName="cart-shadow")["Stacks"][0]
        self.assertIn(stack["StackStatus"], ["CREATE_COMPLETE", "UPDATE_COMPLETE"], stack.get("StackStatusReason"))
        resources = {r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="cart-shadow")["StackResourceSummaries"]}
        function = self.client("lambda").get_function(FunctionName=resources["Scaler"]["PhysicalResourceId"])
        self.assertEqual(function["Configuration"]["Environment"]["Variables"]["SCALER_DRY_RUN"], "true")
        # The code deployed is the one object uploaded, under the key of the
        # built code's content (a rebuild zips it with other timestamps:
        # the same key, nothing uploaded).
        s3 = self.client("s3")
        objects = [o["Key"] for o in s3.list_objects_v2(Bucket="cart-artifacts", Prefix="functions/").get("Contents", [])]
        self.assertEqual(objects, [f"functions/scaler-{check_artifacts.code_sha256(zip_path)}.zip"])
        uploaded = s3.get_object(Bucket="cart-artifacts", Key=objects[0])["Body"].read()
        self.assertEqual(function["Configuration"]["CodeSha256"], base64.b64encode(hashlib.sha256(uploaded).digest()).decode())
        # (moto's CloudFormation drops the function's Architectures: arm64 is
        # checked in the template by functions/tests/template.rs.)
        during = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["cart"])["AutoScalingGroups"][0]
        for key in ["MinSize", "MaxSize", "DesiredCapacity", "TargetGroupARNs"]:
            self.assertEqual(during[key], before[key], key)


if __name__ == "__main__":
    unittest.main()

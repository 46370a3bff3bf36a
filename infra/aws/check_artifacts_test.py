"""Tests of check_artifacts.py on hand-made artifacts (`python3 -m unittest` from infra/aws; .ci/run runs it)."""

import contextlib
import io
import json
import shutil
import tempfile
import unittest
import zipfile
from pathlib import Path

import check_artifacts

POLICY = b'[[group]]\nname = "web"\n'


def elf(machine):
    """The first 64 bytes of a 64-bit little-endian ELF for `machine`."""
    head = bytearray(64)
    head[:6] = b"\x7fELF\x02\x01"
    head[18:20] = machine.to_bytes(2, "little")
    return bytes(head)


def function(name, architecture="arm64"):
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Architectures": [architecture],
            "Code": {"S3Bucket": {"Ref": "ArtifactBucket"}, "S3Key": {"Fn::Sub": f"functions/{name}-${{{name.title().replace('-', '')}Sha256}}.zip"}},
        },
    }


class CheckArtifacts(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.dir)
        self.template = self.dir / "template.json"
        self.template.write_text(
            json.dumps(
                {
                    "Parameters": {"WorkloadSha256": {"Type": "String"}},
                    "Resources": {"A": function("alarm-scaler"), "T": function("target-tracker"), "Q": {"Type": "AWS::SQS::Queue"}},
                }
            )
        )
        self.policy = self.dir / "policy.toml"
        self.policy.write_bytes(POLICY)
        self.lambda_dir = self.dir / "lambda"
        for name in ["alarm-scaler", "target-tracker"]:
            self.zip(name, {"bootstrap": elf(0xB7), "policy.toml": POLICY})
        (self.lambda_dir / "workload").mkdir(parents=True)
        (self.lambda_dir / "workload" / "bootstrap").write_bytes(elf(0xB7) + b"rest")

    def zip(self, name, entries, mode=0o755):
        path = self.lambda_dir / name / "bootstrap.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            for entry, data in entries.items():
                info = zipfile.ZipInfo(entry)
                info.external_attr = ((mode if entry == "bootstrap" else 0o644) | 0o100000) << 16
                archive.writestr(info, data)

    def problems(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = check_artifacts.check(self.template, self.policy, self.lambda_dir)
        lines = [line for line in err.getvalue().splitlines() if line.startswith("check_artifacts:")]
        self.assertEqual(code, 1 if lines else 0)
        return lines

    def test_good_artifacts_pass(self):
        self.assertEqual(self.problems(), [])

    def test_lists_the_templates_functions(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            check_artifacts.main(["--list", str(self.template)])
        self.assertEqual(out.getvalue().split(), ["alarm-scaler", "target-tracker"])

    def test_policy_under_a_directory_is_caught(self):
        # What `--include target/aws/policy.toml` from the repository root produced.
        self.zip("alarm-scaler", {"bootstrap": elf(0xB7), "target/aws/policy.toml": POLICY})
        [problem] = self.problems()
        self.assertIn("alarm-scaler", problem)
        self.assertIn("target/aws/policy.toml", problem)

    def test_wrong_architecture_missing_zip_stale_policy_and_mode_are_all_reported(self):
        self.zip("alarm-scaler", {"bootstrap": elf(0x3E), "policy.toml": POLICY + b"# edited\n"}, mode=0o644)
        (self.lambda_dir / "target-tracker" / "bootstrap.zip").unlink()
        (self.lambda_dir / "workload" / "bootstrap").write_bytes(b"#!/bin/sh\n")
        problems = "\n".join(self.problems())
        self.assertIn("alarm-scaler: bootstrap is built for x86_64, the template says arm64", problems)
        self.assertIn("alarm-scaler: bootstrap is not executable", problems)
        self.assertIn("alarm-scaler: policy.toml differs", problems)
        self.assertIn("target-tracker: ", problems)
        self.assertIn("is missing", problems)
        self.assertIn("workload: ", problems)
        self.assertIn("not an ELF binary", problems)

    def test_a_key_outside_the_prefix_is_an_error(self):
        bad = function("alarm-scaler")
        bad["Properties"]["Code"]["S3Key"] = "somewhere/else.zip"
        self.template.write_text(json.dumps({"Resources": {"A": bad}}))
        with self.assertRaises(SystemExit) as raised:
            check_artifacts.check(self.template, self.policy, self.lambda_dir)
        self.assertIn("is not functions/NAME-${PARAMETER}.zip (content-addressed)", str(raised.exception))

    def test_keys_follow_the_code_not_the_zips_timestamps(self):
        first = {p: (sha, key) for p, sha, _, key in check_artifacts.keys(self.template, self.lambda_dir)}
        self.assertEqual(sorted(first), ["AlarmScalerSha256", "TargetTrackerSha256", "WorkloadSha256"])
        sha, key = first["AlarmScalerSha256"]
        self.assertEqual(key, f"functions/alarm-scaler-{sha}.zip")
        self.assertRegex(sha, "^[0-9a-f]{64}$")
        # The same code zipped again (other timestamps): the same key.
        path = self.lambda_dir / "alarm-scaler" / "bootstrap.zip"
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                info = zipfile.ZipInfo(name, date_time=(2030, 1, 2, 3, 4, 6))
                info.external_attr = 0o100755 << 16
                archive.writestr(info, data)
        again = {p: (s, k) for p, s, _, k in check_artifacts.keys(self.template, self.lambda_dir)}
        self.assertEqual(again["AlarmScalerSha256"], first["AlarmScalerSha256"])
        # Other code, or another policy inside: another key; the rest unchanged.
        self.zip("alarm-scaler", {"bootstrap": elf(0xB7) + b"v2", "policy.toml": POLICY})
        changed = {p: (s, k) for p, s, _, k in check_artifacts.keys(self.template, self.lambda_dir)}
        self.assertNotEqual(changed["AlarmScalerSha256"], first["AlarmScalerSha256"])
        self.assertEqual(changed["TargetTrackerSha256"], first["TargetTrackerSha256"])
        (self.lambda_dir / "workload" / "bootstrap").write_bytes(elf(0xB7) + b"other")
        moved = {p: (s, k) for p, s, _, k in check_artifacts.keys(self.template, self.lambda_dir)}
        self.assertNotEqual(moved["WorkloadSha256"], first["WorkloadSha256"])
        self.assertTrue(moved["WorkloadSha256"][1].startswith("workload/workload-"))

    def test_the_adopt_template_needs_no_workload(self):
        # scalectl template --adopt launches no instance: no WorkloadSha256 parameter.
        self.template.write_text(json.dumps({"Resources": {"A": function("alarm-scaler")}}))
        (self.lambda_dir / "workload" / "bootstrap").unlink()
        self.assertEqual(self.problems(), [])
        found = [p for p, _, _, _ in check_artifacts.keys(self.template, self.lambda_dir)]
        self.assertEqual(found, ["AlarmScalerSha256"])

    def test_initial_desired_comes_from_the_groups_metadata(self):
        group = {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Metadata": {"autoscaler:initial-desired": 3},
            "Properties": {"AutoScalingGroupName": "web", "MinSize": {"Ref": "WebMin"}},
        }
        template = {"Resources": {"GroupWeb": group, "A": function("alarm-scaler")}}
        self.assertEqual(check_artifacts.initial_desired(template), [("web", 3)])
        self.assertNotIn("DesiredCapacity", group["Properties"])

    def test_target_groups_name_each_groups_own(self):
        template = {
            "Resources": {
                "GroupWeb": {
                    "Type": "AWS::AutoScaling::AutoScalingGroup",
                    "Properties": {"AutoScalingGroupName": "web", "TargetGroupARNs": [{"Ref": "TargetGroupWeb"}]},
                },
                "GroupSession": {
                    "Type": "AWS::AutoScaling::AutoScalingGroup",
                    "Properties": {"AutoScalingGroupName": "session", "TargetGroupARNs": [{"Ref": "TargetGroupSession"}]},
                },
                "A": function("scaler"),
            }
        }
        self.assertEqual(
            check_artifacts.target_groups(template),
            [("session", "TargetGroupSession"), ("web", "TargetGroupWeb")],
        )


if __name__ == "__main__":
    unittest.main()

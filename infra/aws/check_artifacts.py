#!/usr/bin/env python3
"""Check what `deploy.sh` built against the template before anything is uploaded.

    check_artifacts.py --list TEMPLATE                  the functions the template deploys, one per line
    check_artifacts.py TEMPLATE POLICY LAMBDA_DIR       check the built artifacts
    check_artifacts.py --keys TEMPLATE LAMBDA_DIR       each artifact's content-addressed key:
                                                        PARAMETER SHA256 LOCAL_FILE S3_KEY, one per line
    check_artifacts.py --initial-desired TEMPLATE       GROUP N for each group (set once, at creation)
    check_artifacts.py --target-groups TEMPLATE         GROUP TARGET_GROUP_LOGICAL_ID for each group

Keys are content-addressed, because CloudFormation does not look inside S3
objects: a function's code at `functions/NAME-${PARAMSha256}.zip`, the
SHA-256 over its entries (names and bytes, so a rebuild of the same code
gives the same key whatever the zip's timestamps); the workload at
`workload/workload-${WorkloadSha256}`, the SHA-256 of the binary.

For every AWS::Lambda::Function in the template (its code at
`functions/NAME-${PARAM}.zip`): LAMBDA_DIR/NAME/bootstrap.zip exists and holds
exactly an executable `bootstrap` (a 64-bit ELF for the template's
architecture) and `policy.toml` equal to POLICY, both at the root (the
functions read `policy.toml` from their working directory, /var/task). The
workload binary LAMBDA_DIR/workload/bootstrap is a 64-bit aarch64 ELF (the
instances are Graviton). Every problem is reported; exit 1 if any.
Standard library only.
"""

import hashlib
import json
import re
import stat
import sys
import zipfile
from pathlib import Path

# ELF e_machine values for the architectures Lambda offers.
MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}


def functions(template):
    """(name, architecture, code parameter) per Lambda function, from its S3 key."""
    found = []
    for logical, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource.get("Properties", {})
        key = props.get("Code", {}).get("S3Key")
        if isinstance(key, dict):
            key = key.get("Fn::Sub")
        match = re.fullmatch(r"functions/([a-z0-9-]+)-\$\{(\w+)\}\.zip", key or "")
        if not match:
            raise SystemExit(f"{logical}: Code.S3Key {key!r} is not functions/NAME-${{PARAMETER}}.zip (content-addressed)")
        found.append((match.group(1), (props.get("Architectures") or ["x86_64"])[0], match.group(2)))
    return found


def code_sha256(zip_path):
    """SHA-256 over a zip's entries, names and bytes in name order (not the zip's own bytes)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as archive:
        for name in sorted(archive.namelist()):
            data = archive.read(name)
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


def keys(template_path, lambda_dir):
    """(parameter, sha256, local file, S3 key) for every artifact the template names."""
    template = json.loads(Path(template_path).read_text())
    found = []
    for name, _, parameter in functions(template):
        path = Path(lambda_dir) / name / "bootstrap.zip"
        sha = code_sha256(path)
        found.append((parameter, sha, path, f"functions/{name}-{sha}.zip"))
    if needs_workload(template):
        workload = Path(lambda_dir) / "workload" / "bootstrap"
        sha = hashlib.sha256(workload.read_bytes()).hexdigest()
        found.append(("WorkloadSha256", sha, workload, f"workload/workload-{sha}"))
    return found


def needs_workload(template):
    """Whether the template launches instances (the adopt template does not)."""
    return "WorkloadSha256" in template.get("Parameters", {})


def initial_desired(template):
    """(group name, starting size) for every Auto Scaling group."""
    found = []
    for _, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::AutoScaling::AutoScalingGroup":
            continue
        desired = resource.get("Metadata", {}).get("autoscaler:initial-desired")
        if desired is not None:
            found.append((resource["Properties"]["AutoScalingGroupName"], int(desired)))
    return found


def target_groups(template):
    """(group name, logical id of its target group) for every Auto Scaling group."""
    found = []
    for _, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::AutoScaling::AutoScalingGroup":
            continue
        for arn in resource["Properties"].get("TargetGroupARNs", []):
            if isinstance(arn, dict) and "Ref" in arn:
                found.append((resource["Properties"]["AutoScalingGroupName"], arn["Ref"]))
    return found


def elf_problem(data, architecture):
    """None when `data` starts a 64-bit little-endian ELF executable for `architecture`."""
    if data[:4] != b"\x7fELF":
        return "not an ELF binary"
    if data[4] != 2 or data[5] != 1:
        return "not a 64-bit little-endian ELF"
    machine = int.from_bytes(data[18:20], "little")
    if machine != MACHINES[architecture]:
        names = {v: k for k, v in MACHINES.items()}
        return f"built for {names.get(machine, hex(machine))}, the template says {architecture}"
    return None


def check(template_path, policy_path, lambda_dir):
    template = json.loads(Path(template_path).read_text())
    policy = Path(policy_path).read_bytes()
    problems = []
    for name, architecture, _ in functions(template):
        path = Path(lambda_dir) / name / "bootstrap.zip"
        if not path.is_file():
            problems.append(f"{name}: {path} is missing (cargo lambda build ... --output-format zip)")
            continue
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            if sorted(entries) != ["bootstrap", "policy.toml"]:
                problems.append(f"{name}: {path} holds {sorted(entries)}, expected ['bootstrap', 'policy.toml'] at the root")
            if "bootstrap" in entries:
                mode = entries["bootstrap"].external_attr >> 16
                if not mode & stat.S_IXUSR:
                    problems.append(f"{name}: bootstrap is not executable (mode {oct(mode)})")
                with archive.open("bootstrap") as binary:
                    problem = elf_problem(binary.read(64), architecture)
                if problem:
                    problems.append(f"{name}: bootstrap is {problem}")
            if "policy.toml" in entries and archive.read("policy.toml") != policy:
                problems.append(f"{name}: policy.toml differs from {policy_path}")
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB, {architecture}) ok", file=sys.stderr)
    workload = Path(lambda_dir) / "workload" / "bootstrap"
    if not needs_workload(template):
        pass
    elif not workload.is_file():
        problems.append(f"workload: {workload} is missing (cargo lambda build --release --arm64 -p workload)")
    else:
        problem = elf_problem(workload.read_bytes()[:64], "arm64")
        if problem:
            problems.append(f"workload: {workload} is {problem}")
        else:
            print(f"workload: {workload} ({workload.stat().st_size / 1e6:.1f} MB, arm64) ok", file=sys.stderr)
    for problem in problems:
        print(f"check_artifacts: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv):
    if len(argv) == 2 and argv[0] == "--list":
        for name, _, _ in functions(json.loads(Path(argv[1]).read_text())):
            print(name)
        return 0
    if len(argv) == 3 and argv[0] == "--keys":
        for parameter, sha, path, key in keys(argv[1], argv[2]):
            print(parameter, sha, path, key)
        return 0
    if len(argv) == 2 and argv[0] == "--target-groups":
        for group, target_group in target_groups(json.loads(Path(argv[1]).read_text())):
            print(group, target_group)
        return 0
    if len(argv) == 2 and argv[0] == "--initial-desired":
        for group, desired in initial_desired(json.loads(Path(argv[1]).read_text())):
            print(group, desired)
        return 0
    if len(argv) == 3:
        return check(*argv)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

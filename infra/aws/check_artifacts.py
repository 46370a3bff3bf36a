#!/usr/bin/env python3
"""Check what `deploy.sh` built against the template before anything is uploaded.

    check_artifacts.py --list TEMPLATE                  the functions the template deploys, one per line
    check_artifacts.py TEMPLATE POLICY LAMBDA_DIR       check the built artifacts

For every AWS::Lambda::Function in the template (its code at
`${FunctionsPrefix}NAME.zip`): LAMBDA_DIR/NAME/bootstrap.zip exists and holds
exactly an executable `bootstrap` (a 64-bit ELF for the template's
architecture) and `policy.toml` equal to POLICY, both at the root (the
functions read `policy.toml` from their working directory, /var/task). The
workload binary LAMBDA_DIR/workload/bootstrap is a 64-bit aarch64 ELF (the
instances are Graviton). Every problem is reported; exit 1 if any.
Standard library only.
"""

import json
import re
import stat
import sys
import zipfile
from pathlib import Path

# ELF e_machine values for the architectures Lambda offers.
MACHINES = {"arm64": 0xB7, "x86_64": 0x3E}


def functions(template):
    """(name, architecture) per Lambda function, from its S3 key."""
    found = []
    for logical, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource.get("Properties", {})
        key = props.get("Code", {}).get("S3Key")
        if isinstance(key, dict):
            key = key.get("Fn::Sub")
        match = re.fullmatch(r"\$\{FunctionsPrefix\}([a-z0-9-]+)\.zip", key or "")
        if not match:
            raise SystemExit(f"{logical}: Code.S3Key {key!r} is not ${{FunctionsPrefix}}NAME.zip")
        found.append((match.group(1), (props.get("Architectures") or ["x86_64"])[0]))
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
    for name, architecture in functions(template):
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
    if not workload.is_file():
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
        for name, _ in functions(json.loads(Path(argv[1]).read_text())):
            print(name)
        return 0
    if len(argv) == 3:
        return check(*argv)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

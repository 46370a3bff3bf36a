#!/usr/bin/env bash
# Build the functions and the workload for arm64, check what was built,
# upload it to S3, and deploy the stack generated from a policy file.
#   infra/aws/deploy.sh [--new-ami] STACK BUCKET [POLICY_FILE]
#   infra/aws/deploy.sh --adopt PARAMS.json STACK BUCKET POLICY_FILE
#   infra/aws/deploy.sh [--adopt -] --build-only [POLICY_FILE]   (no AWS: build and check; CI runs this)
# --adopt: groups that already exist (made in a console) are left as they
# are: only the functions, alarms, schedules, ticks, stack alarms and
# dashboards are deployed (`scalectl template --adopt`); PARAMS.json is what
# `scalectl import --parameters` wrote (each group's target group and load
# balancer). Add DryRun=true with DEPLOY_EXTRA_PARAMETERS="DryRun=true" to
# shadow the group's own scaling (then `loadtest shadow --aws`).
# Artifacts are content-addressed (functions/NAME-SHA256.zip,
# workload/workload-SHA256): CloudFormation does not look inside S3 objects,
# so only a new key deploys new code. The AMI is pinned: resolved from SSM on
# the first deploy, kept from the stack on updates unless --new-ami (which
# rolls every group onto it). The template goes through the bucket (inline
# templates are capped at 51,200 bytes); an unchanged stack is not an error.
# Before anything moves: the policy validates, every name fits AWS's limits,
# the bucket is in the stack's region. After: every group's targets healthy
# (DEPLOY_HEALTHY_WITHIN_S, default 600), then the verify command to run.
# Needs: cargo-lambda (pip install cargo-lambda; it ships zig for the arm64
# cross-build), python3, and for a deploy the AWS CLI with credentials.
set -euo pipefail
usage="usage: deploy.sh [--new-ami] STACK BUCKET [POLICY_FILE] | deploy.sh --adopt PARAMS.json STACK BUCKET POLICY_FILE | deploy.sh [--adopt -] --build-only [POLICY_FILE]"
new_ami=0
adopt=""
if [ "${1:-}" = "--new-ami" ]; then
  new_ami=1
  shift
fi
if [ "${1:-}" = "--adopt" ]; then
  adopt=${2:?$usage}
  shift 2
  if [ "$adopt" != "-" ] && [ ! -r "$adopt" ]; then
    echo "deploy.sh: --adopt $adopt: cannot read the parameters file (scalectl import --group NAME --parameters $adopt writes it)" >&2
    exit 2
  fi
fi
if [ "${1:-}" = "--build-only" ]; then
  build_only=1
  policy=${2:-policies/two-tier.toml}
else
  build_only=0
  stack=${1:?$usage}
  bucket=${2:?$usage}
  policy=${3:-policies/two-tier.toml}
fi
cd "$(dirname "$0")/../.."
command -v cargo-lambda >/dev/null || { echo "deploy.sh: cargo-lambda is missing: pip install cargo-lambda" >&2; exit 2; }

cargo run -q -p functions --bin scalectl -- validate --policy "$policy"
if [ "$build_only" = 0 ]; then
  # Names built from the stack's (function, queues, tick rules) must fit AWS's limits.
  cargo run -q -p functions --bin scalectl -- preflight --policy "$policy" --stack "$stack"
fi
mkdir -p target/aws
template_flags=()
[ -z "$adopt" ] || template_flags=(--adopt)
cargo run -q -p functions --bin scalectl -- template "${template_flags[@]}" --policy "$policy" --out target/aws/template.json
cp "$policy" target/aws/policy.toml

# Lambda binaries without their line tables (smaller zips start faster;
# symbol names stay, so a panic still names its functions).
export CARGO_PROFILE_RELEASE_STRIP=debuginfo
# The functions read policy.toml beside their bootstrap: cargo lambda keeps
# an included file's path relative to the working directory, so include it
# from target/aws.
# Only the functions the template deploys.
mapfile -t functions < <(python3 infra/aws/check_artifacts.py --list target/aws/template.json)
bins=()
for function in "${functions[@]}"; do bins+=(--bin "$function"); done
(cd target/aws && cargo lambda build --release --arm64 --manifest-path ../../Cargo.toml \
  -p functions "${bins[@]}" --output-format zip --include policy.toml)
# The adopt template launches no instance: no workload.
[ -n "$adopt" ] || cargo lambda build --release --arm64 -p workload --bin workload

python3 infra/aws/check_artifacts.py target/aws/template.json target/aws/policy.toml target/lambda
# PARAMETER SHA256 LOCAL_FILE S3_KEY per artifact.
mapfile -t artifacts < <(python3 infra/aws/check_artifacts.py --keys target/aws/template.json target/lambda)
if [ "$build_only" = 1 ]; then
  for artifact in "${artifacts[@]}"; do
    read -r _ _ file key <<<"$artifact"
    echo "built $file -> s3://BUCKET/$key"
  done
  exit 0
fi

# Lambda reads its code from a bucket in the function's own region: a
# bucket elsewhere fails the stack half-way (checked before anything moves).
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region || true)}}
[ -n "$region" ] || { echo "deploy.sh: no AWS region (set AWS_REGION or aws configure set region R)" >&2; exit 2; }
bucket_region=$(aws s3api get-bucket-location --bucket "$bucket" --query LocationConstraint --output text) \
  || { echo "deploy.sh: cannot read bucket $bucket's region (does it exist, and may you read it?)" >&2; exit 2; }
# GetBucketLocation answers None for us-east-1 and EU for the oldest eu-west-1 buckets.
case "$bucket_region" in None | null | "") bucket_region=us-east-1 ;; EU) bucket_region=eu-west-1 ;; esac
if [ "$bucket_region" != "$region" ]; then
  echo "deploy.sh: bucket $bucket is in $bucket_region but the stack deploys to $region; Lambda needs its code in the same region" >&2
  exit 2
fi

overrides=("ArtifactBucket=$bucket")
for artifact in "${artifacts[@]}"; do
  read -r parameter sha file key <<<"$artifact"
  overrides+=("$parameter=$sha")
  if aws s3api head-object --bucket "$bucket" --key "$key" >/dev/null 2>&1; then
    echo "s3://$bucket/$key: already there"
  else
    aws s3 cp --only-show-errors "$file" "s3://$bucket/$key"
    echo "s3://$bucket/$key: uploaded"
  fi
done

if [ -n "$adopt" ]; then
  # Each group's target group and load balancer, as import wrote them; an
  # empty one (not found) is refused by the template's pattern, naming it.
  # (A command substitution, so a file python cannot read stops the deploy.)
  adopted_text=$(python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])):
    print("%s=%s" % (p["ParameterKey"], p["ParameterValue"]))' "$adopt")
  mapfile -t adopted <<<"$adopted_text"
  overrides+=("${adopted[@]}")
  # shellcheck disable=SC2206 # KEY=VALUE words, as the AWS CLI takes them
  overrides+=(${DEPLOY_EXTRA_PARAMETERS:-})
  creating=0
else
  # The AMI: the stack's own unless --new-ami or the stack is new.
  current_ami=$(aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Parameters[?ParameterKey=='ImageId'].ParameterValue" --output text 2>/dev/null || true)
  if [ "$new_ami" = 1 ] || [ -z "$current_ami" ] || [ "$current_ami" = "None" ]; then
    ami=$(aws ssm get-parameter --name /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64 \
      --query Parameter.Value --output text)
    echo "AMI $ami (latest Amazon Linux 2023 arm64)"
  else
    ami=$current_ami
    echo "AMI $ami (kept from the stack; --new-ami to move every group to the latest)"
  fi
  overrides+=("ImageId=$ami")
  creating=0
  if [ -z "$current_ami" ] || [ "$current_ami" = "None" ]; then creating=1; fi
fi

aws cloudformation deploy \
  --stack-name "$stack" \
  --template-file target/aws/template.json \
  --s3-bucket "$bucket" --s3-prefix templates \
  --no-fail-on-empty-changeset \
  --capabilities CAPABILITY_IAM \
  --parameter-overrides "${overrides[@]}"

if [ -n "$adopt" ]; then
  aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs' --output table
  echo
  echo "adopted. The groups keep their own instances and load balancers; with DryRun=true compare, after a day:"
  echo "  cargo run --release -p loadtest -- shadow --aws --group GROUP --stack $stack --since 1d"
  exit 0
fi

# Each group's starting size, once: the template pins no DesiredCapacity
# (a stack update would set it back while the scaler runs).
if [ "$creating" = 1 ]; then
  while read -r group desired; do
    aws autoscaling set-desired-capacity --auto-scaling-group-name "$group" --desired-capacity "$desired"
    echo "group $group: desired $desired (the policy's starting size)"
  done < <(python3 infra/aws/check_artifacts.py --initial-desired target/aws/template.json)
fi
aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs' --output table

# Healthy before done: each group's target group must have as many healthy
# targets as the group's desired capacity within 10 minutes (boot, the
# workload's download, two health checks), else the deploy fails with what
# the load balancer says of each target.
deadline=$(( $(date +%s) + ${DEPLOY_HEALTHY_WITHIN_S:-600} ))
failed=0
while read -r group target_group; do
  arn=$(aws cloudformation describe-stack-resource --stack-name "$stack" --logical-resource-id "$target_group" \
    --query StackResourceDetail.PhysicalResourceId --output text)
  desired=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$group" \
    --query 'AutoScalingGroups[0].DesiredCapacity' --output text)
  while :; do
    healthy=$(aws elbv2 describe-target-health --target-group-arn "$arn" \
      --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy'])" --output text)
    if [ "$healthy" -ge "$desired" ]; then
      echo "group $group: $healthy of $desired targets healthy"
      break
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "deploy.sh: group $group: $healthy of $desired targets healthy after the wait; the load balancer says:" >&2
      aws elbv2 describe-target-health --target-group-arn "$arn" \
        --query 'TargetHealthDescriptions[].[Target.Id,TargetHealth.State,TargetHealth.Reason,TargetHealth.Description]' \
        --output text >&2
      failed=1
      break
    fi
    sleep 15
  done
done < <(python3 infra/aws/check_artifacts.py --target-groups target/aws/template.json)
[ "$failed" = 0 ] || exit 1

# What to run next: the end-to-end check from outside, on the first group.
first_group=$(python3 infra/aws/check_artifacts.py --initial-desired target/aws/template.json | head -1 | cut -d' ' -f1)
first_id=$(python3 infra/aws/check_artifacts.py --target-groups target/aws/template.json | awk -v g="$first_group" '$1 == g { sub(/^TargetGroup/, "", $2); print $2 }')
url=$(aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='Url$first_id'].OutputValue" --output text)
echo
echo "deployed. Check it scales, from outside (load, then watch the group through the AWS API):"
echo "  cargo run --release -p loadtest -- verify --aws --group $first_group --url $url --rate 40 --kill-one"

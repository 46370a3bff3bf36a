#!/usr/bin/env bash
# Build the functions and the workload for arm64, check what was built,
# upload it to S3, and deploy the stack generated from a policy file.
#   infra/aws/deploy.sh STACK BUCKET [POLICY_FILE]
#   infra/aws/deploy.sh --build-only [POLICY_FILE]   (no AWS: build and check; CI runs this)
# Needs: cargo-lambda (pip install cargo-lambda; it ships zig for the arm64
# cross-build), python3, and for a deploy the AWS CLI with credentials.
set -euo pipefail
usage="usage: deploy.sh STACK BUCKET [POLICY_FILE] | deploy.sh --build-only [POLICY_FILE]"
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
mkdir -p target/aws
cargo run -q -p functions --bin scalectl -- template --policy "$policy" --out target/aws/template.json
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
cargo lambda build --release --arm64 -p workload --bin workload

python3 infra/aws/check_artifacts.py target/aws/template.json target/aws/policy.toml target/lambda
if [ "$build_only" = 1 ]; then
  exit 0
fi

for function in "${functions[@]}"; do
  aws s3 cp --only-show-errors "target/lambda/$function/bootstrap.zip" "s3://$bucket/functions/$function.zip"
done
aws s3 cp --only-show-errors target/lambda/workload/bootstrap "s3://$bucket/workload/workload"

aws cloudformation deploy \
  --stack-name "$stack" \
  --template-file target/aws/template.json \
  --capabilities CAPABILITY_IAM \
  --parameter-overrides "ArtifactBucket=$bucket"
aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs' --output table

#!/usr/bin/env bash
# Build the functions and the workload for arm64, upload them to S3, and
# deploy the stack generated from a policy file.
#   infra/aws/deploy.sh STACK BUCKET [POLICY_FILE]
# Needs: the AWS CLI with credentials, cargo-lambda (pip install cargo-lambda).
set -euo pipefail
stack=${1:?usage: deploy.sh STACK BUCKET [POLICY_FILE]}
bucket=${2:?usage: deploy.sh STACK BUCKET [POLICY_FILE]}
policy=${3:-policies/two-tier.toml}
cd "$(dirname "$0")/../.."

cargo run -q -p functions --bin scalectl -- validate --policy "$policy"
mkdir -p target/aws
cargo run -q -p functions --bin scalectl -- template --policy "$policy" --out target/aws/template.json
cp "$policy" target/aws/policy.toml

# The functions read policy.toml beside their bootstrap.
cargo lambda build --release --arm64 -p functions --output-format zip --include target/aws/policy.toml
for function in alarm-scaler schedule-scaler target-tracker; do
  aws s3 cp --only-show-errors "target/lambda/$function/bootstrap.zip" "s3://$bucket/functions/$function.zip"
done
cargo lambda build --release --arm64 -p workload --bin workload
aws s3 cp --only-show-errors target/lambda/workload/bootstrap "s3://$bucket/workload/workload"

aws cloudformation deploy \
  --stack-name "$stack" \
  --template-file target/aws/template.json \
  --capabilities CAPABILITY_IAM \
  --parameter-overrides "ArtifactBucket=$bucket"
aws cloudformation describe-stacks --stack-name "$stack" --query 'Stacks[0].Outputs' --output table

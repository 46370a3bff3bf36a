#!/bin/bash
# Instance bootstrap, run once as EC2 user data: installs the workload binary
# from S3 and runs it as a systemd service that reads its identity (instance
# id, private IP, AZ) from IMDSv2. The template passes this file through
# CloudFormation's Fn::Sub, which fills in ${ArtifactBucket} and
# ${WorkloadSha256} (the binary's key is content-addressed, so a new binary
# is a new launch template version); everything else is plain shell ($name,
# never braced).
# shellcheck disable=SC2154 # ArtifactBucket and WorkloadSha256 are filled in by CloudFormation
set -euo pipefail

bucket="${ArtifactBucket}"
key="workload/workload-${WorkloadSha256}"

# IMDSv2 only: a session token first.
token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 300")
region=$(curl -sf -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/placement/region)

id -u workload >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin workload
install -d -m 0755 /opt/workload
# The download retries (S3 through the endpoint can fail while the instance's
# network comes up): 6 tries, 2, 4, 8, 16, 32 s apart.
for attempt in 1 2 3 4 5 6; do
  if aws s3 cp --only-show-errors --region "$region" "s3://$bucket/$key" /opt/workload/workload.download; then
    break
  fi
  [ "$attempt" = 6 ] && { echo "bootstrap: s3://$bucket/$key: download failed 6 times" >&2; exit 1; }
  sleep $((2 ** attempt))
done
install -m 0755 /opt/workload/workload.download /opt/workload/workload
rm -f /opt/workload/workload.download

cat > /etc/systemd/system/workload.service <<'UNIT'
[Unit]
Description=The workload service (recursive Fibonacci over HTTP)
After=network-online.target
Wants=network-online.target
# Never give up restarting (systemd's default start limit stops a unit
# after 5 starts in 10 s, and the instance would stay unhealthy until replaced).
StartLimitIntervalSec=0

[Service]
User=workload
ExecStart=/opt/workload/workload --listen 0.0.0.0:8080 --imds --log-format json
Restart=always
RestartSec=1
# SIGTERM drains in-flight requests (the target group drains for 30 s first).
KillSignal=SIGTERM
TimeoutStopSec=40
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true

[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable --now workload.service

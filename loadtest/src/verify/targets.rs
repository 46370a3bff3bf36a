//! The scenario's targets: the embedded local cloud and a group on AWS
//! (or an emulator) through the functions' adapters.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use functions::policy::Policy;
use functions::ports::GroupPort;
use jiff::Timestamp;
use localcloud::group::State;
use localcloud::lb::{Algorithm, LbConfig};
use localcloud::metrics::SeriesKey;
use localcloud::{Cloud, Config};

use super::*;

/// Starts the embedded local cloud from `local`'s policy file (the whole
/// policy: every group, alarm, schedule and function).
pub async fn start_local(local: &Local, out_dir: &std::path::Path, start: Option<Timestamp>) -> Result<Cloud> {
    let text = functions::input::read_text(&local.policy_file, functions::input::POLICY_MAX_BYTES)
        .with_context(|| format!("reading {}", local.policy_file.display()))?;
    let policy = Policy::parse(&local.policy_file.display().to_string(), &text)?;
    let shadow = match &local.shadow {
        Some(file) => Some(localcloud::ShadowPolicy {
            policy: Policy::load(file).with_context(|| format!("--shadow {}", file.display()))?,
            policy_file: file.clone(),
        }),
        None => None,
    };
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let config = Config {
        policy,
        speed: local.speed,
        start,
        boot: local.boot,
        health_grace: Duration::from_secs(300),
        azs: vec!["local-1a".into(), "local-1b".into()],
        subnet: [0, 1],
        instance_port: 8080,
        lb_port: 0,
        control_port: 0,
        lb: LbConfig {
            algorithm: Algorithm::LeastOutstandingRequests,
            interval: Duration::from_millis(250),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            deregistration_delay: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            ..LbConfig::default()
        },
        workload: local.binaries.join("workload"),
        cpu_limit: local.cpu_limit,
        log_dir: out_dir.join("logs"),
        drain_timeout: Duration::from_secs(10),
        ingestion_delay: functions::cloudwatch::INGESTION_DELAY,
        functions: Some(local.binaries.clone()),
        policy_file: Some(local.policy_file.clone()),
        shadow,
    };
    Cloud::start(config).await.context("starting the local cloud")
}

/// The embedded local cloud as a target.
#[derive(Debug)]
pub struct LocalTarget<'a> {
    pub cloud: &'a Cloud,
    pub group: String,
}

impl Target for LocalTarget<'_> {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn speed(&self) -> f64 {
        self.cloud.clock().speed()
    }

    fn now(&self) -> Timestamp {
        self.cloud.clock().now()
    }

    fn poll(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn observe(&self) -> Result<Observed> {
        // A part of the local cloud that died (no health checks, no
        // controller) fails the run at once, with its name, rather than as a
        // slow assertion timeout.
        if let Some(stopped) = self.cloud.stopped_task() {
            anyhow::bail!("local cloud: {stopped}");
        }
        let group = self.cloud.group(&self.group)?;
        let serving = group
            .instances
            .iter()
            .filter(|i| i.state == State::InService)
            .filter(|i| {
                matches!(
                    self.cloud.target_health(&self.group, &i.id),
                    Ok(Some(localcloud::lb::TargetHealth::Healthy))
                )
            })
            .count() as u32;
        Ok(Observed {
            min: group.min,
            max: group.max,
            desired: group.desired,
            instances: group
                .instances
                .iter()
                .filter(|i| i.state != State::Terminated)
                .map(|i| (i.id.clone(), i.state == State::InService))
                .collect(),
            serving,
        })
    }

    async fn cpu(&self) -> Option<f64> {
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", &self.group)]);
        // The newest minute CloudWatch shows, as late as the cloud makes it.
        let values = self.cloud.newest_minute(&key);
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }

    async fn kill(&self, instance: &str) -> Result<()> {
        self.cloud.kill(instance)?;
        Ok(())
    }

    async fn activities(&self, since: Timestamp) -> Vec<ActivityRow> {
        let Ok(group) = self.cloud.group(&self.group) else {
            return Vec::new();
        };
        let invocations = self.cloud.functions().map(|r| r.invocations()).unwrap_or_default();
        group
            .capacity_changes
            .iter()
            .filter(|c| c.start >= since)
            .map(|c| ActivityRow {
                start: c.start,
                end: None,
                from: c.from,
                to: c.to,
                cause: c.cause.clone(),
                reason: invocations.iter().rev().find_map(|i| {
                    let decision = &i.result.as_ref()?["decision"];
                    (decision["cause"].as_str() == Some(c.cause.as_str()))
                        .then(|| decision["reason"].as_str().map(str::to_string))?
                }),
            })
            .collect()
    }

    fn instance_activities(&self) -> Vec<localcloud::group::InstanceActivity> {
        self.cloud.group(&self.group).map(|g| g.activities).unwrap_or_default()
    }
}

/// A deployed EC2 Auto Scaling group as a target, watched through the same
/// adapters the functions use (DescribeAutoScalingGroups and
/// DescribeScalingActivities; CloudWatch GetMetricData for CPU).
#[derive(Debug)]
pub struct AwsTarget {
    pub(super) groups: functions::aws::AwsGroups,
    pub(super) metrics: functions::aws::AwsMetrics,
    pub(super) group: String,
    /// The newest CPU read and when (CloudWatch has one value a minute).
    pub(super) cpu: tokio::sync::Mutex<Option<(Instant, Option<f64>)>>,
    /// CloudWatch refused once: say so once, then stop asking.
    pub(super) cpu_refused: std::sync::atomic::AtomicBool,
    pub(super) poll: Duration,
}

impl AwsTarget {
    pub fn new(
        groups: functions::aws::AwsGroups,
        metrics: functions::aws::AwsMetrics,
        group: impl Into<String>,
    ) -> Self {
        Self {
            groups,
            metrics,
            group: group.into(),
            cpu: tokio::sync::Mutex::new(None),
            cpu_refused: std::sync::atomic::AtomicBool::new(false),
            poll: Duration::from_secs(5),
        }
    }

    /// Samples the group this often (default 5 s: two Auto Scaling calls a sample).
    #[must_use]
    pub fn poll_every(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Clients from the environment's AWS configuration (profile, region,
    /// `AWS_ENDPOINT_URL`), like the AWS CLI.
    pub async fn from_env(group: impl Into<String>) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(
            functions::aws::AwsGroups::new(aws_sdk_autoscaling::Client::new(&config)),
            functions::aws::AwsMetrics::new(aws_sdk_cloudwatch::Client::new(&config), Default::default()),
            group,
        )
    }
}

impl Target for AwsTarget {
    fn kind(&self) -> &'static str {
        "aws"
    }

    /// The template's target group marks a new target healthy after
    /// `HEALTHY_THRESHOLD` checks `HEALTH_CHECK_INTERVAL_S` apart.
    fn health_settle(&self) -> Duration {
        Duration::from_secs(u64::from(
            functions::cfn::HEALTHY_THRESHOLD * functions::cfn::HEALTH_CHECK_INTERVAL_S,
        ))
    }

    fn speed(&self) -> f64 {
        1.0
    }

    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn poll(&self) -> Duration {
        self.poll
    }

    async fn observe(&self) -> Result<Observed> {
        use functions::decide::Lifecycle;
        let group = self.groups.describe(&self.group).await?;
        let instances: Vec<(String, bool)> = group
            .instances
            .into_iter()
            .map(|i| (i.id, i.lifecycle == Lifecycle::InService))
            .collect();
        Ok(Observed {
            min: group.min,
            max: group.max,
            desired: group.desired,
            serving: instances.iter().filter(|(_, up)| *up).count() as u32,
            instances,
        })
    }

    async fn cpu(&self) -> Option<f64> {
        use functions::ports::MetricsPort;
        if self.cpu_refused.load(Ordering::Relaxed) {
            return None;
        }
        let mut cached = self.cpu.lock().await;
        if let Some((at, value)) = *cached
            && at.elapsed() < Duration::from_secs(30)
        {
            return value;
        }
        let metric = functions::policy::MetricSpec {
            namespace: "AWS/EC2".into(),
            name: "CPUUtilization".into(),
            stat: functions::policy::Statistic::Average,
            dimensions: [("AutoScalingGroupName".to_string(), self.group.clone())].into(),
        };
        match self.metrics.latest(&metric, Timestamp::now()).await {
            Ok(value) => {
                *cached = Some((Instant::now(), value));
                value
            }
            Err(error) => {
                eprintln!("verify: CPU not shown: {error}");
                self.cpu_refused.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    async fn kill(&self, instance: &str) -> Result<()> {
        self.groups.terminate_instance(instance, false).await?;
        Ok(())
    }

    async fn activities(&self, since: Timestamp) -> Vec<ActivityRow> {
        match self.groups.activities(&self.group, since).await {
            Ok(activities) => activities
                .into_iter()
                .map(|a| ActivityRow {
                    start: a.start,
                    end: None,
                    from: a.from,
                    to: a.to,
                    cause: a.cause,
                    reason: None,
                })
                .collect(),
            Err(error) => {
                eprintln!("verify: no activity table: {error}");
                Vec::new()
            }
        }
    }
}

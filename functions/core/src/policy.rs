//! The policy file: the one source of truth for groups, alarm (step) policies,
//! target tracking and schedules, read by the functions and the local cloud.
//!
//! TOML, `deny_unknown_fields` everywhere (a typo is an error, not a default),
//! durations as `"300s"`/`"5m"`, and a validation pass that reports every
//! problem at once, each naming the file, the field and what is allowed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::schedule::ScheduleExpr;

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "group")]
    pub groups: Vec<GroupPolicy>,
}

/// One scaling group and its rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPolicy {
    pub name: String,
    pub min: u32,
    pub max: u32,
    /// Capacity at creation (default: `min`).
    pub desired: Option<u32>,
    /// Default cooldown for alarm policies that set none.
    #[serde(default = "default_cooldown", deserialize_with = "duration")]
    pub cooldown: Duration,
    /// Seconds a new instance needs before its metrics count (default: `cooldown`).
    #[serde(default, deserialize_with = "optional_duration")]
    pub instance_warmup: Option<Duration>,
    #[serde(default, rename = "alarm_policy")]
    pub alarm_policies: Vec<AlarmPolicy>,
    #[serde(default)]
    pub target_tracking: Vec<TargetTracking>,
    #[serde(default, rename = "schedule")]
    pub schedules: Vec<Schedule>,
    /// Predictive scaling (`[group.predictive]`), see [`crate::predictive`].
    #[serde(default)]
    pub predictive: Option<Predictive>,
    /// A warm pool (`[group.warm_pool]`), see [`crate::group::warm_pool_size`].
    #[serde(default)]
    pub warm_pool: Option<WarmPool>,
    /// Who can reach the group's load balancer on AWS (default: the first
    /// group of the file from the internet, every other group from inside
    /// the VPC only, as the seeds put a session tier behind an internal
    /// load balancer). See [`Policy::exposure`].
    #[serde(default)]
    pub exposure: Option<Exposure>,
}

/// Who can reach a group's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exposure {
    /// Internet-facing, in the public subnets, HTTP from anywhere.
    Internet,
    /// Internal, in the private subnets, HTTP from inside the VPC only.
    Internal,
}

impl GroupPolicy {
    /// The warm-up that applies: the group's, else its default cooldown.
    pub fn warmup(&self) -> Duration {
        self.instance_warmup.unwrap_or(self.cooldown)
    }

    /// Whether the group needs the one-minute tick: target tracking,
    /// alarm re-checks and predictive scaling decide on it (the template's
    /// tick rule and the local cloud's ticks both ask this).
    pub fn needs_tick(&self) -> bool {
        !self.target_tracking.is_empty() || !self.alarm_policies.is_empty() || self.predictive.is_some()
    }

    /// The alarm policy driven by `alarm`, if any.
    pub fn alarm_policy(&self, alarm: &str) -> Option<&AlarmPolicy> {
        self.alarm_policies.iter().find(|p| p.alarm == alarm)
    }
}

fn default_cooldown() -> Duration {
    Duration::from_secs(300)
}

/// How far back decisions read activities and metrics, wherever they run
/// (the functions, the backtest): so the longest cooldown, stabilisation
/// window or rate period a policy may name (issue 18: a `cooldown = "2h"`
/// validated and silently ended after an hour).
pub const HISTORY: Duration = Duration::from_secs(3600);

/// The largest `max` a group may have in a policy file.
pub const MAX_GROUP_SIZE: u32 = 1000;

/// A CloudWatch metric and the statistic an alarm reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub namespace: String,
    pub name: String,
    pub stat: Statistic,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

/// A CloudWatch statistic: one of the five named statistics or a percentile
/// `pNN` (CloudWatch's PutMetricAlarm `ExtendedStatistic` pattern
/// `p(\d{1,2}(\.\d{0,2})?|100)`: p0 to p100, at most two decimals).
/// Parsed once; written back as CloudWatch spells it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Statistic {
    Average,
    Sum,
    Minimum,
    Maximum,
    SampleCount,
    /// pNN: the percentile NN (0 to 100).
    Percentile(f64),
}

/// The median of `values` (the mean of the middle two of an even count),
/// sorting them; None when there are none. Not CloudWatch's p50 (nearest
/// rank): what predictive scaling's daily forecast and the backtest's
/// capacity calibration take.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

impl Statistic {
    /// The statistic of `samples` (None when there are none); percentiles by
    /// nearest rank.
    pub fn of(self, samples: &[f64]) -> Option<f64> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        Some(match self {
            Self::Average => samples.iter().sum::<f64>() / n,
            Self::Sum => samples.iter().sum(),
            Self::Minimum => samples.iter().copied().fold(f64::INFINITY, f64::min),
            Self::Maximum => samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Self::SampleCount => n,
            Self::Percentile(q) => {
                let mut sorted = samples.to_vec();
                sorted.sort_by(f64::total_cmp);
                let rank = ((q / 100.0) * n).ceil().max(1.0) as usize;
                sorted[rank.min(sorted.len()) - 1]
            }
        })
    }

    /// CloudWatch puts percentiles in `ExtendedStatistic`, the others in `Statistic`.
    pub fn is_percentile(self) -> bool {
        matches!(self, Self::Percentile(_))
    }
}

impl std::fmt::Display for Statistic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Average => f.write_str("Average"),
            Self::Sum => f.write_str("Sum"),
            Self::Minimum => f.write_str("Minimum"),
            Self::Maximum => f.write_str("Maximum"),
            Self::SampleCount => f.write_str("SampleCount"),
            Self::Percentile(q) => write!(f, "p{q}"),
        }
    }
}

impl std::str::FromStr for Statistic {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "Average" => Self::Average,
            "Sum" => Self::Sum,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            "SampleCount" => Self::SampleCount,
            _ => {
                let percentile = text.strip_prefix('p').filter(|digits| {
                    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
                    let digit = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
                    (*digits == "100" || (1..=2).contains(&whole.len()))
                        && digit(whole)
                        && digit(fraction)
                        && fraction.len() <= 2
                });
                match percentile.and_then(|digits| digits.parse::<f64>().ok()) {
                    Some(q) if (0.0..=100.0).contains(&q) => Self::Percentile(q),
                    _ => {
                        return Err(format!(
                            "{text:?} is not one of Average, Sum, Minimum, Maximum, SampleCount or pNN (p0 to p100, e.g. p99 or p99.9)"
                        ));
                    }
                }
            }
        })
    }
}

impl TryFrom<String> for Statistic {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Statistic> for String {
    fn from(stat: Statistic) -> Self {
        stat.to_string()
    }
}

/// How an alarm compares its statistic with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">", alias = "GreaterThanThreshold")]
    Greater,
    #[serde(rename = ">=", alias = "GreaterThanOrEqualToThreshold")]
    GreaterOrEqual,
    #[serde(rename = "<", alias = "LessThanThreshold")]
    Less,
    #[serde(rename = "<=", alias = "LessThanOrEqualToThreshold")]
    LessOrEqual,
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Greater => value > threshold,
            Self::GreaterOrEqual => value >= threshold,
            Self::Less => value < threshold,
            Self::LessOrEqual => value <= threshold,
        }
    }

    /// True for the alarms that fire above their threshold.
    pub fn is_upper(self) -> bool {
        matches!(self, Self::Greater | Self::GreaterOrEqual)
    }

    /// The symbol used in explanations.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
        }
    }
}

/// How step adjustments change the capacity (EC2 Auto Scaling's AdjustmentType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentType {
    #[serde(alias = "ChangeInCapacity")]
    ChangeInCapacity,
    #[serde(alias = "ExactCapacity")]
    ExactCapacity,
    #[serde(alias = "PercentChangeInCapacity")]
    PercentChangeInCapacity,
}

/// CloudWatch's treatment of missing datapoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingData {
    #[default]
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

/// One step: bounds relative to the threshold (metric - threshold) and the change.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Lower bound (None: minus infinity).
    pub lower: Option<f64>,
    /// Upper bound (None: plus infinity).
    pub upper: Option<f64>,
    /// Instances, percent or exact capacity, per the policy's adjustment type.
    pub change: i64,
}

/// The two kinds of alarm policy, as PutScalingPolicy's `PolicyType` names
/// them (EC2 Auto Scaling user guide, "Step and simple scaling policies"
/// and "Scaling cooldowns"):
///
/// - `simple`: one `change` whenever the alarm is in ALARM; waits for the
///   scaling activity in progress to finish and then for the cooldown
///   (`cooldown`, else the group's) before it acts again. Warm-up plays no
///   part.
/// - `step`: `steps` chosen by the size of the breach; no cooldown ("Cooldown
///   ... valid only if the policy type is SimpleScaling"): it acts again at
///   once, not counting instances still in their warm-up (`instance_warmup`,
///   EstimatedInstanceWarmup, else the group's), and no scale-in while any
///   warm up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    #[serde(alias = "SimpleScaling")]
    Simple,
    #[serde(alias = "StepScaling")]
    Step,
}

/// Simple or step scaling driven by one alarm.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmPolicy {
    /// `simple` or `step`; required (validation names it when missing).
    #[serde(default, rename = "type")]
    pub policy_type: Option<PolicyType>,
    pub alarm: String,
    pub metric: MetricSpec,
    pub comparison: Comparison,
    pub threshold: f64,
    #[serde(deserialize_with = "duration")]
    pub period: Duration,
    pub evaluation_periods: u32,
    /// M of N: datapoints that must breach (default: all `evaluation_periods`).
    pub datapoints_to_alarm: Option<u32>,
    #[serde(default)]
    pub missing_data: MissingData,
    pub adjustment: AdjustmentType,
    /// Simple scaling: the one change (ScalingAdjustment).
    pub change: Option<i64>,
    /// Step scaling: the step adjustments.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Only for percent changes: the smallest change in instances.
    pub min_adjustment_magnitude: Option<u32>,
    /// Simple scaling only: the cooldown after this policy acts (default: the group's).
    #[serde(default, deserialize_with = "optional_duration")]
    pub cooldown: Option<Duration>,
    /// Step scaling only: how long a new instance is not counted
    /// (EstimatedInstanceWarmup; default: the group's warm-up).
    #[serde(default, deserialize_with = "optional_duration")]
    pub instance_warmup: Option<Duration>,
}

impl AlarmPolicy {
    /// The policy's kind; a file without one is refused by validation, and
    /// AWS's own default (SimpleScaling) stands in for it otherwise.
    pub fn kind(&self) -> PolicyType {
        self.policy_type.unwrap_or(PolicyType::Simple)
    }

    /// The adjustments a breach picks from: a step policy's steps, or a
    /// simple policy's one change as a step covering the whole breach side
    /// of the threshold.
    pub fn adjustments(&self) -> std::borrow::Cow<'_, [Step]> {
        match self.kind() {
            PolicyType::Step => std::borrow::Cow::Borrowed(&self.steps),
            PolicyType::Simple => {
                let (lower, upper) = if self.comparison.is_upper() {
                    (Some(0.0), None)
                } else {
                    (None, Some(0.0))
                };
                std::borrow::Cow::Owned(vec![Step {
                    lower,
                    upper,
                    change: self.change.unwrap_or(0),
                }])
            }
        }
    }

    /// The cooldown this policy starts and waits for (simple scaling only).
    pub fn cooldown_in(&self, group: &GroupPolicy) -> Option<Duration> {
        (self.kind() == PolicyType::Simple).then(|| self.cooldown.unwrap_or(group.cooldown))
    }

    /// The warm-up during which new instances are not counted (step scaling only).
    pub fn warmup_in(&self, group: &GroupPolicy) -> Option<Duration> {
        (self.kind() == PolicyType::Step).then(|| self.instance_warmup.unwrap_or_else(|| group.warmup()))
    }
}

/// What target tracking keeps at its target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawTrackedMetric")]
pub enum TrackedMetric {
    /// `cpu` (average CPU utilisation), `cpu_demand` (CPU utilisation
    /// scaled by the requests offered over the requests served, see
    /// [`crate::tracking::demand_factor`]) or `request_count_per_target`.
    Predefined(PredefinedMetric),
    /// Any metric whose value scales with load per instance.
    Custom(MetricSpec),
}

/// As the policy file writes it (what `Deserialize` reads back): a
/// predefined metric's name, or the custom metric's table.
impl Serialize for TrackedMetric {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Custom(spec) => spec.serialize(serializer),
            Self::Predefined(_) => serializer.serialize_str(&crate::tracking::metric_key(self)),
        }
    }
}

/// `metric` as written: a predefined metric's name or a metric's table.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTrackedMetric {
    Name(String),
    Custom(MetricSpec),
}

impl TryFrom<RawTrackedMetric> for TrackedMetric {
    type Error = String;

    fn try_from(raw: RawTrackedMetric) -> Result<Self, String> {
        match raw {
            RawTrackedMetric::Custom(spec) => Ok(Self::Custom(spec)),
            RawTrackedMetric::Name(name) => match name.as_str() {
                "cpu" => Ok(Self::Predefined(PredefinedMetric::Cpu)),
                "cpu_demand" => Ok(Self::Predefined(PredefinedMetric::CpuDemand)),
                "request_count_per_target" => Ok(Self::Predefined(PredefinedMetric::RequestCountPerTarget)),
                other => Err(format!(
                    "metric {other:?} is not a predefined metric; allowed: cpu, cpu_demand, request_count_per_target, or a table {{ namespace, name, stat, dimensions }}"
                )),
            },
        }
    }
}

/// The predefined metrics of target tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredefinedMetric {
    Cpu,
    /// CPU utilisation that does not stop at 100%: each instance's CPU
    /// times the load balancer's requests over the requests its targets
    /// answered without a 5xx (the ones they shed), so a group at 100%
    /// that sheds half of what it is sent reports 200%.
    CpuDemand,
    RequestCountPerTarget,
}

/// Target tracking, with HPA-style behaviours.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTracking {
    pub metric: TrackedMetric,
    pub target: f64,
    /// Relative band around the target inside which nothing changes.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    #[serde(default)]
    pub disable_scale_in: bool,
    #[serde(default = "Behavior::scale_out_default")]
    pub scale_out: Behavior,
    #[serde(default = "Behavior::scale_in_default")]
    pub scale_in: Behavior,
}

fn default_tolerance() -> f64 {
    0.1
}

/// How fast one direction may move (the HPA's `behavior`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behavior {
    #[serde(default, deserialize_with = "duration")]
    pub stabilization: Duration,
    #[serde(default)]
    pub policies: Vec<RatePolicy>,
    #[serde(default)]
    pub select: Select,
    /// This direction's tolerance, instead of the policy's `tolerance`
    /// (Kubernetes KEP-4951: `behavior.scaleUp.tolerance`, `scaleDown.tolerance`).
    #[serde(default)]
    pub tolerance: Option<f64>,
}

impl TargetTracking {
    /// Whether `ratio` (metric / target) is inside the tolerance band, where
    /// nothing changes: the HPA's `Tolerances.isWithin`,
    /// `1 - scale_down <= ratio <= 1 + scale_up`, each direction's own
    /// tolerance or else the policy's.
    pub fn within_tolerance(&self, ratio: f64) -> bool {
        let up = self.scale_out.tolerance.unwrap_or(self.tolerance);
        let down = self.scale_in.tolerance.unwrap_or(self.tolerance);
        (1.0 - down) <= ratio && ratio <= (1.0 + up)
    }
}

impl Behavior {
    /// The HPA's defaults: scale out by 100% or 4 instances per 15 s, the larger.
    fn scale_out_default() -> Self {
        Self {
            stabilization: Duration::ZERO,
            tolerance: None,
            policies: vec![
                RatePolicy {
                    percent: Some(100),
                    instances: None,
                    period: Duration::from_secs(15),
                },
                RatePolicy {
                    percent: None,
                    instances: Some(4),
                    period: Duration::from_secs(15),
                },
            ],
            select: Select::Max,
        }
    }

    /// The HPA's defaults: scale in by up to 100% per 15 s after 300 s of stability.
    fn scale_in_default() -> Self {
        Self {
            stabilization: Duration::from_secs(300),
            tolerance: None,
            policies: vec![RatePolicy {
                percent: Some(100),
                instances: None,
                period: Duration::from_secs(15),
            }],
            select: Select::Max,
        }
    }
}

/// Predictive scaling, as EC2 Auto Scaling's `PredictiveScalingConfiguration`
/// (see [`crate::predictive`] for the semantics).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predictive {
    /// The load and scaling metric pair: `cpu` (AWS's `ASGCPUUtilization`),
    /// `cpu_demand`, or `request_count_per_target` (`ALBRequestCount`).
    pub metric: TrackedMetric,
    /// The scaling metric's target per instance (percent CPU, or requests a minute).
    pub target: f64,
    #[serde(default)]
    pub mode: PredictiveMode,
    /// How long before each hour its capacity is launched (default 300 s, below 3600 s).
    #[serde(default = "default_scheduling_buffer", deserialize_with = "duration")]
    pub scheduling_buffer: Duration,
    #[serde(default)]
    pub max_capacity_breach: MaxCapacityBreach,
    /// Percent of the forecast above it that max may be raised to; only
    /// with `increase_max_capacity`, 0-100.
    #[serde(default)]
    pub max_capacity_buffer: Option<u32>,
}

fn default_scheduling_buffer() -> Duration {
    Duration::from_secs(300)
}

/// A warm pool, as EC2 Auto Scaling's `WarmPoolConfiguration`
/// (`PutWarmPool`): pre-initialised instances beside the group that a
/// scale-out draws on before it launches new ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmPool {
    /// `MinSize`: the fewest instances kept in the pool (default 0).
    #[serde(default)]
    pub min_size: u32,
    /// `MaxGroupPreparedCapacity`: the most instances in the group and the
    /// pool together (default: the group's max).
    #[serde(default)]
    pub max_group_prepared_capacity: Option<u32>,
    /// `PoolState` (default `stopped`).
    #[serde(default)]
    pub pool_state: PoolState,
    /// `InstanceReusePolicy.ReuseOnScaleIn`: scale-in returns instances to
    /// the pool instead of terminating them (default false).
    #[serde(default)]
    pub reuse_on_scale_in: bool,
}

/// What a warm pool's instances are kept as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolState {
    /// Stopped: EBS volumes are paid for, not the instance.
    #[default]
    Stopped,
    /// Running: paid for as an instance in service is.
    Running,
    /// Hibernated: needs hibernation in the launch template, which this
    /// stack's does not configure, so refused (see the validation).
    Hibernated,
}

impl PoolState {
    /// The name `PutWarmPool` takes.
    pub fn aws(self) -> &'static str {
        match self {
            Self::Stopped => "Stopped",
            Self::Running => "Running",
            Self::Hibernated => "Hibernated",
        }
    }
}

/// `Mode` of a predictive policy (AWS's default: `ForecastOnly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictiveMode {
    #[default]
    ForecastOnly,
    ForecastAndScale,
}

/// `MaxCapacityBreachBehavior` (AWS's default: `HonorMaxCapacity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxCapacityBreach {
    #[default]
    HonorMaxCapacity,
    IncreaseMaxCapacity,
}

/// A limit on change per period: a percentage or a number of instances.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatePolicy {
    pub percent: Option<u32>,
    pub instances: Option<u32>,
    #[serde(deserialize_with = "duration")]
    pub period: Duration,
}

/// Which rate policy wins when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    /// The one allowing the largest change.
    #[default]
    Max,
    /// The one allowing the smallest change.
    Min,
    /// No change in this direction.
    Disabled,
}

/// A scheduled action: sets min/max/desired at cron or rate times.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    /// `cron(...)` in EventBridge syntax.
    pub cron: Option<String>,
    /// `rate(...)` in EventBridge syntax.
    pub rate: Option<String>,
    /// IANA time zone of the cron expression (default UTC).
    pub timezone: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
}

impl Schedule {
    /// The expression, whichever key holds it.
    pub fn expression(&self) -> Option<&str> {
        self.cron.as_deref().or(self.rate.as_deref())
    }

    /// The expression parsed and the time zone it is read in (default UTC),
    /// as every part that fires schedules needs them; the error names what
    /// is wrong (validation refuses such a file first).
    pub fn parsed(&self) -> Result<(ScheduleExpr, jiff::tz::TimeZone), String> {
        let expression = self.expression().ok_or("no cron or rate expression")?;
        let expr = expression.parse::<ScheduleExpr>().map_err(|e| e.to_string())?;
        let zone = match self.timezone.as_deref() {
            Some(name) => crate::schedule::time_zone(name).map_err(|e| format!("time zone {name:?}: {e}"))?,
            None => jiff::tz::TimeZone::UTC,
        };
        Ok((expr, zone))
    }
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the format.
    #[error("policy file {file}: {message}")]
    Parse { file: String, message: String },
    /// The file parsed but breaks the rules; every problem is listed.
    #[error("policy file {file} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid { file: String, problems: Vec<String> },
}

impl Policy {
    /// The exposure of group `index`: its `exposure`, else internet for the
    /// first group and internal for the others.
    pub fn exposure(&self, index: usize) -> Exposure {
        self.groups
            .get(index)
            .and_then(|g| g.exposure)
            .unwrap_or(if index == 0 {
                Exposure::Internet
            } else {
                Exposure::Internal
            })
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text =
            crate::input::read_text(path, crate::input::POLICY_MAX_BYTES).map_err(|source| PolicyError::Read {
                path: path.display().to_string(),
                source,
            })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates policy text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let problems = policy.problems();
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(PolicyError::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }

    /// The names of the file's groups, in order.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&GroupPolicy> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Every rule the file breaks, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.groups.is_empty() {
            problems.push("group: at least one [[group]] is required".into());
        }
        for (index, group) in self.groups.iter().enumerate() {
            let at = format!("group[{index}] ({})", group.name);
            if self.groups[..index].iter().any(|g| g.name == group.name) {
                problems.push(format!("{at}.name: duplicate group name"));
            }
            group_problems(group, &self.group_names(), &at, &mut problems);
        }
        let mut alarms: Vec<&str> = self
            .groups
            .iter()
            .flat_map(|g| g.alarm_policies.iter().map(|p| p.alarm.as_str()))
            .collect();
        alarms.sort_unstable();
        for pair in alarms.windows(2) {
            if pair[0] == pair[1] {
                problems.push(format!(
                    "alarm {:?} drives more than one policy; alarm names must be unique",
                    pair[0]
                ));
            }
        }
        problems
    }
}

/// The metrics something in the stack publishes, that an alarm may watch:
/// on AWS, EC2 (for the group's instances, aggregated by
/// `AutoScalingGroupName`) and the load balancer (per target group); in the
/// local cloud, its sampler, with the same names, dimensions and meaning.
/// An alarm on anything else would work on neither, or (as `Custom/Web QPS`
/// did, issue 18) fire on the laptop and never on AWS, where nothing
/// publishes it.
///
/// | namespace / name | dimensions | statistics |
/// |---|---|---|
/// | AWS/EC2 CPUUtilization | AutoScalingGroupName = a group of the file | any |
/// | AWS/ApplicationELB RequestCountPerTarget | TargetGroup = a group of the file (its target group) | Sum only (ALB docs: "the only valid statistic is Sum", the requests per target) |
/// | AWS/ApplicationELB HTTPCode_ELB_503_Count | LoadBalancer = a group of the file (its own load balancer) | Sum only (ALB docs: Minimum, Maximum and Average all return 1) |
///
/// `HTTPCode_ELB_503_Count` is what scales a group out from zero: with no
/// instance there is no CPU, and the ALB counts `RequestCount` (and so
/// `RequestCountPerTarget`) only for requests it could choose a target for;
/// the requests it answers 503 for want of one are counted by load
/// balancer only, so each group has its own (see `functions::cfn`).
pub fn published(metric: &MetricSpec, groups: &[&str]) -> Result<(), String> {
    const ALLOWED: &str = "alarms can watch AWS/EC2 CPUUtilization { AutoScalingGroupName = GROUP }, AWS/ApplicationELB RequestCountPerTarget { TargetGroup = GROUP } (stat Sum) or AWS/ApplicationELB HTTPCode_ELB_503_Count { LoadBalancer = GROUP } (stat Sum), GROUP a group of this file";
    let (dimension, stat_ok) = match (metric.namespace.as_str(), metric.name.as_str()) {
        ("AWS/EC2", "CPUUtilization") => ("AutoScalingGroupName", true),
        ("AWS/ApplicationELB", "RequestCountPerTarget") => ("TargetGroup", metric.stat == Statistic::Sum),
        ("AWS/ApplicationELB", "HTTPCode_ELB_503_Count") => ("LoadBalancer", metric.stat == Statistic::Sum),
        (namespace, name) => {
            return Err(format!(
                "{namespace}/{name} is published by nothing in this stack (on AWS the alarm would never see a datapoint); {ALLOWED}"
            ));
        }
    };
    let keys: Vec<&str> = metric.dimensions.keys().map(String::as_str).collect();
    let group = metric.dimensions.get(dimension).map(String::as_str);
    if keys != [dimension] || !group.is_some_and(|g| groups.contains(&g)) {
        return Err(format!(
            "{}/{} with dimensions {{ {} }}: published only with {dimension} = one of the file's groups ({}); {ALLOWED}",
            metric.namespace,
            metric.name,
            metric
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k} = {v:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            groups.join(", ")
        ));
    }
    if !stat_ok {
        return Err(format!(
            "{}/{}: stat {} is not valid for it; the only valid statistic is Sum (a count of requests)",
            metric.namespace, metric.name, metric.stat
        ));
    }
    Ok(())
}

/// Whether `metric` has datapoints while the group has no instance: only
/// the load balancer's 503s for want of a target.
pub fn seen_at_zero(metric: &MetricSpec) -> bool {
    metric.namespace == "AWS/ApplicationELB" && metric.name == "HTTPCode_ELB_503_Count"
}

/// Names used in AWS resource names: letters, digits, `-` and `_`, 1-64 chars.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn group_problems(group: &GroupPolicy, groups: &[&str], at: &str, problems: &mut Vec<String>) {
    if !valid_name(&group.name) {
        problems.push(format!(
            "{at}.name: {:?} must be 1-64 letters, digits, - or _",
            group.name
        ));
    }
    if group.min > group.max {
        problems.push(format!("{at}: min {} must be <= max {}", group.min, group.max));
    }
    if group.max > MAX_GROUP_SIZE {
        problems.push(format!("{at}.max: {} is above {MAX_GROUP_SIZE}", group.max));
    }
    if group.cooldown > HISTORY {
        problems.push(format!(
            "{at}.cooldown: {:?} is longer than the {}s of history decisions read",
            group.cooldown,
            HISTORY.as_secs()
        ));
    }
    // Scale from zero (issue 18): at zero instances there is no CPU and no
    // per-target request count, so only a 503 alarm or a schedule can
    // bring the group back.
    if group.min == 0
        && !group.alarm_policies.iter().any(|p| seen_at_zero(&p.metric))
        && !group
            .schedules
            .iter()
            .any(|s| s.min.is_some_and(|m| m > 0) || s.desired.is_some_and(|d| d > 0))
    {
        problems.push(format!(
            "{at}.min: 0, but nothing could scale {} out again from zero instances (CPU and requests per target have no datapoints then): add an alarm policy on AWS/ApplicationELB HTTPCode_ELB_503_Count {{ LoadBalancer = {:?} }} (stat Sum), or a schedule that raises min or desired",
            group.name, group.name
        ));
    }
    if let Some(desired) = group.desired
        && !(group.min..=group.max).contains(&desired)
    {
        problems.push(format!(
            "{at}.desired: {desired} must be within min..=max ({}..={})",
            group.min, group.max
        ));
    }
    for (index, policy) in group.alarm_policies.iter().enumerate() {
        let at = format!("{at}.alarm_policy[{index}] ({})", policy.alarm);
        alarm_policy_problems(policy, &at, problems);
        if let Err(problem) = published(&policy.metric, groups) {
            problems.push(format!("{at}.metric: {problem}"));
        }
    }
    for (index, tracking) in group.target_tracking.iter().enumerate() {
        target_tracking_problems(tracking, &format!("{at}.target_tracking[{index}]"), problems);
    }
    if let Some(predictive) = &group.predictive {
        predictive_problems(predictive, &format!("{at}.predictive"), problems);
    }
    if let Some(pool) = &group.warm_pool {
        let at = format!("{at}.warm_pool");
        if pool.pool_state == PoolState::Hibernated {
            problems.push(format!(
                "{at}.pool_state: hibernated needs hibernation configured in the launch template (HibernationOptions, an encrypted root volume large enough for the RAM), which this stack's does not set: use stopped or running"
            ));
        }
        if pool.min_size > MAX_GROUP_SIZE {
            problems.push(format!("{at}.min_size: {} is above {MAX_GROUP_SIZE}", pool.min_size));
        }
        if let Some(prepared) = pool.max_group_prepared_capacity
            && !(group.max..=MAX_GROUP_SIZE).contains(&prepared)
        {
            problems.push(format!(
                "{at}.max_group_prepared_capacity: {prepared} must be within the group's max and {MAX_GROUP_SIZE} ({}..={MAX_GROUP_SIZE}): it counts the group and the pool together",
                group.max
            ));
        }
    }
    for (index, schedule) in group.schedules.iter().enumerate() {
        let at = format!("{at}.schedule[{index}] ({})", schedule.name);
        schedule_problems(schedule, group, &at, problems);
        if group.schedules[..index].iter().any(|s| s.name == schedule.name) {
            problems.push(format!("{at}.name: duplicate schedule name"));
        }
    }
}

fn alarm_policy_problems(policy: &AlarmPolicy, at: &str, problems: &mut Vec<String>) {
    if !valid_name(&policy.alarm) {
        problems.push(format!(
            "{at}.alarm: {:?} must be 1-64 letters, digits, - or _",
            policy.alarm
        ));
    }
    if let Some(cooldown) = policy.cooldown
        && cooldown > HISTORY
    {
        problems.push(format!(
            "{at}.cooldown: {cooldown:?} is longer than the {}s of history decisions read",
            HISTORY.as_secs()
        ));
    }
    let period = policy.period.as_secs();
    if policy.period.subsec_nanos() != 0
        || !(period == 10 || period == 20 || period == 30 || (period >= 60 && period.is_multiple_of(60)))
    {
        problems.push(format!(
            "{at}.period: {:?} must be 10s, 20s, 30s or a multiple of 60s",
            policy.period
        ));
    }
    if policy.evaluation_periods == 0 || u64::from(policy.evaluation_periods) * period > 86_400 {
        problems.push(format!(
            "{at}.evaluation_periods: {} must be >= 1 with evaluation_periods x period <= 1 day",
            policy.evaluation_periods
        ));
    }
    if let Some(m) = policy.datapoints_to_alarm
        && (m == 0 || m > policy.evaluation_periods)
    {
        problems.push(format!(
            "{at}.datapoints_to_alarm: {m} must be in 1..={}",
            policy.evaluation_periods
        ));
    }
    if !policy.threshold.is_finite() {
        problems.push(format!("{at}.threshold: must be a finite number"));
    }
    if policy.min_adjustment_magnitude.is_some() && policy.adjustment != AdjustmentType::PercentChangeInCapacity {
        problems.push(format!(
            "{at}.min_adjustment_magnitude: only allowed with adjustment = \"percent_change_in_capacity\""
        ));
    }
    let changes = kind_problems(policy, at, problems);
    if policy.adjustment == AdjustmentType::ExactCapacity && policy.adjustments().iter().any(|s| s.change < 0) {
        problems.push(format!("{at}.{changes}: exact_capacity changes must be >= 0"));
    }
    // Issue 25.6: a change of i64::MAX validated, then overflowed and the
    // scale-out was lost. AWS's ScalingAdjustment is a 32-bit integer; a
    // group holds at most MAX_GROUP_SIZE instances, so a larger change means
    // the same as that bound and is refused as a likely typo.
    let (lowest, highest) = match policy.adjustment {
        AdjustmentType::ChangeInCapacity => (-i64::from(MAX_GROUP_SIZE), i64::from(MAX_GROUP_SIZE)),
        AdjustmentType::ExactCapacity => (0, i64::from(MAX_GROUP_SIZE)),
        // -100% empties the group; +10000% multiplies it by 101.
        AdjustmentType::PercentChangeInCapacity => (-100, 10_000),
    };
    for (index, step) in policy.adjustments().iter().enumerate() {
        if !(lowest..=highest).contains(&step.change) {
            let field = match policy.kind() {
                PolicyType::Step => format!("steps[{index}].change"),
                PolicyType::Simple => "change".into(),
            };
            problems.push(format!(
                "{at}.{field}: {} must be within {lowest}..={highest} for {:?}",
                step.change, policy.adjustment
            ));
        }
    }
    if policy.kind() == PolicyType::Step {
        steps_problems(&policy.steps, policy.comparison, &format!("{at}.steps"), problems);
    }
}

/// The fields each policy type has and refuses (PutScalingPolicy: `Cooldown`
/// "valid only if the policy type is SimpleScaling", `StepAdjustments`
/// "required if the policy type is StepScaling", `ScalingAdjustment`
/// "required if the policy type is SimpleScaling", `EstimatedInstanceWarmup`
/// "not used if the policy type is SimpleScaling"). Returns the field that
/// holds the changes.
fn kind_problems(policy: &AlarmPolicy, at: &str, problems: &mut Vec<String>) -> &'static str {
    let Some(kind) = policy.policy_type else {
        let hint = if policy.change.is_some() {
            " (this one has a change: type = \"simple\")"
        } else {
            ""
        };
        problems.push(format!(
            "{at}.type: required: \"simple\" (one change, then a cooldown) or \"step\" (steps by breach size, instance warm-up, no cooldown){hint}"
        ));
        return "steps";
    };
    match kind {
        PolicyType::Simple => {
            if policy.change.is_none() {
                problems.push(format!(
                    "{at}.change: required for type = \"simple\" (the one adjustment, e.g. change = 2)"
                ));
            }
            if !policy.steps.is_empty() {
                problems.push(format!(
                    "{at}.steps: only for type = \"step\"; a simple policy has one change (change = N)"
                ));
            }
            if policy.instance_warmup.is_some() {
                problems.push(format!(
                    "{at}.instance_warmup: only for type = \"step\"; simple scaling waits for its cooldown instead"
                ));
            }
            "change"
        }
        PolicyType::Step => {
            if policy.change.is_some() {
                problems.push(format!(
                    "{at}.change: only for type = \"simple\"; a step policy has steps = [...]"
                ));
            }
            if policy.cooldown.is_some() {
                problems.push(format!(
                    "{at}.cooldown: only for type = \"simple\" (AWS: Cooldown is valid only for SimpleScaling); a step policy uses instance_warmup"
                ));
            }
            "steps"
        }
    }
}

/// AWS's rules for step adjustments: no gaps, no overlaps, at most one open
/// bound each way, and the steps cover the breach side of the threshold.
fn steps_problems(steps: &[Step], comparison: Comparison, at: &str, problems: &mut Vec<String>) {
    if steps.is_empty() {
        problems.push(format!("{at}: at least one step is required"));
        return;
    }
    for (index, step) in steps.iter().enumerate() {
        if step.lower.is_none() && step.upper.is_none() {
            problems.push(format!("{at}[{index}]: lower and upper cannot both be open"));
        }
        if let (Some(lower), Some(upper)) = (step.lower, step.upper)
            && lower >= upper
        {
            problems.push(format!("{at}[{index}]: lower {lower} must be < upper {upper}"));
        }
        if step.lower.is_some_and(|v| !v.is_finite()) || step.upper.is_some_and(|v| !v.is_finite()) {
            problems.push(format!(
                "{at}[{index}]: bounds must be finite numbers (omit a bound for infinity)"
            ));
        }
    }
    let mut sorted: Vec<&Step> = steps.iter().collect();
    sorted.sort_by(|a, b| {
        a.lower
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY))
    });
    for pair in sorted.windows(2) {
        let (upper, next_lower) = (
            pair[0].upper.unwrap_or(f64::INFINITY),
            pair[1].lower.unwrap_or(f64::NEG_INFINITY),
        );
        if upper < next_lower {
            problems.push(format!(
                "{at}: gap between {upper} and {next_lower}; step ranges must be contiguous"
            ));
        } else if upper > next_lower {
            problems.push(format!(
                "{at}: ranges overlap at {next_lower}..{upper}; step ranges must not overlap"
            ));
        }
    }
    let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
    if comparison.is_upper() {
        if last.upper.is_some() {
            problems.push(format!(
                "{at}: the highest step needs no upper bound (it covers everything above) for a {} alarm",
                comparison.symbol()
            ));
        }
        if first.lower.is_some_and(|l| l > 0.0) {
            problems.push(format!(
                "{at}: the lowest step must start at 0 (the threshold) for a {} alarm",
                comparison.symbol()
            ));
        }
    } else {
        if first.lower.is_some() {
            problems.push(format!(
                "{at}: the lowest step needs no lower bound (it covers everything below) for a {} alarm",
                comparison.symbol()
            ));
        }
        if last.upper.is_some_and(|u| u < 0.0) {
            problems.push(format!(
                "{at}: the highest step must end at 0 (the threshold) for a {} alarm",
                comparison.symbol()
            ));
        }
    }
}

/// The rules of `PredictiveScalingConfiguration` (EC2 Auto Scaling API
/// reference; CloudFormation `AWS::AutoScaling::ScalingPolicy
/// PredictiveScalingConfiguration`).
fn predictive_problems(predictive: &Predictive, at: &str, problems: &mut Vec<String>) {
    if let TrackedMetric::Custom(spec) = &predictive.metric {
        problems.push(format!(
            "{at}.metric: {}/{} is not a load metric the group's hourly totals can be read for; allowed: cpu, cpu_demand, request_count_per_target",
            spec.namespace, spec.name
        ));
    }
    if !(predictive.target.is_finite() && predictive.target > 0.0) {
        problems.push(format!("{at}.target: {} must be a positive number", predictive.target));
    }
    if let TrackedMetric::Predefined(PredefinedMetric::Cpu | PredefinedMetric::CpuDemand) = predictive.metric
        && predictive.target > 100.0
    {
        problems.push(format!("{at}.target: CPU target {} must be <= 100", predictive.target));
    }
    if predictive.scheduling_buffer >= crate::predictive::MAX_SCHEDULING_BUFFER {
        problems.push(format!(
            "{at}.scheduling_buffer: {}s must be less than the forecast interval of 3600s (SchedulingBufferTime)",
            predictive.scheduling_buffer.as_secs()
        ));
    }
    match (predictive.max_capacity_breach, predictive.max_capacity_buffer) {
        (MaxCapacityBreach::HonorMaxCapacity, Some(_)) => problems.push(format!(
            "{at}.max_capacity_buffer: only with max_capacity_breach = \"increase_max_capacity\" (MaxCapacityBuffer cannot be used otherwise)"
        )),
        (MaxCapacityBreach::IncreaseMaxCapacity, None) => problems.push(format!(
            "{at}.max_capacity_buffer: required with max_capacity_breach = \"increase_max_capacity\" (0-100, percent of the forecast)"
        )),
        (_, Some(buffer)) if buffer > 100 => {
            problems.push(format!("{at}.max_capacity_buffer: {buffer} must be 0-100 (percent of the forecast)"))
        }
        _ => {}
    }
}

fn target_tracking_problems(tracking: &TargetTracking, at: &str, problems: &mut Vec<String>) {
    if !(tracking.target.is_finite() && tracking.target > 0.0) {
        problems.push(format!("{at}.target: {} must be a positive number", tracking.target));
    }
    if let TrackedMetric::Predefined(PredefinedMetric::Cpu | PredefinedMetric::CpuDemand) = tracking.metric
        && tracking.target > 100.0
    {
        problems.push(format!("{at}.target: CPU target {} must be <= 100", tracking.target));
    }
    if !(0.0..1.0).contains(&tracking.tolerance) {
        problems.push(format!("{at}.tolerance: {} must be in [0, 1)", tracking.tolerance));
    }
    for (direction, behavior) in [("scale_out", &tracking.scale_out), ("scale_in", &tracking.scale_in)] {
        if let Some(tolerance) = behavior.tolerance
            && !(0.0..1.0).contains(&tolerance)
        {
            problems.push(format!("{at}.{direction}.tolerance: {tolerance} must be in [0, 1)"));
        }
        if behavior.stabilization > HISTORY {
            problems.push(format!(
                "{at}.{direction}.stabilization: at most {}s",
                HISTORY.as_secs()
            ));
        }
        if behavior.select != Select::Disabled && behavior.policies.is_empty() {
            problems.push(format!(
                "{at}.{direction}.policies: at least one rate policy unless select = \"disabled\""
            ));
        }
        for (index, rate) in behavior.policies.iter().enumerate() {
            let at = format!("{at}.{direction}.policies[{index}]");
            match (rate.percent, rate.instances) {
                (Some(0), None) | (None, Some(0)) => problems.push(format!("{at}: the limit must be >= 1")),
                (Some(_), None) | (None, Some(_)) => {}
                _ => problems.push(format!("{at}: set exactly one of percent or instances")),
            }
            if rate.period.is_zero() || rate.period > Duration::from_secs(1800) {
                problems.push(format!("{at}.period: {:?} must be in 1s..=1800s", rate.period));
            }
        }
    }
}

fn schedule_problems(schedule: &Schedule, group: &GroupPolicy, at: &str, problems: &mut Vec<String>) {
    if !valid_name(&schedule.name) {
        problems.push(format!(
            "{at}.name: {:?} must be 1-64 letters, digits, - or _",
            schedule.name
        ));
    }
    match (&schedule.cron, &schedule.rate) {
        (Some(expression), None) | (None, Some(expression)) => match expression.parse::<ScheduleExpr>() {
            Ok(ScheduleExpr::Cron(_)) if schedule.rate.is_some() => {
                problems.push(format!(
                    "{at}.rate: {expression:?} is a cron expression; use cron = ..."
                ));
            }
            Ok(ScheduleExpr::Rate(_)) if schedule.cron.is_some() => {
                problems.push(format!(
                    "{at}.cron: {expression:?} is a rate expression; use rate = ..."
                ));
            }
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "{at}.{}: {e}",
                if schedule.cron.is_some() { "cron" } else { "rate" }
            )),
        },
        _ => problems.push(format!("{at}: set exactly one of cron or rate")),
    }
    if let Some(zone) = &schedule.timezone
        && crate::schedule::time_zone(zone).is_err()
    {
        problems.push(format!(
            "{at}.timezone: {zone:?} is not an IANA time zone (e.g. Asia/Shanghai, UTC)"
        ));
    }
    if schedule.min.is_none() && schedule.max.is_none() && schedule.desired.is_none() {
        problems.push(format!("{at}: set at least one of min, max, desired"));
    }
    let min = schedule.min.unwrap_or(group.min);
    let max = schedule.max.unwrap_or(group.max);
    if min > max {
        problems.push(format!(
            "{at}: min {min} must be <= max {max} (the group's value where the action sets none)"
        ));
    }
    if let Some(desired) = schedule.desired
        && !(min..=max).contains(&desired)
    {
        problems.push(format!(
            "{at}.desired: {desired} must be within min..=max ({min}..={max})"
        ));
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration ({e}); use e.g. \"300s\", \"5m\""))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

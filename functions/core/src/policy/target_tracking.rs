//! Target tracking and its HPA-style behaviours (rate policies, select).

use super::*;

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

pub(super) fn default_tolerance() -> f64 {
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

//! Predictive scaling and warm pools.

use super::*;

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

pub(super) fn default_scheduling_buffer() -> Duration {
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

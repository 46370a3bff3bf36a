//! Backtest: replay a request-rate trace through a policy, minute by minute,
//! driving the real `functions::decide::decide` with the same events the
//! deployed functions would get, and report cost and capacity shortfall.
//!
//! The model (stated in every report):
//! - one instance serves `capacity_rps` requests/s at 100% CPU; the load
//!   balancer spreads load evenly, so every in-service instance sees
//!   CPU = load / (in-service x capacity_rps), capped at 100%; tracked
//!   metrics report per in-service instance each minute: `cpu` that CPU,
//!   `request_count_per_target` the requests of the minute per instance, a
//!   custom metric the requests/s per instance;
//! - an instance is billed from launch and serves after `boot`;
//! - CloudWatch: one datapoint a minute, readable `ingestion_delay` after
//!   its minute starts (3 minutes by default, as EC2 detailed monitoring);
//!   an alarm's period statistic is the mean of the minutes in the period
//!   for CPUUtilization (no datapoint while the group has no instance), the
//!   sum of the minutes for the load balancer's counts: RequestCountPerTarget
//!   (a minute's requests over the in-service instances; none with no
//!   instance in service or no request, as the ALB counts only requests it
//!   could choose a target for) and HTTPCode_ELB_503_Count (a minute's
//!   requests while no instance is in service: what scales a group out from
//!   zero), judged every minute over its evaluation range
//!   of periods ending then (CloudWatch's rolling window) by
//!   `functions::cloudwatch::judge`, the same code as the local cloud's
//!   alarms; a state change is an EventBridge alarm event; target
//!   tracking reads only readable datapoints too;
//! - EventBridge: scheduled actions fire at their cron times in their time
//!   zone; the target-tracking tick runs every minute and re-checks alarms
//!   still in ALARM;
//! - scale-in terminates by `functions::group::termination_order`, the
//!   rule the local cloud and the template's groups (OldestInstance) use:
//!   the oldest first, booting or not (before 2026-12-07 the backtest took
//!   booting instances first, more lenient than AWS).

use std::collections::BTreeMap;
use std::time::Duration;

use functions::cloudwatch;
use functions::decide::{AlarmState, AlarmStatus, Datapoint, DecideError, MetricHistory, Observation, Trigger};
use functions::policy::{GroupPolicy, Policy, PolicyError, PredefinedMetric, TrackedMetric};
use functions::schedule::ScheduleExpr;
use functions::tracking::metric_key;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::trace::Trace;

mod oracle;
pub mod print;
mod replay;
mod sim;
mod surges;

pub use oracle::oracle_instances;
use oracle::ratio;
use replay::replay;
use sim::{AlarmSim, HISTORY, MINUTE, Sim, SimInstance, period_value};
pub use surges::surges;

/// The capacity and cost model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Model {
    /// Requests per second one instance serves at 100% CPU.
    pub capacity_rps: f64,
    /// Launch to in service.
    #[serde(with = "seconds")]
    pub boot: Duration,
    /// Price of one instance-hour.
    pub price_per_hour: f64,
    /// From the start of a minute until CloudWatch shows its datapoints
    /// (`functions::cloudwatch::INGESTION_DELAY` or longer).
    #[serde(with = "seconds")]
    pub ingestion_delay: Duration,
    /// The oracle's utilisation U, a fraction in (0, 1]: it keeps
    /// ceil(load / (capacity_rps x U)) instances in service each minute.
    pub oracle_utilisation: f64,
    /// A warm pool's instance from the pool to in service (it was
    /// initialised when it joined the pool); used only by a group with a
    /// `[group.warm_pool]`.
    #[serde(with = "seconds")]
    pub warm_start: Duration,
}

/// The default `warm_start`: a stopped, initialised instance started and
/// passing its health check, without the launch and initialisation a
/// new one takes (AWS publishes no figure; `--warm-start` sets yours).
pub const WARM_START: Duration = Duration::from_secs(30);

/// The oracle's default utilisation (70%).
pub const ORACLE_UTILISATION: f64 = 0.7;

mod seconds {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// One minute of the replay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Minute {
    pub at: Timestamp,
    pub rps: f64,
    /// Billed instances (booting and in service).
    pub instances: u32,
    pub in_service: u32,
    pub cpu_percent: f64,
}

/// How long one capacity shortfall lasted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Shortfall {
    pub start: Timestamp,
    /// Minutes until capacity covered the load again.
    pub minutes: u64,
}

/// One change of desired capacity, with the decision's explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingAction {
    pub at: Timestamp,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// A surge: the load at least doubles against the mean of the 30 minutes
/// before it, until it falls back under twice that baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Surge {
    /// First minute at twice the baseline or more.
    pub onset: Timestamp,
    /// First minute back under twice the baseline (None: still surging at the end).
    pub end: Option<Timestamp>,
    pub baseline_rps: f64,
    pub peak_rps: f64,
    /// Billed instances the minute before the onset.
    pub instances_before: u32,
    /// Minutes from the onset to the first minute whose in-service capacity
    /// covers the load (0: it never fell short; None: never covered).
    pub minutes_to_capacity: Option<u64>,
    /// Scaling actions from the onset until the group is back at
    /// `instances_before` (or the next surge, or the end of the trace).
    pub scaling_actions: u32,
    /// Minutes from `end` until the group is back at `instances_before`.
    pub minutes_back_to_baseline: Option<u64>,
}

/// What a policy would have done to a trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub group: String,
    pub model: Model,
    pub minutes: usize,
    pub instance_hours: f64,
    pub cost: f64,
    /// Instances a fleet fixed at the peak needs: ceil(peak / capacity_rps).
    pub fixed_peak_instances: u32,
    pub fixed_peak_instance_hours: f64,
    /// instance_hours / fixed_peak_instance_hours.
    pub ratio_to_fixed_peak: f64,
    /// What a perfect operator pays (`oracle_instances`): the yardstick a
    /// policy is judged by on traffic it was not tuned on.
    pub oracle_instance_hours: f64,
    /// instance_hours / oracle_instance_hours.
    pub ratio_to_oracle: f64,
    pub requests: f64,
    pub requests_over_capacity: f64,
    /// requests_over_capacity / requests.
    pub over_capacity_fraction: f64,
    pub minutes_over_capacity: u64,
    pub highest_cpu_percent: f64,
    pub scaling_actions: u32,
    /// The group has a warm pool (`model.warm_start` applies; instance-hours
    /// include a running pool and each pool instance's initialisation).
    pub warm_pool: bool,
    pub shortfalls: Vec<Shortfall>,
    pub surges: Vec<Surge>,
    pub actions: Vec<ScalingAction>,
    pub timeline: Vec<Minute>,
}

impl Report {
    /// Judges this replay against another oracle (the fixed-peak fleet's
    /// own min is its size: it is judged by the replayed policy's oracle).
    pub fn set_oracle(&mut self, oracle_instance_hours: f64) {
        self.oracle_instance_hours = oracle_instance_hours;
        self.ratio_to_oracle = ratio(self.instance_hours, oracle_instance_hours);
    }
}

/// A group of `instances` that never scales: the fleet sized for the peak
/// that `--compare fixed-peak` replays.
pub fn fixed_fleet(name: &str, instances: u32) -> Result<GroupPolicy, PolicyError> {
    let text = format!("[[group]]\nname = {name:?}\nmin = {instances}\nmax = {instances}\n");
    let mut policy = Policy::parse("fixed fleet", &text)?;
    Ok(policy.groups.remove(0))
}

/// Instances a fleet fixed at the trace's peak needs under `model`.
pub fn peak_instances(trace: &Trace, model: &Model) -> u32 {
    (trace.peak() / model.capacity_rps).ceil().max(1.0) as u32
}

/// Replays `trace` through `group` under `model`.
///
/// Fails only if the simulated group reaches a state decide() refuses
/// (min above max), which a validated policy cannot produce.
pub fn run(trace: &Trace, group: &GroupPolicy, model: Model) -> Result<Report, DecideError> {
    replay(trace, group, model, false)
}

/// [`run`] handing every decision the hour of metrics the functions fetch
/// instead of only what target tracking reads: slower, the same answer
/// (the fast path's reference in the tests).
#[doc(hidden)]
pub fn run_with_full_history(trace: &Trace, group: &GroupPolicy, model: Model) -> Result<Report, DecideError> {
    replay(trace, group, model, true)
}

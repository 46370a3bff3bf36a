//! Target tracking with the Kubernetes HPA's arithmetic, and no memory:
//! stabilisation and rate limits are derived from the metric and activity
//! histories passed in, so every invocation can decide from scratch.
//!
//! Per policy: `ceil(ready instances x mean value / target)` outside a
//! tolerance band; instances still warming up count as 0 on a scale-out,
//! instances without a datapoint as 100% of the target on a scale-in (the
//! conservative guesses of the HPA's replica calculator); then the
//! stabilisation windows (the lowest recommendation of the scale-out window,
//! the highest of the scale-in window), the rate policies, and min/max.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

// A datapoint older than FRESHNESS at evaluation time counts as missing.
use crate::cloudwatch::FRESHNESS;
use crate::decide::{Action, Activity, Decision, Lifecycle, Observation, elapsed};
use crate::policy::{Behavior, GroupPolicy, PredefinedMetric, Select, TargetTracking, TrackedMetric};
use crate::rule::{Code, Rule};

/// One datapoint of a metric for one instance (one per period).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Datapoint {
    pub at: Timestamp,
    pub value: f64,
}

/// Recent datapoints of every tracked metric ([`metric_key`]), per instance
/// id; and, for a group with predictive scaling, its hourly load
/// ([`crate::predictive::hourly_load`] over [`crate::predictive::window`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricHistory {
    #[serde(flatten)]
    pub metrics: BTreeMap<String, BTreeMap<String, Vec<Datapoint>>>,
    /// The group's load an hour, written `"load"` beside the metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load: Vec<Datapoint>,
}

/// The key of a tracked metric in [`MetricHistory`]: `cpu`, `cpu_demand`,
/// `request_count_per_target`, or `NAMESPACE/NAME`.
pub fn metric_key(metric: &TrackedMetric) -> String {
    match metric {
        TrackedMetric::Predefined(PredefinedMetric::Cpu) => "cpu".into(),
        TrackedMetric::Predefined(PredefinedMetric::CpuDemand) => "cpu_demand".into(),
        TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => "request_count_per_target".into(),
        TrackedMetric::Custom(spec) => format!("{}/{}", spec.namespace, spec.name),
    }
}

/// The most `cpu_demand` scales a minute's CPU by: a group whose targets
/// answer (almost) every request with a 5xx served too little for the
/// ratio to mean anything, and ten times the group per decision is
/// already more than any rate policy lets through in one step.
pub const MAX_DEMAND_FACTOR: f64 = 10.0;

/// How much more work a group was sent than it did, in one minute: the
/// load balancer's `RequestCount` (requests it routed to a target) over
/// the ones the targets answered without a 5xx (`RequestCount` minus
/// `HTTPCode_Target_5XX_Count`, the requests they shed), at most
/// [`MAX_DEMAND_FACTOR`]. CPU stops at 100%, and a group at 100% that
/// sheds half of what it is sent needs twice its size, not "a bit more":
/// `cpu_demand` = CPU x this factor. No requests in the minute (the load
/// balancer publishes nothing then) is a factor of 1, no 5xx count (it is
/// published only when nonzero) is none shed. Every part computes
/// `cpu_demand` through this one function: the AWS adapter from
/// CloudWatch (AWS/ApplicationELB metrics by `LoadBalancer`, as in "CloudWatch
/// metrics for your Application Load Balancer"), the local cloud from its
/// load balancer's counts, the backtest from the trace's load over capacity.
pub fn demand_factor(requests: Option<f64>, target_5xx: Option<f64>) -> f64 {
    let requests = requests.filter(|r| r.is_finite() && *r > 0.0);
    let Some(requests) = requests else { return 1.0 };
    let shed = target_5xx.filter(|e| e.is_finite()).unwrap_or(0.0).clamp(0.0, requests);
    let served = requests - shed;
    if served * MAX_DEMAND_FACTOR <= requests {
        MAX_DEMAND_FACTOR
    } else {
        requests / served
    }
}

/// Each datapoint of an instance's CPU scaled by [`demand_factor`] of the
/// same minute (the load balancer's series, one datapoint a minute).
pub fn cpu_demand(cpu: &[Datapoint], requests: &[Datapoint], target_5xx: &[Datapoint]) -> Vec<Datapoint> {
    let minute = |at: Timestamp| at.as_second().div_euclid(60);
    let in_minute = |series: &[Datapoint], at: Timestamp| {
        series
            .iter()
            .rev()
            .find(|d| minute(d.at) == minute(at))
            .map(|d| d.value)
    };
    cpu.iter()
        .map(|d| Datapoint {
            at: d.at,
            value: d.value * demand_factor(in_minute(requests, d.at), in_minute(target_5xx, d.at)),
        })
        .collect()
}

/// How far back target tracking reads metrics: recommendations are
/// recomputed at each datapoint time inside the longest stabilisation
/// window, each from datapoints at most `FRESHNESS` older. A caller may
/// pass only this much history (the backtest does: the same decisions,
/// without copying an hour of datapoints every tick).
pub fn metrics_window(group: &GroupPolicy) -> Duration {
    group
        .target_tracking
        .iter()
        .map(|p| p.scale_out.stabilization.max(p.scale_in.stabilization))
        .max()
        .unwrap_or(Duration::ZERO)
        + FRESHNESS
}

/// Each instance's datapoints in time order (borrowed when they already
/// are, as every adapter and the backtest pass them), so the one at or
/// before a time is a binary search. The sort is stable: among datapoints
/// of the same time the last one wins, as a scan's `max_by_key` picks it.
struct Ordered<'a> {
    /// By instance id, in the map's (sorted) order: found by binary search,
    /// with no tree built per decision.
    series: Vec<(&'a str, Cow<'a, [Datapoint]>)>,
}

impl<'a> Ordered<'a> {
    fn new(series: &'a BTreeMap<String, Vec<Datapoint>>) -> Self {
        let series = series
            .iter()
            .map(|(id, points)| {
                let points = if points.is_sorted_by_key(|d| d.at) {
                    Cow::Borrowed(points.as_slice())
                } else {
                    let mut sorted = points.clone();
                    sorted.sort_by_key(|d| d.at);
                    Cow::Owned(sorted)
                };
                (id.as_str(), points)
            })
            .collect();
        Self { series }
    }

    /// The newest datapoint of `instance` at or before `t` and at most
    /// `FRESHNESS` old.
    #[cfg(test)]
    fn latest(&self, instance: &str, t: Timestamp) -> Option<&Datapoint> {
        latest_in(self.get(instance)?, t)
    }

    /// Each instance's datapoints, in the order of `instances` (looked up
    /// once a decision, not once per instance per recommendation).
    fn per_instance(&self, instances: &[crate::decide::Instance]) -> Vec<Option<&[Datapoint]>> {
        instances.iter().map(|i| self.get(i.id.as_str())).collect()
    }

    fn get(&self, instance: &str) -> Option<&[Datapoint]> {
        let index = self.series.binary_search_by(|(id, _)| (*id).cmp(instance)).ok()?;
        Some(&self.series[index].1)
    }
}

/// The newest of time-ordered `points` at or before `t` and at most
/// `FRESHNESS` old.
fn latest_in(points: &[Datapoint], t: Timestamp) -> Option<&Datapoint> {
    let after = points.partition_point(|d| d.at <= t);
    let point = points.get(after.checked_sub(1)?)?;
    (elapsed(point.at, t) <= FRESHNESS).then_some(point)
}

/// The desired-capacity changes of the activity history, oldest first.
fn changes(activities: &[Activity]) -> Vec<&Activity> {
    let mut sorted: Vec<&Activity> = activities.iter().filter(|a| a.from != a.to).collect();
    sorted.sort_by_key(|a| a.start);
    sorted
}

/// One recommendation: the capacity the metric asks for at a point in time.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recommendation {
    capacity: u32,
    /// Mean value over the instances that reported (for explanations).
    mean: f64,
    /// The newest datapoint it used (the start of its minute).
    newest: Timestamp,
}

/// Decides one target-tracking policy on a tick at `at` (evaluated at `now`).
// The inputs of one decision, passed down as decide() was given them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decide(
    group: &GroupPolicy,
    policy: &TargetTracking,
    observed: &Observation,
    metrics: &MetricHistory,
    activities: &[Activity],
    at: Timestamp,
    now: Timestamp,
    explain: crate::decide::Explain,
) -> Decision {
    let current = observed.desired;
    let key = metric_key(&policy.metric);
    let empty = BTreeMap::new();
    let series = metrics.metrics.get(&key).unwrap_or(&empty);
    let mut at_text: Option<String> = None;
    let this_tick = activities
        .iter()
        .find(|a| is_tick_cause(&a.cause, &key, at, &mut at_text));
    if let Some(done) = this_tick {
        // A duplicated tick: the first delivery already acted.
        return Decision::hold(
            current,
            Code::AlreadyHandled,
            format!("already handled: this tick set {} -> {}", done.from, done.to),
            vec![],
        );
    }
    let sorted = Ordered::new(series);
    // The newest datapoint at or before now, of any instance: the last of
    // each time-ordered series up to now.
    let newest = sorted
        .series
        .iter()
        .map(|(_, points)| points)
        .filter_map(|points| {
            let upto = points.partition_point(|d| d.at <= now);
            upto.checked_sub(1).map(|i| points[i].at)
        })
        .max();
    let ordered = sorted.per_instance(&observed.instances);
    let history = History {
        changes: changes(activities),
        last_scale_in: last_scale_in(activities),
    };
    let Some(now_rec) = recommend(group, policy, observed, &ordered, &history, now) else {
        // No datapoint at all: nothing to track, and never a scale-in on no data.
        return Decision::hold(
            current,
            Code::NoData,
            format!("target tracking {key}: no recent datapoints"),
            vec![],
        );
    };
    // The first rules: the arithmetic and the age of what was decided on
    // (CloudWatch's data is minutes late). Written last, in front, and
    // only when the decision is to be read (see `Explain`).
    let head = || {
        let mut head = vec![Rule::new(
            Code::TargetTracking,
            format!(
                "{key} mean {:.1} vs target {} -> {} instance(s)",
                now_rec.mean, policy.target, now_rec.capacity
            ),
        )];
        if let Some(newest) = newest {
            head.push(Rule::new(
                Code::DatapointAge,
                format!(
                    "newest datapoint: the minute from {newest}, {}",
                    crate::cloudwatch::age(newest, now)
                ),
            ));
        }
        head
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut capacity = now_rec.capacity;
    // CloudWatch's data is minutes late: a datapoint from before the last
    // scale-in describes the larger group, whose scale-in was decided on
    // datapoints like it. Scaling out again on it would undo that decision
    // on noise (4 -> 3 -> 4 -> 3, minute after minute); wait for a minute
    // of the smaller group.
    if capacity > current
        && let Some(scale_in) = last_scale_in(activities).filter(|start| *start > now_rec.newest)
    {
        rules.push(Rule::new(
            Code::StaleDatapoint,
            format!(
                "scale-out held: the newest datapoint ({}) predates the scale-in at {scale_in}",
                now_rec.newest
            ),
        ));
        capacity = current;
    }
    if policy.disable_scale_in && capacity < current {
        rules.push(Rule::new(Code::ScaleInDisabled, "scale-in disabled"));
        capacity = current;
    }

    // Stabilisation from history: past recommendations recomputed at each
    // datapoint time inside the windows.
    // Only the window of the direction asked for can change the result:
    // on a scale-out the highest of the scale-in window is at least this
    // recommendation, so it never lowers the stabilised one; on a scale-in
    // the lowest of the scale-out window is at most this one and never
    // raises it; with no change asked, neither moves it (so most ticks
    // recompute nothing).
    let window = match capacity.cmp(&current) {
        std::cmp::Ordering::Greater => Some(policy.scale_out.stabilization),
        std::cmp::Ordering::Less => Some(policy.scale_in.stabilization),
        std::cmp::Ordering::Equal => None,
    };
    let mut up = capacity;
    let mut down = capacity;
    let times = window.map_or_else(Vec::new, |window| evaluation_times(series, now, window));
    for t in times {
        let Some(past) = recommend(group, policy, observed, &ordered, &history, t) else {
            continue;
        };
        let age = elapsed(t, now);
        if age <= policy.scale_out.stabilization {
            up = up.min(past.capacity);
        }
        if age <= policy.scale_in.stabilization {
            down = down.max(past.capacity);
        }
    }
    let mut stabilised = current;
    if stabilised < up {
        stabilised = up;
    }
    if stabilised > down {
        stabilised = down;
    }
    if stabilised != capacity {
        let (direction, window, word) = if capacity > current {
            ("scale-out", policy.scale_out.stabilization, "lowest")
        } else {
            ("scale-in", policy.scale_in.stabilization, "highest")
        };
        rules.push(Rule::new(
            Code::Stabilised,
            format!(
                "{direction} stabilised to {stabilised}: the {word} recommendation of the last {}",
                humantime::format_duration(window)
            ),
        ));
        capacity = stabilised;
    }

    // Rate policies, from the changes already made in each policy's period.
    if capacity > current {
        let limit = rate_limit(&policy.scale_out, current, activities, now, true);
        if capacity > limit {
            rules.push(Rule::new(
                Code::RateLimited,
                format!("limited by scale-out rate policies to {limit}"),
            ));
            capacity = limit;
        }
    } else if capacity < current {
        let limit = rate_limit(&policy.scale_in, current, activities, now, false);
        if capacity < limit {
            rules.push(Rule::new(
                Code::RateLimited,
                format!("limited by scale-in rate policies to {limit}"),
            ));
            capacity = limit;
        }
    }

    let clamped = capacity.clamp(observed.min, observed.max);
    if clamped != capacity {
        rules.push(Rule::new(
            Code::Clamped,
            format!(
                "clamped to {} {clamped}",
                if capacity > clamped { "max" } else { "min" }
            ),
        ));
    }
    if clamped == current {
        // The last rule that moved the capacity back to where it is says
        // why; none (only the arithmetic): already there.
        let code = rules.last().map_or(Code::AlreadyThere, |r| r.code);
        if explain == crate::decide::Explain::ActionsOnly {
            return Decision::hold(current, code, String::new(), Vec::new());
        }
        let mut all = head();
        all.append(&mut rules);
        return Decision::hold(current, code, format!("target tracking {key}: stay at {current}"), all);
    }
    let mut all = head();
    all.append(&mut rules);
    Decision {
        action: Action::SetDesired(clamped),
        code: Code::TargetTracking,
        reason: format!("target tracking {key}: {current} -> {clamped}"),
        rules: all,
        from: current,
        cause: Some(tick_cause(&key, at)),
    }
}

/// The cause a target-tracking tick's action records: also its idempotency
/// key (a redelivered tick finds it among the activities).
fn tick_cause(key: &str, at: Timestamp) -> String {
    format!("target tracking {key} tick at {at}")
}

/// Whether `cause` is [`tick_cause`]`(key, at)`, compared piece by piece:
/// `at` is written out (into `at_text`, once) only for a cause of this
/// metric's ticks; formatting it for every tick was a twentieth of a replay.
fn is_tick_cause(cause: &str, key: &str, at: Timestamp, at_text: &mut Option<String>) -> bool {
    cause
        .strip_prefix("target tracking ")
        .and_then(|rest| rest.strip_prefix(key))
        .and_then(|rest| rest.strip_prefix(" tick at "))
        .is_some_and(|rest| rest == at_text.get_or_insert_with(|| at.to_string()).as_str())
}

/// Distinct datapoint times within `window` before `now` (oldest first).
fn evaluation_times(series: &BTreeMap<String, Vec<Datapoint>>, now: Timestamp, window: Duration) -> Vec<Timestamp> {
    let mut times: Vec<Timestamp> = series
        .values()
        .flatten()
        .map(|d| d.at)
        .filter(|t| *t < now && elapsed(*t, now) <= window)
        .collect();
    times.sort();
    times.dedup();
    times
}

/// When the newest scale-in started, if any.
fn last_scale_in(activities: &[Activity]) -> Option<Timestamp> {
    activities.iter().filter(|a| a.to < a.from).map(|a| a.start).max()
}

/// What a recommendation reads of the activity history, worked out once a
/// decision.
struct History<'a> {
    /// The changes, oldest first ([`changes`]).
    changes: Vec<&'a Activity>,
    last_scale_in: Option<Timestamp>,
}

/// The desired capacity in effect at `t`, from the changes (oldest first).
fn capacity_at(current: u32, sorted: &[&Activity], t: Timestamp) -> u32 {
    match sorted.iter().rev().find(|a| a.start <= t) {
        Some(last_before) => last_before.to,
        None => sorted.first().map_or(current, |first_after| first_after.from),
    }
}

/// The HPA's replica calculation at time `t`.
fn recommend(
    group: &GroupPolicy,
    policy: &TargetTracking,
    observed: &Observation,
    series: &[Option<&[Datapoint]>],
    history: &History<'_>,
    t: Timestamp,
) -> Option<Recommendation> {
    let current = capacity_at(observed.desired, &history.changes, t);
    let warmup = group.warmup();
    // The ready instances' values are only ever summed, in order: a
    // running sum (from -0.0, as `Iterator::sum` starts) and a count give
    // the same floating-point result as collecting them, with no allocation.
    let (mut sum, mut count, mut missing, mut unready) = (-0.0f64, 0usize, 0usize, 0usize);
    let mut newest: Option<Timestamp> = None;
    let there_at = |at: Timestamp| {
        observed
            .instances
            .iter()
            .zip(series)
            .filter(move |(i, _)| i.launched_at <= at && i.lifecycle != Lifecycle::Terminating)
    };
    for (instance, points) in there_at(t) {
        let is_ready = !instance.is_warming(warmup, t);
        let point = points.and_then(|points| latest_in(points, t));
        match (is_ready, point) {
            (true, Some(point)) => {
                sum += point.value;
                count += 1;
                newest = newest.max(Some(point.at));
            }
            (true, None) => missing += 1,
            (false, _) => unready += 1,
        }
    }
    let newest = newest?;
    let mean = sum / count as f64;
    // The HPA reads fresh metrics of the pods that exist now; CloudWatch's
    // datapoints are minutes late (`cloudwatch::INGESTION_DELAY`), so the
    // newest may come from before a scale-in, when more instances shared
    // the load. Those gone since served it at the same mean: count them,
    // else the load of 40 instances, read as if the 4 left had carried it,
    // asks for far too few (40 -> 4 -> 2, then out to 3 again).
    if history.last_scale_in.is_some_and(|start| start > newest) {
        let served_then = capacity_at(observed.desired, &history.changes, newest) as usize;
        for _ in 0..served_then.saturating_sub(there_at(newest).count()) {
            sum += mean;
            count += 1;
        }
    }
    let ratio = mean / policy.target;
    let within = |ratio: f64| policy.within_tolerance(ratio);
    let ceil = |ratio: f64, count: usize| (ratio * count as f64 - 1e-9).ceil().max(0.0) as u32;
    if missing == 0 && unready == 0 {
        let capacity = if within(ratio) { current } else { ceil(ratio, count) };
        return Some(Recommendation { capacity, mean, newest });
    }
    let scale_out = ratio > 1.0;
    // Conservative guesses: on a scale-in a silent instance may be busy (100%
    // of target); on a scale-out it and a warming one may be idle (0).
    let guess = if scale_out { 0.0 } else { policy.target };
    for _ in 0..missing {
        sum += guess;
        count += 1;
    }
    if scale_out {
        for _ in 0..unready {
            sum += 0.0;
            count += 1;
        }
    }
    let new_ratio = sum / count as f64 / policy.target;
    // The guesses may flip the direction or land in the band: then stay.
    let capacity = if within(new_ratio) || (scale_out && new_ratio < 1.0) || (!scale_out && new_ratio > 1.0) {
        current
    } else {
        ceil(new_ratio, count)
    };
    Some(Recommendation { capacity, mean, newest })
}

/// The HPA's rate limit for one direction: from the capacity at the start of
/// each policy's period (now minus the changes made within it), the limit
/// each policy allows, then the largest (`max`) or smallest (`min`) change.
fn rate_limit(behavior: &Behavior, current: u32, activities: &[Activity], now: Timestamp, scale_out: bool) -> u32 {
    if behavior.select == Select::Disabled {
        return current;
    }
    let proposals = behavior.policies.iter().map(|rate| {
        let since = now - SignedDuration::try_from(rate.period).unwrap_or(SignedDuration::ZERO);
        let (added, removed) = activities
            .iter()
            .filter(|a| a.start > since)
            .fold((0i64, 0i64), |(up, down), a| {
                let change = i64::from(a.to) - i64::from(a.from);
                if change > 0 {
                    (up + change, down)
                } else {
                    (up, down - change)
                }
            });
        let start = (i64::from(current) - added + removed).max(0) as f64;
        let proposed = match (rate.percent, rate.instances, scale_out) {
            (Some(p), _, true) => (start * (1.0 + f64::from(p) / 100.0)).ceil(),
            (Some(p), _, false) => (start * (1.0 - f64::from(p) / 100.0)).trunc(),
            (None, Some(n), true) => start + f64::from(n),
            (None, Some(n), false) => start - f64::from(n),
            (None, None, _) => f64::from(current),
        };
        proposed.max(0.0) as u32
    });
    // For a scale-out the largest change is the highest limit; for a
    // scale-in it is the lowest.
    let pick_highest = (behavior.select == Select::Max) == scale_out;
    let limit = if pick_highest { proposals.max() } else { proposals.min() };
    limit.unwrap_or(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local cloud's metrics reach the functions as JSON: a float read
    /// back is the float written (serde_json's `float_roundtrip`; without
    /// it this CPU reading came back one ulp off and the local cloud's
    /// test of GetMetricData failed now and then). `load` sits beside the
    /// per-instance metrics, and is left out when empty.
    #[test]
    fn a_metric_history_reads_back_from_json_exactly() {
        let at: Timestamp = "2026-11-20T11:00:00Z".parse().expect("time");
        let point = Datapoint {
            at,
            value: 3.8244972050278316,
        };
        let mut history = MetricHistory::default();
        history
            .metrics
            .insert("cpu".into(), BTreeMap::from([("i-1".to_string(), vec![point])]));
        let text = serde_json::to_string(&history).expect("json");
        assert!(!text.contains("load"), "{text}");
        assert_eq!(
            serde_json::from_str::<MetricHistory>(&text).expect("reads back"),
            history
        );
        history.load = vec![point];
        let text = serde_json::to_string(&history).expect("json");
        assert_eq!(
            serde_json::from_str::<MetricHistory>(&text).expect("reads back"),
            history
        );
    }

    /// The piecewise match and the written cause are one format: a tick's
    /// own cause matches; another key (even one extending it), another
    /// minute, or another trigger's cause does not.
    #[test]
    fn a_tick_cause_matches_only_its_own_tick() {
        let at: Timestamp = "2026-11-20T11:07:00Z".parse().expect("time");
        let other: Timestamp = "2026-11-20T11:06:00Z".parse().expect("time");
        let matches = |cause: &str| is_tick_cause(cause, "cpu", at, &mut None);
        assert!(matches(&tick_cause("cpu", at)));
        assert!(!matches(&tick_cause("cpu_demand", at)));
        assert!(!matches(&tick_cause("cpu", other)));
        assert!(!matches("alarm web-cpu-high at 2026-11-20T11:07:00Z"));
        assert!(!matches(&format!("{} ", tick_cause("cpu", at))));
    }

    /// The scan the binary search replaced (issue 23): the newest datapoint
    /// at or before `t`, at most FRESHNESS old; the last of equal times.
    fn scan<'a>(series: &'a BTreeMap<String, Vec<Datapoint>>, id: &str, t: Timestamp) -> Option<&'a Datapoint> {
        series.get(id).and_then(|points| {
            points
                .iter()
                .filter(|d| d.at <= t && elapsed(d.at, t) <= FRESHNESS)
                .max_by_key(|d| d.at)
        })
    }

    #[test]
    fn the_binary_search_finds_what_the_scan_found() {
        // Sorted, reversed and shuffled series with repeated times, and
        // times before, inside and after them.
        let base: Timestamp = "2026-12-07T00:00:00Z".parse().expect("base");
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for round in 0..500 {
            let mut points: Vec<Datapoint> = (0..next(40))
                .map(|k| Datapoint {
                    at: base + SignedDuration::from_mins(next(90) as i64),
                    value: k as f64,
                })
                .collect();
            match round % 3 {
                0 => points.sort_by_key(|d| d.at),
                1 => points.sort_by_key(|d| std::cmp::Reverse(d.at)),
                _ => {}
            }
            let series = BTreeMap::from([("i-1".to_string(), points)]);
            let ordered = Ordered::new(&series);
            for _ in 0..20 {
                let t = base + SignedDuration::from_secs(next(100 * 60) as i64 - 300);
                assert_eq!(
                    ordered.latest("i-1", t),
                    scan(&series, "i-1", t),
                    "round {round} at {t}"
                );
            }
            assert_eq!(ordered.latest("i-2", base), None);
        }
    }

    #[test]
    fn demand_factor_is_requests_over_those_answered_without_a_5xx() {
        // (RequestCount, HTTPCode_Target_5XX_Count) of a minute -> factor.
        let cases = [
            ("nothing shed", Some(6000.0), Some(0.0), 1.0),
            (
                "no 5xx datapoint: the ALB publishes it only when nonzero",
                Some(6000.0),
                None,
                1.0,
            ),
            ("no requests: the ALB publishes nothing, CPU stands", None, None, 1.0),
            ("half shed: twice the work", Some(6000.0), Some(3000.0), 2.0),
            ("three quarters shed", Some(6000.0), Some(4500.0), 4.0),
            ("all shed: capped", Some(6000.0), Some(6000.0), MAX_DEMAND_FACTOR),
            (
                "more 5xx than requests (two periods' edges): capped",
                Some(100.0),
                Some(150.0),
                MAX_DEMAND_FACTOR,
            ),
            ("just under the cap", Some(1000.0), Some(899.0), 1000.0 / 101.0),
            ("a negative or NaN count is no count", Some(f64::NAN), Some(-1.0), 1.0),
        ];
        for (name, requests, errors, want) in cases {
            let got = demand_factor(requests, errors);
            assert!((got - want).abs() < 1e-9, "{name}: {got} != {want}");
        }
    }

    #[test]
    fn cpu_demand_scales_each_minute_by_that_minutes_factor() {
        let at = |m: i64| Timestamp::from_second(1_765_000_800 + 60 * m).expect("time");
        let point = |m: i64, value: f64| Datapoint { at: at(m), value };
        let cpu = [point(0, 40.0), point(1, 100.0), point(2, 100.0)];
        // Minute 1: half shed; minute 2: no load balancer datapoint.
        let requests = [point(0, 100.0), point(1, 6000.0)];
        let errors = [point(1, 3000.0)];
        let demand = cpu_demand(&cpu, &requests, &errors);
        let values: Vec<f64> = demand.iter().map(|d| d.value).collect();
        assert_eq!(values, [40.0, 200.0, 100.0]);
        assert_eq!(demand.iter().map(|d| d.at).collect::<Vec<_>>(), [at(0), at(1), at(2)]);
    }
}

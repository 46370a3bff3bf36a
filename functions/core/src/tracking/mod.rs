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

mod recommend;
mod tick;

use recommend::*;
pub(crate) use tick::decide;
use tick::*;

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

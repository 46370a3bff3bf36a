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
//! - scale-in terminates instances still booting first, then the oldest.

use std::collections::BTreeMap;
use std::time::Duration;

use functions::cloudwatch;
use functions::decide::{
    Action, Activity, AlarmState, AlarmStatus, Datapoint, DecideError, Decision, Instance, Lifecycle, MetricHistory,
    Observation, Trigger, decide,
};
use functions::policy::{AlarmPolicy, GroupPolicy, Policy, PolicyError, PredefinedMetric, Statistic, TrackedMetric};
use functions::schedule::ScheduleExpr;
use functions::tracking::metric_key;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::trace::Trace;

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
}

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
    pub shortfalls: Vec<Shortfall>,
    pub surges: Vec<Surge>,
    pub actions: Vec<ScalingAction>,
    pub timeline: Vec<Minute>,
}

#[derive(Debug, Clone)]
struct SimInstance {
    id: String,
    launched_at: Timestamp,
    ready_at: Timestamp,
}

#[derive(Debug, Clone)]
struct AlarmSim {
    policy: AlarmPolicy,
    /// The newest datapoint judged: (its period start, value).
    newest: Option<(Timestamp, f64)>,
    state: AlarmState,
    since: Timestamp,
}

impl AlarmSim {
    fn status(&self) -> AlarmStatus {
        AlarmStatus {
            name: self.policy.alarm.clone(),
            state: self.state,
            state_since: self.since,
            value: self.newest.map(|(_, v)| v),
            data_at: self.newest.map(|(at, _)| at),
        }
    }
}

struct Sim<'a> {
    group: &'a GroupPolicy,
    model: Model,
    min: u32,
    max: u32,
    desired: u32,
    instances: Vec<SimInstance>,
    launched: u64,
    activities: Vec<Activity>,
    actions: Vec<ScalingAction>,
    /// Per-minute group CPU and request rate (for alarms) and per-instance CPU.
    /// The alarms' series, a value a minute where CloudWatch has one:
    /// the group's CPU (none with no instance), the load balancer's requests
    /// per target (none with no target or no request) and its 503s for
    /// want of a target (HTTPCode_ELB_503_Count: none unless nonzero).
    cpu: Vec<(Timestamp, f64)>,
    per_target: Vec<(Timestamp, f64)>,
    no_target: Vec<(Timestamp, f64)>,
    /// Per tracked metric key, per instance: the minute datapoints.
    per_instance: BTreeMap<String, BTreeMap<String, Vec<Datapoint>>>,
}

const MINUTE: SignedDuration = SignedDuration::from_secs(60);
/// Metric history kept for decisions: the functions' (longest window a policy may use).
const HISTORY: SignedDuration = SignedDuration::from_secs(functions::policy::HISTORY.as_secs() as i64);

impl Sim<'_> {
    fn observation(&self, now: Timestamp) -> Observation {
        Observation {
            min: self.min,
            max: self.max,
            desired: self.desired,
            instances: self
                .instances
                .iter()
                .map(|i| Instance {
                    id: i.id.clone(),
                    lifecycle: if i.ready_at <= now {
                        Lifecycle::InService
                    } else {
                        Lifecycle::Pending
                    },
                    launched_at: i.launched_at,
                    protected: false,
                })
                .collect(),
        }
    }

    /// The tracked metrics as CloudWatch shows them at `now`.
    fn history(&self, now: Timestamp) -> MetricHistory {
        let mut history = MetricHistory::default();
        let delay = self.model.ingestion_delay;
        for (key, instances) in &self.per_instance {
            let recent = instances
                .iter()
                .map(|(id, points)| {
                    let recent: Vec<Datapoint> = points
                        .iter()
                        .filter(|d| d.at >= now - HISTORY && cloudwatch::readable(d.at, delay, now))
                        .copied()
                        .collect();
                    (id.clone(), recent)
                })
                .filter(|(_, points)| !points.is_empty())
                .collect();
            history.metrics.insert(key.clone(), recent);
        }
        history
    }

    fn decide(&mut self, trigger: &Trigger, now: Timestamp) -> Result<Decision, DecideError> {
        let observed = self.observation(now);
        let history = self.history(now);
        let since = now - HISTORY;
        let recent: Vec<Activity> = self.activities.iter().filter(|a| a.start >= since).cloned().collect();
        let decision = decide(self.group, &observed, &history, &recent, trigger, now)?;
        self.apply(&decision, now);
        Ok(decision)
    }

    fn apply(&mut self, decision: &Decision, now: Timestamp) {
        let (desired, limits) = match decision.action {
            Action::Hold => return,
            Action::SetDesired(n) => (n, None),
            Action::SetLimits { min, max, desired } => (desired, Some((min, max))),
        };
        if let Some((min, max)) = limits {
            (self.min, self.max) = (min, max);
        }
        let from = self.desired;
        self.desired = desired;
        let boot = SignedDuration::try_from(self.model.boot).unwrap_or(SignedDuration::ZERO);
        while (self.instances.len() as u32) < desired {
            self.launched += 1;
            self.instances.push(SimInstance {
                id: format!("i-{:06}", self.launched),
                launched_at: now,
                ready_at: now + boot,
            });
        }
        while self.instances.len() as u32 > desired {
            // Still booting first (newest), then the oldest in service.
            // (index 0 is the oldest in service)
            let index: usize = self
                .instances
                .iter()
                .rposition(|i| i.ready_at > now)
                .unwrap_or_default();
            let gone = self.instances.remove(index);
            for instances in self.per_instance.values_mut() {
                instances.remove(&gone.id);
            }
        }
        if from != desired {
            self.actions.push(ScalingAction {
                at: now,
                from,
                to: desired,
                reason: decision.reason.clone(),
            });
            self.activities.push(Activity {
                start: now,
                end: Some(if desired > from { now + boot } else { now }),
                from,
                to: desired,
                cause: decision.cause.clone().unwrap_or_default(),
            });
        }
    }
}

/// The value an alarm reads at `now` for a period ending at `end`: only
/// the minutes CloudWatch shows by then.
fn period_value(policy: &AlarmPolicy, sim: &Sim, end: Timestamp, (delay, now): (Duration, Timestamp)) -> Option<f64> {
    let period = SignedDuration::try_from(policy.period).ok()?;
    let start = end - period;
    let is_cpu = policy.metric.name == "CPUUtilization";
    let series = match policy.metric.name.as_str() {
        "CPUUtilization" => &sim.cpu,
        "HTTPCode_ELB_503_Count" => &sim.no_target,
        // RequestCountPerTarget, the only other metric a policy may watch.
        _ => &sim.per_target,
    };
    let values: Vec<f64> = series
        .iter()
        .filter(|(t, _)| *t >= start && *t < end && cloudwatch::readable(*t, delay, now))
        .map(|(_, v)| *v)
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some(match (is_cpu, policy.metric.stat) {
        // Counts a minute (requests per target, 503s): the period's total.
        (false, Statistic::Sum) => values.iter().sum(),
        (_, Statistic::Maximum) => values.iter().copied().fold(f64::MIN, f64::max),
        (_, Statistic::Minimum) => values.iter().copied().fold(f64::MAX, f64::min),
        _ => mean,
    })
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

/// The oracle: a perfect operator who knows the load in advance. Each
/// minute exactly ceil(load / (capacity_rps x U)) instances are in service
/// (at least `min`), each launched one boot time before the minute it is
/// first needed and billed from launch, terminated as soon as no later
/// minute within a boot time needs it. Returns the billed instances of
/// every minute: the most any minute from it to a boot time later needs
/// (an instance in service at minute m was launched by m - boot, so it is
/// billed at every minute from then to m; and that many suffice).
pub fn oracle_instances(trace: &Trace, model: &Model, min: u32) -> Vec<u32> {
    let per_instance = model.capacity_rps * model.oracle_utilisation;
    let needed: Vec<u32> = trace
        .samples
        .iter()
        // The small slack keeps 3.0000000001 instances of load at 3.
        .map(|s| ((s.rps / per_instance - 1e-9).ceil().max(0.0) as u32).max(min))
        .collect();
    // Whole minutes of boot billed before the first minute in service (the
    // replay counts billed instances at each minute's start).
    let boot_minutes = model.boot.as_secs().div_ceil(60) as usize;
    // Sliding maximum over [t, t + boot_minutes]: a deque of indices with
    // decreasing needs, so a year of minutes stays linear.
    let mut billed = vec![0; needed.len()];
    let mut window: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for t in (0..needed.len()).rev() {
        while window.back().is_some_and(|&k| needed[k] <= needed[t]) {
            window.pop_back();
        }
        window.push_back(t);
        while window.front().is_some_and(|&k| k > t + boot_minutes) {
            window.pop_front();
        }
        billed[t] = window.front().map_or(0, |&k| needed[k]);
    }
    billed
}

/// Replays `trace` through `group` under `model`.
///
/// Fails only if the simulated group reaches a state decide() refuses
/// (min above max), which a validated policy cannot produce.
pub fn run(trace: &Trace, group: &GroupPolicy, model: Model) -> Result<Report, DecideError> {
    let first = trace.samples[0].at;
    let desired = group.desired.unwrap_or(group.min);
    let mut sim = Sim {
        group,
        model,
        min: group.min,
        max: group.max,
        desired,
        instances: (0..desired)
            .map(|i| SimInstance {
                id: format!("i-start{i:03}"),
                launched_at: first - SignedDuration::from_hours(24),
                ready_at: first - SignedDuration::from_hours(24),
            })
            .collect(),
        launched: 0,
        activities: Vec::new(),
        actions: Vec::new(),
        cpu: Vec::new(),
        per_target: Vec::new(),
        no_target: Vec::new(),
        per_instance: BTreeMap::new(),
    };
    let mut alarms: Vec<AlarmSim> = group
        .alarm_policies
        .iter()
        .map(|p| AlarmSim {
            policy: p.clone(),
            newest: None,
            state: AlarmState::InsufficientData,
            since: first,
        })
        .collect();
    // Minutes kept: the decisions' history, and every alarm's evaluation
    // range with the minutes still being ingested.
    let keep = group
        .alarm_policies
        .iter()
        .map(|p| {
            let range = cloudwatch::evaluation_range(p) as u32;
            SignedDuration::try_from(p.period * range + model.ingestion_delay).unwrap_or(HISTORY)
        })
        .fold(HISTORY, SignedDuration::max);
    let schedules: Vec<(String, ScheduleExpr, TimeZone)> = group
        .schedules
        .iter()
        .filter_map(|s| {
            let (expr, tz) = s.parsed().ok()?;
            Some((s.name.clone(), expr, tz))
        })
        .collect();

    let mut timeline = Vec::with_capacity(trace.samples.len());
    let (mut billed_minutes, mut requests, mut over, mut over_minutes, mut highest) = (0u64, 0.0, 0.0, 0u64, 0.0f64);
    let mut shortfalls: Vec<Shortfall> = Vec::new();
    let mut short_since: Option<Timestamp> = None;
    for sample in &trace.samples {
        let t = sample.at;
        let now = t + MINUTE;
        let in_service = sim.instances.iter().filter(|i| i.ready_at <= t).count() as u32;
        let capacity = f64::from(in_service) * model.capacity_rps;
        let cpu = if capacity > 0.0 {
            (100.0 * sample.rps / capacity).min(100.0)
        } else {
            100.0
        };
        let over_rps = (sample.rps - capacity).max(0.0);
        requests += sample.rps * 60.0;
        over += over_rps * 60.0;
        highest = highest.max(if capacity > 0.0 {
            100.0 * sample.rps / capacity
        } else {
            f64::INFINITY
        });
        billed_minutes += sim.instances.len() as u64;
        if over_rps > 0.0 {
            over_minutes += 1;
            short_since.get_or_insert(t);
        } else if let Some(start) = short_since.take() {
            shortfalls.push(Shortfall {
                start,
                minutes: (t.duration_since(start).as_secs() / 60) as u64,
            });
        }
        timeline.push(Minute {
            at: t,
            rps: sample.rps,
            instances: sim.instances.len() as u32,
            in_service,
            cpu_percent: cpu,
        });
        // The minute's datapoints, available at its end.
        if !sim.instances.is_empty() {
            sim.cpu.push((t, cpu));
        }
        if sample.rps > 0.0 {
            if in_service > 0 {
                sim.per_target.push((t, sample.rps * 60.0 / f64::from(in_service)));
            } else {
                sim.no_target.push((t, sample.rps * 60.0));
            }
        }
        for policy in &group.target_tracking {
            // What each in-service instance reports for the minute.
            let value = match &policy.metric {
                TrackedMetric::Predefined(PredefinedMetric::Cpu) => cpu,
                // ALB RequestCountPerTarget: requests in the minute per target.
                TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => {
                    sample.rps * 60.0 / f64::from(in_service.max(1))
                }
                // A custom per-instance load metric: requests/s per instance.
                TrackedMetric::Custom(_) => sample.rps / f64::from(in_service.max(1)),
            };
            let series = sim.per_instance.entry(metric_key(&policy.metric)).or_default();
            for instance in sim.instances.iter().filter(|i| i.ready_at <= t) {
                series
                    .entry(instance.id.clone())
                    .or_default()
                    .push(Datapoint { at: t, value });
            }
        }
        let keep_from = now - keep;
        for series in [&mut sim.cpu, &mut sim.per_target, &mut sim.no_target] {
            series.retain(|(at, _)| *at >= keep_from);
        }
        for points in sim.per_instance.values_mut().flat_map(|m| m.values_mut()) {
            points.retain(|d| d.at >= keep_from);
        }

        // Alarms evaluate every minute (`cloudwatch::evaluation_end`), over
        // their evaluation range of periods ending then, as CloudWatch shows
        // it then; a change is an event.
        for alarm in &mut alarms {
            let period = alarm.policy.period.as_secs() as i64;
            if period == 0 || cloudwatch::evaluation_end(alarm.policy.period, now) != now {
                continue;
            }
            let values = cloudwatch::read_range(&alarm.policy, now, |end| {
                period_value(&alarm.policy, &sim, end, (model.ingestion_delay, now))
            });
            let judged = cloudwatch::judge(&alarm.policy, &values, alarm.state);
            alarm.newest = judged
                .evaluated
                .last()
                .map(|(k, v)| (cloudwatch::period_start(&alarm.policy, now, values.len(), *k), *v));
            if judged.state != alarm.state {
                alarm.state = judged.state;
                alarm.since = now;
                let _ = sim.decide(&Trigger::Alarm(alarm.status()), now)?;
            }
        }
        for (name, expr, tz) in &schedules {
            for at in expr.fires_between(t, now, tz) {
                let _ = sim.decide(&Trigger::Scheduled { name: name.clone(), at }, now)?;
            }
        }
        let in_alarm: Vec<AlarmStatus> = alarms
            .iter()
            .filter(|a| a.state == AlarmState::Alarm)
            .map(AlarmSim::status)
            .collect();
        let _ = sim.decide(
            &Trigger::Tick {
                at: now,
                alarms: in_alarm,
            },
            now,
        )?;
    }
    if let (Some(start), Some(last)) = (short_since, trace.samples.last()) {
        shortfalls.push(Shortfall {
            start,
            minutes: (last.at.duration_since(start).as_secs() / 60) as u64 + 1,
        });
    }
    let hours = trace.samples.len() as f64 / 60.0;
    let fixed_peak_instances = peak_instances(trace, &model);
    let instance_hours = billed_minutes as f64 / 60.0;
    let fixed_peak_instance_hours = f64::from(fixed_peak_instances) * hours;
    let oracle_instance_hours = oracle_instances(trace, &model, group.min)
        .iter()
        .map(|&n| u64::from(n))
        .sum::<u64>() as f64
        / 60.0;
    Ok(Report {
        group: group.name.clone(),
        model,
        minutes: trace.samples.len(),
        instance_hours,
        cost: instance_hours * model.price_per_hour,
        fixed_peak_instances,
        fixed_peak_instance_hours,
        ratio_to_fixed_peak: instance_hours / fixed_peak_instance_hours,
        oracle_instance_hours,
        ratio_to_oracle: ratio(instance_hours, oracle_instance_hours),
        requests,
        requests_over_capacity: over,
        over_capacity_fraction: if requests > 0.0 { over / requests } else { 0.0 },
        minutes_over_capacity: over_minutes,
        highest_cpu_percent: highest,
        scaling_actions: sim.actions.len() as u32,
        surges: surges(&timeline, &sim.actions, model.capacity_rps),
        actions: sim.actions,
        shortfalls,
        timeline,
    })
}

/// `a / b`, 1 when both are 0 (a group at min 0 over a trace with no
/// load matches its oracle), infinite when only `b` is.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// Minutes before a surge whose mean is its baseline.
const BASELINE_MINUTES: usize = 30;

/// Finds the surges of a replay and how the group followed each.
pub fn surges(timeline: &[Minute], actions: &[ScalingAction], capacity_rps: f64) -> Vec<Surge> {
    let mut found = Vec::new();
    let mut i = BASELINE_MINUTES;
    while i < timeline.len() {
        let before = &timeline[i - BASELINE_MINUTES..i];
        let baseline = before.iter().map(|m| m.rps).sum::<f64>() / BASELINE_MINUTES as f64;
        if baseline <= 0.0 || timeline[i].rps < 2.0 * baseline {
            i += 1;
            continue;
        }
        let onset = i;
        let end = (onset..timeline.len()).find(|&j| timeline[j].rps < 2.0 * baseline);
        let peak = timeline[onset..end.unwrap_or(timeline.len())]
            .iter()
            .map(|m| m.rps)
            .fold(0.0, f64::max);
        let instances_before = timeline[onset - 1].instances;
        let covered =
            (onset..timeline.len()).find(|&j| f64::from(timeline[j].in_service) * capacity_rps >= timeline[j].rps);
        // Back at the baseline size: the first minute after the end with no
        // more instances than before the onset.
        let back = end.and_then(|e| (e..timeline.len()).find(|&j| timeline[j].instances <= instances_before));
        found.push((onset, end, baseline, peak, instances_before, covered, back));
        // The next surge needs a fresh baseline after this one ends.
        i = end.map_or(timeline.len(), |e| e + BASELINE_MINUTES.max(1));
    }
    let onsets: Vec<usize> = found.iter().map(|f| f.0).collect();
    found
        .iter()
        .enumerate()
        .map(|(k, &(onset, end, baseline, peak, instances_before, covered, back))| {
            let until = back
                .map(|b| b + 1)
                .into_iter()
                .chain(onsets.get(k + 1).copied())
                .min()
                .unwrap_or(timeline.len());
            let (from, to) = (timeline[onset].at, timeline.get(until).map(|m| m.at));
            let scaling_actions = actions
                .iter()
                .filter(|a| a.at >= from && to.is_none_or(|to| a.at < to))
                .count() as u32;
            Surge {
                onset: timeline[onset].at,
                end: end.map(|e| timeline[e].at),
                baseline_rps: baseline,
                peak_rps: peak,
                instances_before,
                minutes_to_capacity: covered.map(|c| (c - onset) as u64),
                scaling_actions,
                minutes_back_to_baseline: end.zip(back).map(|(e, b)| (b - e) as u64),
            }
        })
        .collect()
}

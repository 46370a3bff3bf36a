//! Predictive scaling with EC2 Auto Scaling's documented semantics ("How
//! predictive scaling works", "PredictiveScalingConfiguration"):
//!
//! - The forecast needs at least 24 hours of the load metric's history
//!   and reads up to the past 14 days. It is an hourly forecast for the next
//!   48 hours, issued again every 6 hours from the data in by then
//!   (issued at 00:00, 06:00, 12:00 and 18:00 UTC here).
//! - Capacity for an hour: the load forecast over the target, the metric
//!   pair's arithmetic (`ASGCPUUtilization`: total CPU over the target
//!   average CPU; `ALBRequestCount`: requests over the requests per
//!   target), rounded up.
//! - `forecast_only` (AWS's default) decides and explains, never acts;
//!   `forecast_and_scale` raises capacity to the forecast from the start of
//!   each hour, `scheduling_buffer` (default 300 s, less than 3600 s)
//!   early. It never scales in: with dynamic scaling the group gets "the
//!   higher of the two", so the hour's forecast is also a floor that a
//!   target-tracking or alarm scale-in does not go below.
//! - At max: `honor_max_capacity` (the default) stops at max;
//!   `increase_max_capacity` raises max to the forecast plus
//!   `max_capacity_buffer` percent of it (AWS's example: forecast 50, max
//!   40, buffer 10: effective max 55), and the raised max stays.
//!
//! The forecast itself (AWS's is a model it does not publish): the same
//! hour of the week, averaged over the weeks the history holds (up to
//! two); with less than a week behind that hour, the median of the same
//! hour of the days the history holds (up to 7). Daily and weekly patterns
//! are followed; a one-off (a holiday) is forecast as the pattern says, and
//! dynamic scaling handles the difference, as on AWS.
//!
//! The load, per hour, is the mean per-minute total of the metric over the
//! group (`hourly_load`), from CloudWatch's hourly `Sum`s: every part (the
//! AWS adapter, the local cloud, the backtest) computes it through this
//! module from the same sums.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::decide::{Action, Decision, Explain, Observation};
use crate::policy::{GroupPolicy, MaxCapacityBreach, PredefinedMetric, Predictive, PredictiveMode, TrackedMetric};
use crate::rule::{Code, Rule};
use crate::tracking::Datapoint;

/// At least this much history before a first forecast (AWS: "at least 24 hours of data").
pub const MIN_HISTORY: SignedDuration = SignedDuration::from_hours(24);
/// How far back a forecast reads (AWS: "up to the past 14 days").
pub const LOOKBACK: SignedDuration = SignedDuration::from_hours(14 * 24);
/// How far ahead a forecast reaches (AWS: "the next 48 hours").
pub const HORIZON: SignedDuration = SignedDuration::from_hours(48);
/// How often a forecast is issued again (AWS: "updated every 6 hours").
pub const REFRESH: SignedDuration = SignedDuration::from_hours(6);
/// The forecast's interval: one value an hour.
pub const HOUR: SignedDuration = SignedDuration::from_hours(1);
/// The largest scheduling buffer (AWS: "less than the forecast interval duration of 3600 seconds").
pub const MAX_SCHEDULING_BUFFER: Duration = Duration::from_secs(3600);

const WEEK: SignedDuration = SignedDuration::from_hours(7 * 24);
const DAY: SignedDuration = SignedDuration::from_hours(24);

fn floor_to(at: Timestamp, step: SignedDuration) -> Timestamp {
    let step = step.as_secs();
    Timestamp::from_second(at.as_second().div_euclid(step) * step).unwrap_or(at)
}

/// When the forecast in force at `now` was issued (the last 6-hour mark).
pub fn issued_at(now: Timestamp) -> Timestamp {
    floor_to(now, REFRESH)
}

/// The load history the forecast in force at `now` was made from:
/// `[issued - 14 days, issued)`. What every reader fetches.
pub fn window(now: Timestamp) -> (Timestamp, Timestamp) {
    let issued = issued_at(now);
    (issued - LOOKBACK, issued)
}

/// The hour whose forecast applies at `now`: the one starting within the
/// scheduling buffer (AWS: forecast at 10:00 with 5 minutes of buffer, the
/// instances launch at 9:55).
pub fn hour_served(now: Timestamp, buffer: Duration) -> Timestamp {
    let buffer = SignedDuration::try_from(buffer).unwrap_or(SignedDuration::ZERO);
    floor_to(now + buffer, HOUR)
}

/// The series a load is made of, as CloudWatch's `Sum` over each hour:
/// the group's CPU (`AWS/EC2 CPUUtilization` by `AutoScalingGroupName`,
/// one datapoint per instance and minute), and its load balancer's
/// `RequestCount` and `HTTPCode_Target_5XX_Count` (by `LoadBalancer`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourlySums {
    #[serde(default)]
    pub cpu: Vec<Datapoint>,
    #[serde(default)]
    pub requests: Vec<Datapoint>,
    #[serde(default)]
    pub shed: Vec<Datapoint>,
}

/// Which of [`HourlySums`] the load of `metric` needs: (cpu, requests, shed).
pub fn sums_needed(metric: &TrackedMetric) -> (bool, bool, bool) {
    match metric {
        TrackedMetric::Predefined(PredefinedMetric::Cpu) => (true, false, false),
        TrackedMetric::Predefined(PredefinedMetric::CpuDemand) => (true, true, true),
        TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => (false, true, false),
        TrackedMetric::Custom(_) => (false, false, false),
    }
}

/// Sums each hour of minute samples `(minute start, value)`: what
/// CloudWatch's `Sum` at a 3600 s period answers. Hours without a sample
/// are left out.
pub fn hourly_sums(samples: impl IntoIterator<Item = (Timestamp, f64)>) -> Vec<Datapoint> {
    let mut hours: BTreeMap<Timestamp, f64> = BTreeMap::new();
    for (at, value) in samples {
        if value.is_finite() {
            *hours.entry(floor_to(at, HOUR)).or_default() += value;
        }
    }
    hours.into_iter().map(|(at, value)| Datapoint { at, value }).collect()
}

/// The group's load an hour, as the mean per-minute total over the group:
/// total CPU (percent, summed over instances) for `cpu`; that times the
/// hour's requests over those answered without a 5xx for `cpu_demand`
/// ([`crate::tracking::demand_factor`]); requests a minute for
/// `request_count_per_target`. Divided by its target, that is instances.
pub fn hourly_load(metric: &TrackedMetric, sums: &HourlySums) -> Vec<Datapoint> {
    let per_minute = |d: &Datapoint| Datapoint {
        at: d.at,
        value: d.value / 60.0,
    };
    let find = |series: &[Datapoint], at: Timestamp| series.iter().find(|d| d.at == at).map(|d| d.value);
    match metric {
        TrackedMetric::Predefined(PredefinedMetric::Cpu) => sums.cpu.iter().map(per_minute).collect(),
        TrackedMetric::Predefined(PredefinedMetric::CpuDemand) => sums
            .cpu
            .iter()
            .map(|d| {
                let factor = crate::tracking::demand_factor(find(&sums.requests, d.at), find(&sums.shed, d.at));
                Datapoint {
                    at: d.at,
                    value: d.value * factor / 60.0,
                }
            })
            .collect(),
        TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => {
            sums.requests.iter().map(per_minute).collect()
        }
        TrackedMetric::Custom(_) => Vec::new(),
    }
}

/// What the forecast of an hour was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The same hour of the week, over this many weeks.
    Weekly(u32),
    /// The median of the same hour of this many days.
    Daily(u32),
}

/// One hour's forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The hour it is for (its start).
    pub hour: Timestamp,
    /// When it was issued.
    pub issued: Timestamp,
    /// The load forecast (see [`hourly_load`]).
    pub load: f64,
    /// The capacity it needs: `ceil(load / target)`.
    pub capacity: u32,
    pub basis: Basis,
}

/// The forecast in force at `now` for the hour `hour`, from `load`
/// (hourly, any order; only hours of the window before the issue time are
/// read). Err says why there is none.
pub fn forecast(policy: &Predictive, load: &[Datapoint], hour: Timestamp, now: Timestamp) -> Result<Forecast, String> {
    let issued = issued_at(now);
    let (since, until) = (issued - LOOKBACK, issued);
    let known: BTreeMap<Timestamp, f64> = load
        .iter()
        .filter(|d| d.at >= since && d.at < until && d.value.is_finite())
        .map(|d| (floor_to(d.at, HOUR), d.value))
        .collect();
    // "At least 24 hours of data": hours with a datapoint, not a span.
    if (known.len() as i64) < MIN_HISTORY.as_hours() {
        return Err(format!(
            "{} h of load history in the 14 days before {issued}: the forecast needs at least 24 hours",
            known.len()
        ));
    }
    if hour < issued || hour >= issued + HORIZON {
        return Err(format!(
            "{hour} is outside the forecast issued at {issued} (48 hours from then)"
        ));
    }
    let weekly: Vec<f64> = (1..=2)
        .filter_map(|weeks| known.get(&(hour - WEEK * weeks)).copied())
        .collect();
    let (value, basis) = if weekly.is_empty() {
        let mut daily: Vec<f64> = (1..=7)
            .filter_map(|days| known.get(&(hour - DAY * days)).copied())
            .collect();
        let Some(median) = crate::policy::median(&mut daily) else {
            return Err(format!("no load history at the hour of day of {hour}"));
        };
        (median, Basis::Daily(daily.len() as u32))
    } else {
        let mean = weekly.iter().sum::<f64>() / weekly.len() as f64;
        (mean, Basis::Weekly(weekly.len() as u32))
    };
    let needed = (value.max(0.0) / policy.target).ceil();
    Ok(Forecast {
        hour,
        issued,
        load: value,
        capacity: if needed >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            needed as u32
        },
        basis,
    })
}

/// `decision` (of a tick or an alarm) combined with the group's predictive
/// policy at `now`: in `forecast_and_scale`, the higher of the forecast
/// and the decision, never a scale-in by the forecast; in `forecast_only`,
/// the decision unchanged with the forecast explained.
pub fn combine(
    group: &GroupPolicy,
    observed: &Observation,
    load: &[Datapoint],
    decision: Decision,
    now: Timestamp,
    explain: Explain,
) -> Decision {
    let Some(policy) = &group.predictive else {
        return decision;
    };
    let hour = hour_served(now, policy.scheduling_buffer);
    let quiet = explain == Explain::ActionsOnly && decision.action == Action::Hold;
    let forecast = match forecast(policy, load, hour, now) {
        Ok(forecast) => forecast,
        Err(why) => {
            let mut decision = decision;
            if !quiet {
                decision
                    .rules
                    .push(Rule::new(Code::NoForecast, format!("predictive: no forecast: {why}")));
            }
            return decision;
        }
    };
    let basis = match forecast.basis {
        Basis::Weekly(n) => format!("the same hour of {n} week(s)"),
        Basis::Daily(n) => format!("the median of the same hour of {n} day(s)"),
    };
    let needs = format!(
        "the forecast for {} needs {} (load {:.1} / target {}, {basis}, issued {})",
        forecast.hour, forecast.capacity, forecast.load, policy.target, forecast.issued
    );
    if policy.mode == PredictiveMode::ForecastOnly {
        let mut decision = decision;
        if !quiet {
            decision.rules.push(Rule::new(
                Code::ForecastOnly,
                format!("predictive (forecast_only): {needs}; not acted on"),
            ));
        }
        return decision;
    }
    // The capacity the forecast may set, and the max it may need.
    let (floor, raised_max) = match policy.max_capacity_breach {
        MaxCapacityBreach::HonorMaxCapacity => (forecast.capacity.min(observed.max), None),
        MaxCapacityBreach::IncreaseMaxCapacity => {
            // In whole instances: 50 + 10% is 55, not a float's 55.000...1.
            let buffer = u64::from(policy.max_capacity_buffer.unwrap_or(0));
            let capacity = u64::from(forecast.capacity);
            let effective = capacity + (capacity * buffer).div_ceil(100);
            let effective = u32::try_from(effective).unwrap_or(u32::MAX);
            (forecast.capacity, (effective > observed.max).then_some(effective))
        }
    };
    let floor = floor.max(observed.min);
    let after = decision.desired_after();
    if after >= floor {
        return decision;
    }
    let current = observed.desired;
    let cause = Some(format!(
        "predictive {} hour {} issued {}",
        group.name, forecast.hour, forecast.issued
    ));
    if floor > current {
        let mut rules = vec![Rule::new(Code::Predictive, format!("predictive: {needs}"))];
        if forecast.capacity > floor {
            rules.push(Rule::new(
                Code::Clamped,
                format!("clamped to max {} (honor_max_capacity)", observed.max),
            ));
        }
        let action = match raised_max {
            Some(max) => {
                rules.push(Rule::new(
                    Code::Predictive,
                    format!(
                        "max raised {} -> {max} (increase_max_capacity, buffer {}%); it stays raised",
                        observed.max,
                        policy.max_capacity_buffer.unwrap_or(0)
                    ),
                ));
                Action::SetLimits {
                    min: observed.min,
                    max,
                    desired: floor,
                }
            }
            None => Action::SetDesired(floor),
        };
        if decision.action != Action::Hold {
            rules.push(Rule::new(
                Code::Proposals,
                format!("higher than the dynamic decision ({current} -> {after})"),
            ));
        }
        return Decision {
            action,
            code: Code::Predictive,
            reason: format!("predictive: {current} -> {floor} for {}", forecast.hour),
            rules,
            from: current,
            cause,
        };
    }
    // A scale-in below the hour's forecast: only as far as the forecast.
    let mut rules = decision.rules;
    rules.push(Rule::new(
        Code::Predictive,
        format!("predictive: scale-in stops at {floor}: {needs}"),
    ));
    if floor == current {
        return Decision::hold(
            current,
            Code::Predictive,
            format!("predictive: stay at {current}, the forecast for {}", forecast.hour),
            rules,
        );
    }
    Decision {
        action: Action::SetDesired(floor),
        code: decision.code,
        reason: format!("{} (stops at the forecast {floor})", decision.reason),
        rules,
        from: current,
        cause: decision.cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Instance, Lifecycle};
    use crate::policy::Policy;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn group(extra: &str) -> GroupPolicy {
        let text = format!(
            "[[group]]\nname = \"web\"\nmin = 2\nmax = 10\n\n[group.predictive]\nmetric = \"cpu\"\ntarget = 50\n{extra}"
        );
        Policy::parse("test.toml", &text).expect("valid").groups.remove(0)
    }

    fn observed(desired: u32, max: u32) -> Observation {
        Observation {
            min: 2,
            max,
            desired,
            instances: (0..desired)
                .map(|i| Instance {
                    id: format!("i-{i}"),
                    lifecycle: Lifecycle::InService,
                    launched_at: at("2026-11-01T00:00:00Z"),
                    protected: false,
                })
                .collect(),
        }
    }

    /// Hourly load from `first` for `hours` hours: `busy` (total CPU
    /// percent) from 09:00 to 18:00 on every day `working` says, 100 otherwise.
    fn load(first: &str, hours: i64, busy: f64, working: impl Fn(i64) -> bool) -> Vec<Datapoint> {
        let first = at(first);
        (0..hours)
            .map(|h| {
                let at = first + HOUR * h as i32;
                let day = (at.as_second() - first.as_second()).div_euclid(86_400);
                let hour = at.as_second().rem_euclid(86_400) / 3600;
                let value = if working(day) && (9..18).contains(&hour) {
                    busy
                } else {
                    100.0
                };
                Datapoint { at, value }
            })
            .collect()
    }

    fn hold(from: u32) -> Decision {
        Decision::hold(from, Code::TargetTracking, "within tolerance", vec![])
    }

    /// "How predictive scaling works": at least 24 hours of data before a
    /// first forecast, issued every 6 hours from the data in by then.
    #[test]
    fn aws_needs_24_hours_of_load_and_issues_a_forecast_every_6_hours() {
        let policy = group("").predictive.expect("predictive");
        let history = load("2026-11-16T00:00:00Z", 23, 500.0, |_| true);
        // Issued at 2026-11-17T00:00 with 23 hours in: none yet.
        let now = at("2026-11-17T05:00:00Z");
        let error = forecast(&policy, &history, at("2026-11-17T09:00:00Z"), now).expect_err("too little");
        assert!(
            error.contains("23 h of load history") && error.contains("24 hours"),
            "{error}"
        );
        let history = load("2026-11-16T00:00:00Z", 24, 500.0, |_| true);
        let f = forecast(&policy, &history, at("2026-11-17T09:00:00Z"), now).expect("a forecast");
        assert_eq!(
            (f.issued, f.load, f.capacity, f.basis),
            (at("2026-11-17T00:00:00Z"), 500.0, 10, Basis::Daily(1))
        );
        // Data newer than the issue (06:00) is not read until the next one.
        let mut newer = history.clone();
        newer.push(Datapoint {
            at: at("2026-11-17T03:00:00Z"),
            value: 9000.0,
        });
        assert_eq!(
            forecast(&policy, &newer, at("2026-11-17T09:00:00Z"), now).expect("forecast"),
            f
        );
        assert_eq!(issued_at(at("2026-11-17T17:59:59Z")), at("2026-11-17T12:00:00Z"));
        assert_eq!(window(now), (at("2026-11-03T00:00:00Z"), at("2026-11-17T00:00:00Z")));
        // "the next 48 hours" from the issue, no further.
        assert!(forecast(&policy, &history, at("2026-11-19T00:00:00Z"), now).is_err());
    }

    /// Daily and weekly patterns: the same hour of the week once the
    /// history holds it, else the median of the same hour of each day.
    #[test]
    fn the_same_hour_of_the_week_once_known_else_the_median_of_the_days() {
        let policy = group("").predictive.expect("predictive");
        // Monday 2026-11-16 .. Sunday: weekdays busy (500), weekends 100.
        let weekdays = |day: i64| day.rem_euclid(7) < 5;
        let week = load("2026-11-16T00:00:00Z", 7 * 24, 500.0, weekdays);
        // Saturday 2026-11-21 10:00 from the days before (Mon-Fri busy): the median, 500.
        let now = at("2026-11-21T06:00:00Z");
        let f = forecast(&policy, &week, at("2026-11-21T10:00:00Z"), now).expect("daily");
        assert_eq!((f.load, f.basis), (500.0, Basis::Daily(5)));
        // A week later the same Saturday hour of the week is known: 100.
        let two = load("2026-11-16T00:00:00Z", 14 * 24, 500.0, weekdays);
        let f = forecast(&policy, &two, at("2026-11-28T10:00:00Z"), at("2026-11-28T06:00:00Z")).expect("weekly");
        assert_eq!((f.load, f.capacity, f.basis), (100.0, 2, Basis::Weekly(1)));
        // Monday 2026-11-30 10:00: the mean of two Mondays.
        let mut two = two;
        two.extend(load("2026-11-30T00:00:00Z", 6, 0.0, |_| false));
        two.iter_mut()
            .filter(|d| d.at == at("2026-11-16T10:00:00Z"))
            .for_each(|d| d.value = 300.0);
        let f = forecast(&policy, &two, at("2026-11-30T10:00:00Z"), at("2026-11-30T06:00:00Z")).expect("weekly");
        assert_eq!((f.load, f.capacity, f.basis), (400.0, 8, Basis::Weekly(2)));
    }

    /// SchedulingBufferTime: "the forecast says to add capacity at 10:00
    /// AM, and you choose to pre-launch instances by 5 minutes ... launched
    /// at 9:55 AM".
    #[test]
    fn capacity_for_an_hour_is_launched_the_scheduling_buffer_before_it() {
        assert_eq!(
            hour_served(at("2026-11-17T09:54:59Z"), Duration::from_secs(300)),
            at("2026-11-17T09:00:00Z")
        );
        assert_eq!(
            hour_served(at("2026-11-17T09:55:00Z"), Duration::from_secs(300)),
            at("2026-11-17T10:00:00Z")
        );
        assert_eq!(
            hour_served(at("2026-11-17T09:59:00Z"), Duration::ZERO),
            at("2026-11-17T09:00:00Z")
        );
    }

    /// forecast_and_scale: "If the forecast expects an increase in load,
    /// ... increase capacity"; "a decrease ... will not scale in"; with
    /// dynamic scaling, the higher of the two.
    #[test]
    fn forecast_and_scale_raises_to_the_forecast_and_never_scales_in_by_it() {
        let web = group("mode = \"forecast_and_scale\"\n");
        let history = load("2026-11-16T00:00:00Z", 24, 300.0, |_| true);
        let now = at("2026-11-17T08:55:00Z");
        // Needs 6 for 09:00; the group has 2: raised, with its own cause.
        let d = combine(&web, &observed(2, 10), &history, hold(2), now, Explain::All);
        assert_eq!((d.action, d.code), (Action::SetDesired(6), Code::Predictive));
        assert_eq!(
            d.cause.as_deref(),
            Some("predictive web hour 2026-11-17T09:00:00Z issued 2026-11-17T06:00:00Z")
        );
        assert!(d.reason.contains("2 -> 6"), "{}", d.reason);
        // The group has 8: the forecast does not scale in; a hold stays a hold.
        let d = combine(&web, &observed(8, 10), &history, hold(8), now, Explain::All);
        assert_eq!(d.action, Action::Hold);
        // Target tracking scales 8 -> 3: only down to the forecast's 6.
        let mut scale_in = hold(8);
        scale_in.action = Action::SetDesired(3);
        let d = combine(&web, &observed(8, 10), &history, scale_in.clone(), now, Explain::All);
        assert_eq!(d.action, Action::SetDesired(6));
        assert!(
            d.rules
                .iter()
                .any(|r| r.code == Code::Predictive && r.text.contains("scale-in stops at 6"))
        );
        // ... and at 6 it holds.
        let mut to_three = scale_in;
        to_three.from = 6;
        let d = combine(&web, &observed(6, 10), &history, to_three, now, Explain::All);
        assert_eq!((d.action, d.code), (Action::Hold, Code::Predictive));
        // A dynamic scale-out above the forecast wins.
        let mut out = hold(2);
        out.action = Action::SetDesired(9);
        assert_eq!(
            combine(&web, &observed(2, 10), &history, out, now, Explain::All).action,
            Action::SetDesired(9)
        );
    }

    /// Mode defaults to ForecastOnly: decide and explain, never act.
    #[test]
    fn forecast_only_is_the_default_and_explains_without_acting() {
        let web = group("");
        let history = load("2026-11-16T00:00:00Z", 24, 300.0, |_| true);
        let d = combine(
            &web,
            &observed(2, 10),
            &history,
            hold(2),
            at("2026-11-17T08:55:00Z"),
            Explain::All,
        );
        assert_eq!(d.action, Action::Hold);
        let rule = d
            .rules
            .iter()
            .find(|r| r.code == Code::ForecastOnly)
            .expect("explained");
        assert!(
            rule.text.contains("needs 6") && rule.text.contains("not acted on"),
            "{}",
            rule.text
        );
        // Without 24 hours of history it says why there is no forecast.
        let d = combine(
            &web,
            &observed(2, 10),
            &history[..5],
            hold(2),
            at("2026-11-17T08:55:00Z"),
            Explain::All,
        );
        assert!(d.rules.iter().any(|r| r.code == Code::NoForecast), "{:?}", d.rules);
    }

    /// MaxCapacityBreachBehavior: HonorMaxCapacity stops at max;
    /// IncreaseMaxCapacity with MaxCapacityBuffer 10 and a forecast of 50
    /// over a max of 40 gives an effective max of 55 (the API reference's example).
    #[test]
    fn max_capacity_breach_honours_max_or_raises_it_by_the_buffer() {
        let history = load("2026-11-16T00:00:00Z", 24, 2500.0, |_| true);
        let now = at("2026-11-17T08:55:00Z");
        let honour = group("mode = \"forecast_and_scale\"\n");
        let d = combine(&honour, &observed(2, 40), &history, hold(2), now, Explain::All);
        assert_eq!(d.action, Action::SetDesired(40));
        assert!(d.rules.iter().any(|r| r.code == Code::Clamped));
        let increase = group(
            "mode = \"forecast_and_scale\"\nmax_capacity_breach = \"increase_max_capacity\"\nmax_capacity_buffer = 10\n",
        );
        let d = combine(&increase, &observed(2, 40), &history, hold(2), now, Explain::All);
        assert_eq!(
            d.action,
            Action::SetLimits {
                min: 2,
                max: 55,
                desired: 50
            }
        );
    }

    /// CloudWatch's hourly Sum of CPUUtilization by AutoScalingGroupName
    /// over 60 is the mean per-minute total; cpu_demand scales it by the
    /// hour's requests over those answered without a 5xx.
    #[test]
    fn the_hourly_load_is_the_mean_per_minute_total_of_the_hourly_sums() {
        let h = at("2026-11-17T09:00:00Z");
        // Two instances at 60% for the hour, one at 30% for its last half.
        let minutes = (0..60).flat_map(|m| {
            let t = h + SignedDuration::from_mins(m);
            let third = (m >= 30).then_some((t, 30.0));
            [(t, 60.0), (t, 60.0)].into_iter().chain(third)
        });
        let sums = HourlySums {
            cpu: hourly_sums(minutes),
            requests: vec![Datapoint { at: h, value: 6000.0 }],
            shed: vec![Datapoint { at: h, value: 3000.0 }],
        };
        let cpu = hourly_load(&TrackedMetric::Predefined(PredefinedMetric::Cpu), &sums);
        assert_eq!(cpu, vec![Datapoint { at: h, value: 135.0 }]);
        let demand = hourly_load(&TrackedMetric::Predefined(PredefinedMetric::CpuDemand), &sums);
        assert_eq!(demand, vec![Datapoint { at: h, value: 270.0 }]);
        let requests = hourly_load(
            &TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget),
            &sums,
        );
        assert_eq!(requests, vec![Datapoint { at: h, value: 100.0 }]);
    }
}

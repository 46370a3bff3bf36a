//! One target-tracking tick: each policy's metric read as CloudWatch shows
//! it, its recommendation, the largest of them, the duplicate-tick check.

use super::*;

/// Each instance's datapoints in time order (borrowed when they already
/// are, as every adapter and the backtest pass them), so the one at or
/// before a time is a binary search. The sort is stable: among datapoints
/// of the same time the last one wins, as a scan's `max_by_key` picks it.
pub(super) struct Ordered<'a> {
    /// By instance id, in the map's (sorted) order: found by binary search,
    /// with no tree built per decision.
    series: Vec<(&'a str, Cow<'a, [Datapoint]>)>,
}

impl<'a> Ordered<'a> {
    pub(super) fn new(series: &'a BTreeMap<String, Vec<Datapoint>>) -> Self {
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
    pub(super) fn latest(&self, instance: &str, t: Timestamp) -> Option<&Datapoint> {
        latest_in(self.get(instance)?, t)
    }

    /// Each instance's datapoints, in the order of `instances` (looked up
    /// once a decision, not once per instance per recommendation).
    pub(super) fn per_instance(&self, instances: &[crate::decide::Instance]) -> Vec<Option<&[Datapoint]>> {
        instances.iter().map(|i| self.get(i.id.as_str())).collect()
    }

    pub(super) fn get(&self, instance: &str) -> Option<&[Datapoint]> {
        let index = self.series.binary_search_by(|(id, _)| (*id).cmp(instance)).ok()?;
        Some(&self.series[index].1)
    }
}

/// The newest of time-ordered `points` at or before `t` and at most
/// `FRESHNESS` old.
pub(super) fn latest_in(points: &[Datapoint], t: Timestamp) -> Option<&Datapoint> {
    let after = points.partition_point(|d| d.at <= t);
    let point = points.get(after.checked_sub(1)?)?;
    (elapsed(point.at, t) <= FRESHNESS).then_some(point)
}

/// The desired-capacity changes of the activity history, oldest first.
pub(super) fn changes(activities: &[Activity]) -> Vec<&Activity> {
    let mut sorted: Vec<&Activity> = activities.iter().filter(|a| a.from != a.to).collect();
    sorted.sort_by_key(|a| a.start);
    sorted
}

/// One recommendation: the capacity the metric asks for at a point in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Recommendation {
    pub(super) capacity: u32,
    /// Mean value over the instances that reported (for explanations).
    pub(super) mean: f64,
    /// The newest datapoint it used (the start of its minute).
    pub(super) newest: Timestamp,
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
pub(super) fn tick_cause(key: &str, at: Timestamp) -> String {
    format!("target tracking {key} tick at {at}")
}

/// Whether `cause` is [`tick_cause`]`(key, at)`, compared piece by piece:
/// `at` is written out (into `at_text`, once) only for a cause of this
/// metric's ticks; formatting it for every tick was a twentieth of a replay.
pub(super) fn is_tick_cause(cause: &str, key: &str, at: Timestamp, at_text: &mut Option<String>) -> bool {
    cause
        .strip_prefix("target tracking ")
        .and_then(|rest| rest.strip_prefix(key))
        .and_then(|rest| rest.strip_prefix(" tick at "))
        .is_some_and(|rest| rest == at_text.get_or_insert_with(|| at.to_string()).as_str())
}

/// Distinct datapoint times within `window` before `now` (oldest first).
pub(super) fn evaluation_times(
    series: &BTreeMap<String, Vec<Datapoint>>,
    now: Timestamp,
    window: Duration,
) -> Vec<Timestamp> {
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
pub(super) fn last_scale_in(activities: &[Activity]) -> Option<Timestamp> {
    activities.iter().filter(|a| a.to < a.from).map(|a| a.start).max()
}

//! One policy's recommendation: the desired capacity for its metric, held
//! by the stabilisation window and limited by the rate policies (HPA's
//! behaviours).

use super::*;

/// What a recommendation reads of the activity history, worked out once a
/// decision.
pub(super) struct History<'a> {
    /// The changes, oldest first ([`changes`]).
    pub(super) changes: Vec<&'a Activity>,
    pub(super) last_scale_in: Option<Timestamp>,
}

/// The desired capacity in effect at `t`, from the changes (oldest first).
pub(super) fn capacity_at(current: u32, sorted: &[&Activity], t: Timestamp) -> u32 {
    match sorted.iter().rev().find(|a| a.start <= t) {
        Some(last_before) => last_before.to,
        None => sorted.first().map_or(current, |first_after| first_after.from),
    }
}

/// The HPA's replica calculation at time `t`.
pub(super) fn recommend(
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
pub(super) fn rate_limit(
    behavior: &Behavior,
    current: u32,
    activities: &[Activity],
    now: Timestamp,
    scale_out: bool,
) -> u32 {
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

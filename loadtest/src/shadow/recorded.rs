//! The shadow report's input from what CloudWatch and Auto Scaling
//! recorded: the load a minute, the group's own capacity, our decisions.

use super::*;

/// Minutes of `(at, value)` samples: each minute from the first sample's
/// to the last one's, with the newest value at or before its end (a gap
/// carries the previous value; before the first, the first).
pub fn per_minute(samples: &[(Timestamp, f64)]) -> Vec<(Timestamp, f64)> {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Vec::new();
    };
    let minute = |t: Timestamp| Timestamp::from_second(t.as_second().div_euclid(60) * 60).unwrap_or(t);
    let (start, end) = (minute(first.0), minute(last.0));
    let mut out = Vec::new();
    let mut k = 0;
    let mut value = first.1;
    let mut at = start;
    while at <= end {
        let next = at + jiff::SignedDuration::from_secs(60);
        while k < samples.len() && samples[k].0 < next {
            value = samples[k].1;
            k += 1;
        }
        out.push((at, value));
        at = next;
    }
    out
}

/// What CloudWatch and Auto Scaling hold for a shadowed group on AWS.
#[derive(Debug, Clone, Default)]
pub struct Recorded<'a> {
    /// The load balancer's requests a minute (Sum), at each minute's start.
    pub requests: &'a [functions::decide::Datapoint],
    /// GroupDesiredCapacity a minute.
    pub desired: &'a [functions::decide::Datapoint],
    /// The dry-run function's RecommendedCapacity and CapacityBefore a minute.
    pub recommended: &'a [functions::decide::Datapoint],
    pub before: &'a [functions::decide::Datapoint],
    /// Scaling activities: (start, cause).
    pub activities: &'a [(Timestamp, String)],
}

/// The report's input from what was recorded on AWS in `[since, until)`:
/// whole minutes from the first with a desired capacity; a minute without
/// requests had none (the load balancer publishes nothing then); a minute
/// without a desired capacity datapoint keeps the previous one; each minute
/// with a RecommendedCapacity is one dry-run decision (from its
/// CapacityBefore, else the group's desired; the reasons are in the
/// function's log); each change of desired between minutes is one of the
/// group's, with the cause of the first activity that started in its
/// minute.
pub fn from_recorded(
    group: &str,
    recorded: &Recorded<'_>,
    since: Timestamp,
    until: Timestamp,
    capacity_rps: f64,
    boot: Duration,
) -> Result<Input, String> {
    let minute = |t: Timestamp| t.as_second().div_euclid(60);
    let by_minute = |points: &[functions::decide::Datapoint]| -> std::collections::BTreeMap<i64, f64> {
        points.iter().map(|d| (minute(d.at), d.value)).collect()
    };
    let (requests, desired, recommended, before) = (
        by_minute(recorded.requests),
        by_minute(recorded.desired),
        by_minute(recorded.recommended),
        by_minute(recorded.before),
    );
    let first = minute(since) + i64::from(since.as_second().rem_euclid(60) != 0);
    let first = first.max(
        *desired
            .keys()
            .next()
            .ok_or_else(|| format!("group {group}: no desired capacity recorded"))?,
    );
    let mut minutes = Vec::new();
    let mut ours = Vec::new();
    let mut actual = Vec::new();
    let mut current: Option<u32> = None;
    for m in first..minute(until) {
        let at = Timestamp::from_second(m * 60).map_err(|e| e.to_string())?;
        let now = desired.get(&m).map(|v| v.round().max(0.0) as u32).or(current);
        let Some(now) = now else { continue };
        if let Some(previous) = current.filter(|p| *p != now) {
            let cause = recorded
                .activities
                .iter()
                .find(|(start, _)| minute(*start) == m || minute(*start) + 1 == m)
                .map_or_else(
                    || "GroupDesiredCapacity changed".to_string(),
                    |(_, cause)| cause.clone(),
                );
            actual.push(Change {
                at,
                from: previous,
                to: now,
                cause,
            });
        }
        current = Some(now);
        if let Some(r) = recommended.get(&m) {
            ours.push(Recommendation {
                at,
                from: before.get(&m).map_or(now, |v| v.round().max(0.0) as u32),
                recommended: r.round().max(0.0) as u32,
                reason: "RecommendedCapacity (the reason is in the function's log)".into(),
            });
        }
        minutes.push(Minute {
            at,
            load_rps: requests.get(&m).copied().unwrap_or(0.0).max(0.0) / 60.0,
            desired: now,
        });
    }
    Ok(Input {
        group: group.to_string(),
        minutes,
        actual,
        ours,
        capacity_rps,
        boot,
    })
}

//! Surges: where the load at least doubles, and how the group followed.

use super::*;

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

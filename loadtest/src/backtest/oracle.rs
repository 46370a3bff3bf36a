//! The oracle (issue 22): what a perfect operator pays for a trace.

use crate::trace::Trace;

use super::*;

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

/// `a / b`, 1 when both are 0 (a group at min 0 over a trace with no
/// load matches its oracle), infinite when only `b` is.
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

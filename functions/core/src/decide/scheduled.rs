//! A scheduled action: min, max and desired as the schedule sets them.

use super::*;

/// A scheduled action sets min, max and desired as written; desired that the
/// action leaves out is kept, moved inside the new range if it falls outside
/// (as EC2 Auto Scaling does). Absolute values make a repeat harmless.
pub(super) fn decide_schedule(group: &GroupPolicy, observed: &Observation, name: &str, at: Timestamp) -> Decision {
    let current = observed.desired;
    let Some(schedule) = group.schedules.iter().find(|s| s.name == name) else {
        return Decision::hold(
            current,
            Code::NotOurs,
            format!("no scheduled action of group {} is named {name}", group.name),
            vec![],
        );
    };
    let min = schedule.min.unwrap_or(observed.min);
    let max = schedule.max.unwrap_or(observed.max);
    let mut rules = Vec::new();
    for (field, value) in [
        ("min", schedule.min),
        ("max", schedule.max),
        ("desired", schedule.desired),
    ] {
        if let Some(value) = value {
            rules.push(Rule::new(
                Code::Schedule,
                format!("schedule {name} sets {field} {value}"),
            ));
        }
    }
    if min > max {
        // The group's other limit moved since the file was checked: refuse rather than guess.
        return Decision::hold(
            current,
            Code::Refused,
            format!("schedule {name} would set min {min} above max {max}; not applied"),
            rules,
        );
    }
    let wanted = schedule.desired.unwrap_or(current);
    let desired = wanted.clamp(min, max);
    if desired != wanted {
        let bound = if desired > wanted { "min" } else { "max" };
        rules.push(Rule::new(
            Code::Clamped,
            format!("desired moved to the new {bound} {desired}"),
        ));
    }
    if (min, max, desired) == (observed.min, observed.max, current) {
        return Decision::hold(
            current,
            Code::AlreadyThere,
            format!("schedule {name}: already in effect"),
            rules,
        );
    }
    Decision {
        action: Action::SetLimits { min, max, desired },
        code: Code::Schedule,
        reason: format!("schedule {name}: min {min}, max {max}, desired {current} -> {desired}"),
        rules,
        from: current,
        cause: Some(format!("schedule {name} at {at}")),
    }
}

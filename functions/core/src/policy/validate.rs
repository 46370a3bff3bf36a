//! The validation pass: every problem of a policy file at once, each
//! naming the field and what is allowed (an alarm policy's in `alarm`).

use super::*;

/// Names used in AWS resource names: letters, digits, `-` and `_`, 1-64 chars.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn group_problems(group: &GroupPolicy, groups: &[&str], at: &str, problems: &mut Vec<String>) {
    if !valid_name(&group.name) {
        problems.push(format!(
            "{at}.name: {:?} must be 1-64 letters, digits, - or _",
            group.name
        ));
    }
    if group.min > group.max {
        problems.push(format!("{at}: min {} must be <= max {}", group.min, group.max));
    }
    if group.max > MAX_GROUP_SIZE {
        problems.push(format!("{at}.max: {} is above {MAX_GROUP_SIZE}", group.max));
    }
    if group.cooldown > HISTORY {
        problems.push(format!(
            "{at}.cooldown: {:?} is longer than the {}s of history decisions read",
            group.cooldown,
            HISTORY.as_secs()
        ));
    }
    // Scale from zero (issue 18): at zero instances there is no CPU and no
    // per-target request count, so only a 503 alarm or a schedule can
    // bring the group back.
    if group.min == 0
        && !group.alarm_policies.iter().any(|p| seen_at_zero(&p.metric))
        && !group
            .schedules
            .iter()
            .any(|s| s.min.is_some_and(|m| m > 0) || s.desired.is_some_and(|d| d > 0))
    {
        problems.push(format!(
            "{at}.min: 0, but nothing could scale {} out again from zero instances (CPU and requests per target have no datapoints then): add an alarm policy on AWS/ApplicationELB HTTPCode_ELB_503_Count {{ LoadBalancer = {:?} }} (stat Sum), or a schedule that raises min or desired",
            group.name, group.name
        ));
    }
    if let Some(desired) = group.desired
        && !(group.min..=group.max).contains(&desired)
    {
        problems.push(format!(
            "{at}.desired: {desired} must be within min..=max ({}..={})",
            group.min, group.max
        ));
    }
    for (index, policy) in group.alarm_policies.iter().enumerate() {
        let at = format!("{at}.alarm_policy[{index}] ({})", policy.alarm);
        alarm_policy_problems(policy, &at, problems);
        if let Err(problem) = published(&policy.metric, groups) {
            problems.push(format!("{at}.metric: {problem}"));
        }
    }
    for (index, tracking) in group.target_tracking.iter().enumerate() {
        target_tracking_problems(tracking, &format!("{at}.target_tracking[{index}]"), problems);
    }
    if let Some(predictive) = &group.predictive {
        predictive_problems(predictive, &format!("{at}.predictive"), problems);
    }
    if let Some(pool) = &group.warm_pool {
        let at = format!("{at}.warm_pool");
        if pool.pool_state == PoolState::Hibernated {
            problems.push(format!(
                "{at}.pool_state: hibernated needs hibernation configured in the launch template (HibernationOptions, an encrypted root volume large enough for the RAM), which this stack's does not set: use stopped or running"
            ));
        }
        if pool.min_size > MAX_GROUP_SIZE {
            problems.push(format!("{at}.min_size: {} is above {MAX_GROUP_SIZE}", pool.min_size));
        }
        if let Some(prepared) = pool.max_group_prepared_capacity
            && !(group.max..=MAX_GROUP_SIZE).contains(&prepared)
        {
            problems.push(format!(
                "{at}.max_group_prepared_capacity: {prepared} must be within the group's max and {MAX_GROUP_SIZE} ({}..={MAX_GROUP_SIZE}): it counts the group and the pool together",
                group.max
            ));
        }
    }
    for (index, schedule) in group.schedules.iter().enumerate() {
        let at = format!("{at}.schedule[{index}] ({})", schedule.name);
        schedule_problems(schedule, group, &at, problems);
        if group.schedules[..index].iter().any(|s| s.name == schedule.name) {
            problems.push(format!("{at}.name: duplicate schedule name"));
        }
    }
}

/// The rules of `PredictiveScalingConfiguration` (EC2 Auto Scaling API
/// reference; CloudFormation `AWS::AutoScaling::ScalingPolicy
/// PredictiveScalingConfiguration`).
pub(super) fn predictive_problems(predictive: &Predictive, at: &str, problems: &mut Vec<String>) {
    if let TrackedMetric::Custom(spec) = &predictive.metric {
        problems.push(format!(
            "{at}.metric: {}/{} is not a load metric the group's hourly totals can be read for; allowed: cpu, cpu_demand, request_count_per_target",
            spec.namespace, spec.name
        ));
    }
    if !(predictive.target.is_finite() && predictive.target > 0.0) {
        problems.push(format!("{at}.target: {} must be a positive number", predictive.target));
    }
    if let TrackedMetric::Predefined(PredefinedMetric::Cpu | PredefinedMetric::CpuDemand) = predictive.metric
        && predictive.target > 100.0
    {
        problems.push(format!("{at}.target: CPU target {} must be <= 100", predictive.target));
    }
    if predictive.scheduling_buffer >= crate::predictive::MAX_SCHEDULING_BUFFER {
        problems.push(format!(
            "{at}.scheduling_buffer: {}s must be less than the forecast interval of 3600s (SchedulingBufferTime)",
            predictive.scheduling_buffer.as_secs()
        ));
    }
    match (predictive.max_capacity_breach, predictive.max_capacity_buffer) {
        (MaxCapacityBreach::HonorMaxCapacity, Some(_)) => problems.push(format!(
            "{at}.max_capacity_buffer: only with max_capacity_breach = \"increase_max_capacity\" (MaxCapacityBuffer cannot be used otherwise)"
        )),
        (MaxCapacityBreach::IncreaseMaxCapacity, None) => problems.push(format!(
            "{at}.max_capacity_buffer: required with max_capacity_breach = \"increase_max_capacity\" (0-100, percent of the forecast)"
        )),
        (_, Some(buffer)) if buffer > 100 => {
            problems.push(format!("{at}.max_capacity_buffer: {buffer} must be 0-100 (percent of the forecast)"))
        }
        _ => {}
    }
}

pub(super) fn target_tracking_problems(tracking: &TargetTracking, at: &str, problems: &mut Vec<String>) {
    if !(tracking.target.is_finite() && tracking.target > 0.0) {
        problems.push(format!("{at}.target: {} must be a positive number", tracking.target));
    }
    if let TrackedMetric::Predefined(PredefinedMetric::Cpu | PredefinedMetric::CpuDemand) = tracking.metric
        && tracking.target > 100.0
    {
        problems.push(format!("{at}.target: CPU target {} must be <= 100", tracking.target));
    }
    if !(0.0..1.0).contains(&tracking.tolerance) {
        problems.push(format!("{at}.tolerance: {} must be in [0, 1)", tracking.tolerance));
    }
    for (direction, behavior) in [("scale_out", &tracking.scale_out), ("scale_in", &tracking.scale_in)] {
        if let Some(tolerance) = behavior.tolerance
            && !(0.0..1.0).contains(&tolerance)
        {
            problems.push(format!("{at}.{direction}.tolerance: {tolerance} must be in [0, 1)"));
        }
        if behavior.stabilization > HISTORY {
            problems.push(format!(
                "{at}.{direction}.stabilization: at most {}s",
                HISTORY.as_secs()
            ));
        }
        if behavior.select != Select::Disabled && behavior.policies.is_empty() {
            problems.push(format!(
                "{at}.{direction}.policies: at least one rate policy unless select = \"disabled\""
            ));
        }
        for (index, rate) in behavior.policies.iter().enumerate() {
            let at = format!("{at}.{direction}.policies[{index}]");
            match (rate.percent, rate.instances) {
                (Some(0), None) | (None, Some(0)) => problems.push(format!("{at}: the limit must be >= 1")),
                (Some(_), None) | (None, Some(_)) => {}
                _ => problems.push(format!("{at}: set exactly one of percent or instances")),
            }
            if rate.period.is_zero() || rate.period > Duration::from_secs(1800) {
                problems.push(format!("{at}.period: {:?} must be in 1s..=1800s", rate.period));
            }
        }
    }
}

pub(super) fn schedule_problems(schedule: &Schedule, group: &GroupPolicy, at: &str, problems: &mut Vec<String>) {
    if !valid_name(&schedule.name) {
        problems.push(format!(
            "{at}.name: {:?} must be 1-64 letters, digits, - or _",
            schedule.name
        ));
    }
    match (&schedule.cron, &schedule.rate) {
        (Some(expression), None) | (None, Some(expression)) => match expression.parse::<ScheduleExpr>() {
            Ok(ScheduleExpr::Cron(_)) if schedule.rate.is_some() => {
                problems.push(format!(
                    "{at}.rate: {expression:?} is a cron expression; use cron = ..."
                ));
            }
            Ok(ScheduleExpr::Rate(_)) if schedule.cron.is_some() => {
                problems.push(format!(
                    "{at}.cron: {expression:?} is a rate expression; use rate = ..."
                ));
            }
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "{at}.{}: {e}",
                if schedule.cron.is_some() { "cron" } else { "rate" }
            )),
        },
        _ => problems.push(format!("{at}: set exactly one of cron or rate")),
    }
    if let Some(zone) = &schedule.timezone
        && crate::schedule::time_zone(zone).is_err()
    {
        problems.push(format!(
            "{at}.timezone: {zone:?} is not an IANA time zone (e.g. Asia/Shanghai, UTC)"
        ));
    }
    if schedule.min.is_none() && schedule.max.is_none() && schedule.desired.is_none() {
        problems.push(format!("{at}: set at least one of min, max, desired"));
    }
    let min = schedule.min.unwrap_or(group.min);
    let max = schedule.max.unwrap_or(group.max);
    if min > max {
        problems.push(format!(
            "{at}: min {min} must be <= max {max} (the group's value where the action sets none)"
        ));
    }
    if let Some(desired) = schedule.desired
        && !(min..=max).contains(&desired)
    {
        problems.push(format!(
            "{at}.desired: {desired} must be within min..=max ({min}..={max})"
        ));
    }
}

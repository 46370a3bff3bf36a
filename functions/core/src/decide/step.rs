//! An alarm's simple or step scaling policy: the step for the alarm's
//! value, the adjustment, the cooldown (simple) or warm-up (step).

use super::*;

pub(super) fn decide_alarm(
    group: &GroupPolicy,
    observed: &Observation,
    activities: &[Activity],
    status: &AlarmStatus,
    delivery: Delivery,
    now: Timestamp,
) -> Decision {
    let (alarm, state, value) = (status.name.as_str(), status.state, status.value);
    let desired = observed.desired;
    let Some(policy) = group.alarm_policy(alarm) else {
        // Alarms of other groups or tiers reach the same function: not ours.
        return Decision::hold(
            desired,
            Code::NotOurs,
            format!("no policy of group {} uses alarm {alarm}", group.name),
            vec![],
        );
    };
    if state != AlarmState::Alarm {
        // Alarm policies act only in ALARM; a clearing alarm means "stop", not "undo".
        return Decision::hold(
            desired,
            Code::NotInAlarm,
            format!("alarm {alarm} is {state:?}: alarm policies act only in ALARM"),
            vec![],
        );
    }
    let cause = match delivery {
        Delivery::StateChange => alarm_cause(alarm, status.state_since),
        Delivery::Recheck(at) => format!("alarm {alarm} re-check at {at}"),
    };
    if let Some(done) = activities.iter().find(|a| a.cause == cause) {
        // A duplicated or late delivery of a breach already acted on.
        return Decision::hold(
            desired,
            Code::AlreadyHandled,
            format!(
                "already handled: this breach set {} -> {} at {}",
                done.from, done.to, done.start
            ),
            vec![],
        );
    }
    let Some(value) = value else {
        return Decision::hold(
            desired,
            Code::NoData,
            format!("alarm {alarm} carries no datapoint to pick a step from"),
            vec![],
        );
    };
    let adjustments = policy.adjustments();
    let Some(step) = select_step(policy, &adjustments, value) else {
        return Decision::hold(
            desired,
            Code::NoStep,
            format!(
                "{} {value} matches no step (threshold {})",
                policy.metric.name, policy.threshold
            ),
            vec![],
        );
    };
    let mut rules = vec![Rule::new(Code::Step, step_rule(policy, step, value))];
    if let Some(at) = status.data_at {
        // The age of what was decided on: CloudWatch's data is minutes late.
        rules.push(Rule::new(
            Code::DatapointAge,
            format!("datapoint of the period from {at}, {}", crate::cloudwatch::age(at, now)),
        ));
    }
    let scale_out = match policy.adjustment {
        AdjustmentType::ExactCapacity => step.change > i64::from(desired),
        _ => step.change > 0,
    };
    let base = match policy.kind() {
        PolicyType::Simple => {
            // EC2 Auto Scaling, "Scaling cooldowns": a simple policy waits
            // for the scaling activity in progress to finish, then for the
            // cooldown after the group last launched or terminated, whichever
            // way either went. Warm-up plays no part: every instance counts.
            if let Some(running) = activities.iter().find(|a| a.end.is_none() && a.to != a.from) {
                return Decision::hold(
                    desired,
                    Code::InProgress,
                    format!(
                        "held: simple scaling waits for the activity {} -> {} started {} to finish",
                        running.from, running.to, running.start
                    ),
                    rules,
                );
            }
            if let Some(until) = cooldown_until(group, activities)
                && until > now
            {
                return Decision::hold(
                    desired,
                    Code::Cooldown,
                    format!("held: cooldown until {until} (simple scaling)"),
                    rules,
                );
            }
            desired
        }
        PolicyType::Step => {
            // No cooldown ("valid only if the policy type is SimpleScaling"):
            // instance warm-up instead.
            let warmup = policy.warmup_in(group).unwrap_or_else(|| group.warmup());
            let warming = warming_instances(observed, warmup, now);
            if !scale_out && warming > 0 {
                // "Scaling cooldowns", considerations: while a scale-out is in
                // progress, step scale-in is blocked until instances finish warming up.
                return Decision::hold(
                    desired,
                    Code::WarmUp,
                    format!("held: no scale-in while {warming} instance(s) warm up"),
                    rules,
                );
            }
            if scale_out && warming > 0 {
                // Instances still warming up are not counted when scaling
                // out: repeated breaches in the same step lead to one
                // scaling activity.
                let base = desired.saturating_sub(warming);
                rules.push(Rule::new(
                    Code::WarmUp,
                    format!("{warming} warming instance(s) not counted: base {base}"),
                ));
                base
            } else {
                desired
            }
        }
    };
    let mut target = adjusted(policy, step, base, &mut rules);
    if scale_out && target < i64::from(desired) {
        // Never shrink on a scale-out alarm because of warming instances.
        target = i64::from(desired);
    }
    let clamped = target.clamp(i64::from(observed.min), i64::from(observed.max));
    if clamped != target {
        let bound = if target > clamped { "max" } else { "min" };
        rules.push(Rule::new(Code::Clamped, format!("clamped to {bound} {clamped}")));
    }
    let capacity = clamped as u32;
    if capacity == desired {
        // At a limit already: clamped says why; else the step asks for no change.
        let code = match rules.last() {
            Some(rule) if rule.code == Code::Clamped => Code::Clamped,
            _ => Code::AlreadyThere,
        };
        return Decision::hold(desired, code, format!("already at {desired}"), rules);
    }
    Decision {
        action: Action::SetDesired(capacity),
        code: Code::Step,
        reason: format!("alarm {alarm}: {desired} -> {capacity}"),
        rules,
        from: desired,
        cause: Some(cause),
    }
}

/// The step whose range holds `value - threshold`: lower bound inclusive and
/// upper exclusive above the threshold, the reverse below it (as AWS
/// documents); the alarm's direction settles a value exactly at the threshold.
pub(super) fn select_step<'a>(policy: &AlarmPolicy, steps: &'a [Step], value: f64) -> Option<&'a Step> {
    let diff = value - policy.threshold;
    let above = policy.comparison.is_upper();
    steps.iter().find(|step| {
        let lower = step.lower.unwrap_or(f64::NEG_INFINITY);
        let upper = step.upper.unwrap_or(f64::INFINITY);
        if above {
            lower <= diff && diff < upper
        } else {
            lower < diff && diff <= upper
        }
    })
}

pub(super) fn step_rule(policy: &AlarmPolicy, step: &Step, value: f64) -> String {
    let change = match policy.adjustment {
        AdjustmentType::ChangeInCapacity => format!("{:+}", step.change),
        AdjustmentType::ExactCapacity => format!("={}", step.change),
        AdjustmentType::PercentChangeInCapacity => format!("{:+}%", step.change),
    };
    let (t, name, op) = (policy.threshold, &policy.metric.name, policy.comparison.symbol());
    if policy.kind() == PolicyType::Simple {
        return format!("simple {change} ({name} {value} {op} {t})");
    }
    let range = match (step.lower, step.upper) {
        (Some(l), Some(u)) => format!("{}..{}", t + l, t + u),
        (Some(l), None) => format!(">= {}", t + l),
        (None, Some(u)) => format!("<= {}", t + u),
        (None, None) => "any".into(),
    };
    format!("step {change} ({name} {value} {op} {t}, step range {range})")
}

/// The new capacity from `base` per the adjustment type, with AWS's rounding.
pub(super) fn adjusted(policy: &AlarmPolicy, step: &Step, base: u32, rules: &mut Vec<Rule>) -> i64 {
    let base = i64::from(base);
    match policy.adjustment {
        AdjustmentType::ChangeInCapacity => base.saturating_add(step.change),
        AdjustmentType::ExactCapacity => step.change,
        AdjustmentType::PercentChangeInCapacity => {
            let raw = base as f64 * step.change as f64 / 100.0;
            // AWS: above 1 round down, 0..1 -> 1, -1..0 -> -1, below -1 round up (toward 0).
            let mut delta = if raw > 1.0 {
                raw.floor() as i64
            } else if raw > 0.0 {
                1
            } else if (-1.0..0.0).contains(&raw) {
                -1
            } else {
                raw.ceil() as i64
            };
            rules.push(Rule::new(
                Code::Rounded,
                format!("{}% of {base} = {raw:.2}, rounded to {delta:+}", step.change),
            ));
            if let Some(magnitude) = policy.min_adjustment_magnitude {
                let magnitude = i64::from(magnitude);
                if delta != 0 && delta.saturating_abs() < magnitude {
                    delta = delta.signum() * magnitude;
                    rules.push(Rule::new(
                        Code::MinAdjustment,
                        format!("raised to the minimum adjustment magnitude {delta:+}"),
                    ));
                }
            }
            base.saturating_add(delta)
        }
    }
}

/// When the cooldown that simple policies wait for ends: after each finished
/// activity that changed the capacity, the cooldown of the simple policy that
/// caused it (its own, else the group's), or the group's default cooldown
/// for any other cause ("the cooldown period (either the default cooldown or
/// the scaling policy-specific cooldown) takes effect from the time that the
/// last instance finishes launching or terminating").
pub(super) fn cooldown_until(group: &GroupPolicy, activities: &[Activity]) -> Option<Timestamp> {
    activities
        .iter()
        .filter(|a| a.to != a.from)
        .filter_map(|a| {
            let cooldown = alarm_of_cause(&a.cause)
                .and_then(|alarm| group.alarm_policy(alarm))
                .and_then(|p| p.cooldown_in(group))
                .unwrap_or(group.cooldown);
            let end = a.end.unwrap_or(a.start).max(a.start);
            end.checked_add(jiff::SignedDuration::try_from(cooldown).ok()?).ok()
        })
        .max()
}

/// The alarm named by an activity's cause (see [`alarm_cause`] and the
/// tick's re-check cause), if an alarm caused it.
pub(super) fn alarm_of_cause(cause: &str) -> Option<&str> {
    let rest = cause.strip_prefix("alarm ")?;
    rest.split_once(" re-check at ")
        .or_else(|| rest.split_once(" at "))
        .map(|(alarm, _)| alarm)
}

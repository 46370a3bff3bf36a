//! A group's tick: target tracking's policies and the predictive forecast
//! (`crate::tracking`, `crate::predictive`), one decision of them.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn decide_tick(
    group: &GroupPolicy,
    observed: &Observation,
    metrics: &MetricHistory,
    activities: &[Activity],
    alarms: &[AlarmStatus],
    at: Timestamp,
    now: Timestamp,
    explain: Explain,
) -> Decision {
    let current = observed.desired;
    let mut proposals: Vec<Decision> = group
        .target_tracking
        .iter()
        .map(|policy| crate::tracking::decide(group, policy, observed, metrics, activities, at, now, explain))
        .collect();
    proposals.extend(
        alarms
            .iter()
            .filter(|a| a.state == AlarmState::Alarm && group.alarm_policy(&a.name).is_some())
            .map(|a| decide_alarm(group, observed, activities, a, Delivery::Recheck(at), now)),
    );
    if proposals.is_empty() {
        let reason =
            if group.predictive.is_some() && group.target_tracking.is_empty() && group.alarm_policies.is_empty() {
                format!("group {} scales on its forecast alone", group.name)
            } else {
                format!("group {} has no target tracking and no alarm in ALARM", group.name)
            };
        return Decision::hold(current, Code::NotInAlarm, reason, vec![]);
    }
    let target = |d: &Decision| match d.action {
        Action::SetDesired(n) => n,
        _ => d.from,
    };
    let out = proposals
        .iter()
        .filter(|d| target(d) > current)
        .max_by_key(|d| target(d));
    if let Some(winner) = out {
        let mut decision = winner.clone();
        if proposals.len() > 1 {
            decision.rules.push(Rule::new(
                Code::Proposals,
                format!("largest of {} proposals", proposals.len()),
            ));
        }
        return decision;
    }
    // Scale in only if all agree: one proposal to hold keeps the capacity.
    if let Some(holder) = proposals.iter().find(|d| target(d) >= current) {
        if explain == Explain::ActionsOnly {
            return Decision::hold(current, holder.code, String::new(), Vec::new());
        }
        let mut rules = holder.rules.clone();
        if proposals.len() > 1 {
            rules.push(Rule::new(
                Code::Proposals,
                format!("scale-in needs all {} proposals to agree", proposals.len()),
            ));
        }
        return Decision::hold(current, holder.code, holder.reason.clone(), rules);
    }
    let winner = proposals.iter().max_by_key(|d| target(d)).expect("non-empty");
    let mut decision = winner.clone();
    if proposals.len() > 1 {
        decision.rules.push(Rule::new(
            Code::Proposals,
            format!("all {} proposals scale in; the largest wins", proposals.len()),
        ));
    }
    decision
}

//! The decision core: a pure function of (policy, observed group, activity
//! history, trigger, now) to a [`Decision`] that says what and why.
//!
//! No IO, no clock, no AWS types: `now` is passed in, so every rule is
//! testable with a table of named cases. Decisions are absolute capacities,
//! so a duplicated or late event never scales twice.
//!
//! Covered: simple and step scaling on alarms and scheduled actions (EC2
//! Auto Scaling semantics), and on the tick target tracking (the Kubernetes HPA's
//! arithmetic, see [`crate::tracking`]) combined with re-checks of alarms
//! still in ALARM.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::policy::{AdjustmentType, AlarmPolicy, GroupPolicy, PolicyType, Step};
pub use crate::rule::{Code, Rule};
pub use crate::tracking::{Datapoint, MetricHistory};

/// What the group looks like now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    #[serde(default)]
    pub instances: Vec<Instance>,
}

/// One instance of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub id: String,
    pub lifecycle: Lifecycle,
    pub launched_at: Timestamp,
    #[serde(default)]
    pub protected: bool,
}

/// Where an instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lifecycle {
    Pending,
    InService,
    Terminating,
}

/// A past or running change of desired capacity, as the activity history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    pub start: Timestamp,
    /// None while in progress.
    pub end: Option<Timestamp>,
    pub from: u32,
    pub to: u32,
    /// What caused it; for alarms `alarm NAME at STATE_TIMESTAMP` (see [`alarm_cause`]).
    pub cause: String,
}

/// The cause recorded for an alarm-driven change: also the idempotency key.
pub fn alarm_cause(alarm: &str, state_since: Timestamp) -> String {
    format!("alarm {alarm} at {state_since}")
}

/// Why an alarm event is not the alarm's current transition, if it is not:
/// it was delivered late or twice, and the alarm has moved on since (to
/// another state, or into the same state again later). Acting on it would
/// scale a second time for a breach already superseded; on AWS only the last
/// decision's cause is kept, so the activity history cannot always tell
/// (issue 18: an ALARM event 40 minutes late scaled again). `current` is
/// the alarm as CloudWatch describes it now (DescribeAlarms: StateValue,
/// StateUpdatedTimestamp); unknown, the event is taken as current.
/// Timestamps within a second are the same transition (the event and
/// DescribeAlarms may round differently).
pub fn superseded_alarm_event(event: &AlarmStatus, current: Option<&AlarmStatus>) -> Option<String> {
    let current = current?;
    let newer = current.state_since > event.state_since + jiff::SignedDuration::from_secs(1);
    if current.state != event.state {
        Some(format!(
            "alarm {} is {:?} since {}: this {:?} event of {} is not its current state",
            event.name, current.state, current.state_since, event.state, event.state_since
        ))
    } else if newer {
        Some(format!(
            "alarm {} entered {:?} again at {}: this event of {} is an older transition",
            event.name, current.state, current.state_since, event.state_since
        ))
    } else {
        None
    }
}

/// Alarm states as CloudWatch reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

/// An alarm's state with its newest datapoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmStatus {
    pub name: String,
    pub state: AlarmState,
    /// When the alarm entered this state: identifies the breach.
    pub state_since: Timestamp,
    /// The newest datapoint that the alarm evaluated, if known.
    pub value: Option<f64>,
    /// The start of that datapoint's period, when known (its age is logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_at: Option<Timestamp>,
}

/// What asks for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An alarm changed state.
    Alarm(AlarmStatus),
    /// A scheduled action of the group fired (EventBridge rule of that name).
    Scheduled { name: String, at: Timestamp },
    /// The periodic tick: target tracking, and a re-check of the alarms
    /// given here (EventBridge reports state changes only, so an alarm that
    /// stays in ALARM is re-evaluated on each tick).
    Tick {
        at: Timestamp,
        #[serde(default)]
        alarms: Vec<AlarmStatus>,
    },
}

/// The result: hold or set an absolute capacity, with the reason and the
/// rules that shaped it.
#[must_use = "a decision does nothing until it is acted on"]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    /// Why, as a code (see [`Code`]): the rule `reason` states.
    pub code: Code,
    /// One line: why.
    pub reason: String,
    /// The rules that shaped the result, in the order applied.
    pub rules: Vec<Rule>,
    /// Desired capacity when deciding.
    pub from: u32,
    /// Recorded with the change, so the same breach is never acted on twice.
    pub cause: Option<String>,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Hold,
    SetDesired(u32),
    /// A scheduled action: new min, max and desired together.
    SetLimits {
        min: u32,
        max: u32,
        desired: u32,
    },
}

impl Decision {
    pub(crate) fn hold(from: u32, code: Code, reason: impl Into<String>, rules: Vec<Rule>) -> Self {
        Self {
            action: Action::Hold,
            code,
            reason: reason.into(),
            rules,
            from,
            cause: None,
        }
    }

    /// The desired capacity the decision leaves (`from` when it holds).
    pub fn desired_after(&self) -> u32 {
        match self.action {
            Action::Hold => self.from,
            Action::SetDesired(n) | Action::SetLimits { desired: n, .. } => n,
        }
    }

    /// The rules' sentences joined by `separator` (today's explanation).
    pub fn explain(&self, separator: &str) -> String {
        crate::rule::join(&self.rules, separator)
    }
}

/// An observation no real group can be in: decide() refuses it rather than
/// guess (or panic in a clamp).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// EC2 Auto Scaling refuses MinSize above MaxSize, so no group reports it.
    #[error("impossible observation: min {min} is above max {max}")]
    MinAboveMax { min: u32, max: u32 },
}

/// How much of a decision to write out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// Every decision with its reason and rules (the functions: every
    /// decision is logged).
    All,
    /// An action in full; a target-tracking hold may come with an empty
    /// reason and no rules (its code is kept). For a replay that reads
    /// only what was done: writing each minute's hold out was a quarter
    /// of a year's backtest.
    ActionsOnly,
}

/// Decides what `trigger` asks of `group`, from the observed group, the
/// tracked metric's history and the activity history, at `now`.
///
/// Pure and total: every observation either gives a decision or, when no
/// group could be in it, a [`DecideError`]; it never panics.
pub fn decide(
    group: &GroupPolicy,
    observed: &Observation,
    metrics: &MetricHistory,
    activities: &[Activity],
    trigger: &Trigger,
    now: Timestamp,
) -> Result<Decision, DecideError> {
    decide_explained(group, observed, metrics, activities, trigger, now, Explain::All)
}

/// [`decide`], writing out as much as `explain` asks: the same action,
/// code and cause whatever it asks.
pub fn decide_explained(
    group: &GroupPolicy,
    observed: &Observation,
    metrics: &MetricHistory,
    activities: &[Activity],
    trigger: &Trigger,
    now: Timestamp,
    explain: Explain,
) -> Result<Decision, DecideError> {
    if observed.min > observed.max {
        return Err(DecideError::MinAboveMax {
            min: observed.min,
            max: observed.max,
        });
    }
    // A group outside its own limits goes back inside them at once, before
    // any metric is read and whatever the metrics say (Kubernetes HPA,
    // `reconcileAutoscaler`: "Current number of replicas above
    // Spec.MaxReplicas" / "below Spec.MinReplicas"). A scheduled action sets
    // new limits and moves desired inside them itself.
    if !matches!(trigger, Trigger::Scheduled { .. })
        && let Some(decision) = back_inside_limits(observed, now)
    {
        return Ok(decision);
    }
    let mut decision = match trigger {
        Trigger::Alarm(alarm) => decide_alarm(group, observed, activities, alarm, Delivery::StateChange, now),
        Trigger::Scheduled { name, at } => decide_schedule(group, observed, name, *at),
        Trigger::Tick { at, alarms } => decide_tick(group, observed, metrics, activities, alarms, *at, now, explain),
    };
    // Predictive scaling: the higher of the hour's forecast and the
    // dynamic decision (ticks and alarms; a scheduled action sets what it
    // names, and the next tick applies the forecast again).
    if !matches!(trigger, Trigger::Scheduled { .. }) {
        decision = crate::predictive::combine(group, observed, &metrics.load, decision, now, explain);
    }
    explain_protection(observed, &mut decision);
    Ok(decision)
}

/// Desired set back to the nearer limit when it is outside min..=max.
fn back_inside_limits(observed: &Observation, now: Timestamp) -> Option<Decision> {
    let (min, max, desired) = (observed.min, observed.max, observed.desired);
    let (bound, to) = if desired > max {
        ("above max", max)
    } else if desired < min {
        ("below min", min)
    } else {
        return None;
    };
    Some(Decision {
        action: Action::SetDesired(to),
        code: Code::OutsideLimits,
        reason: format!("desired {desired} is {bound} {to}: set to {to}"),
        rules: vec![Rule::new(
            Code::OutsideLimits,
            format!("desired {bound}: set to the limit {to} before any metric"),
        )],
        from: desired,
        cause: Some(format!("limits {min}..={max} at {now}")),
    })
}

/// Scale-in never terminates a protected instance; desired still drops, and
/// the group keeps the extra instances until their protection is removed
/// (as EC2 Auto Scaling does). Say so whenever a scale-in meets protection.
fn explain_protection(observed: &Observation, decision: &mut Decision) {
    let desired = match decision.action {
        Action::SetDesired(n) | Action::SetLimits { desired: n, .. } => n,
        Action::Hold => return,
    };
    let live: Vec<&Instance> = observed
        .instances
        .iter()
        .filter(|i| i.lifecycle != Lifecycle::Terminating)
        .collect();
    let to_remove = live.len().saturating_sub(desired as usize);
    let protected = live.iter().filter(|i| i.protected).count();
    if to_remove == 0 || protected == 0 {
        return;
    }
    let removable = live.len() - protected;
    if removable >= to_remove {
        decision.rules.push(Rule::new(
            Code::Protected,
            format!(
                "{protected} protected instance(s) kept; {to_remove} of the {removable} unprotected will be terminated"
            ),
        ));
    } else {
        decision.rules.push(Rule::new(
            Code::Protected,
            format!(
                "only {removable} of {to_remove} instance(s) to remove are unprotected; {} protected instance(s) stay until unprotected",
                to_remove - removable
            ),
        ));
    }
}

/// How an alarm's state reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// A state-change event: acted on once per breach.
    StateChange,
    /// A tick's re-check of an alarm still in ALARM: acts again once the
    /// cooldown and warm-up allow, as EC2 Auto Scaling re-executes a step
    /// policy while its alarm stays in ALARM.
    Recheck(Timestamp),
}

/// The tick: every target-tracking policy and every alarm still in ALARM
/// proposes a capacity. Scale out if any proposes more (the largest wins);
/// scale in only if every one agrees (to the largest of their proposals).
// The inputs of one decision, passed down as decide() was given them.
#[allow(clippy::too_many_arguments)]
fn decide_tick(
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

/// A scheduled action sets min, max and desired as written; desired that the
/// action leaves out is kept, moved inside the new range if it falls outside
/// (as EC2 Auto Scaling does). Absolute values make a repeat harmless.
fn decide_schedule(group: &GroupPolicy, observed: &Observation, name: &str, at: Timestamp) -> Decision {
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

fn decide_alarm(
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
fn select_step<'a>(policy: &AlarmPolicy, steps: &'a [Step], value: f64) -> Option<&'a Step> {
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

fn step_rule(policy: &AlarmPolicy, step: &Step, value: f64) -> String {
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
fn adjusted(policy: &AlarmPolicy, step: &Step, base: u32, rules: &mut Vec<Rule>) -> i64 {
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

/// Instances launched within the warm-up, or still pending.
pub(crate) fn warming_instances(observed: &Observation, warmup: Duration, now: Timestamp) -> u32 {
    observed.instances.iter().filter(|i| i.is_warming(warmup, now)).count() as u32
}

impl Instance {
    /// Launched but not yet counted as capacity at `at`: pending, or in
    /// service for less than the warm-up. Leaving instances are neither.
    pub(crate) fn is_warming(&self, warmup: Duration, at: Timestamp) -> bool {
        match self.lifecycle {
            Lifecycle::Pending => true,
            Lifecycle::InService => elapsed(self.launched_at, at) < warmup,
            Lifecycle::Terminating => false,
        }
    }
}

/// When the cooldown that simple policies wait for ends: after each finished
/// activity that changed the capacity, the cooldown of the simple policy that
/// caused it (its own, else the group's), or the group's default cooldown
/// for any other cause ("the cooldown period (either the default cooldown or
/// the scaling policy-specific cooldown) takes effect from the time that the
/// last instance finishes launching or terminating").
fn cooldown_until(group: &GroupPolicy, activities: &[Activity]) -> Option<Timestamp> {
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
fn alarm_of_cause(cause: &str) -> Option<&str> {
    let rest = cause.strip_prefix("alarm ")?;
    rest.split_once(" re-check at ")
        .or_else(|| rest.split_once(" at "))
        .map(|(alarm, _)| alarm)
}

pub(crate) fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

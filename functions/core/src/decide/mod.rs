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

mod scheduled;
mod step;
mod tick;

use {scheduled::*, step::*, tick::*};

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

pub(crate) fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

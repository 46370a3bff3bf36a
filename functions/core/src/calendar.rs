//! The scheduled actions of a policy file over time (`scalectl schedule`):
//! the next fire times of each action, and the limits the actions have put
//! in effect at a given time.
//!
//! One implementation with everything else: fire times from
//! [`crate::schedule::ScheduleExpr`] (EventBridge Scheduler's rules, daylight
//! saving time included), their effect from [`crate::decide::decide`] on a
//! `Scheduled` trigger, the same call the schedule function makes.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::decide::{Action, MetricHistory, Observation, Trigger, decide};
use crate::policy::{GroupPolicy, Policy, Schedule};
use crate::schedule::ScheduleExpr;

/// How far back the last fire of an action is looked for.
const LOOKBACK_DAYS: i64 = 400;

/// One scheduled action and its next fire times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upcoming {
    pub group: String,
    pub action: String,
    pub expression: String,
    pub timezone: String,
    /// What it sets, e.g. `min 4` or `min 2, desired 3`.
    pub sets: String,
    /// The next fire times after the asked time, in UTC.
    pub next: Vec<Timestamp>,
    /// The same, in the action's time zone (RFC 3339 with its offset).
    pub next_local: Vec<String>,
}

/// A limit and what put it in effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    pub value: u32,
    /// The scheduled action that set it last and when, or None: the policy file's.
    pub set_by: Option<(String, Timestamp)>,
}

/// What a group's scheduled actions have put in effect at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InEffect {
    pub group: String,
    pub min: Limit,
    pub max: Limit,
    /// Only when an action set it: otherwise desired is the scaler's, within min..=max.
    pub desired: Option<Limit>,
}

/// A scheduled action that cannot be evaluated (validation refuses these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("group {group} schedule {action}: {problem}")]
pub struct CalendarError {
    pub group: String,
    pub action: String,
    pub problem: String,
}

struct ScheduledAction<'a> {
    schedule: &'a Schedule,
    expr: ScheduleExpr,
    zone: jiff::tz::TimeZone,
}

impl ScheduledAction<'_> {
    fn zone_name(&self) -> &str {
        self.schedule.timezone.as_deref().unwrap_or("UTC")
    }

    /// What it sets, e.g. `min 4` or `min 2, desired 3`.
    fn sets(&self) -> String {
        let s = self.schedule;
        [("min", s.min), ("max", s.max), ("desired", s.desired)]
            .iter()
            .filter_map(|(field, value)| value.map(|v| format!("{field} {v}")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn actions(group: &GroupPolicy) -> Result<Vec<ScheduledAction<'_>>, CalendarError> {
    group
        .schedules
        .iter()
        .map(|schedule| {
            let (expr, zone) = schedule.parsed().map_err(|problem| CalendarError {
                group: group.name.clone(),
                action: schedule.name.clone(),
                problem,
            })?;
            Ok(ScheduledAction { schedule, expr, zone })
        })
        .collect()
}

/// The next `count` fire times after `after` of every scheduled action, by group and action order.
pub fn upcoming(policy: &Policy, after: Timestamp, count: usize) -> Result<Vec<Upcoming>, CalendarError> {
    let mut out = Vec::new();
    for group in &policy.groups {
        for action in actions(group)? {
            let mut next = Vec::with_capacity(count);
            let mut cursor = after;
            while next.len() < count {
                let Some(at) = action.expr.next_after(cursor, &action.zone) else {
                    break;
                };
                next.push(at);
                cursor = at;
            }
            out.push(Upcoming {
                group: group.name.clone(),
                action: action.schedule.name.clone(),
                expression: action.schedule.expression().unwrap_or_default().to_string(),
                timezone: action.zone_name().to_string(),
                sets: action.sets(),
                next_local: next
                    .iter()
                    .map(|t| {
                        t.to_zoned_datetime(action.zone.clone())
                            .strftime("%Y-%m-%dT%H:%M:%S%:z")
                            .to_string()
                    })
                    .collect(),
                next,
            });
        }
    }
    Ok(out)
}

/// The last fire at or before `at` (looking back [`LOOKBACK_DAYS`]).
fn last_fire(action: &ScheduledAction<'_>, at: Timestamp) -> Option<Timestamp> {
    let mut window = SignedDuration::from_hours(24);
    let longest = SignedDuration::from_hours(24 * LOOKBACK_DAYS);
    loop {
        let from = at.checked_sub(window).ok()?;
        // fires_between is (from, to]: `at` itself counts as fired.
        if let Some(last) = action.expr.fires_between(from, at, &action.zone).last() {
            return Some(*last);
        }
        if window >= longest {
            return None;
        }
        window = (window * 2).min(longest);
    }
}

/// What each group's scheduled actions have put in effect at `at`: the last
/// fire of every action, applied in time order to the policy file's limits
/// with the schedule function's own decision.
pub fn in_effect(policy: &Policy, at: Timestamp) -> Result<Vec<InEffect>, CalendarError> {
    let mut out = Vec::new();
    for group in &policy.groups {
        let actions = actions(group)?;
        let mut fired: Vec<(Timestamp, &Schedule)> = actions
            .iter()
            .filter_map(|a| Some((last_fire(a, at)?, a.schedule)))
            .collect();
        fired.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
        let mut observed = Observation {
            min: group.min,
            max: group.max,
            desired: group.desired.unwrap_or(group.min),
            instances: Vec::new(),
        };
        let mut state = InEffect {
            group: group.name.clone(),
            min: Limit {
                value: group.min,
                set_by: None,
            },
            max: Limit {
                value: group.max,
                set_by: None,
            },
            desired: None,
        };
        for (when, schedule) in fired {
            let trigger = Trigger::Scheduled {
                name: schedule.name.clone(),
                at: when,
            };
            let Ok(decision) = decide(group, &observed, &MetricHistory::default(), &[], &trigger, when) else {
                continue;
            };
            if let Action::SetLimits { min, max, desired } = decision.action {
                observed.min = min;
                observed.max = max;
                observed.desired = desired;
            }
            // Refused (min above max with the other limit) is not in effect.
            let applied =
                schedule.min.is_none_or(|m| m == observed.min) && schedule.max.is_none_or(|m| m == observed.max);
            if !applied {
                continue;
            }
            let by = Some((schedule.name.clone(), when));
            if schedule.min.is_some() {
                state.min.set_by.clone_from(&by);
            }
            if schedule.max.is_some() {
                state.max.set_by.clone_from(&by);
            }
            if schedule.desired.is_some() {
                state.desired = Some(Limit {
                    value: observed.desired,
                    set_by: by,
                });
            }
        }
        state.min.value = observed.min;
        state.max.value = observed.max;
        if let Some(desired) = &mut state.desired {
            // Later limits may have moved it, as the group would.
            desired.value = observed.desired;
        }
        out.push(state);
    }
    Ok(out)
}

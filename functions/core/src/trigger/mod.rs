//! Every real event shape, parsed into one internal [`Event`].
//!
//! Shapes: EventBridge "CloudWatch Alarm State Change", the payload a
//! CloudWatch alarm action sends when it invokes a function directly
//! (`alarmData`), a classic alarm notification wrapped in SNS, and
//! EventBridge "Scheduled Event" (the rule name in `resources` says which
//! schedule or tick). Malformed input is an error that names what is wrong
//! and says a retry cannot help; a well-formed but unrelated event is
//! [`Parsed::Ignored`], to be logged and dropped.

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarmData, CloudWatchAlarmState, CloudWatchAlarmStateReasonData, CloudWatchAlarmStateValue,
    CloudWatchMetricAlarm,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sns::SnsEvent;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decide::{AlarmState, AlarmStatus, Trigger};
use crate::policy::Policy;

mod shapes;

pub use shapes::parse_aws_time;
use shapes::*;

/// What an event asks for, whatever shape it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Event {
    /// An alarm changed state.
    Alarm(AlarmEvent),
    /// An EventBridge schedule fired: a scheduled action or a periodic tick.
    /// `group` is the tick's group, from `detail.group` (the template's
    /// input transformer and the local cloud set it).
    Schedule {
        rule: String,
        at: Timestamp,
        group: Option<String>,
    },
}

/// An alarm state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvent {
    pub name: String,
    pub state: AlarmState,
    pub previous: Option<AlarmState>,
    /// When the alarm entered `state`: identifies the breach.
    pub state_since: Timestamp,
    /// The newest evaluated datapoint, when the event carries one.
    pub value: Option<f64>,
    /// The start of that datapoint's period, when the event says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_at: Option<Timestamp>,
    /// Which shape it came in.
    pub shape: Shape,
}

/// The event shapes we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    EventBridgeAlarm,
    AlarmAction,
    SnsAlarm,
    EventBridgeSchedule,
}

/// The result of parsing a well-formed event.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Event),
    /// Well-formed but not for us (another service's event): log and drop.
    Ignored(String),
}

/// Where an event goes: the group it concerns and the trigger to decide on.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    Decide {
        group: String,
        trigger: Trigger,
    },
    /// Not for any group of this policy file: log and drop.
    Ignored(String),
}

impl Event {
    /// Finds the group an event is for. An alarm goes to the group with a
    /// policy on it; a schedule to the group with a scheduled action of the
    /// rule's name; a tick (a rule whose event names its group in
    /// `detail.group`) to that group, re-checking `alarms` (their current
    /// states) as well.
    pub fn route(&self, policy: &Policy, alarms: &[AlarmStatus]) -> Routed {
        match self {
            Event::Alarm(alarm) => match policy.groups.iter().find(|g| g.alarm_policy(&alarm.name).is_some()) {
                Some(group) => Routed::Decide {
                    group: group.name.clone(),
                    trigger: Trigger::Alarm(AlarmStatus {
                        name: alarm.name.clone(),
                        state: alarm.state,
                        state_since: alarm.state_since,
                        value: alarm.value,
                        data_at: alarm.data_at,
                    }),
                },
                None => Routed::Ignored(format!("alarm {} drives no policy of this policy file", alarm.name)),
            },
            Event::Schedule { rule, at, group } => {
                if let Some(group) = policy
                    .groups
                    .iter()
                    .find(|g| g.schedules.iter().any(|s| s.name == *rule))
                {
                    return Routed::Decide {
                        group: group.name.clone(),
                        trigger: Trigger::Scheduled {
                            name: rule.clone(),
                            at: *at,
                        },
                    };
                }
                // A tick names its group (issue 18: matched by the rule's
                // name prefix, groups `web` and `web-api` could be confused).
                let Some(name) = group else {
                    return Routed::Ignored(if rule.ends_with("-tick") {
                        format!(
                            "tick rule {rule} carries no detail.group naming its group; ticks are routed by it (the template's tick rules and the local cloud set it: redeploy a stack older than that)"
                        )
                    } else {
                        format!(
                            "rule {rule} is neither a scheduled action nor a tick (detail.group) of this policy file"
                        )
                    });
                };
                match policy.group(name) {
                    Some(group) => Routed::Decide {
                        group: group.name.clone(),
                        trigger: Trigger::Tick {
                            at: *at,
                            alarms: alarms
                                .iter()
                                .filter(|a| group.alarm_policy(&a.name).is_some())
                                .cloned()
                                .collect(),
                        },
                    },
                    None => Routed::Ignored(format!(
                        "tick rule {rule} is for group {name}, which this policy file does not have (groups: {})",
                        policy.group_names().join(", ")
                    )),
                }
            }
        }
    }
}

/// Why an event could not be parsed. No variant is worth a retry: the same
/// bytes will fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The payload is not JSON (or is cut short).
    #[error("event is not valid JSON: {0}; a retry cannot help")]
    NotJson(String),
    /// The payload is JSON but not an object.
    #[error("event is a JSON {0}, not an object; a retry cannot help")]
    NotAnObject(&'static str),
    /// The payload has a known shape with a wrong or missing field.
    #[error("malformed {shape} event at {path}: {detail}; a retry cannot help")]
    Malformed {
        shape: &'static str,
        path: String,
        detail: String,
    },
    /// The payload matches none of the shapes we know.
    #[error(
        "unrecognised event: expected an EventBridge event (detail-type), a CloudWatch alarm action (alarmData) or an SNS notification (Records); a retry cannot help"
    )]
    Unrecognised,
}

impl TriggerError {
    /// Whether retrying the same event could succeed (never, for parse errors).
    pub fn retryable(&self) -> bool {
        false
    }
}

/// Parses event text.
pub fn parse_str(text: &str) -> Result<Parsed, TriggerError> {
    let value: Value = serde_json::from_str(text).map_err(|e| TriggerError::NotJson(e.to_string()))?;
    parse(&value)
}

/// Parses an event already decoded as JSON.
pub fn parse(value: &Value) -> Result<Parsed, TriggerError> {
    let object = match value {
        Value::Object(object) => object,
        Value::Array(_) => return Err(TriggerError::NotAnObject("array")),
        Value::String(_) => return Err(TriggerError::NotAnObject("string")),
        Value::Number(_) => return Err(TriggerError::NotAnObject("number")),
        Value::Bool(_) => return Err(TriggerError::NotAnObject("boolean")),
        Value::Null => return Err(TriggerError::NotAnObject("null")),
    };
    if let Some(detail_type) = object.get("detail-type") {
        let source = object.get("source").and_then(Value::as_str).unwrap_or("?");
        return match detail_type.as_str() {
            Some("CloudWatch Alarm State Change") => eventbridge_alarm(value),
            Some("Scheduled Event") => eventbridge_schedule(value),
            Some(other) => Ok(Parsed::Ignored(format!(
                "unrelated EventBridge event {other:?} from {source}"
            ))),
            None => Err(TriggerError::Malformed {
                shape: "EventBridge",
                path: "detail-type".into(),
                detail: "expected a string".into(),
            }),
        };
    }
    if object.contains_key("alarmData") {
        return alarm_action(value);
    }
    if object.contains_key("Records") {
        return sns(value);
    }
    Err(TriggerError::Unrecognised)
}

/// Deserialises `value` as `T`, naming the failing field's path.
pub(crate) fn typed<T: DeserializeOwned>(shape: &'static str, value: &Value) -> Result<T, TriggerError> {
    serde_path_to_error::deserialize(value).map_err(|e| TriggerError::Malformed {
        shape,
        path: e.path().to_string(),
        detail: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_time_formats() {
        let expected: Timestamp = "2026-11-20T11:06:00.120Z".parse().expect("ts");
        assert_eq!(parse_aws_time("2026-11-20T11:06:00.120+0000"), Some(expected));
        assert_eq!(parse_aws_time("2026-11-20T11:06:00.120Z"), Some(expected));
        assert_eq!(parse_aws_time("2026-11-20T19:06:00.120+0800"), Some(expected));
        assert_eq!(parse_aws_time("yesterday"), None);
    }
}

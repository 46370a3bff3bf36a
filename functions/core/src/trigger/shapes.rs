//! Each shape a trigger arrives in, read with `aws_lambda_events`' types:
//! the EventBridge alarm state change, the alarm action, the schedule's
//! Scheduled Event, the SNS alarm notification.

use super::*;

pub(super) fn eventbridge_alarm(value: &Value) -> Result<Parsed, TriggerError> {
    const SHAPE: &str = "CloudWatch Alarm State Change";
    let event: EventBridgeEvent<CloudWatchAlarmData> = typed(SHAPE, value)?;
    alarm_from_data(SHAPE, "detail", &event.detail, Shape::EventBridgeAlarm)
}

pub(super) fn alarm_action(value: &Value) -> Result<Parsed, TriggerError> {
    const SHAPE: &str = "CloudWatch alarm action";
    let event: CloudWatchMetricAlarm = typed(SHAPE, value)?;
    alarm_from_data(SHAPE, "alarmData", &event.alarm_data, Shape::AlarmAction)
}

pub(super) fn alarm_from_data<C>(
    shape: &'static str,
    at: &str,
    data: &CloudWatchAlarmData<C, CloudWatchAlarmStateReasonData>,
    kind: Shape,
) -> Result<Parsed, TriggerError>
where
    C: Serialize + DeserializeOwned,
{
    let missing = |field: &str| TriggerError::Malformed {
        shape,
        path: format!("{at}.{field}"),
        detail: "missing".into(),
    };
    let state = data.state.as_ref().ok_or_else(|| missing("state"))?;
    if data.alarm_name.is_empty() {
        return Err(missing("alarmName"));
    }
    let newest = newest_datapoint(state);
    Ok(Parsed::Event(Event::Alarm(AlarmEvent {
        name: data.alarm_name.clone(),
        state: state_of(shape, format!("{at}.state.value"), &state.value)?,
        previous: data
            .previous_state
            .as_ref()
            .map(|p| state_of(shape, format!("{at}.previousState.value"), &p.value))
            .transpose()?,
        state_since: timestamp(state.timestamp),
        value: newest.map(|(_, v)| v),
        data_at: newest.and_then(|(at, _)| at),
        shape: kind,
    })))
}

pub(super) fn state_of(
    shape: &'static str,
    path: String,
    value: &CloudWatchAlarmStateValue,
) -> Result<AlarmState, TriggerError> {
    match value {
        CloudWatchAlarmStateValue::Ok => Ok(AlarmState::Ok),
        CloudWatchAlarmStateValue::Alarm => Ok(AlarmState::Alarm),
        CloudWatchAlarmStateValue::InsufficientData => Ok(AlarmState::InsufficientData),
        other => Err(TriggerError::Malformed {
            shape,
            path,
            detail: format!("unknown state {other:?}, expected OK, ALARM or INSUFFICIENT_DATA"),
        }),
    }
}

/// The newest evaluated datapoint (by timestamp), else the last of the
/// recent ones: (its period start when given, value).
pub(super) fn newest_datapoint(
    state: &CloudWatchAlarmState<CloudWatchAlarmStateReasonData>,
) -> Option<(Option<Timestamp>, f64)> {
    let Some(CloudWatchAlarmStateReasonData::Metric(data)) = &state.reason_data else {
        return None;
    };
    data.evaluated_datapoints
        .iter()
        .filter_map(|d| d.value.map(|v| (d.timestamp, v)))
        .max_by_key(|(t, _)| *t)
        .map(|(t, v)| (Some(timestamp(t)), v))
        .or_else(|| data.recent_datapoints.last().map(|v| (None, *v)))
}

pub(super) fn timestamp(time: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp::new(time.timestamp(), time.timestamp_subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(super) fn eventbridge_schedule(value: &Value) -> Result<Parsed, TriggerError> {
    const SHAPE: &str = "Scheduled Event";
    let event: EventBridgeEvent = typed(SHAPE, value)?;
    let malformed = |path: &str, detail: &str| TriggerError::Malformed {
        shape: SHAPE,
        path: path.into(),
        detail: detail.into(),
    };
    let at = event.time.map(timestamp).ok_or_else(|| malformed("time", "missing"))?;
    let resource = event
        .resources
        .as_ref()
        .and_then(|r| r.first())
        .ok_or_else(|| malformed("resources", "missing the rule ARN that says which schedule fired"))?;
    // arn:aws:events:REGION:ACCOUNT:rule/[BUS/]NAME
    let rule = resource
        .split_once(":rule/")
        .map(|(_, rest)| rest.rsplit('/').next().unwrap_or(rest))
        .filter(|name| !name.is_empty())
        .ok_or_else(|| malformed("resources[0]", &format!("{resource:?} is not an EventBridge rule ARN")))?;
    let group = match event.detail.get("group") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
        Some(other) => {
            return Err(malformed(
                "detail.group",
                &format!("{other} is not a group name (a non-empty string)"),
            ));
        }
    };
    Ok(Parsed::Event(Event::Schedule {
        rule: rule.to_string(),
        at,
        group,
    }))
}

/// The fields of a CloudWatch alarm notification delivered by SNS that a
/// decision needs. Not `aws_lambda_events`' `CloudWatchAlarmPayload`: it
/// requires every field as a string, and AWS sends `"AlarmDescription":
/// null` for an alarm without a description (PutMetricAlarm:
/// AlarmDescription "Required: No"), `"Subject": null`, and a `Trigger` with
/// `Metrics` instead of `MetricName` for a metric-math alarm: such real
/// notifications were refused as malformed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SnsAlarmNotification {
    alarm_name: String,
    new_state_value: String,
    old_state_value: String,
    state_change_time: String,
}

pub(super) fn sns(value: &Value) -> Result<Parsed, TriggerError> {
    const SHAPE: &str = "SNS";
    let event: SnsEvent = typed(SHAPE, value)?;
    let Some(record) = event.records.first() else {
        return Err(TriggerError::Malformed {
            shape: SHAPE,
            path: "Records".into(),
            detail: "empty".into(),
        });
    };
    // SNS delivers the alarm as a JSON string inside the JSON.
    let Ok(message) = serde_json::from_str::<Value>(&record.sns.message) else {
        return Ok(Parsed::Ignored(
            "SNS message that is not JSON (not an alarm notification)".into(),
        ));
    };
    if message.get("AlarmName").is_none() {
        return Ok(Parsed::Ignored(
            "SNS message that is not a CloudWatch alarm notification".into(),
        ));
    }
    let alarm: SnsAlarmNotification = typed("SNS alarm notification", &message)?;
    let state = |text: &str, path: &str| match text {
        "OK" => Ok(AlarmState::Ok),
        "ALARM" => Ok(AlarmState::Alarm),
        "INSUFFICIENT_DATA" => Ok(AlarmState::InsufficientData),
        other => Err(TriggerError::Malformed {
            shape: "SNS alarm notification",
            path: path.into(),
            detail: format!("unknown state {other:?}, expected OK, ALARM or INSUFFICIENT_DATA"),
        }),
    };
    let since = parse_aws_time(&alarm.state_change_time).ok_or_else(|| TriggerError::Malformed {
        shape: "SNS alarm notification",
        path: "StateChangeTime".into(),
        detail: format!("{:?} is not a timestamp", alarm.state_change_time),
    })?;
    Ok(Parsed::Event(Event::Alarm(AlarmEvent {
        name: alarm.alarm_name.clone(),
        state: state(&alarm.new_state_value, "NewStateValue")?,
        previous: Some(state(&alarm.old_state_value, "OldStateValue")?),
        state_since: since,
        // Classic notifications carry no datapoint: the handler reads the metric.
        value: None,
        data_at: None,
        shape: Shape::SnsAlarm,
    })))
}

/// AWS writes `2026-11-20T11:06:00.120+0000` (no colon in the offset).
pub fn parse_aws_time(text: &str) -> Option<Timestamp> {
    if let Ok(t) = text.parse() {
        return Some(t);
    }
    let (head, offset) = text.split_at(text.len().checked_sub(5)?);
    let (sign, digits) = offset.split_at(1);
    if !(sign == "+" || sign == "-") || digits.len() != 4 {
        return None;
    }
    format!("{head}{sign}{}:{}", &digits[..2], &digits[2..]).parse().ok()
}

//! Alarms with CloudWatch semantics: at the end of each period the alarm
//! reads its statistic for the last N periods and goes to ALARM when M of
//! them breach (missing data treated as the alarm says), to OK otherwise, or
//! to INSUFFICIENT_DATA when there is nothing to judge. A state change is an
//! EventBridge "CloudWatch Alarm State Change" event, the same JSON AWS sends.

use functions::decide::{AlarmState, AlarmStatus};
use functions::policy::{AlarmPolicy, MissingData};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::metrics::MetricStore;

/// One alarm and its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alarm {
    pub name: String,
    pub group: String,
    pub state: AlarmState,
    pub state_since: Timestamp,
    pub reason: String,
    /// The period values of the last evaluation, oldest first (None: missing).
    pub values: Vec<Option<f64>>,
    /// The end of the last evaluated period.
    pub evaluated_at: Option<Timestamp>,
    #[serde(skip)]
    policy: Option<AlarmPolicy>,
}

/// A state change, with the event to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub alarm: String,
    pub from: AlarmState,
    pub to: AlarmState,
    pub event: Value,
}

impl Alarm {
    pub fn new(group: &str, policy: &AlarmPolicy, now: Timestamp) -> Self {
        Self {
            name: policy.alarm.clone(),
            group: group.to_string(),
            state: AlarmState::InsufficientData,
            state_since: now,
            reason: "Unchecked: Initial alarm creation".into(),
            values: Vec::new(),
            evaluated_at: None,
            policy: Some(policy.clone()),
        }
    }

    fn policy(&self) -> &AlarmPolicy {
        // Set by `new`; only a deserialised copy lacks it, and those are never evaluated.
        self.policy
            .as_ref()
            .unwrap_or_else(|| unreachable!("alarm {} has no policy", self.name))
    }

    pub fn status(&self) -> AlarmStatus {
        AlarmStatus {
            name: self.name.clone(),
            state: self.state,
            state_since: self.state_since,
            value: self.values.iter().rev().find_map(|v| *v),
        }
    }

    /// Evaluates every period end in `(evaluated_at, now]` (the newest one
    /// only, if several passed), returning the state change if any.
    pub fn evaluate(&mut self, store: &MetricStore, now: Timestamp) -> Option<StateChange> {
        let policy = self.policy().clone();
        let period = SignedDuration::try_from(policy.period).ok()?;
        let period_s = period.as_secs().max(1);
        let end = Timestamp::from_second(now.as_second().div_euclid(period_s) * period_s).ok()?;
        if self.evaluated_at.is_some_and(|last| last >= end) {
            return None;
        }
        self.evaluated_at = Some(end);
        let n = policy.evaluation_periods as usize;
        let m = policy.datapoints_to_alarm.unwrap_or(policy.evaluation_periods) as usize;
        self.values = (0..n)
            .rev()
            .map(|k| store.statistic(&policy.metric, period, end - period * k as i32))
            .collect();
        let present: Vec<f64> = self.values.iter().flatten().copied().collect();
        let missing = n - present.len();
        let breaching_present = present
            .iter()
            .filter(|v| policy.comparison.breached(**v, policy.threshold))
            .count();
        let breaching = match policy.missing_data {
            MissingData::Breaching => breaching_present + missing,
            _ => breaching_present,
        };
        // CloudWatch's documented table: with `missing` and `ignore`, fewer
        // present datapoints than M judge by the present ones (missing: ALARM
        // if all of them breach, else OK; ignore: keep the state).
        let all_present_breach = !present.is_empty() && breaching_present == present.len();
        let next = match policy.missing_data {
            _ if breaching >= m => AlarmState::Alarm,
            MissingData::NotBreaching | MissingData::Breaching => AlarmState::Ok,
            MissingData::Missing if present.is_empty() => AlarmState::InsufficientData,
            MissingData::Missing if present.len() < m && all_present_breach => AlarmState::Alarm,
            MissingData::Ignore if present.len() < m => self.state,
            MissingData::Missing | MissingData::Ignore => AlarmState::Ok,
        };
        let shown: Vec<String> = self
            .values
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(k, v)| {
                v.map(|v| {
                    format!(
                        "{v:.1} ({})",
                        (end - period * (n - k) as i32).strftime("%d/%m/%y %H:%M:%S")
                    )
                })
            })
            .collect();
        let judged = if next == AlarmState::Alarm {
            "breached"
        } else {
            "did not breach"
        };
        let reason = format!(
            "Threshold Crossed: {breaching} out of the last {n} datapoints [{}] {judged} the threshold ({} {:.1}), {} present (minimum {m} datapoints for OK -> ALARM transition).",
            shown.join(", "),
            policy.comparison.symbol(),
            policy.threshold,
            present.len()
        );
        if next == self.state {
            return None;
        }
        let from = self.state;
        let previous = (self.state, self.reason.clone(), self.state_since);
        self.state = next;
        self.reason = reason;
        self.state_since = now;
        Some(StateChange {
            alarm: self.name.clone(),
            from,
            to: next,
            event: self.event(previous, end, &policy, now),
        })
    }

    /// The EventBridge "CloudWatch Alarm State Change" event of the current state.
    fn event(
        &self,
        previous: (AlarmState, String, Timestamp),
        end: Timestamp,
        policy: &AlarmPolicy,
        now: Timestamp,
    ) -> Value {
        let period = policy.period.as_secs();
        let n = self.values.len();
        let evaluated: Vec<Value> = self
            .values
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(k, v)| {
                let at = end - SignedDuration::from_secs(period as i64 * (n - k) as i64);
                v.map(|v| json!({ "timestamp": aws_time(at), "sampleCount": 1.0, "value": v }))
            })
            .collect();
        let reason_data = json!({
            "version": "1.0",
            "queryDate": aws_time(now),
            "startDate": aws_time(end - SignedDuration::from_secs(period as i64 * n as i64)),
            "statistic": policy.metric.stat,
            "period": period,
            "recentDatapoints": self.values.iter().flatten().collect::<Vec<_>>(),
            "threshold": policy.threshold,
            "evaluatedDatapoints": evaluated,
        });
        json!({
            "version": "0",
            "id": event_id(),
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": ACCOUNT,
            "time": now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": REGION,
            "resources": [format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{}", self.name)],
            "detail": {
                "alarmName": self.name,
                "state": {
                    "value": state_name(self.state),
                    "reason": self.reason,
                    "reasonData": reason_data.to_string(),
                    "timestamp": aws_time(now),
                },
                "previousState": {
                    "value": state_name(previous.0),
                    "reason": previous.1,
                    "timestamp": aws_time(previous.2),
                },
                "configuration": {
                    "description": format!("{} of group {}", self.name, self.group),
                    "metrics": [{
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": policy.metric.namespace,
                                "name": policy.metric.name,
                                "dimensions": policy.metric.dimensions,
                            },
                            "period": period,
                            "stat": policy.metric.stat,
                        },
                        "returnData": true,
                    }],
                },
            },
        })
    }
}

pub const ACCOUNT: &str = "000000000000";
pub const REGION: &str = "local-1";

fn state_name(state: AlarmState) -> &'static str {
    match state {
        AlarmState::Ok => "OK",
        AlarmState::Alarm => "ALARM",
        AlarmState::InsufficientData => "INSUFFICIENT_DATA",
    }
}

/// CloudWatch's time format in events: `2026-11-20T11:05:00.218+0000`.
pub fn aws_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A random UUID-shaped event id.
pub fn event_id() -> String {
    let v = fastrand::u128(..);
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SeriesKey;

    fn policy(extra: &str) -> AlarmPolicy {
        let text = format!(
            r#"[[group]]
name = "web"
min = 1
max = 5
[[group.alarm_policy]]
type = "step"
alarm = "web-cpu-high"
metric = {{ namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = {{ AutoScalingGroupName = "web" }} }}
comparison = ">"
threshold = 70
period = "60s"
evaluation_periods = 3
adjustment = "change_in_capacity"
steps = [{{ lower = 0, change = 2 }}]
{extra}
"#
        );
        functions::policy::Policy::parse("test", &text).expect("policy").groups[0].alarm_policies[0].clone()
    }

    fn minute(k: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 / 60 * 60 + 60 * k).expect("time")
    }

    fn put(store: &mut MetricStore, k: i64, v: f64) {
        store.put(
            SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", "web")]),
            minute(k) + SignedDuration::from_secs(5),
            v,
        );
    }

    /// Evaluates at the end of each minute 1..=minutes with `values[k]` in minute k.
    fn run(alarm: &mut Alarm, values: &[Option<f64>]) -> Vec<(usize, StateChange)> {
        let mut store = MetricStore::default();
        let mut changes = Vec::new();
        for (k, v) in values.iter().enumerate() {
            if let Some(v) = v {
                put(&mut store, k as i64, *v);
            }
            if let Some(change) = alarm.evaluate(&store, minute(k as i64 + 1)) {
                changes.push((k, change));
            }
        }
        changes
    }

    #[test]
    fn goes_to_alarm_after_exactly_the_configured_datapoints() {
        let p = policy("");
        let mut alarm = Alarm::new("web", &p, minute(0));
        let changes = run(
            &mut alarm,
            &[Some(50.0), Some(80.0), Some(85.0), Some(90.0), Some(95.0)],
        );
        let states: Vec<(usize, AlarmState)> = changes.iter().map(|(k, c)| (*k, c.to)).collect();
        // Minute 0 (50%) gives OK; minutes 1, 2, 3 breach: ALARM at the end of minute 3.
        assert_eq!(states, [(0, AlarmState::Ok), (3, AlarmState::Alarm)]);
        let event = &changes[1].1.event;
        assert_eq!(event["detail-type"], "CloudWatch Alarm State Change");
        assert_eq!(event["detail"]["alarmName"], "web-cpu-high");
        assert_eq!(event["detail"]["state"]["value"], "ALARM");
        assert_eq!(event["detail"]["previousState"]["value"], "OK");
        // The real trigger parser reads it, with the newest datapoint.
        match functions::trigger::parse_str(&event.to_string()).expect("parses") {
            functions::trigger::Parsed::Event(functions::trigger::Event::Alarm(a)) => {
                assert_eq!(a.name, "web-cpu-high");
                assert_eq!(a.state, AlarmState::Alarm);
                assert_eq!(a.value, Some(90.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn m_of_n_and_missing_data_treatments() {
        // 2 of 3: two breaching minutes out of three are enough.
        let mut alarm = Alarm::new("web", &policy("datapoints_to_alarm = 2"), minute(0));
        let changes = run(&mut alarm, &[Some(80.0), Some(10.0), Some(90.0)]);
        assert_eq!(changes.last().map(|(k, c)| (*k, c.to)), Some((2, AlarmState::Alarm)));

        // No data at all: INSUFFICIENT_DATA stays (missing), OK (notBreaching), ALARM (breaching).
        for (treatment, expected) in [
            ("missing", None),
            ("not_breaching", Some(AlarmState::Ok)),
            ("breaching", Some(AlarmState::Alarm)),
            ("ignore", None),
        ] {
            let mut alarm = Alarm::new("web", &policy(&format!("missing_data = \"{treatment}\"")), minute(0));
            let changes = run(&mut alarm, &[None, None, None]);
            assert_eq!(changes.last().map(|(_, c)| c.to), expected, "{treatment}");
        }

        // Ignore keeps ALARM through a gap; missing keeps it while every
        // present datapoint breaches; notBreaching drops to OK.
        let mut alarm = Alarm::new("web", &policy("missing_data = \"ignore\""), minute(0));
        let changes = run(&mut alarm, &[Some(90.0), Some(90.0), Some(90.0), None, None, None]);
        assert_eq!(changes.last().map(|(k, c)| (*k, c.to)), Some((2, AlarmState::Alarm)));
        let mut alarm = Alarm::new("web", &policy("missing_data = \"not_breaching\""), minute(0));
        let changes = run(&mut alarm, &[Some(90.0), Some(90.0), Some(90.0), None, None, None]);
        assert_eq!(changes.last().map(|(k, c)| (*k, c.to)), Some((3, AlarmState::Ok)));
        let mut alarm = Alarm::new("web", &policy(""), minute(0));
        let changes = run(&mut alarm, &[Some(90.0), Some(90.0), Some(90.0), None, None, None]);
        let states: Vec<(usize, AlarmState)> = changes.iter().map(|(k, c)| (*k, c.to)).collect();
        assert_eq!(states, [(0, AlarmState::Alarm), (5, AlarmState::InsufficientData)]);
        // One present datapoint, not breaching: OK (the "- - 0" row).
        let mut alarm = Alarm::new("web", &policy(""), minute(0));
        let changes = run(&mut alarm, &[None, None, Some(10.0)]);
        assert_eq!(changes.last().map(|(k, c)| (*k, c.to)), Some((2, AlarmState::Ok)));
    }

    #[test]
    fn evaluates_once_per_period() {
        let mut alarm = Alarm::new("web", &policy(""), minute(0));
        let mut store = MetricStore::default();
        put(&mut store, 0, 10.0);
        assert!(alarm.evaluate(&store, minute(1)).is_some());
        assert!(
            alarm
                .evaluate(&store, minute(1) + SignedDuration::from_secs(30))
                .is_none()
        );
        assert_eq!(alarm.evaluated_at, Some(minute(1)));
    }
}

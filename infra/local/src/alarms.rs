//! Alarms with CloudWatch semantics: at the end of each period the alarm
//! reads its statistic for the last N periods and goes to ALARM when M of
//! them breach (missing data treated as the alarm says), to OK otherwise, or
//! to INSUFFICIENT_DATA when there is nothing to judge. A state change is an
//! EventBridge "CloudWatch Alarm State Change" event, the same JSON AWS sends.

use jiff::{SignedDuration, Timestamp};
use scaling::decide::{AlarmState, AlarmStatus};
use scaling::policy::AlarmPolicy;
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
    /// The period values of the last evaluation's range, oldest first (None: missing).
    pub values: Vec<Option<f64>>,
    /// The end of the last evaluated period.
    pub evaluated_at: Option<Timestamp>,
    /// Which of `values` the last evaluation judged (indexes, oldest first).
    #[serde(default)]
    pub evaluated: Vec<usize>,
    /// An alarm of the shadow policy: its state changes go to the shadow
    /// function (dry run), not the deciding one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    #[serde(skip)]
    policy: Option<AlarmPolicy>,
}

/// A state change, with the event to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub alarm: String,
    /// The alarm's group (the trigger queue's message group).
    pub group: String,
    pub from: AlarmState,
    pub to: AlarmState,
    pub event: Value,
    /// The alarm is the shadow policy's (see [`Alarm::shadow`]).
    pub shadow: bool,
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
            evaluated: Vec::new(),
            shadow: false,
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
        let newest = self.newest();
        AlarmStatus {
            name: self.name.clone(),
            state: self.state,
            state_since: self.state_since,
            value: newest.map(|(_, v)| v),
            data_at: newest.map(|(at, _)| at),
        }
    }

    /// The newest datapoint the last evaluation judged: (period start, value).
    fn newest(&self) -> Option<(Timestamp, f64)> {
        let k = *self.evaluated.last()?;
        Some((self.period_start(k)?, self.values.get(k).copied().flatten()?))
    }

    /// The start of period `k` of the last evaluation's range (`values[k]`).
    fn period_start(&self, k: usize) -> Option<Timestamp> {
        let (policy, end) = (self.policy.as_ref()?, self.evaluated_at?);
        Some(scaling::cloudwatch::period_start(policy, end, self.values.len(), k))
    }

    /// Evaluates at each evaluation time in `(evaluated_at, now]` (every
    /// minute, or every 10 s for a short period: the newest one only, if
    /// several passed), returning the state change if any. The alarm reads
    /// its evaluation range, periods ending at that time, as CloudWatch
    /// shows it at `now` (late datapoints missing) and judges it with
    /// [`scaling::cloudwatch::judge`].
    pub fn evaluate(&mut self, store: &MetricStore, now: Timestamp) -> Option<StateChange> {
        let policy = self.policy().clone();
        let period = SignedDuration::try_from(policy.period).ok()?;
        let end = scaling::cloudwatch::evaluation_end(policy.period, now);
        if self.evaluated_at.is_some_and(|last| last >= end) {
            return None;
        }
        self.evaluated_at = Some(end);
        let readable = store.at(now);
        self.values = scaling::cloudwatch::read_range(&policy, end, |period_end| {
            readable.statistic(&policy.metric, period, period_end)
        });
        let judged = scaling::cloudwatch::judge(&policy, &self.values, self.state);
        self.evaluated = judged.evaluated.iter().map(|(k, _)| *k).collect();
        let n = policy.evaluation_periods as usize;
        let m = policy.datapoints_to_alarm.unwrap_or(policy.evaluation_periods) as usize;
        let shown: Vec<String> = judged
            .evaluated
            .iter()
            .rev()
            .filter_map(|(k, v)| {
                Some(format!(
                    "{v:.1} ({})",
                    self.period_start(*k)?.strftime("%d/%m/%y %H:%M:%S")
                ))
            })
            .collect();
        let next = judged.state;
        let judged_word = if next == AlarmState::Alarm {
            "breached"
        } else {
            "did not breach"
        };
        let filled = if judged.filled > 0 {
            format!(", {} missing treated as {:?}", judged.filled, policy.missing_data)
        } else {
            String::new()
        };
        let reason = format!(
            "Threshold Crossed: {} out of the last {n} datapoints [{}] {judged_word} the threshold ({} {:.1}){filled} (minimum {m} datapoints for OK -> ALARM transition).",
            judged.breaching,
            shown.join(", "),
            policy.comparison.symbol(),
            policy.threshold,
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
            group: self.group.clone(),
            from,
            to: next,
            event: self.event(previous, end, &policy, now),
            shadow: self.shadow,
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
        // The datapoints judged, newest first, with their period starts.
        let evaluated: Vec<Value> = self
            .evaluated
            .iter()
            .rev()
            .filter_map(|k| {
                let v = self.values.get(*k).copied().flatten()?;
                Some(json!({ "timestamp": aws_time(self.period_start(*k)?), "sampleCount": 1.0, "value": v }))
            })
            .collect();
        let reason_data = json!({
            "version": "1.0",
            "queryDate": aws_time(now),
            "startDate": aws_time(self.period_start(0).unwrap_or(end)),
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
        scaling::policy::Policy::parse("test", &text).expect("policy").groups[0].alarm_policies[0].clone()
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

    /// Evaluates at the end of each minute 1..=minutes with `values[k]` in
    /// minute k, each readable at once (no ingestion delay).
    fn run(alarm: &mut Alarm, values: &[Option<f64>]) -> Vec<(usize, StateChange)> {
        run_with(alarm, values, std::time::Duration::ZERO)
    }

    fn run_with(alarm: &mut Alarm, values: &[Option<f64>], delay: std::time::Duration) -> Vec<(usize, StateChange)> {
        let mut store = MetricStore::with_delay(delay);
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
        match scaling::trigger::parse_str(&event.to_string()).expect("parses") {
            scaling::trigger::Parsed::Event(scaling::trigger::Event::Alarm(a)) => {
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

        // The evaluation range (CloudWatch User Guide, "How alarm state is
        // evaluated when data is missing"): while N real datapoints remain in
        // the range, the treatment of missing data is not used, and the alarm
        // re-evaluates them after the metric stops flowing; ignore and
        // missing keep ALARM, notBreaching fills in once fewer than N remain.
        let stopped = [Some(90.0), Some(90.0), Some(90.0), None, None, None, None, None];
        let mut alarm = Alarm::new("web", &policy("missing_data = \"ignore\""), minute(0));
        let changes = run(&mut alarm, &stopped);
        assert_eq!(
            changes.iter().map(|(k, c)| (*k, c.to)).collect::<Vec<_>>(),
            [(2, AlarmState::Alarm)]
        );
        let mut alarm = Alarm::new("web", &policy("missing_data = \"not_breaching\""), minute(0));
        let changes = run(&mut alarm, &stopped);
        // The range is 3 + 4 one-minute periods: minute 0 leaves it at the end of minute 7.
        assert_eq!(changes.last().map(|(k, c)| (*k, c.to)), Some((7, AlarmState::Ok)));
        let mut alarm = Alarm::new("web", &policy(""), minute(0));
        let changes = run(&mut alarm, &stopped);
        let states: Vec<(usize, AlarmState)> = changes.iter().map(|(k, c)| (*k, c.to)).collect();
        // One breaching minute is not yet 3 of 3 (the guide's "- - - - X" row:
        // INSUFFICIENT_DATA, so no change); all three are.
        assert_eq!(states, [(2, AlarmState::Alarm)]);
        // One present datapoint, not breaching: OK (the "- - 0" row).
        let mut alarm = Alarm::new("web", &policy(""), minute(0));
        let changes = run(&mut alarm, &[None, None, Some(10.0)]);
        assert_eq!(changes.last().map(|(k, c)| (*k, c.to)), Some((2, AlarmState::Ok)));
    }

    /// CloudWatch is late (`scaling::cloudwatch::INGESTION_DELAY`): with
    /// the delay, the same breach reaches ALARM three minutes later, and the
    /// late minutes never count as missing data.
    #[test]
    fn late_datapoints_delay_the_alarm_by_the_ingestion_delay() {
        let values = [
            Some(50.0),
            Some(80.0),
            Some(85.0),
            Some(90.0),
            Some(95.0),
            Some(95.0),
            Some(95.0),
            Some(95.0),
        ];
        let on_time = run(&mut Alarm::new("web", &policy(""), minute(0)), &values);
        let late = run_with(
            &mut Alarm::new("web", &policy(""), minute(0)),
            &values,
            scaling::cloudwatch::INGESTION_DELAY,
        );
        let states = |c: &[(usize, StateChange)]| c.iter().map(|(k, c)| (*k, c.to)).collect::<Vec<_>>();
        assert_eq!(states(&on_time), [(0, AlarmState::Ok), (3, AlarmState::Alarm)]);
        assert_eq!(states(&late), [(3, AlarmState::Ok), (6, AlarmState::Alarm)]);
        // The event names the datapoints judged: minutes 1-3, not the late ones.
        let event = &late[1].1.event;
        let data: serde_json::Value =
            serde_json::from_str(event["detail"]["state"]["reasonData"].as_str().expect("reason data")).expect("json");
        let stamps: Vec<&str> = data["evaluatedDatapoints"]
            .as_array()
            .expect("evaluated")
            .iter()
            .map(|d| d["timestamp"].as_str().expect("timestamp"))
            .collect();
        assert_eq!(stamps, [aws_time(minute(3)), aws_time(minute(2)), aws_time(minute(1))]);
    }

    #[test]
    fn evaluates_once_per_minute() {
        let mut alarm = Alarm::new("web", &policy(""), minute(0));
        let mut store = MetricStore::with_delay(std::time::Duration::ZERO);
        put(&mut store, 0, 10.0);
        assert!(alarm.evaluate(&store, minute(1)).is_some());
        assert!(
            alarm
                .evaluate(&store, minute(1) + SignedDuration::from_secs(30))
                .is_none()
        );
        assert_eq!(alarm.evaluated_at, Some(minute(1)));
    }

    /// CloudWatch evaluates a 5-minute alarm every minute over periods that
    /// end then ("Using Amazon CloudWatch alarms"): a breach that the
    /// period boundary would have hidden, or a late minute, is judged at the
    /// next minute, not five minutes later.
    #[test]
    fn a_five_minute_alarm_is_evaluated_every_minute_on_a_rolling_window() {
        let mut five = policy("");
        (five.period, five.evaluation_periods, five.datapoints_to_alarm) =
            (std::time::Duration::from_secs(300), 1, Some(1));
        let store = |breach_from: i64| {
            let mut store = MetricStore::with_delay(std::time::Duration::ZERO);
            for k in 0..7 {
                put(&mut store, k, if k < breach_from { 10.0 } else { 100.0 });
            }
            store
        };
        // 00:05 judges [00:00, 00:05): 10, 100, 100, 100, 100 = 82 > 70.
        let mut alarm = Alarm::new("web", &five, minute(0));
        assert_eq!(
            alarm.evaluate(&store(1), minute(5)).map(|c| c.to),
            Some(AlarmState::Alarm)
        );
        // 10, 10, 10, 100, 100 = 46 at 00:05; 00:06 judges [00:01, 00:06):
        // 64, still OK; 00:07 judges [00:02, 00:07): 82, ALARM, two minutes
        // before the next 5-minute boundary.
        let (mut alarm, store) = (Alarm::new("web", &five, minute(0)), store(3));
        assert_eq!(alarm.evaluate(&store, minute(5)).map(|c| c.to), Some(AlarmState::Ok));
        assert!(alarm.evaluate(&store, minute(6)).is_none());
        assert_eq!(alarm.evaluated_at, Some(minute(6)));
        assert_eq!(alarm.evaluate(&store, minute(7)).map(|c| c.to), Some(AlarmState::Alarm));
    }
}

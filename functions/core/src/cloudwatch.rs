//! CloudWatch's rules, in one place for every part: when a datapoint can be
//! read, and how a metric alarm judges the datapoints it retrieves. The
//! functions rely on them (on AWS, CloudWatch applies them), the local cloud
//! and the backtest simulate them with this code.
//!
//! - **Ingestion delay.** EC2's detailed-monitoring datapoints (and the load
//!   balancer's) reach CloudWatch about 2-3 minutes after their one-minute
//!   period starts. [`INGESTION_DELAY`] is the late end of that: a simulation
//!   that shows data earlier than AWS does is more lenient than AWS.
//! - **The evaluation range** (CloudWatch User Guide, "How alarm state is
//!   evaluated when data is missing", `AlarmThatSendsEmail`): an alarm
//!   retrieves more periods than its `EvaluationPeriods`, evaluates the most
//!   recent *existing* datapoints in that range, and fills in missing ones
//!   with its treat-missing-data setting only as few times as possible. So a
//!   late datapoint delays an alarm; it does not make it INSUFFICIENT_DATA.
//!   [`judge`] follows the guide's two example tables row for row (the tests
//!   below are those tables).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::decide::AlarmState;
use crate::policy::{AlarmPolicy, MissingData};

/// From the start of a one-minute period until its datapoint can be read.
pub const INGESTION_DELAY: Duration = Duration::from_secs(180);

/// The longest ingestion delay a simulation accepts (`--ingestion-delay`).
pub const MAX_INGESTION_DELAY: Duration = Duration::from_secs(3600);

/// "N old": how long before `now` the datapoint of the period starting at
/// `at` began, for a decision's explanation (CloudWatch's data is minutes
/// late, so a decision says how old its data was).
pub fn age(at: Timestamp, now: Timestamp) -> String {
    let whole_seconds = Duration::from_secs(crate::decide::elapsed(at, now).as_secs());
    format!("{} old", humantime::format_duration(whole_seconds))
}

/// Target tracking's freshness window: a datapoint older than this (from
/// its period start) counts as missing. Sized for the ingestion delay: the
/// newest readable one-minute datapoint started up to `INGESTION_DELAY` +
/// one minute ago; one more minute covers a datapoint a little later still.
pub const FRESHNESS: Duration = Duration::from_secs(INGESTION_DELAY.as_secs() + 120);

/// Whether the datapoint of the period starting at `period_start` can be
/// read at `now` with an ingestion delay of `delay`.
pub fn readable(period_start: Timestamp, delay: Duration, now: Timestamp) -> bool {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    period_start.checked_add(delay).is_ok_and(|visible| visible <= now)
}

/// How often CloudWatch evaluates a metric alarm (User Guide, "Using Amazon
/// CloudWatch alarms": a 10 or 30 second period is evaluated every 10
/// seconds, a longer one every minute), each time over periods that end at
/// the evaluation (a rolling window, not one aligned to the period): a
/// datapoint that arrives late is judged at the next minute, not a whole
/// period later.
pub fn evaluation_interval(period: Duration) -> Duration {
    if period < Duration::from_secs(60) {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(60)
    }
}

/// The evaluation time at or before `now`: the end of the newest period the
/// alarm judges at `now` (a multiple of [`evaluation_interval`]).
pub fn evaluation_end(period: Duration, now: Timestamp) -> Timestamp {
    let interval = evaluation_interval(period).as_secs() as i64;
    Timestamp::from_second(now.as_second().div_euclid(interval) * interval).unwrap_or(now)
}

/// How many periods an alarm retrieves: its evaluation periods and at least
/// two more, enough to reach past the periods still being ingested. (AWS
/// says the number "depends on the length of the alarm period"; its example,
/// 3 periods of 5 minutes, retrieves 5. We chose `N + max(2, ceil(delay /
/// period) + 1)`: 5 in that example, `N + 4` for one-minute periods.)
pub fn evaluation_range(policy: &AlarmPolicy) -> usize {
    let period = policy.period.as_secs().max(1);
    let late = INGESTION_DELAY.as_secs().div_ceil(period) as usize;
    policy.evaluation_periods as usize + late.saturating_add(1).max(2)
}

/// The values of an alarm's evaluation range ending at `end`, oldest
/// first: `read(period_end)` for each of its [`evaluation_range`] periods.
pub fn read_range(
    policy: &AlarmPolicy,
    end: Timestamp,
    mut read: impl FnMut(Timestamp) -> Option<f64>,
) -> Vec<Option<f64>> {
    let len = evaluation_range(policy);
    (0..len).map(|k| read(period_start(policy, end, len, k + 1))).collect()
}

/// The start of period `k` (0: the oldest) of a range of `len` periods of
/// `policy` ending at `end`, as [`read_range`] lays it out.
pub fn period_start(policy: &AlarmPolicy, end: Timestamp, len: usize, k: usize) -> Timestamp {
    let period = SignedDuration::try_from(policy.period).unwrap_or(SignedDuration::ZERO);
    end - period * i32::try_from(len.saturating_sub(k)).unwrap_or(i32::MAX)
}

/// What an alarm concluded from its evaluation range.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The new state; the current one when the alarm keeps it (`ignore`).
    pub state: AlarmState,
    /// The datapoints evaluated: (index in the range, value), oldest first.
    pub evaluated: Vec<(usize, f64)>,
    /// Breaching datapoints among the evaluated and the filled-in ones.
    pub breaching: usize,
    /// Missing datapoints filled in with the treat-missing-data setting.
    pub filled: usize,
}

/// Judges one evaluation of `policy` over `range`: the period values of its
/// evaluation range, oldest first (`None`: no datapoint), in state `current`.
pub fn judge(policy: &AlarmPolicy, range: &[Option<f64>], current: AlarmState) -> Judgement {
    let n = policy.evaluation_periods.max(1) as usize;
    let m = policy
        .datapoints_to_alarm
        .unwrap_or(policy.evaluation_periods)
        .clamp(1, n as u32) as usize;
    let present: Vec<(usize, f64)> = range
        .iter()
        .enumerate()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let breaches = |v: f64| policy.comparison.breached(v, policy.threshold);
    // Enough real datapoints: the most recent N of them, missing data aside.
    let evaluated: Vec<(usize, f64)> = present[present.len().saturating_sub(n)..].to_vec();
    let real_breaching = evaluated.iter().filter(|(_, v)| breaches(*v)).count();
    let filled = n.saturating_sub(evaluated.len());
    let over = |breaching: usize| {
        if breaching >= m {
            AlarmState::Alarm
        } else {
            AlarmState::Ok
        }
    };
    let (state, breaching) = if filled == 0 {
        (over(real_breaching), real_breaching)
    } else {
        match policy.missing_data {
            MissingData::Breaching => (over(real_breaching + filled), real_breaching + filled),
            MissingData::NotBreaching => (over(real_breaching), real_breaching),
            MissingData::Missing | MissingData::Ignore => {
                let keep_or = |insufficient: AlarmState| match policy.missing_data {
                    MissingData::Ignore => current,
                    _ => insufficient,
                };
                let state = if evaluated.is_empty() {
                    keep_or(AlarmState::InsufficientData)
                } else if real_breaching >= m {
                    AlarmState::Alarm
                } else if real_breaching < evaluated.len() {
                    // A real non-breaching datapoint: it cannot be ALARM.
                    AlarmState::Ok
                } else if evaluated[0].0 + n < range.len() {
                    // Every real datapoint breaches, fewer than M of them,
                    // and the oldest lies before the last N periods: it has
                    // been breaching for N periods (the guide's table 1, row 6).
                    keep_or(AlarmState::Alarm)
                } else {
                    // Breaching, but only within the last N periods: wait (rows 5).
                    keep_or(AlarmState::InsufficientData)
                };
                (state, real_breaching)
            }
        }
    };
    Judgement {
        state,
        evaluated,
        breaching,
        filled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Comparison;

    fn policy(m: u32, n: u32, missing: MissingData) -> AlarmPolicy {
        let text = format!(
            r#"type = "simple"
alarm = "a"
metric = {{ namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = {{ AutoScalingGroupName = "web" }} }}
comparison = "GreaterThanThreshold"
threshold = 5.0
period = "5m"
evaluation_periods = {n}
datapoints_to_alarm = {m}
adjustment = "ChangeInCapacity"
change = 1
"#
        );
        let mut policy: AlarmPolicy = toml::from_str(&text).expect("alarm policy");
        policy.missing_data = missing;
        assert_eq!(policy.comparison, Comparison::Greater);
        policy
    }

    /// "0 - X - X" as the guide writes rows: 0 not breaching, X breaching, - missing.
    fn row(text: &str) -> Vec<Option<f64>> {
        text.split_whitespace()
            .map(|c| match c {
                "0" => Some(1.0),
                "X" => Some(9.0),
                _ => None,
            })
            .collect()
    }

    const STATES: [MissingData; 4] = [
        MissingData::Missing,
        MissingData::Ignore,
        MissingData::Breaching,
        MissingData::NotBreaching,
    ];

    /// One table of the CloudWatch User Guide's "How alarm state is evaluated
    /// when data is missing": per row, the state for missing, ignore,
    /// breaching, notBreaching (`None`: retain the current state).
    fn table(m: u32, n: u32, rows: &[(&str, [Option<AlarmState>; 4])]) {
        use AlarmState::*;
        for (text, expected) in rows {
            for (missing, want) in STATES.iter().zip(expected) {
                let p = policy(m, n, *missing);
                assert_eq!(evaluation_range(&p), 5, "the guide retrieves 5 periods of 5 minutes");
                for current in [Ok, Alarm, InsufficientData] {
                    let got = judge(&p, &row(text), current).state;
                    assert_eq!(
                        got,
                        want.unwrap_or(current),
                        "{m} of {n}, row {text}, {missing:?}, from {current:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn cloudwatch_user_guide_missing_data_table_3_of_3() {
        use AlarmState::*;
        let (ok, alarm, insufficient) = (Some(Ok), Some(Alarm), Some(InsufficientData));
        table(
            3,
            3,
            &[
                ("0 - X - X", [ok, ok, ok, ok]),
                ("0 - - - -", [ok, ok, ok, ok]),
                ("- - - - -", [insufficient, None, alarm, ok]),
                ("0 X X - X", [alarm, alarm, alarm, alarm]),
                ("- - - - X", [insufficient, None, alarm, ok]),
                ("X - - - -", [alarm, None, alarm, ok]),
            ],
        );
    }

    #[test]
    fn cloudwatch_user_guide_missing_data_table_2_of_3() {
        use AlarmState::*;
        let (ok, alarm, insufficient) = (Some(Ok), Some(Alarm), Some(InsufficientData));
        table(
            2,
            3,
            &[
                ("0 - X - X", [alarm, alarm, alarm, alarm]),
                ("0 0 X 0 X", [alarm, alarm, alarm, alarm]),
                ("0 - X - -", [ok, ok, alarm, ok]),
                ("- - - - 0", [ok, ok, alarm, ok]),
                ("- - - - X", [insufficient, None, alarm, ok]),
            ],
        );
    }

    #[test]
    fn late_datapoints_delay_an_alarm_instead_of_starving_it() {
        // One-minute periods, 3 of 3: the newest 3 periods are still being
        // ingested, the 3 before them breach. The range reaches them.
        let mut p = policy(3, 3, MissingData::Missing);
        p.period = Duration::from_secs(60);
        assert_eq!(evaluation_range(&p), 3 + 4);
        let judged = judge(&p, &row("X X X X - - -"), AlarmState::Ok);
        assert_eq!(judged.state, AlarmState::Alarm);
        assert_eq!(judged.evaluated.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(judged.filled, 0);
    }

    /// "If the alarm period is 10 seconds or 30 seconds, the alarm is
    /// evaluated every 10 seconds"; longer periods every minute, on a
    /// window that ends at the evaluation.
    #[test]
    fn alarms_are_evaluated_every_minute_on_a_rolling_window() {
        let at = |s: i64| Timestamp::from_second(1_800_000_000 + s).expect("time");
        let five = Duration::from_secs(300);
        assert_eq!(evaluation_interval(five), Duration::from_secs(60));
        assert_eq!(evaluation_interval(Duration::from_secs(30)), Duration::from_secs(10));
        // 1_800_000_000 is a whole minute: 00:00 + 7m20s evaluates at 7m,
        // not at the 5-minute boundary.
        assert_eq!(evaluation_end(five, at(440)), at(420));
        assert_eq!(evaluation_end(Duration::from_secs(10), at(445)), at(440));
    }

    #[test]
    fn a_datapoint_is_readable_after_the_ingestion_delay() {
        let start = Timestamp::from_second(1_800_000_000).expect("time");
        let at = |s: i64| start + SignedDuration::from_secs(s);
        assert!(!readable(start, INGESTION_DELAY, at(179)));
        assert!(readable(start, INGESTION_DELAY, at(180)));
        assert!(readable(start, Duration::ZERO, start));
        // A freshness window shorter than the delay plus a period would find nothing.
        assert!(FRESHNESS >= INGESTION_DELAY + Duration::from_secs(60));
    }
}

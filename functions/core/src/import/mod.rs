//! Import (issue 21): groups made by hand in a console, as EC2 Auto Scaling
//! and CloudWatch describe them, written as a policy file with a comment
//! naming the source of every part. Pure: the AWS adapter
//! (`functions::import`) fills these types from DescribeAutoScalingGroups,
//! DescribePolicies, DescribeScheduledActions and DescribeAlarms.
//!
//! Nothing is dropped silently: what the policy format cannot express (a
//! predictive policy, a metric-math alarm, a scheduled action with a start
//! or end time, a disabled policy) is written as a comment and returned in
//! [`Imported::not_expressed`]; a part that could not be read (permission
//! denied, throttled) is named in the file and in the list, with what was
//! written anyway.

use std::collections::BTreeMap;
use std::fmt::Write;

mod policies;
mod schedule;

use policies::*;
pub use schedule::cron_from_recurrence;
use schedule::*;

/// A group as DescribeAutoScalingGroups describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceGroup {
    pub name: String,
    pub arn: Option<String>,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// DefaultCooldown, seconds.
    pub default_cooldown: Option<u64>,
    /// DefaultInstanceWarmup, seconds.
    pub default_warmup: Option<u64>,
    pub zones: Vec<String>,
    pub termination_policies: Vec<String>,
    pub protect_from_scale_in: bool,
    pub policies: Vec<SourcePolicy>,
    pub scheduled: Vec<SourceSchedule>,
}

/// A scaling policy as DescribePolicies describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcePolicy {
    pub name: String,
    pub arn: Option<String>,
    /// SimpleScaling, StepScaling, TargetTrackingScaling, PredictiveScaling.
    pub policy_type: String,
    pub enabled: bool,
    /// ChangeInCapacity, ExactCapacity, PercentChangeInCapacity.
    pub adjustment_type: Option<String>,
    pub scaling_adjustment: Option<i64>,
    pub min_adjustment_magnitude: Option<u32>,
    /// Seconds (simple scaling).
    pub cooldown: Option<u64>,
    /// Seconds (step scaling, target tracking).
    pub estimated_warmup: Option<u64>,
    /// Average, Minimum, Maximum (step scaling).
    pub metric_aggregation: Option<String>,
    /// (lower, upper, change), bounds relative to the threshold.
    pub steps: Vec<(Option<f64>, Option<f64>, i64)>,
    pub target_tracking: Option<SourceTargetTracking>,
    pub predictive: Option<SourcePredictive>,
    /// The names of the alarms that invoke the policy.
    pub alarms: Vec<String>,
}

/// A predictive scaling configuration (its one metric specification).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcePredictive {
    /// The predefined metric pair (`ASGCPUUtilization`, `ALBRequestCount`,
    /// ...), or the predefined load metric's pair when given apart
    /// (`ASGTotalCPUUtilization` is `ASGCPUUtilization`); None when customized.
    pub pair: Option<String>,
    pub target: f64,
    /// ForecastOnly, ForecastAndScale.
    pub mode: Option<String>,
    /// Seconds.
    pub scheduling_buffer: Option<u64>,
    /// HonorMaxCapacity, IncreaseMaxCapacity.
    pub max_capacity_breach: Option<String>,
    pub max_capacity_buffer: Option<u32>,
}

/// A target tracking configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceTargetTracking {
    /// ASGAverageCPUUtilization, ALBRequestCountPerTarget, ASGAverageNetworkIn, ...
    pub predefined: Option<String>,
    /// A customized metric (None with `predefined`, or when it is metric math).
    pub custom: Option<SourceMetric>,
    /// The customized metric is metric math (not expressible).
    pub metric_math: bool,
    pub target: f64,
    pub disable_scale_in: bool,
}

/// A CloudWatch metric and statistic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMetric {
    pub namespace: String,
    pub name: String,
    /// Statistic or ExtendedStatistic (pNN).
    pub stat: String,
    pub dimensions: BTreeMap<String, String>,
}

/// An alarm as DescribeAlarms describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceAlarm {
    pub name: String,
    pub arn: Option<String>,
    /// None for a metric-math alarm (`Metrics`), which cannot be expressed.
    pub metric: Option<SourceMetric>,
    /// Seconds.
    pub period: u64,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: Option<u32>,
    pub threshold: f64,
    /// GreaterThanThreshold, ...
    pub comparison: String,
    /// missing, ignore, breaching, notBreaching.
    pub treat_missing_data: Option<String>,
}

/// A scheduled action as DescribeScheduledActions describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceSchedule {
    pub name: String,
    pub arn: Option<String>,
    /// Unix cron, five fields (None: a one-time action).
    pub recurrence: Option<String>,
    pub time_zone: Option<String>,
    /// RFC 3339.
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
}

/// A part the adapter could not read: what, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub part: String,
    pub error: String,
}

/// The policy file written, and what it could not express or read.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub text: String,
    /// One line each: what, where from, why.
    pub not_expressed: Vec<String>,
}

/// Writes the policy file for `groups`, the alarms read (by name) and the
/// parts that could not be read.
pub fn write_policy(
    groups: &[SourceGroup],
    alarms: &BTreeMap<String, SourceAlarm>,
    unreadable: &[Unreadable],
) -> Imported {
    let mut w = Writer::default();
    w.line("# Imported by `scalectl import` from EC2 Auto Scaling and CloudWatch.");
    w.line("# Every part names its source; what the policy format cannot express is");
    w.line("# a comment (also listed on stderr). Check it with `scalectl validate`.");
    for part in unreadable {
        w.not_expressed(&format!("could not read {}: {}", part.part, part.error));
    }
    for group in groups {
        write_group(&mut w, group, alarms);
    }
    Imported {
        text: w.text,
        not_expressed: w.not_expressed,
    }
}

#[derive(Default)]
struct Writer {
    text: String,
    not_expressed: Vec<String>,
}

impl Writer {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn blank(&mut self) {
        self.text.push('\n');
    }

    /// A comment in the file and a line of the list.
    fn not_expressed(&mut self, what: &str) {
        for line in what.lines() {
            self.line(&format!("# NOT IMPORTED: {line}"));
        }
        self.not_expressed.push(what.to_string());
    }
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn source(kind: &str, name: &str, arn: Option<&String>) -> String {
    match arn {
        Some(arn) => format!("# from {kind} {name} ({arn})"),
        None => format!("# from {kind} {name}"),
    }
}

fn write_group(w: &mut Writer, group: &SourceGroup, alarms: &BTreeMap<String, SourceAlarm>) {
    w.blank();
    w.line(&source("Auto Scaling group", &group.name, group.arn.as_ref()));
    if !group.zones.is_empty() {
        w.line(&format!("# zones: {}", group.zones.join(", ")));
    }
    if !group.termination_policies.is_empty() {
        w.line(&format!(
            "# termination policies: {} (the policy format has none: EC2 Auto Scaling keeps them)",
            group.termination_policies.join(", ")
        ));
    }
    if group.protect_from_scale_in {
        w.line("# new instances are protected from scale in (kept by EC2 Auto Scaling)");
    }
    w.line("[[group]]");
    w.line(&format!("name = {}", quoted(&group.name)));
    w.line(&format!("min = {}", group.min));
    w.line(&format!("max = {}", group.max));
    w.line(&format!(
        "desired = {}",
        group.desired.clamp(group.min, group.max.max(group.min))
    ));
    if let Some(cooldown) = group.default_cooldown {
        w.line(&format!("cooldown = \"{cooldown}s\""));
    }
    // The group's warm-up: its own, else the first target tracking policy's
    // estimate (the format keeps warm-up on the group for target tracking).
    let tracking_warmup = group
        .policies
        .iter()
        .filter(|p| p.policy_type == "TargetTrackingScaling")
        .find_map(|p| p.estimated_warmup);
    match (group.default_warmup, tracking_warmup) {
        (Some(warmup), _) => w.line(&format!("instance_warmup = \"{warmup}s\"")),
        (None, Some(warmup)) => {
            w.line("# the target tracking policy's EstimatedInstanceWarmup");
            w.line(&format!("instance_warmup = \"{warmup}s\""));
        }
        (None, None) => {}
    }
    for policy in &group.policies {
        write_policy_of(w, group, policy, alarms);
    }
    for schedule in &group.scheduled {
        write_schedule(w, group, schedule);
    }
}

fn write_policy_of(w: &mut Writer, group: &SourceGroup, policy: &SourcePolicy, alarms: &BTreeMap<String, SourceAlarm>) {
    let from = format!("policy {} of group {}", policy.name, group.name);
    if !policy.enabled {
        w.blank();
        w.not_expressed(&format!(
            "{from}: disabled (the policy format has no disabled policies)"
        ));
        return;
    }
    match policy.policy_type.as_str() {
        "SimpleScaling" | "StepScaling" => {
            if policy.alarms.is_empty() {
                w.blank();
                w.not_expressed(&format!("{from}: no alarm invokes it, so it never acts"));
            }
            for alarm_name in &policy.alarms {
                w.blank();
                match alarms.get(alarm_name) {
                    Some(alarm) => write_alarm_policy(w, &from, policy, alarm),
                    None => w.not_expressed(&format!(
                        "{from}: its alarm {alarm_name} could not be read; the policy: {}",
                        policy_summary(policy)
                    )),
                }
            }
        }
        "TargetTrackingScaling" => {
            w.blank();
            write_target_tracking(w, &from, policy);
        }
        "PredictiveScaling" => {
            w.blank();
            let first = group
                .policies
                .iter()
                .find(|p| p.enabled && p.policy_type == "PredictiveScaling")
                .is_some_and(|p| p.name == policy.name);
            if first {
                write_predictive(w, &from, policy);
            } else {
                w.not_expressed(&format!(
                    "{from}: a second PredictiveScaling policy (the policy format has one [group.predictive] a group)"
                ));
            }
        }
        other => {
            w.blank();
            w.not_expressed(&format!(
                "{from}: a {other} policy (the policy format has no such type)"
            ));
        }
    }
}

/// The policy's settings in a line, for a comment when its alarm is unknown.
fn policy_summary(policy: &SourcePolicy) -> String {
    let mut parts = vec![policy.policy_type.clone()];
    if let Some(kind) = &policy.adjustment_type {
        parts.push(kind.clone());
    }
    if let Some(change) = policy.scaling_adjustment {
        parts.push(format!("change {change}"));
    }
    for (lower, upper, change) in &policy.steps {
        parts.push(format!(
            "step [{}, {}) {change:+}",
            lower.map_or("-inf".into(), number),
            upper.map_or("+inf".into(), number)
        ));
    }
    if let Some(cooldown) = policy.cooldown {
        parts.push(format!("cooldown {cooldown}s"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recurrences_become_eventbridge_crons() {
        // Auto Scaling's Recurrence is Unix cron (user guide, "Scheduled
        // scaling": "the Recurrence ... in Unix cron syntax format"); an
        // EventBridge cron has six fields and `?` in one day field, days of
        // the week 1-7 or SUN-SAT (EventBridge Scheduler, "Cron expressions").
        for (unix, expected) in [
            ("0 11 * * *", vec!["cron(0 11 * * ? *)"]),
            ("30 9 * * 1-5", vec!["cron(30 9 ? * MON-FRI *)"]),
            ("0 0 1 * *", vec!["cron(0 0 1 * ? *)"]),
            ("0 12 * * 0,6", vec!["cron(0 12 ? * SUN,SAT *)"]),
            ("0 12 * * 7", vec!["cron(0 12 ? * SUN *)"]),
            ("0 12 * * 5-7", vec!["cron(0 12 ? * SUN,FRI,SAT *)"]),
            ("0 12 * * sat", vec!["cron(0 12 ? * SAT *)"]),
            ("*/15 8-18 * 1-6 */2", vec!["cron(*/15 8-18 ? 1-6 SUN,TUE,THU,SAT *)"]),
            ("0 6 * * 0-6", vec!["cron(0 6 * * ? *)"]),
            ("0 6 1,15 * 1", vec!["cron(0 6 1,15 * ? *)", "cron(0 6 ? * MON *)"]),
        ] {
            assert_eq!(
                cron_from_recurrence(unix),
                Ok(expected.iter().map(|c| c.to_string()).collect()),
                "{unix}"
            );
            for cron in expected {
                cron.parse::<crate::schedule::ScheduleExpr>().expect(cron);
            }
        }
        for (bad, why) in [
            ("0 11 * *", "expected 5 fields"),
            ("0 11 * * 8", "allowed: 0-7 or SUN-SAT"),
            ("0 11 * * 5-1", "runs backwards"),
            ("0 11 * * */0", "allowed: a number above 0"),
        ] {
            let error = cron_from_recurrence(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    fn console_group() -> (SourceGroup, BTreeMap<String, SourceAlarm>) {
        let cpu = |name: &str, comparison: &str, threshold: f64, period: u64| SourceAlarm {
            name: name.into(),
            arn: Some(format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")),
            metric: Some(SourceMetric {
                namespace: "AWS/EC2".into(),
                name: "CPUUtilization".into(),
                stat: "Average".into(),
                dimensions: BTreeMap::from([("AutoScalingGroupName".into(), "web".into())]),
            }),
            period,
            evaluation_periods: 3,
            datapoints_to_alarm: Some(3),
            threshold,
            comparison: comparison.into(),
            treat_missing_data: Some("missing".into()),
        };
        let alarms = BTreeMap::from([
            (
                "web-cpu-high".to_string(),
                cpu("web-cpu-high", "GreaterThanThreshold", 70.0, 300),
            ),
            (
                "web-cpu-low".to_string(),
                cpu("web-cpu-low", "LessThanThreshold", 30.0, 600),
            ),
            (
                "web-math".to_string(),
                SourceAlarm {
                    name: "web-math".into(),
                    metric: None,
                    comparison: "GreaterThanThreshold".into(),
                    ..SourceAlarm::default()
                },
            ),
        ]);
        let group = SourceGroup {
            name: "web".into(),
            arn: Some("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/web".into()),
            min: 2,
            max: 10,
            desired: 3,
            default_cooldown: Some(300),
            zones: vec!["us-east-1a".into(), "us-east-1b".into()],
            termination_policies: vec!["Default".into()],
            policies: vec![
                SourcePolicy {
                    name: "web-out".into(),
                    policy_type: "StepScaling".into(),
                    enabled: true,
                    adjustment_type: Some("ChangeInCapacity".into()),
                    steps: vec![(Some(0.0), Some(20.0), 2), (Some(20.0), None, 3)],
                    estimated_warmup: Some(120),
                    alarms: vec!["web-cpu-high".into()],
                    ..SourcePolicy::default()
                },
                SourcePolicy {
                    name: "web-in".into(),
                    policy_type: "SimpleScaling".into(),
                    enabled: true,
                    adjustment_type: Some("ChangeInCapacity".into()),
                    scaling_adjustment: Some(-1),
                    cooldown: Some(600),
                    alarms: vec!["web-cpu-low".into()],
                    ..SourcePolicy::default()
                },
                SourcePolicy {
                    name: "web-tt".into(),
                    policy_type: "TargetTrackingScaling".into(),
                    enabled: true,
                    estimated_warmup: Some(90),
                    target_tracking: Some(SourceTargetTracking {
                        predefined: Some("ASGAverageCPUUtilization".into()),
                        target: 50.0,
                        ..SourceTargetTracking::default()
                    }),
                    ..SourcePolicy::default()
                },
                SourcePolicy {
                    name: "web-math-policy".into(),
                    policy_type: "SimpleScaling".into(),
                    enabled: true,
                    scaling_adjustment: Some(1),
                    alarms: vec!["web-math".into()],
                    ..SourcePolicy::default()
                },
                SourcePolicy {
                    name: "web-forecast".into(),
                    policy_type: "PredictiveScaling".into(),
                    enabled: true,
                    predictive: Some(SourcePredictive {
                        pair: Some("ASGCPUUtilization".into()),
                        target: 40.0,
                        mode: Some("ForecastAndScale".into()),
                        scheduling_buffer: Some(600),
                        max_capacity_breach: Some("IncreaseMaxCapacity".into()),
                        max_capacity_buffer: Some(10),
                    }),
                    ..SourcePolicy::default()
                },
                SourcePolicy {
                    name: "web-forecast-network".into(),
                    policy_type: "PredictiveScaling".into(),
                    enabled: true,
                    predictive: Some(SourcePredictive {
                        pair: Some("ASGNetworkIn".into()),
                        target: 1e6,
                        ..SourcePredictive::default()
                    }),
                    ..SourcePolicy::default()
                },
                SourcePolicy {
                    name: "web-unread".into(),
                    policy_type: "SimpleScaling".into(),
                    enabled: true,
                    scaling_adjustment: Some(2),
                    alarms: vec!["web-secret".into()],
                    ..SourcePolicy::default()
                },
            ],
            scheduled: vec![
                SourceSchedule {
                    name: "lunch out".into(),
                    recurrence: Some("0 11 * * 1-5".into()),
                    time_zone: Some("Asia/Shanghai".into()),
                    min: Some(4),
                    ..SourceSchedule::default()
                },
                SourceSchedule {
                    name: "lunch-in".into(),
                    recurrence: Some("0 13 * * 1-5".into()),
                    end_time: Some("2027-06-30T00:00:00Z".into()),
                    time_zone: Some("Asia/Shanghai".into()),
                    min: Some(2),
                    ..SourceSchedule::default()
                },
                SourceSchedule {
                    name: "black-friday".into(),
                    start_time: Some("2026-11-27T00:00:00Z".into()),
                    desired: Some(8),
                    ..SourceSchedule::default()
                },
            ],
            ..SourceGroup::default()
        };
        (group, alarms)
    }

    #[test]
    fn a_console_group_becomes_a_policy_file_that_validates() {
        let (group, alarms) = console_group();
        let unreadable = [Unreadable {
            part: "alarm web-secret".into(),
            error: "AccessDenied: not authorized to perform cloudwatch:DescribeAlarms".into(),
        }];
        let imported = write_policy(&[group], &alarms, &unreadable);
        let policy = crate::policy::Policy::parse("imported.toml", &imported.text)
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.text));
        let web = &policy.groups[0];
        assert_eq!((web.min, web.max, web.desired), (2, 10, Some(3)));
        assert_eq!(web.instance_warmup, Some(std::time::Duration::from_secs(90)));
        assert_eq!(web.alarm_policies.len(), 2, "{}", imported.text);
        let out = &web.alarm_policies[0];
        assert_eq!(out.kind(), crate::policy::PolicyType::Step);
        assert_eq!(out.steps.len(), 2);
        assert_eq!(out.instance_warmup, Some(std::time::Duration::from_secs(120)));
        let low = &web.alarm_policies[1];
        assert_eq!(
            (low.change, low.cooldown),
            (Some(-1), Some(std::time::Duration::from_secs(600)))
        );
        assert_eq!(low.period, std::time::Duration::from_secs(600));
        assert_eq!(web.target_tracking.len(), 1);
        // A console's PredictiveScaling policy, AWS's settings kept.
        let predictive = web.predictive.as_ref().expect("predictive imported");
        assert_eq!(
            (
                predictive.target,
                predictive.mode,
                predictive.scheduling_buffer,
                predictive.max_capacity_breach,
                predictive.max_capacity_buffer
            ),
            (
                40.0,
                crate::policy::PredictiveMode::ForecastAndScale,
                std::time::Duration::from_secs(600),
                crate::policy::MaxCapacityBreach::IncreaseMaxCapacity,
                Some(10)
            )
        );
        assert_eq!(
            predictive.metric,
            crate::policy::TrackedMetric::Predefined(crate::policy::PredefinedMetric::Cpu)
        );
        assert_eq!(web.schedules.len(), 2);
        assert_eq!(web.schedules[0].name, "lunch-out");
        assert_eq!(web.schedules[0].cron.as_deref(), Some("cron(0 11 ? * MON-FRI *)"));
        assert_eq!(web.schedules[0].timezone.as_deref(), Some("Asia/Shanghai"));
        // Each source named; nothing dropped silently.
        for source in [
            "web-out",
            "web-in",
            "web-tt",
            "web-forecast",
            "web-cpu-high",
            "lunch out",
            "autoScalingGroupName/web",
        ] {
            assert!(imported.text.contains(source), "{source}: {}", imported.text);
        }
        let listed = imported.not_expressed.join("\n");
        for expected in [
            "could not read alarm web-secret: AccessDenied",
            "policy web-math-policy of group web, alarm web-math: a metric-math alarm",
            "policy web-forecast-network of group web: a second PredictiveScaling policy",
            "policy web-unread of group web: its alarm web-secret could not be read; the policy: SimpleScaling, change 2",
            "scheduled action black-friday of group web: a one-time action at 2026-11-27T00:00:00Z",
            "scheduled action lunch-in of group web: its end time 2027-06-30T00:00:00Z is not in the policy format",
        ] {
            assert!(listed.contains(expected), "{expected}:\n{listed}");
            let first = expected.lines().next().unwrap_or(expected);
            assert!(
                imported.text.contains(&format!("# NOT IMPORTED: {first}")),
                "{}",
                imported.text
            );
        }
        assert_eq!(imported.not_expressed.len(), 6, "{listed}");
    }

    #[test]
    fn names_and_values_are_quoted_as_toml() {
        assert_eq!(quoted("a \"b\"\\"), r#""a \"b\"\\""#);
        assert_eq!(bare_or_quoted("AutoScalingGroupName"), "AutoScalingGroupName");
        assert_eq!(bare_or_quoted("a b"), "\"a b\"");
        assert_eq!(number(70.0), "70");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(schedule_name("lunch out (weekdays)"), "lunch-out--weekdays-");
    }
}

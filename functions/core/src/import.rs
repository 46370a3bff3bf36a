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

fn adjustment(kind: Option<&str>) -> &'static str {
    match kind {
        Some("ExactCapacity") => "exact_capacity",
        Some("PercentChangeInCapacity") => "percent_change_in_capacity",
        _ => "change_in_capacity",
    }
}

fn comparison(text: &str) -> Option<&'static str> {
    Some(match text {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => ">=",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "<=",
        _ => return None,
    })
}

fn missing_data(text: &str) -> Option<&'static str> {
    Some(match text {
        "missing" => "missing",
        "ignore" => "ignore",
        "breaching" => "breaching",
        "notBreaching" => "not_breaching",
        _ => return None,
    })
}

fn metric_inline(metric: &SourceMetric) -> String {
    let dimensions: Vec<String> = metric
        .dimensions
        .iter()
        .map(|(k, v)| format!("{} = {}", bare_or_quoted(k), quoted(v)))
        .collect();
    format!(
        "{{ namespace = {}, name = {}, stat = {}, dimensions = {{ {} }} }}",
        quoted(&metric.namespace),
        quoted(&metric.name),
        quoted(&metric.stat),
        dimensions.join(", ")
    )
}

/// A TOML key: bare when it can be.
fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        key.to_string()
    } else {
        quoted(key)
    }
}

fn write_alarm_policy(w: &mut Writer, from: &str, policy: &SourcePolicy, alarm: &SourceAlarm) {
    let alarm_from = format!("{from}, alarm {}", alarm.name);
    let Some(metric) = &alarm.metric else {
        w.not_expressed(&format!(
            "{alarm_from}: a metric-math alarm (the policy format reads one metric); the policy: {}",
            policy_summary(policy)
        ));
        return;
    };
    let Some(symbol) = comparison(&alarm.comparison) else {
        w.not_expressed(&format!(
            "{alarm_from}: comparison {} (anomaly detection bands are not expressible)",
            alarm.comparison
        ));
        return;
    };
    w.line(&source("scaling policy", &policy.name, policy.arn.as_ref()));
    w.line(&source("alarm", &alarm.name, alarm.arn.as_ref()));
    if let Some(aggregation) = policy.metric_aggregation.as_deref().filter(|a| *a != "Average") {
        w.line(&format!(
            "# MetricAggregationType {aggregation}: the steps here read the alarm's own statistic"
        ));
    }
    w.line("[[group.alarm_policy]]");
    let step = policy.policy_type == "StepScaling";
    w.line(&format!("type = \"{}\"", if step { "step" } else { "simple" }));
    w.line(&format!("alarm = {}", quoted(&alarm.name)));
    w.line(&format!("metric = {}", metric_inline(metric)));
    w.line(&format!("comparison = \"{symbol}\""));
    w.line(&format!("threshold = {}", number(alarm.threshold)));
    w.line(&format!("period = \"{}s\"", alarm.period));
    w.line(&format!("evaluation_periods = {}", alarm.evaluation_periods));
    if let Some(m) = alarm.datapoints_to_alarm.filter(|m| *m != alarm.evaluation_periods) {
        w.line(&format!("datapoints_to_alarm = {m}"));
    }
    if let Some(missing) = alarm.treat_missing_data.as_deref().and_then(missing_data)
        && missing != "missing"
    {
        w.line(&format!("missing_data = \"{missing}\""));
    }
    w.line(&format!(
        "adjustment = \"{}\"",
        adjustment(policy.adjustment_type.as_deref())
    ));
    if step {
        let steps: Vec<String> = policy
            .steps
            .iter()
            .map(|(lower, upper, change)| {
                let mut fields = Vec::new();
                if let Some(lower) = lower {
                    fields.push(format!("lower = {}", number(*lower)));
                }
                if let Some(upper) = upper {
                    fields.push(format!("upper = {}", number(*upper)));
                }
                fields.push(format!("change = {change}"));
                format!("{{ {} }}", fields.join(", "))
            })
            .collect();
        w.line(&format!("steps = [{}]", steps.join(", ")));
        if let Some(warmup) = policy.estimated_warmup {
            w.line(&format!("instance_warmup = \"{warmup}s\""));
        }
    } else {
        w.line(&format!("change = {}", policy.scaling_adjustment.unwrap_or(0)));
        if let Some(cooldown) = policy.cooldown {
            w.line(&format!("cooldown = \"{cooldown}s\""));
        }
    }
    if let Some(magnitude) = policy.min_adjustment_magnitude
        && policy.adjustment_type.as_deref() == Some("PercentChangeInCapacity")
    {
        w.line(&format!("min_adjustment_magnitude = {magnitude}"));
    }
}

fn write_target_tracking(w: &mut Writer, from: &str, policy: &SourcePolicy) {
    let Some(tracking) = &policy.target_tracking else {
        w.not_expressed(&format!("{from}: target tracking without a configuration"));
        return;
    };
    let metric = match (tracking.predefined.as_deref(), &tracking.custom) {
        (Some("ASGAverageCPUUtilization"), _) => "\"cpu\"".to_string(),
        (Some("ALBRequestCountPerTarget"), _) => "\"request_count_per_target\"".to_string(),
        (Some(network @ ("ASGAverageNetworkIn" | "ASGAverageNetworkOut")), _) => metric_inline(&SourceMetric {
            namespace: "AWS/EC2".into(),
            name: network.trim_start_matches("ASGAverage").into(),
            stat: "Average".into(),
            dimensions: BTreeMap::new(),
        }),
        (None, Some(custom)) if !tracking.metric_math => metric_inline(custom),
        (Some(other), _) => {
            w.not_expressed(&format!("{from}: predefined metric {other} (not in the policy format)"));
            return;
        }
        (None, _) => {
            w.not_expressed(&format!(
                "{from}: a metric-math customized metric (the policy format tracks one metric)"
            ));
            return;
        }
    };
    w.line(&source("scaling policy", &policy.name, policy.arn.as_ref()));
    w.line("# The policy format's target tracking adds HPA-style rate limits and a");
    w.line("# 300 s scale-in stabilisation by default (see the README); AWS documents none.");
    w.line("[[group.target_tracking]]");
    w.line(&format!("metric = {metric}"));
    w.line(&format!("target = {}", number(tracking.target)));
    if tracking.disable_scale_in {
        w.line("disable_scale_in = true");
    }
}

/// `[group.predictive]` from a PredictiveScaling policy: AWS's names in
/// the policy format's snake_case, each value as AWS has it.
fn write_predictive(w: &mut Writer, from: &str, policy: &SourcePolicy) {
    let Some(predictive) = &policy.predictive else {
        w.not_expressed(&format!("{from}: predictive scaling without a configuration"));
        return;
    };
    let metric = match predictive.pair.as_deref() {
        Some("ASGCPUUtilization") => "cpu",
        Some("ALBRequestCount") => "request_count_per_target",
        Some(other) => {
            w.not_expressed(&format!(
                "{from}: predictive scaling on the metric pair {other} (the policy format forecasts ASGCPUUtilization as cpu and ALBRequestCount as request_count_per_target)"
            ));
            return;
        }
        None => {
            w.not_expressed(&format!(
                "{from}: predictive scaling on customized metrics (the policy format forecasts cpu, cpu_demand or request_count_per_target)"
            ));
            return;
        }
    };
    w.line(&source("scaling policy", &policy.name, policy.arn.as_ref()));
    w.line("[group.predictive]");
    w.line(&format!("metric = \"{metric}\""));
    w.line(&format!("target = {}", number(predictive.target)));
    let mode = match predictive.mode.as_deref() {
        Some("ForecastAndScale") => "forecast_and_scale",
        _ => "forecast_only",
    };
    w.line(&format!("mode = \"{mode}\""));
    if let Some(buffer) = predictive.scheduling_buffer {
        w.line(&format!("scheduling_buffer = \"{buffer}s\""));
    }
    if predictive.max_capacity_breach.as_deref() == Some("IncreaseMaxCapacity") {
        w.line("max_capacity_breach = \"increase_max_capacity\"");
        w.line(&format!(
            "max_capacity_buffer = {}",
            predictive.max_capacity_buffer.unwrap_or(0)
        ));
    }
}

fn write_schedule(w: &mut Writer, group: &SourceGroup, schedule: &SourceSchedule) {
    w.blank();
    let from = format!("scheduled action {} of group {}", schedule.name, group.name);
    let Some(recurrence) = &schedule.recurrence else {
        w.not_expressed(&format!(
            "{from}: a one-time action at {} (the policy format has recurring schedules only)",
            schedule.start_time.as_deref().unwrap_or("an unknown time")
        ));
        return;
    };
    let crons = match cron_from_recurrence(recurrence) {
        Ok(crons) => crons,
        Err(why) => {
            w.not_expressed(&format!("{from}: recurrence {recurrence:?}: {why}"));
            return;
        }
    };
    if let Some(end) = &schedule.end_time {
        w.not_expressed(&format!(
            "{from}: its end time {end} is not in the policy format: written without it, so it keeps firing after"
        ));
    }
    w.line(&source("scheduled action", &schedule.name, schedule.arn.as_ref()));
    if let Some(start) = &schedule.start_time {
        // DescribeScheduledActions reports a recurring action's next start
        // here, so it is no sign of a boundary set on purpose.
        w.line(&format!(
            "# StartTime {start} as described (the next run, or a start set on purpose)"
        ));
    }
    w.line(&format!("# recurrence {recurrence:?} (Unix cron)"));
    if crons.len() > 1 {
        w.line("# cron fires when either its day of month or its day of week matches;");
        w.line("# EventBridge takes one of the two: one schedule for each.");
    }
    let base = schedule_name(&schedule.name);
    for (k, cron) in crons.iter().enumerate() {
        w.line("[[group.schedule]]");
        let name = match (crons.len(), k) {
            (1, _) => base.clone(),
            (_, 0) => format!("{base}-days-of-month"),
            _ => format!("{base}-days-of-week"),
        };
        w.line(&format!("name = {}", quoted(&name)));
        w.line(&format!("cron = {}", quoted(cron)));
        if let Some(zone) = &schedule.time_zone {
            w.line(&format!("timezone = {}", quoted(zone)));
        }
        for (key, value) in [
            ("min", schedule.min),
            ("max", schedule.max),
            ("desired", schedule.desired),
        ] {
            if let Some(value) = value {
                w.line(&format!("{key} = {value}"));
            }
        }
    }
}

/// A scheduled action's name as an EventBridge Scheduler name allows
/// (`[0-9a-zA-Z-_.]+`, at most 64): other characters become `-`.
fn schedule_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.chars().take(48).collect()
}

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Converts Auto Scaling's Recurrence (Unix cron: minute hour day-of-month
/// month day-of-week, days of the week 0-7 with 0 and 7 Sunday) into
/// EventBridge cron expressions (six fields, `?` in one of the day fields,
/// days of the week 1-7 or SUN-SAT). Unix cron fires when either day field
/// matches if both are restricted; EventBridge cannot say that in one
/// expression, so that gives two.
pub fn cron_from_recurrence(recurrence: &str) -> Result<Vec<String>, String> {
    let fields: Vec<&str> = recurrence.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields[..] else {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    };
    let days = days_of_week(dow)?;
    let all_days = days.len() == 7;
    let dow = week_days(&days);
    Ok(match (dom, all_days) {
        ("*", true) => vec![format!("cron({minute} {hour} * {month} ? *)")],
        (_, true) => vec![format!("cron({minute} {hour} {dom} {month} ? *)")],
        ("*", false) => vec![format!("cron({minute} {hour} ? {month} {dow} *)")],
        (_, false) => vec![
            format!("cron({minute} {hour} {dom} {month} ? *)"),
            format!("cron({minute} {hour} ? {month} {dow} *)"),
        ],
    })
}

/// The days (0 = Sunday) a Unix cron day-of-week field names.
fn days_of_week(field: &str) -> Result<Vec<usize>, String> {
    let value = |text: &str| -> Result<usize, String> {
        if let Some(k) = DAYS.iter().position(|d| d.eq_ignore_ascii_case(text)) {
            return Ok(k);
        }
        match text.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(n % 7),
            _ => Err(format!("day of week {text:?}: allowed: 0-7 or SUN-SAT")),
        }
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("day of week step {step:?}: allowed: a number above 0"))?,
            ),
            None => (item, 1),
        };
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    // 5-7 is Friday to Sunday: 7 ends the week.
                    (a, if b == 0 && a > 0 { 7 } else { b })
                }
                None if step > 1 => (value(range)?, 6),
                None => {
                    let d = value(range)?;
                    (d, d)
                }
            },
        };
        if first > last {
            return Err(format!("day of week range {range:?} runs backwards"));
        }
        for d in (first..=last).step_by(step) {
            days[d % 7] = true;
        }
    }
    Ok((0..7).filter(|d| days[*d]).collect())
}

/// Days as EventBridge names, consecutive runs as ranges: `MON-FRI`, `SUN,SAT`.
fn week_days(days: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut k = 0;
    while k < days.len() {
        let mut end = k;
        while end + 1 < days.len() && days[end + 1] == days[end] + 1 {
            end += 1;
        }
        if end >= k + 2 {
            parts.push(format!("{}-{}", DAYS[days[k]], DAYS[days[end]]));
        } else {
            for d in &days[k..=end] {
                parts.push(DAYS[*d].to_string());
            }
        }
        k = end + 1;
    }
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{part}");
    }
    text
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

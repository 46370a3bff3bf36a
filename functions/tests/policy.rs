//! The policy file: the shipped examples load; every broken rule is named.

use std::path::Path;
use std::time::Duration;

use functions::policy::{AdjustmentType, Comparison, Policy, PolicyError, PolicyType, Select};

fn shipped(name: &str) -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies").join(name);
    Policy::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn shipped_policies_load() {
    let two_tier = shipped("two-tier.toml");
    let web = two_tier.group("web").expect("web");
    assert_eq!((web.min, web.max, web.warmup()), (2, 10, Duration::from_secs(120)));
    let high = web.alarm_policy("web-cpu-high").expect("high");
    assert_eq!(high.comparison, Comparison::Greater);
    assert_eq!(high.period, Duration::from_secs(300));
    assert_eq!(high.steps.len(), 2);
    assert_eq!(web.target_tracking[0].scale_out.select, Select::Max);
    assert_eq!(web.schedules[0].timezone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(
        web.target_tracking[0].metric,
        functions::policy::TrackedMetric::Predefined(functions::policy::PredefinedMetric::CpuDemand)
    );
    let office = shipped("office-hours.toml");
    assert_eq!(
        office.groups[0].target_tracking[0].metric,
        functions::policy::TrackedMetric::Predefined(functions::policy::PredefinedMetric::CpuDemand)
    );
    let qps = web.alarm_policy("web-qps-high").expect("qps");
    assert_eq!(qps.adjustment, AdjustmentType::PercentChangeInCapacity);
    // A metric the load balancer publishes (was Custom/Web QPS, which nothing does).
    assert_eq!(
        (qps.metric.namespace.as_str(), qps.metric.name.as_str()),
        ("AWS/ApplicationELB", "RequestCountPerTarget")
    );
    assert!(two_tier.group("session").is_some());
    // Scale to zero: back on the load balancer's 503s for want of a target.
    let zero = shipped("scale-to-zero.toml");
    let zero = zero.group("web").expect("web");
    assert_eq!(zero.min, 0);
    assert!(
        zero.alarm_policies
            .iter()
            .any(|p| functions::policy::seen_at_zero(&p.metric))
    );

    // Issue 18: two steps and no cooldown is step scaling; the seed guides'
    // "one change, then a cooldown" is simple scaling.
    assert_eq!(high.kind(), PolicyType::Step);
    assert_eq!(high.cooldown, None);
    let low = web.alarm_policy("web-cpu-low").expect("low");
    assert_eq!(
        (low.kind(), low.change, low.cooldown_in(web)),
        (PolicyType::Simple, Some(-1), Some(Duration::from_secs(600)))
    );
    assert_eq!(low.warmup_in(web), None);
    assert_eq!(high.warmup_in(web), Some(Duration::from_secs(120)));
    assert_eq!(high.cooldown_in(web), None);

    let seed = shipped("seed-step.toml");
    assert_eq!(seed.groups[0].min, 3);
    assert!(
        seed.groups[0]
            .alarm_policies
            .iter()
            .all(|p| p.kind() == PolicyType::Simple),
        "the seed guide's +2 / -1 with cooldowns are simple scaling"
    );
    let course = shipped("course-target-tracking.toml");
    // HPA defaults fill what the file leaves out.
    assert_eq!(
        course.groups[0].target_tracking[0].scale_in.stabilization,
        Duration::from_secs(300)
    );
}

const VALID_GROUP: &str = r#"
[[group]]
name = "web"
min = 2
max = 10
"#;

fn problems(extra: &str) -> Vec<String> {
    match Policy::parse("test.toml", &format!("{VALID_GROUP}{extra}")) {
        Err(PolicyError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn alarm(comparison: &str, steps: &str) -> String {
    format!(
        r#"
[[group.alarm_policy]]
type = "step"
alarm = "a"
metric = {{ namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = {{ AutoScalingGroupName = "web" }} }}
comparison = "{comparison}"
threshold = 70
period = "300s"
evaluation_periods = 3
adjustment = "change_in_capacity"
steps = {steps}
"#
    )
}

/// A simple alarm policy: one `change` (and no steps).
fn simple(comparison: &str, change: i64) -> String {
    alarm(comparison, "[]")
        .replace("type = \"step\"", "type = \"simple\"")
        .replace("steps = []", &format!("change = {change}"))
}

/// A statistic is parsed into its type when the file is read (CloudWatch's
/// PutMetricAlarm: `Statistic` is one of five names, `ExtendedStatistic`
/// matches `p(\d{1,2}(\.\d{0,2})?|100)`), so the error points at the line.
#[test]
fn a_statistic_cloudwatch_does_not_have_is_refused_where_it_is_written() {
    for bad in ["Mean", "p101", "p99.999", "p", "p-1", "P99"] {
        let text = format!("{VALID_GROUP}{}", alarm(">", "[{ lower = 0, change = 1 }]"))
            .replace("\"Average\"", &format!("{bad:?}"));
        match Policy::parse("test.toml", &text) {
            Err(PolicyError::Parse { message, .. }) => {
                assert!(
                    message.contains("is not one of Average, Sum, Minimum, Maximum, SampleCount or pNN (p0 to p100"),
                    "{bad}: {message}"
                );
                assert!(
                    message.contains(&format!("stat = {bad:?}")),
                    "{bad}: the line is shown: {message}"
                );
            }
            other => panic!("{bad}: expected a parse error, got {other:?}"),
        }
    }
    for good in ["p0", "p50", "p99.9", "p99.99", "p100", "SampleCount"] {
        let text = format!("{VALID_GROUP}{}", alarm(">", "[{ lower = 0, change = 1 }]"))
            .replace("\"Average\"", &format!("{good:?}"));
        let policy = Policy::parse("test.toml", &text).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(policy.groups[0].alarm_policies[0].metric.stat.to_string(), good);
    }
}

/// CloudWatch User Guide, "Aggregate statistics by Auto Scaling group": a
/// metric EC2 publishes per instance is aggregated over every instance's
/// datapoints under `AutoScalingGroupName` (its example: `SampleCount` 18
/// for a 6-minute period of 3 instances). `of_repeated` takes a value with
/// how many datapoints have it (the backtest's instances all report one
/// value), percentiles by nearest rank over every datapoint.
#[test]
fn a_statistic_over_repeated_datapoints_counts_every_datapoint() {
    use functions::policy::Statistic;
    // Six minutes of three instances: sorted, 0 0 0 10 10 10 20 20 20 40 ... 90 90 90.
    let six_minutes_of_three = [(10.0, 3), (20.0, 3), (90.0, 3), (40.0, 3), (0.0, 3), (60.0, 3)];
    // 20 20 50 70 70 70 70, and a value no datapoint has.
    let uneven = [(50.0, 1), (70.0, 4), (20.0, 2), (99.0, 0)];
    type Case<'a> = (&'a [(f64, u32)], &'a str, Option<f64>);
    let cases: [Case; 16] = [
        (&six_minutes_of_three, "SampleCount", Some(18.0)),
        (&six_minutes_of_three, "Sum", Some(660.0)),
        (&six_minutes_of_three, "Average", Some(660.0 / 18.0)),
        (&six_minutes_of_three, "Minimum", Some(0.0)),
        (&six_minutes_of_three, "Maximum", Some(90.0)),
        (&six_minutes_of_three, "p0", Some(0.0)),
        // Nearest rank: ceil(0.5 x 18) = the 9th, the last 20.
        (&six_minutes_of_three, "p50", Some(20.0)),
        // ceil(0.9 x 18) = the 17th.
        (&six_minutes_of_three, "p90", Some(90.0)),
        (&uneven, "SampleCount", Some(7.0)),
        (&uneven, "Sum", Some(370.0)),
        (&uneven, "Maximum", Some(70.0)),
        (&uneven, "p10", Some(20.0)),
        // ceil(0.5 x 7) = the 4th.
        (&uneven, "p50", Some(70.0)),
        (&uneven, "p40", Some(50.0)),
        (&[(5.0, 0)], "Average", None),
        (&[], "p99", None),
    ];
    for (samples, stat, expected) in cases {
        let stat: Statistic = stat.parse().expect("statistic");
        assert_eq!(
            stat.of_repeated(samples.iter().copied()),
            expected,
            "{stat} of {samples:?}"
        );
        // `of` is the same over the datapoints written out one by one.
        let written_out: Vec<f64> = samples
            .iter()
            .flat_map(|(value, count)| std::iter::repeat_n(*value, *count as usize))
            .collect();
        assert_eq!(stat.of(&written_out), expected, "{stat} of {written_out:?}");
    }
}

#[test]
fn broken_rules_are_named_with_what_is_allowed() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("gap", alarm(">", "[{ lower = 0, upper = 10, change = 1 }, { lower = 20, change = 2 }]"), "gap between 10 and 20"),
        ("overlap", alarm(">", "[{ lower = 0, upper = 30, change = 1 }, { lower = 20, change = 2 }]"), "overlap"),
        ("bounded top", alarm(">", "[{ lower = 0, upper = 10, change = 1 }]"), "highest step needs no upper bound"),
        ("starts above threshold", alarm(">", "[{ lower = 5, change = 1 }]"), "must start at 0"),
        ("bounded bottom", alarm("<", "[{ lower = -10, upper = 0, change = -1 }]"), "lowest step needs no lower bound"),
        ("both open", alarm(">", "[{ change = 1 }]"), "cannot both be open"),
        ("no steps", alarm(">", "[]"), "at least one step"),
        // Issue 18: decisions read one hour of activities.
        (
            "cooldown beyond history",
            simple(">", 1) + "cooldown = \"2h\"\n",
            "cooldown: 7200s is longer than the 3600s of history decisions read",
        ),
        // Issue 18: the policy type is explicit, each with the fields
        // PutScalingPolicy allows for it.
        (
            "no type",
            alarm(">", "[{ lower = 0, change = 1 }]").replace("type = \"step\"\n", ""),
            "type: required: \"simple\" (one change, then a cooldown) or \"step\" (steps by breach size, instance warm-up, no cooldown)",
        ),
        (
            "no type, a change",
            simple(">", 2).replace("type = \"simple\"\n", ""),
            "(this one has a change: type = \"simple\")",
        ),
        (
            // PutScalingPolicy: Cooldown "valid only if the policy type is SimpleScaling".
            "step with a cooldown",
            alarm(">", "[{ lower = 0, change = 1 }]") + "cooldown = \"300s\"\n",
            "cooldown: only for type = \"simple\" (AWS: Cooldown is valid only for SimpleScaling); a step policy uses instance_warmup",
        ),
        ("step with a change", alarm(">", "[{ lower = 0, change = 1 }]") + "change = 2\n", "change: only for type = \"simple\""),
        (
            "simple with steps",
            simple(">", 1).replace("change = 1", "steps = [{ lower = 0, change = 1 }]\nchange = 1"),
            "steps: only for type = \"step\"; a simple policy has one change",
        ),
        (
            "simple without a change",
            simple(">", 1).replace("change = 1\n", ""),
            "change: required for type = \"simple\"",
        ),
        (
            "simple with a warm-up",
            simple(">", 1) + "instance_warmup = \"60s\"\n",
            "instance_warmup: only for type = \"step\"; simple scaling waits for its cooldown instead",
        ),
        // Issue 18: an alarm only on what the stack publishes (EC2's
        // CPUUtilization by group, the ALB's RequestCountPerTarget by target
        // group, Sum only).
        (
            "a custom metric nothing publishes",
            simple(">", 1).replace(
                r#"namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = { AutoScalingGroupName = "web" }"#,
                r#"namespace = "Custom/Web", name = "QPS", stat = "Average", dimensions = { AutoScalingGroupName = "web" }"#,
            ),
            "metric: Custom/Web/QPS is published by nothing in this stack (on AWS the alarm would never see a datapoint)",
        ),
        (
            "CPU by instance",
            simple(">", 1).replace(r#"AutoScalingGroupName = "web""#, r#"InstanceId = "i-0123""#),
            "metric: AWS/EC2/CPUUtilization with dimensions { InstanceId = \"i-0123\" }: published only with AutoScalingGroupName = one of the file's groups (web)",
        ),
        (
            "CPU of a group not in the file",
            simple(">", 1).replace(r#"AutoScalingGroupName = "web""#, r#"AutoScalingGroupName = "api""#),
            "published only with AutoScalingGroupName = one of the file's groups (web)",
        ),
        (
            "CPU without dimensions",
            simple(">", 1).replace(r#", dimensions = { AutoScalingGroupName = "web" }"#, ""),
            "AWS/EC2/CPUUtilization with dimensions {  }: published only with AutoScalingGroupName",
        ),
        (
            "requests per target, not Sum",
            simple(">", 1).replace(
                r#"namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = { AutoScalingGroupName = "web" }"#,
                r#"namespace = "AWS/ApplicationELB", name = "RequestCountPerTarget", stat = "Average", dimensions = { TargetGroup = "web" }"#,
            ),
            "stat Average is not valid for it; the only valid statistic is Sum",
        ),
        ("huge simple change", simple(">", 5000), "alarm_policy[0] (a).change: 5000 must be within -1000..=1000"),
        (
            "negative exact capacity",
            simple(">", -1).replace("change_in_capacity", "exact_capacity"),
            "change: exact_capacity changes must be >= 0",
        ),
        // Issue 25.6: validated, then overflowed and the scale-out was lost.
        (
            "huge change",
            alarm(">", "[{ lower = 0, change = 9223372036854775807 }]"),
            "steps[0].change: 9223372036854775807 must be within -1000..=1000 for ChangeInCapacity",
        ),
        (
            "huge percent",
            alarm(">", "[{ lower = 0, change = 20000 }]").replace("change_in_capacity", "percent_change_in_capacity"),
            "steps[0].change: 20000 must be within -100..=10000 for PercentChangeInCapacity",
        ),
        (
            "bad period",
            alarm(">", "[{ lower = 0, change = 1 }]").replace("\"300s\"", "\"45s\""),
            "must be 10s, 20s, 30s or a multiple of 60s",
        ),
        (
            "m of n",
            alarm(">", "[{ lower = 0, change = 1 }]") + "datapoints_to_alarm = 4\n",
            "datapoints_to_alarm: 4 must be in 1..=3",
        ),
        (
            "cron fields",
            "[[group.schedule]]\nname = \"s\"\ncron = \"cron(0 11 * * *)\"\nmin = 3\n".into(),
            "cron needs 6 fields",
        ),
        (
            "cron both days",
            "[[group.schedule]]\nname = \"s\"\ncron = \"cron(0 11 * * MON *)\"\nmin = 3\n".into(),
            "must be ?",
        ),
        (
            "time zone",
            "[[group.schedule]]\nname = \"s\"\ncron = \"cron(0 11 * * ? *)\"\ntimezone = \"Mars/Olympus\"\nmin = 3\n".into(),
            "not an IANA time zone",
        ),
        ("schedule sets nothing", "[[group.schedule]]\nname = \"s\"\nrate = \"rate(5 minutes)\"\n".into(), "at least one of min, max, desired"),
        (
            "schedule min above max",
            "[[group.schedule]]\nname = \"s\"\nrate = \"rate(5 minutes)\"\nmin = 12\n".into(),
            "min 12 must be <= max 10",
        ),
        (
            "rate policy needs one limit",
            "[[group.target_tracking]]\nmetric = \"cpu\"\ntarget = 50\nscale_out = { policies = [{ percent = 10, instances = 2, period = \"60s\" }] }\n".into(),
            "set exactly one of percent or instances",
        ),
        ("cpu target", "[[group.target_tracking]]\nmetric = \"cpu\"\ntarget = 150\n".into(), "must be <= 100"),
    ];
    for (name, extra, expected) in cases {
        let problems = problems(&extra);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{name}: {expected:?} not in {problems:#?}"
        );
        assert!(
            problems.iter().all(|p| p.starts_with("group[0] (web)")),
            "{name}: problems name their place: {problems:#?}"
        );
    }
}

#[test]
fn group_level_rules() {
    let error =
        Policy::parse("p.toml", "[[group]]\nname = \"web\"\nmin = 5\nmax = 3\ndesired = 9\n").expect_err("invalid");
    let text = error.to_string();
    assert!(text.starts_with("policy file p.toml is invalid:"), "{text}");
    assert!(text.contains("min 5 must be <= max 3"), "{text}");
    assert!(text.contains("desired: 9 must be within min..=max"), "{text}");
    let error = Policy::parse("p.toml", "").expect_err("no group");
    assert!(error.to_string().contains("missing field `group`"), "{error}");
}

/// Scale from zero (issue 18): at zero instances there is no CPU datapoint
/// and no RequestCountPerTarget (the ALB counts requests only when it can
/// choose a target: ALB docs, "CloudWatch metrics for your Application Load
/// Balancer"), so `min = 0` needs an alarm on the load balancer's
/// HTTPCode_ELB_503_Count (by LoadBalancer, stat Sum) or a schedule that
/// raises the group again; anything else is refused naming the way out.
#[test]
fn a_group_that_may_reach_zero_needs_a_way_back() {
    let zero = VALID_GROUP.replace("min = 2", "min = 0");
    let error = Policy::parse("z.toml", &format!("{zero}{}", simple(">", 1))).expect_err("no way back");
    let text = error.to_string();
    assert!(
        text.contains("group[0] (web).min: 0, but nothing could scale web out again from zero instances")
            && text.contains("HTTPCode_ELB_503_Count { LoadBalancer = \"web\" }"),
        "{text}"
    );
    let from_zero = simple(">", 2)
        .replace(
            r#"namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = { AutoScalingGroupName = "web" }"#,
            r#"namespace = "AWS/ApplicationELB", name = "HTTPCode_ELB_503_Count", stat = "Sum", dimensions = { LoadBalancer = "web" }"#,
        )
        .replace("threshold = 70", "threshold = 0");
    let policy = Policy::parse("z.toml", &format!("{zero}{from_zero}")).expect("a 503 alarm is a way back");
    assert_eq!(policy.groups[0].min, 0);
    let scheduled = "\n[[group.schedule]]\nname = \"morning\"\ncron = \"cron(0 8 * * ? *)\"\nmin = 2\n";
    Policy::parse("z.toml", &format!("{zero}{scheduled}")).expect("a schedule raising min is a way back");
    // The 503 count by target group, or as an average, is not what the ALB publishes.
    let wrong = from_zero.replace(r#"LoadBalancer = "web""#, r#"TargetGroup = "web""#);
    let text = Policy::parse("z.toml", &format!("{zero}{wrong}"))
        .expect_err("by target group")
        .to_string();
    assert!(
        text.contains("published only with LoadBalancer = one of the file's groups"),
        "{text}"
    );
    let wrong = from_zero.replace(r#"stat = "Sum""#, r#"stat = "Average""#);
    let text = Policy::parse("z.toml", &format!("{zero}{wrong}"))
        .expect_err("average")
        .to_string();
    assert!(text.contains("the only valid statistic is Sum"), "{text}");
}

#[test]
fn typos_and_wrong_types_are_parse_errors_naming_the_key() {
    let error = Policy::parse(
        "p.toml",
        "[[group]]\nname = \"web\"\nmin = 2\nmax = 10\ncooldwon = \"60s\"\n",
    )
    .expect_err("typo");
    let text = error.to_string();
    assert!(
        text.contains("p.toml") && text.contains("unknown field `cooldwon`"),
        "{text}"
    );
    let error = Policy::parse(
        "p.toml",
        &format!("{VALID_GROUP}{}", simple(">", 1).replace("\"simple\"", "\"target\"")),
    )
    .expect_err("policy type");
    let text = error.to_string();
    assert!(
        text.contains("unknown variant `target`") && text.contains("`simple`") && text.contains("`step`"),
        "{text}"
    );
    let error = Policy::parse("p.toml", "[[group]]\nname = \"web\"\nmin = -1\nmax = 10\n").expect_err("negative");
    assert!(error.to_string().contains("min"), "{error}");
    let error = Policy::parse(
        "p.toml",
        "[[group]]\nname = \"web\"\nmin = 1\nmax = 10\ncooldown = \"soon\"\n",
    )
    .expect_err("duration");
    assert!(error.to_string().contains("\"soon\" is not a duration"), "{error}");
    let error = Policy::parse(
        "p.toml",
        &alarm("=>", "[]").replace(
            "[[group.alarm_policy]]",
            "[[group]]\nname=\"w\"\nmin=1\nmax=2\n[[group.alarm_policy]]",
        ),
    )
    .expect_err("comparison");
    assert!(
        error.to_string().contains("comparison") || error.to_string().contains("unknown variant"),
        "{error}"
    );
    let tracked = |metric: &str| {
        Policy::parse(
            "p.toml",
            &format!("{VALID_GROUP}[[group.target_tracking]]\nmetric = {metric}\ntarget = 50\n"),
        )
    };
    let text = tracked("\"cpux\"").expect_err("metric").to_string();
    assert!(
        text.contains("metric \"cpux\" is not a predefined metric")
            && text.contains("cpu, cpu_demand, request_count_per_target"),
        "{text}"
    );
    for name in ["\"cpu\"", "\"cpu_demand\"", "\"request_count_per_target\""] {
        tracked(name).expect(name);
    }
    // A utilisation target, like cpu's: demand above 100% is what it sizes for.
    let text = Policy::parse(
        "p.toml",
        &format!("{VALID_GROUP}[[group.target_tracking]]\nmetric = \"cpu_demand\"\ntarget = 150\n"),
    )
    .expect_err("over 100")
    .to_string();
    assert!(text.contains("CPU target 150 must be <= 100"), "{text}");
}

#[test]
fn a_tiers_exposure_is_internet_or_internal() {
    let text = format!("{VALID_GROUP}exposure = \"public\"\n");
    let error = Policy::parse("e.toml", &text).expect_err("bad exposure").to_string();
    assert!(
        error.contains("exposure") && error.contains("internet") && error.contains("internal"),
        "{error}"
    );
    let policy = Policy::parse("e.toml", &format!("{VALID_GROUP}exposure = \"internal\"\n")).expect("policy");
    assert_eq!(policy.exposure(0), functions::policy::Exposure::Internal);
    let policy = Policy::parse("e.toml", VALID_GROUP).expect("policy");
    assert_eq!(
        policy.exposure(0),
        functions::policy::Exposure::Internet,
        "the first group faces the internet"
    );
}

/// A tracked metric goes over the wire (the local adapter's GetMetricData)
/// as the policy file writes it, and reads back the same.
#[test]
fn a_tracked_metric_serialises_as_the_policy_file_writes_it() {
    use functions::policy::TrackedMetric;
    for text in [
        r#""cpu""#,
        r#""cpu_demand""#,
        r#""request_count_per_target""#,
        r#"{"namespace":"App","name":"QueueDepthPerInstance","stat":"Average","dimensions":{"Queue":"jobs"}}"#,
    ] {
        let metric: TrackedMetric = serde_json::from_str(text).expect(text);
        let again: TrackedMetric =
            serde_json::from_value(serde_json::to_value(&metric).expect("serialise")).expect("read back");
        assert_eq!(again, metric, "{text}");
    }
}

/// PredictiveScalingConfiguration's rules (EC2 Auto Scaling API
/// reference, CloudFormation's `PredictiveScalingConfiguration`):
/// SchedulingBufferTime below the 3600 s forecast interval,
/// MaxCapacityBuffer "required if MaxCapacityBreachBehavior is
/// IncreaseMaxCapacity, and cannot be used otherwise", a load metric
/// the group's totals exist for. Each named with what is allowed.
#[test]
fn predictive_scaling_refuses_what_aws_refuses_naming_the_field() {
    let predictive = |body: &str| format!("\n[group.predictive]\nmetric = \"cpu\"\ntarget = 50\n{body}");
    let found = problems(&predictive("scheduling_buffer = \"3600s\"\nmax_capacity_buffer = 10\n"));
    let text = found.join("\n");
    assert!(
        text.contains("predictive.scheduling_buffer: 3600s must be less than the forecast interval of 3600s"),
        "{text}"
    );
    assert!(
        text.contains("predictive.max_capacity_buffer: only with max_capacity_breach = \"increase_max_capacity\""),
        "{text}"
    );
    let found = problems(&predictive("max_capacity_breach = \"increase_max_capacity\"\n")).join("\n");
    assert!(found.contains("max_capacity_buffer: required with"), "{found}");
    let found = problems(&predictive(
        "max_capacity_breach = \"increase_max_capacity\"\nmax_capacity_buffer = 101\n",
    ))
    .join("\n");
    assert!(found.contains("max_capacity_buffer: 101 must be 0-100"), "{found}");
    let found = problems(
        "\n[group.predictive]\nmetric = { namespace = \"Custom\", name = \"Q\", stat = \"Sum\" }\ntarget = 0\n",
    )
    .join("\n");
    assert!(
        found.contains("predictive.metric: Custom/Q is not a load metric")
            && found.contains("allowed: cpu, cpu_demand, request_count_per_target"),
        "{found}"
    );
    assert!(
        found.contains("predictive.target: 0 must be a positive number"),
        "{found}"
    );
    // Modes and behaviours are AWS's, in snake_case; a typo is a parse error naming them.
    let error = Policy::parse(
        "p.toml",
        &format!("{VALID_GROUP}{}", predictive("mode = \"ForecastAndScale\"\n")),
    )
    .expect_err("unknown mode");
    assert!(
        error.to_string().contains("forecast_only") && error.to_string().contains("forecast_and_scale"),
        "{error}"
    );
    // The defaults are AWS's: ForecastOnly, 300 s, HonorMaxCapacity.
    let policy = Policy::parse("p.toml", &format!("{VALID_GROUP}{}", predictive(""))).expect("valid");
    let p = policy.groups[0].predictive.as_ref().expect("predictive");
    assert_eq!(p.mode, functions::policy::PredictiveMode::ForecastOnly);
    assert_eq!(p.scheduling_buffer, Duration::from_secs(300));
    assert_eq!(
        p.max_capacity_breach,
        functions::policy::MaxCapacityBreach::HonorMaxCapacity
    );
    // A group that scales on its forecast alone still gets its tick.
    assert!(policy.groups[0].needs_tick());
}

/// `[group.warm_pool]`: PutWarmPool's settings. Hibernated is refused with
/// the reason (it needs hibernation in the launch template, which this
/// stack does not configure: AWS would refuse to hibernate); prepared
/// capacity counts the group and the pool together, so below the group's
/// max it is refused naming the range.
#[test]
fn a_warm_pool_refuses_what_this_stack_cannot_run() {
    let found =
        problems("\n[group.warm_pool]\npool_state = \"hibernated\"\nmax_group_prepared_capacity = 5\n").join("\n");
    assert!(
        found.contains("warm_pool.pool_state: hibernated needs hibernation configured in the launch template"),
        "{found}"
    );
    assert!(
        found.contains("warm_pool.max_group_prepared_capacity: 5 must be within the group's max and 1000 (10..=1000)"),
        "{found}"
    );
    let error = Policy::parse(
        "p.toml",
        &format!("{VALID_GROUP}\n[group.warm_pool]\npool_state = \"warm\"\n"),
    )
    .expect_err("unknown state");
    assert!(
        error.to_string().contains("stopped") && error.to_string().contains("running"),
        "{error}"
    );
    let spiky = shipped("spiky-consumer.toml");
    let pool = spiky.groups[0].warm_pool.as_ref().expect("warm pool");
    assert_eq!(
        (
            pool.max_group_prepared_capacity,
            pool.pool_state,
            pool.reuse_on_scale_in
        ),
        (Some(40), functions::policy::PoolState::Stopped, true)
    );
}

//! A source group's scaling policies written out: alarm (simple and step),
//! target tracking, predictive.

use super::*;

pub(super) fn adjustment(kind: Option<&str>) -> &'static str {
    match kind {
        Some("ExactCapacity") => "exact_capacity",
        Some("PercentChangeInCapacity") => "percent_change_in_capacity",
        _ => "change_in_capacity",
    }
}

pub(super) fn comparison(text: &str) -> Option<&'static str> {
    Some(match text {
        "GreaterThanThreshold" => ">",
        "GreaterThanOrEqualToThreshold" => ">=",
        "LessThanThreshold" => "<",
        "LessThanOrEqualToThreshold" => "<=",
        _ => return None,
    })
}

pub(super) fn missing_data(text: &str) -> Option<&'static str> {
    Some(match text {
        "missing" => "missing",
        "ignore" => "ignore",
        "breaching" => "breaching",
        "notBreaching" => "not_breaching",
        _ => return None,
    })
}

pub(super) fn metric_inline(metric: &SourceMetric) -> String {
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
pub(super) fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        key.to_string()
    } else {
        quoted(key)
    }
}

pub(super) fn write_alarm_policy(w: &mut Writer, from: &str, policy: &SourcePolicy, alarm: &SourceAlarm) {
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

pub(super) fn write_target_tracking(w: &mut Writer, from: &str, policy: &SourcePolicy) {
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
pub(super) fn write_predictive(w: &mut Writer, from: &str, policy: &SourcePolicy) {
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

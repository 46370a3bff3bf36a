//! A CloudWatch dashboard per group (issue 20): capacity (desired, in
//! service, pending, and what the scaler recommended), CPU against the
//! policy's targets and thresholds, requests and errors at the load
//! balancer, latency, and the decisions by trigger. The decisions are the
//! scaler's embedded-metric-format lines (`crate::emf`) in the namespace
//! [`NAMESPACE`], which the template hands the function.

use serde_json::{Value, json};

use crate::policy::{GroupPolicy, PredefinedMetric, TrackedMetric};

/// The scaler's metric namespace, per stack (a `Fn::Sub` string).
pub const NAMESPACE: &str = "Autoscaler/${AWS::StackName}";

/// The `AWS::CloudWatch::Dashboard` of `group` (logical id suffix `id`).
pub fn dashboard(group: &GroupPolicy, id: &str) -> Value {
    let name = &group.name;
    let asg = ["AutoScalingGroupName", name.as_str()];
    let lb = format!("${{LoadBalancer{id}.LoadBalancerFullName}}");
    let tg = format!("${{TargetGroup{id}.TargetGroupFullName}}");
    let metric_widget = |title: &str, metrics: Value, stat: &str, annotations: Value, y: u32, x: u32| {
        json!({
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": "${AWS::Region}",
                "view": "timeSeries",
                "stat": stat,
                "period": 60,
                "metrics": metrics,
                "annotations": annotations
            }
        })
    };
    // The CPU lines the policy acts on: target tracking targets and the
    // thresholds of alarms on the group's CPU.
    let mut cpu_lines: Vec<Value> = group
        .target_tracking
        .iter()
        .filter(|t| t.metric == TrackedMetric::Predefined(PredefinedMetric::Cpu))
        .map(|t| json!({ "label": "target tracking target", "value": t.target }))
        .collect();
    cpu_lines.extend(
        group
            .alarm_policies
            .iter()
            .filter(|a| a.metric.namespace == "AWS/EC2" && a.metric.name == "CPUUtilization")
            .map(|a| json!({ "label": format!("{} ({} {})", a.alarm, a.comparison.symbol(), a.threshold), "value": a.threshold })),
    );
    let widgets = vec![
        metric_widget(
            &format!("{name}: capacity"),
            json!([
                ["AWS/AutoScaling", "GroupDesiredCapacity", asg[0], asg[1], { "label": "desired" }],
                [".", "GroupInServiceInstances", ".", ".", { "label": "in service" }],
                [".", "GroupPendingInstances", ".", ".", { "label": "pending" }],
                [NAMESPACE, "RecommendedCapacity", "Group", name, { "label": "scaler's decision" }]
            ]),
            "Maximum",
            json!({ "horizontal": [{ "label": "min", "value": group.min }, { "label": "max", "value": group.max }] }),
            0,
            0,
        ),
        metric_widget(
            &format!("{name}: CPU"),
            json!([["AWS/EC2", "CPUUtilization", asg[0], asg[1], { "label": "average CPU" }]]),
            "Average",
            json!({ "horizontal": cpu_lines }),
            0,
            12,
        ),
        metric_widget(
            &format!("{name}: requests and errors"),
            json!([
                ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", lb, "TargetGroup", tg, { "label": "requests" }],
                [".", "HTTPCode_Target_5XX_Count", ".", ".", ".", ".", { "label": "5xx from instances" }],
                [".", "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb, { "label": "5xx from the load balancer" }]
            ]),
            "Sum",
            json!({}),
            6,
            0,
        ),
        metric_widget(
            &format!("{name}: latency (s)"),
            json!([
                ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb, "TargetGroup", tg, { "stat": "p50", "label": "p50" }],
                ["...", { "stat": "p99", "label": "p99" }]
            ]),
            "p99",
            json!({}),
            6,
            12,
        ),
        metric_widget(
            &format!("{name}: scaler decisions"),
            json!([
                [NAMESPACE, "Decisions", "Group", name, "Trigger", "alarm", { "label": "on alarms" }],
                ["...", "schedule", { "label": "on schedules" }],
                ["...", "tick", { "label": "on ticks" }],
                [NAMESPACE, "Acted", "Group", name, { "label": "acted (changed the group)" }]
            ]),
            "Sum",
            json!({}),
            12,
            0,
        ),
    ];
    json!({
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": { "Fn::Sub": format!("${{AWS::StackName}}-{name}") },
            "DashboardBody": { "Fn::Sub": sorted(json!({ "widgets": widgets })).to_string() }
        }
    })
}

/// `value` with every object's keys in order, so the body string is the
/// same whether or not a build of serde_json keeps insertion order (the
/// tests' builds do: the checked-in template must not depend on it).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

//! One CloudWatch embedded-metric-format (EMF) line per decision, so the
//! stack's dashboard graphs what the scaler decided without a
//! PutMetricData call (CloudWatch user guide, "Specification: Embedded
//! metric format": a log event that is one JSON object with `_aws.Timestamp`
//! in milliseconds and `_aws.CloudWatchMetrics`, an array of directives
//! naming a namespace, dimension sets and metrics, each dimension and metric
//! a member of the root object). Lambda sends stdout to CloudWatch Logs,
//! which extracts the metrics.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::decide::{Decision, Trigger};

/// The namespace when the template sets none (`SCALER_METRICS_NAMESPACE`;
/// the template sets `Autoscaler/STACK`).
pub const DEFAULT_NAMESPACE: &str = "Autoscaler";

/// The kind of trigger, a dimension of every metric.
pub fn trigger_kind(trigger: &Trigger) -> &'static str {
    match trigger {
        Trigger::Alarm(_) => "alarm",
        Trigger::Scheduled { .. } => "schedule",
        Trigger::Tick { .. } => "tick",
    }
}

/// The EMF document of one decision: `Decisions` (1), `CapacityBefore`,
/// `RecommendedCapacity` (the desired capacity the decision leaves), `Change`
/// and `Acted` (0 or 1), by `Group` and by `Group` and `Trigger`; the reason
/// rides along as a plain member (not a metric).
pub fn decision_record(
    namespace: &str,
    group: &str,
    trigger: &Trigger,
    decision: &Decision,
    acted: bool,
    now: Timestamp,
) -> Value {
    let after = decision.desired_after();
    json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Group"], ["Group", "Trigger"]],
                "Metrics": [
                    { "Name": "Decisions", "Unit": "Count" },
                    { "Name": "CapacityBefore", "Unit": "Count" },
                    { "Name": "RecommendedCapacity", "Unit": "Count" },
                    { "Name": "Change", "Unit": "Count" },
                    { "Name": "Acted", "Unit": "Count" }
                ]
            }]
        },
        "Group": group,
        "Trigger": trigger_kind(trigger),
        "Decisions": 1,
        "CapacityBefore": decision.from,
        "RecommendedCapacity": after,
        "Change": i64::from(after) - i64::from(decision.from),
        "Acted": u8::from(acted),
        "code": decision.code,
        "reason": decision.reason,
        "rule_codes": decision.rules.iter().map(|r| r.code).collect::<Vec<_>>(),
    })
}

/// Prints the decision's EMF line on stdout (one line, nothing around it).
pub fn emit(group: &str, trigger: &Trigger, decision: &Decision, acted: bool, now: Timestamp) {
    let namespace = std::env::var("SCALER_METRICS_NAMESPACE").unwrap_or_else(|_| DEFAULT_NAMESPACE.into());
    println!("{}", decision_record(&namespace, group, trigger, decision, acted, now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Action, Code};

    fn decision(from: u32, action: Action) -> Decision {
        Decision {
            from,
            action,
            code: Code::Step,
            reason: "alarm web-cpu-high: 2 -> 4".into(),
            rules: Vec::new(),
            cause: None,
        }
    }

    /// Every member a directive names is on the root, of the right type;
    /// no other member in `_aws` (the specification's MUSTs).
    #[test]
    fn a_decision_is_an_emf_document_cloudwatch_can_extract() {
        let now: Timestamp = "2026-12-07T03:00:00Z".parse().expect("now");
        let trigger = Trigger::Scheduled {
            name: "lunch".into(),
            at: now,
        };
        let doc = decision_record(
            "Autoscaler/prod",
            "web",
            &trigger,
            &decision(2, Action::SetDesired(4)),
            true,
            now,
        );
        let aws = doc["_aws"].as_object().expect("_aws");
        assert_eq!(aws.len(), 2, "{aws:?}");
        assert_eq!(aws["Timestamp"], 1_796_612_400_000_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Autoscaler/prod");
        for set in directive["Dimensions"].as_array().expect("dimension sets") {
            for key in set.as_array().expect("a set") {
                assert!(doc[key.as_str().expect("key")].is_string(), "{key}");
            }
        }
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("name");
            assert!(doc[name].is_number(), "{name}");
        }
        assert_eq!(
            (doc["Trigger"].as_str(), doc["RecommendedCapacity"].as_u64()),
            (Some("schedule"), Some(4))
        );
        assert_eq!((doc["Change"].as_i64(), doc["Acted"].as_u64()), (Some(2), Some(1)));
        // Issue 19: the decision's code beside its reason, to filter logs by.
        assert_eq!(
            (doc["code"].as_str(), doc["rule_codes"].as_array().map(Vec::len)),
            (Some("step"), Some(0))
        );
        // One line: the whole log event is the document.
        assert!(!doc.to_string().contains('\n'));
        let hold = decision_record("A", "web", &trigger, &decision(3, Action::Hold), false, now);
        assert_eq!(
            (hold["RecommendedCapacity"].as_u64(), hold["Change"].as_i64()),
            (Some(3), Some(0))
        );
        let limits = decision_record(
            "A",
            "web",
            &trigger,
            &decision(
                3,
                Action::SetLimits {
                    min: 1,
                    max: 5,
                    desired: 1,
                },
            ),
            true,
            now,
        );
        assert_eq!(limits["Change"].as_i64(), Some(-2));
    }
}

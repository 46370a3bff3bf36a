//! Scheduled actions: min/max/desired set at their time; absolute, so repeats are harmless.

mod support;

use functions::decide::{Action, MetricHistory, Observation, Trigger, decide};
use functions::policy::GroupPolicy;
use functions::schedule::ScheduleExpr;
use jiff::Timestamp;

fn web() -> GroupPolicy {
    support::two_tier_group("web")
}

fn observed(min: u32, max: u32, desired: u32) -> Observation {
    Observation {
        min,
        max,
        desired,
        instances: vec![],
    }
}

fn fired(name: &str) -> Trigger {
    Trigger::Scheduled {
        name: name.into(),
        at: "2026-11-20T03:00:00Z".parse().expect("at"),
    }
}

#[test]
fn scheduled_action_cases() {
    let now: Timestamp = "2026-11-20T03:00:05Z".parse().expect("now");
    let cases = [
        (
            "lunch raises min and desired with it",
            observed(2, 10, 2),
            "web-lunch-scale-out",
            Action::SetLimits {
                min: 4,
                max: 10,
                desired: 4,
            },
            "desired moved to the new min 4",
        ),
        (
            "desired above the new min is kept",
            observed(2, 10, 7),
            "web-lunch-scale-out",
            Action::SetLimits {
                min: 4,
                max: 10,
                desired: 7,
            },
            "schedule web-lunch-scale-out sets min 4",
        ),
        (
            "already in effect: a repeat does nothing",
            observed(4, 10, 7),
            "web-lunch-scale-out",
            Action::Hold,
            "already in effect",
        ),
        (
            "after lunch min returns, desired stays for the policies to shrink",
            observed(4, 10, 6),
            "web-lunch-scale-in",
            Action::SetLimits {
                min: 2,
                max: 10,
                desired: 6,
            },
            "sets min 2",
        ),
        (
            "unknown schedule",
            observed(2, 10, 2),
            "nightly",
            Action::Hold,
            "no scheduled action of group web is named nightly",
        ),
        (
            "min above the group's live max is refused",
            observed(2, 3, 2),
            "web-lunch-scale-out",
            Action::Hold,
            "would set min 4 above max 3",
        ),
    ];
    for (name, observed, schedule, action, explains) in cases {
        let decision =
            decide(&web(), &observed, &MetricHistory::default(), &[], &fired(schedule), now).expect("decide");
        assert_eq!(decision.action, action, "{name}: {decision:#?}");
        let text = format!("{} | {}", decision.reason, decision.explain(" | "));
        assert!(text.contains(explains), "{name}: {explains:?} not in {text:?}");
        assert_eq!(decision.cause.is_some(), decision.action != Action::Hold, "{name}");
    }
}

#[test]
fn shipped_lunch_schedule_fires_at_11_shanghai_which_is_03_utc() {
    let web = web();
    let lunch = web
        .schedules
        .iter()
        .find(|s| s.name == "web-lunch-scale-out")
        .expect("lunch");
    let expr: ScheduleExpr = lunch.expression().expect("expr").parse().expect("valid");
    let tz = functions::schedule::time_zone(lunch.timezone.as_deref().expect("tz")).expect("zone");
    let next = expr
        .next_after("2026-11-19T22:00:00Z".parse().expect("t"), &tz)
        .expect("fires");
    // The fixture's Scheduled Event for this rule has time 03:00 UTC.
    assert_eq!(next.to_string(), "2026-11-20T03:00:00Z");
}

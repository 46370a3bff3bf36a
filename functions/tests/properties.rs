//! Invariants of the decision core over random groups, histories and alarms.

mod support;

use functions::decide::{
    Action, Activity, AlarmState, AlarmStatus, Datapoint, DecideError, Instance, Lifecycle, MetricHistory, Observation,
    Trigger, decide,
};
use functions::decide::{Decision, Explain, decide_explained};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn now() -> Timestamp {
    "2026-11-20T11:05:00Z".parse().expect("now")
}

prop_compose! {
    fn observation()(min in 0u32..5, span in 0u32..8, offset in 0u32..8, ages in proptest::collection::vec(0i64..600, 0..12)) -> Observation {
        let max = min + span;
        let desired = min + offset.min(span);
        let instances = ages.iter().enumerate().map(|(i, age)| Instance {
            id: format!("i-{i}"),
            lifecycle: if age % 7 == 0 { Lifecycle::Pending } else { Lifecycle::InService },
            launched_at: now() - SignedDuration::from_secs(*age),
            protected: age % 3 == 0,
        }).collect();
        Observation { min, max, desired, instances }
    }
}

prop_compose! {
    fn activities()(items in proptest::collection::vec((0u32..10, 0u32..10, 0i64..1200), 0..4)) -> Vec<Activity> {
        items.into_iter().map(|(from, to, ago)| Activity {
            start: now() - SignedDuration::from_secs(ago + 30),
            end: Some(now() - SignedDuration::from_secs(ago)),
            from,
            to,
            cause: format!("earlier {ago}"),
        }).collect()
    }
}

fn trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![alarm_trigger(), schedule_trigger(), tick_trigger()]
}

fn tick_trigger() -> impl Strategy<Value = Trigger> {
    proptest::collection::vec(alarm_trigger(), 0..3).prop_map(|alarms| Trigger::Tick {
        at: now(),
        alarms: alarms
            .into_iter()
            .filter_map(|t| match t {
                Trigger::Alarm(status) => Some(status),
                _ => None,
            })
            .collect(),
    })
}

fn schedule_trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![Just("web-lunch-scale-out"), Just("web-lunch-scale-in"), Just("nightly")].prop_map(|name| {
        Trigger::Scheduled {
            name: name.into(),
            at: now() - SignedDuration::from_secs(2),
        }
    })
}

fn alarm_trigger() -> impl Strategy<Value = Trigger> {
    (
        prop_oneof![
            Just("web-cpu-high"),
            Just("web-cpu-low"),
            Just("web-qps-high"),
            Just("other")
        ],
        prop_oneof![
            Just(AlarmState::Alarm),
            Just(AlarmState::Ok),
            Just(AlarmState::InsufficientData)
        ],
        proptest::option::of(-50.0f64..1000.0),
    )
        .prop_map(|(name, state, value)| {
            Trigger::Alarm(AlarmStatus {
                name: name.into(),
                state,
                state_since: now() - SignedDuration::from_secs(5),
                value,
                data_at: None,
            })
        })
}

proptest! {
    #[test]
    fn desired_stays_within_min_and_max_and_decide_is_deterministic(
        observed in observation(), history in activities(), trigger in trigger(),
        cpu in proptest::collection::vec(proptest::option::of(0.0f64..100.0), 12)
    ) {
        let web = &support::two_tier_group("web");
        let metrics = MetricHistory {
            metrics: [("cpu".to_string(), observed.instances.iter().zip(&cpu)
                .filter_map(|(i, v)| v.map(|v| (i.id.clone(), vec![Datapoint { at: now() - SignedDuration::from_secs(30), value: v }])))
                .collect())].into(),
            ..Default::default()
        };
        let first = decide(web, &observed, &metrics, &history, &trigger, now()).expect("decide");
        let second = decide(web, &observed, &metrics, &history, &trigger, now()).expect("decide");
        prop_assert_eq!(&first, &second);
        let brief = decide_explained(web, &observed, &metrics, &history, &trigger, now(), Explain::ActionsOnly).expect("decide");
        prop_assert!(same_but_for_a_holds_text(&first, &brief), "{:?} vs {:?}", first, brief);
        if let Action::SetLimits { min, max, desired } = first.action {
            prop_assert!(min <= max && (min..=max).contains(&desired), "{:?}", first);
        }
        if let Action::SetDesired(n) = first.action {
            prop_assert!((observed.min..=observed.max).contains(&n), "{} outside {}..={}", n, observed.min, observed.max);
            prop_assert_ne!(n, observed.desired, "a set is a change");
            // A simple policy (web-cpu-low: -1, its own 600 s cooldown) never
            // acts inside the cooldown an activity started: 600 s after one of
            // its own, the group's 300 s after any other, whichever way it
            // went ("Scaling cooldowns"). Step policies (web-cpu-high,
            // web-qps-high) and target tracking have no cooldown: their
            // warm-up, stabilisation and rate policies are checked by the
            // named cases.
            if first.cause.as_deref().is_some_and(|c| c.starts_with("alarm web-cpu-low ")) {
                let cooled = |a: &Activity| {
                    let cooldown = if a.cause.starts_with("alarm web-cpu-low ") { 600 } else { 300 };
                    a.end.expect("ended") + SignedDuration::from_secs(cooldown) <= now()
                };
                prop_assert!(
                    history.iter().filter(|a| a.to != a.from).all(cooled),
                    "a simple policy inside its cooldown: {:?}", first
                );
            }
        }
    }
}

proptest! {
    /// Whatever capacities are set, a protected instance is never the one
    /// removed (the group API's side of scale-in protection; decide() only
    /// explains it).
    #[test]
    fn protected_instances_are_never_removed(
        observed in observation(),
        targets in proptest::collection::vec(0u32..14, 1..6)
    ) {
        use functions::memory::MemoryCloud;
        use functions::ports::GroupPort;
        let cloud = MemoryCloud::new(now());
        let protected: Vec<String> = observed.instances.iter().filter(|i| i.protected).map(|i| i.id.clone()).collect();
        cloud.put_group("g", observed.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        for target in targets {
            // Out-of-range targets are refused; in-range ones applied.
            let _ = runtime.block_on(cloud.set_desired("g", target, "prop"));
            let now = cloud.group("g").expect("group");
            for id in &protected {
                prop_assert!(now.instances.iter().any(|i| &i.id == id), "protected {} removed", id);
            }
            prop_assert!((now.min..=now.max).contains(&now.desired));
        }
    }
}

prop_compose! {
    /// Any observation at all: limits and desired in any order and size,
    /// instances in any state and of any age (issue 25.5: decide() panicked
    /// in a clamp on min > max from a state file).
    fn any_observation()(
        min in prop_oneof![0u32..12, Just(u32::MAX), any::<u32>()],
        max in prop_oneof![0u32..12, Just(u32::MAX), any::<u32>()],
        desired in prop_oneof![0u32..16, Just(u32::MAX), any::<u32>()],
        instances in proptest::collection::vec((0u8..3, -100_000i64..1_000_000, any::<bool>()), 0..24),
    ) -> Observation {
        let instances = instances.into_iter().enumerate().map(|(i, (state, age, protected))| Instance {
            id: format!("i-{i}"),
            lifecycle: [Lifecycle::Pending, Lifecycle::InService, Lifecycle::Terminating][usize::from(state)],
            launched_at: now() - SignedDuration::from_secs(age),
            protected,
        }).collect();
        Observation { min, max, desired, instances }
    }
}

/// The first group of every shipped policy: step, simple, tracking, schedules.
static SHIPPED: std::sync::LazyLock<Vec<functions::policy::GroupPolicy>> = std::sync::LazyLock::new(|| {
    [
        "two-tier.toml",
        "recommended.toml",
        "office-hours.toml",
        "office-hours-predictive.toml",
        "spiky-consumer.toml",
        "seed-step.toml",
        "course-target-tracking.toml",
    ]
    .iter()
    .map(|file| support::shipped(file).groups.remove(0))
    .collect()
});

proptest! {
    /// decide() is total: an impossible observation is an error naming it,
    /// every other one a decision within its limits; never a panic.
    #[test]
    fn decide_never_panics_on_arbitrary_observations(
        observed in any_observation(),
        history in activities(),
        trigger in trigger(),
        cpu in proptest::option::of(-1e6f64..1e6),
    ) {
        let series: std::collections::BTreeMap<String, Vec<Datapoint>> = observed.instances.iter()
            .filter_map(|i| cpu.map(|v| (i.id.clone(), vec![Datapoint { at: now() - SignedDuration::from_secs(30), value: v }])))
            .collect();
        let metrics = MetricHistory {
            metrics: [("cpu_demand".to_string(), series.clone()), ("cpu".to_string(), series)].into(),
            ..Default::default()
        };
        for group in SHIPPED.iter() {
            match decide(group, &observed, &metrics, &history, &trigger, now()) {
                Err(DecideError::MinAboveMax { min, max }) => {
                    prop_assert!(observed.min > observed.max);
                    prop_assert_eq!((min, max), (observed.min, observed.max));
                }
                Ok(decision) => {
                    prop_assert!(observed.min <= observed.max, "{:?} decided for {:?}", decision, observed);
                    let brief = decide_explained(group, &observed, &metrics, &history, &trigger, now(), Explain::ActionsOnly)
                        .expect("decide");
                    prop_assert!(same_but_for_a_holds_text(&decision, &brief), "{:?} vs {:?}", decision, brief);
                    if let Action::SetDesired(n) = decision.action {
                        prop_assert!((observed.min..=observed.max).contains(&n), "{} outside {}..={}", n, observed.min, observed.max);
                    }
                }
            }
        }
    }
}

/// `Explain::ActionsOnly` (the backtest's) decides exactly as `decide`: the
/// same action, code, cause and starting point; an action written out in
/// full; only a hold's reason and rules may be left out.
fn same_but_for_a_holds_text(full: &Decision, brief: &Decision) -> bool {
    if full.action != Action::Hold {
        return full == brief;
    }
    (brief.action, brief.code, &brief.cause, brief.from) == (full.action, full.code, &full.cause, full.from)
        && (brief.reason.is_empty() || brief.reason == full.reason)
}

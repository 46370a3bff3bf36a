//! Simple and step scaling on alarms, as EC2 Auto Scaling documents them: named cases.

mod support;

use functions::decide::{
    Action, Activity, AlarmState, AlarmStatus, Code, Decision, Instance, Lifecycle, MetricHistory, Observation,
    Trigger, alarm_cause, decide,
};
use functions::policy::{GroupPolicy, Policy, PolicyType};
use jiff::{SignedDuration, Timestamp};

fn web() -> GroupPolicy {
    support::two_tier_group("web")
}

fn now() -> Timestamp {
    "2026-11-20T11:05:00Z".parse().expect("now")
}

fn ago(seconds: i64) -> Timestamp {
    now() - SignedDuration::from_secs(seconds)
}

/// A group of `desired` in-service instances launched an hour ago, plus
/// `warming` of them launched `warming_age` seconds ago.
fn group(desired: u32, warming: u32, warming_age: i64) -> Observation {
    let instances = (0..desired)
        .map(|i| Instance {
            id: format!("i-{i:04}"),
            lifecycle: Lifecycle::InService,
            launched_at: if i < desired - warming {
                ago(3600)
            } else {
                ago(warming_age)
            },
            protected: false,
        })
        .collect();
    Observation {
        min: 2,
        max: 10,
        desired,
        instances,
    }
}

fn alarm(name: &str, value: Option<f64>) -> Trigger {
    Trigger::Alarm(AlarmStatus {
        name: name.into(),
        state: AlarmState::Alarm,
        state_since: ago(5),
        value,
        data_at: None,
    })
}

fn activity(from: u32, to: u32, ended_ago: i64) -> Activity {
    Activity {
        start: ago(ended_ago + 60),
        end: Some(ago(ended_ago)),
        from,
        to,
        cause: "earlier".into(),
    }
}

struct Case {
    name: &'static str,
    observed: Observation,
    activities: Vec<Activity>,
    trigger: Trigger,
    action: Action,
    /// Fragments the reason or the rules must contain; each is followed by
    /// its code in brackets (`"already at 10 [clamped]"`, issue 19).
    explains: &'static [&'static str],
}

fn check(policy: &GroupPolicy, cases: Vec<Case>) {
    for case in cases {
        let decision: Decision = decide(
            policy,
            &case.observed,
            &MetricHistory::default(),
            &case.activities,
            &case.trigger,
            now(),
        )
        .expect("decide");
        assert_eq!(decision.action, case.action, "{}: {decision:#?}", case.name);
        let text = support::with_codes(&decision);
        for fragment in case.explains {
            assert!(text.contains(fragment), "{}: {fragment:?} not in {text:?}", case.name);
        }
        assert_eq!(decision.from, case.observed.desired, "{}", case.name);
        assert_eq!(
            decision.cause.is_some(),
            matches!(decision.action, Action::SetDesired(_)),
            "{}",
            case.name
        );
    }
}

#[test]
fn step_scaling_cases() {
    let high = |v| alarm("web-cpu-high", Some(v));
    let low = |v| alarm("web-cpu-low", Some(v));
    let cases = vec![
        Case {
            name: "lower step: +2 for 70 <= CPU < 90",
            observed: group(2, 0, 0),
            activities: vec![],
            trigger: high(85.0),
            action: Action::SetDesired(4),
            explains: &[
                "step +2 (CPUUtilization 85 > 70, step range 70..90) [step]",
                "2 -> 4 [step]",
            ],
        },
        Case {
            name: "lower bound inclusive above the threshold: CPU 90 is the +3 step",
            observed: group(2, 0, 0),
            activities: vec![],
            trigger: high(90.0),
            action: Action::SetDesired(5),
            explains: &["step +3", ">= 90"],
        },
        Case {
            name: "upper bound exclusive: CPU 89.9 is still the +2 step",
            observed: group(2, 0, 0),
            activities: vec![],
            trigger: high(89.9),
            action: Action::SetDesired(4),
            explains: &["step +2"],
        },
        Case {
            name: "clamped to max",
            observed: group(9, 0, 0),
            activities: vec![],
            trigger: high(95.0),
            action: Action::SetDesired(10),
            explains: &["clamped to max 10 [clamped]"],
        },
        Case {
            name: "already at max: hold",
            observed: group(10, 0, 0),
            activities: vec![],
            trigger: high(95.0),
            action: Action::Hold,
            explains: &["already at 10 [clamped]", "clamped to max 10 [clamped]"],
        },
        Case {
            name: "scale in by one",
            observed: group(5, 0, 0),
            activities: vec![],
            trigger: low(20.0),
            action: Action::SetDesired(4),
            explains: &["simple -1", "5 -> 4"],
        },
        Case {
            name: "upper bound inclusive below the threshold: CPU 30 does not breach < 30 but sits in (-inf, 0]",
            observed: group(5, 0, 0),
            activities: vec![],
            trigger: alarm("web-cpu-low-step", Some(30.0)),
            action: Action::SetDesired(4),
            explains: &["step -1", "step range <= 30"],
        },
        Case {
            name: "scale in stops at min",
            observed: group(2, 0, 0),
            activities: vec![],
            trigger: low(10.0),
            action: Action::Hold,
            explains: &["already at 2", "clamped to min 2"],
        },
        Case {
            // PutScalingPolicy: Cooldown is "valid only if the policy type is
            // SimpleScaling"; "Scaling cooldowns": target tracking and step
            // policies "can initiate a scale-out activity immediately without
            // waiting for the cooldown period to end".
            name: "step scaling has no cooldown: a scale-out 30 s after the last one",
            observed: group(4, 2, 190),
            activities: vec![activity(2, 4, 30)],
            trigger: high(85.0),
            action: Action::SetDesired(6),
            explains: &["4 -> 6"],
        },
        Case {
            name: "step scaling has no cooldown: a scale-in right after a scale-in",
            observed: group(6, 0, 0),
            activities: vec![activity(7, 6, 10)],
            trigger: alarm("web-cpu-low-step", Some(20.0)),
            action: Action::SetDesired(5),
            explains: &["step -1", "6 -> 5"],
        },
        Case {
            // "Scaling cooldowns", considerations: "while a scale-out activity
            // is in progress, all target tracking and step scaling scale-in
            // activities are blocked until the instances finish warming up".
            name: "step scaling: no scale-in while instances warm up",
            observed: group(6, 2, 60),
            activities: vec![],
            trigger: alarm("web-cpu-low-step", Some(20.0)),
            action: Action::Hold,
            explains: &["no scale-in while 2 instance(s) warm up [warm_up]"],
        },
        Case {
            name: "warming instances are not counted: a repeated breach in the same step adds nothing",
            observed: group(4, 2, 60),
            activities: vec![],
            trigger: high(85.0),
            action: Action::Hold,
            explains: &[
                "2 warming instance(s) not counted: base 2 [warm_up]",
                "already at 4 [already_there]",
            ],
        },
        Case {
            name: "warming instances are not counted: a higher step adds the difference",
            observed: group(4, 2, 60),
            activities: vec![],
            trigger: high(95.0),
            action: Action::SetDesired(5),
            explains: &["base 2", "4 -> 5"],
        },
        Case {
            name: "warmed-up instances count again",
            observed: group(4, 2, 121),
            activities: vec![],
            trigger: high(85.0),
            action: Action::SetDesired(6),
            explains: &["4 -> 6"],
        },
        Case {
            name: "a duplicated or late event is not acted on twice",
            observed: group(4, 0, 0),
            activities: vec![Activity {
                start: ago(3),
                end: None,
                from: 2,
                to: 4,
                cause: alarm_cause("web-cpu-high", ago(5)),
            }],
            trigger: high(85.0),
            action: Action::Hold,
            explains: &["already handled: this breach set 2 -> 4", "[already_handled]"],
        },
        Case {
            name: "an alarm back in OK does nothing",
            observed: group(4, 0, 0),
            activities: vec![],
            trigger: Trigger::Alarm(AlarmStatus {
                name: "web-cpu-low".into(),
                state: AlarmState::Ok,
                state_since: ago(1),
                value: Some(41.0),
                data_at: None,
            }),
            action: Action::Hold,
            explains: &["is Ok: alarm policies act only in ALARM [not_in_alarm]"],
        },
        Case {
            name: "another group's alarm is not ours",
            observed: group(4, 0, 0),
            activities: vec![],
            trigger: alarm("session-cpu-high", Some(90.0)),
            action: Action::Hold,
            explains: &["no policy of group web uses alarm session-cpu-high [not_ours]"],
        },
        Case {
            name: "no datapoint, no step",
            observed: group(4, 0, 0),
            activities: vec![],
            trigger: alarm("web-cpu-high", None),
            action: Action::Hold,
            explains: &["carries no datapoint to pick a step from [no_data]"],
        },
    ];
    check(&with_step_scale_in(web()), cases);
}

/// `web` plus `web-cpu-low-step`: the shipped simple scale-in policy written
/// as a step policy (same alarm, one step, no cooldown).
fn with_step_scale_in(mut group: GroupPolicy) -> GroupPolicy {
    let mut step = group.alarm_policy("web-cpu-low").expect("web-cpu-low").clone();
    step.alarm = "web-cpu-low-step".into();
    step.steps = step.adjustments().into_owned();
    step.policy_type = Some(PolicyType::Step);
    step.change = None;
    step.cooldown = None;
    group.alarm_policies.push(step);
    group
}

/// Simple scaling as EC2 Auto Scaling documents it ("Scaling cooldowns",
/// "Step and simple scaling policies"): one change; the policy waits for the
/// activity in progress to finish, then for the cooldown that activity
/// started (the causing policy's own, else the group's default), whichever
/// way either went; warm-up plays no part.
#[test]
fn simple_scaling_cases() {
    let session = support::two_tier_group("session");
    let high = |v| alarm("session-cpu-high", Some(v));
    let low = |v| alarm("web-cpu-low", Some(v));
    let running = Activity {
        start: ago(10),
        end: None,
        from: 5,
        to: 6,
        cause: "earlier".into(),
    };
    let by_low = |ended_ago: i64| Activity {
        cause: alarm_cause("web-cpu-low", ago(ended_ago + 1000)),
        ..activity(7, 6, ended_ago)
    };
    let session_cases = vec![
        Case {
            name: "one change whatever the breach size",
            observed: group(4, 0, 0),
            activities: vec![],
            trigger: high(99.0),
            action: Action::SetDesired(5),
            explains: &["simple +1 (CPUUtilization 99 > 70)", "4 -> 5"],
        },
        Case {
            name: "warming instances count: no warm-up rule",
            observed: group(4, 2, 60),
            activities: vec![],
            trigger: high(90.0),
            action: Action::SetDesired(5),
            explains: &["4 -> 5"],
        },
        Case {
            name: "a scale-in's cooldown holds a scale-out too (the group's default 300 s)",
            observed: group(4, 0, 0),
            activities: vec![activity(5, 4, 100)],
            trigger: high(90.0),
            action: Action::Hold,
            explains: &["held: cooldown until 2026-11-20T11:08:20Z (simple scaling) [cooldown]"],
        },
        Case {
            name: "after the cooldown",
            observed: group(4, 0, 0),
            activities: vec![activity(5, 4, 301)],
            trigger: high(90.0),
            action: Action::SetDesired(5),
            explains: &["4 -> 5"],
        },
    ];
    check(&session, session_cases);
    let web_cases = vec![
        Case {
            name: "waits for the scaling activity in progress to finish",
            observed: group(6, 0, 0),
            activities: vec![running],
            trigger: low(20.0),
            action: Action::Hold,
            explains: &[
                "simple scaling waits for the activity 5 -> 6 started 2026-11-20T11:04:50Z to finish [in_progress]",
            ],
        },
        Case {
            name: "an activity of another cause starts the group's default cooldown (300 s)",
            observed: group(6, 0, 0),
            activities: vec![activity(4, 6, 200)],
            trigger: low(20.0),
            action: Action::Hold,
            explains: &["held: cooldown until 2026-11-20T11:06:40Z (simple scaling)"],
        },
        Case {
            name: "an activity of this policy starts its own cooldown (600 s)",
            observed: group(6, 0, 0),
            activities: vec![by_low(400)],
            trigger: low(20.0),
            action: Action::Hold,
            explains: &["held: cooldown until 2026-11-20T11:08:20Z (simple scaling) [cooldown]"],
        },
        Case {
            name: "after its own cooldown",
            observed: group(6, 0, 0),
            activities: vec![by_low(601)],
            trigger: low(20.0),
            action: Action::SetDesired(5),
            explains: &["simple -1 (CPUUtilization 20 < 30)", "6 -> 5"],
        },
        Case {
            name: "a scale-in is not held by warming instances",
            observed: group(6, 2, 60),
            activities: vec![],
            trigger: low(20.0),
            action: Action::SetDesired(5),
            explains: &["6 -> 5"],
        },
    ];
    check(&web(), web_cases);
}

/// A step policy's own `instance_warmup` (EstimatedInstanceWarmup) replaces the group's.
#[test]
fn a_step_policys_own_warmup_replaces_the_groups() {
    let mut web = web();
    let high = web
        .alarm_policies
        .iter_mut()
        .find(|p| p.alarm == "web-cpu-high")
        .expect("web-cpu-high");
    high.instance_warmup = Some(std::time::Duration::from_secs(300));
    let decision = decide(
        &web,
        &group(4, 2, 200),
        &MetricHistory::default(),
        &[],
        &alarm("web-cpu-high", Some(85.0)),
        now(),
    )
    .expect("decide");
    assert_eq!(decision.action, Action::Hold, "{decision:#?}");
    assert!(
        decision
            .rules
            .iter()
            .any(|r| r.code == Code::WarmUp && r.text.contains("2 warming instance(s) not counted"))
    );
}

#[test]
fn scale_in_never_counts_on_protected_instances() {
    let mut observed = group(5, 0, 0);
    for instance in observed.instances.iter_mut().take(4) {
        instance.protected = true;
    }
    let low = alarm("web-cpu-low", Some(10.0));
    let decision = decide(&web(), &observed, &MetricHistory::default(), &[], &low, now()).expect("decide");
    assert_eq!(decision.action, Action::SetDesired(4));
    assert!(
        decision.rules.iter().any(|r| r.code == Code::Protected
            && r.text == "4 protected instance(s) kept; 1 of the 1 unprotected will be terminated"),
        "{decision:#?}"
    );
    observed.instances[4].protected = true;
    let decision = decide(&web(), &observed, &MetricHistory::default(), &[], &low, now()).expect("decide");
    // Desired still drops; no instance goes until its protection is removed.
    assert_eq!(decision.action, Action::SetDesired(4));
    assert!(
        decision
            .rules
            .iter()
            .any(|r| r.code == Code::Protected && r.text.contains("only 0 of 1 instance(s) to remove are unprotected")),
        "{decision:#?}"
    );
}

#[test]
fn percent_change_rounding_and_minimum_magnitude() {
    let qps = |v| alarm("web-qps-high", Some(v));
    let cases = vec![
        Case {
            name: "50% of 4 = +2",
            observed: group(4, 0, 0),
            activities: vec![],
            trigger: qps(7000.0),
            action: Action::SetDesired(6),
            explains: &["50% of 4 = 2.00, rounded to +2"],
        },
        Case {
            name: "50% of 7 = 3.5 rounds down to +3",
            observed: group(7, 0, 0),
            activities: vec![],
            trigger: qps(7000.0),
            action: Action::SetDesired(10),
            explains: &["rounded to +3"],
        },
        Case {
            name: "50% of 2 = +1, raised to the minimum magnitude 2",
            observed: group(2, 0, 0),
            activities: vec![],
            trigger: qps(7000.0),
            action: Action::SetDesired(4),
            explains: &["rounded to +1", "minimum adjustment magnitude +2"],
        },
    ];
    check(&web(), cases);
}

/// AWS's rounding of PercentChangeInCapacity, on a group of 10 without a
/// minimum magnitude: above 1 round down, 0..1 -> 1, -1..0 -> -1, below -1 round toward 0.
#[test]
fn percent_rounding_table() {
    for (percent, expected) in [(15, 11), (5, 11), (-5, 9), (-15, 9), (-67, 4), (100, 20), (-100, 0)] {
        let policy = Policy::parse(
            "t.toml",
            &format!(
                r#"
[[group]]
name = "g"
min = 0
max = 20
[[group.alarm_policy]]
type = "step"
alarm = "a"
metric = {{ namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = {{ AutoScalingGroupName = "g" }} }}
comparison = "{}"
threshold = 50
period = "60s"
evaluation_periods = 1
adjustment = "percent_change_in_capacity"
steps = [{}]
# min = 0 needs a way back from zero instances (validation refuses it otherwise).
[[group.alarm_policy]]
type = "step"
alarm = "from-zero"
metric = {{ namespace = "AWS/ApplicationELB", name = "HTTPCode_ELB_503_Count", stat = "Sum", dimensions = {{ LoadBalancer = "g" }} }}
comparison = ">"
threshold = 0
period = "60s"
evaluation_periods = 1
adjustment = "change_in_capacity"
steps = [{{ lower = 0, change = 1 }}]
"#,
                if percent > 0 { ">" } else { "<" },
                if percent > 0 {
                    format!("{{ lower = 0, change = {percent} }}")
                } else {
                    format!("{{ upper = 0, change = {percent} }}")
                }
            ),
        )
        .expect("policy");
        let group = &policy.groups[0];
        let observed = Observation {
            min: 0,
            max: 20,
            desired: 10,
            instances: vec![],
        };
        let value = if percent > 0 { 60.0 } else { 40.0 };
        let decision = decide(
            group,
            &observed,
            &MetricHistory::default(),
            &[],
            &alarm("a", Some(value)),
            now(),
        )
        .expect("decide");
        assert_eq!(
            decision.action,
            Action::SetDesired(expected),
            "{percent}%: {decision:#?}"
        );
    }
}

#[test]
fn decisions_serialise_for_logs_and_scalectl() {
    let decision = decide(
        &web(),
        &group(2, 0, 0),
        &MetricHistory::default(),
        &[],
        &alarm("web-cpu-high", Some(91.5)),
        now(),
    )
    .expect("decide");
    let json = serde_json::to_value(&decision).expect("json");
    assert_eq!(json["action"], serde_json::json!({ "set_desired": 5 }));
    assert_eq!(json["from"], 2);
    assert_eq!(json["cause"], "alarm web-cpu-high at 2026-11-20T11:04:55Z");
    // Issue 19: the code beside the sentence, for the decision and each rule.
    assert_eq!(json["code"], "step");
    assert_eq!(
        json["rules"][0],
        serde_json::json!({"code": "step", "text": "step +3 (CPUUtilization 91.5 > 70, step range >= 90)"})
    );
    let back: Decision = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, decision);
}

/// Issue 25.6: the core's arithmetic saturates. Validation refuses a change
/// beyond the group bound, but decide() must not overflow on one either
/// (it wrapped, and "+i64::MAX" became "already at 2").
#[test]
fn an_extreme_step_change_saturates_to_the_limit_instead_of_wrapping() {
    for (change, expected) in [(i64::MAX, 10), (i64::MIN, 2)] {
        let mut policy = web();
        let alarm_name = policy.alarm_policies[0].alarm.clone();
        for step in &mut policy.alarm_policies[0].steps {
            step.change = change;
        }
        let value = policy.alarm_policies[0].threshold + 1e6;
        let low = Observation {
            desired: if change > 0 { 2 } else { 10 },
            ..group(2, 0, 0)
        };
        let decision = decide(
            &policy,
            &low,
            &MetricHistory::default(),
            &[],
            &alarm(&alarm_name, Some(value)),
            now(),
        )
        .expect("decide");
        let expected_action = if change > 0 {
            Action::SetDesired(expected)
        } else {
            Action::SetDesired(2)
        };
        assert_eq!(decision.action, expected_action, "{change}: {decision:?}");
    }
}

/// A group above its max (or below its min) goes to the limit at once,
/// whatever the trigger and even with no datapoints (Kubernetes HPA
/// `reconcileAutoscaler`: "Current number of replicas above
/// Spec.MaxReplicas"; issue 18: it held with "no recent datapoints").
#[test]
fn a_group_outside_its_limits_goes_to_the_limit_at_once_without_any_metric() {
    for (desired, expected, words) in [
        (14, 10, "desired 14 is above max 10: set to 10"),
        (1, 2, "desired 1 is below min 2: set to 2"),
    ] {
        let observed = Observation {
            desired,
            ..group(4, 0, 0)
        };
        for trigger in [
            Trigger::Tick {
                at: now(),
                alarms: vec![],
            },
            alarm("web-cpu-high", None),
            alarm("some-other-alarm", Some(1.0)),
        ] {
            let decision = decide(&web(), &observed, &MetricHistory::default(), &[], &trigger, now()).expect("decide");
            assert_eq!(
                decision.action,
                Action::SetDesired(expected),
                "{trigger:?}: {decision:?}"
            );
            assert_eq!(decision.reason, words);
        }
    }
}

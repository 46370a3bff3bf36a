//! Target tracking (the HPA's arithmetic, stateless) and the tick that
//! combines it with alarms still in ALARM: named cases.

mod support;

use std::collections::BTreeMap;

use functions::decide::{
    Action, Activity, AlarmState, AlarmStatus, Datapoint, Instance, Lifecycle, MetricHistory, Observation, Trigger,
    decide,
};
use functions::policy::{GroupPolicy, Policy};
use jiff::{SignedDuration, Timestamp};

const TRACKING: &str = r#"
[[group]]
name = "web"
min = 1
max = 10
instance_warmup = "60s"

[[group.target_tracking]]
metric = "cpu"
target = 50
scale_out = { stabilization = "0s", policies = [{ percent = 100, period = "60s" }, { instances = 2, period = "60s" }], select = "max" }
scale_in = { stabilization = "300s", policies = [{ percent = 50, period = "60s" }] }
"#;

fn group(text: &str) -> GroupPolicy {
    Policy::parse("t.toml", text).expect("policy").groups[0].clone()
}

fn two_tier_web() -> GroupPolicy {
    support::two_tier_group("web")
}

/// `web` with its `web-cpu-high` written as a simple policy: +2, then the group's 300 s cooldown.
fn with_simple_high(mut web: GroupPolicy) -> GroupPolicy {
    let high = web
        .alarm_policies
        .iter_mut()
        .find(|p| p.alarm == "web-cpu-high")
        .expect("web-cpu-high");
    high.policy_type = Some(functions::policy::PolicyType::Simple);
    high.change = Some(2);
    high.steps.clear();
    web
}

fn now() -> Timestamp {
    "2026-11-20T11:07:00Z".parse().expect("now")
}

fn ago(seconds: i64) -> Timestamp {
    now() - SignedDuration::from_secs(seconds)
}

/// A group and the CPU history of its instances: `ready` values (None: no
/// datapoint) for instances in service for an hour, plus `warming` new ones.
struct Setup {
    observed: Observation,
    metrics: MetricHistory,
}

fn setup(desired: u32, ready: &[Option<f64>], warming: usize) -> Setup {
    let mut instances = Vec::new();
    let mut cpu = BTreeMap::new();
    for (i, value) in ready.iter().enumerate() {
        let id = format!("i-r{i}");
        if let Some(value) = value {
            cpu.insert(
                id.clone(),
                vec![Datapoint {
                    at: ago(30),
                    value: *value,
                }],
            );
        }
        instances.push(Instance {
            id,
            lifecycle: Lifecycle::InService,
            launched_at: ago(3600),
            protected: false,
        });
    }
    for i in 0..warming {
        instances.push(Instance {
            id: format!("i-w{i}"),
            lifecycle: Lifecycle::InService,
            launched_at: ago(20),
            protected: false,
        });
    }
    Setup {
        observed: Observation {
            min: 1,
            max: 10,
            desired,
            instances,
        },
        // Nothing shed: cpu_demand (what the shipped two-tier web tracks) is the CPU.
        metrics: MetricHistory {
            metrics: BTreeMap::from([("cpu_demand".to_string(), cpu.clone()), ("cpu".to_string(), cpu)]),
            ..Default::default()
        },
    }
}

impl Setup {
    /// Moves every datapoint to `age` seconds ago.
    fn aged(mut self, age: i64) -> Self {
        for point in self.metrics.metrics.values_mut().flat_map(|m| m.values_mut()).flatten() {
            point.at = ago(age);
        }
        self
    }

    /// Adds an older datapoint `age` seconds ago with `value` for every ready instance.
    fn with_past(mut self, age: i64, value: f64) -> Self {
        for series in self.metrics.metrics.values_mut() {
            for points in series.values_mut() {
                points.insert(0, Datapoint { at: ago(age), value });
            }
        }
        self
    }
}

fn tick(alarms: Vec<AlarmStatus>) -> Trigger {
    Trigger::Tick { at: now(), alarms }
}

fn in_alarm(name: &str, value: f64) -> AlarmStatus {
    AlarmStatus {
        name: name.into(),
        state: AlarmState::Alarm,
        state_since: ago(600),
        value: Some(value),
        data_at: None,
    }
}

fn scale_up(from: u32, to: u32, seconds_ago: i64) -> Activity {
    Activity {
        start: ago(seconds_ago),
        end: Some(ago(seconds_ago - 5)),
        from,
        to,
        cause: "earlier".into(),
    }
}

struct Case {
    name: &'static str,
    group: GroupPolicy,
    setup: Setup,
    activities: Vec<Activity>,
    trigger: Trigger,
    action: Action,
    explains: &'static [&'static str],
}

#[test]
fn target_tracking_cases() {
    let tracking = group(TRACKING);
    let cases = vec![
        Case {
            name: "within the 10% tolerance: stay",
            group: tracking.clone(),
            setup: setup(2, &[Some(52.0), Some(53.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["cpu mean 52.5 vs target 50 -> 2", "stay at 2"],
        },
        // Kubernetes KEP-4951 (the HPA's Tolerances.isWithin: 1 - down <=
        // ratio <= 1 + up), each direction its own tolerance.
        // EventBridge delivers a scheduled event at least once: a tick the
        // function already acted on (its activity's cause names the tick)
        // is not acted on again; another metric's tick is another tick.
        Case {
            name: "a redelivered tick that already acted holds",
            group: tracking.clone(),
            setup: setup(2, &[Some(90.0), Some(90.0)], 0),
            activities: vec![Activity {
                start: now(),
                end: None,
                from: 2,
                to: 4,
                cause: "target tracking cpu tick at 2026-11-20T11:07:00Z".into(),
            }],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["already handled: this tick set 2 -> 4", "[already_handled]"],
        },
        Case {
            name: "another metric's tick (cpu_demand: cpu's key and more) or the minute before is not this tick",
            group: tracking.clone(),
            setup: setup(2, &[Some(90.0), Some(90.0)], 0),
            activities: [
                "cpu_demand tick at 2026-11-20T11:07:00Z",
                "cpu tick at 2026-11-20T11:06:00Z",
            ]
            .into_iter()
            .map(|tick| Activity {
                start: now(),
                end: None,
                from: 2,
                to: 2,
                cause: format!("target tracking {tick}"),
            })
            .collect(),
            trigger: tick(vec![]),
            action: Action::SetDesired(4),
            explains: &["cpu mean 90.0 vs target 50 -> 4"],
        },
        Case {
            name: "per-direction tolerance: 5% up scales out at 53/50 where the policy's 10% would stay",
            group: group(&TRACKING.replace("select = \"max\" }", "select = \"max\", tolerance = 0.05 }")),
            setup: setup(2, &[Some(53.0), Some(53.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(3),
            explains: &["-> 3 instance(s)"],
        },
        Case {
            name: "per-direction tolerance: 30% down stays at 36/50 where the policy's 10% would scale in",
            group: group(&TRACKING.replace(
                "policies = [{ percent = 50, period = \"60s\" }] }",
                "policies = [{ percent = 50, period = \"60s\" }], tolerance = 0.3 }",
            )),
            setup: setup(4, &[Some(36.0), Some(36.0), Some(36.0), Some(36.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["stay at 4"],
        },
        Case {
            name: "the same without it: the policy's 10% scales in at 36/50",
            group: tracking.clone(),
            setup: setup(4, &[Some(36.0), Some(36.0), Some(36.0), Some(36.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(3),
            explains: &["4 -> 3"],
        },
        Case {
            name: "scale out: ceil(2 x 90/50) = 4",
            group: tracking.clone(),
            setup: setup(2, &[Some(90.0), Some(90.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(4),
            explains: &["-> 4 instance(s)", "2 -> 4"],
        },
        Case {
            name: "scale out limited by 100%/60s or +2/60s, the larger",
            group: tracking.clone(),
            setup: setup(3, &[Some(100.0), Some(100.0), Some(100.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(6),
            explains: &["-> 6 instance(s)", "3 -> 6"],
        },
        Case {
            name: "the rate policies cut a large jump: 3 -> 15 wanted, 100% per 60s allows 6",
            group: group(&TRACKING.replace("target = 50", "target = 20")),
            setup: setup(3, &[Some(100.0), Some(100.0), Some(100.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(6),
            explains: &[
                "-> 15 instance(s) [target_tracking]",
                "limited by scale-out rate policies to 6 [rate_limited]",
                "3 -> 6 [target_tracking]",
            ],
        },
        Case {
            name: "select = min takes the smaller allowance: +2 per 60s",
            group: group(
                &TRACKING
                    .replace("target = 50", "target = 20")
                    .replace("select = \"max\"", "select = \"min\""),
            ),
            setup: setup(3, &[Some(100.0), Some(100.0), Some(100.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(5),
            explains: &["limited by scale-out rate policies to 5"],
        },
        Case {
            name: "a scale-out already made within the period counts against the limit",
            group: group(&TRACKING.replace("target = 50", "target = 20")),
            setup: setup(4, &[Some(100.0), Some(100.0)], 0),
            activities: vec![scale_up(2, 4, 30)],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["limited by scale-out rate policies to 4"],
        },
        Case {
            name: "warming instances count as 0 on a scale-out",
            group: tracking.clone(),
            setup: setup(4, &[Some(90.0), Some(90.0)], 2),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["stay at 4"],
        },
        Case {
            name: "a silent instance counts as 100% of target on a scale-in",
            group: tracking.clone(),
            setup: setup(4, &[Some(10.0), Some(10.0), Some(10.0), None], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(2),
            explains: &["-> 2 instance(s)"],
        },
        Case {
            name: "scale in limited to 50% per 60s",
            group: tracking.clone(),
            setup: setup(4, &[Some(10.0), Some(10.0), Some(10.0), Some(10.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(2),
            explains: &["-> 1 instance(s)", "limited by scale-in rate policies to 2"],
        },
        Case {
            name: "scale-in stabilisation keeps the highest recommendation of the window",
            group: tracking.clone(),
            setup: setup(4, &[Some(10.0), Some(10.0), Some(10.0), Some(10.0)], 0).with_past(200, 45.0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &[
                "scale-in stabilised to 4: the highest recommendation of the last 5m [stabilised]",
                "stay at 4 [stabilised]",
            ],
        },
        Case {
            name: "outside the window the old recommendation no longer counts",
            group: tracking.clone(),
            setup: setup(4, &[Some(10.0), Some(10.0), Some(10.0), Some(10.0)], 0).with_past(400, 45.0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(2),
            explains: &["4 -> 2"],
        },
        Case {
            name: "no datapoints: hold, never scale in on no data",
            group: tracking.clone(),
            setup: setup(4, &[None, None], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["no recent datapoints [no_data]"],
        },
        Case {
            name: "scale-in disabled",
            group: group(&TRACKING.replace("target = 50", "target = 50\ndisable_scale_in = true")),
            setup: setup(4, &[Some(10.0), Some(10.0), Some(10.0), Some(10.0)], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["scale-in disabled [scale_in_disabled]", "stay at 4 [scale_in_disabled]"],
        },
        Case {
            name: "clamped to max",
            group: tracking.clone(),
            setup: setup(9, &[Some(100.0); 9], 0),
            activities: vec![],
            trigger: tick(vec![]),
            action: Action::SetDesired(10),
            explains: &["clamped to max 10 [clamped]", "9 -> 10 [target_tracking]"],
        },
        Case {
            name: "a duplicated tick is not acted on twice",
            group: tracking.clone(),
            setup: setup(4, &[Some(90.0), Some(90.0), Some(90.0), Some(90.0)], 0),
            activities: vec![Activity {
                start: ago(1),
                end: None,
                from: 2,
                to: 4,
                cause: format!("target tracking cpu tick at {}", now()),
            }],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["already handled"],
        },
        // CloudWatch is minutes late (`functions::cloudwatch::INGESTION_DELAY`):
        // the newest datapoint (2.5 min old) is from before the scale-in
        // 8 -> 4 a minute ago, when 8 instances served 20% each. Those 4
        // gone count: ceil(8 x 20 / 50) = 4, stay. Read as if the 4 left
        // had carried that load, it asked for 2 (then out again).
        Case {
            name: "after a scale-in, a datapoint from before it counts the instances gone since",
            group: tracking.clone(),
            setup: setup(4, &[Some(20.0); 4], 0).aged(150),
            activities: vec![scale_in(8, 4, 60)],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &["stay at 4"],
        },
        // The same, 60% each when 4 served: ceil(4 x 60 / 50) = 5 > 3, but
        // the scale-in 4 -> 3 was decided on datapoints like it: wait for a
        // minute of the smaller group instead of undoing it on noise.
        Case {
            name: "no scale-out on a datapoint older than the last scale-in",
            group: tracking.clone(),
            setup: setup(3, &[Some(60.0); 3], 0).aged(150),
            activities: vec![scale_in(4, 3, 60)],
            trigger: tick(vec![]),
            action: Action::Hold,
            explains: &[
                "scale-out held: the newest datapoint",
                "predates the scale-in",
                "[stale_datapoint]",
            ],
        },
        // Once a minute of the smaller group is in, it scales out as usual.
        Case {
            name: "a datapoint after the scale-in scales out as usual",
            group: tracking.clone(),
            setup: setup(3, &[Some(60.0); 3], 0).aged(30),
            activities: vec![scale_in(4, 3, 60)],
            trigger: tick(vec![]),
            action: Action::SetDesired(4),
            explains: &["cpu mean 60.0 vs target 50"],
        },
    ];
    run(cases);
}

fn scale_in(from: u32, to: u32, seconds_ago: i64) -> Activity {
    Activity {
        cause: "earlier scale-in".into(),
        ..scale_up(from, to, seconds_ago)
    }
}

#[test]
fn tick_combines_target_tracking_and_alarms_still_in_alarm() {
    let web = two_tier_web();
    let low_cpu = || setup(4, &[Some(10.0), Some(10.0), Some(10.0), Some(10.0)], 0);
    let cases = vec![
        Case {
            name: "scale out if any proposes it: the alarm's +2 beats tracking's scale-in",
            group: web.clone(),
            setup: low_cpu(),
            activities: vec![],
            trigger: tick(vec![in_alarm("web-cpu-high", 85.0)]),
            action: Action::SetDesired(6),
            explains: &["alarm web-cpu-high: 4 -> 6", "largest of 2 proposals"],
        },
        Case {
            name: "scale in only if all agree: a simple alarm policy holds in its cooldown, so nothing shrinks",
            group: with_simple_high(web.clone()),
            setup: low_cpu(),
            activities: vec![scale_up(2, 4, 100)],
            trigger: tick(vec![in_alarm("web-cpu-high", 85.0)]),
            action: Action::Hold,
            explains: &["held: cooldown until", "scale-in needs all 2 proposals to agree"],
        },
        Case {
            name: "all scale in: the largest proposal wins",
            group: web.clone(),
            setup: low_cpu(),
            activities: vec![],
            trigger: tick(vec![in_alarm("web-cpu-low", 10.0)]),
            action: Action::SetDesired(3),
            explains: &[
                "alarm web-cpu-low: 4 -> 3",
                "all 2 proposals scale in; the largest wins",
            ],
        },
        Case {
            name: "a re-check of a step policy acts again while the alarm stays in ALARM (no cooldown)",
            group: web.clone(),
            setup: setup(4, &[Some(50.0); 4], 0),
            activities: vec![Activity {
                start: ago(900),
                end: Some(ago(880)),
                from: 2,
                to: 4,
                cause: functions::decide::alarm_cause("web-cpu-high", ago(600)),
            }],
            trigger: tick(vec![in_alarm("web-cpu-high", 85.0)]),
            action: Action::SetDesired(6),
            explains: &["4 -> 6"],
        },
        Case {
            name: "alarms of other groups and alarms not in ALARM are not proposals",
            group: web.clone(),
            setup: setup(4, &[Some(50.0); 4], 0),
            activities: vec![],
            trigger: tick(vec![
                in_alarm("session-cpu-high", 95.0),
                AlarmStatus {
                    state: AlarmState::Ok,
                    ..in_alarm("web-cpu-high", 40.0)
                },
            ]),
            action: Action::Hold,
            explains: &["stay at 4"],
        },
    ];
    run(cases);
}

/// `cpu_demand` (issue 22, saturation-aware demand): CPU stops at 100%, so
/// a group that sheds three quarters of its requests reports 100% and
/// `cpu` tracking at 50% can only double it; CPU x RequestCount /
/// (RequestCount - HTTPCode_Target_5XX_Count) reports 400%, and one
/// decision sizes the surge (HPA arithmetic: ceil(2 x 400 / 50) = 16).
#[test]
fn cpu_demand_sizes_a_surge_in_one_decision_where_cpu_can_only_double() {
    let policy = |metric: &str| {
        group(&format!(
            r#"
[[group]]
name = "web"
min = 1
max = 40
[[group.target_tracking]]
metric = "{metric}"
target = 50
scale_out = {{ stabilization = "0s", policies = [{{ percent = 900, period = "60s" }}] }}
"#
        ))
    };
    let mut saturated = setup(2, &[Some(100.0), Some(100.0)], 0);
    saturated.observed.max = 40;
    let minute = |value: f64| vec![Datapoint { at: ago(30), value }];
    let mut metrics = MetricHistory::default();
    let cpu = saturated.metrics.metrics["cpu"].clone();
    let demand = cpu
        .iter()
        .map(|(id, points)| {
            let scaled = functions::tracking::cpu_demand(points, &minute(6000.0), &minute(4500.0));
            (id.clone(), scaled)
        })
        .collect();
    metrics.metrics.insert("cpu".into(), cpu);
    metrics.metrics.insert("cpu_demand".into(), demand);
    let trigger = tick(vec![]);
    let by_cpu = decide(&policy("cpu"), &saturated.observed, &metrics, &[], &trigger, now()).expect("decide");
    let by_demand = decide(
        &policy("cpu_demand"),
        &saturated.observed,
        &metrics,
        &[],
        &trigger,
        now(),
    )
    .expect("decide");
    assert_eq!(by_cpu.action, Action::SetDesired(4), "{by_cpu:#?}");
    assert_eq!(by_demand.action, Action::SetDesired(16), "{by_demand:#?}");
    let text = format!("{} | {}", by_demand.reason, by_demand.explain(" | "));
    assert!(text.contains("cpu_demand"), "{text}");
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let decision = decide(
            &case.group,
            &case.setup.observed,
            &case.setup.metrics,
            &case.activities,
            &case.trigger,
            now(),
        )
        .expect("decide");
        assert_eq!(decision.action, case.action, "{}: {decision:#?}", case.name);
        // Each sentence followed by its code in brackets (issue 19).
        let text = support::with_codes(&decision);
        for fragment in case.explains {
            assert!(text.contains(fragment), "{}: {fragment:?} not in {text:?}", case.name);
        }
        assert_eq!(
            decision.cause.is_some(),
            decision.action != Action::Hold,
            "{}",
            case.name
        );
    }
}

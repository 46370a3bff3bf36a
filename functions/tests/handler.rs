//! The handler end to end over the in-memory cloud: every fixture event,
//! acting, dry-run, idempotency and errors.

mod support;

use functions::decide::{Action, AlarmState, AlarmStatus, Datapoint, Instance, Lifecycle, Observation};
use functions::handler::{Handler, HandlerError, Outcome};
use functions::memory::MemoryCloud;
use functions::ports::{GroupPort, PortErrorKind};
use functions::queue::Message;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn event(name: &str) -> Value {
    serde_json::from_str(&support::event_text(name)).unwrap_or(Value::Null)
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn handler(dry_run: bool) -> Handler<MemoryCloud, MemoryCloud> {
    let policy = support::two_tier();
    let group = MemoryCloud::new(at("2026-11-20T11:05:01Z"));
    let metrics = MemoryCloud::new(at("2026-11-20T11:05:01Z"));
    for (name, max) in [("web", 10), ("session", 6)] {
        let instances = (0..2)
            .map(|i| Instance {
                id: format!("i-{name}{i}"),
                lifecycle: Lifecycle::InService,
                launched_at: at("2026-11-20T09:00:00Z"),
                protected: false,
            })
            .collect();
        group.put_group(
            name,
            Observation {
                min: 2,
                max,
                desired: 2,
                instances,
            },
        );
    }
    Handler {
        policy,
        group,
        metrics,
        dry_run,
    }
}

fn decided(outcome: &Outcome) -> (&str, Action, bool) {
    match outcome {
        Outcome::Decided { group, decision, acted } => (group.as_str(), decision.action, *acted),
        Outcome::Ignored { reason } => panic!("ignored: {reason}"),
    }
}

#[tokio::test]
async fn alarm_event_scales_the_group_once() {
    let handler = handler(false);
    let now = at("2026-11-20T11:05:01Z");
    let outcome = handler
        .handle(&event("alarm-eventbridge-cpu-high.json"), now)
        .await
        .expect("handled");
    assert_eq!(decided(&outcome), ("web", Action::SetDesired(5), true));
    assert_eq!(handler.group.group("web").expect("web").desired, 5);
    // The same event delivered again (EventBridge is at-least-once): no second scale-out.
    let again = handler
        .handle(
            &event("alarm-eventbridge-cpu-high.json"),
            now + SignedDuration::from_secs(2),
        )
        .await
        .expect("handled");
    assert_eq!(decided(&again), ("web", Action::Hold, false));
    let activities = handler
        .group
        .activities("web", at("2026-11-20T00:00:00Z"))
        .await
        .expect("activities");
    assert_eq!(activities.len(), 1);
    assert_eq!(activities[0].cause, "alarm web-cpu-high at 2026-11-20T11:05:00.218Z");
}

#[tokio::test]
async fn dry_run_decides_without_acting() {
    let handler = handler(true);
    let outcome = handler
        .handle(&event("alarm-eventbridge-cpu-high.json"), at("2026-11-20T11:05:01Z"))
        .await
        .expect("handled");
    assert_eq!(decided(&outcome), ("web", Action::SetDesired(5), false));
    assert_eq!(handler.group.group("web").expect("web").desired, 2);
}

#[tokio::test]
async fn sns_alarm_without_datapoint_reads_the_metric() {
    let handler = handler(false);
    let policy = handler
        .policy
        .group("session")
        .expect("session")
        .alarm_policy("session-cpu-high")
        .expect("policy")
        .clone();
    handler.metrics.push_series(
        &policy.metric,
        Datapoint {
            at: at("2026-11-20T11:05:00Z"),
            value: 88.0,
        },
    );
    let outcome = handler
        .handle(&event("alarm-sns-session-cpu-high.json"), at("2026-11-20T11:06:01Z"))
        .await
        .expect("handled");
    assert_eq!(decided(&outcome), ("session", Action::SetDesired(3), true));
}

#[tokio::test]
async fn schedule_sets_limits_and_tick_reads_alarms_and_metrics() {
    let handler = handler(false);
    handler.group.set_now(at("2026-11-20T03:00:01Z"));
    let outcome = handler
        .handle(&event("schedule-lunch-scale-out.json"), at("2026-11-20T03:00:01Z"))
        .await
        .expect("handled");
    assert_eq!(
        decided(&outcome),
        (
            "web",
            Action::SetLimits {
                min: 4,
                max: 10,
                desired: 4
            },
            true
        )
    );
    let web = handler.group.group("web").expect("web");
    assert_eq!((web.min, web.desired, web.instances.len()), (4, 4, 4));

    // Tick: two old instances busy at 90%, the two the schedule launched
    // still pending (no data); the alarm is still in ALARM, and the
    // schedule's scale-out is long out of its cooldown.
    let tick_at = at("2026-11-20T11:07:00Z");
    for id in ["i-web0", "i-web1"] {
        handler.metrics.push_tracked(
            "cpu",
            id,
            Datapoint {
                at: tick_at - SignedDuration::from_secs(30),
                value: 90.0,
            },
        );
    }
    handler.metrics.put_alarm(AlarmStatus {
        name: "web-cpu-high".into(),
        state: AlarmState::Alarm,
        state_since: at("2026-11-20T11:05:00Z"),
        value: Some(90.0),
        data_at: None,
    });
    let outcome = handler
        .handle(&event("schedule-tick-target-tracking.json"), tick_at)
        .await
        .expect("handled");
    let (group, action, _) = decided(&outcome);
    assert_eq!(group, "web");
    // Tracking holds (the warming pair counts as 0: mean 45 is within 10% of 50);
    // the alarm re-check adds its step to the base without the warming pair: 2 + 3 = 5.
    assert_eq!(action, Action::SetDesired(5), "{outcome:#?}");
}

#[tokio::test]
async fn unrelated_and_malformed_events() {
    let handler = handler(false);
    let outcome = handler
        .handle(&event("malformed/unrelated-event.json"), at("2026-11-20T11:05:01Z"))
        .await
        .expect("ignored");
    assert!(matches!(outcome, Outcome::Ignored { .. }));
    for name in [
        "not-an-object.json",
        "truncated.json",
        "unknown-state.json",
        "wrong-types.json",
    ] {
        let error = handler
            .handle(&event(&format!("malformed/{name}")), at("2026-11-20T11:05:01Z"))
            .await
            .expect_err(name);
        assert!(matches!(error, HandlerError::Event(_)), "{name}: {error:?}");
        assert!(!error.retryable(), "{name}");
        assert!(error.to_string().contains("a retry cannot help"), "{name}: {error}");
    }
}

#[tokio::test]
async fn a_missing_group_is_a_port_error_naming_the_call() {
    let handler = handler(false);
    let policy = handler.policy.clone();
    let empty = Handler {
        policy,
        group: MemoryCloud::new(at("2026-11-20T11:05:01Z")),
        metrics: MemoryCloud::new(at("2026-11-20T11:05:01Z")),
        dry_run: false,
    };
    let error = empty
        .handle(&event("alarm-eventbridge-cpu-high.json"), at("2026-11-20T11:05:01Z"))
        .await
        .expect_err("no group");
    match &error {
        HandlerError::Port(port) => {
            assert_eq!(port.kind, PortErrorKind::NotFound);
            assert_eq!(
                port.to_string(),
                "DescribeAutoScalingGroups web failed: no group named web"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.retryable());
}

/// A batch from the trigger queue is decided message by message, each on
/// the capacity the one before left (one decision at a time per group);
/// a trigger that came in another group's message group is not acted on.
#[tokio::test]
async fn a_batch_is_decided_in_order_each_on_what_the_one_before_left() {
    let handler = handler(false);
    let message = |id: &str, group: &str, name: &str| Message {
        id: id.into(),
        group: Some(group.into()),
        body: support::event_text(name),
        receive_count: 1,
    };
    let batch = [
        message("m1", "web", "alarm-eventbridge-cpu-high.json"),
        message("m2", "session", "schedule-lunch-scale-out.json"),
        message("m3", "web", "schedule-lunch-scale-out.json"),
    ];
    let done = handler.handle_batch(&batch, || at("2026-11-20T11:05:01Z")).await;
    let outcome = |i: usize| {
        done.handled[i]
            .outcome
            .clone()
            .unwrap_or_else(|| panic!("{:#?}", done.handled))
    };
    assert_eq!(outcome(0)["outcome"], "decided");
    assert_eq!(outcome(0)["decision"]["action"]["set_desired"], 5);
    // The lunch schedule is web's: in session's message group it is not acted on.
    assert_eq!(outcome(1)["outcome"], "ignored");
    assert!(
        outcome(1)["reason"]
            .as_str()
            .unwrap_or("")
            .contains("came in message group session")
    );
    // In web's, it decides from the alarm's 5.
    assert_eq!(outcome(2)["outcome"], "decided", "{:#}", outcome(2));
    assert_eq!(outcome(2)["decision"]["from"], 5, "{:#}", outcome(2));
    assert!(done.handled.iter().all(|h| !h.returned));
    assert_eq!(done.response()["batchItemFailures"], serde_json::json!([]));
}

/// Issue 18: an ALARM event delivered 40 minutes late, after the alarm left
/// that state (or entered it again), scaled a second time: on AWS only the
/// last decision's cause is kept, so the history cannot tell. The event is
/// compared with the alarm's current state (DescribeAlarms) first.
#[tokio::test]
async fn a_late_alarm_event_of_a_superseded_transition_is_ignored_with_the_reason() {
    let event_time = at("2026-11-20T11:05:00.218Z");
    let late = at("2026-11-20T11:45:00Z");
    for (current, reason) in [
        (
            AlarmStatus {
                name: "web-cpu-high".into(),
                state: AlarmState::Ok,
                state_since: at("2026-11-20T11:20:00Z"),
                value: Some(40.0),
                data_at: None,
            },
            "alarm web-cpu-high is Ok since 2026-11-20T11:20:00Z: this Alarm event of 2026-11-20T11:05:00.218Z is not its current state",
        ),
        (
            AlarmStatus {
                name: "web-cpu-high".into(),
                state: AlarmState::Alarm,
                state_since: at("2026-11-20T11:30:00Z"),
                value: Some(95.0),
                data_at: None,
            },
            "alarm web-cpu-high entered Alarm again at 2026-11-20T11:30:00Z: this event of 2026-11-20T11:05:00.218Z is an older transition",
        ),
    ] {
        let handler = handler(false);
        handler.metrics.put_alarm(current);
        let outcome = handler
            .handle(&event("alarm-eventbridge-cpu-high.json"), late)
            .await
            .expect("handled");
        assert_eq!(outcome, Outcome::Ignored { reason: reason.into() });
        assert_eq!(handler.group.group("web").expect("web").desired, 2, "nothing scaled");
    }
    // The alarm's current transition (timestamps within a second: rounding) is acted on.
    let handler = handler(false);
    handler.metrics.put_alarm(AlarmStatus {
        name: "web-cpu-high".into(),
        state: AlarmState::Alarm,
        state_since: event_time + SignedDuration::from_millis(400),
        value: Some(91.5),
        data_at: None,
    });
    let outcome = handler
        .handle(&event("alarm-eventbridge-cpu-high.json"), at("2026-11-20T11:05:01Z"))
        .await
        .expect("handled");
    assert_eq!(decided(&outcome), ("web", Action::SetDesired(5), true));
}

/// Predictive scaling through the ports: a tick reads the group's hourly
/// load for the window of the forecast in force (`predictive::window`:
/// the 14 days before its 6-hour issue) and raises the group 5 minutes
/// before the hour; in dry run it decides the same and does not act.
#[tokio::test]
async fn a_tick_reads_the_hourly_load_and_scales_to_the_forecast_before_the_hour() {
    for dry_run in [false, true] {
        let mut handler = handler(dry_run);
        let text = "[[group]]\nname = \"web\"\nmin = 2\nmax = 10\n\n[group.predictive]\nmetric = \"cpu\"\ntarget = 50\nmode = \"forecast_and_scale\"\n";
        handler.policy = functions::policy::Policy::parse("p.toml", text).expect("valid");
        // A day of 400% total CPU a minute (4 instances at 100%): 11:00 needs 8.
        let day: Vec<Datapoint> = (0..24)
            .map(|h| Datapoint {
                at: at("2026-11-19T00:00:00Z") + SignedDuration::from_hours(h),
                value: 400.0 * 60.0,
            })
            .collect();
        // An hour after the issue: not read by this forecast.
        let mut sums = day.clone();
        sums.push(Datapoint {
            at: at("2026-11-20T07:00:00Z"),
            value: 0.0,
        });
        handler.metrics.put_hourly_sums(
            "web",
            functions::predictive::HourlySums {
                cpu: sums,
                ..Default::default()
            },
        );
        let outcome = handler
            .handle(&event("schedule-tick-target-tracking.json"), at("2026-11-20T10:55:00Z"))
            .await
            .expect("handled");
        let Outcome::Decided { decision, acted, .. } = &outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            (decision.action, *acted),
            (Action::SetDesired(8), !dry_run),
            "{decision:#?}"
        );
        assert!(
            decision.rules[0]
                .text
                .contains("the forecast for 2026-11-20T11:00:00Z needs 8"),
            "{decision:#?}"
        );
        let web = handler.group.group("web").expect("web");
        assert_eq!(web.desired, if dry_run { 2 } else { 8 });
    }
}

//! Every sample event shape (AWS's documented JSON) parses into the right
//! trigger; every malformed one is refused, naming what is wrong.

mod support;

use functions::decide::AlarmState;
use functions::trigger::{AlarmEvent, Event, Parsed, Shape, TriggerError, parse_str};

fn fixture(name: &str) -> String {
    support::event_text(name)
}

fn alarm(name: &str) -> AlarmEvent {
    match parse_str(&fixture(name)) {
        Ok(Parsed::Event(Event::Alarm(alarm))) => alarm,
        other => panic!("{name}: expected an alarm, got {other:?}"),
    }
}

#[test]
fn eventbridge_alarm_state_change() {
    let event = alarm("alarm-eventbridge-cpu-high.json");
    assert_eq!(event.name, "web-cpu-high");
    assert_eq!(event.state, AlarmState::Alarm);
    assert_eq!(event.previous, Some(AlarmState::Ok));
    assert_eq!(event.state_since.to_string(), "2026-11-20T11:05:00.218Z");
    // The newest evaluated datapoint, from reasonData (a JSON string inside JSON).
    assert_eq!(event.value, Some(91.5));
    assert_eq!(event.shape, Shape::EventBridgeAlarm);
}

#[test]
fn alarm_returning_to_ok() {
    let event = alarm("alarm-eventbridge-cpu-low-back-to-ok.json");
    assert_eq!(
        (event.name.as_str(), event.state, event.previous),
        ("web-cpu-low", AlarmState::Ok, Some(AlarmState::Alarm))
    );
    assert_eq!(event.value, None);
}

#[test]
fn direct_alarm_action_payload() {
    let event = alarm("alarm-action-direct-qps-high.json");
    assert_eq!(event.name, "web-qps-high");
    assert_eq!(event.state, AlarmState::Alarm);
    assert_eq!(event.value, Some(640.0));
    assert_eq!(event.state_since.to_string(), "2026-11-20T11:02:10.552Z");
    assert_eq!(event.shape, Shape::AlarmAction);
}

#[test]
fn sns_wrapped_alarm_notification() {
    let event = alarm("alarm-sns-session-cpu-high.json");
    assert_eq!(event.name, "session-cpu-high");
    assert_eq!((event.state, event.previous), (AlarmState::Alarm, Some(AlarmState::Ok)));
    assert_eq!(event.state_since.to_string(), "2026-11-20T11:06:00.12Z");
    assert_eq!(event.value, None, "classic notifications carry no datapoint");
    assert_eq!(event.shape, Shape::SnsAlarm);
}

#[test]
fn scheduled_events_name_their_rule() {
    for (file, rule, at) in [
        (
            "schedule-lunch-scale-out.json",
            "web-lunch-scale-out",
            "2026-11-20T03:00:00Z",
        ),
        (
            "schedule-tick-target-tracking.json",
            "web-target-tracking-tick",
            "2026-11-20T11:07:00Z",
        ),
    ] {
        match parse_str(&fixture(file)) {
            Ok(Parsed::Event(Event::Schedule {
                rule: got, at: time, ..
            })) => {
                assert_eq!(got, rule, "{file}");
                assert_eq!(time.to_string(), at, "{file}");
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn unrelated_event_is_ignored_not_an_error() {
    match parse_str(&fixture("malformed/unrelated-event.json")) {
        Ok(Parsed::Ignored(reason)) => {
            assert!(
                reason.contains("EC2 Instance State-change Notification") && reason.contains("aws.ec2"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_events_are_refused_naming_what_is_wrong() {
    let cases = [
        ("not-an-object.json", "event is a JSON array, not an object"),
        ("truncated.json", "event is not valid JSON: EOF while parsing"),
        ("unknown-state.json", "at detail.state.value: unknown variant `PANIC`"),
        (
            "wrong-types.json",
            "at detail.alarmName: invalid type: integer `42`, expected a string",
        ),
    ];
    for (file, expected) in cases {
        let error: TriggerError = parse_str(&fixture(&format!("malformed/{file}"))).expect_err(file);
        let text = error.to_string();
        assert!(text.contains(expected), "{file}: {expected:?} not in {text:?}");
        assert!(text.ends_with("a retry cannot help"), "{file}: {text}");
        assert!(!error.retryable());
    }
}

#[test]
fn other_shapes() {
    assert!(matches!(parse_str("{}"), Err(TriggerError::Unrecognised)));
    assert!(matches!(parse_str("null"), Err(TriggerError::NotAnObject("null"))));
    let not_alarm = r#"{"Records":[{"EventSource":"aws:sns","EventVersion":"1.0","EventSubscriptionArn":"a","Sns":{"Type":"Notification","MessageId":"m","TopicArn":"t","Subject":null,"Message":"hello","Timestamp":"2026-11-20T11:06:00.180Z","SignatureVersion":"1","Signature":"s","SigningCertURL":"u","UnsubscribeURL":"u","MessageAttributes":{}}}]}"#;
    assert!(
        matches!(parse_str(not_alarm), Ok(Parsed::Ignored(_))),
        "{:?}",
        parse_str(not_alarm)
    );
    let no_rule = r#"{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","account":"1","time":"2026-11-20T03:00:00Z","region":"r","resources":[],"detail":{}}"#;
    let error = parse_str(no_rule).expect_err("no rule");
    assert!(
        error.to_string().contains("at resources: missing the rule ARN"),
        "{error}"
    );
}

/// Real SNS alarm notifications carry `"AlarmDescription": null` when the
/// alarm has none, `"Subject": null`, and, for a metric-math alarm, a
/// `Trigger` with `Metrics` instead of `MetricName` (issue 18: refused as
/// malformed and not retryable before).
#[test]
fn sns_notification_with_null_description_and_metric_math_trigger() {
    let event = alarm("alarm-sns-null-description-metric-math.json");
    assert_eq!(event.name, "session-cpu-high");
    assert_eq!(event.state, AlarmState::Alarm);
    assert_eq!(event.previous, Some(AlarmState::Ok));
    assert_eq!(event.value, None, "classic notifications carry no datapoint");
}

/// Issue 18: a tick names its group (`detail.group`, set by the template's
/// input transformer and the local cloud) and is routed by it, never by the
/// rule's name: with groups `web` and `web-api`, `web-api-x-tick` is web's
/// tick when its event says so, and a tick without a group is not guessed.
#[test]
fn ticks_route_by_the_group_they_name() {
    let policy = functions::policy::Policy::parse(
        "p.toml",
        "[[group]]\nname = \"web\"\nmin = 1\nmax = 2\n[[group]]\nname = \"web-api\"\nmin = 1\nmax = 2\n",
    )
    .expect("policy");
    let tick = |rule: &str, detail: &str| {
        fixture("schedule-tick-target-tracking.json")
            .replace("web-target-tracking-tick", rule)
            .replace(r#""detail": { "group": "web" }"#, &format!(r#""detail": {detail}"#))
    };
    let route = |text: String| match parse_str(&text) {
        Ok(Parsed::Event(event)) => event.route(&policy, &[]),
        other => panic!("{other:?}"),
    };
    use functions::trigger::Routed;
    for (rule, detail, expected) in [
        ("web-api-x-tick", r#"{ "group": "web" }"#, "web"),
        ("web-x-tick", r#"{ "group": "web-api" }"#, "web-api"),
        ("web-api-x-tick", r#"{ "group": "web-api" }"#, "web-api"),
    ] {
        match route(tick(rule, detail)) {
            Routed::Decide { group, .. } => assert_eq!(group, expected, "{rule} {detail}"),
            other => panic!("{rule} {detail}: {other:?}"),
        }
    }
    match route(tick("web-api-x-tick", "{}")) {
        Routed::Ignored(reason) => assert!(reason.contains("carries no detail.group naming its group"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match route(tick("web-api-x-tick", r#"{ "group": "api" }"#)) {
        Routed::Ignored(reason) => {
            assert!(
                reason.contains("is for group api, which this policy file does not have (groups: web, web-api)"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    match parse_str(&tick("web-x-tick", r#"{ "group": 7 }"#)) {
        Err(TriggerError::Malformed { path, .. }) => assert_eq!(path, "detail.group"),
        other => panic!("{other:?}"),
    }
}

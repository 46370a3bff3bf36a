//! The `scalectl` binary end to end: the shipped policy, a state file and the
//! AWS sample events.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn path(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .display()
        .to_string()
}

fn scalectl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scalectl"))
        .args(args)
        .output()
        .expect("run scalectl")
}

fn decide(event: &str, extra: &[&str]) -> (Output, Value) {
    let policy = path("../policies/two-tier.toml");
    let state = path("tests/fixtures/state/web-two-busy.json");
    let event = path(&format!("tests/fixtures/events/{event}"));
    let mut args = vec!["decide", "--policy", &policy, "--state", &state, "--event", &event];
    args.extend_from_slice(extra);
    let output = scalectl(&args);
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, json)
}

#[test]
fn decides_an_alarm_event_with_explanation() {
    let (output, json) = decide(
        "alarm-eventbridge-cpu-high.json",
        &["--now", "2026-11-20T11:05:01Z", "--explain"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(json["group"], "web");
    assert_eq!(json["decision"]["action"]["set_desired"], 5);
    assert_eq!(
        json["decision"]["cause"],
        "alarm web-cpu-high at 2026-11-20T11:05:00.218Z"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("web: set desired 2 -> 5: alarm web-cpu-high: 2 -> 5 [step +3"),
        "{stderr}"
    );
}

#[test]
fn decides_a_schedule_and_a_tick() {
    let (output, json) = decide("schedule-lunch-scale-out.json", &["--now", "2026-11-20T03:00:01Z"]);
    assert!(output.status.success());
    assert_eq!(
        json["decision"]["action"]["set_limits"],
        serde_json::json!({ "min": 4, "max": 10, "desired": 4 })
    );

    let (output, json) = decide("schedule-tick-target-tracking.json", &["--now", "2026-11-20T11:07:00Z"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // Target tracking wants ceil(2 x 91.5/50) = 4; the alarm still in ALARM wants +3 = 5: the larger wins.
    assert_eq!(json["decision"]["action"]["set_desired"], 5, "{json:#}");
    let rules = json["decision"]["rules"].to_string();
    assert!(rules.contains("largest of 2 proposals"), "{rules}");
    // Issue 19: the codes beside the sentences: the alarm's step won, and why.
    assert_eq!(json["decision"]["code"], "step", "{json:#}");
    let codes: Vec<&str> = json["decision"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes.first(), Some(&"step"), "{codes:?}");
    assert_eq!(codes.last(), Some(&"proposals"), "{codes:?}");
}

#[test]
fn unrelated_events_are_ignored_with_exit_0() {
    let (output, json) = decide("malformed/unrelated-event.json", &[]);
    assert!(output.status.success());
    assert!(
        json["ignored"]
            .as_str()
            .expect("ignored")
            .contains("EC2 Instance State-change Notification")
    );
    // An alarm of the other tier's policy file entry routes to that group;
    // an SNS notification carries no datapoint: --value gives it.
    let (output, json) = decide(
        "alarm-sns-session-cpu-high.json",
        &["--now", "2026-11-20T11:06:01Z", "--value", "85"],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(json["group"], "session");
    assert_eq!(json["trigger"]["alarm"]["value"], 85.0);
}

/// Issue 18: an SNS alarm (no datapoint in the payload) held silently with
/// "carries no datapoint"; without --value or a value in the state file,
/// scalectl now says what is missing (exit 2).
#[test]
fn an_sns_alarm_without_a_datapoint_asks_for_one() {
    let (output, _) = decide("alarm-sns-session-cpu-high.json", &["--now", "2026-11-20T11:06:01Z"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("alarm session-cpu-high: the event carries no datapoint (an SNS notification); pass --value N"),
        "{stderr}"
    );
}

#[test]
fn bad_inputs_exit_2_with_the_reason() {
    for (event, expected) in [
        ("malformed/truncated.json", "event is not valid JSON"),
        ("malformed/wrong-types.json", "at detail.alarmName"),
        ("malformed/not-an-object.json", "not an object"),
        ("malformed/unknown-state.json", "unknown variant `PANIC`"),
    ] {
        let (output, _) = decide(event, &[]);
        assert_eq!(output.status.code(), Some(2), "{event}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{event}: {stderr}");
    }
    let output = scalectl(&[
        "decide",
        "--policy",
        &path("../policies/two-tier.toml"),
        "--state",
        &path("tests/fixtures/events/schedule-lunch-scale-out.json"),
        "--event",
        &path("tests/fixtures/events/schedule-lunch-scale-out.json"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `version`"), "{stderr}");
    let output = scalectl(&[
        "decide",
        "--policy",
        "/nonexistent.toml",
        "--state",
        "x",
        "--event",
        "y",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read policy file /nonexistent.toml"));
}

#[test]
fn validate_reports_valid_and_invalid_files() {
    let output = scalectl(&["validate", "--policy", &path("../policies/two-tier.toml")]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid (2 group(s): web, session)"));
    let dir = std::env::temp_dir().join(format!("scalectl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[group]]\nname = \"web\"\nmin = 5\nmax = 2\n").expect("write");
    let output = scalectl(&["validate", "--policy", &bad.display().to_string()]);
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("min 5 must be <= max 2"));
}

/// Issue 25.5: a state file no group can be in (min above max) made
/// `scalectl decide` panic (exit 101 in a clamp). Now exit 2 naming it.
#[test]
fn an_impossible_state_exits_2_naming_it_never_panics() {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(path("tests/fixtures/state/web-two-busy.json")).expect("state"))
            .expect("json");
    let mut state = state;
    state["observed"]["min"] = 5.into();
    state["observed"]["max"] = 3.into();
    let dir = std::env::temp_dir().join(format!("scalectl-impossible-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("state.json");
    std::fs::write(&file, state.to_string()).expect("write");
    for event in [
        "alarm-eventbridge-cpu-high.json",
        "schedule-tick-target-tracking.json",
        "schedule-lunch-scale-out.json",
    ] {
        let output = scalectl(&[
            "decide",
            "--policy",
            &path("../policies/two-tier.toml"),
            "--state",
            file.to_str().expect("path"),
            "--event",
            &path(&format!("tests/fixtures/events/{event}")),
            "--now",
            "2026-11-20T11:05:01Z",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{event}: {stderr}");
        assert!(
            stderr.contains("observed: impossible observation: min 5 is above max 3"),
            "{event}: {stderr}"
        );
    }
}

/// Issue 25.8: input files were read without a limit (`/dev/zero` grew to
/// 4 GB of RSS); each kind has one, named in the error.
#[test]
fn endless_input_files_are_refused_at_their_limit() {
    let policy = path("../policies/two-tier.toml");
    let state = path("tests/fixtures/state/web-two-busy.json");
    let event = path("tests/fixtures/events/alarm-eventbridge-cpu-high.json");
    for (args, expected) in [
        (vec!["validate", "--policy", "/dev/zero"], "policy file /dev/zero"),
        (
            vec!["decide", "--policy", &policy, "--state", &state, "--event", "/dev/zero"],
            "cannot read the event file /dev/zero: larger than 6 MiB",
        ),
        (
            vec!["decide", "--policy", &policy, "--state", "/dev/zero", "--event", &event],
            "cannot read the state file /dev/zero: larger than 64 MiB",
        ),
    ] {
        let output = scalectl(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.contains("larger than"), "{args:?}: {stderr}");
    }
}

/// `scalectl schedule` (issue 18): the next fire times of every scheduled
/// action and the limits they have put in effect, from the same schedule
/// expressions and decisions the functions use.
#[test]
fn schedule_lists_next_fires_and_the_limits_in_effect() {
    let policy = path("../policies/two-tier.toml");
    let run = |at: &str| {
        let output = scalectl(&["schedule", "--policy", &policy, "--at", at, "--next", "2", "--json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON")
    };
    // Lunch in Shanghai: min 4 from 11:00 to 13:00 local, 2 otherwise.
    for (at, min, by) in [
        ("2026-12-02T12:00:00+08:00", 4, "web-lunch-scale-out"),
        ("2026-12-02T14:00:00+08:00", 2, "web-lunch-scale-in"),
        ("2026-12-02T10:59:00+08:00", 2, "web-lunch-scale-in"),
        ("2026-12-02T11:00:00+08:00", 4, "web-lunch-scale-out"),
    ] {
        let json = run(at);
        let web = &json["in_effect"][0];
        assert_eq!(
            (web["group"].as_str(), web["min"]["value"].as_u64()),
            (Some("web"), Some(min)),
            "{at}: {web}"
        );
        assert_eq!(web["min"]["set_by"][0], by, "{at}");
        assert_eq!(web["max"]["set_by"], Value::Null, "{at}: max is the policy file's");
        assert_eq!(web["desired"], Value::Null, "{at}: desired is the scaler's");
    }
    let json = run("2026-12-02T12:00:00+08:00");
    let out = &json["upcoming"][0];
    assert_eq!(out["action"], "web-lunch-scale-out");
    assert_eq!(
        out["next_local"],
        serde_json::json!(["2026-12-03T11:00:00+08:00", "2026-12-04T11:00:00+08:00"])
    );
    assert_eq!(out["next"][0], "2026-12-03T03:00:00Z");
}

/// EventBridge Scheduler on daylight saving time: a cron time that a
/// spring-forward skips does not fire that day; a repeated one fires once.
#[test]
fn schedule_follows_eventbridge_scheduler_on_dst_days() {
    let dir = std::env::temp_dir().join(format!("scalectl-dst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("p.toml");
    std::fs::write(
        &file,
        "[[group]]\nname = \"ny\"\nmin = 1\nmax = 5\n[[group.schedule]]\nname = \"night\"\ncron = \"cron(30 2 * * ? *)\"\ntimezone = \"America/New_York\"\nmin = 3\n[[group.schedule]]\nname = \"fold\"\ncron = \"cron(30 1 * * ? *)\"\ntimezone = \"America/New_York\"\nmax = 4\n",
    )
    .expect("policy");
    let file = file.display().to_string();
    let next = |at: &str| {
        let output = scalectl(&["schedule", "--policy", &file, "--at", at, "--next", "2", "--json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON")["upcoming"].clone()
    };
    // 2026-03-08: 02:00 -> 03:00 in New York, so 02:30 does not exist that day.
    let spring = next("2026-03-07T12:00:00-05:00");
    assert_eq!(
        spring[0]["next_local"],
        serde_json::json!(["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]),
        "skipped on the 8th"
    );
    // 2026-11-01: 02:00 -> 01:00, so 01:30 happens twice and fires once.
    let fall = next("2026-10-31T12:00:00-04:00");
    assert_eq!(
        fall[1]["next_local"],
        serde_json::json!(["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
        "once on the 1st"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn schedule_refuses_bad_flags_naming_them() {
    let policy = path("../policies/two-tier.toml");
    for (args, words) in [
        (vec!["--next", "0"], "--next"),
        (vec!["--next", "101"], "--next"),
        (vec!["--at", "tomorrow"], "--at"),
    ] {
        let mut all = vec!["schedule", "--policy", policy.as_str()];
        all.extend(args.iter().copied());
        let output = scalectl(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(words), "{args:?}");
    }
}

/// Issue 20, deploy.sh's preflight: the names a stack would create must fit
/// AWS's limits (Lambda function and EventBridge rule names: 64 characters,
/// SQS queue names: 80, stack names: a letter then letters, digits and -).
/// A name too long fails the deploy halfway on AWS; here it exits 2 first,
/// naming each name, its length, the limit and the longest stack name that fits.
#[test]
fn preflight_refuses_a_stack_name_that_makes_names_aws_refuses() {
    let policy = path("../policies/two-tier.toml");
    let ok = scalectl(&["preflight", "--policy", &policy, "--stack", "my-autoscaler"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("every name fits"));
    let long = "a".repeat(60);
    let refused = scalectl(&["preflight", "--policy", &policy, "--stack", &long]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the function would be named"), "{stderr}");
    assert!(stderr.contains("group session's tick rule"), "{stderr}");
    assert!(stderr.contains("at most 64"), "{stderr}");
    // session-STACK-tick is the longest: 7 + 1 + 51 + 5 = 64 fits, 52 does not.
    let fits = scalectl(&["preflight", "--policy", &policy, "--stack", &"b".repeat(51)]);
    assert!(fits.status.success(), "{}", String::from_utf8_lossy(&fits.stderr));
    let over = scalectl(&["preflight", "--policy", &policy, "--stack", &"b".repeat(52)]);
    assert_eq!(over.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&over.stderr);
    assert!(
        stderr.contains("group session's tick rule")
            && stderr.contains("(65 characters; at most 64)")
            && stderr.contains("at most 51 characters long")
            && !stderr.contains("group web's"),
        "{stderr}"
    );
    for bad in ["9lives", "my_stack", ""] {
        let out = scalectl(&["preflight", "--policy", &policy, "--stack", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("a letter, then letters, digits and -"),
            "{bad}"
        );
    }
}

/// Predictive scaling offline: the state file's `metrics.load` (the
/// group's load an hour) and a `[group.predictive]` policy give the
/// decision the function would make on its tick, with its `predictive` rule.
#[test]
fn decides_a_tick_on_the_forecast_from_the_state_files_hourly_load() {
    let dir = std::env::temp_dir().join(format!("scalectl-predictive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("p.toml");
    std::fs::write(
        &policy,
        "[[group]]\nname = \"web\"\nmin = 2\nmax = 10\n\n[group.predictive]\nmetric = \"cpu\"\ntarget = 50\nmode = \"forecast_and_scale\"\n",
    )
    .expect("policy");
    // A day at 300% total CPU: 11:00 needs 6.
    let load: Vec<Value> = (0..24)
        .map(|h| serde_json::json!({ "at": format!("2026-11-19T{h:02}:00:00Z"), "value": 300.0 }))
        .collect();
    let state = dir.join("state.json");
    let text = serde_json::json!({
        "observed": { "min": 2, "max": 10, "desired": 2, "instances": [] },
        "metrics": { "load": load },
        "activities": [],
        "alarms": []
    });
    std::fs::write(&state, text.to_string()).expect("state");
    let event = path("tests/fixtures/events/schedule-tick-target-tracking.json");
    let output = scalectl(&[
        "decide",
        "--policy",
        &policy.display().to_string(),
        "--state",
        &state.display().to_string(),
        "--event",
        &event,
        "--now",
        "2026-11-20T10:55:00Z",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["decision"]["action"]["set_desired"], 6, "{json:#}");
    assert_eq!(json["decision"]["code"], "predictive", "{json:#}");
}

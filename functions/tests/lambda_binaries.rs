//! The real function binaries under a local Lambda Runtime API: every
//! sample event, malformed ones refused as not retryable, unrelated ones
//! ignored, and a start-up error reported as an init error.

mod support;

use std::time::Duration;

use support::runtime_api::{Answer, RuntimeApi, start_function};

fn root(relative: &str) -> String {
    support::crate_path(relative).display().to_string()
}

fn fixture(name: &str) -> String {
    support::event_text(name)
}

struct Function(std::process::Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn answer(api: &RuntimeApi) -> Answer {
    api.answer(Duration::from_secs(30))
        .expect("the function answered within 30 s")
}

#[test]
fn malformed_events_are_refused_as_not_retryable_by_every_binary() {
    for binary in [
        env!("CARGO_BIN_EXE_alarm-scaler"),
        env!("CARGO_BIN_EXE_schedule-scaler"),
        env!("CARGO_BIN_EXE_target-tracker"),
    ] {
        let mut api = RuntimeApi::start();
        let _function = Function(start_function(binary, &api, &root("../policies/two-tier.toml"), &[]));
        // Not JSON at all: the Lambda runtime itself refuses it before the
        // handler (and AWS refuses such a payload at Invoke already).
        api.invoke(&fixture("malformed/truncated.json"));
        match answer(&api) {
            Answer::Error { body, .. } => {
                assert!(
                    body.contains("DeserializeError") && body.contains("EOF while parsing"),
                    "{binary}: {body}"
                );
            }
            other => panic!("{binary} truncated: {other:?}"),
        }
        for name in ["not-an-object.json", "unknown-state.json", "wrong-types.json"] {
            let id = api.invoke(&fixture(&format!("malformed/{name}")));
            match answer(&api) {
                Answer::Error {
                    id: got,
                    error_type,
                    body,
                    ..
                } => {
                    assert_eq!(got, id, "{binary} {name}");
                    let json: serde_json::Value = serde_json::from_str(&body).expect("error json");
                    assert_eq!(
                        json["errorType"], "NotRetryable.EventError",
                        "{binary} {name}: {body} ({error_type})"
                    );
                    assert!(
                        json["errorMessage"]
                            .as_str()
                            .expect("message")
                            .contains("a retry cannot help"),
                        "{body}"
                    );
                }
                other => panic!("{binary} {name}: {other:?}"),
            }
        }
        // Unrelated, and the other paths' triggers: ignored, answered normally.
        for name in [
            "malformed/unrelated-event.json",
            "schedule-tick-target-tracking.json",
            "schedule-lunch-scale-out.json",
            "alarm-eventbridge-cpu-high.json",
        ] {
            let is_own = matches!(
                (binary.rsplit('/').next().unwrap_or(""), name),
                ("target-tracker", "schedule-tick-target-tracking.json")
                    | ("schedule-scaler", "schedule-lunch-scale-out.json")
                    | ("alarm-scaler", "alarm-eventbridge-cpu-high.json")
            );
            api.invoke(&fixture(name));
            match answer(&api) {
                // Its own trigger reaches for the group API, which is a closed port here.
                Answer::Error { error_type, body, .. } if is_own => {
                    let json: serde_json::Value = serde_json::from_str(&body).expect("error json");
                    assert_eq!(
                        json["errorType"], "Retryable.PortError",
                        "{binary} {name}: {body} ({error_type})"
                    );
                }
                Answer::Response { body, .. } if !is_own => {
                    let json: serde_json::Value = serde_json::from_str(&body).expect("response json");
                    assert_eq!(json["outcome"], "ignored", "{binary} {name}: {body}");
                }
                other => panic!("{binary} {name}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_bad_policy_is_an_init_error_naming_the_file() {
    let api = RuntimeApi::start();
    let _function = Function(start_function(
        env!("CARGO_BIN_EXE_alarm-scaler"),
        &api,
        "/nonexistent/policy.toml",
        &[],
    ));
    match answer(&api) {
        Answer::InitError { body, .. } => {
            assert!(body.contains("/nonexistent/policy.toml"), "{body}")
        }
        other => panic!("{other:?}"),
    }
    let api = RuntimeApi::start();
    let _function = Function(start_function(
        env!("CARGO_BIN_EXE_alarm-scaler"),
        &api,
        &root("../policies/two-tier.toml"),
        &[("SCALER_DRY_RUN", "maybe")],
    ));
    match answer(&api) {
        Answer::InitError { body, .. } => assert!(
            body.contains("SCALER_DRY_RUN") && body.contains("expected 1, true, 0 or false"),
            "{body}"
        ),
        other => panic!("{other:?}"),
    }
}

//! The real function binary under a local Lambda Runtime API: every
//! sample event, malformed ones refused as not retryable, unrelated ones
//! ignored, an SQS batch answered message by message, and a start-up error
//! reported as an init error.

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
fn malformed_events_are_refused_as_not_retryable() {
    let binary = env!("CARGO_BIN_EXE_scaler");
    let mut api = RuntimeApi::start();
    let _function = Function(start_function(binary, &api, &root("../policies/two-tier.toml"), &[]));
    // Not JSON at all: the Lambda runtime itself refuses it before the
    // handler (and AWS refuses such a payload at Invoke already).
    api.invoke(&fixture("malformed/truncated.json"));
    match answer(&api) {
        Answer::Error { body, .. } => {
            assert!(
                body.contains("DeserializeError") && body.contains("EOF while parsing"),
                "{body}"
            );
        }
        other => panic!("truncated: {other:?}"),
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
                assert_eq!(got, id, "{name}");
                let json: serde_json::Value = serde_json::from_str(&body).expect("error json");
                assert_eq!(
                    json["errorType"], "NotRetryable.EventError",
                    "{name}: {body} ({error_type})"
                );
                assert!(
                    json["errorMessage"]
                        .as_str()
                        .expect("message")
                        .contains("a retry cannot help"),
                    "{body}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Unrelated: ignored, answered normally.
    api.invoke(&fixture("malformed/unrelated-event.json"));
    match answer(&api) {
        Answer::Response { body, .. } => {
            let json: serde_json::Value = serde_json::from_str(&body).expect("response json");
            assert_eq!(json["outcome"], "ignored", "{body}");
        }
        other => panic!("unrelated: {other:?}"),
    }
    // Every trigger kind reaches for the group API, a closed port here: retryable.
    for name in [
        "schedule-tick-target-tracking.json",
        "schedule-lunch-scale-out.json",
        "alarm-eventbridge-cpu-high.json",
    ] {
        api.invoke(&fixture(name));
        match answer(&api) {
            Answer::Error { error_type, body, .. } => {
                let json: serde_json::Value = serde_json::from_str(&body).expect("error json");
                assert_eq!(
                    json["errorType"], "Retryable.PortError",
                    "{name}: {body} ({error_type})"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// The binary as the trigger queue's event source mapping invokes it: a
/// batch, answered with a partial batch response (Lambda, "Handling errors
/// for an SQS event source in Lambda"). A retryable failure returns its
/// message and the later ones of its group; other groups go on; a message
/// a retry cannot help is dropped; a trigger in another group's message
/// group is not acted on.
#[test]
fn an_sqs_batch_is_answered_with_the_messages_to_return() {
    use functions::queue::{Message, event};
    let mut api = RuntimeApi::start();
    let _function = Function(start_function(
        env!("CARGO_BIN_EXE_scaler"),
        &api,
        &root("../policies/two-tier.toml"),
        &[],
    ));
    let message = |id: &str, group: &str, body: String| Message {
        id: id.into(),
        group: Some(group.into()),
        body,
        receive_count: 1,
    };
    let batch = [
        message("m1", "web", fixture("schedule-tick-target-tracking.json")),
        message("m2", "web", fixture("schedule-lunch-scale-out.json")),
        message("m3", "api", fixture("malformed/unrelated-event.json")),
        message("m4", "api", "{\"cut short\":".into()),
        message("m5", "api", fixture("alarm-eventbridge-cpu-high.json")),
    ];
    api.invoke(
        &event(
            &batch,
            "arn:aws:sqs:ap-shanghai:123456789012:s-triggers.fifo",
            "ap-shanghai",
        )
        .to_string(),
    );
    let body = match answer(&api) {
        Answer::Response { body, .. } => body,
        other => panic!("{other:?}"),
    };
    let json: serde_json::Value = serde_json::from_str(&body).expect("response json");
    let ids: Vec<String> = batch.iter().map(|m| m.id.clone()).collect();
    assert_eq!(
        functions::queue::returned(&json, &ids).expect("a valid partial batch response"),
        ["m1", "m2"],
        "{json:#}"
    );
    let handled = |id: &str| {
        json["handled"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["message_id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("{id}: {json:#}"))
    };
    assert!(
        handled("m1")["error"].as_str().expect("m1 error").contains("failed"),
        "{json:#}"
    );
    assert!(
        handled("m2")["error"]
            .as_str()
            .expect("m2")
            .contains("earlier message of its group failed")
    );
    assert_eq!(handled("m3")["outcome"]["outcome"], "ignored");
    assert!(handled("m4")["error"].as_str().expect("m4").contains("not valid JSON"));
    assert_eq!(handled("m4")["returned"], false);
    let m5 = handled("m5");
    assert_eq!(m5["outcome"]["outcome"], "ignored", "{m5:#}");
    assert!(
        m5["outcome"]["reason"]
            .as_str()
            .expect("reason")
            .contains("came in message group api"),
        "{m5:#}"
    );
}

#[test]
fn a_bad_policy_is_an_init_error_naming_the_file() {
    let api = RuntimeApi::start();
    let _function = Function(start_function(
        env!("CARGO_BIN_EXE_scaler"),
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
        env!("CARGO_BIN_EXE_scaler"),
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

/// Lambda's `provided.al2023` image has shipped without `/usr/share/zoneinfo`:
/// the shipped policy (schedules in Asia/Shanghai) must still load, from the
/// time zone database built into the binary. The function runs in a mount
/// namespace where that directory is an empty tmpfs (`unshare -rm`, no root
/// needed where user namespaces are allowed).
#[test]
fn the_shipped_policy_loads_without_a_system_time_zone_database() {
    let tool = |name: &str| {
        ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|dir| std::path::Path::new(dir).join(name))
            .find(|path| path.is_file())
    };
    let usable = match (tool("unshare"), tool("mount")) {
        (Some(unshare), Some(mount)) => std::process::Command::new(&unshare)
            .args(["-rm", "true"])
            .status()
            .is_ok_and(|s| s.success())
            .then_some((unshare, mount)),
        _ => None,
    };
    let Some((unshare, mount)) = usable else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but `unshare -rm` (util-linux, user namespaces) is not usable here"
        );
        println!("SKIPPED: `unshare -rm` (util-linux, user namespaces) is not usable here");
        return;
    };
    let dir = std::env::temp_dir().join(format!("no-zoneinfo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let wrapper = dir.join("scaler");
    // Exit 97 if the directory is still visible: then this test proves nothing.
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} -rm /bin/sh -c '{} -t tmpfs tmpfs /usr/share/zoneinfo && \
             ! test -e /usr/share/zoneinfo/Asia/Shanghai || exit 97; exec \"$0\"' {}\n",
            unshare.display(),
            mount.display(),
            env!("CARGO_BIN_EXE_scaler"),
        ),
    )
    .expect("wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let mut api = RuntimeApi::start();
    let policy = root("../policies/two-tier.toml");
    assert!(
        std::fs::read_to_string(&policy)
            .expect("policy")
            .contains("timezone = \"Asia/Shanghai\"")
    );
    let mut function = Function(start_function(wrapper.to_str().expect("path"), &api, &policy, &[]));
    let id = api.invoke(&fixture("malformed/unrelated-event.json"));
    let answered = api.answer(Duration::from_secs(30));
    if answered.is_none() {
        let _ = function.0.kill();
        let status = function.0.wait().expect("wait");
        panic!("no answer; the wrapper exited {status} (97: the zoneinfo directory was not hidden)");
    }
    match answered.expect("answer") {
        Answer::Response { id: got, .. } => assert_eq!(got, id),
        other => panic!("without /usr/share/zoneinfo: {other:?}"),
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

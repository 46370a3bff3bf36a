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
    let wrapper = dir.join("alarm-scaler");
    // Exit 97 if the directory is still visible: then this test proves nothing.
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} -rm /bin/sh -c '{} -t tmpfs tmpfs /usr/share/zoneinfo && \
             ! test -e /usr/share/zoneinfo/Asia/Shanghai || exit 97; exec \"$0\"' {}\n",
            unshare.display(),
            mount.display(),
            env!("CARGO_BIN_EXE_alarm-scaler"),
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

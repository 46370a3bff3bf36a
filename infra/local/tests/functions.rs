//! The whole decision path on one machine: the local cloud's scheduler and
//! alarms send EventBridge JSON through the trigger queue (SQS FIFO, one
//! message group per group) and its Lambda Runtime API to the real
//! function binary, which read and change the group through the control
//! API (the functions' local adapter), and the port contract holds there.

mod support;

use std::time::{Duration, Instant};

use functions::policy::Policy;
use localcloud::group::State;
use localcloud::lb::{Algorithm, LbConfig};
use localcloud::{Cloud, Config};

fn config(policy: &str, test: u8) -> Config {
    let dir = std::env::temp_dir().join(format!("localcloud-fn-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let policy_file = dir.join("policy.toml");
    std::fs::write(&policy_file, policy).expect("policy file");
    Config {
        policy: Policy::parse("test policy", policy).expect("policy"),
        speed: 60.0,
        start: None,
        boot: Duration::from_secs(30),
        health_grace: Duration::from_secs(60),
        azs: vec!["local-1a".into(), "local-1b".into()],
        subnet: [100 + (std::process::id() % 100) as u8, 100 + test * 16],
        instance_port: 8080,
        lb_port: 0,
        control_port: 0,
        lb: LbConfig {
            algorithm: Algorithm::LeastOutstandingRequests,
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(1000),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
            deregistration_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..LbConfig::default()
        },
        workload: support::workload_bin(),
        cpu_limit: 0.2,
        log_dir: dir.join("logs"),
        drain_timeout: Duration::from_secs(5),
        ingestion_delay: functions::cloudwatch::INGESTION_DELAY,
        shadow: None,
        functions: Some(support::binaries()),
        policy_file: Some(policy_file),
    }
}

async fn wait_for(cloud: &Cloud, what: &str, limit: Duration, ready: impl Fn(&localcloud::group::Group) -> bool) {
    if let Err(error) = cloud.wait_for("web", limit, ready).await {
        let status = serde_json::to_string_pretty(&cloud.status()).unwrap_or_default();
        panic!("{what}: {error}\n{status}");
    }
}

/// Clients in a loop on fibo(27) through a load balancer, bounded in time
/// and count; a 503 is counted and backed off from, as a client should.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(lb: std::net::SocketAddr, clients: usize, limit: Duration) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, refused) = (stop.clone(), refused.clone());
                tokio::spawn(async move {
                    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                        .build_http::<http_body_util::Empty<bytes::Bytes>>();
                    let started = Instant::now();
                    let mut sent = 0u32;
                    while !stop.load(Relaxed) && started.elapsed() < limit && sent < 20_000 {
                        let uri: http::Uri = format!("http://{lb}/fibo/27").parse().expect("uri");
                        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(5), client.get(uri)).await {
                            if response.status() == http::StatusCode::SERVICE_UNAVAILABLE {
                                refused.fetch_add(1, Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            use http_body_util::BodyExt;
                            let _ = response.into_body().collect().await;
                        }
                        sent += 1;
                    }
                })
            })
            .collect();
        Self { stop, refused, clients }
    }

    async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for client in self.clients {
            let _ = client.await;
        }
    }
}

fn in_service(group: &localcloud::group::Group) -> usize {
    group.instances.iter().filter(|i| i.state == State::InService).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_at_its_time_in_its_time_zone_through_the_schedule_function() {
    // Three cloud minutes from now, as a Shanghai wall-clock cron.
    let zone = functions::schedule::time_zone("Asia/Shanghai").expect("zone");
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(3);
    let minute = jiff::Timestamp::from_second((soon.as_second() / 60 + 1) * 60).expect("minute");
    let fire = minute.to_zoned_datetime(zone);
    let policy = format!(
        "[[group]]\nname = \"web\"\nmin = 1\nmax = 4\n\n[[group.schedule]]\nname = \"web-evening\"\ncron = \"cron({} {} * * ? *)\"\ntimezone = \"Asia/Shanghai\"\nmin = 3\n",
        fire.minute(),
        fire.hour()
    );
    let cloud = Cloud::start(config(&policy, 1)).await.expect("start");
    wait_for(&cloud, "one instance", Duration::from_secs(20), |g| in_service(g) == 1).await;
    let runtime = cloud.functions().expect("functions run").clone();
    let invocation = localcloud::runtime::wait_for(&runtime, Duration::from_secs(20), |i| {
        i.group == "web" && i.event.starts_with("schedule web-evening")
    })
    .await
    .unwrap_or_else(|| panic!("no schedule invocation: {:#?}", cloud.status()));
    let expected = minute;
    assert_eq!(invocation.event, format!("schedule web-evening at {expected}"));
    let result = invocation.result.clone().unwrap_or_else(|| panic!("{invocation:#?}"));
    assert_eq!(result["outcome"], "decided", "{result:#}");
    assert_eq!(result["acted"], true, "{result:#}");
    assert!(
        result["decision"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("web-evening"),
        "{result:#}"
    );
    wait_for(&cloud, "min 3 from the schedule", Duration::from_secs(20), |g| {
        g.min == 3 && in_service(g) == 3
    })
    .await;
    // The change is recorded with the function's cause (its idempotency key).
    let group = cloud.group("web").expect("group");
    let change = group.capacity_changes.last().expect("a capacity change");
    assert_eq!((change.from, change.to), (1, 3));
    assert!(change.cause.contains("web-evening"), "{}", change.cause);
    cloud.shutdown().await;
}

const ALARMED: &str = r#"[[group]]
name = "web"
min = 2
max = 4
cooldown = "60s"

[[group.alarm_policy]]
type = "step"
alarm = "web-cpu-high"
metric = { namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = { AutoScalingGroupName = "web" } }
comparison = ">"
threshold = 50
period = "60s"
evaluation_periods = 2
adjustment = "change_in_capacity"
steps = [{ lower = 0, change = 2 }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_load_raises_the_alarm_and_the_alarm_function_scales_out() {
    let cloud = Cloud::start(config(ALARMED, 2)).await.expect("start");
    wait_for(&cloud, "two instances", Duration::from_secs(20), |g| in_service(g) == 2).await;
    // Idle first: the alarm judges real datapoints and says OK.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cloud
        .alarms()
        .iter()
        .any(|a| a.state == functions::decide::AlarmState::Ok)
    {
        assert!(Instant::now() < deadline, "alarm never OK: {:#?}", cloud.alarms());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Load: six clients in a loop on fibo(27) through the load balancer, bounded.
    let lb = cloud.lb_addr("web").expect("lb");
    let load = Load::start(lb, 6, Duration::from_secs(40));
    let runtime = cloud.functions().expect("functions run").clone();
    let invocation = localcloud::runtime::wait_for(&runtime, Duration::from_secs(30), |i| {
        i.group == "web" && i.event.contains("web-cpu-high Ok -> Alarm")
    })
    .await;
    let invocation = invocation.unwrap_or_else(|| panic!("no alarm invocation: {:#?}", cloud.status()));
    let result = invocation.result.clone().unwrap_or_else(|| panic!("{invocation:#?}"));
    assert_eq!(result["outcome"], "decided", "{result:#}");
    assert_eq!(result["acted"], true, "{result:#}");
    assert_eq!(result["decision"]["action"]["set_desired"], 4, "{result:#}");
    // The alarm went off on two breaching datapoints, as configured.
    let alarm = cloud
        .alarms()
        .into_iter()
        .find(|a| a.name == "web-cpu-high")
        .expect("alarm");
    assert!(
        alarm.reason.starts_with("Threshold Crossed: 2 out of the last 2"),
        "{}",
        alarm.reason
    );
    wait_for(&cloud, "scaled out to 4", Duration::from_secs(20), |g| {
        in_service(g) == 4
    })
    .await;
    load.stop().await;
    let group = cloud.group("web").expect("group");
    let change = group
        .capacity_changes
        .iter()
        .find(|c| c.to == 4)
        .expect("scale-out recorded");
    assert!(change.cause.starts_with("alarm web-cpu-high at"), "{}", change.cause);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_adapter_meets_the_group_contract() {
    let policy = "[[group]]\nname = \"contract\"\nmin = 1\nmax = 5\ndesired = 2\n";
    let mut config = config(policy, 3);
    config.functions = None;
    let cloud = Cloud::start(config).await.expect("start");
    let control = cloud.control_addr().expect("control");
    let since = cloud.clock().now() - jiff::SignedDuration::from_secs(60);
    let adapter = functions::local::LocalCloud::new(&control.to_string());
    functions::contract::group_port_contract(&adapter, "contract", since).await;
    cloud.shutdown().await;
}

/// Always in ALARM once the group has datapoints: CPU is below 101%.
const TOGETHER: &str = r#"[[group]]
name = "web"
min = 1
max = 8
cooldown = "60s"

[[group.alarm_policy]]
type = "simple"
alarm = "web-always"
metric = { namespace = "AWS/EC2", name = "CPUUtilization", stat = "Average", dimensions = { AutoScalingGroupName = "web" } }
comparison = "<"
threshold = 101
period = "60s"
evaluation_periods = 1
adjustment = "change_in_capacity"
change = 2
cooldown = "60s"

[[group.schedule]]
name = "web-peak"
cron = "cron(0 3 1 1 ? *)"
timezone = "UTC"
min = 4
"#;

/// Issue 18, "one decision at a time per group": an alarm, a schedule and
/// ticks that arrive together go through the group's message group of the
/// trigger queue one at a time, in order, each decision made on the
/// capacity the previous one left (SQS FIFO: no message of a group while
/// one is in flight; Lambda's event source mapping, disabled and enabled
/// as UpdateEventSourceMapping does, lets them pile up first). With three
/// functions each reading then writing an absolute capacity, two of these
/// decisions could start from the same capacity and one would be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_a_schedule_and_ticks_arriving_together_are_decided_one_after_another() {
    let cloud = Cloud::start(config(TOGETHER, 3)).await.expect("start");
    // Disabled before the first tick (a cloud minute, a second here).
    let runtime = cloud.functions().expect("functions run").clone();
    runtime.set_enabled(false);
    wait_for(&cloud, "one instance", Duration::from_secs(20), |g| in_service(g) == 1).await;
    // The alarm's own state change (the cloud's alarm, not a forged event).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cloud
        .events()
        .iter()
        .any(|e| e.summary.starts_with("alarm web-always") && e.summary.ends_with("Alarm"))
    {
        assert!(Instant::now() < deadline, "alarm never fired: {:#?}", cloud.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = cloud.clock().now();
    let mut schedule = localcloud::cloud::scheduled_event("web-peak", at);
    schedule["source"] = "aws.scheduler".into();
    cloud.emit("web", format!("schedule web-peak at {at}"), schedule);
    // At least one tick after it (one a cloud minute: a second here).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cloud
        .events()
        .iter()
        .any(|e| e.summary.starts_with("tick") && e.at > at)
    {
        assert!(Instant::now() < deadline, "no tick: {:#?}", cloud.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        runtime.invocations().iter().all(|i| i.started.is_none()),
        "{:#?}",
        runtime.invocations()
    );
    runtime.set_enabled(true);
    // Handled up to the tick after the schedule.
    let done = localcloud::runtime::wait_for(&runtime, Duration::from_secs(30), |i| {
        i.event.starts_with("tick") && i.at > at && i.started.is_some()
    })
    .await;
    assert!(done.is_some(), "not handled: {:#?}", cloud.status());
    let handled: Vec<localcloud::runtime::Invocation> =
        runtime.invocations().into_iter().filter(|i| i.group == "web").collect();
    // All waited in the queue together; they are handled in the order sent.
    let position = |prefix: &str| handled.iter().position(|i| i.event.starts_with(prefix));
    let (alarm, peak) = (position("alarm web-always"), position("schedule web-peak"));
    let tick = handled.iter().rposition(|i| i.event.starts_with("tick"));
    assert!(
        alarm.is_some() && alarm < peak && peak < tick,
        "{:#?}",
        handled.iter().map(|i| &i.event).collect::<Vec<_>>()
    );
    // Batches never overlap in time.
    for pair in handled.windows(2) {
        if pair[0].started != pair[1].started {
            assert!(pair[0].finished <= pair[1].started, "{:#?}", pair);
        }
    }
    // Each decision starts from the capacity the one before left.
    let mut desired: Option<u64> = None;
    let mut decided = 0;
    for invocation in &handled {
        let Some(result) = &invocation.result else { continue };
        if result["outcome"] != "decided" {
            continue;
        }
        decided += 1;
        let decision = &result["decision"];
        if let Some(previous) = desired {
            assert_eq!(
                decision["from"].as_u64(),
                Some(previous),
                "{}: {result:#}\n{handled:#?}",
                invocation.event
            );
        }
        let from = decision["from"].as_u64().expect("from");
        desired = Some(match &decision["action"] {
            serde_json::Value::Object(action) if action.contains_key("set_desired") => {
                action["set_desired"].as_u64().expect("n")
            }
            serde_json::Value::Object(action) if action.contains_key("set_limits") => {
                action["set_limits"]["desired"].as_u64().expect("n")
            }
            _ => from,
        });
    }
    assert!(decided >= 3, "{handled:#?}");
    let group = cloud.group("web").expect("group");
    assert_eq!(u64::from(group.desired), desired.expect("a decision"), "{handled:#?}");
    assert_eq!(group.min, 4);
    cloud.shutdown().await;
}

/// Scale from zero (issue 18), with the shipped `policies/scale-to-zero.toml`:
/// a group at 0 instances has no CPU and no per-target request count, only
/// the load balancer's 503s for want of a target (HTTPCode_ELB_503_Count),
/// which bring it back; CPU then grows it under load, and ten idle minutes
/// take it to 0 again. Real load through the load balancer, real alarms,
/// the real function. The backtest runs the same policy the same way
/// (`loadtest/tests/backtest.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_at_zero_comes_back_on_load_grows_and_returns_to_zero() {
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/scale-to-zero.toml"
    ))
    .expect("policies/scale-to-zero.toml");
    let cloud = Cloud::start(config(&policy, 4)).await.expect("start");
    let group = cloud.group("web").expect("group");
    assert_eq!((group.min, group.desired, group.instances.len()), (0, 0, 0));
    // Load: four clients in a loop on fibo(27) through the load balancer, bounded.
    let lb = cloud.lb_addr("web").expect("lb");
    let load = Load::start(lb, 4, Duration::from_secs(60));
    wait_for(&cloud, "back from zero", Duration::from_secs(30), |g| {
        in_service(g) >= 2
    })
    .await;
    assert!(
        load.refused.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the first requests found no target"
    );
    wait_for(&cloud, "grown under load", Duration::from_secs(30), |g| g.desired > 2).await;
    load.stop().await;
    wait_for(&cloud, "back to zero when idle", Duration::from_secs(60), |g| {
        g.desired == 0 && g.instances.iter().all(|i| i.state == State::Terminated)
    })
    .await;
    let group = cloud.group("web").expect("group");
    let changes: Vec<(u32, u32, &str)> = group
        .capacity_changes
        .iter()
        .map(|c| (c.from, c.to, c.cause.as_str()))
        .collect();
    assert!(
        changes
            .first()
            .is_some_and(|c| (c.0, c.1) == (0, 2) && c.2.contains("web-from-zero")),
        "{changes:#?}"
    );
    assert!(
        changes.iter().any(|c| c.1 > 2 && c.2.contains("web-cpu-high")),
        "{changes:#?}"
    );
    assert!(
        changes.last().is_some_and(|c| c.1 == 0 && c.2.contains("web-idle")),
        "{changes:#?}"
    );
    cloud.shutdown().await;
}

/// Shadow mode (issue 21): a second policy decides for the same group in
/// dry run, by its own function (`scaler-shadow`, `SCALER_DRY_RUN=1`) and
/// its own schedules; it explains what it would do and the group stays as
/// the deciding policy leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_policy_decides_in_dry_run_beside_the_deciding_one_and_changes_nothing() {
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(2);
    let minute = jiff::Timestamp::from_second((soon.as_second() / 60 + 1) * 60).expect("minute");
    let fire = minute.to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let deciding = "[[group]]\nname = \"web\"\nmin = 1\nmax = 4\n";
    let shadow_text = format!(
        "[[group]]\nname = \"web\"\nmin = 1\nmax = 4\n\n[[group.schedule]]\nname = \"web-shadow-evening\"\ncron = \"cron({} {} * * ? *)\"\ntimezone = \"UTC\"\nmin = 3\n",
        fire.minute(),
        fire.hour()
    );
    let mut config = config(deciding, 5);
    let shadow_file = config.log_dir.with_file_name("shadow.toml");
    std::fs::write(&shadow_file, &shadow_text).expect("shadow policy");
    config.shadow = Some(localcloud::ShadowPolicy {
        policy: Policy::parse("shadow", &shadow_text).expect("shadow policy"),
        policy_file: shadow_file,
    });
    let cloud = Cloud::start(config).await.expect("start");
    wait_for(&cloud, "one instance", Duration::from_secs(20), |g| in_service(g) == 1).await;
    let shadow = cloud.shadow().expect("the shadow function runs").clone();
    let invocation = localcloud::runtime::wait_for(&shadow, Duration::from_secs(20), |i| {
        i.group == "web" && i.event.starts_with("schedule web-shadow-evening")
    })
    .await
    .unwrap_or_else(|| panic!("no shadow invocation: {:#?}", cloud.status()));
    assert_eq!(invocation.function, localcloud::SHADOW_FUNCTION);
    let result = invocation.result.clone().unwrap_or_else(|| panic!("{invocation:#?}"));
    assert_eq!(result["outcome"], "decided", "{result:#}");
    assert_eq!(result["acted"], false, "dry run: {result:#}");
    let decision: functions::decide::Decision = serde_json::from_value(result["decision"].clone()).expect("decision");
    assert_eq!((decision.from, decision.desired_after()), (1, 3), "{result:#}");
    // The deciding function never saw the shadow's schedule, and the group
    // is as the deciding policy left it.
    let deciding = cloud.functions().expect("functions").invocations();
    assert!(
        deciding.iter().all(|i| !i.event.contains("web-shadow-evening")),
        "{deciding:#?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let group = cloud.group("web").expect("group");
    assert_eq!((group.min, group.desired), (1, 1));
    assert!(group.capacity_changes.is_empty(), "{:#?}", group.capacity_changes);
    assert!(
        cloud
            .events()
            .iter()
            .any(|e| e.function.as_deref() == Some(localcloud::SHADOW_FUNCTION))
    );
    cloud.shutdown().await;
}

/// The shadow decides for the deciding policy's groups, with alarms of its
/// own: CloudWatch alarm names are unique per account and region.
#[tokio::test]
async fn a_shadow_policy_for_another_group_or_reusing_an_alarm_name_is_refused_naming_it() {
    let mut other_group = config(ALARMED, 6);
    let text = ALARMED.replace("\"web\"", "\"api\"");
    other_group.shadow = Some(localcloud::ShadowPolicy {
        policy: Policy::parse("shadow", &text).expect("policy"),
        policy_file: "shadow.toml".into(),
    });
    let error = Cloud::start(other_group).await.expect_err("another group").to_string();
    assert!(
        error.contains("shadow (--shadow)") && error.contains("group api"),
        "{error}"
    );
    let mut same_alarm = config(ALARMED, 6);
    same_alarm.shadow = Some(localcloud::ShadowPolicy {
        policy: Policy::parse("shadow", ALARMED).expect("policy"),
        policy_file: "shadow.toml".into(),
    });
    let error = Cloud::start(same_alarm).await.expect_err("same alarm").to_string();
    assert!(
        error.contains("alarm web-cpu-high") && error.contains("unique per account and region"),
        "{error}"
    );
}

//! The whole decision path on one machine: the local cloud's scheduler and
//! alarms send EventBridge JSON through its Lambda Runtime API to the real
//! function binaries, which read and change the group through the control
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
        i.function == "schedule-scaler" && i.event.starts_with("schedule web-evening")
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
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
            let started = Instant::now();
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(40)
                && sent < 20_000
            {
                let uri: http::Uri = format!("http://{lb}/fibo/27").parse().expect("uri");
                if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(5), client.get(uri)).await {
                    use http_body_util::BodyExt;
                    let _ = response.into_body().collect().await;
                }
                sent += 1;
            }
        }));
    }
    let runtime = cloud.functions().expect("functions run").clone();
    let invocation = localcloud::runtime::wait_for(&runtime, Duration::from_secs(30), |i| {
        i.function == "alarm-scaler" && i.event.contains("web-cpu-high Ok -> Alarm")
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
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

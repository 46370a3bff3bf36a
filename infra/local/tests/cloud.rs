//! The local cloud with real `workload` processes: start at min behind the
//! load balancer, scale with AZ balance, protection and age, replace a killed
//! instance, refuse bad control calls, leave no orphans.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use functions::policy::Policy;
use localcloud::group::{ActivityStatus, State};
use localcloud::lb::{Algorithm, LbConfig, TargetHealth};
use localcloud::{Cloud, Config};

/// A /24 per test so parallel tests never share an address.
fn subnet(test: u8) -> [u8; 2] {
    [100 + (std::process::id() % 100) as u8, test * 16]
}

fn config(policy: &str, test: u8) -> Config {
    Config {
        policy: Policy::parse("test policy", policy).expect("policy"),
        speed: 60.0,
        start: None,
        boot: Duration::from_secs(60),
        health_grace: Duration::from_secs(60),
        azs: vec!["local-1a".into(), "local-1b".into()],
        subnet: subnet(test),
        instance_port: 8080,
        lb_port: 0,
        control_port: 0,
        lb: LbConfig {
            algorithm: Algorithm::RoundRobin,
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            deregistration_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ..LbConfig::default()
        },
        workload: support::workload_bin(),
        cpu_limit: 0.2,
        log_dir: std::env::temp_dir().join(format!("localcloud-test-{}-{test}", std::process::id())),
        drain_timeout: Duration::from_secs(5),
        ingestion_delay: functions::cloudwatch::INGESTION_DELAY,
        shadow: None,
        functions: None,
        policy_file: None,
    }
}

const WEB: &str = "[[group]]\nname = \"web\"\nmin = 2\nmax = 6\n";

/// One HTTP GET; (status, body).
async fn get(url: &str) -> Result<(u16, String), String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client.get(url.parse().map_err(|e| format!("{e}"))?),
    )
    .await
    .map_err(|_| "timeout".to_string())?
    .map_err(|e| format!("{e}"))?;
    let status = response.status().as_u16();
    use http_body_util::BodyExt;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One HTTP call with a JSON body to the control API.
async fn call(control: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{control}{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
        .expect("request");
    let response = client.request(request).await.expect("control API answers");
    let status = response.status().as_u16();
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON"))
}

fn in_service(group: &localcloud::group::Group) -> usize {
    group.instances.iter().filter(|i| i.state == State::InService).count()
}

/// Waits until every in-service instance is a healthy target.
async fn all_healthy(cloud: &Cloud, n: usize) -> localcloud::group::Group {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let group = cloud.group("web").expect("group");
        let healthy = group
            .instances
            .iter()
            .filter(|i| i.state == State::InService)
            .filter(|i| cloud.target_health("web", &i.id).expect("group") == Some(TargetHealth::Healthy))
            .count();
        if healthy == n && in_service(&group) == n && group.instances.iter().all(|i| i.state != State::Terminating) {
            return group;
        }
        assert!(
            Instant::now() < deadline,
            "not {n} healthy targets within 30 s: {group:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The private IP in the workload's answer.
/// The load balancer's series `name` by `dimensions`, within an hour of now.
fn alb_points(cloud: &Cloud, name: &str, dimensions: &[(&str, &str)]) -> Vec<(jiff::Timestamp, f64)> {
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    cloud.points(
        &localcloud::metrics::SeriesKey::new("AWS/ApplicationELB", name, dimensions),
        now - hour,
        now + hour,
    )
}

fn answered_by(body: &str) -> String {
    body.split("with private ip ")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_starts_at_min_and_serves_through_the_load_balancer() {
    let cloud = Cloud::start(config(WEB, 1)).await.expect("start");
    let started = Instant::now();
    let group = all_healthy(&cloud, 2).await;
    eprintln!("2 instances in service and healthy after {:?}", started.elapsed());
    // Not before the boot time (60 s at speed 60 = 1 s).
    assert!(started.elapsed() >= Duration::from_millis(900));
    let azs: BTreeSet<&str> = group.instances.iter().map(|i| i.az.as_str()).collect();
    assert_eq!(azs.len(), 2, "one per AZ: {group:#?}");
    assert!(
        group
            .instances
            .iter()
            .all(|i| i.launched_at <= i.in_service_at.expect("in service"))
    );
    let lb = cloud.lb_addr("web").expect("lb");
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        let (status, body) = get(&format!("http://{lb}/fibo/10")).await.expect("through the LB");
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("Fibo(10) = 89"), "{body}");
        seen.insert(answered_by(&body));
    }
    let ips: BTreeSet<String> = group.instances.iter().map(|i| i.ip.to_string()).collect();
    assert_eq!(seen, ips, "round robin reaches every instance");
    // The instance's admission times run at the cloud's speed (60x): a 2 s
    // queueing budget and a 1 s shed delay of cloud time.
    let (status, body) = get(&format!("http://{lb}/health")).await.expect("/health");
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("/health JSON");
    let budget_ms = health["compute"]["budget_ms"].as_f64().expect("compute.budget_ms");
    let shed_delay_ms = health["shed_delay_ms"].as_f64().expect("shed_delay_ms");
    assert!((budget_ms - 2000.0 / 60.0).abs() < 0.01, "{health}");
    assert!((shed_delay_ms - 1000.0 / 60.0).abs() < 0.01, "{health}");
    // The load balancer's metrics as AWS publishes them (ALB docs): the
    // requests per target by TargetGroup alone, only in minutes with
    // requests (3 cloud minutes pass here with none after these), no series
    // AWS does not have (per instance, or RequestCount by TargetGroup alone).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let series = |name: &str, dimensions: &[(&str, &str)]| alb_points(&cloud, name, dimensions);
    let per_target = series("RequestCountPerTarget", &[("TargetGroup", "web")]);
    assert!(
        !per_target.is_empty() && per_target.len() <= 2 && per_target.iter().all(|(_, v)| *v > 0.0),
        "one value a minute with requests, none without: {per_target:?}"
    );
    let instance = group.instances[0].id.clone();
    assert!(series("RequestCountPerTarget", &[("InstanceId", &instance)]).is_empty());
    assert!(series("RequestCount", &[("TargetGroup", "web")]).is_empty());
    assert!(!series("RequestCount", &[("LoadBalancer", "web"), ("TargetGroup", "web")]).is_empty());
    let launches = group
        .activities
        .iter()
        .filter(|a| a.description.starts_with("Launching"))
        .count();
    assert_eq!(launches, 2);
    assert!(group.activities.iter().all(|a| a.status == ActivityStatus::Successful));

    let addrs: Vec<String> = group.instances.iter().map(|i| format!("{}:8080", i.ip)).collect();
    cloud.shutdown().await;
    for addr in addrs {
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "{addr} still listening after shutdown"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_capacity_launches_balanced_and_terminates_by_az_then_age_never_protected() {
    let cloud = Cloud::start(config(WEB, 2)).await.expect("start");
    let control = cloud.control_addr().expect("control");
    all_healthy(&cloud, 2).await;
    let (status, body) = call(
        control,
        "PUT",
        "/groups/web/capacity",
        r#"{"desired": 5, "cause": "test: out"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["desired"], 5);
    let group = all_healthy(&cloud, 5).await;
    let per_az = |g: &localcloud::group::Group, az: &str| {
        g.instances
            .iter()
            .filter(|i| i.az == az && i.state == State::InService)
            .count()
    };
    assert_eq!(per_az(&group, "local-1a") + per_az(&group, "local-1b"), 5);
    assert!(per_az(&group, "local-1a").abs_diff(per_az(&group, "local-1b")) <= 1);
    // Protect the oldest instance; scale in to 2.
    let mut by_age: Vec<_> = group.instances.iter().filter(|i| i.state == State::InService).collect();
    by_age.sort_by_key(|i| (i.launched_at, i.id.clone()));
    let oldest = by_age[0].id.clone();
    let (status, body) = call(
        control,
        "PUT",
        &format!("/groups/web/instances/{oldest}/protection"),
        r#"{"protected": true}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        control,
        "PUT",
        "/groups/web/capacity",
        r#"{"desired": 2, "cause": "test: in"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let group = cloud
        .wait_for("web", Duration::from_secs(30), |g| {
            g.instances.iter().filter(|i| i.state == State::Terminated).count() == 3
        })
        .await
        .expect("three terminated");
    let kept: Vec<_> = group.instances.iter().filter(|i| i.state == State::InService).collect();
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().any(|i| i.id == oldest), "the protected instance stays");
    assert_ne!(kept[0].az, kept[1].az, "the two left are in different AZs: {kept:#?}");
    let terminations: Vec<_> = group
        .activities
        .iter()
        .filter(|a| a.description.starts_with("Terminating"))
        .collect();
    assert_eq!(terminations.len(), 3);
    assert!(
        terminations
            .iter()
            .all(|a| a.status == ActivityStatus::Successful && a.end.is_some())
    );
    assert!(
        terminations[0].cause.contains("shrinking the capacity from 5 to 2"),
        "{}",
        terminations[0].cause
    );
    // The functions' view: two capacity changes with their causes.
    let (status, body) = call(control, "GET", "/groups/web/activities", "").await;
    assert_eq!(status, 200);
    let causes: Vec<&str> = body
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["cause"].as_str())
        .collect();
    assert_eq!(causes, ["test: out", "test: in"]);
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_is_replaced_and_the_load_balancer_stops_routing_to_it() {
    let cloud = Cloud::start(config(WEB, 3)).await.expect("start");
    let control = cloud.control_addr().expect("control");
    let group = all_healthy(&cloud, 2).await;
    let victim = group.instances[0].id.clone();
    let (status, body) = call(
        control,
        "POST",
        "/faults/kill",
        &format!(r#"{{"instance": "{victim}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let killed_at = Instant::now();
    // Requests keep succeeding meanwhile (a failed connection is retried on the other instance).
    let lb = cloud.lb_addr("web").expect("lb");
    let mut failed = 0;
    let mut out_of_rotation = None;
    while killed_at.elapsed() < Duration::from_secs(20) {
        match get(&format!("http://{lb}/fibo/5")).await {
            Ok((200, _)) => {}
            other => {
                failed += 1;
                eprintln!("failed: {other:?}");
            }
        }
        if out_of_rotation.is_none()
            && cloud.target_health("web", &victim).expect("group") != Some(TargetHealth::Healthy)
        {
            out_of_rotation = Some(killed_at.elapsed());
        }
        let g = cloud.group("web").expect("group");
        let replaced = g.instance(&victim).is_some_and(|i| i.state == State::Terminated) && in_service(&g) == 2;
        if replaced && out_of_rotation.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = out_of_rotation.expect("taken out of rotation");
    // Two health intervals (200 ms) plus a controller pass.
    assert!(out <= Duration::from_millis(600), "out of rotation after {out:?}");
    assert_eq!(failed, 0, "no request failed");
    let group = all_healthy(&cloud, 2).await;
    let termination = group
        .activities
        .iter()
        .find(|a| a.instance == victim && a.description.starts_with("Terminating"))
        .expect("termination recorded");
    assert!(
        termination.cause.contains("in response to a health check"),
        "{}",
        termination.cause
    );
    assert!(termination.cause.contains("exited"), "{}", termination.cause);
    eprintln!(
        "out of rotation after {out:?}, replaced within {:?}",
        killed_at.elapsed()
    );
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_calls_name_the_problem_and_change_nothing() {
    let cloud = Cloud::start(config(WEB, 4)).await.expect("start");
    let control = cloud.control_addr().expect("control");
    for (method, path, body, status, expected) in [
        (
            "PUT",
            "/groups/web/capacity",
            r#"{"desired": 7}"#,
            400,
            "desired 7 is outside min..=max (2..=6)",
        ),
        (
            "PUT",
            "/groups/web/capacity",
            r#"{"desired": 3, "min": 5, "max": 4}"#,
            400,
            "min 5 is above max 4",
        ),
        (
            "PUT",
            "/groups/web/capacity",
            r#"{"desired": "three"}"#,
            400,
            "body field desired",
        ),
        (
            "PUT",
            "/groups/web/capacity",
            r#"{"desired": 3, "extra": 1}"#,
            400,
            "unknown field `extra`",
        ),
        (
            "PUT",
            "/groups/db/capacity",
            r#"{"desired": 3}"#,
            404,
            "no group \"db\" (groups: web)",
        ),
        (
            "POST",
            "/faults/kill",
            r#"{"instance": "i-nope"}"#,
            404,
            "no running instance i-nope",
        ),
        (
            "POST",
            "/faults/stop-az",
            r#"{"az": "mars-1a"}"#,
            404,
            "zones: local-1a, local-1b",
        ),
        (
            "GET",
            "/groups/web/activities?since=yesterday",
            "",
            400,
            "since=\"yesterday\"",
        ),
        // Issue 25.7: one JSON value and nothing after it.
        (
            "PUT",
            "/groups/web/capacity",
            r#"{"desired":3} garbage"#,
            400,
            "only one JSON value is allowed",
        ),
        // Issue 25.7: a statistic CloudWatch does not have is refused, not answered `null`.
        (
            "POST",
            "/metrics/latest",
            r#"{"metric": {"namespace": "AWS/EC2", "name": "CPUUtilization", "stat": "p101"}, "until": "2026-11-20T11:00:00Z"}"#,
            400,
            "\"p101\" is not one of Average, Sum, Minimum, Maximum, SampleCount or pNN",
        ),
        // Issue 25.1: max is bounded by what one group's subnet holds.
        (
            "PUT",
            "/groups/web/capacity",
            r#"{"desired": 3, "max": 255}"#,
            400,
            "max 255 is above the 254 instances one group's subnet holds",
        ),
        ("DELETE", "/groups/web", "", 405, "DELETE is not allowed"),
        ("GET", "/nope", "", 404, "routes: GET /status"),
    ] {
        let (got, reply) = call(control, method, path, body).await;
        assert_eq!(got, status, "{method} {path} {body}: {reply}");
        let message = reply["error"].as_str().expect("error message");
        assert!(message.contains(expected), "{method} {path} {body}: {message}");
    }
    let group = cloud.group("web").expect("group");
    assert_eq!((group.min, group.max, group.desired), (2, 6, 2));
    assert!(group.capacity_changes.is_empty());
    cloud.shutdown().await;
}

/// One raw HTTP exchange: the status line and the body.
async fn raw(control: SocketAddr, parts: &[&[u8]]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(control).await.expect("connect");
    for part in parts {
        stream.write_all(part).await.expect("write");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 5 s")
        .expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// Issue 25.7: requests hyper itself refused (a head it cannot parse) got
/// empty bodies; the control API answers every refusal as `{"error","kind"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_answers_malformed_heads_in_its_own_format() {
    let cloud = Cloud::start(config(WEB, 5)).await.expect("start");
    let control = cloud.control_addr().expect("control");
    let huge = format!("GET /status HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    for (request, status, expected) in [
        (
            "GARBAGE\r\n\r\n".to_string(),
            "HTTP/1.1 400 Bad Request",
            "malformed request head",
        ),
        (
            "GET /status HTTP/3.0\r\n\r\n".to_string(),
            "HTTP/1.1 505 HTTP Version Not Supported",
            "HTTP version",
        ),
        (
            huge,
            "HTTP/1.1 431 Request Header Fields Too Large",
            "request head over 64 KiB",
        ),
        (
            "PUT /groups/web/capacity HTTP/1.1\r\nContent-Length: 1x\r\n\r\n".to_string(),
            "HTTP/1.1 400 Bad Request",
            "content-length \"1x\": must be one number",
        ),
        (
            "PUT /groups/web/capacity HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
            "HTTP/1.1 400 Bad Request",
            "content-length and transfer-encoding together",
        ),
    ] {
        let (line, body) = raw(control, &[request.as_bytes()]).await;
        assert_eq!(line, status, "{body}");
        let reply: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
        assert_eq!(reply["kind"], "invalid", "{reply}");
        assert!(reply["error"].as_str().expect("error").contains(expected), "{reply}");
    }
    // A good request whose head and body arrive apart is served as before.
    let body = r#"{"desired": 3, "cause": "raw"}"#;
    let head = format!(
        "PUT /groups/web/capacity HTTP/1.1\r\nHost: c\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (line, reply) = raw(control, &[head.as_bytes(), body.as_bytes()]).await;
    assert_eq!(line, "HTTP/1.1 200 OK", "{reply}");
    assert_eq!(cloud.group("web").expect("group").desired, 3);
    cloud.shutdown().await;
}

/// Saturation-aware demand (issue 22): an instance that sheds (answers 503
/// over its queueing budget) makes the load balancer count
/// `HTTPCode_Target_5XX_Count` beside `RequestCount`, by `LoadBalancer` as
/// the ALB publishes them, and the group's `cpu_demand` history is its CPU
/// times requests over those served, above the 100% CPU stops at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_sheds_reports_cpu_demand_above_its_cpu() {
    let policy = "[[group]]\nname = \"web\"\nmin = 1\nmax = 1\n[[group.target_tracking]]\nmetric = \"cpu_demand\"\ntarget = 50\n";
    let cloud = Cloud::start(config(policy, 6)).await.expect("start");
    let group = all_healthy(&cloud, 1).await;
    let lb = cloud.lb_addr("web").expect("lb");
    // 32 closed-loop clients on fibo(27) for 5 s against 0.2 cores: far
    // more than a 2 s (cloud) queueing budget holds.
    let deadline = Instant::now() + Duration::from_secs(5);
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let url = format!("http://{lb}/fibo/27");
            tokio::spawn(async move {
                let (mut ok, mut shed) = (0u32, 0u32);
                while Instant::now() < deadline {
                    match get(&url).await {
                        Ok((200, _)) => ok += 1,
                        Ok((503, _)) => shed += 1,
                        _ => {}
                    }
                }
                (ok, shed)
            })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for client in clients {
        let (o, s) = client.await.expect("client");
        ok += o;
        shed += s;
    }
    eprintln!("served {ok}, shed {shed}");
    assert!(
        ok > 0 && shed > ok,
        "the instance must shed most of the load: served {ok}, shed {shed}"
    );
    // The newest minutes reach "CloudWatch" after the ingestion delay.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let series = |name: &str, dimensions: &[(&str, &str)]| alb_points(&cloud, name, dimensions);
    let errors = series("HTTPCode_Target_5XX_Count", &[("LoadBalancer", "web")]);
    let requests = series("RequestCount", &[("LoadBalancer", "web")]);
    assert!(!errors.is_empty() && !requests.is_empty(), "{errors:?} {requests:?}");
    assert!(
        !series(
            "HTTPCode_Target_5XX_Count",
            &[("LoadBalancer", "web"), ("TargetGroup", "web")]
        )
        .is_empty()
    );
    let now = cloud.clock().now();
    let history = cloud
        .metric_history("web", now - jiff::SignedDuration::from_hours(1), now)
        .expect("history");
    let id = &group.instances[0].id;
    let demand = &history.metrics["cpu_demand"][id];
    let cpu = cloud.points(
        &localcloud::metrics::SeriesKey::new("AWS/EC2", "CPUUtilization", &[("InstanceId", id)]),
        now - jiff::SignedDuration::from_hours(1),
        now,
    );
    assert_eq!(demand.len(), cpu.len(), "one demand datapoint per CPU datapoint");
    let peak = demand.iter().map(|d| d.value).fold(0.0, f64::max);
    assert!(
        peak > 150.0,
        "demand while shedding most requests: {demand:?} (CPU {cpu:?})"
    );
    for (point, (at, value)) in demand.iter().zip(&cpu) {
        assert_eq!(point.at, *at);
        assert!(
            point.value >= *value - 1e-9,
            "demand is never below CPU: {point:?} vs {value}"
        );
    }
    // GetMetricData answers whatever a reader asks, not only what the
    // deciding policy tracks: a shadow policy tracking plain CPU and
    // requests per target reads them too (the functions' local adapter
    // names its policy's metrics).
    let control = cloud.control_addr().expect("control API");
    let since = now - jiff::SignedDuration::from_hours(1);
    let body = serde_json::json!({ "since": since, "until": now, "metrics": ["cpu", "request_count_per_target"] });
    let (status, answer) = call(control, "POST", "/groups/web/metrics", &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let read: Vec<f64> = answer["cpu"][id]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .filter_map(|d| d["value"].as_f64())
        .collect();
    assert_eq!(read, cpu.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    assert!(answer["request_count_per_target"].is_object(), "{answer}");
    let bad = serde_json::json!({ "since": since, "until": now, "metrics": ["memory"] });
    let (status, answer) = call(control, "POST", "/groups/web/metrics", &bad.to_string()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("allowed: cpu, cpu_demand"),
        "{answer}"
    );
    // Predictive scaling's load, as GetMetricData's hourly Sums: the
    // group's CPU by AutoScalingGroupName (a sample per instance and
    // minute) and its load balancer's counts, summed by the hour.
    let window = serde_json::json!({ "since": since, "until": now });
    let (status, answer) = call(control, "POST", "/groups/web/hourly-sums", &window.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let sums: scaling::predictive::HourlySums = serde_json::from_value(answer).expect("hourly sums");
    let group_cpu = cloud.points(
        &localcloud::metrics::SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", "web")]),
        since,
        now,
    );
    assert_eq!(sums.cpu, scaling::predictive::hourly_sums(group_cpu));
    let routed = cloud.points(
        &localcloud::metrics::SeriesKey::new("AWS/ApplicationELB", "RequestCount", &[("LoadBalancer", "web")]),
        since,
        now,
    );
    assert_eq!(sums.requests, scaling::predictive::hourly_sums(routed));
    assert!(!sums.cpu.is_empty() && !sums.shed.is_empty(), "{sums:?}");
    let (status, answer) = call(control, "POST", "/groups/nope/hourly-sums", &window.to_string()).await;
    assert_eq!(status, 404, "{answer}");
    cloud.shutdown().await;
}

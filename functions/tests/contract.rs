//! The port contract (`functions::contract`) against the in-memory cloud
//! and, through the AWS adapter, moto; the local cloud runs it in
//! infra/local/tests.

use functions::contract::{group_port_contract, start_moto};
use functions::decide::{Instance, Lifecycle, Observation};
use functions::memory::MemoryCloud;
use functions::ports::GroupPort;
use jiff::Timestamp;

#[tokio::test]
async fn memory_cloud_meets_the_group_contract() {
    let since: Timestamp = "2026-11-20T00:00:00Z".parse().expect("since");
    let cloud = MemoryCloud::new("2026-11-20T11:00:00Z".parse().expect("now"));
    let instances = (0..2)
        .map(|i| Instance {
            id: format!("i-{i}"),
            lifecycle: Lifecycle::InService,
            launched_at: since,
            protected: i == 0,
        })
        .collect();
    cloud.put_group(
        "contract",
        Observation {
            min: 1,
            max: 5,
            desired: 2,
            instances,
        },
    );
    group_port_contract(&cloud, "contract", since).await;
    // The protected instance survived every scale-in.
    let observed = cloud.group("contract").expect("group");
    assert!(observed.instances.iter().any(|i| i.id == "i-0"));
}

#[tokio::test]
async fn aws_adapter_meets_the_group_contract_against_moto() {
    let Some(moto) = start_moto() else { return };
    moto.create_group("contract", 1, 5, 2).await;
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
    group_port_contract(&functions::aws::AwsGroups::new(moto.autoscaling()), "contract", since).await;
}

/// Forwards one SDK request to moto (HTTP/1.1, `Connection: close`) and
/// records its `Action`, so a test can count the calls an adapter makes.
fn forward(
    port: u16,
    request: &http::Request<aws_smithy_types::body::SdkBody>,
    seen: &std::sync::Mutex<Vec<String>>,
) -> http::Response<Vec<u8>> {
    use std::io::{Read, Write};
    let body = request.body().bytes().unwrap_or_default().to_vec();
    let text = String::from_utf8_lossy(&body);
    let action = text
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("?")
        .to_string();
    seen.lock().expect("seen").push(action);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("moto");
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n", request.method());
    for (name, value) in request.headers() {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(&body).expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut response = http::Response::builder().status(status);
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && !name.eq_ignore_ascii_case("transfer-encoding")
        {
            response = response.header(name.trim(), value.trim());
        }
    }
    response.body(answer[split..].to_vec()).expect("response")
}

/// Issue 19: a decision reads the group once. A scheduled action on the
/// AWS adapter was 7 calls (DescribeAutoScalingGroups 3 times,
/// DescribeScalingActivities twice); now one of each, the change and the
/// cause tag.
#[tokio::test]
async fn a_decision_costs_one_read_of_the_group_on_aws() {
    use aws_sdk_autoscaling::config::retry::RetryConfig;
    use aws_sdk_autoscaling::config::{BehaviorVersion, Credentials, Region};
    use std::sync::{Arc, Mutex};

    let Some(moto) = start_moto() else { return };
    moto.create_group("web", 2, 10, 2).await;
    let port: u16 = moto
        .endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let http =
        aws_smithy_http_client::test_util::infallible_client_fn(move |request| forward(port, &request, &recorded));
    let config = aws_sdk_autoscaling::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .retry_config(RetryConfig::disabled())
        .http_client(http)
        .build();
    let policy = functions::policy::Policy::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/two-tier.toml"
    )))
    .expect("policy");
    let handler = functions::handler::Handler {
        policy,
        group: functions::aws::AwsGroups::new(aws_sdk_autoscaling::Client::from_conf(config)),
        metrics: MemoryCloud::new("2026-11-20T03:00:01Z".parse().expect("now")),
        dry_run: false,
    };
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/events/schedule-lunch-scale-out.json"
        ))
        .expect("fixture"),
    )
    .expect("event");
    let outcome = handler
        .handle(&event, "2026-11-20T03:00:01Z".parse().expect("now"))
        .await
        .expect("handled");
    assert!(
        matches!(&outcome, functions::handler::Outcome::Decided { acted: true, .. }),
        "{outcome:?}"
    );
    let calls = seen.lock().expect("seen").clone();
    let observed = handler.group.describe("web").await.expect("describe");
    assert_eq!((observed.min, observed.desired), (4, 4), "the lunch schedule's min 4");
    assert_eq!(
        calls,
        [
            "DescribeAutoScalingGroups",
            "DescribeScalingActivities",
            "UpdateAutoScalingGroup",
            "CreateOrUpdateTags"
        ],
        "{calls:?}"
    );
}

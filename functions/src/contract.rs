//! The port contract: what every adapter of [`GroupPort`] must do, as one
//! check each adapter's tests call (the in-memory cloud and moto in
//! `functions/tests/contract.rs`, the local cloud in `infra/local/tests`).
//! It panics with the failed expectation, like a test. Also the `moto_server`
//! the AWS adapter's tests run against.

use jiff::Timestamp;

use crate::ports::{GroupPort, PortErrorKind};

/// Checks one adapter whose group `name` exists with min 1, max 5, desired 2.
#[allow(clippy::missing_panics_doc)]
pub async fn group_port_contract(port: &(impl GroupPort + Sync), name: &str, since: Timestamp) {
    let observed = port.describe(name).await.expect("describe");
    assert_eq!((observed.min, observed.max, observed.desired), (1, 5, 2));
    // observe() is describe() and activities() in one read (the limits and
    // the changes: a live cloud's instances move between two reads).
    let (once, activities) = port.observe(name, since).await.expect("observe");
    assert_eq!(
        (once.min, once.max, once.desired),
        (observed.min, observed.max, observed.desired)
    );
    let changes = |list: &[crate::decide::Activity]| -> Vec<(u32, u32, String)> {
        list.iter().map(|a| (a.from, a.to, a.cause.clone())).collect()
    };
    assert_eq!(
        changes(&activities),
        changes(&port.activities(name, since).await.expect("activities"))
    );
    // Acting on what was just observed: the same rules as set_desired.
    port.set_desired_observed(name, &observed, 3, "contract: observed 3")
        .await
        .expect("set desired observed");
    assert_eq!(port.describe(name).await.expect("describe").desired, 3);
    let error = port
        .set_desired_observed(name, &observed, 6, "contract: observed too many")
        .await
        .expect_err("above the observed max");
    assert_eq!(error.kind, PortErrorKind::Invalid);

    port.set_desired(name, 4, "contract: out to 4")
        .await
        .expect("set desired");
    assert_eq!(port.describe(name).await.expect("describe").desired, 4);
    let activities = port.activities(name, since).await.expect("activities");
    assert!(
        activities
            .iter()
            .any(|a| a.cause == "contract: out to 4" && a.from == 3 && a.to == 4),
        "{activities:#?}"
    );

    // Outside min..=max: refused, not retryable, nothing changed.
    let error = port
        .set_desired(name, 6, "contract: too many")
        .await
        .expect_err("above max");
    assert_eq!(error.kind, PortErrorKind::Invalid);
    assert!(!error.retryable);
    assert!(error.to_string().contains("outside min..=max (1..=5)"), "{error}");
    assert_eq!(port.describe(name).await.expect("describe").desired, 4);

    port.set_limits(name, 2, 8, 6, "contract: limits")
        .await
        .expect("set limits");
    let observed = port.describe(name).await.expect("describe");
    assert_eq!((observed.min, observed.max, observed.desired), (2, 8, 6));
    let error = port
        .set_limits(name, 3, 8, 9, "contract: bad limits")
        .await
        .expect_err("desired above max");
    assert_eq!(error.kind, PortErrorKind::Invalid);
    let observed = port.describe(name).await.expect("describe");
    assert_eq!(
        (observed.min, observed.max, observed.desired),
        (2, 8, 6),
        "nothing half-applied"
    );

    let error = port.describe("no-such-group").await.expect_err("unknown");
    assert_eq!(error.kind, PortErrorKind::NotFound);
    let error = port.set_desired("no-such-group", 1, "x").await.expect_err("unknown");
    assert_eq!(error.kind, PortErrorKind::NotFound);
}

/// A `moto_server` on a free loopback port, stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    child: std::process::Child,
    /// e.g. `http://127.0.0.1:5000`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto (`MOTO_SERVER` or `moto_server` on the PATH). Outside CI a
/// missing moto skips with a printed reason; in CI (`CI=true`) it fails.
#[allow(clippy::missing_panics_doc)]
pub fn start_moto() -> Option<Moto> {
    let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port();
    let child = match std::process::Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true but moto_server could not start ({program}: {error}); .ci/run installs it"
            );
            eprintln!(
                "SKIPPED: moto_server not available ({program}: {error}); `pip install 'moto[server]'` to run this test"
            );
            return None;
        }
    };
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // Ready when it answers HTTP, not merely when it listens (a request in
    // between failed once with several test servers starting at once).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !answers_http(port) {
        assert!(
            std::time::Instant::now() < deadline,
            "moto_server did not answer HTTP within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some(moto)
}

/// Whether something on `port` answers an HTTP request.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    if stream
        .write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

impl Moto {
    /// An Auto Scaling client for this moto: test credentials, us-east-1, and
    /// no retries (moto answers 500 for unknown names; a retry waits for nothing).
    pub fn autoscaling(&self) -> aws_sdk_autoscaling::Client {
        use aws_sdk_autoscaling::config::retry::RetryConfig;
        use aws_sdk_autoscaling::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_autoscaling::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_autoscaling::Client::from_conf(config)
    }

    /// A CloudWatch client for this moto, set up like [`Moto::autoscaling`]
    /// (the SDK speaks rpcv2Cbor, which moto does not: its calls fail).
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        use aws_sdk_cloudwatch::config::retry::RetryConfig;
        use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    /// A launch configuration and a group `name` (one zone) with these sizes.
    pub async fn create_group(&self, name: &str, min: i32, max: i32, desired: i32) {
        let client = self.autoscaling();
        client
            .create_launch_configuration()
            .launch_configuration_name(format!("{name}-lc"))
            .image_id("ami-12c6146b")
            .instance_type("t2.micro")
            .send()
            .await
            .expect("launch configuration");
        client
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_configuration_name(format!("{name}-lc"))
            .availability_zones("us-east-1a")
            .min_size(min)
            .max_size(max)
            .desired_capacity(desired)
            .send()
            .await
            .expect("group");
    }
}

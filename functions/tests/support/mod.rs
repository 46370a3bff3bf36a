//! Helpers shared by the test crates: the shipped policy, the sample events,
//! and a minimal Lambda Runtime API.

#![allow(dead_code)]

pub mod runtime_api;

use std::path::PathBuf;

use functions::policy::{GroupPolicy, Policy};

/// A path relative to the functions crate.
pub fn crate_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The shipped two-tier policy (policies/two-tier.toml).
pub fn two_tier() -> Policy {
    Policy::load(&crate_path("../policies/two-tier.toml")).expect("the shipped policy loads")
}

/// A shipped policy, by file name under policies/.
pub fn shipped(file: &str) -> Policy {
    Policy::load(&crate_path(&format!("../policies/{file}"))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// One group of the shipped two-tier policy.
pub fn two_tier_group(name: &str) -> GroupPolicy {
    two_tier()
        .group(name)
        .unwrap_or_else(|| panic!("no group {name}"))
        .clone()
}

/// A sample event from tests/fixtures/events.
pub fn event_text(name: &str) -> String {
    let path = crate_path("tests/fixtures/events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A decision's reason and rules, each followed by its code in brackets
/// (`"already at 10 [clamped] | clamped to max 10 [clamped]"`), for the
/// named cases to match fragments and codes together (issue 19).
pub fn with_codes(decision: &functions::decide::Decision) -> String {
    let rules: Vec<String> = decision
        .rules
        .iter()
        .map(|r| format!("{} [{}]", r.text, r.code))
        .collect();
    format!("{} [{}] | {}", decision.reason, decision.code, rules.join(" | "))
}

/// An rpcv2Cbor answer as CloudWatch sends one.
pub fn cbor_response(body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(200)
        .header("smithy-protocol", "rpc-v2-cbor")
        .header("content-type", "application/cbor")
        .body(body)
        .expect("response")
}

/// A GetMetricData answer: per query id, (seconds, value) datapoints,
/// given oldest first and sent newest first, as CloudWatch sends them.
pub fn metric_data_answer(series: &[(&str, &[(i64, f64)])]) -> Vec<u8> {
    use aws_smithy_cbor::Encoder;
    use aws_smithy_types::DateTime;
    let mut e = Encoder::new(Vec::new());
    e.map(1).str("MetricDataResults").array(series.len());
    for (id, points) in series {
        e.map(4).str("Id").str(id).str("StatusCode").str("Complete");
        e.str("Timestamps").array(points.len());
        for (at, _) in points.iter().rev() {
            e.timestamp(&DateTime::from_secs(*at));
        }
        e.str("Values").array(points.len());
        for (_, value) in points.iter().rev() {
            e.double(*value);
        }
    }
    e.into_writer()
}

/// A CloudWatch client answered by `answer(path, request body)`: a CBOR
/// document, or None for a 400 (moto does not speak rpcv2Cbor).
pub fn recorded_cloudwatch(
    answer: impl Fn(&str, &[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> aws_sdk_cloudwatch::Client {
    use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
    let http = aws_smithy_http_client::test_util::infallible_client_fn(
        move |request: http::Request<aws_smithy_types::body::SdkBody>| {
            let body = request.body().bytes().unwrap_or_default().to_vec();
            match answer(request.uri().path(), &body) {
                Some(document) => cbor_response(document),
                None => http::Response::builder()
                    .status(400)
                    .body(Vec::new())
                    .expect("response"),
            }
        },
    );
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "recorded"))
        .http_client(http)
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

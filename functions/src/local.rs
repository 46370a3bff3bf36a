//! The local cloud adapter: the group and metrics ports over the local
//! cloud's control API (JSON over HTTP on loopback; see
//! `infra/local/src/control.rs`). The function binaries use it when
//! `SCALER_LOCAL_CLOUD` names the control API.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::decide::{Activity, AlarmStatus, Datapoint, MetricHistory, Observation};
use crate::policy::{GroupPolicy, MetricSpec, TrackedMetric};
use crate::ports::{GroupPort, MetricsPort, PortError};

/// The control API of a local cloud.
#[derive(Debug, Clone)]
pub struct LocalCloud {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Longest a control call may take.
const TIMEOUT: Duration = Duration::from_secs(10);

impl LocalCloud {
    /// `control` is `HOST:PORT` or `http://HOST:PORT`.
    pub fn new(control: &str) -> Self {
        let base = if control.starts_with("http://") {
            control.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", control.trim_end_matches('/'))
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Self { base, client }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        operation: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, PortError> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
            .map_err(|e| PortError::invalid(operation, e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                PortError::unavailable(
                    operation,
                    format!("the local cloud at {} did not answer within {TIMEOUT:?}", self.base),
                )
            })?
            .map_err(|e| PortError::unavailable(operation, format!("the local cloud at {}: {e}", self.base)))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| PortError::unavailable(operation, e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(match status.as_u16() {
                404 => PortError::not_found(operation, message),
                400 | 405 | 413 => PortError::invalid(operation, message),
                _ => PortError::unavailable(operation, format!("{status}: {message}")),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| PortError::unavailable(operation, format!("unexpected answer: {e}")))
    }
}

impl GroupPort for LocalCloud {
    async fn describe(&self, group: &str) -> Result<Observation, PortError> {
        self.call(
            &format!("DescribeAutoScalingGroups {group}"),
            "GET",
            &format!("/groups/{group}"),
            None,
        )
        .await
    }

    async fn activities(&self, group: &str, since: Timestamp) -> Result<Vec<Activity>, PortError> {
        self.call(
            &format!("DescribeScalingActivities {group}"),
            "GET",
            &format!("/groups/{group}/activities?since={since}"),
            None,
        )
        .await
    }

    async fn set_desired(&self, group: &str, desired: u32, cause: &str) -> Result<(), PortError> {
        let _: Value = self
            .call(
                &format!("SetDesiredCapacity {group}"),
                "PUT",
                &format!("/groups/{group}/capacity"),
                Some(json!({ "desired": desired, "cause": cause })),
            )
            .await?;
        Ok(())
    }

    async fn set_limits(&self, group: &str, min: u32, max: u32, desired: u32, cause: &str) -> Result<(), PortError> {
        let _: Value = self
            .call(
                &format!("UpdateAutoScalingGroup {group}"),
                "PUT",
                &format!("/groups/{group}/capacity"),
                Some(json!({ "min": min, "max": max, "desired": desired, "cause": cause })),
            )
            .await?;
        Ok(())
    }
}

impl MetricsPort for LocalCloud {
    async fn history(
        &self,
        group: &GroupPolicy,
        instances: &[String],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<MetricHistory, PortError> {
        // The metrics this function's policy tracks, as GetMetricData asks
        // for them: the cloud answers any reader (a shadow policy's too).
        let tracked: Vec<_> = group.target_tracking.iter().map(|t| &t.metric).collect();
        let body = serde_json::json!({ "since": since, "until": until, "metrics": tracked });
        let mut history: MetricHistory = self
            .call(
                &format!("GetMetricData {}", group.name),
                "POST",
                &format!("/groups/{}/metrics", group.name),
                Some(body),
            )
            .await?;
        for series in history.metrics.values_mut() {
            series.retain(|id, _| instances.contains(id));
        }
        Ok(history)
    }

    async fn load(
        &self,
        group: &GroupPolicy,
        metric: &TrackedMetric,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Datapoint>, PortError> {
        // The hourly Sums, as GetMetricData at a 3600 s period answers them.
        let sums: scaling::predictive::HourlySums = self
            .call(
                &format!("GetMetricData {} hourly", group.name),
                "POST",
                &format!("/groups/{}/hourly-sums", group.name),
                Some(json!({ "since": since, "until": until })),
            )
            .await?;
        Ok(scaling::predictive::hourly_load(metric, &sums))
    }

    async fn latest(&self, metric: &MetricSpec, until: Timestamp) -> Result<Option<f64>, PortError> {
        let answer: Value = self
            .call(
                &format!("GetMetricData {}/{}", metric.namespace, metric.name),
                "POST",
                "/metrics/latest",
                Some(json!({ "metric": metric, "until": until })),
            )
            .await?;
        Ok(answer["value"].as_f64())
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmStatus>, PortError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.call(
            "DescribeAlarms",
            "GET",
            &format!("/alarms?names={}", names.join(",")),
            None,
        )
        .await
    }
}

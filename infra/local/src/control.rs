//! The control API: the group API the functions' local adapter calls, the
//! status view, and fault injection. JSON over HTTP/1.1 on 127.0.0.1.
//!
//! | method and path                              | body                                  |
//! |----------------------------------------------|---------------------------------------|
//! | GET  /status                                 |                                       |
//! | GET  /groups/{group}                         | (the group as the functions see it)   |
//! | GET  /groups/{group}/activities?since=TIME   |                                       |
//! | PUT  /groups/{group}/capacity                | {"desired", "cause", ["min", "max"]}  |
//! | PUT  /groups/{group}/instances/{id}/protection | {"protected": bool}                 |
//! | POST /faults/kill                            | {"instance"}                          |
//! | POST /faults/unhealthy                       | {"instance"}                          |
//! | POST /faults/stop-az, /faults/restore-az     | {"az"}                                |
//! | GET  /groups/{group}/metrics?since=&until=   | (tracked metrics per instance)        |
//! | POST /metrics/latest                         | {"metric": {namespace, name, stat, dimensions}, "until"} |
//! | GET  /alarms?names=a,b                       |                                       |
//!
//! Errors are `{"error": message, "kind": "not_found" | "invalid"}` with 404 or 400.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::cloud::Cloud;
use crate::error::{Error, Result};

/// Serves the control API on its (loopback) listener in the background.
pub(crate) fn serve(cloud: Cloud, listener: TcpListener) {
    let task_cloud = cloud.clone();
    // Every refusal in the API's own format, hyper's included (a head it
    // cannot parse): each request gets its own connection and its head is
    // checked before hyper reads it.
    let heads = crate::server::Heads::Checked(|_, message| json!({ "error": message, "kind": "invalid" }).to_string());
    let task = crate::server::serve(
        listener,
        crate::server::Limits::INTERNAL,
        heads,
        Arc::default(),
        move |_| {
            let cloud = task_cloud.clone();
            move |request| {
                let cloud = cloud.clone();
                async move { route(&cloud, request).await }
            }
        },
    );
    cloud.push_task("control API", task);
}

/// A refused request: status and message.
struct Refusal(StatusCode, String, &'static str);

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        match error {
            Error::NoSuchGroup { .. } | Error::NoSuchInstance(_) | Error::NoSuchAz { .. } => {
                Self(StatusCode::NOT_FOUND, error.to_string(), "not_found")
            }
            Error::Group {
                source: crate::group::GroupError::NoSuchInstance(_),
                ..
            } => Self(StatusCode::NOT_FOUND, error.to_string(), "not_found"),
            other => Self(StatusCode::BAD_REQUEST, other.to_string(), "invalid"),
        }
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into(), "invalid")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Capacity {
    desired: u32,
    #[serde(default)]
    cause: String,
    min: Option<u32>,
    max: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Protection {
    protected: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceRef {
    instance: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AzRef {
    az: String,
}

async fn route(cloud: &Cloud, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match crate::server::read_body(body, 64 * 1024, "64 KiB").await {
        Ok(body) => body,
        Err(error) => return reply(error.status(), &json!({"error": error.to_string(), "kind": "invalid"})),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = handle(cloud, &parts.method, &segments, &query, &body);
    match result {
        Ok(value) => reply(StatusCode::OK, &value),
        Err(Refusal(status, message, kind)) => reply(status, &json!({ "error": message, "kind": kind })),
    }
}

fn handle(cloud: &Cloud, method: &Method, segments: &[&str], query: &str, body: &Bytes) -> Result<Value, Refusal> {
    match (method, segments) {
        (&Method::GET, ["status"]) => to_value(&cloud.status()),
        (&Method::GET, ["groups", group]) => to_value(&cloud.group(group)?.observation()),
        (&Method::GET, ["groups", group, "activities"]) => {
            let since = since(query)?;
            let changes: Vec<_> = cloud
                .group(group)?
                .capacity_changes
                .into_iter()
                .filter(|a| a.start >= since)
                .collect();
            to_value(&changes)
        }
        (&Method::GET, ["groups", group, "metrics"]) => {
            let since = time_param(query, "since", "1970-01-01T00:00:00Z")?;
            let until = time_param(query, "until", "9999-01-01T00:00:00Z")?;
            to_value(&cloud.metric_history(group, since, until)?)
        }
        (&Method::POST, ["groups", group, "metrics"]) => {
            let q: Tracked = parse(body)?;
            to_value(&cloud.tracked_history(group, &q.metrics, q.since, q.until)?)
        }
        (&Method::POST, ["groups", group, "hourly-sums"]) => {
            let q: Window = parse(body)?;
            to_value(&cloud.hourly_sums(group, q.since, q.until)?)
        }
        (&Method::POST, ["metrics", "latest"]) => {
            let q: Latest = parse(body)?;
            Ok(json!({ "value": cloud.latest(&q.metric, q.until) }))
        }
        (&Method::GET, ["alarms"]) => {
            let names: Vec<&str> = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("names="))
                .map(|n| n.split(',').collect())
                .unwrap_or_default();
            let states: Vec<_> = cloud
                .alarms()
                .into_iter()
                .filter(|a| names.is_empty() || names.contains(&a.name.as_str()))
                .map(|a| a.status())
                .collect();
            to_value(&states)
        }
        (&Method::PUT, ["groups", group, "capacity"]) => {
            let c: Capacity = parse(body)?;
            match (c.min, c.max) {
                (None, None) => cloud.set_desired(group, c.desired, &c.cause)?,
                (min, max) => {
                    let current = cloud.group(group)?;
                    cloud.set_limits(
                        group,
                        min.unwrap_or(current.min),
                        max.unwrap_or(current.max),
                        c.desired,
                        &c.cause,
                    )?;
                }
            }
            to_value(&cloud.group(group)?.observation())
        }
        (&Method::PUT, ["groups", group, "instances", id, "protection"]) => {
            let p: Protection = parse(body)?;
            cloud.protect(group, id, p.protected)?;
            Ok(json!({ "instance": id, "protected": p.protected }))
        }
        (&Method::POST, ["faults", "kill"]) => {
            let r: InstanceRef = parse(body)?;
            let group = cloud.kill(&r.instance)?;
            Ok(json!({ "killed": r.instance, "group": group }))
        }
        (&Method::POST, ["faults", "unhealthy"]) => {
            let r: InstanceRef = parse(body)?;
            let group = cloud.set_unhealthy(&r.instance)?;
            Ok(json!({ "unhealthy": r.instance, "group": group }))
        }
        (&Method::POST, ["faults", "stop-az"]) => {
            let r: AzRef = parse(body)?;
            let killed = cloud.stop_az(&r.az)?;
            Ok(json!({ "az": r.az, "killed": killed }))
        }
        (&Method::POST, ["faults", "restore-az"]) => {
            let r: AzRef = parse(body)?;
            cloud.restore_az(&r.az)?;
            Ok(json!({ "az": r.az, "restored": true }))
        }
        (_, ["status" | "alarms"] | ["groups", _] | ["groups", _, "activities" | "capacity" | "metrics" | "hourly-sums"] | ["faults", _])
        | (_, ["metrics", "latest"])
        | (_, ["groups", _, "instances", _, "protection"]) => Err(Refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here"),
            "invalid",
        )),
        _ => Err(Refusal(
            StatusCode::NOT_FOUND,
            "no such route; routes: GET /status, GET /groups/{group}, GET /groups/{group}/activities?since=TIME, GET /groups/{group}/metrics?since=&until=, POST /groups/{group}/metrics, POST /groups/{group}/hourly-sums, PUT /groups/{group}/capacity, PUT /groups/{group}/instances/{id}/protection, POST /metrics/latest, GET /alarms?names=, POST /faults/{kill,unhealthy,stop-az,restore-az}".into(),
            "not_found",
        )),
    }
}

fn since(query: &str) -> Result<Timestamp, Refusal> {
    time_param(query, "since", "1970-01-01T00:00:00Z")
}

fn time_param(query: &str, name: &str, default: &str) -> Result<Timestamp, Refusal> {
    let prefix = format!("{name}=");
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(prefix.as_str()))
        .unwrap_or(default);
    value.parse().map_err(|_| {
        invalid(format!(
            "{name}={value:?}: must be an RFC 3339 time, e.g. 2026-11-20T11:00:00Z"
        ))
    })
}

/// A GetMetricData of a group's tracked metrics (the functions' local adapter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tracked {
    since: Timestamp,
    until: Timestamp,
    metrics: Vec<scaling::policy::TrackedMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    since: Timestamp,
    until: Timestamp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Latest {
    metric: scaling::policy::MetricSpec,
    until: Timestamp,
}

/// The body as one JSON value of type `T`, and nothing after it but
/// whitespace: `{"desired":3} garbage` is refused, not applied.
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        invalid(format!("body field {path}: {}", e.into_inner()))
    })?;
    de.end()
        .map_err(|e| invalid(format!("body: {e}: only one JSON value is allowed")))?;
    Ok(value)
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, Refusal> {
    serde_json::to_value(value).map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "internal"))
}

fn reply(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

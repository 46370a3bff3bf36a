//! A Lambda Runtime API that runs the real function binaries: one process
//! per function (reserved concurrency 1: two decisions never race), each
//! polling its own API on 127.0.0.1 for events. Async-invocation semantics:
//! an error whose type starts with `Retryable` is retried twice, a crashed
//! or failed-to-start function is restarted after a second. Every outcome is
//! recorded with the decision's explanation.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::process::{Spawner, stop};

/// The three function binaries and what each takes.
pub const FUNCTIONS: [&str; 3] = ["alarm-scaler", "schedule-scaler", "target-tracker"];

/// One invocation's result, as the status view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub function: String,
    pub request_id: String,
    /// Cloud time the event was sent.
    pub at: Timestamp,
    /// e.g. `alarm web-cpu-high ALARM`, `schedule web-lunch-scale-out`, `tick web-tick`.
    pub event: String,
    pub attempt: u32,
    /// The handler's outcome (decision with reason and rules), or the error.
    pub result: Option<Value>,
    pub error: Option<String>,
}

#[derive(Debug)]
struct Pending {
    request_id: String,
    summary: String,
    payload: Value,
    attempt: u32,
    at: Timestamp,
}

/// One function: its queue, its API and its process.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    binary: PathBuf,
    queue: Mutex<VecDeque<Pending>>,
    ready: Notify,
    in_flight: Mutex<HashMap<String, Pending>>,
    api: Mutex<Option<SocketAddr>>,
    child: Mutex<Option<Child>>,
    /// Times the process was (re)started.
    pub starts: Mutex<u32>,
}

/// All functions of a local cloud and the record of their invocations.
#[derive(Debug)]
pub struct Runtime {
    pub functions: Vec<Arc<Function>>,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    clock: Clock,
    log: Mutex<VecDeque<Invocation>>,
    /// Notified after every recorded outcome.
    pub recorded: Notify,
}

/// Invocations kept for the status view.
const KEEP: usize = 500;
/// Retries of a retryable failure (AWS async invocation: two).
const RETRIES: u32 = 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Runtime {
    /// Functions from `dir` (alarm-scaler, schedule-scaler, target-tracker);
    /// `env` is given to each process (policy, control API, clock).
    pub fn new(
        dir: &std::path::Path,
        env: Vec<(String, String)>,
        log_dir: PathBuf,
        clock: Clock,
    ) -> Result<Arc<Self>, PathBuf> {
        let mut functions = Vec::new();
        for name in FUNCTIONS {
            let binary = dir.join(name);
            if !binary.is_file() {
                return Err(binary);
            }
            functions.push(Arc::new(Function {
                name: name.to_string(),
                binary,
                queue: Mutex::new(VecDeque::new()),
                ready: Notify::new(),
                in_flight: Mutex::new(HashMap::new()),
                api: Mutex::new(None),
                child: Mutex::new(None),
                starts: Mutex::new(0),
            }));
        }
        Ok(Arc::new(Self {
            functions,
            env,
            log_dir,
            clock,
            log: Mutex::new(VecDeque::new()),
            recorded: Notify::new(),
        }))
    }

    /// Binds each function's API and starts its process and supervisor.
    pub async fn start(self: &Arc<Self>, spawner: Arc<Spawner>) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
        let mut tasks = Vec::new();
        for function in &self.functions {
            let listener = crate::server::listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
            *lock(&function.api) = Some(listener.local_addr()?);
            tasks.push(serve(self.clone(), function.clone(), listener));
            tasks.push(tokio::spawn(supervise(self.clone(), function.clone(), spawner.clone())));
        }
        Ok(tasks)
    }

    /// Queues an event for a function.
    pub fn invoke(&self, function: &str, summary: String, payload: Value) {
        let Some(f) = self.functions.iter().find(|f| f.name == function) else {
            return;
        };
        lock(&f.queue).push_back(Pending {
            request_id: crate::alarms::event_id(),
            summary,
            payload,
            attempt: 1,
            at: self.clock.now(),
        });
        f.ready.notify_one();
    }

    /// The newest invocations, oldest first.
    pub fn invocations(&self) -> Vec<Invocation> {
        lock(&self.log).iter().cloned().collect()
    }

    fn record(&self, invocation: Invocation) {
        let mut log = lock(&self.log);
        log.push_back(invocation);
        while log.len() > KEEP {
            log.pop_front();
        }
        drop(log);
        self.recorded.notify_waiters();
    }

    /// Stops every function process.
    pub fn stop(&self) {
        for function in &self.functions {
            if let Some(mut child) = lock(&function.child).take() {
                let _ = stop(&mut child, Duration::from_secs(2));
            }
        }
    }
}

/// Keeps a function's process running (restarting a crashed one after a second).
async fn supervise(runtime: Arc<Runtime>, function: Arc<Function>, spawner: Arc<Spawner>) {
    loop {
        let running = {
            let mut child = lock(&function.child);
            match child.as_mut().map(Child::try_wait) {
                Some(Ok(None)) => true,
                Some(_) => {
                    *child = None;
                    false
                }
                None => false,
            }
        };
        if !running {
            // Events in flight with a dead process are retried.
            let lost: Vec<Pending> = lock(&function.in_flight).drain().map(|(_, p)| p).collect();
            for pending in lost {
                fail(&runtime, &function, pending, "the function process exited".into(), true);
            }
            let api = lock(&function.api).map(|a| a.to_string()).unwrap_or_default();
            let mut command_env = runtime.env.clone();
            command_env.push(("AWS_LAMBDA_RUNTIME_API".into(), api));
            command_env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), function.name.clone()));
            command_env.push(("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()));
            command_env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()));
            let log = runtime.log_dir.join(format!("{}.log", function.name));
            match spawner.spawn_with_env(&function.binary, &[], &command_env, &log) {
                Ok(child) => {
                    *lock(&function.child) = Some(child);
                    *lock(&function.starts) += 1;
                }
                Err(error) => tracing::warn!(function = %function.name, %error, "cannot start"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Records a failure; a retryable one goes back to the queue (at most twice).
fn fail(runtime: &Runtime, function: &Function, pending: Pending, error: String, retryable: bool) {
    runtime.record(Invocation {
        function: function.name.clone(),
        request_id: pending.request_id.clone(),
        at: pending.at,
        event: pending.summary.clone(),
        attempt: pending.attempt,
        result: None,
        error: Some(error),
    });
    if retryable && pending.attempt <= RETRIES {
        lock(&function.queue).push_back(Pending {
            attempt: pending.attempt + 1,
            request_id: crate::alarms::event_id(),
            ..pending
        });
        function.ready.notify_one();
    }
}

fn serve(runtime: Arc<Runtime>, function: Arc<Function>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
    crate::server::serve(
        listener,
        crate::server::Limits::INTERNAL,
        crate::server::Heads::Hyper,
        Arc::default(),
        move |_| {
            let runtime = runtime.clone();
            let function = function.clone();
            move |request| {
                let runtime = runtime.clone();
                let function = function.clone();
                async move { route(&runtime, &function, request).await }
            }
        },
    )
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn route(runtime: &Runtime, function: &Function, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match crate::server::read_body(body, 6 << 20, "6 MB").await {
        Ok(body) => body,
        Err(error) => return reply(error.status(), serde_json::json!({"errorMessage": error.to_string()})),
    };
    let path = parts.uri.path();
    let error_type = parts
        .headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => next(function).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let Some(pending) = lock(&function.in_flight).remove(*id) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"errorMessage": "unknown request id"}),
                );
            };
            runtime.record(Invocation {
                function: function.name.clone(),
                request_id: pending.request_id,
                at: pending.at,
                event: pending.summary,
                attempt: pending.attempt,
                result: Some(
                    serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into())),
                ),
                error: None,
            });
            reply(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let Some(pending) = lock(&function.in_flight).remove(*id) else {
                return reply(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"errorMessage": "unknown request id"}),
                );
            };
            let detail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let kind = error_type
                .or_else(|| detail["errorType"].as_str().map(str::to_string))
                .unwrap_or_default();
            let message = format!("{kind}: {}", detail["errorMessage"].as_str().unwrap_or(""));
            fail(runtime, function, pending, message, kind.starts_with("Retryable"));
            reply(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let detail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            runtime.record(Invocation {
                function: function.name.clone(),
                request_id: String::new(),
                at: runtime.clock.now(),
                event: "init".into(),
                attempt: 0,
                result: None,
                error: Some(format!(
                    "init failed: {}",
                    detail["errorMessage"].as_str().unwrap_or("(no message)")
                )),
            });
            reply(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            serde_json::json!({"errorMessage": format!("no route {path}")}),
        ),
    }
}

/// Long-polls the function's queue.
async fn next(function: &Function) -> Response<Full<Bytes>> {
    loop {
        let notified = function.ready.notified();
        if let Some(pending) = lock(&function.queue).pop_front() {
            let mut response = Response::new(Full::new(Bytes::from(pending.payload.to_string())));
            let deadline = jiff::Timestamp::now().as_millisecond() + 60_000;
            let headers = response.headers_mut();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", pending.request_id.clone()),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    format!(
                        "arn:aws:lambda:{}:{}:function:{}",
                        crate::alarms::REGION,
                        crate::alarms::ACCOUNT,
                        function.name
                    ),
                ),
                (
                    "lambda-runtime-trace-id",
                    format!("Root=1-{}", &pending.request_id[..8]),
                ),
                ("content-type", "application/json".into()),
            ] {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            lock(&function.in_flight).insert(pending.request_id.clone(), pending);
            return response;
        }
        // Wake at least every second so a dropped waiter never hangs the poll.
        let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
    }
}

/// Waits until an invocation matching `predicate` is recorded, for at most `limit`.
pub async fn wait_for(
    runtime: &Runtime,
    limit: Duration,
    predicate: impl Fn(&Invocation) -> bool,
) -> Option<Invocation> {
    let deadline = Instant::now() + limit;
    loop {
        let notified = runtime.recorded.notified();
        if let Some(found) = runtime.invocations().into_iter().find(|i| predicate(i)) {
            return Some(found);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
    }
}

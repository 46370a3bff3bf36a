//! The Lambda Runtime API the function process polls: `next`, the
//! invocation's `response` and `error`, the init error, as AWS answers them.

use super::*;

pub(super) fn serve(
    runtime: Arc<Runtime>,
    function: Arc<Function>,
    listener: TcpListener,
) -> tokio::task::JoinHandle<()> {
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

pub(super) fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Takes the batch `id` off the function if it is the one in flight.
pub(super) fn answered(function: &Function, id: &str) -> Option<InFlight> {
    let mut queue = lock(&function.queue);
    if queue.in_flight.as_ref().is_some_and(|b| b.request_id == id) {
        queue.in_flight.take()
    } else {
        None
    }
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
    let unknown = || {
        reply(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"errorMessage": "unknown request id"}),
        )
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => next(runtime, function).await,
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            let Some(batch) = answered(function, id) else {
                return unknown();
            };
            let response: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ids: Vec<String> = batch.messages.iter().map(|m| m.id.clone()).collect();
            let finished = runtime.clock.now();
            match scaling::queue::returned(&response, &ids) {
                Ok(returned) => {
                    let handled = response["handled"].as_array().cloned().unwrap_or_default();
                    let mut back = Vec::new();
                    for message in batch.messages {
                        let mine = handled.iter().find(|h| h["message_id"] == message.id.as_str());
                        let result = mine.and_then(|h| h.get("outcome")).cloned();
                        let error = mine.and_then(|h| h["error"].as_str()).map(str::to_string);
                        runtime.record_message(&message, Some((batch.started, finished)), result, error);
                        if returned.contains(&message.id) {
                            back.push(message);
                        }
                    }
                    runtime.give_back(back);
                }
                // Lambda's reading: an invalid response fails the whole batch.
                Err(problem) => fail_batch(
                    runtime,
                    batch,
                    format!("the batch response is invalid, so the whole batch failed: {problem}"),
                ),
            }
            reply(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
        }
        (&Method::POST, ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            let Some(batch) = answered(function, id) else {
                return unknown();
            };
            let detail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let kind = error_type
                .or_else(|| detail["errorType"].as_str().map(str::to_string))
                .unwrap_or_default();
            let message = format!("{kind}: {}", detail["errorMessage"].as_str().unwrap_or(""));
            fail_batch(runtime, batch, message);
            reply(StatusCode::ACCEPTED, serde_json::json!({"status": "OK"}))
        }
        (&Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            let detail: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            runtime.record(Invocation {
                function: function.name.clone(),
                request_id: String::new(),
                at: runtime.clock.now(),
                event: "init".into(),
                group: String::new(),
                attempt: 0,
                started: None,
                finished: None,
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

/// Long-polls the queue for the function's next batch (the event source mapping).
async fn next(runtime: &Runtime, function: &Function) -> Response<Full<Bytes>> {
    loop {
        let notified = function.ready.notified();
        let now = runtime.clock.now();
        let request_id = crate::alarms::event_id();
        let (batch, expired) = {
            let mut queue = lock(&function.queue);
            let (mut batch, expired) = queue.take(now);
            if !batch.is_empty() {
                for message in &mut batch {
                    message.receives += 1;
                }
                queue.in_flight = Some(InFlight {
                    request_id: request_id.clone(),
                    started: now,
                    messages: batch.clone(),
                });
            }
            (batch, expired)
        };
        for message in &expired {
            runtime.record_message(
                message,
                None,
                None,
                Some(format!("expired in the queue after {RETENTION_S} s")),
            );
        }
        if !batch.is_empty() {
            let messages: Vec<Message> = batch
                .iter()
                .map(|m| Message {
                    id: m.id.clone(),
                    group: Some(m.group.clone()),
                    body: m.body.clone(),
                    receive_count: m.receives,
                })
                .collect();
            let payload = scaling::queue::event(&messages, &queue_arn(), crate::alarms::REGION);
            let mut response = Response::new(Full::new(Bytes::from(payload.to_string())));
            let deadline = jiff::Timestamp::now().as_millisecond() + 60_000;
            let headers = response.headers_mut();
            for (name, value) in [
                ("lambda-runtime-aws-request-id", request_id.clone()),
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
                ("lambda-runtime-trace-id", format!("Root=1-{}", &request_id[..8])),
                ("content-type", "application/json".into()),
            ] {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return response;
        }
        // Wake at least every 100 ms: a returned message becomes visible
        // again without a notification.
        let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
    }
}

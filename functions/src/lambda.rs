//! What every function binary does: JSON logs, configuration from the
//! environment (checked at start), clients built once, then
//! `lambda_runtime::run` around the shared [`Handler`].
//!
//! Environment: `SCALER_POLICY` (path of the policy file; default
//! `policy.toml` beside the binary, i.e. in `LAMBDA_TASK_ROOT`),
//! `SCALER_DRY_RUN` (`1`/`true`: decide and log, do not act),
//! `SCALER_TARGET_GROUP` (`targetgroup/NAME/ID`, for request_count_per_target).
//! The AWS clients are built once, by a start-up task ([`LazyAws`]).

use std::path::PathBuf;

use jiff::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::aws::LazyAws;
use crate::handler::{Accepts, Handler, HandlerError};
use crate::policy::Policy;

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The policy file is missing or invalid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// An environment variable has a value outside what is allowed.
    #[error("{name}={value:?}: {allowed}")]
    Env {
        name: &'static str,
        value: String,
        allowed: &'static str,
    },
}

/// Where the policy file is: `SCALER_POLICY`, else `policy.toml` in the task root.
pub fn policy_path() -> PathBuf {
    match std::env::var_os("SCALER_POLICY") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("LAMBDA_TASK_ROOT").unwrap_or_else(|| ".".into())).join("policy.toml"),
    }
}

/// `SCALER_DRY_RUN`: unset, `0`/`false` or `1`/`true`.
pub fn dry_run() -> Result<bool, InitError> {
    match std::env::var("SCALER_DRY_RUN").as_deref() {
        Err(_) | Ok("" | "0" | "false") => Ok(false),
        Ok("1" | "true") => Ok(true),
        Ok(other) => Err(InitError::Env {
            name: "SCALER_DRY_RUN",
            value: other.into(),
            allowed: "expected 1, true, 0 or false",
        }),
    }
}

/// Maps a handler error to what Lambda records: the type says whether a retry can help.
fn diagnostic(error: HandlerError) -> Diagnostic {
    let kind = if error.retryable() { "Retryable" } else { "NotRetryable" };
    let what = match error {
        HandlerError::Event(_) => "EventError",
        HandlerError::Port(_) => "PortError",
    };
    Diagnostic {
        error_type: format!("{kind}.{what}"),
        error_message: error.to_string(),
    }
}

/// Tells the Runtime API why start-up failed (so Lambda reports it as an
/// init error naming the cause), then returns the error for the exit code.
fn report_init_error(error: InitError) -> lambda_runtime::Error {
    tracing::error!(%error, "init failed");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
        let body =
            serde_json::json!({ "errorType": "NotRetryable.InitError", "errorMessage": error.to_string() }).to_string();
        let request = format!(
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: NotRetryable.InitError\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // Best effort: the process exits with the error either way.
        if let Ok(mut stream) = std::net::TcpStream::connect(&api) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read(&mut [0u8; 256]);
            }
        }
    }
    error.into()
}

/// Runs a function binary that takes `accepts` triggers.
pub async fn run(accepts: Accepts) -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
    let policy = Policy::load(&policy_path()).map_err(|e| report_init_error(e.into()))?;
    let dry_run = dry_run().map_err(report_init_error)?;
    let aws = LazyAws::start(std::env::var("SCALER_TARGET_GROUP").ok());
    let handler = Handler {
        policy,
        group: aws.clone(),
        metrics: aws,
        dry_run,
        accepts,
    };
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handler
            .handle(&event.payload, Timestamp::now())
            .await
            .map_err(diagnostic)
    }))
    .await
}

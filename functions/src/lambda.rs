//! What every function binary does: JSON logs, configuration from the
//! environment (checked at start), clients built once, then
//! `lambda_runtime::run` around the shared [`Handler`].
//!
//! Environment: `SCALER_POLICY` (path of the policy file; default
//! `policy.toml` beside the binary, i.e. in `LAMBDA_TASK_ROOT`),
//! `SCALER_DRY_RUN` (`1`/`true`: decide and log, do not act),
//! `SCALER_TARGET_GROUPS` (`GROUP=targetgroup/NAME/ID,...`: each group's
//! target group, for request_count_per_target), `SCALER_LOAD_BALANCERS`
//! (`GROUP=app/NAME/ID,...`: each group's load balancer, for cpu_demand).
//! The AWS clients are built once, by a start-up task ([`LazyAws`]).
//!
//! Under the local cloud: `SCALER_LOCAL_CLOUD` (`HOST:PORT` of its control
//! API: the group and metrics ports go there instead of AWS) and
//! `SCALER_CLOCK` (`SPEED@EPOCH`, e.g. `60@2026-11-23T22:00:00Z`: the local
//! cloud's time runs SPEED times faster than the wall clock from EPOCH, and
//! decisions are made in that time; `SPEED@EPOCH=CLOUD` when the cloud's
//! time was CLOUD at wall time EPOCH, e.g. started just before a schedule).

use std::path::PathBuf;

use jiff::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::aws::LazyAws;
use crate::handler::{Handler, HandlerError};
use crate::local::LocalCloud;
use crate::policy::{Policy, PredefinedMetric, TrackedMetric};
use crate::ports::{GroupPort, MetricsPort};

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
    /// `SCALER_TARGET_GROUPS` does not fit the policy file.
    #[error(
        "SCALER_TARGET_GROUPS={value:?}: {problem} (expected GROUP=targetgroup/NAME/ID, comma-separated, for the policy's groups)"
    )]
    TargetGroups { value: String, problem: String },
    /// `SCALER_LOAD_BALANCERS` does not fit the policy file.
    #[error(
        "SCALER_LOAD_BALANCERS={value:?}: {problem} (expected GROUP=app/NAME/ID, comma-separated, for the policy's groups)"
    )]
    LoadBalancers { value: String, problem: String },
}

/// Each group's target group from `SCALER_TARGET_GROUPS`: only groups of
/// the policy, and every group that tracks request_count_per_target must
/// have one (refused at start, not at the first tick).
pub fn target_groups(policy: &Policy, value: Option<&str>) -> Result<crate::aws::TargetGroups, InitError> {
    let text = value.unwrap_or("");
    group_resources(
        policy,
        text,
        crate::aws::parse_target_groups,
        PredefinedMetric::RequestCountPerTarget,
        "target group",
    )
    .map_err(|problem| InitError::TargetGroups {
        value: text.into(),
        problem,
    })
}

/// Each group's load balancer from `SCALER_LOAD_BALANCERS`: only groups of
/// the policy, and every group that tracks cpu_demand must have one
/// (refused at start, not at the first tick).
pub fn load_balancers(policy: &Policy, value: Option<&str>) -> Result<crate::aws::LoadBalancers, InitError> {
    let text = value.unwrap_or("");
    group_resources(
        policy,
        text,
        crate::aws::parse_load_balancers,
        PredefinedMetric::CpuDemand,
        "load balancer",
    )
    .map_err(|problem| InitError::LoadBalancers {
        value: text.into(),
        problem,
    })
}

/// `GROUP=RESOURCE` pairs parsed by `parse`: each a group of the policy,
/// and every group that tracks `metric` named.
fn group_resources(
    policy: &Policy,
    text: &str,
    parse: fn(&str) -> Result<std::collections::BTreeMap<String, String>, String>,
    metric: PredefinedMetric,
    what: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let groups = parse(text)?;
    if let Some(unknown) = groups.keys().find(|g| policy.group(g).is_none()) {
        return Err(format!(
            "{unknown} is not a group of the policy file (groups: {})",
            policy.group_names().join(", ")
        ));
    }
    let tracked = TrackedMetric::Predefined(metric);
    let needs = policy
        .groups
        .iter()
        .find(|g| !groups.contains_key(&g.name) && g.target_tracking.iter().any(|t| t.metric == tracked));
    if let Some(group) = needs {
        return Err(format!(
            "group {} tracks {} and has no {what} here",
            group.name,
            crate::tracking::metric_key(&tracked)
        ));
    }
    Ok(groups)
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

/// The time decisions are made in: the wall clock, or a local cloud's faster clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    speed: f64,
    /// Wall time when the clock read `cloud_epoch`.
    epoch: Timestamp,
    cloud_epoch: Timestamp,
}

impl Clock {
    /// The wall clock.
    pub const WALL: Self = Self {
        speed: 1.0,
        epoch: Timestamp::UNIX_EPOCH,
        cloud_epoch: Timestamp::UNIX_EPOCH,
    };

    /// Parses `SPEED@EPOCH` or `SPEED@EPOCH=CLOUD`.
    pub fn parse(text: &str) -> Result<Self, InitError> {
        let bad = || InitError::Env {
            name: "SCALER_CLOCK",
            value: text.into(),
            allowed: "expected SPEED@EPOCH or SPEED@EPOCH=CLOUD, SPEED from 1 to 3600, EPOCH (wall) and CLOUD (the cloud's time then) RFC 3339 times (e.g. 60@2026-11-23T22:00:00Z)",
        };
        let (speed, epoch) = text.split_once('@').ok_or_else(bad)?;
        let speed: f64 = speed.parse().map_err(|_| bad())?;
        if !(speed.is_finite() && (1.0..=3600.0).contains(&speed)) {
            return Err(bad());
        }
        let (epoch, cloud_epoch) = match epoch.split_once('=') {
            Some((wall, cloud)) => (wall, cloud),
            None => (epoch, epoch),
        };
        let epoch: Timestamp = epoch.parse().map_err(|_| bad())?;
        let cloud_epoch: Timestamp = cloud_epoch.parse().map_err(|_| bad())?;
        Ok(Self {
            speed,
            epoch,
            cloud_epoch,
        })
    }

    /// The clock's time at wall time `wall`.
    pub fn at(&self, wall: Timestamp) -> Timestamp {
        if self.speed == 1.0 && self.epoch == self.cloud_epoch {
            return wall;
        }
        let elapsed = wall.duration_since(self.epoch).as_secs_f64() * self.speed;
        self.cloud_epoch
            .checked_add(jiff::SignedDuration::from_secs_f64(elapsed))
            .unwrap_or(wall)
    }

    pub fn now(&self) -> Timestamp {
        self.at(Timestamp::now())
    }
}

/// `SCALER_CLOCK`, or the wall clock.
pub fn clock() -> Result<Clock, InitError> {
    match std::env::var("SCALER_CLOCK") {
        Ok(text) if !text.is_empty() => Clock::parse(&text),
        _ => Ok(Clock::WALL),
    }
}

/// Maps a handler error to what Lambda records: the type says whether a retry can help.
fn diagnostic(error: HandlerError) -> Diagnostic {
    let kind = if error.retryable() { "Retryable" } else { "NotRetryable" };
    let what = match error {
        HandlerError::Event(_) => "EventError",
        HandlerError::Port(_) => "PortError",
        HandlerError::Decide(_) => "DecideError",
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

/// Runs the function: every trigger of every group, from the groups' FIFO
/// queue (an SQS batch) or, invoked by hand, one event.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
    let policy = Policy::load(&policy_path()).map_err(|e| report_init_error(e.into()))?;
    let dry_run = dry_run().map_err(report_init_error)?;
    let clock = clock().map_err(report_init_error)?;
    match std::env::var("SCALER_LOCAL_CLOUD") {
        Ok(control) if !control.is_empty() => {
            let local = LocalCloud::new(&control);
            serve(
                Handler {
                    policy,
                    group: local.clone(),
                    metrics: local,
                    dry_run,
                },
                clock,
            )
            .await
        }
        _ => {
            let target_groups = target_groups(&policy, std::env::var("SCALER_TARGET_GROUPS").ok().as_deref())
                .map_err(report_init_error)?;
            let load_balancers = load_balancers(&policy, std::env::var("SCALER_LOAD_BALANCERS").ok().as_deref())
                .map_err(report_init_error)?;
            let aws = LazyAws::start(target_groups, load_balancers);
            serve(
                Handler {
                    policy,
                    group: aws.clone(),
                    metrics: aws,
                    dry_run,
                },
                clock,
            )
            .await
        }
    }
}

/// The runtime loop around one handler.
async fn serve<G: GroupPort + Sync, M: MetricsPort + Sync>(
    handler: Handler<G, M>,
    clock: Clock,
) -> Result<(), lambda_runtime::Error> {
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if crate::queue::is_batch(&event.payload) {
            // A malformed batch fails whole; each message's own failure is
            // reported in batchItemFailures (or dropped when a retry cannot help).
            let messages = crate::queue::messages(&event.payload).map_err(|e| diagnostic(e.into()))?;
            let batch = handler.handle_batch(&messages, || clock.now()).await;
            return Ok(batch.response());
        }
        let outcome = handler.handle(&event.payload, clock.now()).await.map_err(diagnostic)?;
        Ok::<Value, Diagnostic>(serde_json::to_value(outcome).unwrap_or(Value::Null))
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_clock_runs_at_its_speed_from_its_epoch() {
        let clock = Clock::parse("60@2026-11-23T22:00:00Z").expect("clock");
        let wall: Timestamp = "2026-11-23T22:00:05Z".parse().expect("wall");
        assert_eq!(clock.at(wall).to_string(), "2026-11-23T22:05:00Z");
        assert_eq!(Clock::WALL.at(wall), wall);
        let shifted = Clock::parse("60@2026-11-23T22:00:00Z=2026-11-24T02:58:00Z").expect("shifted clock");
        assert_eq!(shifted.at(wall).to_string(), "2026-11-24T03:03:00Z");
        for bad in [
            "60@2026-11-23T22:00:00Z=",
            "60@2026-11-23T22:00:00Z=later",
            "60",
            "0@2026-11-23T22:00:00Z",
            "fast@2026-11-23T22:00:00Z",
            "60@yesterday",
            "5000@2026-11-23T22:00:00Z",
        ] {
            let error = Clock::parse(bad).expect_err(bad).to_string();
            assert!(
                error.contains("SCALER_CLOCK") && error.contains("SPEED@EPOCH"),
                "{bad}: {error}"
            );
        }
    }
}

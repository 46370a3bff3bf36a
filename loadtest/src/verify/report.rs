//! What a verify run found: its samples, assertions, activities and the
//! report they make (printed and written by `output`).

use super::*;

/// One sample of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub at: Timestamp,
    pub phase: &'static str,
    pub desired: u32,
    pub in_service: u32,
    /// The group's newest one-minute CPU average (% of the instances' caps).
    pub cpu_percent: Option<f64>,
    pub requests_per_second: f64,
    pub failures_per_second: f64,
    /// p99 latency over the 5 seconds of load before the sample.
    pub p99_ms: Option<f64>,
    /// Seconds since the load started (None: before it).
    #[serde(skip)]
    pub(super) load_second: Option<u64>,
}
/// One checked expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assertion {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Assertion {
    /// Held when `at` (the cloud time it happened) is Some: the detail says
    /// how long after `from`, else `otherwise`.
    pub(super) fn reached(name: String, at: Option<Timestamp>, from: Timestamp, after: &str, otherwise: &str) -> Self {
        Self {
            name,
            passed: at.is_some(),
            detail: at.map_or_else(|| otherwise.to_string(), |at| format!("{} {after}", minutes(at, from))),
        }
    }
}

/// A change of desired capacity, with the decision that made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityRow {
    pub start: Timestamp,
    /// When the in-service count reached the new desired (None: it did not).
    pub end: Option<Timestamp>,
    pub from: u32,
    pub to: u32,
    pub cause: String,
    pub reason: Option<String>,
}

/// The scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `local` (the embedded local cloud) or `aws`.
    pub target: String,
    pub group: String,
    pub speed: f64,
    pub min: u32,
    pub max: u32,
    pub request_rate: f64,
    pub fibo_n: u32,
    pub requests: u64,
    pub failures: u64,
    pub activities: Vec<ActivityRow>,
    pub instance_activities: Vec<localcloud::group::InstanceActivity>,
    pub assertions: Vec<Assertion>,
    pub samples: Vec<Sample>,
    pub passed: bool,
}

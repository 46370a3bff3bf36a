//! The observed state a decision needs, as one JSON document: what the
//! handler reads through its ports, and what `scalectl decide --state` takes.
//!
//! ```json
//! {
//!   "observed":   { "min": 2, "max": 10, "desired": 2,
//!                   "instances": [{ "id": "i-1", "lifecycle": "InService",
//!                                   "launched_at": "2026-11-20T10:00:00Z", "protected": false }] },
//!   "metrics":    { "cpu": { "i-1": [{ "at": "2026-11-20T11:06:00Z", "value": 91.5 }] } },
//!   "activities": [{ "start": "...", "end": "...", "from": 2, "to": 4, "cause": "alarm web-cpu-high at ..." }],
//!   "alarms":     [{ "name": "web-cpu-high", "state": "ALARM", "state_since": "...", "value": 91.5 }]
//! }
//! ```
//! `metrics`, `activities` and `alarms` (current alarm states, for the tick's
//! re-check) may be left out.

use serde::{Deserialize, Serialize};

use crate::decide::{Activity, AlarmStatus, MetricHistory, Observation};

/// Everything observed about one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub observed: Observation,
    #[serde(default)]
    pub metrics: MetricHistory,
    #[serde(default)]
    pub activities: Vec<Activity>,
    #[serde(default)]
    pub alarms: Vec<AlarmStatus>,
}

/// Why a state document was refused.
#[derive(Debug, thiserror::Error)]
#[error("state {source_name} at {path}: {detail}")]
pub struct StateError {
    pub source_name: String,
    pub path: String,
    pub detail: String,
}

impl State {
    /// Parses a state document; errors name the JSON path.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, StateError> {
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|e| StateError {
            source_name: source_name.to_string(),
            path: e.path().to_string(),
            detail: e.inner().to_string(),
        })
    }
}

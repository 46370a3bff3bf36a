//! The policy file: the one source of truth for groups, alarm (step) policies,
//! target tracking and schedules, read by the functions and the local cloud.
//!
//! TOML, `deny_unknown_fields` everywhere (a typo is an error, not a default),
//! durations as `"300s"`/`"5m"`, and a validation pass that reports every
//! problem at once, each naming the file, the field and what is allowed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::schedule::ScheduleExpr;

mod alarm;
mod metric;
mod predictive;
mod schedule;
mod target_tracking;
mod validate;

pub use alarm::*;
pub use metric::*;
pub use predictive::*;
pub use schedule::*;
pub use target_tracking::*;
use validate::*;

/// A whole policy file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "group")]
    pub groups: Vec<GroupPolicy>,
}

/// One scaling group and its rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPolicy {
    pub name: String,
    pub min: u32,
    pub max: u32,
    /// Capacity at creation (default: `min`).
    pub desired: Option<u32>,
    /// Default cooldown for alarm policies that set none.
    #[serde(default = "default_cooldown", deserialize_with = "duration")]
    pub cooldown: Duration,
    /// Seconds a new instance needs before its metrics count (default: `cooldown`).
    #[serde(default, deserialize_with = "optional_duration")]
    pub instance_warmup: Option<Duration>,
    #[serde(default, rename = "alarm_policy")]
    pub alarm_policies: Vec<AlarmPolicy>,
    #[serde(default)]
    pub target_tracking: Vec<TargetTracking>,
    #[serde(default, rename = "schedule")]
    pub schedules: Vec<Schedule>,
    /// Predictive scaling (`[group.predictive]`), see [`crate::predictive`].
    #[serde(default)]
    pub predictive: Option<Predictive>,
    /// A warm pool (`[group.warm_pool]`), see [`crate::group::warm_pool_size`].
    #[serde(default)]
    pub warm_pool: Option<WarmPool>,
    /// Who can reach the group's load balancer on AWS (default: the first
    /// group of the file from the internet, every other group from inside
    /// the VPC only, as the seeds put a session tier behind an internal
    /// load balancer). See [`Policy::exposure`].
    #[serde(default)]
    pub exposure: Option<Exposure>,
}

/// Who can reach a group's load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exposure {
    /// Internet-facing, in the public subnets, HTTP from anywhere.
    Internet,
    /// Internal, in the private subnets, HTTP from inside the VPC only.
    Internal,
}

impl GroupPolicy {
    /// The warm-up that applies: the group's, else its default cooldown.
    pub fn warmup(&self) -> Duration {
        self.instance_warmup.unwrap_or(self.cooldown)
    }

    /// Whether the group needs the one-minute tick: target tracking,
    /// alarm re-checks and predictive scaling decide on it (the template's
    /// tick rule and the local cloud's ticks both ask this).
    pub fn needs_tick(&self) -> bool {
        !self.target_tracking.is_empty() || !self.alarm_policies.is_empty() || self.predictive.is_some()
    }

    /// The alarm policy driven by `alarm`, if any.
    pub fn alarm_policy(&self, alarm: &str) -> Option<&AlarmPolicy> {
        self.alarm_policies.iter().find(|p| p.alarm == alarm)
    }
}

fn default_cooldown() -> Duration {
    Duration::from_secs(300)
}

/// How far back decisions read activities and metrics, wherever they run
/// (the functions, the backtest): so the longest cooldown, stabilisation
/// window or rate period a policy may name (issue 18: a `cooldown = "2h"`
/// validated and silently ended after an hour).
pub const HISTORY: Duration = Duration::from_secs(3600);

/// The largest `max` a group may have in a policy file.
pub const MAX_GROUP_SIZE: u32 = 1000;

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the format.
    #[error("policy file {file}: {message}")]
    Parse { file: String, message: String },
    /// The file parsed but breaks the rules; every problem is listed.
    #[error("policy file {file} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid { file: String, problems: Vec<String> },
}

impl Policy {
    /// The exposure of group `index`: its `exposure`, else internet for the
    /// first group and internal for the others.
    pub fn exposure(&self, index: usize) -> Exposure {
        self.groups
            .get(index)
            .and_then(|g| g.exposure)
            .unwrap_or(if index == 0 {
                Exposure::Internet
            } else {
                Exposure::Internal
            })
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text =
            crate::input::read_text(path, crate::input::POLICY_MAX_BYTES).map_err(|source| PolicyError::Read {
                path: path.display().to_string(),
                source,
            })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates policy text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let problems = policy.problems();
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(PolicyError::Invalid {
                file: file.to_string(),
                problems,
            })
        }
    }

    /// The names of the file's groups, in order.
    pub fn group_names(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.name.as_str()).collect()
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&GroupPolicy> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Every rule the file breaks, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.groups.is_empty() {
            problems.push("group: at least one [[group]] is required".into());
        }
        for (index, group) in self.groups.iter().enumerate() {
            let at = format!("group[{index}] ({})", group.name);
            if self.groups[..index].iter().any(|g| g.name == group.name) {
                problems.push(format!("{at}.name: duplicate group name"));
            }
            group_problems(group, &self.group_names(), &at, &mut problems);
        }
        let mut alarms: Vec<&str> = self
            .groups
            .iter()
            .flat_map(|g| g.alarm_policies.iter().map(|p| p.alarm.as_str()))
            .collect();
        alarms.sort_unstable();
        for pair in alarms.windows(2) {
            if pair[0] == pair[1] {
                problems.push(format!(
                    "alarm {:?} drives more than one policy; alarm names must be unique",
                    pair[0]
                ));
            }
        }
        problems
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration ({e}); use e.g. \"300s\", \"5m\""))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

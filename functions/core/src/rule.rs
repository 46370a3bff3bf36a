//! Typed explanations (issue 19): every decision says why with a [`Code`]
//! logs, dashboards and tests can match, beside the sentence a person
//! reads. Like the Kubernetes HPA's conditions (`ScalingLimited`,
//! `ScaleUpStabilized`, `AbleToScale`: "HorizontalPodAutoscaler status
//! conditions"), a code names the rule; the text keeps the numbers.

use serde::{Deserialize, Serialize};

/// A rule of decide(), as a code. Serialised in snake_case (`"cooldown"`,
/// `"rate_limited"`); `Display` writes the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// Desired was outside min..=max and goes back to the nearer limit
    /// before any metric is read.
    OutsideLimits,
    /// An alarm policy's step (or simple scaling's one change) was chosen.
    Step,
    /// A target-tracking policy's arithmetic: the metric against its target.
    TargetTracking,
    /// A scheduled action sets min, max or desired.
    Schedule,
    /// Several proposals (target-tracking policies, alarms still in ALARM)
    /// were combined: the largest scales out, scale-in needs all.
    Proposals,
    /// The age of the datapoint decided on (CloudWatch is minutes late).
    DatapointAge,
    /// Instances still warming up: not counted on a step scale-out, and
    /// no step scale-in while any warms up.
    WarmUp,
    /// Simple scaling's cooldown.
    Cooldown,
    /// Simple scaling waits for the scaling activity in progress.
    InProgress,
    /// A percent change rounded as AWS rounds it.
    Rounded,
    /// A percent change raised to the policy's minimum adjustment magnitude.
    MinAdjustment,
    /// Clamped to the group's min or max.
    Clamped,
    /// Held or lowered by a stabilisation window.
    Stabilised,
    /// Limited by a target-tracking rate policy (percent or instances per period).
    RateLimited,
    /// A scale-out held because the newest datapoint predates the last scale-in.
    StaleDatapoint,
    /// The target-tracking policy has scale-in disabled.
    ScaleInDisabled,
    /// Protected instances a scale-in will not terminate.
    Protected,
    /// The same breach, tick or schedule was already acted on.
    AlreadyHandled,
    /// Already at the capacity or limits asked for.
    AlreadyThere,
    /// No datapoint to decide on.
    NoData,
    /// The alarm's value matches no step.
    NoStep,
    /// The alarm is not in ALARM: alarm policies act only in ALARM.
    NotInAlarm,
    /// The trigger names no policy or schedule of this group.
    NotOurs,
    /// A scheduled action that would set min above max: not applied.
    Refused,
    /// Predictive scaling's forecast for the hour raised capacity, or
    /// stopped a scale-in at it (`forecast_and_scale`).
    Predictive,
    /// Predictive scaling in `forecast_only`: the forecast, explained, not acted on.
    ForecastOnly,
    /// Predictive scaling has no forecast yet (under 24 hours of load history).
    NoForecast,
}

impl Code {
    /// The snake_case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutsideLimits => "outside_limits",
            Self::Step => "step",
            Self::TargetTracking => "target_tracking",
            Self::Schedule => "schedule",
            Self::Proposals => "proposals",
            Self::DatapointAge => "datapoint_age",
            Self::WarmUp => "warm_up",
            Self::Cooldown => "cooldown",
            Self::InProgress => "in_progress",
            Self::Rounded => "rounded",
            Self::MinAdjustment => "min_adjustment",
            Self::Clamped => "clamped",
            Self::Stabilised => "stabilised",
            Self::RateLimited => "rate_limited",
            Self::StaleDatapoint => "stale_datapoint",
            Self::ScaleInDisabled => "scale_in_disabled",
            Self::Protected => "protected",
            Self::AlreadyHandled => "already_handled",
            Self::AlreadyThere => "already_there",
            Self::NoData => "no_data",
            Self::NoStep => "no_step",
            Self::NotInAlarm => "not_in_alarm",
            Self::NotOurs => "not_ours",
            Self::Refused => "refused",
            Self::Predictive => "predictive",
            Self::ForecastOnly => "forecast_only",
            Self::NoForecast => "no_forecast",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule that shaped a decision: its code and the sentence with the
/// numbers. `Display` writes the sentence alone (today's explanation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub code: Code,
    pub text: String,
}

impl Rule {
    pub fn new(code: Code, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The sentences of `rules`, joined by `separator`.
pub fn join(rules: &[Rule], separator: &str) -> String {
    rules
        .iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join(separator)
}

/// The codes of `rules`, comma-separated (for a log field).
pub fn codes(rules: &[Rule]) -> String {
    rules.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a log line or a test matches are the serialised ones.
    #[test]
    fn a_code_displays_as_it_serialises() {
        for code in [
            Code::OutsideLimits,
            Code::Step,
            Code::TargetTracking,
            Code::Schedule,
            Code::Proposals,
            Code::DatapointAge,
            Code::WarmUp,
            Code::Cooldown,
            Code::InProgress,
            Code::Rounded,
            Code::MinAdjustment,
            Code::Clamped,
            Code::Stabilised,
            Code::RateLimited,
            Code::StaleDatapoint,
            Code::ScaleInDisabled,
            Code::Protected,
            Code::AlreadyHandled,
            Code::AlreadyThere,
            Code::NoData,
            Code::NoStep,
            Code::NotInAlarm,
            Code::NotOurs,
            Code::Refused,
            Code::Predictive,
            Code::ForecastOnly,
            Code::NoForecast,
        ] {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<Code>(&json).expect("reads back"), code);
        }
        let rule = Rule::new(Code::Clamped, "clamped to max 10");
        assert_eq!(rule.to_string(), "clamped to max 10");
        assert_eq!(
            serde_json::to_value(&rule).expect("json"),
            serde_json::json!({"code": "clamped", "text": "clamped to max 10"})
        );
    }
}

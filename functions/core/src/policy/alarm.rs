//! Alarm (simple and step) policies: EC2 Auto Scaling's PutScalingPolicy
//! with its CloudWatch alarm, and their checks (`alarm_policy_problems`).

use super::*;

/// How step adjustments change the capacity (EC2 Auto Scaling's AdjustmentType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentType {
    #[serde(alias = "ChangeInCapacity")]
    ChangeInCapacity,
    #[serde(alias = "ExactCapacity")]
    ExactCapacity,
    #[serde(alias = "PercentChangeInCapacity")]
    PercentChangeInCapacity,
}

/// CloudWatch's treatment of missing datapoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingData {
    #[default]
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

/// One step: bounds relative to the threshold (metric - threshold) and the change.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Lower bound (None: minus infinity).
    pub lower: Option<f64>,
    /// Upper bound (None: plus infinity).
    pub upper: Option<f64>,
    /// Instances, percent or exact capacity, per the policy's adjustment type.
    pub change: i64,
}

/// The two kinds of alarm policy, as PutScalingPolicy's `PolicyType` names
/// them (EC2 Auto Scaling user guide, "Step and simple scaling policies"
/// and "Scaling cooldowns"):
///
/// - `simple`: one `change` whenever the alarm is in ALARM; waits for the
///   scaling activity in progress to finish and then for the cooldown
///   (`cooldown`, else the group's) before it acts again. Warm-up plays no
///   part.
/// - `step`: `steps` chosen by the size of the breach; no cooldown ("Cooldown
///   ... valid only if the policy type is SimpleScaling"): it acts again at
///   once, not counting instances still in their warm-up (`instance_warmup`,
///   EstimatedInstanceWarmup, else the group's), and no scale-in while any
///   warm up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyType {
    #[serde(alias = "SimpleScaling")]
    Simple,
    #[serde(alias = "StepScaling")]
    Step,
}

/// Simple or step scaling driven by one alarm.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmPolicy {
    /// `simple` or `step`; required (validation names it when missing).
    #[serde(default, rename = "type")]
    pub policy_type: Option<PolicyType>,
    pub alarm: String,
    pub metric: MetricSpec,
    pub comparison: Comparison,
    pub threshold: f64,
    #[serde(deserialize_with = "duration")]
    pub period: Duration,
    pub evaluation_periods: u32,
    /// M of N: datapoints that must breach (default: all `evaluation_periods`).
    pub datapoints_to_alarm: Option<u32>,
    #[serde(default)]
    pub missing_data: MissingData,
    pub adjustment: AdjustmentType,
    /// Simple scaling: the one change (ScalingAdjustment).
    pub change: Option<i64>,
    /// Step scaling: the step adjustments.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Only for percent changes: the smallest change in instances.
    pub min_adjustment_magnitude: Option<u32>,
    /// Simple scaling only: the cooldown after this policy acts (default: the group's).
    #[serde(default, deserialize_with = "optional_duration")]
    pub cooldown: Option<Duration>,
    /// Step scaling only: how long a new instance is not counted
    /// (EstimatedInstanceWarmup; default: the group's warm-up).
    #[serde(default, deserialize_with = "optional_duration")]
    pub instance_warmup: Option<Duration>,
}

impl AlarmPolicy {
    /// The policy's kind; a file without one is refused by validation, and
    /// AWS's own default (SimpleScaling) stands in for it otherwise.
    pub fn kind(&self) -> PolicyType {
        self.policy_type.unwrap_or(PolicyType::Simple)
    }

    /// The adjustments a breach picks from: a step policy's steps, or a
    /// simple policy's one change as a step covering the whole breach side
    /// of the threshold.
    pub fn adjustments(&self) -> std::borrow::Cow<'_, [Step]> {
        match self.kind() {
            PolicyType::Step => std::borrow::Cow::Borrowed(&self.steps),
            PolicyType::Simple => {
                let (lower, upper) = if self.comparison.is_upper() {
                    (Some(0.0), None)
                } else {
                    (None, Some(0.0))
                };
                std::borrow::Cow::Owned(vec![Step {
                    lower,
                    upper,
                    change: self.change.unwrap_or(0),
                }])
            }
        }
    }

    /// The cooldown this policy starts and waits for (simple scaling only).
    pub fn cooldown_in(&self, group: &GroupPolicy) -> Option<Duration> {
        (self.kind() == PolicyType::Simple).then(|| self.cooldown.unwrap_or(group.cooldown))
    }

    /// The warm-up during which new instances are not counted (step scaling only).
    pub fn warmup_in(&self, group: &GroupPolicy) -> Option<Duration> {
        (self.kind() == PolicyType::Step).then(|| self.instance_warmup.unwrap_or_else(|| group.warmup()))
    }
}

pub(super) fn alarm_policy_problems(policy: &AlarmPolicy, at: &str, problems: &mut Vec<String>) {
    if !valid_name(&policy.alarm) {
        problems.push(format!(
            "{at}.alarm: {:?} must be 1-64 letters, digits, - or _",
            policy.alarm
        ));
    }
    if let Some(cooldown) = policy.cooldown
        && cooldown > HISTORY
    {
        problems.push(format!(
            "{at}.cooldown: {cooldown:?} is longer than the {}s of history decisions read",
            HISTORY.as_secs()
        ));
    }
    let period = policy.period.as_secs();
    if policy.period.subsec_nanos() != 0
        || !(period == 10 || period == 20 || period == 30 || (period >= 60 && period.is_multiple_of(60)))
    {
        problems.push(format!(
            "{at}.period: {:?} must be 10s, 20s, 30s or a multiple of 60s",
            policy.period
        ));
    }
    if policy.evaluation_periods == 0 || u64::from(policy.evaluation_periods) * period > 86_400 {
        problems.push(format!(
            "{at}.evaluation_periods: {} must be >= 1 with evaluation_periods x period <= 1 day",
            policy.evaluation_periods
        ));
    }
    if let Some(m) = policy.datapoints_to_alarm
        && (m == 0 || m > policy.evaluation_periods)
    {
        problems.push(format!(
            "{at}.datapoints_to_alarm: {m} must be in 1..={}",
            policy.evaluation_periods
        ));
    }
    if !policy.threshold.is_finite() {
        problems.push(format!("{at}.threshold: must be a finite number"));
    }
    if policy.min_adjustment_magnitude.is_some() && policy.adjustment != AdjustmentType::PercentChangeInCapacity {
        problems.push(format!(
            "{at}.min_adjustment_magnitude: only allowed with adjustment = \"percent_change_in_capacity\""
        ));
    }
    let changes = kind_problems(policy, at, problems);
    if policy.adjustment == AdjustmentType::ExactCapacity && policy.adjustments().iter().any(|s| s.change < 0) {
        problems.push(format!("{at}.{changes}: exact_capacity changes must be >= 0"));
    }
    // Issue 25.6: a change of i64::MAX validated, then overflowed and the
    // scale-out was lost. AWS's ScalingAdjustment is a 32-bit integer; a
    // group holds at most MAX_GROUP_SIZE instances, so a larger change means
    // the same as that bound and is refused as a likely typo.
    let (lowest, highest) = match policy.adjustment {
        AdjustmentType::ChangeInCapacity => (-i64::from(MAX_GROUP_SIZE), i64::from(MAX_GROUP_SIZE)),
        AdjustmentType::ExactCapacity => (0, i64::from(MAX_GROUP_SIZE)),
        // -100% empties the group; +10000% multiplies it by 101.
        AdjustmentType::PercentChangeInCapacity => (-100, 10_000),
    };
    for (index, step) in policy.adjustments().iter().enumerate() {
        if !(lowest..=highest).contains(&step.change) {
            let field = match policy.kind() {
                PolicyType::Step => format!("steps[{index}].change"),
                PolicyType::Simple => "change".into(),
            };
            problems.push(format!(
                "{at}.{field}: {} must be within {lowest}..={highest} for {:?}",
                step.change, policy.adjustment
            ));
        }
    }
    if policy.kind() == PolicyType::Step {
        steps_problems(&policy.steps, policy.comparison, &format!("{at}.steps"), problems);
    }
}

/// The fields each policy type has and refuses (PutScalingPolicy: `Cooldown`
/// "valid only if the policy type is SimpleScaling", `StepAdjustments`
/// "required if the policy type is StepScaling", `ScalingAdjustment`
/// "required if the policy type is SimpleScaling", `EstimatedInstanceWarmup`
/// "not used if the policy type is SimpleScaling"). Returns the field that
/// holds the changes.
pub(super) fn kind_problems(policy: &AlarmPolicy, at: &str, problems: &mut Vec<String>) -> &'static str {
    let Some(kind) = policy.policy_type else {
        let hint = if policy.change.is_some() {
            " (this one has a change: type = \"simple\")"
        } else {
            ""
        };
        problems.push(format!(
            "{at}.type: required: \"simple\" (one change, then a cooldown) or \"step\" (steps by breach size, instance warm-up, no cooldown){hint}"
        ));
        return "steps";
    };
    match kind {
        PolicyType::Simple => {
            if policy.change.is_none() {
                problems.push(format!(
                    "{at}.change: required for type = \"simple\" (the one adjustment, e.g. change = 2)"
                ));
            }
            if !policy.steps.is_empty() {
                problems.push(format!(
                    "{at}.steps: only for type = \"step\"; a simple policy has one change (change = N)"
                ));
            }
            if policy.instance_warmup.is_some() {
                problems.push(format!(
                    "{at}.instance_warmup: only for type = \"step\"; simple scaling waits for its cooldown instead"
                ));
            }
            "change"
        }
        PolicyType::Step => {
            if policy.change.is_some() {
                problems.push(format!(
                    "{at}.change: only for type = \"simple\"; a step policy has steps = [...]"
                ));
            }
            if policy.cooldown.is_some() {
                problems.push(format!(
                    "{at}.cooldown: only for type = \"simple\" (AWS: Cooldown is valid only for SimpleScaling); a step policy uses instance_warmup"
                ));
            }
            "steps"
        }
    }
}

/// AWS's rules for step adjustments: no gaps, no overlaps, at most one open
/// bound each way, and the steps cover the breach side of the threshold.
pub(super) fn steps_problems(steps: &[Step], comparison: Comparison, at: &str, problems: &mut Vec<String>) {
    if steps.is_empty() {
        problems.push(format!("{at}: at least one step is required"));
        return;
    }
    for (index, step) in steps.iter().enumerate() {
        if step.lower.is_none() && step.upper.is_none() {
            problems.push(format!("{at}[{index}]: lower and upper cannot both be open"));
        }
        if let (Some(lower), Some(upper)) = (step.lower, step.upper)
            && lower >= upper
        {
            problems.push(format!("{at}[{index}]: lower {lower} must be < upper {upper}"));
        }
        if step.lower.is_some_and(|v| !v.is_finite()) || step.upper.is_some_and(|v| !v.is_finite()) {
            problems.push(format!(
                "{at}[{index}]: bounds must be finite numbers (omit a bound for infinity)"
            ));
        }
    }
    let mut sorted: Vec<&Step> = steps.iter().collect();
    sorted.sort_by(|a, b| {
        a.lower
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY))
    });
    for pair in sorted.windows(2) {
        let (upper, next_lower) = (
            pair[0].upper.unwrap_or(f64::INFINITY),
            pair[1].lower.unwrap_or(f64::NEG_INFINITY),
        );
        if upper < next_lower {
            problems.push(format!(
                "{at}: gap between {upper} and {next_lower}; step ranges must be contiguous"
            ));
        } else if upper > next_lower {
            problems.push(format!(
                "{at}: ranges overlap at {next_lower}..{upper}; step ranges must not overlap"
            ));
        }
    }
    let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
    if comparison.is_upper() {
        if last.upper.is_some() {
            problems.push(format!(
                "{at}: the highest step needs no upper bound (it covers everything above) for a {} alarm",
                comparison.symbol()
            ));
        }
        if first.lower.is_some_and(|l| l > 0.0) {
            problems.push(format!(
                "{at}: the lowest step must start at 0 (the threshold) for a {} alarm",
                comparison.symbol()
            ));
        }
    } else {
        if first.lower.is_some() {
            problems.push(format!(
                "{at}: the lowest step needs no lower bound (it covers everything below) for a {} alarm",
                comparison.symbol()
            ));
        }
        if last.upper.is_some_and(|u| u < 0.0) {
            problems.push(format!(
                "{at}: the highest step must end at 0 (the threshold) for a {} alarm",
                comparison.symbol()
            ));
        }
    }
}

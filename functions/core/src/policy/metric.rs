//! The metrics a policy reads: a CloudWatch metric with its statistic
//! (one implementation for every part), the comparison an alarm makes, and
//! which metrics this stack publishes.

use super::*;

/// A CloudWatch metric and the statistic an alarm reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub namespace: String,
    pub name: String,
    pub stat: Statistic,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
}

/// A CloudWatch statistic: one of the five named statistics or a percentile
/// `pNN` (CloudWatch's PutMetricAlarm `ExtendedStatistic` pattern
/// `p(\d{1,2}(\.\d{0,2})?|100)`: p0 to p100, at most two decimals).
/// Parsed once; written back as CloudWatch spells it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Statistic {
    Average,
    Sum,
    Minimum,
    Maximum,
    SampleCount,
    /// pNN: the percentile NN (0 to 100).
    Percentile(f64),
}

/// The median of `values` (the mean of the middle two of an even count),
/// sorting them; None when there are none. Not CloudWatch's p50 (nearest
/// rank): what predictive scaling's daily forecast and the backtest's
/// capacity calibration take.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

impl Statistic {
    /// The statistic of `samples` (None when there are none); percentiles by
    /// nearest rank.
    pub fn of(self, samples: &[f64]) -> Option<f64> {
        self.of_repeated(samples.iter().map(|v| (*v, 1)))
    }

    /// The statistic of samples given as (value, how many samples have that
    /// value): what CloudWatch computes over a metric aggregated by a
    /// dimension many sources publish under. EC2 publishes each instance's
    /// `CPUUtilization` under `AutoScalingGroupName` too, so a period's
    /// statistic is over every instance's datapoints: `SampleCount` is
    /// instances x minutes and `Sum` adds them (CloudWatch User Guide,
    /// "Aggregate statistics by Auto Scaling group": `SampleCount` 18 for
    /// a 6-minute period of 3 instances). The one implementation: the
    /// local cloud's metric store and the backtest (whose instances all
    /// report the same value, so it passes one value a minute with its
    /// count) both compute through it.
    pub fn of_repeated(self, samples: impl IntoIterator<Item = (f64, u32)>) -> Option<f64> {
        let mut sorted: Vec<(f64, u32)> = Vec::new();
        let (mut n, mut sum, mut low, mut high) = (0u64, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for (value, count) in samples.into_iter().filter(|(_, count)| *count > 0) {
            n += u64::from(count);
            sum += value * f64::from(count);
            (low, high) = (low.min(value), high.max(value));
            if matches!(self, Self::Percentile(_)) {
                sorted.push((value, count));
            }
        }
        if n == 0 {
            return None;
        }
        Some(match self {
            Self::Average => sum / n as f64,
            Self::Sum => sum,
            Self::Minimum => low,
            Self::Maximum => high,
            Self::SampleCount => n as f64,
            Self::Percentile(q) => {
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
                let rank = ((q / 100.0) * n as f64).ceil().max(1.0) as u64;
                let mut seen = 0u64;
                sorted
                    .iter()
                    .find(|(_, count)| {
                        seen += u64::from(*count);
                        seen >= rank
                    })
                    .or(sorted.last())
                    .map_or(high, |(value, _)| *value)
            }
        })
    }

    /// CloudWatch puts percentiles in `ExtendedStatistic`, the others in `Statistic`.
    pub fn is_percentile(self) -> bool {
        matches!(self, Self::Percentile(_))
    }
}

impl std::fmt::Display for Statistic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Average => f.write_str("Average"),
            Self::Sum => f.write_str("Sum"),
            Self::Minimum => f.write_str("Minimum"),
            Self::Maximum => f.write_str("Maximum"),
            Self::SampleCount => f.write_str("SampleCount"),
            Self::Percentile(q) => write!(f, "p{q}"),
        }
    }
}

impl std::str::FromStr for Statistic {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "Average" => Self::Average,
            "Sum" => Self::Sum,
            "Minimum" => Self::Minimum,
            "Maximum" => Self::Maximum,
            "SampleCount" => Self::SampleCount,
            _ => {
                let percentile = text.strip_prefix('p').filter(|digits| {
                    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
                    let digit = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
                    (*digits == "100" || (1..=2).contains(&whole.len()))
                        && digit(whole)
                        && digit(fraction)
                        && fraction.len() <= 2
                });
                match percentile.and_then(|digits| digits.parse::<f64>().ok()) {
                    Some(q) if (0.0..=100.0).contains(&q) => Self::Percentile(q),
                    _ => {
                        return Err(format!(
                            "{text:?} is not one of Average, Sum, Minimum, Maximum, SampleCount or pNN (p0 to p100, e.g. p99 or p99.9)"
                        ));
                    }
                }
            }
        })
    }
}

impl TryFrom<String> for Statistic {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Statistic> for String {
    fn from(stat: Statistic) -> Self {
        stat.to_string()
    }
}

/// How an alarm compares its statistic with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">", alias = "GreaterThanThreshold")]
    Greater,
    #[serde(rename = ">=", alias = "GreaterThanOrEqualToThreshold")]
    GreaterOrEqual,
    #[serde(rename = "<", alias = "LessThanThreshold")]
    Less,
    #[serde(rename = "<=", alias = "LessThanOrEqualToThreshold")]
    LessOrEqual,
}

impl Comparison {
    /// Whether `value` breaches `threshold`.
    pub fn breached(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Greater => value > threshold,
            Self::GreaterOrEqual => value >= threshold,
            Self::Less => value < threshold,
            Self::LessOrEqual => value <= threshold,
        }
    }

    /// True for the alarms that fire above their threshold.
    pub fn is_upper(self) -> bool {
        matches!(self, Self::Greater | Self::GreaterOrEqual)
    }

    /// The symbol used in explanations.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
            Self::Less => "<",
            Self::LessOrEqual => "<=",
        }
    }
}

/// The metrics something in the stack publishes, that an alarm may watch:
/// on AWS, EC2 (for the group's instances, aggregated by
/// `AutoScalingGroupName`) and the load balancer (per target group); in the
/// local cloud, its sampler, with the same names, dimensions and meaning.
/// An alarm on anything else would work on neither, or (as `Custom/Web QPS`
/// did, issue 18) fire on the laptop and never on AWS, where nothing
/// publishes it.
///
/// | namespace / name | dimensions | statistics |
/// |---|---|---|
/// | AWS/EC2 CPUUtilization | AutoScalingGroupName = a group of the file | any |
/// | AWS/ApplicationELB RequestCountPerTarget | TargetGroup = a group of the file (its target group) | Sum only (ALB docs: "the only valid statistic is Sum", the requests per target) |
/// | AWS/ApplicationELB HTTPCode_ELB_503_Count | LoadBalancer = a group of the file (its own load balancer) | Sum only (ALB docs: Minimum, Maximum and Average all return 1) |
///
/// `HTTPCode_ELB_503_Count` is what scales a group out from zero: with no
/// instance there is no CPU, and the ALB counts `RequestCount` (and so
/// `RequestCountPerTarget`) only for requests it could choose a target for;
/// the requests it answers 503 for want of one are counted by load
/// balancer only, so each group has its own (see `functions::cfn`).
pub fn published(metric: &MetricSpec, groups: &[&str]) -> Result<(), String> {
    const ALLOWED: &str = "alarms can watch AWS/EC2 CPUUtilization { AutoScalingGroupName = GROUP }, AWS/ApplicationELB RequestCountPerTarget { TargetGroup = GROUP } (stat Sum) or AWS/ApplicationELB HTTPCode_ELB_503_Count { LoadBalancer = GROUP } (stat Sum), GROUP a group of this file";
    let (dimension, stat_ok) = match (metric.namespace.as_str(), metric.name.as_str()) {
        ("AWS/EC2", "CPUUtilization") => ("AutoScalingGroupName", true),
        ("AWS/ApplicationELB", "RequestCountPerTarget") => ("TargetGroup", metric.stat == Statistic::Sum),
        ("AWS/ApplicationELB", "HTTPCode_ELB_503_Count") => ("LoadBalancer", metric.stat == Statistic::Sum),
        (namespace, name) => {
            return Err(format!(
                "{namespace}/{name} is published by nothing in this stack (on AWS the alarm would never see a datapoint); {ALLOWED}"
            ));
        }
    };
    let keys: Vec<&str> = metric.dimensions.keys().map(String::as_str).collect();
    let group = metric.dimensions.get(dimension).map(String::as_str);
    if keys != [dimension] || !group.is_some_and(|g| groups.contains(&g)) {
        return Err(format!(
            "{}/{} with dimensions {{ {} }}: published only with {dimension} = one of the file's groups ({}); {ALLOWED}",
            metric.namespace,
            metric.name,
            metric
                .dimensions
                .iter()
                .map(|(k, v)| format!("{k} = {v:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            groups.join(", ")
        ));
    }
    if !stat_ok {
        return Err(format!(
            "{}/{}: stat {} is not valid for it; the only valid statistic is Sum (a count of requests)",
            metric.namespace, metric.name, metric.stat
        ));
    }
    Ok(())
}

/// Whether `metric` has datapoints while the group has no instance: only
/// the load balancer's 503s for want of a target.
pub fn seen_at_zero(metric: &MetricSpec) -> bool {
    metric.namespace == "AWS/ApplicationELB" && metric.name == "HTTPCode_ELB_503_Count"
}

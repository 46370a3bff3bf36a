//! The metric store, with CloudWatch semantics: raw samples per metric and
//! dimension set, read back as a statistic (Average, Sum, Minimum, Maximum,
//! SampleCount, pNN) over a period. What the local cloud publishes, one
//! sample per instance (or per group) each cloud minute:
//!
//! | namespace / name                         | dimensions                  | value |
//! |------------------------------------------|-----------------------------|-------|
//! | AWS/EC2 CPUUtilization                   | InstanceId; AutoScalingGroupName | % of the instance's CPU cap |
//! | AWS/ApplicationELB RequestCountPerTarget | TargetGroup (group name)    | requests a minute per healthy target, at the wall-clock rate |
//! | AWS/ApplicationELB RequestCount          | LoadBalancer; LoadBalancer, TargetGroup | requests a minute at the wall-clock rate |
//! | AWS/ApplicationELB HTTPCode_Target_5XX_Count | LoadBalancer; LoadBalancer, TargetGroup | requests answered 5xx by a target (shed), a minute, wall-clock rate |
//! | AWS/ApplicationELB TargetResponseTime    | LoadBalancer, TargetGroup   | seconds, one sample per request |
//!
//! Only the names and dimension sets AWS publishes (the load balancer's
//! only in a minute with requests): an alarm on anything else finds no
//! datapoint here either (`scaling::policy::published` refuses it).
//!
//! Request counts are rates: at `--speed` 60 a cloud minute lasts one wall
//! second, and a count per cloud minute would be 60 times too small.

use std::collections::{BTreeMap, VecDeque};

use jiff::{SignedDuration, Timestamp};
use scaling::policy::MetricSpec;

/// A metric and one dimension set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

impl SeriesKey {
    pub fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            dimensions: dimensions.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }
}

/// Raw samples, kept for `retention` of cloud time, each readable only
/// once CloudWatch's ingestion delay has passed since its period started
/// (`scaling::cloudwatch`): every read goes through [`MetricStore::at`].
#[derive(Debug)]
pub struct MetricStore {
    series: BTreeMap<SeriesKey, VecDeque<(Timestamp, f64)>>,
    retention: SignedDuration,
    delay: std::time::Duration,
}

impl Default for MetricStore {
    fn default() -> Self {
        Self::with_delay(scaling::cloudwatch::INGESTION_DELAY)
    }
}

impl MetricStore {
    /// How long the local cloud keeps samples (cloud time).
    pub const RETENTION: SignedDuration = SignedDuration::from_hours(3);

    /// A store that keeps samples for [`Self::RETENTION`], readable after `delay`.
    pub fn with_delay(delay: std::time::Duration) -> Self {
        Self::new(Self::RETENTION, delay)
    }

    pub fn new(retention: SignedDuration, delay: std::time::Duration) -> Self {
        Self {
            series: BTreeMap::new(),
            retention,
            delay,
        }
    }

    /// The ingestion delay in effect.
    pub fn delay(&self) -> std::time::Duration {
        self.delay
    }

    /// Adds one sample, stamped with the start of the minute it covers.
    pub fn put(&mut self, key: SeriesKey, at: Timestamp, value: f64) {
        if !value.is_finite() {
            return;
        }
        let series = self.series.entry(key).or_default();
        series.push_back((at, value));
        while series.front().is_some_and(|(t, _)| *t < at - self.retention) {
            series.pop_front();
        }
    }

    /// The store as CloudWatch shows it at `now`: only readable samples.
    pub fn at(&self, now: Timestamp) -> Readable<'_> {
        Readable { store: self, now }
    }
}

/// What a read at one moment sees.
#[derive(Debug, Clone, Copy)]
pub struct Readable<'a> {
    store: &'a MetricStore,
    now: Timestamp,
}

impl Readable<'_> {
    /// Samples of a series in `[start, end)`, with their times.
    pub fn points(&self, key: &SeriesKey, start: Timestamp, end: Timestamp) -> Vec<(Timestamp, f64)> {
        let (delay, now) = (self.store.delay, self.now);
        self.store
            .series
            .get(key)
            .map(|s| {
                s.iter()
                    .filter(|(t, _)| *t >= start && *t < end && scaling::cloudwatch::readable(*t, delay, now))
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The samples of the newest minute of a series that can be read now
    /// (looking back past the ingestion delay), oldest first.
    pub fn newest_minute(&self, key: &SeriesKey) -> Vec<f64> {
        let delay = SignedDuration::try_from(self.store.delay).unwrap_or(SignedDuration::ZERO);
        let points = self.points(
            key,
            self.now - delay - SignedDuration::from_mins(3),
            self.now + SignedDuration::from_mins(1),
        );
        let newest = points.last().map(|(t, _)| *t);
        points
            .into_iter()
            .filter(|(t, _)| Some(*t) == newest)
            .map(|(_, v)| v)
            .collect()
    }

    /// Sample values of a series in `[start, end)`.
    pub fn samples(&self, key: &SeriesKey, start: Timestamp, end: Timestamp) -> Vec<f64> {
        self.points(key, start, end).into_iter().map(|(_, v)| v).collect()
    }

    /// The statistic of a metric over `[end - period, end)`; None when no sample.
    pub fn statistic(&self, metric: &MetricSpec, period: SignedDuration, end: Timestamp) -> Option<f64> {
        let key = SeriesKey {
            namespace: metric.namespace.clone(),
            name: metric.name.clone(),
            dimensions: metric.dimensions.clone(),
        };
        metric.stat.of(&self.samples(&key, end - period, end))
    }
}

/// The value of a Prometheus text-format sample without labels.
pub fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name)).then(|| parts.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(stat: &str) -> MetricSpec {
        MetricSpec {
            namespace: "AWS/EC2".into(),
            name: "CPUUtilization".into(),
            stat: stat.parse().expect("statistic"),
            dimensions: [("AutoScalingGroupName".to_string(), "web".to_string())].into(),
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("time")
    }

    #[test]
    fn statistics_over_a_period() {
        let mut store = MetricStore::with_delay(std::time::Duration::ZERO);
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", "web")]);
        for (s, v) in [(0, 10.0), (60, 20.0), (120, 90.0), (180, 40.0), (300, 99.0)] {
            store.put(key.clone(), t(s), v);
        }
        let store = store.at(t(3600));
        let period = SignedDuration::from_secs(300);
        let cases = [
            ("Average", 40.0),
            ("Sum", 160.0),
            ("Minimum", 10.0),
            ("Maximum", 90.0),
            ("SampleCount", 4.0),
            ("p50", 20.0),
            ("p99", 90.0),
        ];
        for (stat, expected) in cases {
            assert_eq!(store.statistic(&spec(stat), period, t(300)), Some(expected), "{stat}");
        }
        // The period is [end - period, end): the sample at 300 is the next one's.
        assert_eq!(store.statistic(&spec("Maximum"), period, t(600)), Some(99.0));
        assert_eq!(store.statistic(&spec("Average"), period, t(-1)), None);
    }

    #[test]
    fn old_samples_expire() {
        let mut store = MetricStore::new(SignedDuration::from_secs(600), std::time::Duration::ZERO);
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("InstanceId", "i-1")]);
        store.put(key.clone(), t(0), 1.0);
        store.put(key.clone(), t(700), 2.0);
        assert_eq!(store.at(t(1000)).samples(&key, t(-10), t(1000)), [2.0]);
    }

    /// EC2's detailed-monitoring datapoints reach CloudWatch 2-3 minutes after
    /// their minute starts (`scaling::cloudwatch::INGESTION_DELAY`): a read
    /// sees a sample only from then on, whatever the range asked for.
    #[test]
    fn a_sample_is_readable_only_after_the_ingestion_delay() {
        let mut store = MetricStore::default();
        assert_eq!(store.delay(), scaling::cloudwatch::INGESTION_DELAY);
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", "web")]);
        store.put(key.clone(), t(0), 1.0);
        store.put(key.clone(), t(60), 2.0);
        let delay = scaling::cloudwatch::INGESTION_DELAY.as_secs() as i64;
        assert_eq!(store.at(t(59)).samples(&key, t(0), t(120)), Vec::<f64>::new());
        assert_eq!(store.at(t(delay - 1)).samples(&key, t(0), t(120)), Vec::<f64>::new());
        assert_eq!(store.at(t(delay)).samples(&key, t(0), t(120)), [1.0]);
        assert_eq!(store.at(t(delay + 60)).samples(&key, t(0), t(120)), [1.0, 2.0]);
        let period = SignedDuration::from_secs(60);
        assert_eq!(store.at(t(delay)).statistic(&spec("Average"), period, t(120)), None);
        assert_eq!(
            store.at(t(delay + 60)).statistic(&spec("Average"), period, t(120)),
            Some(2.0)
        );
    }

    #[test]
    fn reads_prometheus_samples() {
        let text = "# HELP workload_cpu_seconds CPU\n# TYPE workload_cpu_seconds counter\nworkload_cpu_seconds_total 1.5\nworkload_cpu_capacity_cores 0.2\n";
        assert_eq!(prometheus_value(text, "workload_cpu_seconds_total"), Some(1.5));
        assert_eq!(prometheus_value(text, "workload_cpu_capacity_cores"), Some(0.2));
        assert_eq!(prometheus_value(text, "workload_cpu"), None);
    }
}

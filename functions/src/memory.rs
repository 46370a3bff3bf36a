//! An in-memory cloud implementing both ports, for tests and offline runs.
//! It enforces what EC2 Auto Scaling enforces at the API (unknown group,
//! desired outside min..=max) and records every change as an activity.

use std::collections::BTreeMap;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::decide::{Activity, AlarmStatus, Datapoint, Instance, Lifecycle, MetricHistory, Observation};
use crate::policy::{GroupPolicy, MetricSpec, TrackedMetric};
use crate::ports::{GroupPort, MetricsPort, PortError};
use crate::tracking::metric_key;

/// The fake cloud. Time is whatever [`MemoryCloud::set_now`] says.
#[derive(Debug)]
pub struct MemoryCloud {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    now: Timestamp,
    groups: BTreeMap<String, (Observation, Vec<Activity>)>,
    /// Per tracked-metric key, per instance.
    tracked: BTreeMap<String, BTreeMap<String, Vec<Datapoint>>>,
    /// Per `NAMESPACE/NAME`, group-level datapoints (what alarms read).
    series: BTreeMap<String, Vec<Datapoint>>,
    alarms: BTreeMap<String, AlarmStatus>,
    /// Per group, the hourly sums its load is made of (predictive scaling).
    hourly: BTreeMap<String, scaling::predictive::HourlySums>,
    launched: u32,
}

impl MemoryCloud {
    /// An empty cloud whose clock reads `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            inner: Mutex::new(Inner {
                now,
                groups: BTreeMap::new(),
                tracked: BTreeMap::new(),
                series: BTreeMap::new(),
                alarms: BTreeMap::new(),
                hourly: BTreeMap::new(),
                launched: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock.
    pub fn set_now(&self, now: Timestamp) {
        self.lock().now = now;
    }

    /// Adds (or replaces) a group.
    pub fn put_group(&self, name: &str, observed: Observation) {
        self.lock().groups.insert(name.to_string(), (observed, Vec::new()));
    }

    /// The group as it is now.
    pub fn group(&self, name: &str) -> Option<Observation> {
        self.lock().groups.get(name).map(|(o, _)| o.clone())
    }

    /// Records a datapoint of a tracked metric (`cpu`, ...) for an instance.
    pub fn push_tracked(&self, key: &str, instance: &str, point: Datapoint) {
        self.lock()
            .tracked
            .entry(key.into())
            .or_default()
            .entry(instance.into())
            .or_default()
            .push(point);
    }

    /// Records a group-level datapoint of `NAMESPACE/NAME`.
    pub fn push_series(&self, metric: &MetricSpec, point: Datapoint) {
        self.lock()
            .series
            .entry(format!("{}/{}", metric.namespace, metric.name))
            .or_default()
            .push(point);
    }

    /// Sets the hourly sums (CloudWatch's hourly `Sum`s) a group's load is made of.
    pub fn put_hourly_sums(&self, group: &str, sums: scaling::predictive::HourlySums) {
        self.lock().hourly.insert(group.to_string(), sums);
    }

    /// Sets an alarm's state.
    pub fn put_alarm(&self, status: AlarmStatus) {
        self.lock().alarms.insert(status.name.clone(), status);
    }
}

impl Inner {
    fn group_mut(&mut self, operation: &str, group: &str) -> Result<&mut (Observation, Vec<Activity>), PortError> {
        self.groups
            .get_mut(group)
            .ok_or_else(|| PortError::not_found(format!("{operation} {group}"), format!("no group named {group}")))
    }

    /// Applies a new desired capacity: launches or terminates
    /// (`scaling::group::termination_order`) and records the activity.
    fn apply(&mut self, operation: &str, group: &str, desired: u32, cause: &str) -> Result<(), PortError> {
        let now = self.now;
        let mut launched = self.launched;
        let (observed, activities) = self.group_mut(operation, group)?;
        if !(observed.min..=observed.max).contains(&desired) {
            return Err(PortError::invalid(
                format!("{operation} {group}"),
                format!(
                    "desired {desired} is outside min..=max ({}..={})",
                    observed.min, observed.max
                ),
            ));
        }
        let from = observed.desired;
        observed.desired = desired;
        while (observed.instances.len() as u32) < desired {
            launched += 1;
            observed.instances.push(Instance {
                id: format!("i-mem{launched:05}"),
                lifecycle: Lifecycle::Pending,
                launched_at: now,
                protected: false,
            });
        }
        // The one termination rule (oldest first, never a protected
        // instance: only protected ones left stay); one zone here.
        let excess = observed.instances.len().saturating_sub(desired as usize);
        scaling::group::remove_for_scale_in(&mut observed.instances, excess, |i| scaling::group::Candidate {
            id: &i.id,
            az: "",
            launched_at: i.launched_at,
            protected: i.protected,
        });
        if from != desired || !cause.is_empty() {
            activities.push(Activity {
                start: now,
                end: Some(now),
                from,
                to: desired,
                cause: cause.to_string(),
            });
        }
        self.launched = launched;
        Ok(())
    }
}

impl GroupPort for MemoryCloud {
    async fn describe(&self, group: &str) -> Result<Observation, PortError> {
        let mut inner = self.lock();
        Ok(inner.group_mut("DescribeAutoScalingGroups", group)?.0.clone())
    }

    async fn activities(&self, group: &str, since: Timestamp) -> Result<Vec<Activity>, PortError> {
        let mut inner = self.lock();
        let (_, activities) = inner.group_mut("DescribeScalingActivities", group)?;
        Ok(activities.iter().filter(|a| a.start >= since).cloned().collect())
    }

    async fn set_desired(&self, group: &str, desired: u32, cause: &str) -> Result<(), PortError> {
        self.lock().apply("SetDesiredCapacity", group, desired, cause)
    }

    async fn set_limits(&self, group: &str, min: u32, max: u32, desired: u32, cause: &str) -> Result<(), PortError> {
        let mut inner = self.lock();
        let operation = "UpdateAutoScalingGroup";
        if min > max {
            return Err(PortError::invalid(
                format!("{operation} {group}"),
                format!("min {min} is above max {max}"),
            ));
        }
        let (observed, _) = inner.group_mut(operation, group)?;
        let previous = (observed.min, observed.max);
        (observed.min, observed.max) = (min, max);
        let applied = inner.apply(operation, group, desired, cause);
        if applied.is_err() {
            // Nothing half-applied: restore the limits.
            if let Ok((observed, _)) = inner.group_mut(operation, group) {
                (observed.min, observed.max) = previous;
            }
        }
        applied
    }
}

impl MetricsPort for MemoryCloud {
    async fn history(
        &self,
        group: &GroupPolicy,
        instances: &[String],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<MetricHistory, PortError> {
        let inner = self.lock();
        let mut history = MetricHistory::default();
        for policy in &group.target_tracking {
            let key = metric_key(&policy.metric);
            let per_instance = inner.tracked.get(&key);
            let entry = history.metrics.entry(key).or_default();
            for id in instances {
                let points: Vec<Datapoint> = per_instance
                    .and_then(|m| m.get(id))
                    .map(|points| {
                        points
                            .iter()
                            .filter(|d| d.at >= since && d.at <= until)
                            .copied()
                            .collect()
                    })
                    .unwrap_or_default();
                if !points.is_empty() {
                    entry.insert(id.clone(), points);
                }
            }
        }
        Ok(history)
    }

    async fn load(
        &self,
        group: &GroupPolicy,
        metric: &TrackedMetric,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<Datapoint>, PortError> {
        let inner = self.lock();
        let within = |series: &[Datapoint]| -> Vec<Datapoint> {
            series
                .iter()
                .filter(|d| d.at >= since && d.at < until)
                .copied()
                .collect()
        };
        let sums = inner.hourly.get(&group.name).cloned().unwrap_or_default();
        let sums = scaling::predictive::HourlySums {
            cpu: within(&sums.cpu),
            requests: within(&sums.requests),
            shed: within(&sums.shed),
        };
        Ok(scaling::predictive::hourly_load(metric, &sums))
    }

    async fn latest(&self, metric: &MetricSpec, until: Timestamp) -> Result<Option<f64>, PortError> {
        let inner = self.lock();
        Ok(inner
            .series
            .get(&format!("{}/{}", metric.namespace, metric.name))
            .and_then(|points| points.iter().filter(|d| d.at <= until).max_by_key(|d| d.at))
            .map(|d| d.value))
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmStatus>, PortError> {
        let inner = self.lock();
        Ok(names.iter().filter_map(|n| inner.alarms.get(n).cloned()).collect())
    }
}

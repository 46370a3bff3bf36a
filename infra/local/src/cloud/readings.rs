//! What the local CloudWatch shows the cloud's readers: the tracked
//! metrics of a group (with `cpu_demand` computed by the core), the newest
//! statistic of an alarm's metric, raw samples.

use super::*;

impl Cloud {
    pub(super) fn latest_cpu(&self, instance: &str) -> Option<f64> {
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("InstanceId", instance)]);
        self.newest_minute(&key).last().copied()
    }

    /// Per-instance datapoints of the deciding policy's tracked metrics of
    /// `group` in `[since, until)` (see [`Cloud::tracked_history`]).
    pub fn metric_history(
        &self,
        group: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<scaling::decide::MetricHistory> {
        let policy = self
            .inner
            .config
            .policy
            .group(group)
            .ok_or_else(|| Error::NoSuchGroup {
                group: group.into(),
                groups: self.group_names().join(", "),
            })?;
        let tracked: Vec<_> = policy.target_tracking.iter().map(|t| t.metric.clone()).collect();
        self.tracked_history(group, &tracked, since, until)
    }

    /// Per-instance datapoints of the metrics `tracked` (whatever policy
    /// asks: the deciding one's function or a shadow's, as GetMetricData
    /// answers any reader) in `[since, until)`, keyed as the functions read
    /// them (`cpu`, `cpu_demand`, `request_count_per_target`, `NAMESPACE/NAME`).
    pub fn tracked_history(
        &self,
        group: &str,
        tracked: &[scaling::policy::TrackedMetric],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<scaling::decide::MetricHistory> {
        let snapshot = self.group(group)?;
        // As CloudWatch shows it now: the latest minutes are not in yet.
        let now = self.clock().now();
        let store = lock(&self.inner.store);
        let store = store.at(now);
        let mut history = scaling::decide::MetricHistory::default();
        for metric in tracked {
            use scaling::policy::{PredefinedMetric, TrackedMetric};
            let (namespace, name) = match metric {
                TrackedMetric::Predefined(PredefinedMetric::Cpu | PredefinedMetric::CpuDemand) => {
                    ("AWS/EC2".to_string(), "CPUUtilization".to_string())
                }
                TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => {
                    ("AWS/ApplicationELB".to_string(), "RequestCountPerTarget".to_string())
                }
                TrackedMetric::Custom(spec) => (spec.namespace.clone(), spec.name.clone()),
            };
            // RequestCountPerTarget exists only per target group (a figure per
            // target already): every instance gets the group's, as the
            // functions read it from CloudWatch.
            let per_group = matches!(
                metric,
                TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget)
            );
            let mut per_instance = std::collections::BTreeMap::new();
            for instance in snapshot.instances.iter().filter(|i| i.state != State::Terminated) {
                let dimension = if per_group {
                    ("TargetGroup".to_string(), group.to_string())
                } else {
                    ("InstanceId".to_string(), instance.id.clone())
                };
                let key = SeriesKey {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    dimensions: [dimension].into(),
                };
                let points: Vec<scaling::decide::Datapoint> = store
                    .points(&key, since, until)
                    .into_iter()
                    .map(|(at, value)| scaling::decide::Datapoint { at, value })
                    .collect();
                if !points.is_empty() {
                    per_instance.insert(instance.id.clone(), points);
                }
            }
            if *metric == TrackedMetric::Predefined(PredefinedMetric::CpuDemand) {
                // CPU x RequestCount / (RequestCount - HTTPCode_Target_5XX_Count)
                // of the group's load balancer, as the AWS adapter reads them.
                let balancer = |name: &str| -> Vec<scaling::decide::Datapoint> {
                    let key = SeriesKey::new("AWS/ApplicationELB", name, &[("LoadBalancer", group)]);
                    store
                        .points(&key, since, until)
                        .into_iter()
                        .map(|(at, value)| scaling::decide::Datapoint { at, value })
                        .collect()
                };
                let (requests, shed) = (balancer("RequestCount"), balancer("HTTPCode_Target_5XX_Count"));
                for points in per_instance.values_mut() {
                    *points = scaling::tracking::cpu_demand(points, &requests, &shed);
                }
            }
            history
                .metrics
                .insert(scaling::tracking::metric_key(metric), per_instance);
        }
        Ok(history)
    }

    /// The hourly `Sum`s of `[since, until)` a group's load is made of for
    /// predictive scaling (`scaling::predictive::HourlySums`), as
    /// GetMetricData at a 3600 s period answers them: CPUUtilization by
    /// AutoScalingGroupName (one sample per instance and minute),
    /// RequestCount and HTTPCode_Target_5XX_Count by LoadBalancer. Only
    /// what CloudWatch shows now, for as long as the store keeps samples
    /// (`MetricStore::RETENTION`; CloudWatch keeps 15 days).
    pub fn hourly_sums(
        &self,
        group: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<scaling::predictive::HourlySums> {
        self.group(group)?;
        let now = self.clock().now();
        let store = lock(&self.inner.store);
        let store = store.at(now);
        let sums = |key: SeriesKey| scaling::predictive::hourly_sums(store.points(&key, since, until));
        Ok(scaling::predictive::HourlySums {
            cpu: sums(SeriesKey::new(
                "AWS/EC2",
                "CPUUtilization",
                &[("AutoScalingGroupName", group)],
            )),
            requests: sums(SeriesKey::new(
                "AWS/ApplicationELB",
                "RequestCount",
                &[("LoadBalancer", group)],
            )),
            shed: sums(SeriesKey::new(
                "AWS/ApplicationELB",
                "HTTPCode_Target_5XX_Count",
                &[("LoadBalancer", group)],
            )),
        })
    }

    /// The newest one-minute statistic of a metric at or before `until`
    /// (looking back 5 minutes), as CloudWatch shows it now.
    pub fn latest(&self, metric: &scaling::policy::MetricSpec, until: Timestamp) -> Option<f64> {
        let now = self.clock().now();
        let store = lock(&self.inner.store);
        let store = store.at(now);
        let minute = SignedDuration::from_mins(1);
        let end = Timestamp::from_second(until.as_second().div_euclid(60) * 60 + 60).ok()?;
        (0..6).find_map(|k| store.statistic(metric, minute, end - minute * k))
    }

    /// The samples of the newest minute of one series that CloudWatch shows
    /// now (`--ingestion-delay` late).
    pub fn newest_minute(&self, key: &SeriesKey) -> Vec<f64> {
        lock(&self.inner.store).at(self.clock().now()).newest_minute(key)
    }

    /// The samples of one series in `[start, end)` that CloudWatch shows now
    /// (the latest minutes are not in yet: `--ingestion-delay`).
    pub fn points(&self, key: &SeriesKey, start: Timestamp, end: Timestamp) -> Vec<(Timestamp, f64)> {
        lock(&self.inner.store).at(self.clock().now()).points(key, start, end)
    }
}

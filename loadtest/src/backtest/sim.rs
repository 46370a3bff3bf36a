//! The simulated group and its CloudWatch: instances launched and
//! terminated as the decisions say, the minute's datapoints, alarm state.

use std::collections::BTreeMap;
use std::time::Duration;

use functions::cloudwatch;
use functions::decide::{
    Action, Activity, AlarmState, AlarmStatus, Datapoint, DecideError, Decision, Explain, Instance, Lifecycle,
    MetricHistory, Observation, Trigger, decide_explained,
};
use functions::policy::{AlarmPolicy, GroupPolicy};
use jiff::{SignedDuration, Timestamp};

use super::*;

#[derive(Debug, Clone)]
pub(super) struct SimInstance {
    pub(super) id: String,
    pub(super) launched_at: Timestamp,
    pub(super) ready_at: Timestamp,
}

#[derive(Debug, Clone)]
pub(super) struct AlarmSim {
    pub(super) policy: AlarmPolicy,
    /// The newest datapoint judged: (its period start, value).
    pub(super) newest: Option<(Timestamp, f64)>,
    pub(super) state: AlarmState,
    pub(super) since: Timestamp,
}

impl AlarmSim {
    pub(super) fn status(&self) -> AlarmStatus {
        AlarmStatus {
            name: self.policy.alarm.clone(),
            state: self.state,
            state_since: self.since,
            value: self.newest.map(|(_, v)| v),
            data_at: self.newest.map(|(at, _)| at),
        }
    }
}

pub(super) struct Sim<'a> {
    pub(super) group: &'a GroupPolicy,
    pub(super) model: Model,
    pub(super) min: u32,
    pub(super) max: u32,
    pub(super) desired: u32,
    pub(super) instances: Vec<SimInstance>,
    pub(super) launched: u64,
    pub(super) activities: Vec<Activity>,
    pub(super) actions: Vec<ScalingAction>,
    /// The alarms' series, a minute's value and how many datapoints
    /// CloudWatch has of it (the minute's samples, [`AlarmSample`]): the
    /// group's CPU (one datapoint per in-service instance, all of the same
    /// value here), the load balancer's requests per target (one a minute,
    /// none with no target or no request) and its 503s for want of a
    /// target (HTTPCode_ELB_503_Count: none unless nonzero).
    pub(super) cpu: Vec<AlarmSample>,
    pub(super) per_target: Vec<AlarmSample>,
    pub(super) no_target: Vec<AlarmSample>,
    /// Per tracked metric key, per instance: the minute datapoints.
    pub(super) per_instance: BTreeMap<String, BTreeMap<String, Vec<Datapoint>>>,
    /// Hand decide() the whole hour the functions fetch, not only
    /// `tracking::metrics_window` (the reference the fast path is tested against).
    pub(super) full_history: bool,
    /// For predictive scaling, the minute samples its hourly sums are made
    /// of (`predictive::HourlySums`), 14 days of them: the group's CPU
    /// summed over the instances reporting, the requests routed to a
    /// target, the ones they shed.
    pub(super) load_minutes: LoadMinutes,
    /// The load of the forecast in force: (issued at, hourly load).
    pub(super) load_cache: Option<(Timestamp, Vec<Datapoint>)>,
    /// The warm pool (`[group.warm_pool]`): `ready_at` is when each is
    /// initialised and can be drawn on.
    pub(super) pool: Vec<SimInstance>,
    /// What the next decision observes and reads (`Sim::observe`,
    /// `Sim::refresh_history`), kept to reuse their allocations.
    pub(super) observed: Observation,
    pub(super) history: MetricHistory,
}

/// One minute of an alarm's metric: (period start, value, datapoints of
/// that value). A statistic is over every datapoint
/// (`Statistic::of_repeated`), as CloudWatch aggregates a group's instances.
pub(super) type AlarmSample = (Timestamp, f64, u32);

/// Minute samples of the series a predictive load is made of.
#[derive(Debug, Default)]
pub(super) struct LoadMinutes {
    pub(super) cpu: Vec<(Timestamp, f64)>,
    pub(super) requests: Vec<(Timestamp, f64)>,
    pub(super) shed: Vec<(Timestamp, f64)>,
}

impl LoadMinutes {
    /// Drops the minutes before `from` (a prefix: they are in time order).
    pub(super) fn expire(&mut self, from: Timestamp) {
        for series in [&mut self.cpu, &mut self.requests, &mut self.shed] {
            if series
                .first()
                .is_some_and(|(at, _)| *at < from - SignedDuration::from_hours(24))
            {
                let expired = series.partition_point(|(at, _)| *at < from);
                series.drain(..expired);
            }
        }
    }
}

pub(super) const MINUTE: SignedDuration = SignedDuration::from_secs(60);
/// Metric history kept for decisions: the functions' (longest window a policy may use).
pub(super) const HISTORY: SignedDuration = SignedDuration::from_secs(functions::policy::HISTORY.as_secs() as i64);

impl Sim<'_> {
    /// The group as the functions would observe it at `now`, written into
    /// `self.observed` (kept across decisions: a year's replay otherwise
    /// spends a tenth of its time allocating the same instance ids).
    pub(super) fn observe(&mut self, now: Timestamp) {
        let observed = &mut self.observed;
        (observed.min, observed.max, observed.desired) = (self.min, self.max, self.desired);
        let same = observed.instances.len() == self.instances.len()
            && observed
                .instances
                .iter()
                .zip(&self.instances)
                .all(|(o, i)| o.id == i.id);
        if !same {
            observed.instances = self
                .instances
                .iter()
                .map(|i| Instance {
                    id: i.id.clone(),
                    lifecycle: Lifecycle::Pending,
                    launched_at: i.launched_at,
                    protected: false,
                })
                .collect();
        }
        // The same ids are the same instances (launched_at included): only
        // their lifecycle moves with time.
        for (observed, instance) in observed.instances.iter_mut().zip(&self.instances) {
            observed.lifecycle = if instance.ready_at <= now {
                Lifecycle::InService
            } else {
                Lifecycle::Pending
            };
        }
    }

    /// The tracked metrics as CloudWatch shows them at `now`: as far back
    /// as target tracking reads (`tracking::metrics_window`; the functions
    /// fetch an hour, and decide the same on either), written into
    /// `self.history` in place (its vectors reused from one decision to
    /// the next).
    pub(super) fn refresh_history(&mut self, now: Timestamp) {
        let delay = self.model.ingestion_delay;
        let window = SignedDuration::try_from(functions::tracking::metrics_window(self.group)).unwrap_or(HISTORY);
        let from = now
            - if self.full_history {
                HISTORY
            } else {
                window.min(HISTORY)
            };
        for (key, instances) in &self.per_instance {
            if !self.history.metrics.contains_key(key) {
                self.history.metrics.insert(key.clone(), BTreeMap::new());
            }
            let series = self.history.metrics.get_mut(key).expect("inserted above");
            series.retain(|id, _| instances.contains_key(id));
            for (id, points) in instances {
                // Points are in time order: skip to the window; the
                // readable ones are a prefix of the rest (a later minute
                // is readable only after an earlier one).
                let first = points.partition_point(|d| d.at < from);
                let window = &points[first..];
                let readable = &window[..window.partition_point(|d| cloudwatch::readable(d.at, delay, now))];
                if readable.is_empty() {
                    series.remove(id);
                } else if let Some(kept) = series.get_mut(id) {
                    kept.clear();
                    kept.extend_from_slice(readable);
                } else {
                    series.insert(id.clone(), readable.to_vec());
                }
            }
        }
    }

    /// The warm pool's instances billed in the minute starting `t`: all of
    /// a `running` pool; of a `stopped` one only those still initialising
    /// (running until they stop; a stopped instance's EBS volumes are not
    /// in the model's price).
    pub(super) fn pool_billed(&self, t: Timestamp) -> u64 {
        let running = self
            .group
            .warm_pool
            .as_ref()
            .is_some_and(|p| p.pool_state == functions::policy::PoolState::Running);
        self.pool.iter().filter(|i| running || i.ready_at > t).count() as u64
    }

    /// Brings `self.load_cache` to the group's hourly load over the window
    /// of the forecast in force at `now` (`predictive::window`), as
    /// CloudWatch shows it then: the same for every decision until the
    /// next issue, so worked out once each. False for a group without
    /// predictive scaling.
    fn refresh_load(&mut self, now: Timestamp) -> bool {
        let Some(predictive) = &self.group.predictive else {
            return false;
        };
        let (since, until) = functions::predictive::window(now);
        if self.load_cache.as_ref().is_some_and(|(issued, _)| *issued == until) {
            return true;
        }
        let delay = self.model.ingestion_delay;
        let sums = |series: &[(Timestamp, f64)]| {
            functions::predictive::hourly_sums(
                series
                    .iter()
                    .filter(|(at, _)| *at >= since && *at < until && cloudwatch::readable(*at, delay, now))
                    .copied(),
            )
        };
        let sums = functions::predictive::HourlySums {
            cpu: sums(&self.load_minutes.cpu),
            requests: sums(&self.load_minutes.requests),
            shed: sums(&self.load_minutes.shed),
        };
        self.load_cache = Some((until, functions::predictive::hourly_load(&predictive.metric, &sums)));
        true
    }

    pub(super) fn decide(&mut self, trigger: &Trigger, now: Timestamp) -> Result<Decision, DecideError> {
        self.observe(now);
        self.refresh_history(now);
        // The hourly load is read for every trigger but a scheduled action:
        // lent to the history for this decision (swapped in and back out,
        // not copied), empty otherwise.
        let lend = !matches!(trigger, Trigger::Scheduled { .. }) && self.refresh_load(now);
        let swap_load = |sim: &mut Self| {
            if let Some((_, load)) = &mut sim.load_cache {
                std::mem::swap(load, &mut sim.history.load);
            }
        };
        if lend {
            swap_load(self);
        }
        let since = now - HISTORY;
        // Activities are appended in time order (`apply`): the recent ones
        // are a tail, found by binary search, not a scan of the whole replay.
        let first = self.activities.partition_point(|a| a.start < since);
        // A replay reads only what was done: holds need not be written out
        // (the same actions, codes and causes; see `Explain`).
        let decision = decide_explained(
            self.group,
            &self.observed,
            &self.history,
            &self.activities[first..],
            trigger,
            now,
            Explain::ActionsOnly,
        );
        if lend {
            swap_load(self);
        }
        let decision = decision?;
        self.apply(&decision, now);
        Ok(decision)
    }

    pub(super) fn apply(&mut self, decision: &Decision, now: Timestamp) {
        let (desired, limits) = match decision.action {
            Action::Hold => return,
            Action::SetDesired(n) => (n, None),
            Action::SetLimits { min, max, desired } => (desired, Some((min, max))),
        };
        if let Some((min, max)) = limits {
            (self.min, self.max) = (min, max);
        }
        let from = self.desired;
        self.desired = desired;
        let boot = SignedDuration::try_from(self.model.boot).unwrap_or(SignedDuration::ZERO);
        let warm_start = SignedDuration::try_from(self.model.warm_start).unwrap_or(SignedDuration::ZERO);
        while (self.instances.len() as u32) < desired {
            // A scale-out draws on the warm pool's initialised instances
            // first (the oldest), then launches new ones.
            let warm = self
                .pool
                .iter()
                .enumerate()
                .filter(|(_, i)| i.ready_at <= now)
                .min_by_key(|(_, i)| i.launched_at)
                .map(|(index, _)| index);
            if let Some(index) = warm {
                let mut instance = self.pool.remove(index);
                instance.ready_at = now + warm_start;
                self.instances.push(instance);
                continue;
            }
            self.launched += 1;
            self.instances.push(SimInstance {
                id: format!("i-{:06}", self.launched),
                launched_at: now,
                ready_at: now + boot,
            });
        }
        // The one termination rule the local cloud and AWS (the template's
        // OldestInstance) apply: the oldest first, booting or not, so a
        // scale-in during a scale-out removes serving capacity. One zone.
        let excess = self.instances.len().saturating_sub(desired as usize);
        let gone =
            functions::group::remove_for_scale_in(&mut self.instances, excess, |i| functions::group::Candidate {
                id: &i.id,
                az: "",
                launched_at: i.launched_at,
                protected: false,
            });
        let pool_size = self
            .group
            .warm_pool
            .as_ref()
            .map(|pool| functions::group::warm_pool_size(pool, self.max, desired));
        let reuse = self.group.warm_pool.as_ref().is_some_and(|p| p.reuse_on_scale_in);
        for gone in gone {
            for instances in self.per_instance.values_mut() {
                instances.remove(&gone.id);
            }
            // ReuseOnScaleIn: back to the pool (stopped, still initialised)
            // while it has room; else terminated.
            if reuse && pool_size.is_some_and(|size| (self.pool.len() as u32) < size) {
                self.pool.push(SimInstance { ready_at: now, ..gone });
            }
        }
        // The pool is kept at its size: new instances launched and
        // initialised (a boot) to fill it, the newest ones beyond it terminated.
        if let Some(size) = pool_size {
            while (self.pool.len() as u32) < size {
                self.launched += 1;
                self.pool.push(SimInstance {
                    id: format!("i-{:06}", self.launched),
                    launched_at: now,
                    ready_at: now + boot,
                });
            }
            self.pool.sort_by_key(|i| i.launched_at);
            self.pool.truncate(size as usize);
        }
        if from != desired {
            self.actions.push(ScalingAction {
                at: now,
                from,
                to: desired,
                reason: decision.reason.clone(),
            });
            self.activities.push(Activity {
                start: now,
                end: Some(if desired > from { now + boot } else { now }),
                from,
                to: desired,
                cause: decision.cause.clone().unwrap_or_default(),
            });
        }
    }
}

/// The value an alarm reads at `now` for a period ending at `end`: the
/// statistic of the minutes CloudWatch shows by then, computed as the
/// local cloud's metric store does (`Statistic::of_repeated`).
pub(super) fn period_value(
    policy: &AlarmPolicy,
    sim: &Sim,
    end: Timestamp,
    (delay, now): (Duration, Timestamp),
) -> Option<f64> {
    let period = SignedDuration::try_from(policy.period).ok()?;
    let start = end - period;
    let series = match policy.metric.name.as_str() {
        "CPUUtilization" => &sim.cpu,
        "HTTPCode_ELB_503_Count" => &sim.no_target,
        // RequestCountPerTarget, the only other metric a policy may watch.
        _ => &sim.per_target,
    };
    // In time order: the period's minutes are one run of the series.
    let from = series.partition_point(|(t, _, _)| *t < start);
    let minutes = series[from..]
        .iter()
        .take_while(|(t, _, _)| *t < end)
        .filter(|(t, _, _)| cloudwatch::readable(*t, delay, now));
    policy
        .metric
        .stat
        .of_repeated(minutes.map(|(_, value, count)| (*value, *count)))
}

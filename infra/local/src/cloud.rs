//! The running local cloud: one controller loop per group that starts and
//! stops `workload` processes as [`Group::plan`] says, promotes instances to
//! InService after their boot time and first good health check, replaces
//! crashed and unhealthy ones, and keeps each group's load balancer in step.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use scaling::policy::Policy;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::alarms::Alarm;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::group::{Group, GroupError, State, Step};
use crate::lb::{LbConfig, LbCounters, LoadBalancer, TargetHealth, TargetStatus};
use crate::metrics::{MetricStore, SeriesKey, prometheus_value};
use crate::process::{Spawner, signal, stop};
use crate::runtime::{Invocation, Runtime};

/// Everything the local cloud needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    pub policy: Policy,
    /// Cloud time runs this many times faster than the wall clock.
    pub speed: f64,
    /// Cloud time at start (None: the wall clock's now), e.g. just before a
    /// schedule fires.
    pub start: Option<Timestamp>,
    /// Launch to in service, in cloud time (at least until the first good health check).
    pub boot: Duration,
    /// After reaching InService, failed load balancer health checks do not
    /// replace an instance for this long (cloud time).
    pub health_grace: Duration,
    /// Availability zones, e.g. local-1a, local-1b.
    pub azs: Vec<String>,
    /// Second and third octets of the groups' subnets: group k's instances
    /// are 127.A.(B+k).N.
    pub subnet: [u8; 2],
    /// The port every instance listens on.
    pub instance_port: u16,
    /// Port of the first group's load balancer (the next groups take the
    /// following ports); 0 picks free ports.
    pub lb_port: u16,
    /// Port of the control API; 0 picks a free one.
    pub control_port: u16,
    pub lb: LbConfig,
    /// The workload binary and the flags every instance gets.
    pub workload: PathBuf,
    /// CPU cap of every instance (fraction of a core).
    pub cpu_limit: f64,
    /// Per-instance logs go here.
    pub log_dir: PathBuf,
    /// How long an instance may take to finish in-flight requests after SIGTERM.
    pub drain_timeout: Duration,
    /// Where the function binary is (`scaler`); None runs no functions
    /// (events are only recorded).
    pub functions: Option<PathBuf>,
    /// The policy file the functions read (required with `functions`).
    pub policy_file: Option<PathBuf>,
    /// From the start of a minute until its datapoints can be read (cloud
    /// time; AWS's is `scaling::cloudwatch::INGESTION_DELAY`).
    pub ingestion_delay: Duration,
}

/// A process of an instance.
#[derive(Debug)]
struct Running {
    child: Child,
}

#[derive(Debug)]
pub(crate) struct GroupRuntime {
    pub(crate) group: Mutex<Group>,
    pub(crate) lb: Arc<LoadBalancer>,
    pub(crate) lb_addr: SocketAddr,
    children: Mutex<HashMap<String, Running>>,
    /// No launch before this (after a failed launch).
    backoff: Mutex<Option<Instant>>,
}

impl GroupRuntime {
    pub(crate) fn group(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn children(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) groups: Vec<Arc<GroupRuntime>>,
    spawner: Arc<Spawner>,
    pub(crate) store: Mutex<MetricStore>,
    pub(crate) alarms: Mutex<Vec<Alarm>>,
    pub(crate) runtime: Option<Arc<Runtime>>,
    events: Mutex<VecDeque<EventRecord>>,
    probe: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    >,
    tasks: Tasks,
    pub(crate) control_addr: Mutex<Option<SocketAddr>>,
}

/// A handle on the running local cloud (cheap to clone).
#[derive(Debug, Clone)]
pub struct Cloud {
    pub(crate) inner: Arc<Inner>,
}

/// The status view: everything the CLI and the JSON endpoint show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub now: Timestamp,
    pub speed: f64,
    pub control: Option<SocketAddr>,
    pub groups: Vec<GroupStatus>,
    pub alarms: Vec<Alarm>,
    /// Events sent (alarm state changes, schedules, ticks), newest last.
    pub events: Vec<EventRecord>,
    /// Function invocations with their decisions, newest last.
    pub invocations: Vec<Invocation>,
}

/// An event the local cloud sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub at: Timestamp,
    pub summary: String,
    /// The function it went to (None: no functions are running).
    pub function: Option<String>,
    /// Its group: the trigger queue's message group.
    #[serde(default)]
    pub group: String,
    /// The trigger queue had the same event from the last 5 minutes, so it
    /// was accepted and not delivered (SQS FIFO content-based deduplication).
    #[serde(default)]
    pub deduplicated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub load_balancer: String,
    pub lb_counters: LbCounters,
    pub instances: Vec<InstanceStatus>,
    pub capacity_changes: Vec<scaling::decide::Activity>,
    pub activities: Vec<crate::group::InstanceActivity>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    #[serde(flatten)]
    pub instance: crate::group::InstanceRecord,
    pub target: Option<TargetStatus>,
    /// The newest CPU utilisation sample (% of the instance's cap).
    pub cpu_percent: Option<f64>,
}

/// The smallest CPU cap of an instance, in cores: the workload's own floor.
pub use workload::config::MIN_CPU_LIMIT;
// `Config::check`'s message names the value.
const _: () = assert!(MIN_CPU_LIMIT == 0.01, "update the --cpu-limit message");

/// The workload's `--queue-budget` and `--shed-delay` on an instance (its
/// defaults, as on AWS), in cloud time: each instance gets them at the
/// cloud's speed.
pub const INSTANCE_QUEUE_BUDGET: Duration = Duration::from_secs(2);
pub const INSTANCE_SHED_DELAY: Duration = Duration::from_secs(1);

/// How often each controller loop runs (wall clock).
const RECONCILE: Duration = Duration::from_millis(50);
/// Activities shown by the status view.
const STATUS_ACTIVITIES: usize = 20;

impl Cloud {
    /// Binds the load balancers and the control API, then starts every group at its desired capacity.
    pub async fn start(config: Config) -> Result<Self> {
        config.check()?;
        // Every instance logs there: a directory that exists but cannot be
        // written made every launch fail and retry each second forever
        // (issue 25.8). Refuse it at start.
        let probe = config.log_dir.join(".localcloud-write-test");
        std::fs::create_dir_all(&config.log_dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|source| Error::LogDir {
                path: config.log_dir.clone(),
                source,
            })?;
        let clock = config
            .start
            .map_or_else(|| Clock::new(config.speed), |at| Clock::starting_at(config.speed, at));
        let mut groups = Vec::new();
        let mut tasks = Vec::new();
        for (k, policy) in config.policy.groups.iter().enumerate() {
            let port = if config.lb_port == 0 {
                0
            } else {
                config.lb_port + k as u16
            };
            let (listener, lb_addr) = bind_loopback("load balancer", port).await?;
            let lb = LoadBalancer::new(config.lb);
            tasks.push(("load balancer", lb.serve(listener)));
            tasks.push(("health checker", lb.start_health_checks()));
            let subnet = [127, config.subnet[0], config.subnet[1].wrapping_add(k as u8)];
            groups.push(Arc::new(GroupRuntime {
                group: Mutex::new(Group::new(policy, config.azs.clone(), subnet)),
                lb,
                lb_addr,
                children: Mutex::new(HashMap::new()),
                backoff: Mutex::new(None),
            }));
        }
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(500)));
        let probe = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        let now = clock.now();
        let alarms = config
            .policy
            .groups
            .iter()
            .flat_map(|g| g.alarm_policies.iter().map(|p| Alarm::new(&g.name, p, now)))
            .collect();
        // The control API is bound first: the functions are told its address.
        let (control_listener, control) = bind_loopback("control API", config.control_port).await?;
        let runtime = match (&config.functions, &config.policy_file) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Error::Config {
                    field: "policy_file",
                    value: "none".into(),
                    allowed: "the policy file's path when functions run (they read it)",
                });
            }
            (Some(dir), Some(policy_file)) => {
                let policy_file = std::path::absolute(policy_file).unwrap_or_else(|_| policy_file.clone());
                let env = vec![
                    ("SCALER_POLICY".to_string(), policy_file.display().to_string()),
                    ("SCALER_LOCAL_CLOUD".to_string(), control.to_string()),
                    ("SCALER_CLOCK".to_string(), clock.to_env()),
                ];
                Some(Runtime::new(dir, env, config.log_dir.clone(), clock).map_err(Error::Functions)?)
            }
        };
        let ingestion_delay = config.ingestion_delay;
        let cloud = Self {
            inner: Arc::new(Inner {
                config,
                clock,
                groups,
                spawner: Arc::new(Spawner::new()),
                store: Mutex::new(MetricStore::with_delay(ingestion_delay)),
                alarms: Mutex::new(alarms),
                runtime,
                events: Mutex::new(VecDeque::new()),
                probe,
                tasks: Tasks(Mutex::new(tasks)),
                control_addr: Mutex::new(Some(control)),
            }),
        };
        crate::control::serve(cloud.clone(), control_listener);
        for runtime in &cloud.inner.groups {
            let task = tokio::spawn(controller(cloud.clone(), runtime.clone()));
            cloud.push_task("group controller", task);
            let task = tokio::spawn(sampler(cloud.clone(), runtime.clone()));
            cloud.push_task("metric sampler", task);
        }
        if let Some(runtime) = &cloud.inner.runtime {
            let tasks = runtime
                .start(cloud.inner.spawner.clone())
                .await
                .map_err(|source| Error::Bind {
                    what: "Lambda Runtime API",
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                    source,
                })?;
            for task in tasks {
                cloud.push_task("Lambda Runtime API", task);
            }
        }
        let task = tokio::spawn(events(cloud.clone()));
        cloud.push_task("event router", task);
        Ok(cloud)
    }

    pub(crate) fn push_task(&self, name: &'static str, task: JoinHandle<()>) {
        self.inner.tasks.push(name, task);
    }

    /// An internal task that has stopped (each runs until shutdown; one that
    /// ended panicked or failed), as "NAME: why". The CLI stops the cloud
    /// with this error rather than run on with, say, no health checks.
    pub fn stopped_task(&self) -> Option<String> {
        self.inner.tasks.first_stopped()
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The control API's address.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        *self.inner.control_addr.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn runtime(&self, group: &str) -> Result<&Arc<GroupRuntime>> {
        self.inner
            .groups
            .iter()
            .find(|g| g.group().name == group)
            .ok_or_else(|| Error::NoSuchGroup {
                group: group.to_string(),
                groups: self.group_names().join(", "),
            })
    }

    pub fn group_names(&self) -> Vec<String> {
        self.inner.groups.iter().map(|g| g.group().name.clone()).collect()
    }

    /// The load balancer address of a group.
    pub fn lb_addr(&self, group: &str) -> Result<SocketAddr> {
        Ok(self.runtime(group)?.lb_addr)
    }

    /// A copy of a group's state.
    pub fn group(&self, group: &str) -> Result<Group> {
        Ok(self.runtime(group)?.group().clone())
    }

    /// A target's health on the group's load balancer.
    pub fn target_health(&self, group: &str, instance: &str) -> Result<Option<TargetHealth>> {
        Ok(self.runtime(group)?.lb.health(instance))
    }

    /// Sets desired capacity (the group API's SetDesiredCapacity).
    pub fn set_desired(&self, group: &str, desired: u32, cause: &str) -> Result<()> {
        let now = self.clock().now();
        let runtime = self.runtime(group)?;
        runtime
            .group()
            .set_desired(desired, cause, now)
            .map_err(|e| Error::group(group, e))
    }

    /// Sets min, max and desired together (UpdateAutoScalingGroup).
    pub fn set_limits(&self, group: &str, min: u32, max: u32, desired: u32, cause: &str) -> Result<()> {
        let now = self.clock().now();
        let runtime = self.runtime(group)?;
        runtime
            .group()
            .set_limits(min, max, desired, cause, now)
            .map_err(|e| Error::group(group, e))
    }

    /// Sets or clears an instance's scale-in protection.
    pub fn protect(&self, group: &str, instance: &str, protected: bool) -> Result<()> {
        let runtime = self.runtime(group)?;
        runtime
            .group()
            .protect(instance, protected)
            .map_err(|e| Error::group(group, e))
    }

    /// Fault: kill an instance's process with SIGKILL.
    pub fn kill(&self, instance: &str) -> Result<String> {
        for runtime in &self.inner.groups {
            if let Some(running) = runtime.children().get(instance) {
                signal(&running.child, libc::SIGKILL);
                return Ok(runtime.group().name.clone());
            }
        }
        Err(Error::NoSuchInstance(instance.to_string()))
    }

    /// Fault: mark an instance unhealthy (SetInstanceHealth): it is replaced.
    pub fn set_unhealthy(&self, instance: &str) -> Result<String> {
        for runtime in &self.inner.groups {
            let mut group = runtime.group();
            if group.instance(instance).is_some_and(|i| i.is_active()) {
                let name = group.name.clone();
                group
                    .mark_unhealthy(instance, "set unhealthy by the operator")
                    .map_err(|e| Error::group(&name, e))?;
                return Ok(name);
            }
        }
        Err(Error::NoSuchInstance(instance.to_string()))
    }

    /// Fault: an availability zone fails: its instances are killed and no
    /// launch goes there until [`Cloud::restore_az`].
    pub fn stop_az(&self, az: &str) -> Result<Vec<String>> {
        if !self.inner.config.azs.iter().any(|a| a == az) {
            return Err(Error::NoSuchAz {
                az: az.to_string(),
                azs: self.inner.config.azs.join(", "),
            });
        }
        let mut killed = Vec::new();
        for runtime in &self.inner.groups {
            let mut group = runtime.group();
            group.set_az_down(az, true);
            let ids: Vec<String> = group.active().filter(|i| i.az == az).map(|i| i.id.clone()).collect();
            drop(group);
            let children = runtime.children();
            for id in ids {
                if let Some(running) = children.get(&id) {
                    signal(&running.child, libc::SIGKILL);
                    killed.push(id);
                }
            }
        }
        Ok(killed)
    }

    /// An availability zone is back: launches may go there again.
    pub fn restore_az(&self, az: &str) -> Result<()> {
        if !self.inner.config.azs.iter().any(|a| a == az) {
            return Err(Error::NoSuchAz {
                az: az.to_string(),
                azs: self.inner.config.azs.join(", "),
            });
        }
        for runtime in &self.inner.groups {
            runtime.group().set_az_down(az, false);
        }
        Ok(())
    }

    /// The status view.
    pub fn status(&self) -> Status {
        let groups = self
            .inner
            .groups
            .iter()
            .map(|runtime| {
                let group = runtime.group().clone();
                let targets = runtime.lb.status();
                GroupStatus {
                    name: group.name.clone(),
                    min: group.min,
                    max: group.max,
                    desired: group.desired,
                    load_balancer: format!("http://{}", runtime.lb_addr),
                    lb_counters: runtime.lb.counters(),
                    instances: group
                        .instances
                        .iter()
                        .filter(|i| i.state != State::Terminated)
                        .map(|i| InstanceStatus {
                            instance: i.clone(),
                            target: targets.iter().find(|t| t.id == i.id).cloned(),
                            cpu_percent: self.latest_cpu(&i.id),
                        })
                        .collect(),
                    capacity_changes: group
                        .capacity_changes
                        .iter()
                        .rev()
                        .take(STATUS_ACTIVITIES)
                        .rev()
                        .cloned()
                        .collect(),
                    activities: group
                        .activities
                        .iter()
                        .rev()
                        .take(STATUS_ACTIVITIES)
                        .rev()
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        Status {
            now: self.clock().now(),
            speed: self.clock().speed(),
            control: self.control_addr(),
            groups,
            alarms: lock(&self.inner.alarms).clone(),
            events: lock(&self.inner.events).iter().cloned().collect(),
            invocations: self
                .inner
                .runtime
                .as_ref()
                .map(|r| {
                    let all = r.invocations();
                    all[all.len().saturating_sub(STATUS_ACTIVITIES)..].to_vec()
                })
                .unwrap_or_default(),
        }
    }

    fn latest_cpu(&self, instance: &str) -> Option<f64> {
        let key = SeriesKey::new("AWS/EC2", "CPUUtilization", &[("InstanceId", instance)]);
        self.newest_minute(&key).last().copied()
    }

    /// Per-instance datapoints of the group's tracked metrics in `[since, until)`,
    /// keyed as the functions read them (`cpu`, `request_count_per_target`, `NAMESPACE/NAME`).
    pub fn metric_history(
        &self,
        group: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<scaling::decide::MetricHistory> {
        let snapshot = self.group(group)?;
        let policy = self
            .inner
            .config
            .policy
            .group(group)
            .ok_or_else(|| Error::NoSuchGroup {
                group: group.into(),
                groups: self.group_names().join(", "),
            })?;
        // As CloudWatch shows it now: the latest minutes are not in yet.
        let now = self.clock().now();
        let store = lock(&self.inner.store);
        let store = store.at(now);
        let mut history = scaling::decide::MetricHistory::default();
        for tracking in &policy.target_tracking {
            use scaling::policy::{PredefinedMetric, TrackedMetric};
            let (namespace, name) = match &tracking.metric {
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
                tracking.metric,
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
            if tracking.metric == TrackedMetric::Predefined(PredefinedMetric::CpuDemand) {
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
                .insert(scaling::tracking::metric_key(&tracking.metric), per_instance);
        }
        Ok(history)
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

    /// The function runtime, when functions run.
    pub fn functions(&self) -> Option<&Arc<Runtime>> {
        self.inner.runtime.as_ref()
    }

    /// The samples of one series in `[start, end)` that CloudWatch shows now
    /// (the latest minutes are not in yet: `--ingestion-delay`).
    pub fn points(&self, key: &SeriesKey, start: Timestamp, end: Timestamp) -> Vec<(Timestamp, f64)> {
        lock(&self.inner.store).at(self.clock().now()).points(key, start, end)
    }

    /// The states of every alarm.
    pub fn alarms(&self) -> Vec<Alarm> {
        lock(&self.inner.alarms).clone()
    }

    /// Events sent so far (the newest 500).
    pub fn events(&self) -> Vec<EventRecord> {
        lock(&self.inner.events).iter().cloned().collect()
    }

    /// Sends a trigger for `group` to the function's FIFO queue, in the
    /// group's message group (and records it), as the template's EventBridge
    /// rules and schedules do.
    pub fn emit(&self, group: &str, summary: String, event: serde_json::Value) {
        let at = self.clock().now();
        let sent = self
            .inner
            .runtime
            .as_ref()
            .map(|runtime| runtime.send(group, summary.clone(), &event));
        let deduplicated = sent == Some(crate::runtime::Sent::Deduplicated);
        {
            let mut events = lock(&self.inner.events);
            events.push_back(EventRecord {
                at,
                summary: summary.clone(),
                function: sent.map(|_| crate::runtime::FUNCTION.to_string()),
                group: group.to_string(),
                deduplicated,
            });
            while events.len() > 500 {
                events.pop_front();
            }
        }
        tracing::info!(%summary, group, deduplicated, "event");
    }

    /// Waits until `ready(group)` holds, checking every 20 ms, for at most `limit` (wall clock).
    pub async fn wait_for(&self, group: &str, limit: Duration, ready: impl Fn(&Group) -> bool) -> Result<Group> {
        let deadline = Instant::now() + limit;
        loop {
            let snapshot = self.group(group)?;
            if ready(&snapshot) {
                return Ok(snapshot);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    group: group.to_string(),
                    waited: limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops everything: controllers, load balancers, then every instance
    /// (SIGTERM, then SIGKILL after the drain timeout).
    pub async fn shutdown(&self) {
        self.inner.tasks.abort_all();
        if let Some(runtime) = self.inner.runtime.clone() {
            let _ = tokio::task::spawn_blocking(move || runtime.stop()).await;
        }
        let grace = self.inner.config.drain_timeout + Duration::from_secs(1);
        let mut stopping = Vec::new();
        for runtime in &self.inner.groups {
            let children: Vec<(String, Running)> = runtime.children().drain().collect();
            for (id, mut running) in children {
                let runtime = runtime.clone();
                let now = self.clock().now();
                stopping.push(tokio::task::spawn_blocking(move || {
                    let _ = stop(&mut running.child, grace);
                    let _ = runtime.group().mark_terminated(&id, now);
                }));
            }
        }
        for task in stopping {
            let _ = task.await;
        }
    }
}

/// The cloud's long-running tasks, by name.
#[derive(Debug, Default)]
pub(crate) struct Tasks(Mutex<Vec<(&'static str, JoinHandle<()>)>>);

impl Tasks {
    fn push(&self, name: &'static str, task: JoinHandle<()>) {
        lock(&self.0).push((name, task));
    }

    /// The first task that has ended, with how (a panic's message, or that it returned).
    fn first_stopped(&self) -> Option<String> {
        let mut tasks = lock(&self.0);
        let k = tasks.iter().position(|(_, task)| task.is_finished())?;
        let (name, task) = tasks.remove(k);
        let why = match futures_now(task) {
            Some(Err(error)) if error.is_panic() => {
                let payload = error.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .map_or("it panicked".to_string(), |m| format!("it panicked: {m}"))
            }
            Some(Err(_)) => "it was cancelled".to_string(),
            _ => "it returned".to_string(),
        };
        Some(format!("internal task {name} stopped: {why}"))
    }

    fn abort_all(&self) {
        for (_, task) in lock(&self.0).drain(..) {
            task.abort();
        }
    }
}

/// The output of a task known to be finished, without awaiting.
fn futures_now(task: JoinHandle<()>) -> Option<std::result::Result<(), tokio::task::JoinError>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut task = task;
    match std::pin::Pin::new(&mut task).poll(&mut cx) {
        std::task::Poll::Ready(result) => Some(result),
        std::task::Poll::Pending => None,
    }
}

/// A wall- or cloud-clock duration setting within its allowed range.
fn check_duration(
    field: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
    allowed: &'static str,
) -> Result<()> {
    if value < min || value > max {
        return Err(Error::Config {
            field,
            value: humantime::format_duration(value).to_string(),
            allowed,
        });
    }
    Ok(())
}

impl Config {
    fn check(&self) -> Result<()> {
        // Durations: a zero interval would panic the health checker, a boot of
        // centuries overflows the controller's timestamps (issue 25.4). The
        // ranges follow the ALB's where it has one (HealthCheckIntervalSeconds
        // 5-300, HealthCheckTimeoutSeconds 2-120, deregistration delay 0-3600,
        // idle timeout 1-4000 s), with shorter minimums since the local cloud
        // runs faster than real time.
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        check_duration(
            "boot (--boot)",
            self.boot,
            Duration::ZERO,
            s(86_400),
            "0s to 1day (cloud time)",
        )?;
        check_duration(
            "health_grace (--health-grace)",
            self.health_grace,
            Duration::ZERO,
            s(86_400),
            "0s to 1day (cloud time)",
        )?;
        check_duration(
            "lb.interval (--health-interval)",
            self.lb.interval,
            ms(10),
            s(300),
            "10ms to 5m",
        )?;
        check_duration(
            "lb.timeout (--health-timeout)",
            self.lb.timeout,
            ms(10),
            s(120),
            "10ms to 2m",
        )?;
        check_duration(
            "lb.deregistration_delay (--deregistration-delay)",
            self.lb.deregistration_delay,
            Duration::ZERO,
            s(3600),
            "0s to 1h",
        )?;
        check_duration(
            "lb.request_timeout",
            self.lb.request_timeout,
            ms(100),
            s(4000),
            "100ms to 4000s",
        )?;
        check_duration(
            "lb.connections.idle_timeout (--idle-timeout)",
            self.lb.connections.idle_timeout,
            ms(100),
            s(4000),
            "100ms to 4000s",
        )?;
        // Never earlier than AWS shows data: a shorter delay would be more lenient.
        check_duration(
            "ingestion_delay (--ingestion-delay)",
            self.ingestion_delay,
            scaling::cloudwatch::INGESTION_DELAY,
            scaling::cloudwatch::MAX_INGESTION_DELAY,
            "3m (CloudWatch's) to 1h (cloud time)",
        )?;
        check_duration(
            "drain_timeout (--drain-timeout)",
            self.drain_timeout,
            Duration::ZERO,
            s(3600),
            "0s to 1h",
        )?;
        if !(1..=1_000_000).contains(&self.lb.connections.max_connections) {
            return Err(Error::Config {
                field: "lb.connections.max_connections (--max-connections)",
                value: self.lb.connections.max_connections.to_string(),
                allowed: "1 to 1000000",
            });
        }
        let bad =
            |field: &'static str, value: String, allowed: &'static str| Err(Error::Config { field, value, allowed });
        if !(self.speed.is_finite() && (1.0..=3600.0).contains(&self.speed)) {
            return bad("speed", self.speed.to_string(), "a number from 1 to 3600");
        }
        if self.azs.is_empty() || self.azs.len() > 6 {
            return bad("azs", self.azs.len().to_string(), "1 to 6 availability zones");
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
        // Below 1% of a core nothing useful is ever computed (issue 25.8: 1e-300 was accepted).
        if !(self.cpu_limit.is_finite() && self.cpu_limit >= MIN_CPU_LIMIT && self.cpu_limit <= cores) {
            return bad(
                "cpu_limit (--cpu-limit)",
                self.cpu_limit.to_string(),
                "0.01 (1% of a core, MIN_CPU_LIMIT) up to the machine's cores",
            );
        }
        // Each group has one /24 of loopback addresses: refuse at start a
        // policy whose group or scheduled action asks for more instances
        // than that, rather than fail launches later.
        for group in &self.policy.groups {
            let asked = std::iter::once(("max", group.max)).chain(
                group
                    .schedules
                    .iter()
                    .flat_map(|s| {
                        [
                            ("schedule max", s.max),
                            ("schedule min", s.min),
                            ("schedule desired", s.desired),
                        ]
                    })
                    .filter_map(|(field, value)| Some((field, value?))),
            );
            for (field, value) in asked {
                if value > crate::group::SUBNET_HOSTS {
                    return Err(Error::Config {
                        field: "policy",
                        value: format!("group {} {field} {value}", group.name),
                        allowed: "at most 254 instances per group in the local cloud (one /24 of loopback addresses)",
                    });
                }
            }
        }
        if self.policy.groups.len() > 16 {
            return bad("policy", self.policy.groups.len().to_string(), "at most 16 groups");
        }
        if !self.workload.is_file() {
            return Err(Error::Workload(self.workload.clone()));
        }
        Ok(())
    }
}

/// One group's controller loop.
async fn controller(cloud: Cloud, runtime: Arc<GroupRuntime>) {
    let mut tick = tokio::time::interval(RECONCILE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        reconcile(&cloud, &runtime).await;
    }
}

/// One pass: notice exits and health, promote pending instances, then act on the plan.
async fn reconcile(cloud: &Cloud, runtime: &Arc<GroupRuntime>) {
    let inner = &cloud.inner;
    let now = inner.clock.now();
    // Processes that exited on their own.
    let exited: Vec<(String, String)> = runtime
        .children()
        .iter_mut()
        .filter_map(|(id, running)| match running.child.try_wait() {
            Ok(Some(status)) => Some((id.clone(), format!("the process exited ({status})"))),
            _ => None,
        })
        .collect();
    let with_process: HashSet<String> = runtime.children().keys().cloned().collect();
    // Pending instances to probe, and in-service ones the load balancer finds unhealthy.
    let (pending, failing) = {
        let mut group = runtime.group();
        // Every launch the controller planned got a process or was marked
        // unhealthy when its start failed; an active instance without one is
        // replaced rather than counted forever (issue 25.1: phantoms).
        let orphans: Vec<String> = group
            .active()
            .filter(|i| !with_process.contains(&i.id))
            .map(|i| i.id.clone())
            .collect();
        for id in orphans {
            let _ = group.mark_unhealthy(&id, "it never got a process");
        }
        for (id, why) in &exited {
            if group.instance(id).is_some_and(|i| i.is_active()) {
                // An instance that dies before it is in service (a bad flag, a
                // busy address) would be relaunched at once, again and again:
                // wait a second first, as a real group backs off.
                if group.instance(id).is_some_and(|i| i.state == State::Pending) {
                    *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + Duration::from_secs(1));
                }
                let _ = group.mark_unhealthy(id, why);
            }
        }
        let boot = SignedDuration::try_from(inner.config.boot).unwrap_or(SignedDuration::ZERO);
        let grace = SignedDuration::try_from(inner.config.health_grace).unwrap_or(SignedDuration::ZERO);
        let pending: Vec<(String, SocketAddr)> = group
            .active()
            .filter(|i| i.state == State::Pending && i.launched_at + boot <= now)
            .map(|i| {
                (
                    i.id.clone(),
                    SocketAddr::V4(SocketAddrV4::new(i.ip, inner.config.instance_port)),
                )
            })
            .collect();
        let failing: Vec<String> = group
            .active()
            .filter(|i| i.state == State::InService && i.in_service_at.is_some_and(|t| t + grace <= now))
            .filter(|i| runtime.lb.health(&i.id) == Some(TargetHealth::Unhealthy))
            .map(|i| i.id.clone())
            .collect();
        (pending, failing)
    };
    for id in failing {
        let _ = runtime
            .group()
            .mark_unhealthy(&id, "it failed the load balancer's health checks");
    }
    for (id, addr) in pending {
        if probe(inner, addr).await {
            let now = inner.clock.now();
            if runtime.group().mark_in_service(&id, now).is_ok() {
                runtime.lb.register(&id, addr);
                tracing::info!(instance = %id, %addr, "in service");
            }
        }
    }

    let backoff = *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner);
    if backoff.is_some_and(|until| Instant::now() < until) {
        return;
    }
    let plan = runtime.group().plan(now);
    if let Some(error) = &plan.launch_failed {
        // Recorded as a failed activity; tried again after a second, as a
        // real group retries a failed launch.
        tracing::warn!(%error, "launch failed");
        *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + Duration::from_secs(1));
    }
    for step in plan.steps {
        match step {
            Step::Launch { id } => launch(cloud, runtime, &id),
            Step::Terminate { id } => {
                let cloud = cloud.clone();
                let runtime = runtime.clone();
                tokio::spawn(async move { terminate(&cloud, &runtime, &id).await });
            }
        }
    }
}

/// GET /health on an instance, directly.
async fn probe(inner: &Inner, addr: SocketAddr) -> bool {
    let Ok(uri) = format!("http://{addr}/health").parse::<http::Uri>() else {
        return false;
    };
    match tokio::time::timeout(Duration::from_millis(500), inner.probe.get(uri)).await {
        Ok(Ok(response)) => response.status() == http::StatusCode::OK,
        _ => false,
    }
}

fn launch(cloud: &Cloud, runtime: &Arc<GroupRuntime>, id: &str) {
    let inner = &cloud.inner;
    let Some(instance) = runtime.group().instance(id).cloned() else {
        return;
    };
    let addr = SocketAddr::V4(SocketAddrV4::new(instance.ip, inner.config.instance_port));
    let window = inner
        .clock
        .wall(Duration::from_secs(60))
        .max(Duration::from_millis(500));
    // The workload's admission times are cloud times too: at 60x, its 2 s
    // queueing budget would hold 2 minutes of cloud time, a whole boot of the
    // instances a scale-out waits for, and absorb a share of the overload
    // that no instance on AWS absorbs (issue 24: the laptop must not be more
    // lenient than AWS). Scaled, a phase queues the same share as on AWS.
    let (budget, shed_delay) = (
        inner.clock.wall(INSTANCE_QUEUE_BUDGET),
        inner.clock.wall(INSTANCE_SHED_DELAY),
    );
    let args: Vec<String> = vec![
        "--listen".into(),
        addr.to_string(),
        "--cpu-limit".into(),
        inner.config.cpu_limit.to_string(),
        "--cpu-window".into(),
        format!("{}ms", window.as_millis()),
        "--instance-id".into(),
        instance.id.clone(),
        "--hostname".into(),
        format!("ip-{}", instance.ip.to_string().replace('.', "-")),
        "--private-ip".into(),
        instance.ip.to_string(),
        "--availability-zone".into(),
        instance.az.clone(),
        "--drain-timeout".into(),
        format!("{}ms", inner.config.drain_timeout.as_millis()),
        "--queue-budget".into(),
        format!("{}us", budget.as_micros()),
        "--shed-delay".into(),
        format!("{}us", shed_delay.as_micros()),
    ];
    let log = inner.config.log_dir.join(format!("{id}.log"));
    match inner.spawner.spawn(&inner.config.workload, &args, &log) {
        Ok(child) => {
            tracing::info!(instance = %id, %addr, az = %instance.az, "launched");
            runtime.children().insert(id.to_string(), Running { child });
        }
        Err(error) => {
            tracing::warn!(instance = %id, %error, "launch failed");
            let _ = runtime.group().mark_unhealthy(id, &format!("launch failed: {error}"));
            *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// Deregister (draining), stop the process, record the end.
async fn terminate(cloud: &Cloud, runtime: &Arc<GroupRuntime>, id: &str) {
    runtime.lb.deregister(id).await;
    let running = runtime.children().remove(id);
    if let Some(mut running) = running {
        let grace = cloud.inner.config.drain_timeout + Duration::from_secs(1);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = stop(&mut running.child, grace);
        })
        .await;
    }
    let now = cloud.inner.clock.now();
    let _ = runtime.group().mark_terminated(id, now);
    tracing::info!(instance = %id, "terminated");
}

/// A listener on 127.0.0.1:`port` (0: a free port) and the address it got.
async fn bind_loopback(what: &'static str, port: u16) -> Result<(TcpListener, SocketAddr)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let bound = async {
        let listener = crate::server::listen(addr)?;
        let local = listener.local_addr()?;
        Ok::<_, std::io::Error>((listener, local))
    };
    bound.await.map_err(|source| Error::Bind { what, addr, source })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One metric sample per cloud minute for every in-service instance and the group.
async fn sampler(cloud: Cloud, runtime: Arc<GroupRuntime>) {
    let inner = &cloud.inner;
    let period = inner
        .clock
        .wall(Duration::from_secs(60))
        .max(Duration::from_millis(100));
    let name = runtime.group().name.clone();
    let mut previous_cpu: HashMap<String, f64> = HashMap::new();
    let mut previous = runtime.lb.counters();
    // Samples are taken at each cloud-minute boundary and stamped with the
    // minute they cover, so every minute has one datapoint per instance.
    let minute = SignedDuration::from_mins(1);
    let mut started = Instant::now();
    loop {
        let now = inner.clock.now();
        let boundary = Timestamp::from_second((now.as_second().div_euclid(60) + 1) * 60).unwrap_or(now);
        let wake = inner.clock.instant_of(boundary).max(started + period / 2);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        let ended = Instant::now();
        let wall = ended.duration_since(started).as_secs_f64().max(1e-3);
        let at = boundary - minute;
        started = ended;
        let instances: Vec<(String, SocketAddr)> = runtime
            .group()
            .active()
            .filter(|i| i.state == State::InService)
            .map(|i| {
                (
                    i.id.clone(),
                    SocketAddr::V4(SocketAddrV4::new(i.ip, inner.config.instance_port)),
                )
            })
            .collect();
        let mut readings = Vec::new();
        for (id, addr) in &instances {
            readings.push((id.clone(), read_cpu(inner, *addr).await));
        }
        let targets = runtime.lb.status();
        let counters = runtime.lb.counters();
        let latencies = runtime.lb.take_latencies();
        let mut store = lock(&inner.store);
        for (id, reading) in readings {
            if let Some((cpu_seconds, capacity)) = reading
                && let Some(before) = previous_cpu.insert(id.clone(), cpu_seconds)
            {
                let percent = (100.0 * (cpu_seconds - before) / (wall * capacity)).clamp(0.0, 100.0);
                store.put(
                    SeriesKey::new("AWS/EC2", "CPUUtilization", &[("InstanceId", &id)]),
                    at,
                    percent,
                );
                store.put(
                    SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", &name)]),
                    at,
                    percent,
                );
            }
        }
        previous_cpu.retain(|id, _| instances.iter().any(|(i, _)| i == id));
        let rate = counters.routed.saturating_sub(previous.routed) as f64 / wall;
        let no_target = counters.no_target.saturating_sub(previous.no_target) as f64 / wall;
        let target_5xx = counters.target_5xx.saturating_sub(previous.target_5xx) as f64 / wall;
        previous = counters;
        // As the load balancer publishes them (ALB docs), only in a minute
        // with a nonzero value: RequestCountPerTarget by TargetGroup alone,
        // one value a minute, the requests over the healthy targets (its Sum
        // is that average); RequestCount and TargetResponseTime by
        // LoadBalancer (and with TargetGroup), counting only requests for which a
        // target was chosen; HTTPCode_Target_5XX_Count likewise, the requests
        // targets answered 5xx (shed); HTTPCode_ELB_503_Count by LoadBalancer, the
        // requests answered 503 for want of a target (all a group at zero
        // instances has to scale out on). Requests a minute at the
        // wall-clock rate (see crate::metrics).
        let healthy = targets
            .iter()
            .filter(|t| t.health == crate::lb::TargetHealth::Healthy)
            .count();
        if rate > 0.0 {
            if healthy > 0 {
                let per_target = rate * 60.0 / healthy as f64;
                store.put(
                    SeriesKey::new("AWS/ApplicationELB", "RequestCountPerTarget", &[("TargetGroup", &name)]),
                    at,
                    per_target,
                );
            }
            for dimensions in [
                &[("LoadBalancer", name.as_str())][..],
                &[("LoadBalancer", &name), ("TargetGroup", &name)],
            ] {
                store.put(
                    SeriesKey::new("AWS/ApplicationELB", "RequestCount", dimensions),
                    at,
                    rate * 60.0,
                );
            }
        }
        if target_5xx > 0.0 {
            for dimensions in [
                &[("LoadBalancer", name.as_str())][..],
                &[("LoadBalancer", &name), ("TargetGroup", &name)],
            ] {
                store.put(
                    SeriesKey::new("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dimensions),
                    at,
                    target_5xx * 60.0,
                );
            }
        }
        if no_target > 0.0 {
            store.put(
                SeriesKey::new(
                    "AWS/ApplicationELB",
                    "HTTPCode_ELB_503_Count",
                    &[("LoadBalancer", &name)],
                ),
                at,
                no_target * 60.0,
            );
        }
        let key = SeriesKey::new(
            "AWS/ApplicationELB",
            "TargetResponseTime",
            &[("LoadBalancer", &name), ("TargetGroup", &name)],
        );
        for latency in latencies {
            store.put(key.clone(), at, latency);
        }
    }
}

/// (CPU seconds used, CPU cap in cores) from an instance's /metrics.
async fn read_cpu(inner: &Inner, addr: SocketAddr) -> Option<(f64, f64)> {
    use http_body_util::BodyExt;
    let uri = format!("http://{addr}/metrics").parse::<http::Uri>().ok()?;
    let response = tokio::time::timeout(Duration::from_millis(500), inner.probe.get(uri))
        .await
        .ok()?
        .ok()?;
    let body = tokio::time::timeout(Duration::from_millis(500), response.into_body().collect())
        .await
        .ok()?
        .ok()?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    Some((
        prometheus_value(&text, "workload_cpu_seconds_total")?,
        prometheus_value(&text, "workload_cpu_capacity_cores")?,
    ))
}

/// Alarms, schedules and ticks: what EventBridge and CloudWatch would send.
async fn events(cloud: Cloud) {
    let inner = &cloud.inner;
    let schedules: Vec<(String, String, scaling::schedule::ScheduleExpr, jiff::tz::TimeZone)> = inner
        .config
        .policy
        .groups
        .iter()
        .flat_map(|g| g.schedules.iter().map(move |s| (g, s)))
        .filter_map(|(g, s)| {
            let (expr, tz) = s.parsed().ok()?;
            Some((g.name.clone(), s.name.clone(), expr, tz))
        })
        .collect();
    // Groups that need the periodic tick: target tracking, or alarms to re-check.
    let ticking: Vec<String> = inner
        .config
        .policy
        .groups
        .iter()
        .filter(|g| !g.target_tracking.is_empty() || !g.alarm_policies.is_empty())
        .map(|g| g.name.clone())
        .collect();
    let tick: Option<scaling::schedule::ScheduleExpr> = "rate(1 minute)".parse().ok();
    // Alarms judge a period a little after it ends, once its samples are in
    // (CloudWatch, too, evaluates with a delay).
    let lag = SignedDuration::try_from(Duration::from_millis(300).mul_f64(inner.clock.speed()))
        .unwrap_or(SignedDuration::ZERO);
    let mut last = inner.clock.now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = inner.clock.now();
        let changes: Vec<crate::alarms::StateChange> = {
            let store = lock(&inner.store);
            lock(&inner.alarms)
                .iter_mut()
                .filter_map(|a| a.evaluate(&store, now - lag))
                .collect()
        };
        for change in changes {
            let summary = format!("alarm {} {:?} -> {:?}", change.alarm, change.from, change.to);
            cloud.emit(&change.group, summary, change.event);
        }
        for (group, name, expr, tz) in &schedules {
            for at in expr.fires_between(last, now, tz) {
                cloud.emit(group, format!("schedule {name} at {at}"), scheduled_event(name, at));
            }
        }
        if let Some(tick) = &tick {
            for at in tick.fires_between(last, now, &jiff::tz::TimeZone::UTC) {
                for group in &ticking {
                    let rule = format!("{group}-tick");
                    // The event names its group, as the template's input transformer does.
                    let mut event = scheduled_event(&rule, at);
                    event["detail"] = serde_json::json!({ "group": group });
                    cloud.emit(group, format!("tick {rule} at {at}"), event);
                }
            }
        }
        last = now;
    }
}

/// EventBridge's "Scheduled Event" for a rule firing at `at`.
pub fn scheduled_event(rule: &str, at: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": crate::alarms::event_id(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": crate::alarms::ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": crate::alarms::REGION,
        "resources": [format!("arn:aws:events:{}:{}:rule/{rule}", crate::alarms::REGION, crate::alarms::ACCOUNT)],
        "detail": {},
    })
}

impl Error {
    fn group(group: &str, error: GroupError) -> Self {
        Self::Group {
            group: group.to_string(),
            source: error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_reported_with_its_name_and_message() {
        let tasks = Tasks::default();
        tasks.push("forever", tokio::spawn(std::future::pending()));
        assert_eq!(tasks.first_stopped(), None);
        tasks.push(
            "health checker",
            tokio::spawn(async { panic!("`period` must be non-zero.") }),
        );
        tasks.push("quiet", tokio::spawn(async {}));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            tasks.first_stopped().as_deref(),
            Some("internal task health checker stopped: it panicked: `period` must be non-zero.")
        );
        assert_eq!(
            tasks.first_stopped().as_deref(),
            Some("internal task quiet stopped: it returned")
        );
        assert_eq!(tasks.first_stopped(), None);
        tasks.abort_all();
    }
}

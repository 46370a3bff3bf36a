//! The running local cloud: one controller loop per group that starts and
//! stops `workload` processes as [`Group::plan`] says, promotes instances to
//! InService after their boot time and first good health check, replaces
//! crashed and unhealthy ones, and keeps each group's load balancer in step.
//!
//! This file holds the cloud's state and its API (groups, emit,
//! shutdown); beside it: `start`, `faults`, `status` (the status view),
//! and the parts it runs: `controller`
//! (reconcile, launch, terminate), `sampler` (the metrics of each cloud
//! minute), `events` (alarms, schedules, ticks), `readings` (what the local
//! CloudWatch shows), `config` (checking the settings), `tasks` (the
//! long-running tasks and how one that stopped is reported).

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
use crate::runtime::{FUNCTION, Invocation, Runtime};

mod config;
mod controller;
mod events;
mod faults;
mod readings;
mod sampler;
mod start;
mod status;
mod tasks;

pub use status::{EventRecord, GroupStatus, InstanceStatus, Status};

pub use events::scheduled_event;
pub(crate) use tasks::Tasks;

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
    /// A second policy for the same groups, run by its own function in dry
    /// run (`SCALER_DRY_RUN=1`): its alarms, schedules and ticks go to it,
    /// it decides and explains, the deciding policy acts (issue 21's
    /// shadow mode, as a second stack in dry run next to a group on AWS).
    pub shadow: Option<ShadowPolicy>,
}

/// The shadow policy and the file its function reads.
#[derive(Debug, Clone)]
pub struct ShadowPolicy {
    pub policy: Policy,
    pub policy_file: PathBuf,
}

/// The shadow function's name (its log is `scaler-shadow.log`).
pub const SHADOW_FUNCTION: &str = "scaler-shadow";

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
    /// The shadow policy's function (dry run), when there is one.
    pub(crate) shadow: Option<Arc<Runtime>>,
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
impl Cloud {
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

    /// The shadow function (dry run), when a shadow policy runs.
    pub fn shadow(&self) -> Option<&Arc<Runtime>> {
        self.inner.shadow.as_ref()
    }

    /// The function runtime, when functions run.
    pub fn functions(&self) -> Option<&Arc<Runtime>> {
        self.inner.runtime.as_ref()
    }

    /// Sends a trigger for `group` to the function's FIFO queue, in the
    /// group's message group (and records it), as the template's EventBridge
    /// rules and schedules do.
    pub fn emit(&self, group: &str, summary: String, event: serde_json::Value) {
        self.emit_to(false, group, summary, event);
    }

    /// [`Cloud::emit`] to the deciding function, or (`shadow`) to the shadow one.
    pub(crate) fn emit_to(&self, shadow: bool, group: &str, summary: String, event: serde_json::Value) {
        let at = self.clock().now();
        let runtime = if shadow {
            &self.inner.shadow
        } else {
            &self.inner.runtime
        };
        let sent = runtime
            .as_ref()
            .map(|runtime| runtime.send(group, summary.clone(), &event));
        let deduplicated = sent == Some(crate::runtime::Sent::Deduplicated);
        {
            let mut events = lock(&self.inner.events);
            events.push_back(EventRecord {
                at,
                summary: summary.clone(),
                function: sent.map(|_| if shadow { SHADOW_FUNCTION } else { FUNCTION }.to_string()),
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
        for runtime in self.inner.runtime.iter().chain(&self.inner.shadow) {
            let runtime = Arc::clone(runtime);
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

impl Error {
    fn group(group: &str, error: GroupError) -> Self {
        Self::Group {
            group: group.to_string(),
            source: error,
        }
    }
}

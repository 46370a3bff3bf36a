//! The status view: everything the CLI and the JSON endpoint show.

use super::*;

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
    /// The shadow function's (dry run), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_invocations: Vec<Invocation>,
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

/// Activities shown by the status view.
pub(super) const STATUS_ACTIVITIES: usize = 20;

/// A function's newest invocations for the status view, oldest first.
pub(super) fn newest(runtime: Option<&Arc<Runtime>>) -> Vec<Invocation> {
    runtime
        .map(|r| {
            let all = r.invocations();
            all[all.len().saturating_sub(STATUS_ACTIVITIES)..].to_vec()
        })
        .unwrap_or_default()
}

impl Cloud {
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
            invocations: newest(self.inner.runtime.as_ref()),
            shadow_invocations: newest(self.inner.shadow.as_ref()),
        }
    }

    /// The states of every alarm.
    pub fn alarms(&self) -> Vec<Alarm> {
        lock(&self.inner.alarms).clone()
    }

    /// Events sent so far (the newest 500).
    pub fn events(&self) -> Vec<EventRecord> {
        lock(&self.inner.events).iter().cloned().collect()
    }
}

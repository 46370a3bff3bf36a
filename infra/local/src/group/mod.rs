//! The group controller's state and rules, with EC2 Auto Scaling semantics:
//! min/max/desired, launches balanced across availability zones,
//! termination by AZ balance then age (never a protected instance),
//! replacement of unhealthy instances, and an activity history like the
//! console's. Pure: [`Group::plan`] says what to launch and terminate; the
//! runtime ([`crate::cloud`]) starts and stops processes and reports back.

use std::net::Ipv4Addr;

use jiff::Timestamp;
use scaling::decide::{Activity, Instance, Lifecycle, Observation};
use scaling::policy::GroupPolicy;
use serde::{Deserialize, Serialize};

mod records;

use records::instance_id;
pub use records::*;

/// Host addresses in a group's subnet (a /24 without .0 and .255): the most
/// instances a local group can hold.
pub const SUBNET_HOSTS: u32 = 254;

/// What [`Group::plan`] decided: the steps to run, and why fewer launches
/// than needed were planned, if so.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "planned steps are already recorded and must be run"]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Set when a launch could not be planned (recorded as a failed activity).
    pub launch_failed: Option<GroupError>,
}

/// A group: its limits, instances and history.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub azs: Vec<String>,
    /// Every instance ever launched (terminated ones stay for the history).
    pub instances: Vec<InstanceRecord>,
    /// Changes of desired capacity with their causes (what the functions read).
    pub capacity_changes: Vec<Activity>,
    /// Launches and terminations, oldest first.
    pub activities: Vec<InstanceActivity>,
    /// Zones where nothing launches (a simulated zone failure).
    pub azs_down: Vec<String>,
    /// First three octets of the instances' addresses (e.g. 127.0.1).
    #[serde(skip)]
    subnet: [u8; 3],
    #[serde(skip)]
    next_host: u8,
}

/// Instance activities kept per group.
const KEEP_ACTIVITIES: usize = 1000;

impl Group {
    /// A group at the policy's min/max/desired, with no instances yet.
    pub fn new(policy: &GroupPolicy, azs: Vec<String>, subnet: [u8; 3]) -> Self {
        Self {
            name: policy.name.clone(),
            min: policy.min,
            max: policy.max,
            desired: policy.desired.unwrap_or(policy.min),
            azs,
            instances: Vec::new(),
            capacity_changes: Vec::new(),
            activities: Vec::new(),
            azs_down: Vec::new(),
            subnet,
            next_host: 1,
        }
    }

    /// Sets the desired capacity (within min..=max), recording `cause`.
    pub fn set_desired(&mut self, desired: u32, cause: &str, now: Timestamp) -> Result<(), GroupError> {
        self.set_limits(self.min, self.max, desired, cause, now)
    }

    /// Sets min, max and desired together, or nothing.
    pub fn set_limits(
        &mut self,
        min: u32,
        max: u32,
        desired: u32,
        cause: &str,
        now: Timestamp,
    ) -> Result<(), GroupError> {
        if min > max {
            return Err(GroupError::MinAboveMax { min, max });
        }
        if max > SUBNET_HOSTS {
            return Err(GroupError::MaxAboveSubnet {
                max,
                hosts: SUBNET_HOSTS,
            });
        }
        if !(min..=max).contains(&desired) {
            return Err(GroupError::DesiredOutsideLimits { desired, min, max });
        }
        let from = self.desired;
        (self.min, self.max, self.desired) = (min, max, desired);
        if from != desired {
            self.capacity_changes.push(Activity {
                start: now,
                end: Some(now),
                from,
                to: desired,
                cause: cause.to_string(),
            });
        }
        Ok(())
    }

    pub fn instance(&self, id: &str) -> Option<&InstanceRecord> {
        self.instances.iter().find(|i| i.id == id)
    }

    fn instance_mut(&mut self, id: &str) -> Result<&mut InstanceRecord, GroupError> {
        self.instances
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| GroupError::NoSuchInstance(id.to_string()))
    }

    /// Sets or clears scale-in protection of an instance.
    pub fn protect(&mut self, id: &str, protected: bool) -> Result<(), GroupError> {
        let instance = self.instance_mut(id)?;
        if !matches!(instance.state, State::Pending | State::InService) {
            return Err(GroupError::NoSuchInstance(id.to_string()));
        }
        instance.protected = protected;
        Ok(())
    }

    /// Instances that count toward the desired capacity.
    pub fn active(&self) -> impl Iterator<Item = &InstanceRecord> {
        self.instances.iter().filter(|i| i.is_active())
    }

    /// The launches and terminations that bring the group to its desired
    /// capacity, with unhealthy instances replaced. Records them at once
    /// (Pending / Terminating, with their activities), all or nothing per
    /// instance: an instance is recorded only with the address it launches
    /// on, so every recorded launch is in the returned steps.
    ///
    /// A launch that cannot be planned (no free address: instances still
    /// terminating hold theirs) is recorded as a failed activity and tried
    /// again on a later plan, as EC2 Auto Scaling records a failed launch
    /// ("Launching a new EC2 instance. Status Reason: ...", activity status
    /// Failed) and keeps trying to reach the desired capacity
    /// (docs: "Troubleshoot Amazon EC2 Auto Scaling: EC2 instance launch failures").
    pub fn plan(&mut self, now: Timestamp) -> Plan {
        let mut steps = Vec::new();
        let mut launch_failed = None;
        // Unhealthy instances are taken out of service and replaced.
        let unhealthy: Vec<(String, String)> = self
            .instances
            .iter()
            .filter(|i| matches!(i.state, State::Pending | State::InService))
            .filter_map(|i| i.unhealthy.clone().map(|why| (i.id.clone(), why)))
            .collect();
        for (id, why) in unhealthy {
            self.begin_termination(
                &id,
                format!("At {now} an instance was taken out of service in response to a health check: {why}."),
                now,
            );
            steps.push(Step::Terminate { id });
        }
        let active = self.active().count() as u32;
        if active < self.desired {
            for _ in active..self.desired {
                let cause = format!(
                    "At {now} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {active} to {}.",
                    self.desired
                );
                let ip = match self.next_address() {
                    Ok(ip) => ip,
                    Err(error) => {
                        self.record(InstanceActivity {
                            instance: String::new(),
                            description: format!(
                                "Launching a new instance. Status Reason: {error}. Launching EC2 instance failed."
                            ),
                            cause,
                            start: now,
                            end: Some(now),
                            status: ActivityStatus::Failed,
                        });
                        launch_failed = Some(error);
                        break;
                    }
                };
                let az = self.emptiest_az();
                let id = instance_id();
                self.instances.push(InstanceRecord {
                    id: id.clone(),
                    az: az.clone(),
                    ip,
                    state: State::Pending,
                    launched_at: now,
                    in_service_at: None,
                    terminated_at: None,
                    protected: false,
                    unhealthy: None,
                });
                self.record(InstanceActivity {
                    instance: id.clone(),
                    description: format!("Launching a new instance: {id} in {az} ({ip})"),
                    cause,
                    start: now,
                    end: None,
                    status: ActivityStatus::InProgress,
                });
                steps.push(Step::Launch { id });
            }
        } else if active > self.desired {
            let candidates: Vec<&InstanceRecord> = self.active().collect();
            let victims = termination_order(&candidates, (active - self.desired) as usize);
            for id in victims {
                self.begin_termination(
                    &id,
                    format!(
                        "At {now} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {active} to {}.",
                        self.desired
                    ),
                    now,
                );
                steps.push(Step::Terminate { id });
            }
        }
        Plan { steps, launch_failed }
    }

    fn begin_termination(&mut self, id: &str, cause: String, now: Timestamp) {
        let Ok(instance) = self.instance_mut(id) else { return };
        instance.state = State::Terminating;
        let description = format!("Terminating instance: {id}");
        // A launch still in progress ends here.
        for activity in self
            .activities
            .iter_mut()
            .filter(|a| a.instance == id && a.end.is_none())
        {
            activity.end = Some(now);
            activity.status = ActivityStatus::Failed;
        }
        self.record(InstanceActivity {
            instance: id.to_string(),
            description,
            cause,
            start: now,
            end: None,
            status: ActivityStatus::InProgress,
        });
    }

    /// A pending instance passed its health check after its boot time.
    pub fn mark_in_service(&mut self, id: &str, now: Timestamp) -> Result<(), GroupError> {
        let instance = self.instance_mut(id)?;
        if instance.state != State::Pending {
            return Ok(());
        }
        instance.state = State::InService;
        instance.in_service_at = Some(now);
        self.finish(id, ActivityStatus::Successful, now);
        Ok(())
    }

    /// An instance failed (crashed, or its health check): it will be replaced.
    pub fn mark_unhealthy(&mut self, id: &str, why: &str) -> Result<(), GroupError> {
        let instance = self.instance_mut(id)?;
        if matches!(instance.state, State::Pending | State::InService) && instance.unhealthy.is_none() {
            instance.unhealthy = Some(why.to_string());
        }
        Ok(())
    }

    /// A terminating instance has stopped.
    pub fn mark_terminated(&mut self, id: &str, now: Timestamp) -> Result<(), GroupError> {
        let instance = self.instance_mut(id)?;
        instance.state = State::Terminated;
        instance.terminated_at = Some(now);
        self.finish(id, ActivityStatus::Successful, now);
        Ok(())
    }

    fn finish(&mut self, id: &str, status: ActivityStatus, now: Timestamp) {
        if let Some(activity) = self
            .activities
            .iter_mut()
            .rev()
            .find(|a| a.instance == id && a.end.is_none())
        {
            activity.end = Some(now);
            activity.status = status;
        }
    }

    fn record(&mut self, activity: InstanceActivity) {
        self.activities.push(activity);
        if self.activities.len() > KEEP_ACTIVITIES {
            self.activities.drain(..self.activities.len() - KEEP_ACTIVITIES);
        }
    }

    /// Marks a zone failed (no launches there) or restored.
    pub fn set_az_down(&mut self, az: &str, down: bool) {
        self.azs_down.retain(|a| a != az);
        if down {
            self.azs_down.push(az.to_string());
        }
    }

    /// The available AZ with the fewest active instances (the first such, in order).
    fn emptiest_az(&self) -> String {
        self.azs
            .iter()
            .filter(|az| !self.azs_down.contains(az))
            .min_by_key(|az| self.active().filter(|i| &i.az == *az).count())
            .cloned()
            .unwrap_or_default()
    }

    /// The next free host address of the subnet, round robin so a stopped
    /// instance's address is reused as late as possible.
    fn next_address(&mut self) -> Result<Ipv4Addr, GroupError> {
        let [a, b, c] = self.subnet;
        for _ in 0..254 {
            let host = self.next_host;
            self.next_host = if host >= 254 { 1 } else { host + 1 };
            let ip = Ipv4Addr::new(a, b, c, host);
            if !self
                .instances
                .iter()
                .any(|i| i.ip == ip && i.state != State::Terminated)
            {
                return Ok(ip);
            }
        }
        Err(GroupError::NoAddress(format!("{a}.{b}.{c}")))
    }

    /// The group as the functions observe it.
    pub fn observation(&self) -> Observation {
        Observation {
            min: self.min,
            max: self.max,
            desired: self.desired,
            instances: self
                .instances
                .iter()
                .filter(|i| i.state != State::Terminated)
                .map(|i| Instance {
                    id: i.id.clone(),
                    lifecycle: match i.state {
                        State::Pending => Lifecycle::Pending,
                        State::InService => Lifecycle::InService,
                        State::Terminating | State::Terminated => Lifecycle::Terminating,
                    },
                    launched_at: i.launched_at,
                    protected: i.protected,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn policy(min: u32, max: u32) -> GroupPolicy {
        // A group that may reach zero needs a way back (validation): a
        // schedule, which these model tests never fire.
        let back = if min == 0 {
            "[[group.schedule]]\nname = \"back\"\ncron = \"cron(0 8 * * ? *)\"\nmin = 1\n"
        } else {
            ""
        };
        scaling::policy::Policy::parse(
            "test",
            &format!("[[group]]\nname = \"web\"\nmin = {min}\nmax = {max}\n{back}"),
        )
        .expect("policy")
        .groups
        .remove(0)
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).expect("time")
    }

    fn group(min: u32, max: u32) -> Group {
        Group::new(
            &policy(min, max),
            vec!["local-1a".into(), "local-1b".into()],
            [127, 0, 1],
        )
    }

    fn launch_all(group: &mut Group, now: Timestamp) -> Vec<String> {
        let plan = group.plan(now);
        assert_eq!(plan.launch_failed, None);
        plan.steps
            .into_iter()
            .map(|s| match s {
                Step::Launch { id } => {
                    group.mark_in_service(&id, now).expect("in service");
                    id
                }
                Step::Terminate { id } => panic!("unexpected termination of {id}"),
            })
            .collect()
    }

    #[test]
    fn starts_at_min_balanced_across_azs() {
        let mut g = group(4, 10);
        let ids = launch_all(&mut g, t(0));
        assert_eq!(ids.len(), 4);
        let per_az = |az: &str| g.active().filter(|i| i.az == az).count();
        assert_eq!((per_az("local-1a"), per_az("local-1b")), (2, 2));
        let ips: Vec<String> = g.active().map(|i| i.ip.to_string()).collect();
        assert_eq!(ips, ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"]);
        assert!(ids.iter().all(|id| id.len() == 19 && id.starts_with("i-")));
        assert!(g.activities.iter().all(|a| a.status == ActivityStatus::Successful));
        assert!(g.plan(t(1)).steps.is_empty(), "at desired: nothing to do");
    }

    #[test]
    fn desired_outside_the_limits_is_refused_and_nothing_changes() {
        let mut g = group(2, 10);
        assert_eq!(
            g.set_desired(11, "test", t(0)),
            Err(GroupError::DesiredOutsideLimits {
                desired: 11,
                min: 2,
                max: 10
            })
        );
        assert_eq!(
            g.set_limits(5, 3, 4, "test", t(0)),
            Err(GroupError::MinAboveMax { min: 5, max: 3 })
        );
        assert_eq!((g.min, g.max, g.desired), (2, 10, 2));
        assert!(g.capacity_changes.is_empty());
    }

    #[test]
    fn scale_in_keeps_azs_balanced_then_takes_the_oldest_never_a_protected_one() {
        let mut g = group(1, 10);
        g.set_desired(6, "out", t(0)).expect("desired");
        // Launch one at a time so ages differ: a, b, a, b, a, b.
        let mut order = Vec::new();
        for k in 0..6 {
            g.desired = k + 1;
            order.extend(launch_all(&mut g, t(i64::from(k) * 10)));
        }
        let az_of = |g: &Group, id: &str| g.instance(id).expect("instance").az.clone();
        assert_eq!(az_of(&g, &order[0]), "local-1a");
        assert_eq!(az_of(&g, &order[1]), "local-1b");
        // Protect the oldest instance.
        g.protect(&order[0], true).expect("protect");
        g.set_desired(3, "in", t(100)).expect("desired");
        let steps = g.plan(t(100)).steps;
        let victims: Vec<&str> = steps
            .iter()
            .map(|s| match s {
                Step::Terminate { id } => id.as_str(),
                Step::Launch { id } => panic!("unexpected launch {id}"),
            })
            .collect();
        // 3 per AZ: first the oldest unprotected of either (1b's oldest,
        // order[1], since order[0] is protected and the AZs tie), then the
        // AZ that now has more (1a: order[2]), then the tie again (1b: order[3]).
        assert_eq!(victims, [order[1].as_str(), order[2].as_str(), order[3].as_str()]);
        assert!(g.instance(&order[0]).expect("kept").state == State::InService);
        for id in &victims {
            assert_eq!(g.instance(id).expect("victim").state, State::Terminating);
        }
        let active = g.active().count();
        assert_eq!(active, 3);
    }

    #[test]
    fn protected_instances_are_never_terminated_even_below_desired() {
        let mut g = group(0, 4);
        g.set_desired(2, "out", t(0)).expect("desired");
        let ids = launch_all(&mut g, t(0));
        for id in &ids {
            g.protect(id, true).expect("protect");
        }
        g.set_desired(0, "in", t(10)).expect("desired");
        assert!(g.plan(t(10)).steps.is_empty());
        assert_eq!(g.active().count(), 2);
    }

    #[test]
    fn an_unhealthy_instance_is_replaced_in_its_az() {
        let mut g = group(2, 4);
        let ids = launch_all(&mut g, t(0));
        g.mark_unhealthy(&ids[0], "process exited with signal 9").expect("mark");
        let steps = g.plan(t(30)).steps;
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(steps[0], Step::Terminate { id: ids[0].clone() });
        let Step::Launch { id: replacement } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(
            g.instance(replacement).expect("new").az,
            g.instance(&ids[0]).expect("old").az
        );
        let cause = &g.activities.iter().rev().nth(1).expect("termination").cause;
        assert!(
            cause.contains("in response to a health check: process exited with signal 9"),
            "{cause}"
        );
        g.mark_terminated(&ids[0], t(31)).expect("terminated");
        assert_eq!(g.observation().instances.len(), 2);
    }

    #[test]
    fn no_launch_goes_to_a_failed_zone() {
        let mut g = group(4, 4);
        g.set_az_down("local-1a", true);
        let _ = launch_all(&mut g, t(0));
        assert!(g.active().all(|i| i.az == "local-1b"));
        g.set_az_down("local-1a", false);
        assert!(g.azs_down.is_empty());
    }

    #[test]
    fn addresses_are_reused_last() {
        let mut g = group(1, 2);
        let first = launch_all(&mut g, t(0));
        g.mark_unhealthy(&first[0], "gone").expect("mark");
        let _ = g.plan(t(1));
        g.mark_terminated(&first[0], t(2)).expect("terminated");
        let now: Vec<String> = g.active().map(|i| i.ip.to_string()).collect();
        assert_eq!(now, ["127.0.1.2"]);
        assert!(t(2) - t(0) == SignedDuration::from_secs(2));
    }

    #[test]
    fn max_above_the_subnet_is_refused_and_nothing_changes() {
        let mut g = group(2, 10);
        assert_eq!(
            g.set_limits(2, 255, 2, "test", t(0)),
            Err(GroupError::MaxAboveSubnet { max: 255, hosts: 254 })
        );
        assert_eq!((g.min, g.max, g.desired), (2, 10, 2));
        g.set_limits(2, SUBNET_HOSTS, 2, "test", t(0)).expect("254 fits");
    }

    /// Issue 25.1: a launch with no free address used to be recorded as
    /// Pending and then lost with the plan's error: a phantom that counted as
    /// active forever. Now every recorded launch is a planned step, and a
    /// launch that cannot be planned is a failed activity, tried again.
    #[test]
    fn a_full_subnet_records_a_failed_launch_not_a_phantom_and_launches_once_an_address_frees() {
        let mut g = group(0, SUBNET_HOSTS);
        g.set_desired(SUBNET_HOSTS, "out", t(0)).expect("desired");
        let ids = launch_all(&mut g, t(0));
        assert_eq!(ids.len(), 254);
        // The replacement of an unhealthy instance needs an address while the
        // old one still holds its own (terminating).
        g.mark_unhealthy(&ids[7], "gone").expect("mark");
        let plan = g.plan(t(10));
        assert_eq!(plan.steps, [Step::Terminate { id: ids[7].clone() }]);
        assert_eq!(plan.launch_failed, Some(GroupError::NoAddress("127.0.1".into())));
        let pending = g.instances.iter().filter(|i| i.state == State::Pending).count();
        assert_eq!(pending, 0, "no instance is recorded without its launch");
        assert_eq!(g.active().count(), 253);
        let failed = g.activities.last().expect("failed activity");
        assert_eq!(failed.status, ActivityStatus::Failed);
        assert!(
            failed.description.contains("no free address left in 127.0.1.0/24"),
            "{failed:?}"
        );
        // Terminated: its address is free, and the next plan launches.
        g.mark_terminated(&ids[7], t(11)).expect("terminated");
        let plan = g.plan(t(12));
        assert_eq!(plan.launch_failed, None);
        assert!(matches!(plan.steps.as_slice(), [Step::Launch { .. }]), "{plan:?}");
        assert_eq!(g.active().count(), 254);
    }

    #[test]
    fn capacity_changes_keep_their_causes_for_the_functions() {
        let mut g = group(2, 10);
        g.set_desired(5, "alarm web-cpu-high at 2026-11-20T11:05:00Z", t(0))
            .expect("desired");
        g.set_desired(5, "again", t(1)).expect("same desired");
        assert_eq!(g.capacity_changes.len(), 1, "no change, no activity");
        assert_eq!(g.capacity_changes[0].from, 2);
        assert_eq!(g.capacity_changes[0].to, 5);
    }
}

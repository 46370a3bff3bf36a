//! What a group keeps of its instances: their records and states, the
//! activities (launch, terminate) as DescribeScalingActivities lists them,
//! the errors of a refused change, and new instance ids.

use super::*;

/// Where an instance is in its life (the Auto Scaling lifecycle states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Pending,
    InService,
    Terminating,
    Terminated,
}

/// One instance of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: String,
    pub az: String,
    pub ip: Ipv4Addr,
    pub state: State,
    /// Cloud time.
    pub launched_at: Timestamp,
    pub in_service_at: Option<Timestamp>,
    pub terminated_at: Option<Timestamp>,
    pub protected: bool,
    /// Why it is being replaced, once found unhealthy.
    pub unhealthy: Option<String>,
}

impl InstanceRecord {
    /// Pending or in service: counts toward the desired capacity.
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Pending | State::InService) && self.unhealthy.is_none()
    }
}

/// How an instance activity ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActivityStatus {
    InProgress,
    Successful,
    Failed,
}

/// One launch or termination, as the console's activity history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceActivity {
    pub instance: String,
    pub description: String,
    pub cause: String,
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    pub status: ActivityStatus,
}

/// What the runtime must do to bring the group to its desired capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Start an instance (already recorded as Pending).
    Launch { id: String },
    /// Deregister, drain and stop an instance (already recorded as Terminating).
    Terminate { id: String },
}

/// Why a change to the group was refused (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("desired {desired} is outside min..=max ({min}..={max})")]
    DesiredOutsideLimits { desired: u32, min: u32, max: u32 },
    #[error("min {min} is above max {max}")]
    MinAboveMax { min: u32, max: u32 },
    #[error("no instance {0} in the group")]
    NoSuchInstance(String),
    #[error("no free address left in {0}.0/24")]
    NoAddress(String),
    /// The local cloud gives each group one /24 of loopback addresses.
    #[error("max {max} is above the {hosts} instances one group's subnet holds")]
    MaxAboveSubnet { max: u32, hosts: u32 },
}

/// `i-` and 17 hex digits, like EC2's.
pub(super) fn instance_id() -> String {
    format!("i-{:017x}", fastrand::u128(..) & ((1u128 << 68) - 1))
}

/// Which `count` instances to terminate, in order: the one rule every
/// part uses ([`scaling::group::termination_order`]: zone balance, then
/// the oldest, never a protected instance), so fewer may come back.
pub fn termination_order(active: &[&InstanceRecord], count: usize) -> Vec<String> {
    let candidates: Vec<scaling::group::Candidate<'_>> = active
        .iter()
        .map(|i| scaling::group::Candidate {
            id: &i.id,
            az: &i.az,
            launched_at: i.launched_at,
            protected: i.protected,
        })
        .collect();
    scaling::group::termination_order(&candidates, count)
        .into_iter()
        .map(|index| active[index].id.clone())
        .collect()
}

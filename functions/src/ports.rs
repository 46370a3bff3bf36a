//! Ports: what the function needs from the world, as two small traits. The
//! adapters (AWS SDK, the local cloud, `crate::memory` for tests, with the `test-support` feature) implement
//! them, and one contract test suite runs against each.

use std::future::Future;

use jiff::Timestamp;

use crate::decide::{Activity, AlarmStatus, Datapoint, MetricHistory, Observation};
use crate::policy::{GroupPolicy, MetricSpec, TrackedMetric};

/// Why a port call failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct PortError {
    /// The call that failed, e.g. `SetDesiredCapacity web`.
    pub operation: String,
    pub detail: String,
    /// Throttling, timeouts and server errors are retryable; validation is not.
    pub retryable: bool,
    pub kind: PortErrorKind,
}

/// What kind of failure, for callers that treat some as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// The group (or alarm) does not exist.
    NotFound,
    /// The request was refused as invalid (e.g. desired outside min..=max).
    Invalid,
    /// Anything else (network, throttling, server).
    Unavailable,
}

impl PortError {
    pub fn not_found(operation: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            detail: detail.into(),
            retryable: false,
            kind: PortErrorKind::NotFound,
        }
    }

    pub fn invalid(operation: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            detail: detail.into(),
            retryable: false,
            kind: PortErrorKind::Invalid,
        }
    }

    pub fn unavailable(operation: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            operation: operation.into(),
            detail: detail.into(),
            retryable: true,
            kind: PortErrorKind::Unavailable,
        }
    }
}

/// The scaling group API (EC2 Auto Scaling, or the local cloud's).
pub trait GroupPort {
    /// Min, max, desired and the instances with lifecycle, launch time and protection.
    fn describe(&self, group: &str) -> impl Future<Output = Result<Observation, PortError>> + Send;

    /// Scaling activities that started at or after `since`, with the causes
    /// recorded by [`GroupPort::set_desired`] and [`GroupPort::set_limits`].
    fn activities(
        &self,
        group: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<Vec<Activity>, PortError>> + Send;

    /// Sets an absolute desired capacity (within min..=max), recording `cause`.
    fn set_desired(&self, group: &str, desired: u32, cause: &str)
    -> impl Future<Output = Result<(), PortError>> + Send;

    /// Sets min, max and desired together, recording `cause`.
    fn set_limits(
        &self,
        group: &str,
        min: u32,
        max: u32,
        desired: u32,
        cause: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// What a decision reads: the observation and the activities since
    /// `since`. An adapter whose API returns both from fewer calls overrides
    /// it (the AWS adapter: one DescribeAutoScalingGroups and one
    /// DescribeScalingActivities, not two of each).
    fn observe(
        &self,
        group: &str,
        since: Timestamp,
    ) -> impl Future<Output = Result<(Observation, Vec<Activity>), PortError>> + Send
    where
        Self: Sync,
    {
        async move { Ok((self.describe(group).await?, self.activities(group, since).await?)) }
    }

    /// [`GroupPort::set_desired`] right after `observed` was read: an
    /// adapter may take the limits and the current desired from it instead
    /// of reading the group again.
    fn set_desired_observed(
        &self,
        group: &str,
        observed: &Observation,
        desired: u32,
        cause: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        let _ = observed;
        self.set_desired(group, desired, cause)
    }

    /// [`GroupPort::set_limits`] right after `observed` was read.
    fn set_limits_observed(
        &self,
        group: &str,
        observed: &Observation,
        (min, max, desired): (u32, u32, u32),
        cause: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        let _ = observed;
        self.set_limits(group, min, max, desired, cause)
    }
}

/// Metrics and alarms (CloudWatch, or the local cloud's).
pub trait MetricsPort {
    /// Datapoints of the group's tracked metrics per instance, from `since`.
    fn history(
        &self,
        group: &GroupPolicy,
        instances: &[String],
        since: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<MetricHistory, PortError>> + Send;

    /// The group's load an hour in `[since, until)`, for predictive scaling:
    /// CloudWatch's hourly `Sum`s of the series `metric`'s load is made of
    /// (`crate::predictive::sums_needed`), through
    /// `crate::predictive::hourly_load`.
    fn load(
        &self,
        group: &GroupPolicy,
        metric: &TrackedMetric,
        since: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<Vec<Datapoint>, PortError>> + Send;

    /// The newest datapoint of an alarm's metric (for events that carry none).
    fn latest(
        &self,
        metric: &MetricSpec,
        until: Timestamp,
    ) -> impl Future<Output = Result<Option<f64>, PortError>> + Send;

    /// Current states of the named alarms (unknown names are left out).
    fn alarm_states(&self, names: &[String]) -> impl Future<Output = Result<Vec<AlarmStatus>, PortError>> + Send;
}

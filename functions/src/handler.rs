//! The Lambda handler: parse, route, observe through the ports, decide,
//! log one line, act. Plain async code, tested without the Lambda runtime.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::decide::{Action, Decision, Trigger, decide};
use crate::policy::Policy;
use crate::ports::{GroupPort, MetricsPort, PortError, PortErrorKind};
use crate::queue::{Batch, Message};
use crate::trigger::{Parsed, Routed, TriggerError, parse};

use crate::policy::HISTORY;

/// What the handler did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Not for us: logged and dropped.
    Ignored { reason: String },
    /// Decided, and acted unless dry-run or a hold.
    Decided {
        group: String,
        decision: Decision,
        acted: bool,
    },
}

/// Why an invocation failed; `retryable` says whether Lambda should retry.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event is malformed: retrying the same bytes cannot help.
    #[error(transparent)]
    Event(#[from] TriggerError),
    /// Reading or changing the group or its metrics failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The group was observed in a state no group can be in (min above max):
    /// nothing was changed; the same reading again cannot help.
    #[error(transparent)]
    Decide(#[from] crate::decide::DecideError),
}

impl HandlerError {
    /// Whether a retry of the same event could succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Event(e) => e.retryable(),
            Self::Port(e) => e.retryable,
            Self::Decide(_) => false,
        }
    }
}

/// The handler's fixed parts, built once per process.
#[derive(Debug)]
pub struct Handler<G, M> {
    pub policy: Policy,
    pub group: G,
    pub metrics: M,
    /// Decide and log, never act (env `SCALER_DRY_RUN=1`).
    pub dry_run: bool,
}

impl<G: GroupPort + Sync, M: MetricsPort + Sync> Handler<G, M> {
    /// Handles one event at `now`.
    pub async fn handle(&self, event: &Value, now: Timestamp) -> Result<Outcome, HandlerError> {
        Box::pin(self.handle_in(event, now, None)).await
    }

    /// Handles an SQS batch from the groups' FIFO queue (see [`crate::queue`]),
    /// in order, each message at the time `now` gives when its turn comes.
    pub async fn handle_batch(&self, messages: &[Message], now: impl Fn() -> Timestamp) -> Batch {
        let mut batch = Batch::default();
        for message in messages {
            if batch.skip(message) {
                tracing::warn!(message_id = %message.id, group = ?message.group, "returned unprocessed: an earlier message of its group failed");
                continue;
            }
            // A body that is not JSON is dropped below, logged once there.
            let result = match serde_json::from_str::<Value>(&message.body) {
                Ok(event) => Box::pin(self.handle_in(&event, now(), message.group.as_deref())).await,
                Err(error) => Err(HandlerError::Event(TriggerError::NotJson(error.to_string()))),
            };
            batch.record(
                message,
                result
                    .map(|outcome| serde_json::to_value(outcome).unwrap_or(Value::Null))
                    .map_err(|error| {
                        if !error.retryable() {
                            tracing::error!(message_id = %message.id, %error, "dropped: a retry cannot help");
                        }
                        (error.to_string(), error.retryable())
                    }),
            );
        }
        batch
    }

    /// Handles one event at `now`; `message_group` is the queue's message
    /// group it came in, which must be the group it is for.
    async fn handle_in(
        &self,
        event: &Value,
        now: Timestamp,
        message_group: Option<&str>,
    ) -> Result<Outcome, HandlerError> {
        let parsed = match parse(event) {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::error!(%error, retryable = false, "refused event");
                return Err(error.into());
            }
        };
        let event = match parsed {
            Parsed::Event(event) => event,
            Parsed::Ignored(reason) => {
                tracing::info!(%reason, "ignored event");
                return Ok(Outcome::Ignored { reason });
            }
        };
        // Route once without alarm states; a tick then reads its group's alarms.
        let (group_name, mut trigger) = match event.route(&self.policy, &[]) {
            Routed::Decide { group, trigger } => (group, trigger),
            Routed::Ignored(reason) => {
                tracing::info!(%reason, "ignored event");
                return Ok(Outcome::Ignored { reason });
            }
        };
        // Decisions are serialised per message group: one carrying another
        // group's trigger would decide outside that group's order.
        if let Some(message_group) = message_group
            && message_group != group_name
        {
            let reason = format!(
                "this trigger is for group {group_name} but came in message group {message_group}: only the group's own message group keeps its decisions in order (the template sets MessageGroupId to the group)"
            );
            tracing::error!(%reason, "ignored event");
            return Ok(Outcome::Ignored { reason });
        }
        let Some(group) = self.policy.group(&group_name) else {
            // Route only names groups of this policy; kept total all the same.
            return Ok(Outcome::Ignored {
                reason: format!("no group {group_name} in the policy"),
            });
        };
        if let Trigger::Tick { alarms, .. } = &mut trigger {
            let names: Vec<String> = group.alarm_policies.iter().map(|p| p.alarm.clone()).collect();
            *alarms = self.metrics.alarm_states(&names).await?;
        }
        // A late or repeated delivery of a transition the alarm has left is
        // dropped, with the reason (see `superseded_alarm_event`).
        if let Trigger::Alarm(alarm) = &trigger
            && group.alarm_policy(&alarm.name).is_some()
        {
            let current = self.metrics.alarm_states(std::slice::from_ref(&alarm.name)).await?;
            if let Some(reason) = crate::decide::superseded_alarm_event(alarm, current.first()) {
                tracing::info!(%reason, "ignored event");
                return Ok(Outcome::Ignored { reason });
            }
        }
        // Classic (SNS) notifications carry no datapoint: read the metric.
        if let Trigger::Alarm(alarm) = &mut trigger
            && alarm.value.is_none()
            && let Some(policy) = group.alarm_policy(&alarm.name)
        {
            alarm.value = self.metrics.latest(&policy.metric, now).await?;
        }
        let since = now - SignedDuration::try_from(HISTORY).unwrap_or(SignedDuration::ZERO);
        let (observed, activities) = self.group.observe(&group_name, since).await?;
        let mut history = if group.target_tracking.is_empty() {
            Default::default()
        } else {
            let ids: Vec<String> = observed.instances.iter().map(|i| i.id.clone()).collect();
            self.metrics.history(group, &ids, since, now).await?
        };
        // Predictive scaling reads the load the forecast in force was made
        // from (ticks and alarms: a scheduled action does not combine).
        if let Some(predictive) = &group.predictive
            && !matches!(trigger, Trigger::Scheduled { .. })
        {
            let (since, until) = scaling::predictive::window(now);
            history.load = self.metrics.load(group, &predictive.metric, since, until).await?;
        }
        let decision = decide(group, &observed, &history, &activities, &trigger, now)?;
        let acted = !self.dry_run && decision.action != Action::Hold;
        // One structured line per decision: trigger, observed state, rules, result.
        tracing::info!(
            group = %group_name,
            trigger = %serde_json::to_string(&trigger).unwrap_or_default(),
            observed_min = observed.min,
            observed_max = observed.max,
            observed_desired = observed.desired,
            instances = observed.instances.len(),
            action = %serde_json::to_string(&decision.action).unwrap_or_default(),
            code = %decision.code,
            reason = %decision.reason,
            rules = %decision.explain("; "),
            rule_codes = %scaling::rule::codes(&decision.rules),
            dry_run = self.dry_run,
            "decision"
        );
        // The same decision as metrics for the dashboard (embedded metric format).
        crate::emf::emit(&group_name, &trigger, &decision, acted, now);
        if acted {
            let cause = decision.cause.clone().unwrap_or_default();
            let result = match decision.action {
                Action::SetDesired(desired) => {
                    self.group
                        .set_desired_observed(&group_name, &observed, desired, &cause)
                        .await
                }
                Action::SetLimits { min, max, desired } => {
                    self.group
                        .set_limits_observed(&group_name, &observed, (min, max, desired), &cause)
                        .await
                }
                Action::Hold => Ok(()),
            };
            match result {
                Ok(()) => {}
                // The group is gone: there is nothing left to scale.
                Err(error) if error.kind == PortErrorKind::NotFound => {
                    tracing::warn!(%error, "group vanished before acting");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(Outcome::Decided {
            group: group_name,
            decision,
            acted,
        })
    }
}

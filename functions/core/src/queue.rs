//! One decision at a time per group: every trigger of a group (its alarms,
//! its tick, its scheduled actions) goes into one SQS FIFO queue with the
//! group as the message group, and one function consumes the queue. SQS
//! hands out a message group's messages in order and no further one while
//! one is in flight, so two decisions for a group never overlap, on AWS and
//! in the local cloud alike; other groups go on in parallel.
//!
//! Before, three functions (alarms, schedules, ticks) each read and then
//! wrote an absolute capacity, so an alarm decision and a tick could
//! overwrite each other; reserved concurrency 1 per function did not stop
//! that, and Lambda refuses it in new accounts (it would leave the account
//! below its minimum unreserved concurrency).
//!
//! The numbers and rules here are what the template sets and what the local
//! cloud's queue follows, from the AWS docs:
//! - Lambda, "Lambda parameters for Amazon SQS event source mappings":
//!   a FIFO queue's batch is at most 10 messages; no batching window.
//! - Lambda, "Creating and configuring an Amazon SQS event source mapping":
//!   the queue's visibility timeout at least six times the function's timeout.
//! - Lambda, "Handling errors for an SQS event source in Lambda" (partial
//!   batch responses, `ReportBatchItemFailures`): only the messages named in
//!   `batchItemFailures` return to the queue; an item identifier that is
//!   empty, null or not a message of the batch fails the whole batch; with
//!   a FIFO queue, a failed message's later messages must be returned too
//!   (here: those of its message group, so other groups go on).
//! - EventBridge Scheduler, `SqsParameters`: a FIFO queue target needs
//!   content-based deduplication on the queue; EventBridge rules' SQS
//!   targets need `MessageGroupId` for a FIFO queue.
//! - SQS Developer Guide, "Exactly-once processing": a message with the
//!   body of one sent in the last 5 minutes is accepted and not delivered
//!   (content-based deduplication).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::trigger::TriggerError;

/// The function's timeout (the template's `Timeout`).
pub const FUNCTION_TIMEOUT_S: u32 = 30;
/// Six times the function's timeout, as the Lambda docs ask.
pub const VISIBILITY_TIMEOUT_S: u32 = 6 * FUNCTION_TIMEOUT_S;
/// Messages per invocation: Lambda's maximum for a FIFO queue.
pub const MAX_BATCH: usize = 10;
/// Receives before a message goes to the dead-letter queue (the redrive
/// policy's `maxReceiveCount`): a retryable failure is tried three times.
pub const MAX_RECEIVES: u32 = 3;
/// A trigger older than this is of no use to a decision: the queue drops it
/// (`MessageRetentionPeriod`, the old async invocation's maximum event age).
pub const RETENTION_S: u32 = 3600;
/// SQS FIFO's deduplication interval.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(300);

/// One queued trigger as the function receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    /// `attributes.MessageGroupId`: the group the trigger is for.
    pub group: Option<String>,
    /// The trigger: an EventBridge or Scheduler event, as JSON text.
    pub body: String,
    /// `attributes.ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
}

/// Whether `event` is an SQS batch (SNS notifications have `Records` too,
/// with `EventSource: aws:sns`).
pub fn is_batch(event: &Value) -> bool {
    event["Records"]
        .as_array()
        .and_then(|records| records.first())
        .is_some_and(|record| record["eventSource"] == "aws:sqs")
}

/// The messages of an SQS batch, in the order SQS delivered them.
pub fn messages(event: &Value) -> Result<Vec<Message>, TriggerError> {
    let batch: SqsEvent = crate::trigger::typed("SQS", event)?;
    batch
        .records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let missing = |field: &str| TriggerError::Malformed {
                shape: "SQS",
                path: format!("Records[{i}].{field}"),
                detail: "missing".into(),
            };
            Ok(Message {
                id: record.message_id.ok_or_else(|| missing("messageId"))?,
                body: record.body.ok_or_else(|| missing("body"))?,
                group: record.attributes.get("MessageGroupId").cloned(),
                receive_count: record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
        })
        .collect()
}

/// The SQS event Lambda sends for `messages` from `queue_arn` (the local
/// cloud's event source mapping builds its invocations with it).
pub fn event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let mut batch = SqsEvent::default();
    for message in messages {
        let mut record = SqsMessage::default();
        record.message_id = Some(message.id.clone());
        record.receipt_handle = Some(format!("{}#{}", message.id, message.receive_count));
        record.body = Some(message.body.clone());
        record.event_source = Some("aws:sqs".into());
        record.event_source_arn = Some(queue_arn.into());
        record.aws_region = Some(region.into());
        record.attributes = HashMap::from([
            ("ApproximateReceiveCount".to_string(), message.receive_count.to_string()),
            ("MessageDeduplicationId".to_string(), content_hash(&message.body)),
        ]);
        if let Some(group) = &message.group {
            record.attributes.insert("MessageGroupId".into(), group.clone());
        }
        batch.records.push(record);
    }
    serde_json::to_value(batch).unwrap_or(Value::Null)
}

/// A short stand-in for SQS's SHA-256 content hash (FNV-1a, 64 bits): the
/// local queue compares bodies themselves, this only labels them.
fn content_hash(body: &str) -> String {
    let hash = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// What became of one message of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handled {
    pub message_id: String,
    pub group: Option<String>,
    /// The handler's outcome (serialised), when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    /// Why it failed or was dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Returned to the queue (a retry can help, or an earlier message of
    /// its group failed in this batch).
    pub returned: bool,
}

/// Tracks a batch as the function goes through it: a failed message's
/// group is skipped for the rest of the batch, so its order holds.
#[derive(Debug, Default)]
pub struct Batch {
    failed_groups: HashSet<Option<String>>,
    pub handled: Vec<Handled>,
}

impl Batch {
    /// Whether `message` must be returned unprocessed (its group failed earlier in the batch).
    pub fn skip(&mut self, message: &Message) -> bool {
        if !self.failed_groups.contains(&message.group) {
            return false;
        }
        self.handled.push(Handled {
            message_id: message.id.clone(),
            group: message.group.clone(),
            outcome: None,
            error: Some("not processed: an earlier message of its group failed in this batch (kept in order)".into()),
            returned: true,
        });
        true
    }

    /// Records a handled message: `Ok(outcome)`, or an error that is
    /// returned to the queue when `retryable`, else dropped.
    pub fn record(&mut self, message: &Message, result: Result<Value, (String, bool)>) {
        let (outcome, error, returned) = match result {
            Ok(outcome) => (Some(outcome), None, false),
            Err((error, retryable)) => (None, Some(error), retryable),
        };
        if returned {
            self.failed_groups.insert(message.group.clone());
        }
        self.handled.push(Handled {
            message_id: message.id.clone(),
            group: message.group.clone(),
            outcome,
            error,
            returned,
        });
    }

    /// The function's response: `batchItemFailures` for Lambda, and what
    /// became of each message (`handled`: Lambda reads only the former).
    pub fn response(&self) -> Value {
        let mut response = SqsBatchResponse::default();
        for handled in self.handled.iter().filter(|h| h.returned) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = handled.message_id.clone();
            response.batch_item_failures.push(failure);
        }
        let mut value = serde_json::to_value(response).unwrap_or(Value::Null);
        value["handled"] = serde_json::to_value(&self.handled).unwrap_or(Value::Null);
        value
    }
}

/// What Lambda makes of a function's response to a batch of `ids`
/// (partial batch responses, as documented): `Ok` with the messages to
/// return to the queue, or `Err` saying why the whole batch failed.
pub fn returned(response: &Value, ids: &[String]) -> Result<Vec<String>, String> {
    let failures = match response.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(failures)) => failures,
        Some(other) => return Err(format!("batchItemFailures is {other}, not a list")),
    };
    let mut returned = Vec::new();
    for failure in failures {
        match failure.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && ids.contains(id) => returned.push(id.clone()),
            Some(Value::String(id)) if !id.is_empty() => {
                return Err(format!("itemIdentifier {id:?} is not a message of the batch"));
            }
            Some(Value::String(_)) => return Err("an itemIdentifier is empty".into()),
            Some(Value::Null) | None => return Err(format!("a batch item failure has no itemIdentifier: {failure}")),
            Some(other) => return Err(format!("itemIdentifier {other} is not a string")),
        }
    }
    Ok(returned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, group: &str) -> Message {
        Message {
            id: id.into(),
            group: Some(group.into()),
            body: format!("{{\"n\":\"{id}\"}}"),
            receive_count: 1,
        }
    }

    #[test]
    fn a_batch_round_trips_through_the_sqs_event_lambda_sends() {
        let sent = vec![message("m1", "web"), message("m2", "api")];
        let event = event(&sent, "arn:aws:sqs:eu-west-1:123456789012:s-triggers.fifo", "eu-west-1");
        assert!(is_batch(&event));
        assert_eq!(event["Records"][0]["attributes"]["MessageGroupId"], "web");
        assert_eq!(messages(&event).expect("parses"), sent);
        // An SNS notification also has Records, but is no SQS batch.
        assert!(!is_batch(
            &serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {}}]})
        ));
    }

    #[test]
    fn a_record_without_message_id_is_malformed_naming_it() {
        let event = serde_json::json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        let error = messages(&event).expect_err("no messageId").to_string();
        assert!(error.contains("Records[0].messageId"), "{error}");
    }

    // Lambda, "Handling errors for an SQS event source": with a FIFO queue,
    // the messages after a failed one are returned too (here: its group's).
    #[test]
    fn after_a_retryable_failure_the_rest_of_its_group_is_returned_and_other_groups_go_on() {
        let mut batch = Batch::default();
        let sent = [
            message("w1", "web"),
            message("a1", "api"),
            message("w2", "web"),
            message("a2", "api"),
        ];
        for m in &sent {
            if batch.skip(m) {
                continue;
            }
            let result = if m.id == "w1" {
                Err(("throttled".to_string(), true))
            } else {
                Ok(Value::Null)
            };
            batch.record(m, result);
        }
        let response = batch.response();
        let ids: Vec<String> = sent.iter().map(|m| m.id.clone()).collect();
        assert_eq!(returned(&response, &ids).expect("valid"), ["w1", "w2"]);
        // A failure a retry cannot help is dropped (logged) and does not hold its group.
        let mut batch = Batch::default();
        batch.record(&sent[0], Err(("malformed".into(), false)));
        assert!(!batch.skip(&sent[2]));
        assert_eq!(returned(&batch.response(), &ids).expect("valid"), Vec::<String>::new());
    }

    // Lambda's documented reading of a partial batch response.
    #[test]
    fn a_response_naming_no_message_of_the_batch_fails_the_whole_batch() {
        let ids = vec!["m1".to_string(), "m2".to_string()];
        assert_eq!(returned(&Value::Null, &ids), Ok(vec![]));
        assert_eq!(
            returned(&serde_json::json!({"batchItemFailures": []}), &ids),
            Ok(vec![])
        );
        assert_eq!(
            returned(
                &serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m2"}]}),
                &ids
            ),
            Ok(vec!["m2".to_string()])
        );
        for bad in [
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": null}]}),
            serde_json::json!({"batchItemFailures": [{"itemId": "m1"}]}),
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m9"}]}),
        ] {
            assert!(returned(&bad, &ids).is_err(), "{bad}");
        }
    }
}

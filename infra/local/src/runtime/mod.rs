//! A Lambda Runtime API that runs the real function binary (`scaler`) the
//! way AWS runs it behind the template's SQS FIFO queue: every trigger is
//! sent to the queue in its group's message group (content-based
//! deduplication over 5 minutes), and an event source mapping hands the
//! function batches of at most 10 messages, never a message of a group
//! with a batch in flight or an earlier message waiting, so one group's
//! decisions never overlap. The function's partial batch response is read
//! as Lambda reads it (`scaling::queue::returned`): failed messages come
//! back after the visibility timeout, a message received three times goes
//! to the dead letters; a crashed or failed invocation returns its whole
//! batch. Every message's outcome is recorded with the decision's
//! explanation.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use jiff::{SignedDuration, Timestamp};
use scaling::queue::{DEDUPLICATION_WINDOW, MAX_BATCH, MAX_RECEIVES, Message, RETENTION_S, VISIBILITY_TIMEOUT_S};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::process::{Spawner, stop};

mod api;

use api::*;

/// The function binary: every trigger of every group.
pub const FUNCTION: &str = scaling::FUNCTION.0;

/// One message's result, as the status view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub function: String,
    /// The message's id (the batch's request id is in the function's log).
    pub request_id: String,
    /// Cloud time the trigger was sent.
    pub at: Timestamp,
    /// e.g. `alarm web-cpu-high ALARM`, `schedule web-lunch-scale-out`, `tick web-tick`.
    pub event: String,
    /// The message group: the group the trigger is for.
    #[serde(default)]
    pub group: String,
    /// Which receive of the message this was (1 on the first).
    pub attempt: u32,
    /// Cloud times the batch holding it was handed to the function and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    /// The handler's outcome (decision with reason and rules), or the error.
    pub result: Option<Value>,
    pub error: Option<String>,
}

/// A message in the trigger queue.
#[derive(Debug, Clone)]
struct Queued {
    id: String,
    group: String,
    summary: String,
    body: String,
    sent: Timestamp,
    receives: u32,
    /// Cloud time it can be received again (after a failed receive).
    visible_at: Timestamp,
}

/// A batch handed to the function and not answered yet.
#[derive(Debug)]
struct InFlight {
    request_id: String,
    started: Timestamp,
    messages: Vec<Queued>,
}

/// The SQS FIFO queue the template puts between the triggers and the function.
#[derive(Debug, Default)]
struct TriggerQueue {
    messages: VecDeque<Queued>,
    /// Bodies sent in the deduplication window, with when.
    recent: VecDeque<(Timestamp, String)>,
    in_flight: Option<InFlight>,
    /// The event source mapping is disabled: messages wait in the queue.
    disabled: bool,
}

/// What became of a trigger sent to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Queued,
    /// The same body was sent within 5 minutes: accepted, not delivered.
    Deduplicated,
}

/// The function: its queue, its API and its process.
#[derive(Debug)]
pub struct Function {
    pub name: String,
    binary: PathBuf,
    queue: Mutex<TriggerQueue>,
    ready: Notify,
    api: Mutex<Option<SocketAddr>>,
    child: Mutex<Option<Child>>,
    /// Times the process was (re)started.
    pub starts: Mutex<u32>,
}

/// The function of a local cloud and the record of its invocations.
#[derive(Debug)]
pub struct Runtime {
    pub function: Arc<Function>,
    env: Vec<(String, String)>,
    log_dir: PathBuf,
    clock: Clock,
    log: Mutex<VecDeque<Invocation>>,
    /// Notified after every recorded outcome.
    pub recorded: Notify,
}

/// Invocations kept for the status view.
const KEEP: usize = 500;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn after(at: Timestamp, seconds: u64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(seconds as i64)).unwrap_or(at)
}

/// The queue's ARN as the event source mapping names it.
fn queue_arn() -> String {
    format!(
        "arn:aws:sqs:{}:{}:local-triggers.fifo",
        crate::alarms::REGION,
        crate::alarms::ACCOUNT
    )
}

impl Runtime {
    /// The function `name` (its log is `NAME.log`), the binary [`FUNCTION`]
    /// from `dir`; `env` is given to its process (policy, control API,
    /// clock, dry run).
    pub fn new(
        name: &str,
        dir: &std::path::Path,
        env: Vec<(String, String)>,
        log_dir: PathBuf,
        clock: Clock,
    ) -> Result<Arc<Self>, PathBuf> {
        let binary = dir.join(FUNCTION);
        if !binary.is_file() {
            return Err(binary);
        }
        Ok(Arc::new(Self {
            function: Arc::new(Function {
                name: name.to_string(),
                binary,
                queue: Mutex::new(TriggerQueue::default()),
                ready: Notify::new(),
                api: Mutex::new(None),
                child: Mutex::new(None),
                starts: Mutex::new(0),
            }),
            env,
            log_dir,
            clock,
            log: Mutex::new(VecDeque::new()),
            recorded: Notify::new(),
        }))
    }

    /// Binds the function's API and starts its process and supervisor.
    pub async fn start(self: &Arc<Self>, spawner: Arc<Spawner>) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
        let function = &self.function;
        let listener = crate::server::listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
        *lock(&function.api) = Some(listener.local_addr()?);
        Ok(vec![
            serve(self.clone(), function.clone(), listener),
            tokio::spawn(supervise(self.clone(), function.clone(), spawner)),
        ])
    }

    /// Sends a trigger for `group` to the queue (message group = the group).
    pub fn send(&self, group: &str, summary: String, payload: &Value) -> Sent {
        let now = self.clock.now();
        let body = payload.to_string();
        let mut queue = lock(&self.function.queue);
        let window = SignedDuration::try_from(DEDUPLICATION_WINDOW).unwrap_or(SignedDuration::ZERO);
        while queue.recent.front().is_some_and(|(at, _)| *at + window <= now) {
            queue.recent.pop_front();
        }
        if queue.recent.iter().any(|(_, b)| *b == body) {
            return Sent::Deduplicated;
        }
        queue.recent.push_back((now, body.clone()));
        queue.messages.push_back(Queued {
            id: crate::alarms::event_id(),
            group: group.to_string(),
            summary,
            body,
            sent: now,
            receives: 0,
            visible_at: now,
        });
        drop(queue);
        self.function.ready.notify_one();
        Sent::Queued
    }

    /// Enables or disables the event source mapping (as
    /// UpdateEventSourceMapping's `Enabled` does): while disabled, triggers
    /// wait in the queue; a batch in flight finishes.
    pub fn set_enabled(&self, enabled: bool) {
        lock(&self.function.queue).disabled = !enabled;
        self.function.ready.notify_one();
    }

    /// The newest invocations, oldest first.
    pub fn invocations(&self) -> Vec<Invocation> {
        lock(&self.log).iter().cloned().collect()
    }

    fn record(&self, invocation: Invocation) {
        let mut log = lock(&self.log);
        log.push_back(invocation);
        while log.len() > KEEP {
            log.pop_front();
        }
        drop(log);
        self.recorded.notify_waiters();
    }

    fn record_message(
        &self,
        message: &Queued,
        batch: Option<(Timestamp, Timestamp)>,
        result: Option<Value>,
        error: Option<String>,
    ) {
        self.record(Invocation {
            function: self.function.name.clone(),
            request_id: message.id.clone(),
            at: message.sent,
            event: message.summary.clone(),
            group: message.group.clone(),
            attempt: message.receives,
            started: batch.map(|b| b.0),
            finished: batch.map(|b| b.1),
            result,
            error,
        });
    }

    /// Puts `returned` messages back at the front of the queue (in order),
    /// visible after the visibility timeout; a message received
    /// `MAX_RECEIVES` times goes to the dead letters instead.
    fn give_back(&self, returned: Vec<Queued>) {
        let (dead, back): (Vec<Queued>, Vec<Queued>) = returned.into_iter().partition(|m| m.receives >= MAX_RECEIVES);
        let visible_at = after(self.clock.now(), u64::from(VISIBILITY_TIMEOUT_S));
        let mut queue = lock(&self.function.queue);
        for mut message in back.into_iter().rev() {
            message.visible_at = visible_at;
            queue.messages.push_front(message);
        }
        drop(queue);
        for message in &dead {
            let error = format!("moved to the dead letters after {} receives", message.receives);
            self.record_message(message, None, None, Some(error));
        }
    }

    /// Stops the function's process.
    pub fn stop(&self) {
        if let Some(mut child) = lock(&self.function.child).take() {
            let _ = stop(&mut child, Duration::from_secs(2));
        }
    }
}

impl TriggerQueue {
    /// The next batch: the oldest receivable messages, at most 10, none of
    /// a group whose earlier message is not receivable yet (FIFO order).
    fn take(&mut self, now: Timestamp) -> (Vec<Queued>, Vec<Queued>) {
        let expired: Vec<Queued> = {
            let (old, kept): (VecDeque<Queued>, VecDeque<Queued>) = std::mem::take(&mut self.messages)
                .into_iter()
                .partition(|m| after(m.sent, u64::from(RETENTION_S)) <= now);
            self.messages = kept;
            old.into_iter().collect()
        };
        if self.in_flight.is_some() || self.disabled {
            return (Vec::new(), expired);
        }
        let mut blocked: HashSet<String> = HashSet::new();
        let mut batch = Vec::new();
        let mut kept = VecDeque::new();
        for message in std::mem::take(&mut self.messages) {
            if batch.len() < MAX_BATCH && !blocked.contains(&message.group) && message.visible_at <= now {
                batch.push(message);
            } else {
                blocked.insert(message.group.clone());
                kept.push_back(message);
            }
        }
        self.messages = kept;
        (batch, expired)
    }
}

/// Keeps the function's process running (restarting a crashed one after a second).
async fn supervise(runtime: Arc<Runtime>, function: Arc<Function>, spawner: Arc<Spawner>) {
    loop {
        let running = {
            let mut child = lock(&function.child);
            match child.as_mut().map(Child::try_wait) {
                Some(Ok(None)) => true,
                Some(_) => {
                    *child = None;
                    false
                }
                None => false,
            }
        };
        if !running {
            // A batch in flight with a dead process returns whole.
            let lost = lock(&function.queue).in_flight.take();
            if let Some(lost) = lost {
                fail_batch(&runtime, lost, "the function process exited".into());
            }
            let api = lock(&function.api).map(|a| a.to_string()).unwrap_or_default();
            let mut command_env = runtime.env.clone();
            command_env.push(("AWS_LAMBDA_RUNTIME_API".into(), api));
            command_env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), function.name.clone()));
            command_env.push(("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()));
            command_env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()));
            let log = runtime.log_dir.join(format!("{}.log", function.name));
            match spawner.spawn_with_env(&function.binary, &[], &command_env, &log) {
                Ok(child) => {
                    *lock(&function.child) = Some(child);
                    *lock(&function.starts) += 1;
                }
                Err(error) => tracing::warn!(function = %function.name, %error, "cannot start"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A failed invocation: every message of its batch is recorded and returned.
fn fail_batch(runtime: &Runtime, batch: InFlight, error: String) {
    let finished = runtime.clock.now();
    for message in &batch.messages {
        runtime.record_message(message, Some((batch.started, finished)), None, Some(error.clone()));
    }
    runtime.give_back(batch.messages);
}

/// Waits until an invocation matching `predicate` is recorded, for at most `limit`.
pub async fn wait_for(
    runtime: &Runtime,
    limit: Duration,
    predicate: impl Fn(&Invocation) -> bool,
) -> Option<Invocation> {
    let deadline = Instant::now() + limit;
    loop {
        let notified = runtime.recorded.notified();
        if let Some(found) = runtime.invocations().into_iter().find(|i| predicate(i)) {
            return Some(found);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: &str, group: &str, at: Timestamp) -> Queued {
        Queued {
            id: id.into(),
            group: group.into(),
            summary: id.into(),
            body: id.into(),
            sent: at,
            receives: 0,
            visible_at: at,
        }
    }

    fn ids(batch: &[Queued]) -> Vec<&str> {
        batch.iter().map(|m| m.id.as_str()).collect()
    }

    // SQS FIFO: a group's messages in order, none past one not receivable
    // yet; other groups go on; at most 10 a batch (Lambda's FIFO maximum).
    #[test]
    fn a_batch_keeps_each_groups_order_and_skips_a_group_waiting_on_a_returned_message() {
        let now: Timestamp = "2026-12-07T00:00:00Z".parse().expect("now");
        let mut queue = TriggerQueue::default();
        let mut returned = queued("w1", "web", now);
        returned.visible_at = after(now, u64::from(VISIBILITY_TIMEOUT_S));
        queue.messages.push_back(returned);
        for (id, group) in [("a1", "api"), ("w2", "web"), ("a2", "api")] {
            queue.messages.push_back(queued(id, group, now));
        }
        let (batch, expired) = queue.take(now);
        assert_eq!(ids(&batch), ["a1", "a2"]);
        assert!(expired.is_empty());
        assert_eq!(ids(&Vec::from(queue.messages.clone())), ["w1", "w2"]);
        // After the visibility timeout, web goes on in order.
        let later = after(now, u64::from(VISIBILITY_TIMEOUT_S));
        assert_eq!(ids(&queue.take(later).0), ["w1", "w2"]);
        // Twelve waiting: ten, then two.
        for i in 0..12 {
            queue.messages.push_back(queued(&format!("m{i}"), "web", later));
        }
        assert_eq!(queue.take(later).0.len(), MAX_BATCH);
        assert_eq!(queue.take(later).0.len(), 2);
        // Older than the retention period: dropped.
        queue.messages.push_back(queued("old", "web", now));
        let (batch, expired) = queue.take(after(now, u64::from(RETENTION_S)));
        assert!(batch.is_empty());
        assert_eq!(ids(&expired), ["old"]);
    }

    // SQS content-based deduplication: the same body within 5 minutes is
    // accepted and not delivered; a message received three times goes to
    // the dead letters.
    #[test]
    fn a_repeated_trigger_is_deduplicated_and_a_thrice_failed_one_dead_lettered() {
        let dir = std::env::temp_dir().join(format!("runtime-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(FUNCTION), "").expect("binary");
        let runtime = Runtime::new(FUNCTION, &dir, Vec::new(), dir.clone(), Clock::new(1.0)).expect("runtime");
        let event = serde_json::json!({"id": "e1"});
        assert_eq!(runtime.send("web", "first".into(), &event), Sent::Queued);
        assert_eq!(runtime.send("web", "again".into(), &event), Sent::Deduplicated);
        assert_eq!(
            runtime.send("web", "other".into(), &serde_json::json!({"id": "e2"})),
            Sent::Queued
        );
        let mut message = lock(&runtime.function.queue).messages.pop_front().expect("queued");
        message.receives = MAX_RECEIVES;
        runtime.give_back(vec![message]);
        let log = runtime.invocations();
        assert_eq!(log.len(), 1);
        assert!(
            log[0].error.as_deref().unwrap_or("").contains("dead letters"),
            "{log:#?}"
        );
        assert_eq!(lock(&runtime.function.queue).messages.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

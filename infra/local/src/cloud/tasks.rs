//! The cloud's long-running tasks, and how one that stopped is reported.

use super::*;

/// The cloud's long-running tasks, by name.
#[derive(Debug, Default)]
pub(crate) struct Tasks(pub(super) Mutex<Vec<(&'static str, JoinHandle<()>)>>);

impl Tasks {
    pub(super) fn push(&self, name: &'static str, task: JoinHandle<()>) {
        lock(&self.0).push((name, task));
    }

    /// The first task that has ended, with how (a panic's message, or that it returned).
    pub(super) fn first_stopped(&self) -> Option<String> {
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

    pub(super) fn abort_all(&self) {
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

//! The bounded compute pool: CPU work runs here, never on the async workers.
//!
//! A fixed set of OS threads (sized to the cores, or to the CPU cap) takes
//! jobs from a queue. Admission is by time (issue 24): a job is admitted while
//! the work already admitted, divided among the workers, keeps its expected
//! wait within the budget (`--queue-budget`). Each job's time is estimated
//! as its number of calls ([`calls`]) times the wall time per call, learnt
//! from the jobs computed so far. A hard cap on waiting jobs (`--queue`)
//! bounds memory whatever the estimate says. A refusal costs two atomic
//! updates; the caller answers 503, deferred by [`crate::shed::ShedGate`] so
//! that refusals cannot take the CPU the admitted jobs need. Workers run at
//! a lower scheduling priority than the HTTP threads, so `/health` and
//! `/metrics` stay fast while every core computes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::cpu::{CpuBudget, available_cores, thread_cpu_time};
use crate::fib::{calls, fibo, fibo_paced};

mod worker;

use worker::*;

/// Why a job was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// Its expected wait was over the queueing budget.
    OverBudget,
    /// The cap on waiting jobs was reached.
    QueueFull,
}

impl ShedReason {
    pub const ALL: [Self; 2] = [Self::OverBudget, Self::QueueFull];

    /// The label value in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OverBudget => "over_budget",
            Self::QueueFull => "queue_full",
        }
    }
}

/// Why a job was not computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    /// Computing it now would wait too long, or too many wait already: shed.
    #[error(
        "overloaded: {}; {running} computing, {queued} queued; retry after {retry_after_s}s",
        why(*.reason, *.queue_cap, *.expected_wait, *.budget)
    )]
    Overloaded {
        reason: ShedReason,
        running: usize,
        queued: usize,
        queue_cap: usize,
        /// Expected wait of a job admitted now.
        expected_wait: Duration,
        budget: Duration,
        retry_after_s: u64,
    },
    /// The pool has stopped (the service is shutting down).
    #[error("shutting down: the compute pool no longer accepts work")]
    Stopped,
}

/// What an overloaded refusal says about its reason.
fn why(reason: ShedReason, queue_cap: usize, expected_wait: Duration, budget: Duration) -> String {
    match reason {
        ShedReason::OverBudget => format!(
            "the expected wait {:.2}s is over the queueing budget {:.2}s",
            expected_wait.as_secs_f64(),
            budget.as_secs_f64()
        ),
        ShedReason::QueueFull => format!("the queue is full (at most {queue_cap} waiting)"),
    }
}

/// Seconds a refused client should wait: the expected wait, 1 to 60.
fn retry_after_s(expected_wait: Duration) -> u64 {
    expected_wait.as_secs_f64().ceil().clamp(1.0, 60.0) as u64
}

/// Sizing and pacing of a [`ComputePool`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Worker threads.
    pub workers: usize,
    /// At most this many jobs wait beyond those being computed (bounds memory).
    pub queue: usize,
    /// Longest expected wait a job is admitted with.
    pub budget: Duration,
    /// Optional CPU cap shared by all workers.
    pub cpu_limit: Option<f64>,
    /// Niceness added to worker threads (0 to 19) so HTTP threads win the CPU.
    pub nice: i32,
}

/// What a computed job reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Computed {
    pub value: u64,
    /// Time spent waiting in the queue.
    pub queued: Duration,
    /// Wall time from start to end of the computation (includes CPU-cap pauses).
    pub compute: Duration,
    /// CPU time the computation used.
    pub cpu: Duration,
}

struct Job {
    n: u32,
    /// Its estimated time, added to the outstanding work at admission and
    /// taken off when it ends.
    cost_ns: u64,
    enqueued: Instant,
    reply: oneshot::Sender<Computed>,
}

/// A job's fixed cost besides its calls (hand-off, reply, wake-up).
const JOB_OVERHEAD_NS: f64 = 20_000.0;
/// Jobs with fewer calls teach the per-call time nothing (overhead dominates).
const LEARN_FROM_CALLS: f64 = 10_000.0;
/// Weight of the newest job in the learnt per-call time.
const LEARN_WEIGHT: f64 = 0.2;

/// Counters kept by the pool, read by `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Jobs admitted and not yet finished (queued + running).
    admitted: AtomicUsize,
    running: AtomicUsize,
    completed: AtomicU64,
    shed_over_budget: AtomicU64,
    shed_queue_full: AtomicU64,
    /// Jobs dropped before starting because their client had gone.
    abandoned: AtomicU64,
    /// Estimated nanoseconds of work admitted and not finished.
    outstanding_ns: AtomicU64,
    /// Wall nanoseconds per call of the recursion (an `f64`'s bits), learnt.
    ns_per_call: AtomicU64,
    /// Queue wait of the job started last, in nanoseconds.
    last_wait_ns: AtomicU64,
}

/// A snapshot of [`PoolStats`] and the admission state.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PoolSnapshot {
    pub workers: usize,
    pub queue_capacity: usize,
    pub running: usize,
    pub queued: usize,
    pub completed: u64,
    /// Refused jobs, all reasons.
    pub shed: u64,
    pub shed_over_budget: u64,
    pub shed_queue_full: u64,
    pub abandoned: u64,
    /// The queueing budget.
    pub budget_ms: f64,
    /// Expected wait of a job admitted now: the outstanding work per worker.
    pub expected_wait_ms: f64,
    /// What the job started last actually waited.
    pub last_wait_ms: f64,
    /// The learnt wall time of one call of the recursion.
    pub ns_per_call: f64,
    /// Everything asked of the pool: computed, in the pool, abandoned and
    /// refused (true demand, served + shed, for scaling policies).
    pub demand: u64,
}

/// The compute pool. Dropping it lets workers finish their current job and exit.
#[derive(Debug)]
pub struct ComputePool {
    sender: Mutex<Option<SyncSender<Job>>>,
    workers: usize,
    queue: usize,
    budget: Duration,
    stats: Arc<PoolStats>,
    cpu_budget: Option<Arc<CpuBudget>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("n", &self.n).finish_non_exhaustive()
    }
}

impl ComputePool {
    /// Starts `config.workers` threads.
    pub fn start(config: &PoolConfig) -> std::io::Result<Self> {
        let workers = config.workers.max(1);
        let capacity = workers + config.queue;
        let (sender, receiver) = sync_channel::<Job>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let stats = Arc::new(PoolStats::default());
        let first = first_ns_per_call(workers, config.cpu_limit);
        stats.ns_per_call.store(first.to_bits(), Ordering::Relaxed);
        let cpu_budget = config.cpu_limit.map(|cores| Arc::new(CpuBudget::new(cores)));
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let stats = Arc::clone(&stats);
            let cpu_budget = cpu_budget.clone();
            let nice = config.nice;
            handles.push(
                std::thread::Builder::new()
                    .name(format!("compute-{index}"))
                    .spawn(move || worker(&receiver, &stats, cpu_budget.as_deref(), nice))?,
            );
        }
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            workers,
            queue: config.queue,
            budget: config.budget,
            stats,
            cpu_budget,
            handles: Mutex::new(handles),
        })
    }

    /// The estimated wall time of `fibo(n)` on one worker, from what the
    /// pool has measured so far.
    pub fn estimate(&self, n: u32) -> Duration {
        Duration::from_nanos(self.cost_ns(n))
    }

    fn cost_ns(&self, n: u32) -> u64 {
        let per_call = f64::from_bits(self.stats.ns_per_call.load(Ordering::Relaxed));
        // `as` saturates: fibo(92) "takes forever" all the same.
        (JOB_OVERHEAD_NS + calls(n) * per_call) as u64
    }

    /// Computes `fibo(n)` on the pool, or refuses at once when its expected
    /// wait is over the budget or the queue is full.
    pub async fn fibo(&self, n: u32) -> Result<Computed, PoolError> {
        let capacity = self.workers + self.queue;
        let admitted = self
            .stats
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current < capacity).then_some(current + 1)
            });
        let Ok(before) = admitted else {
            return Err(self.shed(ShedReason::QueueFull));
        };
        let cost_ns = self.cost_ns(n);
        // A free worker takes any job; otherwise the work ahead, shared by
        // the workers, must be done within the budget.
        let work_budget = (self.budget.as_nanos() as u64).saturating_mul(self.workers as u64);
        let free_worker = before < self.workers;
        let timely = self
            .stats
            .outstanding_ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ahead| {
                (free_worker || ahead <= work_budget).then_some(ahead.saturating_add(cost_ns))
            });
        if timely.is_err() {
            self.stats.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(self.shed(ShedReason::OverBudget));
        }
        let (reply, receive) = oneshot::channel();
        let job = Job {
            n,
            cost_ns,
            enqueued: Instant::now(),
            reply,
        };
        let sent = match self.sender.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // Never blocks: the channel holds `capacity` jobs and admission
            // keeps at most that many in the system.
            Some(sender) => sender.send(job).is_ok(),
            None => false,
        };
        if !sent {
            self.stats.outstanding_ns.fetch_sub(cost_ns, Ordering::AcqRel);
            self.stats.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Stopped);
        }
        receive.await.map_err(|_| PoolError::Stopped)
    }

    fn shed(&self, reason: ShedReason) -> PoolError {
        match reason {
            ShedReason::OverBudget => &self.stats.shed_over_budget,
            ShedReason::QueueFull => &self.stats.shed_queue_full,
        }
        .fetch_add(1, Ordering::Relaxed);
        let admitted = self.stats.admitted.load(Ordering::Relaxed);
        let running = self.stats.running.load(Ordering::Relaxed);
        let expected_wait = self.expected_wait();
        PoolError::Overloaded {
            reason,
            running,
            queued: admitted.saturating_sub(running),
            queue_cap: self.queue,
            expected_wait,
            budget: self.budget,
            retry_after_s: retry_after_s(expected_wait),
        }
    }

    /// The outstanding work divided among the workers.
    fn expected_wait(&self) -> Duration {
        Duration::from_nanos(self.stats.outstanding_ns.load(Ordering::Relaxed) / self.workers as u64)
    }

    /// Current counters and admission state.
    pub fn snapshot(&self) -> PoolSnapshot {
        let stats = &self.stats;
        let admitted = stats.admitted.load(Ordering::Relaxed);
        let running = stats.running.load(Ordering::Relaxed);
        let completed = stats.completed.load(Ordering::Relaxed);
        let shed_over_budget = stats.shed_over_budget.load(Ordering::Relaxed);
        let shed_queue_full = stats.shed_queue_full.load(Ordering::Relaxed);
        let abandoned = stats.abandoned.load(Ordering::Relaxed);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        PoolSnapshot {
            workers: self.workers,
            queue_capacity: self.queue,
            running,
            queued: admitted.saturating_sub(running),
            completed,
            shed: shed_over_budget + shed_queue_full,
            shed_over_budget,
            shed_queue_full,
            abandoned,
            budget_ms: ms(self.budget),
            expected_wait_ms: ms(self.expected_wait()),
            last_wait_ms: ms(Duration::from_nanos(stats.last_wait_ns.load(Ordering::Relaxed))),
            ns_per_call: f64::from_bits(stats.ns_per_call.load(Ordering::Relaxed)),
            demand: completed + admitted as u64 + abandoned + shed_over_budget + shed_queue_full,
        }
    }

    /// The CPU cap in cores, if any.
    pub fn cpu_limit(&self) -> Option<f64> {
        self.cpu_budget.as_ref().map(|b| b.cores())
    }

    /// Stops taking work and waits for the workers to finish their jobs.
    pub fn shutdown(&self) {
        // An hour: more than any job takes (fibo(38) at 1% of a core).
        self.shutdown_until(Instant::now() + Duration::from_secs(3600));
    }

    /// As [`ComputePool::shutdown`], but waits for running jobs only until
    /// `deadline`; threads still computing then are left to end with the
    /// process. Returns how many were left.
    pub fn shutdown_until(&self, deadline: Instant) -> usize {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        loop {
            let (done, running): (Vec<_>, Vec<_>) = handles.into_iter().partition(JoinHandle::is_finished);
            for handle in done {
                let _ = handle.join();
            }
            handles = running;
            if handles.is_empty() || Instant::now() >= deadline {
                return handles.len();
            }
            std::thread::sleep(Duration::from_millis(5).min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

/// The first estimate of a call's wall time, before any job has taught the
/// pool: a few milliseconds of bare fibo(20) on this thread, stretched by
/// the share of a core each worker gets when all compute (the CPU cap, or
/// more workers than cores).
fn first_ns_per_call(workers: usize, cpu_limit: Option<f64>) -> f64 {
    let started = Instant::now();
    let mut rounds = 0u32;
    while rounds < 3 || started.elapsed() < Duration::from_millis(2) {
        std::hint::black_box(fibo(std::hint::black_box(20)));
        rounds += 1;
    }
    let bare = started.elapsed().as_nanos() as f64 / (f64::from(rounds) * calls(20));
    let cores = cpu_limit.unwrap_or(f64::INFINITY).min(available_cores() as f64);
    bare * (workers as f64 / cores).max(1.0)
}

impl Drop for ComputePool {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue: usize, budget: Duration) -> ComputePool {
        ComputePool::start(&PoolConfig {
            workers,
            queue,
            budget,
            cpu_limit: None,
            nice: 0,
        })
        .expect("pool starts")
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Starts `fibo(n)` on the pool in the background and waits until it was
    /// admitted or refused; the refusal, if any.
    async fn submit(
        pool: &Arc<ComputePool>,
        n: u32,
    ) -> Result<tokio::task::JoinHandle<Result<Computed, PoolError>>, PoolError> {
        let before = pool.snapshot();
        let task = tokio::spawn({
            let pool = Arc::clone(pool);
            async move { pool.fibo(n).await }
        });
        loop {
            let now = pool.snapshot();
            if now.shed > before.shed {
                return Err(task.await.expect("join").expect_err("refused"));
            }
            if now.running + now.queued > before.running + before.queued || now.completed > before.completed {
                return Ok(task);
            }
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn computes_the_value() {
        let pool = pool(1, 0, HOUR);
        let computed = pool.fibo(30).await.expect("computed");
        assert_eq!(computed.value, 1_346_269);
        let snapshot = pool.snapshot();
        assert_eq!((snapshot.completed, snapshot.demand), (1, 1));
        // Nothing left outstanding once the job is done.
        assert_eq!(snapshot.expected_wait_ms, 0.0);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_whatever_the_budget() {
        let pool = Arc::new(pool(1, 1, HOUR));
        // Two long jobs fill the worker and the queue slot.
        let first = submit(&pool, 34).await.expect("first admitted");
        let second = submit(&pool, 34).await.expect("second admitted");
        match submit(&pool, 1).await.map(|_| ()) {
            Err(
                error @ PoolError::Overloaded {
                    reason,
                    queue_cap,
                    retry_after_s,
                    ..
                },
            ) => {
                assert_eq!((reason, queue_cap), (ShedReason::QueueFull, 1));
                assert!(retry_after_s >= 1);
                assert!(
                    error.to_string().contains("the queue is full (at most 1 waiting)"),
                    "{error}"
                );
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert_eq!(first.await.expect("join").expect("first").value, 9_227_465);
        assert_eq!(second.await.expect("join").expect("second").value, 9_227_465);
        let snapshot = pool.snapshot();
        assert_eq!(
            (
                snapshot.completed,
                snapshot.shed,
                snapshot.shed_queue_full,
                snapshot.running,
                snapshot.queued
            ),
            (2, 1, 1, 0, 0)
        );
        assert_eq!(snapshot.demand, 3, "served + shed");
        // Capacity is free again.
        assert_eq!(pool.fibo(2).await.expect("after").value, 2);
    }

    #[tokio::test]
    async fn a_job_that_would_wait_past_the_budget_is_refused_naming_both() {
        // Budget zero: only a free worker takes a job.
        let pool = Arc::new(pool(1, 100, Duration::ZERO));
        let first = submit(&pool, 34).await.expect("a free worker takes any job");
        match submit(&pool, 20).await.map(|_| ()) {
            Err(
                error @ PoolError::Overloaded {
                    reason, expected_wait, ..
                },
            ) => {
                assert_eq!(reason, ShedReason::OverBudget);
                assert!(expected_wait > Duration::ZERO);
                let message = error.to_string();
                assert!(message.contains("is over the queueing budget 0.00s"), "{message}");
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        first.await.expect("join").expect("first");
        assert_eq!(pool.snapshot().shed_over_budget, 1);
        // Idle again: the next job is admitted.
        pool.fibo(10).await.expect("admitted when idle");
    }

    #[tokio::test]
    async fn a_burst_within_the_budget_is_queued_and_served_not_shed() {
        // The seeds' experiment in small: 64 clients at once on 1 worker,
        // each job ~0.1 ms, far within a 2 s budget: every one is served.
        let pool = Arc::new(pool(1, 1000, Duration::from_secs(2)));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.fibo(20).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("join").expect("served").value, 10_946);
        }
        let snapshot = pool.snapshot();
        assert_eq!((snapshot.completed, snapshot.shed), (64, 0));
    }

    #[tokio::test]
    async fn admission_counts_the_work_ahead_against_budget_times_workers() {
        // One worker busy with a long job, a budget of an hour: long jobs
        // queue up to the count cap, then the cap refuses.
        let pool = Arc::new(pool(1, 3, HOUR));
        let mut admitted = vec![submit(&pool, 37).await.expect("free worker")];
        for _ in 0..3 {
            admitted.push(submit(&pool, 37).await.expect("within an hour"));
        }
        let snapshot = pool.snapshot();
        // fibo(37) takes tens of milliseconds: none has finished (and taught
        // the estimate) in the microseconds the submissions took.
        assert_eq!(snapshot.completed, 0);
        let wait = snapshot.expected_wait_ms;
        let one = pool.estimate(37).as_secs_f64() * 1e3;
        // Four jobs are outstanding: the wait of a fifth is their estimate.
        assert!(
            (wait - 4.0 * one).abs() < 1.0,
            "expected wait {wait} ms vs 4 x {one} ms"
        );
        assert!(matches!(
            submit(&pool, 37).await.map(|_| ()),
            Err(PoolError::Overloaded {
                reason: ShedReason::QueueFull,
                ..
            })
        ));
        for task in admitted {
            task.await.expect("join").expect("computed");
        }
        assert_eq!(pool.snapshot().expected_wait_ms, 0.0, "all work taken off again");
    }

    #[tokio::test]
    async fn the_estimate_learns_the_measured_time_per_call() {
        let pool = pool(1, 0, HOUR);
        let mut measured = Duration::ZERO;
        for _ in 0..10 {
            measured = pool.fibo(30).await.expect("computed").compute;
        }
        let estimate = pool.estimate(30);
        let ratio = estimate.as_secs_f64() / measured.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "estimate {estimate:?} vs measured {measured:?} after 10 jobs"
        );
        // The model scales with the number of calls: fibo(35) ~ 11 x fibo(30).
        let scale = pool.estimate(35).as_secs_f64() / estimate.as_secs_f64();
        assert!((10.0..12.5).contains(&scale), "{scale}");
    }

    #[test]
    fn retry_after_is_the_expected_wait_in_whole_seconds_1_to_60() {
        let cases = [
            ("no wait still says one second", 0.0, 1),
            ("a fraction rounds up", 1.2, 2),
            ("whole seconds stay", 3.0, 3),
            ("capped at a minute", 500.0, 60),
        ];
        for (name, wait, expected) in cases {
            assert_eq!(retry_after_s(Duration::from_secs_f64(wait)), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn stopped_pool_refuses() {
        let pool = pool(1, 0, HOUR);
        pool.shutdown();
        assert_eq!(pool.fibo(3).await, Err(PoolError::Stopped));
        let snapshot = pool.snapshot();
        assert_eq!((snapshot.queued, snapshot.expected_wait_ms), (0, 0.0));
    }

    #[test]
    fn cpu_limit_caps_the_workers_share() {
        // A quarter core for ~0.6 s of wall time: the compute thread must use
        // about a quarter of that in CPU (a real cap, measured by the kernel).
        let pool = ComputePool::start(&PoolConfig {
            workers: 1,
            queue: 4,
            budget: HOUR,
            cpu_limit: Some(0.25),
            nice: 0,
        })
        .expect("pool");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("rt");
        let started = Instant::now();
        let mut cpu = Duration::ZERO;
        while started.elapsed() < Duration::from_millis(600) {
            cpu += rt.block_on(pool.fibo(27)).expect("computed").cpu;
        }
        let share = cpu.as_secs_f64() / started.elapsed().as_secs_f64();
        // Uncapped, one thread would use close to a whole core; the 100 ms
        // burst allowance adds at most 0.25 * 0.1 / 0.6 ~ 0.04.
        assert!(
            share > 0.05 && share < 0.32,
            "share of a core {share:.3} with a 0.25 cap"
        );
        assert_eq!(pool.cpu_limit(), Some(0.25));
    }
}

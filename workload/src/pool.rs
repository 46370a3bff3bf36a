//! The bounded compute pool: CPU work runs here, never on the async workers.
//!
//! A fixed set of OS threads (sized to the cores, or to the CPU cap) takes
//! jobs from a queue of fixed capacity. Admission is decided up front with one
//! atomic counter, so a full pool refuses at once (the caller answers 503)
//! instead of queueing without bound. Workers run at a lower scheduling
//! priority than the HTTP threads, so `/health` and `/metrics` stay fast while
//! every core computes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::cpu::{CpuBudget, thread_cpu_time};
use crate::fib::fibo_paced;

/// Why a job was not computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full: shed the request.
    #[error("overloaded: {running} computing and {queued} queued (capacity {capacity}); retry after {retry_after_s}s")]
    Overloaded {
        running: usize,
        queued: usize,
        capacity: usize,
        retry_after_s: u64,
    },
    /// The pool has stopped (the service is shutting down).
    #[error("shutting down: the compute pool no longer accepts work")]
    Stopped,
}

/// Sizing and pacing of a [`ComputePool`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Worker threads.
    pub workers: usize,
    /// Jobs that may wait beyond those being computed.
    pub queue: usize,
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
    enqueued: Instant,
    reply: oneshot::Sender<Computed>,
}

/// Counters kept by the pool, read by `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Jobs admitted and not yet finished (queued + running).
    admitted: AtomicUsize,
    running: AtomicUsize,
    completed: AtomicU64,
    shed: AtomicU64,
    /// Jobs dropped before starting because their client had gone.
    abandoned: AtomicU64,
    /// Total nanoseconds of compute wall time, for the Retry-After estimate.
    compute_ns: AtomicU64,
}

/// A snapshot of [`PoolStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolSnapshot {
    pub workers: usize,
    pub queue_capacity: usize,
    pub running: usize,
    pub queued: usize,
    pub completed: u64,
    pub shed: u64,
    pub abandoned: u64,
}

/// The compute pool. Dropping it lets workers finish their current job and exit.
#[derive(Debug)]
pub struct ComputePool {
    sender: Mutex<Option<SyncSender<Job>>>,
    workers: usize,
    queue: usize,
    stats: Arc<PoolStats>,
    budget: Option<Arc<CpuBudget>>,
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
        let budget = config.cpu_limit.map(|cores| Arc::new(CpuBudget::new(cores)));
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let stats = Arc::clone(&stats);
            let budget = budget.clone();
            let nice = config.nice;
            handles.push(
                std::thread::Builder::new()
                    .name(format!("compute-{index}"))
                    .spawn(move || worker(&receiver, &stats, budget.as_deref(), nice))?,
            );
        }
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            workers,
            queue: config.queue,
            stats,
            budget,
            handles: Mutex::new(handles),
        })
    }

    /// Computes `fibo(n)` on the pool, or refuses at once when it is full.
    pub async fn fibo(&self, n: u32) -> Result<Computed, PoolError> {
        let capacity = self.workers + self.queue;
        let admitted = self
            .stats
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current < capacity).then_some(current + 1)
            });
        if let Err(current) = admitted {
            self.stats.shed.fetch_add(1, Ordering::Relaxed);
            let running = self.stats.running.load(Ordering::Relaxed);
            return Err(PoolError::Overloaded {
                running,
                queued: current.saturating_sub(running),
                capacity,
                retry_after_s: self.retry_after_s(current),
            });
        }
        let (reply, receive) = oneshot::channel();
        let job = Job {
            n,
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
            self.stats.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(PoolError::Stopped);
        }
        receive.await.map_err(|_| PoolError::Stopped)
    }

    /// Seconds until a slot is likely free: the work ahead of a new job
    /// divided among the workers, from the mean job time, at least 1.
    fn retry_after_s(&self, in_system: usize) -> u64 {
        let completed = self.stats.completed.load(Ordering::Relaxed).max(1);
        let mean_ns = self.stats.compute_ns.load(Ordering::Relaxed) / completed;
        let ahead_ns = mean_ns.saturating_mul(in_system as u64) / self.workers as u64;
        Duration::from_nanos(ahead_ns).as_secs().clamp(1, 60)
    }

    /// Current counters.
    pub fn snapshot(&self) -> PoolSnapshot {
        let admitted = self.stats.admitted.load(Ordering::Relaxed);
        let running = self.stats.running.load(Ordering::Relaxed);
        PoolSnapshot {
            workers: self.workers,
            queue_capacity: self.queue,
            running,
            queued: admitted.saturating_sub(running),
            completed: self.stats.completed.load(Ordering::Relaxed),
            shed: self.stats.shed.load(Ordering::Relaxed),
            abandoned: self.stats.abandoned.load(Ordering::Relaxed),
        }
    }

    /// The CPU cap in cores, if any.
    pub fn cpu_limit(&self) -> Option<f64> {
        self.budget.as_ref().map(|b| b.cores())
    }

    /// Stops taking work and waits for the workers to finish their jobs.
    pub fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
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

impl Drop for ComputePool {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn worker(receiver: &Mutex<Receiver<Job>>, stats: &PoolStats, budget: Option<&CpuBudget>, nice: i32) {
    lower_priority(nice);
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // The client went away while the job waited: computing it would only
        // burn CPU another request needs.
        if job.reply.is_closed() {
            stats.abandoned.fetch_add(1, Ordering::Relaxed);
            stats.admitted.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        stats.running.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let cpu_before = thread_cpu_time();
        let value = match budget {
            None => fibo_paced(job.n, &mut || {}),
            Some(budget) => {
                let mut last_cpu = thread_cpu_time();
                fibo_paced(job.n, &mut || {
                    let cpu = thread_cpu_time();
                    let sleep = budget.charge(cpu.saturating_sub(last_cpu), Instant::now());
                    // The CPU that sleeping itself costs is charged with the
                    // next chunk: every CPU nanosecond counts against the cap.
                    last_cpu = cpu;
                    if !sleep.is_zero() {
                        std::thread::sleep(sleep);
                    }
                })
            }
        };
        let compute = started.elapsed();
        let cpu = thread_cpu_time().saturating_sub(cpu_before);
        stats.compute_ns.fetch_add(compute.as_nanos() as u64, Ordering::Relaxed);
        stats.completed.fetch_add(1, Ordering::Relaxed);
        stats.running.fetch_sub(1, Ordering::AcqRel);
        stats.admitted.fetch_sub(1, Ordering::AcqRel);
        let _ = job.reply.send(Computed {
            value,
            queued: started.saturating_duration_since(job.enqueued),
            compute,
            cpu,
        });
    }
}

/// Raises this thread's niceness so the HTTP threads get the CPU first.
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: gettid has no preconditions; setpriority on our own thread id
    // only changes this thread's niceness (Linux applies it per thread).
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc != 0 {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(), "could not lower compute thread priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue: usize) -> ComputePool {
        ComputePool::start(&PoolConfig {
            workers,
            queue,
            cpu_limit: None,
            nice: 0,
        })
        .expect("pool starts")
    }

    #[tokio::test]
    async fn computes_the_value() {
        let pool = pool(1, 0);
        let computed = pool.fibo(30).await.expect("computed");
        assert_eq!(computed.value, 1_346_269);
        assert_eq!(pool.snapshot().completed, 1);
    }

    #[tokio::test]
    async fn sheds_when_workers_and_queue_are_full() {
        let pool = Arc::new(pool(1, 1));
        // Two long jobs fill the worker and the queue slot.
        let first = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.fibo(34).await }
        });
        let second = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.fibo(34).await }
        });
        // Wait until both are admitted.
        while pool.stats.admitted.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let third = pool.fibo(1).await;
        match third {
            Err(PoolError::Overloaded {
                capacity,
                retry_after_s,
                ..
            }) => {
                assert_eq!(capacity, 2);
                assert!(retry_after_s >= 1);
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert_eq!(first.await.expect("join").expect("first").value, 9_227_465);
        assert_eq!(second.await.expect("join").expect("second").value, 9_227_465);
        let snapshot = pool.snapshot();
        assert_eq!(
            (snapshot.completed, snapshot.shed, snapshot.running, snapshot.queued),
            (2, 1, 0, 0)
        );
        // Capacity is free again.
        assert_eq!(pool.fibo(2).await.expect("after").value, 2);
    }

    #[tokio::test]
    async fn stopped_pool_refuses() {
        let pool = pool(1, 0);
        pool.shutdown();
        assert_eq!(pool.fibo(3).await, Err(PoolError::Stopped));
        assert_eq!(pool.snapshot().queued, 0);
    }

    #[test]
    fn cpu_limit_caps_the_workers_share() {
        // A quarter core for ~0.6 s of wall time: the compute thread must use
        // about a quarter of that in CPU (a real cap, measured by the kernel).
        let pool = ComputePool::start(&PoolConfig {
            workers: 1,
            queue: 4,
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

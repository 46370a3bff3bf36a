//! A compute worker: takes admitted jobs, computes them under the CPU cap
//! at a lower priority than the HTTP threads, and learns the time per call.

use super::*;

pub(super) fn worker(receiver: &Mutex<Receiver<Job>>, stats: &PoolStats, budget: Option<&CpuBudget>, nice: i32) {
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
            stats.outstanding_ns.fetch_sub(job.cost_ns, Ordering::AcqRel);
            stats.admitted.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        stats.running.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let queued = started.saturating_duration_since(job.enqueued);
        stats.last_wait_ns.store(queued.as_nanos() as u64, Ordering::Relaxed);
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
        learn(stats, job.n, compute);
        stats.completed.fetch_add(1, Ordering::Relaxed);
        stats.outstanding_ns.fetch_sub(job.cost_ns, Ordering::AcqRel);
        stats.running.fetch_sub(1, Ordering::AcqRel);
        stats.admitted.fetch_sub(1, Ordering::AcqRel);
        let _ = job.reply.send(Computed {
            value,
            queued,
            compute,
            cpu,
        });
    }
}

/// Moves the learnt per-call time towards what this job took (big jobs
/// only: in small ones the fixed overhead is most of the time).
pub(super) fn learn(stats: &PoolStats, n: u32, compute: Duration) {
    let calls = calls(n);
    if calls < LEARN_FROM_CALLS {
        return;
    }
    let sample = compute.as_nanos() as f64 / calls;
    let _ = stats
        .ns_per_call
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
            let old = f64::from_bits(bits);
            Some((old + LEARN_WEIGHT * (sample - old)).to_bits())
        });
}

/// Raises this thread's niceness so the HTTP threads get the CPU first.
pub(super) fn lower_priority(nice: i32) {
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

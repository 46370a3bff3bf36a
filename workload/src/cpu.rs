//! CPU accounting: clocks, the CPU cap (`--cpu-limit`) and utilisation over a window.
//!
//! The cap is a token bucket of CPU time shared by the compute workers, the way
//! a cgroup quota is shared by a container's threads: each worker charges the
//! CPU it used and sleeps while the bucket is in debt. Utilisation is the
//! process's CPU time over a window divided by its capacity (the cap, or the
//! cores when uncapped), so 100% means what it means on a real VM.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// CPU time this thread has used.
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time the whole process has used (all threads, user and system).
pub fn process_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and both clock ids exist on
    // every Linux; on failure the zeroed value is returned (never observed).
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Logical cores this process may run on (affinity and cgroup aware).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A shared budget of CPU time refilled at `cores` CPU-seconds per second.
#[derive(Debug)]
pub struct CpuBudget {
    cores: f64,
    burst: Duration,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    /// CPU nanoseconds that may still be spent; negative is debt.
    tokens_ns: f64,
    refilled_at: Instant,
}

impl CpuBudget {
    /// A budget of `cores` (e.g. 0.15 of one core) with up to 100 ms of
    /// wall time's worth of credit saved up, so short requests are not
    /// delayed but sustained load averages out at the cap.
    pub fn new(cores: f64) -> Self {
        let burst = Duration::from_millis(100);
        Self {
            cores,
            burst,
            state: Mutex::new(BudgetState {
                tokens_ns: burst.as_nanos() as f64 * cores,
                refilled_at: Instant::now(),
            }),
        }
    }

    /// The cap, in cores.
    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// Records `used` CPU time at `now` and returns how long the caller must
    /// sleep to bring the budget back out of debt (zero when in credit).
    pub fn charge(&self, used: Duration, now: Instant) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(state.refilled_at);
        state.refilled_at = now.max(state.refilled_at);
        let cap = self.burst.as_nanos() as f64 * self.cores;
        state.tokens_ns = (state.tokens_ns + elapsed.as_nanos() as f64 * self.cores).min(cap) - used.as_nanos() as f64;
        if state.tokens_ns >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((-state.tokens_ns / self.cores) as u64)
        }
    }
}

/// Process CPU utilisation over a sliding window, relative to a capacity.
#[derive(Debug)]
pub struct CpuMeter {
    capacity_cores: f64,
    window: Duration,
    started: Instant,
    samples: Mutex<VecDeque<(Instant, Duration)>>,
}

impl CpuMeter {
    /// A meter whose 100% is `capacity_cores` of CPU, averaged over `window`.
    pub fn new(capacity_cores: f64, window: Duration) -> Self {
        let now = Instant::now();
        Self {
            capacity_cores,
            window,
            started: now,
            samples: Mutex::new(VecDeque::from([(now, process_cpu_time())])),
        }
    }

    /// What 100% means, in cores.
    pub fn capacity_cores(&self) -> f64 {
        self.capacity_cores
    }

    /// The averaging window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Takes a sample now; call it a few times a window (the server does, every
    /// quarter window, at most once a second).
    pub fn sample(&self) {
        self.record(Instant::now(), process_cpu_time());
    }

    fn record(&self, now: Instant, cpu: Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((now, cpu));
        // Keep exactly one sample at or beyond the window's start as the base.
        while samples.len() > 2 && now.saturating_duration_since(samples[1].0) >= self.window {
            samples.pop_front();
        }
    }

    /// Utilisation in percent (0 to 100) over the last window (or since start
    /// when the process is younger than the window).
    pub fn utilization_percent(&self) -> f64 {
        self.utilization_at(Instant::now(), process_cpu_time())
    }

    fn utilization_at(&self, now: Instant, cpu: Duration) -> f64 {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let start = now.checked_sub(self.window).unwrap_or(self.started).max(self.started);
        // The newest sample taken at or before the window's start, else the oldest.
        let base = samples
            .iter()
            .rev()
            .find(|(t, _)| *t <= start)
            .or(samples.front())
            .copied()
            .unwrap_or((self.started, Duration::ZERO));
        let wall = now.saturating_duration_since(base.0).as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let used = cpu.saturating_sub(base.1).as_secs_f64();
        (100.0 * used / (wall * self.capacity_cores)).clamp(0.0, 100.0)
    }

    /// Seconds since the meter (and the service) started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_in_credit_needs_no_sleep() {
        let budget = CpuBudget::new(0.5);
        let t0 = Instant::now();
        assert_eq!(budget.charge(Duration::from_millis(10), t0), Duration::ZERO);
    }

    #[test]
    fn budget_debt_is_repaid_at_the_cap_rate() {
        // 0.25 cores, 25 ms of credit saved: using 125 ms leaves 100 ms of
        // debt, which takes 400 ms of wall time to refill at a quarter core.
        let budget = CpuBudget::new(0.25);
        let t0 = Instant::now();
        let sleep = budget.charge(Duration::from_millis(125), t0);
        assert!((sleep.as_secs_f64() - 0.400).abs() < 0.002, "sleep {sleep:?}");
        // After sleeping exactly that long the debt is gone.
        assert_eq!(
            budget.charge(Duration::ZERO, t0 + sleep + Duration::from_millis(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn budget_sustained_use_averages_at_the_cap() {
        // A worker that computes 5 ms chunks and sleeps when told to, in
        // simulated time: over 10 s its CPU share must be 0.15 cores.
        let budget = CpuBudget::new(0.15);
        let start = Instant::now();
        let mut now = start;
        let mut used = Duration::ZERO;
        while now - start < Duration::from_secs(10) {
            let chunk = Duration::from_millis(5);
            now += chunk;
            used += chunk;
            now += budget.charge(chunk, now);
        }
        let share = used.as_secs_f64() / (now - start).as_secs_f64();
        assert!((share - 0.15).abs() < 0.005, "share {share}");
    }

    #[test]
    fn meter_reports_share_of_capacity_over_the_window() {
        let meter = CpuMeter::new(0.5, Duration::from_secs(10));
        let t0 = meter.started;
        let base_cpu = meter.samples.lock().unwrap().front().unwrap().1;
        // 20 s in, samples every 5 s; over the last 10 s the process used 2.5 s
        // of CPU: 0.25 cores of a 0.5 core capacity = 50%.
        for (s, cpu_ms) in [(5u64, 500u64), (10, 1000), (15, 2000), (20, 3500)] {
            meter.record(t0 + Duration::from_secs(s), base_cpu + Duration::from_millis(cpu_ms));
        }
        let pct = meter.utilization_at(t0 + Duration::from_secs(20), base_cpu + Duration::from_millis(3500));
        assert!((pct - 50.0).abs() < 1e-9, "pct {pct}");
    }

    #[test]
    fn meter_is_clamped_and_young_processes_use_their_age() {
        let meter = CpuMeter::new(1.0, Duration::from_secs(60));
        let t0 = meter.started;
        let base_cpu = meter.samples.lock().unwrap().front().unwrap().1;
        // 2 s old, 1 s of CPU: 50% (not 1/60).
        let pct = meter.utilization_at(t0 + Duration::from_secs(2), base_cpu + Duration::from_secs(1));
        assert!((pct - 50.0).abs() < 1e-9, "pct {pct}");
        // More CPU than capacity (I/O threads beside a cap) reads as 100%.
        let pct = meter.utilization_at(t0 + Duration::from_secs(2), base_cpu + Duration::from_secs(5));
        assert_eq!(pct, 100.0);
    }

    #[test]
    fn clocks_advance_with_work() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time() > before);
        assert!(process_cpu_time() >= thread_cpu_time());
    }
}

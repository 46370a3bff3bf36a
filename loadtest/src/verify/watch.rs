//! The watcher: samples the target and the load each second of wall time,
//! prints live lines, and waits for a condition within a bound of cloud time.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use jiff::Timestamp;

use crate::engine::Live;
use crate::stats::Stats;

use super::*;

/// Shortest window (wall seconds) the live line computes a rate over.
pub(super) const MIN_RATE_WINDOW: f64 = 0.25;

pub(super) struct Watch<'a, T: Target> {
    pub(super) target: &'a T,
    pub(super) live: Arc<Live>,
    pub(super) seconds: Arc<Mutex<BTreeMap<u64, Stats>>>,
    pub(super) load_started: Option<Instant>,
    pub(super) samples: Vec<Sample>,
    pub(super) last_requests: u64,
    pub(super) last_failures: u64,
    pub(super) last_at: Instant,
    pub(super) print: bool,
    /// The newest observation.
    pub(super) observed: Observed,
}

impl<T: Target> Watch<'_, T> {
    /// Follows another load engine's counters.
    pub(super) fn switch(&mut self, live: Arc<Live>) {
        self.live = live;
        (self.last_requests, self.last_failures) = (0, 0);
        self.last_at = Instant::now();
    }

    /// Takes one sample (and prints the live line).
    pub(super) async fn sample(&mut self, phase: &'static str, out: &mut impl Write) -> Result<Sample> {
        self.observed = self.target.observe().await?;
        let now = self.target.now();
        let cpu = self.target.cpu().await;
        let wall = self.last_at.elapsed().as_secs_f64();
        let (rps, fps) = match self.samples.last() {
            // A sample right after another (a phase ending, the next one
            // starting) has too short a window for a rate: repeat the last one.
            Some(last) if wall < MIN_RATE_WINDOW => (last.requests_per_second, last.failures_per_second),
            _ => {
                self.last_at = Instant::now();
                let requests = self.live.requests.load(Ordering::Relaxed);
                let failures = self.live.failures.load(Ordering::Relaxed);
                let wall = wall.max(1e-3);
                let rates = (
                    requests.saturating_sub(self.last_requests) as f64 / wall,
                    failures.saturating_sub(self.last_failures) as f64 / wall,
                );
                (self.last_requests, self.last_failures) = (requests, failures);
                rates
            }
        };
        let load_second = self.load_started.map(|started| started.elapsed().as_secs());
        // Workers report each second when they finish their next request: the
        // seconds up to the last one are (nearly always) complete; the report
        // recomputes every p99 at the end, from complete seconds.
        let p99 = load_second.and_then(|now| p99_over(&self.seconds, now.saturating_sub(4), now.checked_sub(1)?));
        let sample = Sample {
            at: now,
            phase,
            desired: self.observed.desired,
            in_service: self.observed.in_service(),
            cpu_percent: cpu,
            requests_per_second: rps,
            failures_per_second: fps,
            p99_ms: p99,
            load_second,
        };
        if self.print {
            writeln!(
                out,
                "[{}] {:<9} instances {:>2} in service / {:>2} desired  CPU {:>5}  {:>6.0} req/s  {:>5.0} failed/s  p99 {}",
                now.strftime("%H:%M:%S"),
                phase,
                sample.in_service,
                sample.desired,
                cpu.map_or_else(|| "-".to_string(), |c| format!("{c:.0}%")),
                rps,
                fps,
                p99.map_or_else(|| "-".to_string(), |p| format!("{p:.0} ms"))
            )?;
        }
        self.samples.push(sample.clone());
        Ok(sample)
    }

    /// Samples until `done` or `within` (target time) passes; the target time it held, if it did.
    pub(super) async fn until(
        &mut self,
        phase: &'static str,
        within: Duration,
        out: &mut impl Write,
        done: impl Fn(&Sample, &Observed) -> bool,
    ) -> Result<Option<Timestamp>> {
        let wall_limit = within.div_f64(self.target.speed());
        let started = Instant::now();
        loop {
            let sample = self.sample(phase, out).await?;
            if done(&sample, &self.observed) {
                return Ok(Some(sample.at));
            }
            if started.elapsed() >= wall_limit {
                return Ok(None);
            }
            tokio::time::sleep(self.target.poll().min(wall_limit / 4).max(Duration::from_millis(100))).await;
        }
    }
}

//! The load engine: workers, each with one HTTP/1.1 keep-alive connection
//! ([`crate::h1`]), send GETs closed-loop (back to back) or open-loop on a schedule
//! (a fixed rate or a ramp), measuring open-loop latency from the scheduled
//! send time (coordinated-omission correction). Each worker keeps its own
//! [`Stats`] and sends it over a channel once per second of the run, so the
//! statistics stay pure and the engine stays fast. Bounded in time and count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::Uri;
use tokio::sync::mpsc;

use crate::h1::Connection;

use crate::stats::{ErrorKind, Outcome, Stats, instance_of};

/// How requests are paced.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// `connections` workers, each sending its next request when the last is answered.
    Closed { connections: usize },
    /// Requests sent on a schedule by up to `connections` workers.
    Open { connections: usize, ramp: Ramp },
}

/// A request rate over time: linear between points, constant after the last.
#[derive(Debug, Clone, PartialEq)]
pub struct Ramp {
    /// (seconds from the start, requests per second), in time order, first at 0.
    pub points: Vec<(f64, f64)>,
}

impl Ramp {
    pub fn constant(rate: f64) -> Self {
        Self {
            points: vec![(0.0, rate)],
        }
    }

    /// `0:100,60s:500`: 100 req/s at the start, rising linearly to 500 at 60 s.
    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = "expected TIME:RATE pairs separated by commas, times rising from 0 (e.g. 0:100,60s:500)";
        let mut points = Vec::new();
        for part in text.split(',') {
            let (time, rate) = part.split_once(':').ok_or_else(|| format!("{part:?}: {allowed}"))?;
            let time = if time.trim() == "0" {
                0.0
            } else {
                humantime::parse_duration(time.trim())
                    .map_err(|e| format!("{time:?}: {e}; {allowed}"))?
                    .as_secs_f64()
            };
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r >= 0.0)
                .ok_or_else(|| format!("{rate:?}: a rate must be a number >= 0; {allowed}"))?;
            if points.last().is_some_and(|(t, _)| time <= *t) {
                return Err(format!("{part:?}: times must rise; {allowed}"));
            }
            points.push((time, rate));
        }
        if points.first().is_none_or(|(t, _)| *t != 0.0) {
            return Err(format!("the first point must be at 0; {allowed}"));
        }
        Ok(Self { points })
    }

    /// How the rate changes at `t` (requests per second per second).
    fn slope_at(&self, t: f64) -> f64 {
        self.points
            .windows(2)
            .find(|w| t >= w[0].0 && t < w[1].0)
            .map_or(0.0, |w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0))
    }

    /// Requests per second at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        let mut previous = self.points[0];
        for &(time, rate) in &self.points {
            if t < time {
                let span = time - previous.0;
                return previous.1 + (rate - previous.1) * (t - previous.0) / span;
            }
            previous = (time, rate);
        }
        previous.1
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: Uri,
    pub mode: Mode,
    pub duration: Duration,
    /// Stop after this many requests (all modes).
    pub max_requests: Option<u64>,
    /// Longest a request may take (connect, send, answer).
    pub timeout: Duration,
}

/// Statistics of the requests one worker completed in one second of the run.
#[derive(Debug)]
pub struct Batch {
    pub second: u64,
    pub stats: Stats,
}

/// Live counters for a progress line, and a stop switch.
#[derive(Debug, Default)]
pub struct Live {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    /// Set to end the run early (workers finish their request in flight).
    pub stop: std::sync::atomic::AtomicBool,
}

/// The open-loop schedule shared by the workers.
#[derive(Debug)]
struct Schedule {
    ramp: Ramp,
    next: std::sync::Mutex<f64>,
}

impl Schedule {
    /// The next send time, in seconds from the start: request k goes when
    /// the area under the rate reaches k (solved exactly on a linear piece),
    /// so a ramp sends what it promises. NaN while the rate stays at zero.
    fn take(&self) -> f64 {
        let mut next = self.next.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = *next;
        let (rate, slope) = (self.ramp.rate_at(t), self.ramp.slope_at(t));
        // rate x dt + slope x dt^2 / 2 = 1
        let dt = if slope.abs() < 1e-12 {
            if rate > 0.0 { 1.0 / rate } else { f64::INFINITY }
        } else {
            let disc = rate * rate + 2.0 * slope;
            if disc >= 0.0 {
                (disc.sqrt() - rate) / slope
            } else {
                f64::INFINITY
            }
        };
        if dt.is_finite() && dt > 0.0 {
            *next = t + dt;
            *next
        } else {
            // Nothing to send yet: look again 10 ms later.
            *next = t + 0.01;
            f64::NAN
        }
    }
}

/// Runs the plan; batches go to `results` (closed when every worker is done).
pub async fn run(plan: Plan, results: mpsc::UnboundedSender<Batch>, live: Arc<Live>) {
    // Thousands of connections: the plan, not a soft limit of 1024 open
    // files, decides how many there are.
    localcloud::server::raise_open_files_limit();
    let started = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let (connections, schedule) = match &plan.mode {
        Mode::Closed { connections } => (*connections, None),
        Mode::Open { connections, ramp } => (
            *connections,
            Some(Arc::new(Schedule {
                ramp: ramp.clone(),
                next: std::sync::Mutex::new(0.0),
            })),
        ),
    };
    let plan = Arc::new(plan);
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let worker = Worker {
            plan: plan.clone(),
            started,
            issued: issued.clone(),
            schedule: schedule.clone(),
            results: results.clone(),
            live: live.clone(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    drop(results);
    for worker in workers {
        let _ = worker.await;
    }
}

struct Worker {
    plan: Arc<Plan>,
    started: Instant,
    issued: Arc<AtomicU64>,
    schedule: Option<Arc<Schedule>>,
    results: mpsc::UnboundedSender<Batch>,
    live: Arc<Live>,
}

impl Worker {
    async fn run(self) {
        let end = self.started + self.plan.duration;
        let authority = self
            .plan
            .url
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let path = self.plan.url.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let mut connection: Option<Connection> = None;
        let (mut second, mut stats) = (0u64, Stats::default());
        loop {
            if self.live.stop.load(Ordering::Relaxed) {
                break;
            }
            if self
                .plan
                .max_requests
                .is_some_and(|max| self.issued.fetch_add(1, Ordering::Relaxed) >= max)
            {
                break;
            }
            let scheduled = match &self.schedule {
                None => Instant::now(),
                Some(schedule) => {
                    let t = schedule.take();
                    if t.is_nan() {
                        if Instant::now() >= end {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    self.started + Duration::from_secs_f64(t)
                }
            };
            if scheduled >= end {
                break;
            }
            if self.schedule.is_some() {
                // Wait for the slot in short naps, so a stop is seen at once.
                while let Some(left) = scheduled.checked_duration_since(Instant::now()) {
                    if self.live.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    tokio::time::sleep(left.min(Duration::from_millis(50))).await;
                }
                if self.live.stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            let outcome = match tokio::time::timeout(self.plan.timeout, send(&mut connection, &authority, &path)).await
            {
                Ok(outcome) => outcome,
                Err(_) => {
                    connection = None;
                    Outcome::Error(ErrorKind::Timeout)
                }
            };
            let done = Instant::now();
            let at = done.duration_since(self.started).as_secs();
            if at != second && stats.requests > 0 {
                let _ = self.results.send(Batch {
                    second,
                    stats: std::mem::take(&mut stats),
                });
            }
            second = at;
            let failed = !matches!(outcome, Outcome::Answer { status: 200..=299, .. });
            stats.push(done.duration_since(scheduled), &outcome);
            self.live.requests.fetch_add(1, Ordering::Relaxed);
            if failed {
                self.live.failures.fetch_add(1, Ordering::Relaxed);
                if matches!(outcome, Outcome::Error(ErrorKind::Connect)) && self.schedule.is_none() {
                    // Closed loop against a refusing server: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        if stats.requests > 0 {
            let _ = self.results.send(Batch { second, stats });
        }
    }
}

/// One GET on the worker's connection (opened if needed).
async fn send(connection: &mut Option<Connection>, authority: &str, path: &str) -> Outcome {
    if connection.as_mut().is_some_and(|c| !c.reusable()) {
        *connection = None;
    }
    if connection.is_none() {
        match Connection::connect(authority, path).await {
            Ok(fresh) => *connection = Some(fresh),
            Err(_) => return Outcome::Error(ErrorKind::Connect),
        }
    }
    let Some(open) = connection.as_mut() else {
        return Outcome::Error(ErrorKind::Connect);
    };
    match open.get().await {
        Ok(answer) => {
            let outcome = Outcome::Answer {
                status: answer.status,
                instance: instance_of(answer.body),
            };
            if !answer.keep_alive {
                *connection = None;
            }
            outcome
        }
        Err(_) => {
            *connection = None;
            Outcome::Error(ErrorKind::Connection)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_parse_and_interpolate() {
        let ramp = Ramp::parse("0:100,60s:500").expect("ramp");
        assert_eq!(ramp.rate_at(0.0), 100.0);
        assert_eq!(ramp.rate_at(30.0), 300.0);
        assert_eq!(ramp.rate_at(60.0), 500.0);
        assert_eq!(ramp.rate_at(600.0), 500.0);
        for (bad, expected) in [
            ("100", "TIME:RATE"),
            ("10s:100", "first point must be at 0"),
            ("0:100,5s:-1", "rate must be a number >= 0"),
            ("0:1,5s:2,5s:3", "times must rise"),
            ("0:1,soon:2", "\"soon\""),
        ] {
            let error = Ramp::parse(bad).expect_err(bad);
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn the_open_schedule_follows_the_ramp() {
        let schedule = Schedule {
            ramp: Ramp::constant(10.0),
            next: std::sync::Mutex::new(0.0),
        };
        let times: Vec<f64> = (0..3).map(|_| schedule.take()).collect();
        assert!(
            times.iter().zip([0.1, 0.2, 0.3]).all(|(a, b)| (a - b).abs() < 1e-9),
            "{times:?}"
        );
        let paused = Schedule {
            ramp: Ramp::parse("0:0,1s:0").expect("ramp"),
            next: std::sync::Mutex::new(0.0),
        };
        assert!(paused.take().is_nan());
    }
}

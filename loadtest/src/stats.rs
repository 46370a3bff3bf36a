//! Pure statistics of a load run: latency in an HdrHistogram, status codes,
//! errors by kind, and which instance answered. `push` one result, `merge`
//! another `Stats`; no IO, no clock.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer: status and, for the workload's Fibonacci text, the
    /// private IP of the instance that computed it.
    Answer { status: u16, instance: Option<String> },
    /// No HTTP answer.
    Error(ErrorKind),
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The TCP connection could not be made.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection broke before a complete answer.
    Connection,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
        }
    }
}

/// Statistics of many requests.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Latency in microseconds (answers and errors alike).
    pub latency: Histogram<u64>,
    pub requests: u64,
    /// 2xx answers.
    pub successes: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub instances: BTreeMap<String, u64>,
}

/// Highest latency recorded: ten minutes, in microseconds.
const MAX_US: u64 = 600_000_000;

impl Default for Stats {
    /// Two significant digits (1% resolution): small enough (about 20 KB) to
    /// keep one per worker and per second of a long run.
    fn default() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, MAX_US, 2).unwrap_or_else(|_| unreachable!("valid bounds")),
            requests: 0,
            successes: 0,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            instances: BTreeMap::new(),
        }
    }
}

impl Stats {
    pub fn push(&mut self, latency: Duration, outcome: &Outcome) {
        self.requests += 1;
        let micros = (latency.as_micros() as u64).clamp(1, MAX_US);
        let _ = self.latency.record(micros);
        match outcome {
            Outcome::Answer { status, instance } => {
                *self.statuses.entry(*status).or_default() += 1;
                if (200..300).contains(status) {
                    self.successes += 1;
                }
                if let Some(ip) = instance {
                    *self.instances.entry(ip.clone()).or_default() += 1;
                }
            }
            Outcome::Error(kind) => *self.errors.entry(*kind).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        let _ = self.latency.add(&other.latency);
        self.requests += other.requests;
        self.successes += other.successes;
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        for (k, v) in &other.instances {
            *self.instances.entry(k.clone()).or_default() += v;
        }
    }

    /// Requests without a 2xx answer.
    pub fn failures(&self) -> u64 {
        self.requests - self.successes
    }

    /// Latency at quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.requests == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.latency.value_at_quantile(q))
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.latency.max())
    }

    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.latency.mean() as u64)
    }
}

/// The private IP in the workload's answer (`... Computed by HOST with private ip IP`).
pub fn instance_of(body: &[u8]) -> Option<String> {
    const MARK: &[u8] = b"with private ip ";
    let at = body.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let rest = &body[at..];
    let end = rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len());
    let ip = std::str::from_utf8(&rest[..end]).ok()?;
    (!ip.is_empty()).then(|| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ip: &str) -> Outcome {
        Outcome::Answer {
            status: 200,
            instance: Some(ip.into()),
        }
    }

    #[test]
    fn percentiles_counts_and_merge() {
        let mut a = Stats::default();
        for ms in 1..=100u64 {
            a.push(Duration::from_millis(ms), &ok("10.0.0.1"));
        }
        let mut b = Stats::default();
        b.push(
            Duration::from_millis(500),
            &Outcome::Answer {
                status: 503,
                instance: None,
            },
        );
        b.push(Duration::from_secs(2), &Outcome::Error(ErrorKind::Timeout));
        b.push(Duration::from_millis(3), &ok("10.0.0.2"));
        a.merge(&b);
        assert_eq!(a.requests, 103);
        assert_eq!(a.successes, 101);
        assert_eq!(a.failures(), 2);
        assert_eq!(a.statuses[&200], 101);
        assert_eq!(a.statuses[&503], 1);
        assert_eq!(a.errors[&ErrorKind::Timeout], 1);
        assert_eq!(a.instances["10.0.0.1"], 100);
        assert_eq!(a.instances["10.0.0.2"], 1);
        let p50 = a.quantile(0.5).as_millis();
        assert!((50..=52).contains(&p50), "{p50}");
        assert!(a.quantile(0.99).as_millis() >= 100);
        assert!((a.max().as_secs_f64() - 2.0).abs() < 0.01);
    }

    #[test]
    fn empty_stats_are_zero() {
        let s = Stats::default();
        assert_eq!(s.quantile(0.99), Duration::ZERO);
        assert_eq!(s.failures(), 0);
    }

    #[test]
    fn finds_the_instance_in_the_workload_answer() {
        let body = b"Fibo(35) = 14930352 \nComputed by ip-127-0-1-2 with private ip 127.0.1.2 \n";
        assert_eq!(instance_of(body).as_deref(), Some("127.0.1.2"));
        assert_eq!(instance_of(b"I am healthy"), None);
        assert_eq!(instance_of(b"with private ip "), None);
    }
}

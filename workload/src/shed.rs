//! When a refused request is answered (issue 24).
//!
//! A closed-loop client that gets an instant 503 sends again at once: with
//! tens of connections the HTTP threads then spend the CPU answering tens of
//! thousands of 503s a second and the compute threads, at a lower priority,
//! starve (measured: 0.19 x the light-load rate at 256 connections). So a
//! 503 is answered no sooner than `--shed-delay` after the request came, and
//! refusals are answered at most `--shed-rate` a second: each takes the next
//! free slot. A refusal that would wait past ten times the delay is answered
//! then, so no client waits without bound; that bounds the rate at
//! `connections / (10 x delay)` even for a crowd. A delay of zero answers at
//! once (the old behaviour). Waiting costs a timer, no thread and no CPU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a client waits for its refusal, at the latest.
const LONGEST_WAIT_IN_DELAYS: u32 = 10;

/// Schedules the answers to refused requests.
#[derive(Debug)]
pub struct ShedGate {
    base: Instant,
    delay: Duration,
    /// Nanoseconds between two refusals' answers.
    interval_ns: u64,
    /// The next free answer slot, in nanoseconds since `base`.
    next_ns: AtomicU64,
}

impl ShedGate {
    /// `delay`: the least wait of a refusal; `rate`: refusals answered per
    /// second at most (beyond the longest wait).
    pub fn new(delay: Duration, rate: u32) -> Self {
        Self {
            base: Instant::now(),
            delay,
            interval_ns: 1_000_000_000 / u64::from(rate.max(1)),
            next_ns: AtomicU64::new(0),
        }
    }

    /// The least wait of a refusal.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// When to answer a request refused at `now`.
    pub fn answer_at(&self, now: Instant) -> Instant {
        if self.delay.is_zero() {
            return now;
        }
        let now_ns = now.saturating_duration_since(self.base).as_nanos() as u64;
        let earliest = now_ns + self.delay.as_nanos() as u64;
        let latest = now_ns + (self.delay * LONGEST_WAIT_IN_DELAYS).as_nanos() as u64;
        let interval = self.interval_ns;
        let previous = self
            .next_ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |next| {
                Some((next.max(earliest) + interval).min(latest))
            })
            .unwrap_or_else(|next| next);
        let slot = previous.max(earliest).min(latest);
        self.base + Duration::from_nanos(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(gate: &ShedGate, at: Instant, count: usize) -> Vec<Duration> {
        (0..count).map(|_| gate.answer_at(at) - at).collect()
    }

    #[test]
    fn a_refusal_waits_at_least_the_delay() {
        let gate = ShedGate::new(Duration::from_secs(1), 1000);
        let now = Instant::now();
        assert_eq!(gate.answer_at(now) - now, Duration::from_secs(1));
        // A second later, the slots have passed: again the delay.
        let later = now + Duration::from_secs(5);
        assert_eq!(gate.answer_at(later) - later, Duration::from_secs(1));
    }

    #[test]
    fn refusals_together_are_spread_at_the_rate() {
        let gate = ShedGate::new(Duration::from_secs(1), 100);
        let now = Instant::now();
        let waits = offsets(&gate, now, 3);
        assert_eq!(
            waits,
            [1000, 1010, 1020].map(Duration::from_millis).to_vec(),
            "100 a second: 10 ms apart"
        );
    }

    #[test]
    fn a_crowd_waits_ten_delays_at_most() {
        // 10,000 refusals at once at 100 a second would take 100 s: the
        // ones past 10 s are answered at 10 s.
        let gate = ShedGate::new(Duration::from_secs(1), 100);
        let now = Instant::now();
        let waits = offsets(&gate, now, 10_000);
        assert_eq!(waits.iter().max(), Some(&Duration::from_secs(10)));
        assert_eq!(waits[900], Duration::from_secs(10));
        assert_eq!(waits[899], Duration::from_millis(9990));
        // The slots do not run away: 10 s later a refusal waits the delay.
        let later = now + Duration::from_secs(10);
        assert_eq!(gate.answer_at(later) - later, Duration::from_secs(1));
    }

    #[test]
    fn zero_delay_answers_at_once() {
        let gate = ShedGate::new(Duration::ZERO, 100);
        let now = Instant::now();
        assert_eq!(offsets(&gate, now, 3), vec![Duration::ZERO; 3]);
    }
}

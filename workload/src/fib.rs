//! The deliberately recursive Fibonacci: the CPU load the autoscaler scales on.
//!
//! `fibo(n) = n > 1 ? fibo(n-1) + fibo(n-2) : 1`, so `fibo(30) = 1346269` and
//! `fibo(35) = 14930352`. It is exponential on purpose and must never be
//! memoised: the recursion *is* the load.

/// Largest `n` whose result fits a `u64` (`fibo(92) = 12200160415121876738`).
pub const MAX_REPRESENTABLE_N: u32 = 92;

/// Subtrees at or below this `n` run in one go (well under a millisecond);
/// above it [`fibo_paced`] calls its pacing hook between subtrees, which is
/// how a CPU cap holds with fine granularity even for one long request.
pub const PACE_CHUNK_N: u32 = 22;

/// The plain recursion, as the reference Node.js service computes it.
/// Never inlined, so the service and its benchmark run the same machine code.
#[inline(never)]
pub fn fibo(n: u32) -> u64 {
    if n > 1 { fibo(n - 1) + fibo(n - 2) } else { 1 }
}

/// The same recursion (the same calls, the same result) with `pace` called
/// after every subtree of size [`PACE_CHUNK_N`] or less, so a caller can
/// sleep to keep within a CPU budget.
pub fn fibo_paced(n: u32, pace: &mut impl FnMut()) -> u64 {
    if n <= PACE_CHUNK_N {
        let value = fibo(n);
        pace();
        value
    } else {
        fibo_paced(n - 1, pace) + fibo_paced(n - 2, pace)
    }
}

/// How many calls the recursion makes for `n`: `calls(n) = 1 + calls(n-1) +
/// calls(n-2)`, which is `2 * fibo(n) - 1`; as `f64` (it passes `u64` at 92).
/// The compute pool sizes a job's expected time with it.
pub fn calls(n: u32) -> f64 {
    let (mut a, mut b) = (1.0f64, 1.0f64); // fibo(0), fibo(1)
    for _ in 1..n {
        (a, b) = (b, a + b);
    }
    2.0 * b - 1.0
}

/// Bare `fibo(n)` throughput on `threads` threads computing at once.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Calibration {
    pub n: u32,
    pub threads: usize,
    pub calls: u64,
    pub elapsed_s: f64,
    /// Mean time of one call on one thread.
    pub per_call_ms: f64,
    /// Calls per second, all threads together.
    pub calls_per_s: f64,
    /// CPU time the computing threads used.
    pub cpu_s: f64,
    /// Calls per CPU-second: what one core computes when it is not shared.
    /// Unlike `calls_per_s` this holds on a busy machine, so it is what
    /// load sizing and CPU-utilisation predictions use.
    pub calls_per_cpu_s: f64,
}

/// Computes `fibo(n)` in a loop on `threads` threads for about `duration`.
pub fn calibrate(n: u32, duration: std::time::Duration, threads: usize) -> Calibration {
    use std::hint::black_box;
    let threads = threads.max(1);
    let started = std::time::Instant::now();
    let (calls, cpu) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let cpu_before = crate::cpu::thread_cpu_time();
                    let mut calls = 0u64;
                    while started.elapsed() < duration {
                        black_box(fibo(black_box(n)));
                        calls += 1;
                    }
                    (calls, crate::cpu::thread_cpu_time().saturating_sub(cpu_before))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .fold((0u64, std::time::Duration::ZERO), |(calls, cpu), (c, t)| {
                (calls + c, cpu + t)
            })
    });
    let elapsed_s = started.elapsed().as_secs_f64();
    let calls_per_s = calls as f64 / elapsed_s;
    let cpu_s = cpu.as_secs_f64();
    Calibration {
        n,
        threads,
        calls,
        elapsed_s,
        per_call_ms: 1e3 * threads as f64 / calls_per_s,
        calls_per_s,
        cpu_s,
        calls_per_cpu_s: if cpu_s > 0.0 {
            calls as f64 / cpu_s
        } else {
            calls_per_s / threads as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_match_the_reference_definition() {
        let cases = [(0, 1), (1, 1), (2, 2), (3, 3), (10, 89), (20, 10946), (30, 1_346_269)];
        for (n, expected) in cases {
            assert_eq!(fibo(n), expected, "fibo({n})");
        }
    }

    #[test]
    fn calls_counts_every_call_of_the_recursion() {
        fn counted(n: u32, calls: &mut u64) -> u64 {
            *calls += 1;
            if n > 1 {
                counted(n - 1, calls) + counted(n - 2, calls)
            } else {
                1
            }
        }
        for n in [0, 1, 2, 3, 10, 20, 25] {
            let mut count = 0;
            counted(n, &mut count);
            assert_eq!(calls(n), count as f64, "n = {n}");
        }
        assert!(calls(92) > u64::MAX as f64, "2 * fibo(92) - 1 does not fit u64");
    }

    #[test]
    fn fibo_35_is_the_documented_value() {
        assert_eq!(fibo_paced(35, &mut || {}), 14_930_352);
    }

    #[test]
    fn paced_variant_computes_the_same_values_and_paces_long_runs() {
        for n in [0, 1, 5, PACE_CHUNK_N, PACE_CHUNK_N + 1, PACE_CHUNK_N + 4] {
            let mut calls = 0u64;
            assert_eq!(fibo_paced(n, &mut || calls += 1), fibo(n), "n = {n}");
            // One pace per chunk: above the chunk size the tree of chunks has
            // fibo(n - CHUNK + 1) leaves (same recurrence, shifted), else one.
            let expected = if n <= PACE_CHUNK_N {
                1
            } else {
                fibo(n - PACE_CHUNK_N + 1)
            };
            assert_eq!(calls, expected, "pace calls for n = {n}");
        }
    }

    #[test]
    fn calibration_counts_calls() {
        let c = calibrate(15, std::time::Duration::from_millis(50), 2);
        assert_eq!((c.n, c.threads), (15, 2));
        assert!(c.calls > 0 && c.elapsed_s >= 0.05, "{c:?}");
        assert!((c.calls_per_s * c.per_call_ms / 1e3 - 2.0).abs() < 1e-9);
        // Two threads cannot use more CPU than twice the wall time.
        assert!(c.cpu_s > 0.0 && c.cpu_s <= 2.0 * c.elapsed_s * 1.01, "{c:?}");
        assert!((c.calls_per_cpu_s * c.cpu_s - c.calls as f64).abs() < 1e-6, "{c:?}");
    }

    #[test]
    fn largest_representable_n_does_not_overflow_by_the_closed_form() {
        // Iterative check of the bound (the recursion itself would take ages).
        let (mut a, mut b) = (1u64, 1u64); // fibo(0), fibo(1)
        for _ in 2..=MAX_REPRESENTABLE_N {
            let next = a.checked_add(b).expect("fibo(92) fits u64");
            a = b;
            b = next;
        }
        assert_eq!(b, 12_200_160_415_121_876_738);
        assert!(a.checked_add(b).is_none(), "fibo(93) overflows u64");
    }
}

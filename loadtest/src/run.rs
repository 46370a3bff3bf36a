//! `loadtest run`: drive the engine, gather its batches into the total and a
//! per-second timeline, show progress on a terminal, and report (human
//! summary, JSON, checked expectations).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::engine::{Batch, Live, Mode, Plan, run};
use crate::stats::Stats;

/// The statistics of a run.
#[derive(Debug)]
pub struct Outcome {
    pub total: Stats,
    /// Per second of the run (by completion time).
    pub seconds: BTreeMap<u64, Stats>,
    pub elapsed: Duration,
}

/// Runs a plan to the end, with a progress line on stderr when it is a terminal.
pub async fn execute(plan: Plan) -> Outcome {
    let (tx, mut rx) = mpsc::unbounded_channel::<Batch>();
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let engine = tokio::spawn(run(plan.clone(), tx, live.clone()));
    let progress = std::io::stderr().is_terminal().then(|| {
        let live = live.clone();
        let duration = plan.duration;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last = 0u64;
            loop {
                tick.tick().await;
                let requests = live.requests.load(Ordering::Relaxed);
                eprint!(
                    "\r{:>5.0}/{}s  {} requests  {} req/s  {} failed   ",
                    started.elapsed().as_secs_f64(),
                    duration.as_secs(),
                    requests,
                    requests - last,
                    live.failures.load(Ordering::Relaxed)
                );
                last = requests;
            }
        })
    });
    let mut total = Stats::default();
    let mut seconds: BTreeMap<u64, Stats> = BTreeMap::new();
    while let Some(batch) = rx.recv().await {
        total.merge(&batch.stats);
        seconds.entry(batch.second).or_default().merge(&batch.stats);
    }
    let _ = engine.await;
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    Outcome {
        total,
        seconds,
        elapsed: started.elapsed(),
    }
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondReport {
    pub second: u64,
    pub requests: u64,
    pub failures: u64,
    pub p99_ms: f64,
}

/// The JSON report of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    pub url: String,
    pub mode: String,
    pub elapsed_s: f64,
    pub requests: u64,
    pub successes: u64,
    pub success_percent: f64,
    pub requests_per_second: f64,
    pub latency_ms: LatencyReport,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Answers per instance (private IP), from the workload's text.
    pub instances: BTreeMap<String, u64>,
    pub timeline: Vec<SecondReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyReport {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl RunReport {
    pub fn new(plan: &Plan, outcome: &Outcome) -> Self {
        let t = &outcome.total;
        Self {
            url: plan.url.to_string(),
            mode: match &plan.mode {
                Mode::Closed { connections } => format!("closed loop, {connections} connections"),
                Mode::Open { connections, ramp } => format!(
                    "open loop, up to {connections} connections, rate {}",
                    ramp.points
                        .iter()
                        .map(|(t, r)| format!("{t}s:{r}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            },
            elapsed_s: outcome.elapsed.as_secs_f64(),
            requests: t.requests,
            successes: t.successes,
            success_percent: if t.requests == 0 {
                0.0
            } else {
                100.0 * t.successes as f64 / t.requests as f64
            },
            requests_per_second: t.requests as f64 / outcome.elapsed.as_secs_f64().max(1e-9),
            latency_ms: LatencyReport {
                p50: ms(t.quantile(0.5)),
                p90: ms(t.quantile(0.9)),
                p99: ms(t.quantile(0.99)),
                p999: ms(t.quantile(0.999)),
                max: ms(t.max()),
                mean: ms(t.mean()),
            },
            statuses: t.statuses.clone(),
            errors: t.errors.iter().map(|(k, v)| (k.name().to_string(), *v)).collect(),
            instances: t.instances.clone(),
            timeline: outcome
                .seconds
                .iter()
                .map(|(second, s)| SecondReport {
                    second: *second,
                    requests: s.requests,
                    failures: s.failures(),
                    p99_ms: ms(s.quantile(0.99)),
                })
                .collect(),
        }
    }

    /// The human summary.
    pub fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "{} ({})", self.url, self.mode)?;
        writeln!(
            out,
            "  {} requests in {:.1} s: {:.1} req/s, {:.2}% succeeded",
            self.requests, self.elapsed_s, self.requests_per_second, self.success_percent
        )?;
        let l = &self.latency_ms;
        writeln!(
            out,
            "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        )?;
        let statuses: Vec<String> = self.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        writeln!(
            out,
            "  status codes: {}",
            if statuses.is_empty() {
                "none".into()
            } else {
                statuses.join(", ")
            }
        )?;
        if !self.errors.is_empty() {
            let errors: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            writeln!(out, "  errors: {}", errors.join(", "))?;
        }
        if !self.instances.is_empty() {
            writeln!(out, "  answered by:")?;
            let total: u64 = self.instances.values().sum();
            for (ip, n) in &self.instances {
                writeln!(out, "    {ip:<15} {n:>8} ({:.1}%)", 100.0 * *n as f64 / total as f64)?;
            }
        }
        Ok(())
    }
}

/// One expectation of `--check`: `success>=99.9`, `p99<=200ms`, `rps>=100`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub text: String,
    measure: Measure,
    at_least: bool,
    bound: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    SuccessPercent,
    Rps,
    LatencyMs(f64),
    Requests,
}

impl Expectation {
    /// A comma-separated list.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| Self::parse(p.trim()))
            .collect()
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let allowed = "expected NAME>=VALUE or NAME<=VALUE with NAME one of success (percent), rps, requests, p50, p90, p99, p99.9, max (latency, e.g. 200ms)";
        let (name, at_least, value) = if let Some((n, v)) = text.split_once(">=") {
            (n, true, v)
        } else if let Some((n, v)) = text.split_once("<=") {
            (n, false, v)
        } else {
            return Err(format!("{text:?}: {allowed}"));
        };
        let name = name.trim();
        let value = value.trim();
        let number = |v: &str| v.trim_end_matches('%').parse::<f64>().ok().filter(|v| v.is_finite());
        let (measure, bound) = match name {
            "success" => (Measure::SuccessPercent, number(value)),
            "rps" => (Measure::Rps, number(value)),
            "requests" => (Measure::Requests, number(value)),
            "p50" | "p90" | "p99" | "p99.9" | "max" => {
                let q = match name {
                    "p50" => 0.5,
                    "p90" => 0.9,
                    "p99" => 0.99,
                    "p99.9" => 0.999,
                    _ => 1.0,
                };
                (
                    Measure::LatencyMs(q),
                    humantime::parse_duration(value).ok().map(|d| d.as_secs_f64() * 1e3),
                )
            }
            _ => return Err(format!("{text:?}: unknown measure {name:?}; {allowed}")),
        };
        let bound = bound.ok_or_else(|| format!("{text:?}: bad value {value:?}; {allowed}"))?;
        Ok(Self {
            text: text.to_string(),
            measure,
            at_least,
            bound,
        })
    }

    /// The measured value and whether it meets the expectation.
    pub fn check(&self, report: &RunReport) -> (f64, bool) {
        let value = match self.measure {
            Measure::SuccessPercent => report.success_percent,
            Measure::Rps => report.requests_per_second,
            Measure::Requests => report.requests as f64,
            Measure::LatencyMs(q) => match q {
                0.5 => report.latency_ms.p50,
                0.9 => report.latency_ms.p90,
                0.99 => report.latency_ms.p99,
                0.999 => report.latency_ms.p999,
                _ => report.latency_ms.max,
            },
        };
        (
            value,
            if self.at_least {
                value >= self.bound
            } else {
                value <= self.bound
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunReport {
        let plan = Plan {
            url: "http://127.0.0.1:1/fibo/10".parse().expect("uri"),
            mode: Mode::Closed { connections: 2 },
            duration: Duration::from_secs(1),
            max_requests: None,
            timeout: Duration::from_secs(1),
        };
        let mut total = Stats::default();
        for ms in [1u64, 2, 3, 4, 100] {
            total.push(
                Duration::from_millis(ms),
                &crate::stats::Outcome::Answer {
                    status: 200,
                    instance: Some("127.0.1.1".into()),
                },
            );
        }
        total.push(
            Duration::from_millis(5),
            &crate::stats::Outcome::Error(crate::stats::ErrorKind::Connect),
        );
        let mut seconds = BTreeMap::new();
        seconds.insert(0, total.clone());
        RunReport::new(
            &plan,
            &Outcome {
                total,
                seconds,
                elapsed: Duration::from_secs(2),
            },
        )
    }

    #[test]
    fn the_summary_names_everything() {
        let mut out = Vec::new();
        report().print(&mut out).expect("print");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("6 requests in 2.0 s: 3.0 req/s, 83.33% succeeded"),
            "{text}"
        );
        assert!(text.contains("status codes: 200: 5"), "{text}");
        assert!(text.contains("errors: connect: 1"), "{text}");
        assert!(text.contains("127.0.1.1              5 (100.0%)"), "{text}");
    }

    #[test]
    fn expectations_parse_and_check() {
        let r = report();
        let list = Expectation::parse_list("success>=80,p99<=200ms,rps>=3,requests>=7").expect("parse");
        let results: Vec<bool> = list.iter().map(|e| e.check(&r).1).collect();
        assert_eq!(results, [true, true, true, false]);
        for (bad, expected) in [
            ("success=1", "expected NAME>=VALUE"),
            ("speed>=1", "unknown measure"),
            ("p99<=fast", "bad value"),
        ] {
            let error = Expectation::parse(bad).expect_err(bad);
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }
}

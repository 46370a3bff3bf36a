//! The report: activity table, assertions, JSON and chart.

use std::io::Write;
use std::sync::atomic::Ordering;

use jiff::Timestamp;

use crate::chart::{Chart, Series, stack};

use super::*;

pub(super) fn minutes(at: Timestamp, from: Timestamp) -> String {
    let s = at.duration_since(from).as_secs_f64();
    format!("{:.1} min", s / 60.0)
}

pub(super) async fn report<T: Target>(
    watch: &Watch<'_, T>,
    settings: &Scenario,
    group: &Limits,
    rate: f64,
    assertions: Vec<Assertion>,
) -> Report {
    let since = watch.samples.first().map_or(Timestamp::UNIX_EPOCH, |s| s.at) - jiff::SignedDuration::from_mins(10);
    let activities = watch
        .target
        .activities(since)
        .await
        .into_iter()
        .map(|c| ActivityRow {
            // When the in-service count reached the new desired.
            end: watch
                .samples
                .iter()
                .find(|s| s.at >= c.start && s.in_service == c.to)
                .map(|s| s.at),
            ..c
        })
        .collect();
    let passed = !assertions.is_empty() && assertions.iter().all(|a| a.passed);
    // Now every second is complete: the p99 of the 5 seconds before each sample.
    let samples = watch
        .samples
        .iter()
        .map(|s| Sample {
            p99_ms: s
                .load_second
                .and_then(|second| p99_over(&watch.seconds, second.saturating_sub(5), second.saturating_sub(1))),
            ..s.clone()
        })
        .collect();
    Report {
        target: watch.target.kind().into(),
        group: group.group.clone(),
        speed: watch.target.speed(),
        min: group.min,
        max: group.max,
        request_rate: rate,
        fibo_n: settings.n,
        requests: watch.live.requests.load(Ordering::Relaxed),
        failures: watch.live.failures.load(Ordering::Relaxed),
        activities,
        instance_activities: watch.target.instance_activities(),
        assertions,
        samples,
        passed,
    }
}

/// The activity table and the assertions.
pub fn print_report(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let clock = if report.target == "local" {
        format!("UTC, cloud time at {}x", report.speed)
    } else {
        "UTC".to_string()
    };
    writeln!(out, "\nscaling activities of group {} ({clock}):", report.group)?;
    writeln!(out, "  {:<8} {:<8} {:<9} CAUSE", "START", "END", "CHANGE")?;
    for a in &report.activities {
        writeln!(
            out,
            "  {:<8} {:<8} {:<9} {}",
            a.start.strftime("%H:%M:%S"),
            a.end
                .map_or_else(|| "-".to_string(), |e| e.strftime("%H:%M:%S").to_string()),
            format!("{} -> {}", a.from, a.to),
            a.reason.as_deref().unwrap_or(&a.cause)
        )?;
    }
    if report.request_rate > 0.0 {
        writeln!(
            out,
            "\nload: {} requests at {:.0} req/s of /fibo/{}, {} without a 2xx answer (shed while the group was too small)",
            report.requests, report.request_rate, report.fibo_n, report.failures
        )?;
    } else {
        writeln!(out, "\nno load sent")?;
    }
    writeln!(out, "\nassertions ({clock}):")?;
    for a in &report.assertions {
        writeln!(
            out,
            "  {} {} ({})",
            if a.passed { "PASS" } else { "FAIL" },
            a.name,
            a.detail
        )?;
    }
    writeln!(
        out,
        "\n{}",
        if report.passed {
            "verify: PASSED"
        } else {
            "verify: FAILED"
        }
    )
}

/// Instances, CPU, request rate and p99 over time.
pub fn chart(report: &Report) -> String {
    let points = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<(Timestamp, f64)> {
        report.samples.iter().filter_map(|s| f(s).map(|v| (s.at, v))).collect()
    };
    stack(&[
        Chart {
            title: if report.target == "local" {
                format!("verify: group {} at speed {}x (cloud time)", report.group, report.speed)
            } else {
                format!("verify: group {} on AWS", report.group)
            },
            y_label: "instances".into(),
            series: vec![
                Series {
                    name: "desired".into(),
                    color: "#1f77b4".into(),
                    points: points(&|s| Some(f64::from(s.desired))),
                },
                Series {
                    name: "in service".into(),
                    color: "#2ca02c".into(),
                    points: points(&|s| Some(f64::from(s.in_service))),
                },
            ],
            x_range: None,
        },
        Chart {
            title: "group CPU utilisation (% of the instances' caps, one-minute average)".into(),
            y_label: "CPU %".into(),
            series: vec![Series {
                name: "CPU".into(),
                color: "#d62728".into(),
                points: points(&|s| s.cpu_percent),
            }],
            x_range: None,
        },
        Chart {
            title: "load through the load balancer".into(),
            y_label: "requests/s".into(),
            series: vec![
                Series {
                    name: "requests/s".into(),
                    color: "#9467bd".into(),
                    points: points(&|s| Some(s.requests_per_second)),
                },
                Series {
                    name: "failed/s".into(),
                    color: "#ff7f0e".into(),
                    points: points(&|s| Some(s.failures_per_second)),
                },
            ],
            x_range: None,
        },
        Chart {
            title: "latency".into(),
            y_label: "p99 ms".into(),
            series: vec![Series {
                name: "p99".into(),
                color: "#8c564b".into(),
                points: points(&|s| s.p99_ms),
            }],
            x_range: None,
        },
    ])
}

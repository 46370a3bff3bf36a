//! How a backtest is shown: the human summary, the side-by-side
//! comparison and the chart of instances against the load and the oracle.

use std::io::Write;

use super::{Model, Report};
use crate::chart::{Chart, Series};

/// A short name for a policy file: its stem.
pub fn label(path: &std::path::Path) -> String {
    path.file_stem()
        .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// Instances over time for every replay, against the instances the load needs.
pub fn chart_of(trace: &std::path::Path, reports: &[(String, Report)], model: &Model, oracle: &[u32]) -> Chart {
    const COLORS: [&str; 6] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
    let needed = reports[0]
        .1
        .timeline
        .iter()
        .map(|m| (m.at, m.rps / model.capacity_rps))
        .collect();
    let mut series = vec![Series {
        name: format!("load / {} req/s (instances needed)", model.capacity_rps),
        color: "#999999".into(),
        points: needed,
    }];
    series.push(Series {
        name: format!("oracle at {:.0}%: instances", 100.0 * model.oracle_utilisation),
        color: "#17becf".into(),
        points: reports[0]
            .1
            .timeline
            .iter()
            .zip(oracle)
            .map(|(m, &n)| (m.at, f64::from(n)))
            .collect(),
    });
    for (k, (name, report)) in reports.iter().enumerate() {
        series.push(Series {
            name: format!("{name}: instances"),
            color: COLORS[k % COLORS.len()].into(),
            points: report.timeline.iter().map(|m| (m.at, f64::from(m.instances))).collect(),
        });
    }
    Chart {
        title: format!("backtest of {}", label(trace)),
        y_label: "instances".into(),
        series,
        x_range: None,
    }
}

/// How one measure of a report is shown.
pub type Cell = Box<dyn Fn(&Report) -> String>;

/// Side by side: one row per measure, one column per replay.
pub fn print_comparison(out: &mut impl Write, reports: &[(String, Report)]) -> std::io::Result<()> {
    let minutes = |m: Option<u64>| m.map_or_else(|| "never".to_string(), |m| m.to_string());
    let rows: Vec<(&str, Cell)> = vec![
        ("instance-hours", Box::new(|r| format!("{:.1}", r.instance_hours))),
        ("cost", Box::new(|r| format!("{:.2}", r.cost))),
        ("x oracle", Box::new(|r| format!("{:.3}", r.ratio_to_oracle))),
        ("x fixed at peak", Box::new(|r| format!("{:.3}", r.ratio_to_fixed_peak))),
        (
            "requests over capacity",
            Box::new(|r| format!("{:.3}%", 100.0 * r.over_capacity_fraction)),
        ),
        (
            "minutes over capacity",
            Box::new(|r| r.minutes_over_capacity.to_string()),
        ),
        ("highest utilisation", Box::new(|r| utilisation(r.highest_cpu_percent))),
        ("scaling actions", Box::new(|r| r.scaling_actions.to_string())),
        (
            "worst min to capacity",
            Box::new(move |r| {
                let worst = r
                    .surges
                    .iter()
                    .map(|s| s.minutes_to_capacity)
                    .max_by_key(|m| m.unwrap_or(u64::MAX));
                worst.map_or_else(|| "-".into(), minutes)
            }),
        ),
        (
            "most actions a surge",
            Box::new(|r| {
                r.surges
                    .iter()
                    .map(|s| s.scaling_actions)
                    .max()
                    .map_or_else(|| "-".into(), |n| n.to_string())
            }),
        ),
        (
            "worst min back to base",
            Box::new(move |r| {
                let worst = r
                    .surges
                    .iter()
                    .map(|s| s.minutes_back_to_baseline)
                    .max_by_key(|m| m.unwrap_or(u64::MAX));
                worst.map_or_else(|| "-".into(), minutes)
            }),
        ),
    ];
    let width = reports.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(10);
    write!(out, "{:<24}", "")?;
    for (name, _) in reports {
        write!(out, " {name:>width$}")?;
    }
    writeln!(out)?;
    for (title, cell) in &rows {
        write!(out, "{title:<24}")?;
        for (_, report) in reports {
            write!(out, " {:>width$}", cell(report))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The human summary of one replay.
pub fn print_summary(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "model: one instance serves {} req/s at 100% CPU, boots in {}, costs {}/h; CloudWatch shows a minute {} after it starts",
        r.model.capacity_rps,
        humantime::format_duration(r.model.boot),
        r.model.price_per_hour,
        humantime::format_duration(r.model.ingestion_delay)
    )?;
    if r.warm_pool {
        writeln!(
            out,
            "warm pool: an initialised instance goes from the pool to in service in {}; a stopped one is not billed",
            humantime::format_duration(r.model.warm_start)
        )?;
    }
    writeln!(
        out,
        "group {} over {} minutes ({:.1} h)",
        r.group,
        r.minutes,
        r.minutes as f64 / 60.0
    )?;
    writeln!(
        out,
        "  instance-hours      {:.1} (cost {:.2}) = {:.3} x a fleet fixed at the peak ({} instances, {:.1} h)",
        r.instance_hours, r.cost, r.ratio_to_fixed_peak, r.fixed_peak_instances, r.fixed_peak_instance_hours
    )?;
    writeln!(
        out,
        "  vs the oracle       {:.3} x its {:.1} instance-hours (each minute ceil(load / {:.0}% of capacity) in service, at least min, launched a boot time ahead)",
        r.ratio_to_oracle,
        r.oracle_instance_hours,
        100.0 * r.model.oracle_utilisation
    )?;
    writeln!(
        out,
        "  over capacity       {:.0} of {:.0} requests ({:.3}%), {} minutes",
        r.requests_over_capacity,
        r.requests,
        100.0 * r.over_capacity_fraction,
        r.minutes_over_capacity
    )?;
    writeln!(out, "  highest utilisation {}", utilisation(r.highest_cpu_percent))?;
    writeln!(out, "  scaling actions     {}", r.scaling_actions)?;
    let longest = r.shortfalls.iter().map(|s| s.minutes).max().unwrap_or(0);
    writeln!(
        out,
        "  shortfalls          {} (longest {} min)",
        r.shortfalls.len(),
        longest
    )?;
    for s in &r.surges {
        let minutes = |m: Option<u64>| m.map_or_else(|| "never".to_string(), |m| format!("{m} min"));
        writeln!(
            out,
            "  surge at {}: {:.0} -> {:.0} req/s; capacity after {}, {} actions, back to {} instances {} after",
            s.onset,
            s.baseline_rps,
            s.peak_rps,
            minutes(s.minutes_to_capacity),
            s.scaling_actions,
            s.instances_before,
            minutes(s.minutes_back_to_baseline)
        )?;
    }
    Ok(())
}

/// The highest utilisation, or why there is none (requests came while no
/// instance was in service: a group scaling from zero).
pub fn utilisation(percent: f64) -> String {
    if percent.is_finite() {
        format!("{percent:.0}%")
    } else {
        "unbounded (requests with no instance in service)".into()
    }
}

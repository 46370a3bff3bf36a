//! `loadtest backtest`: a trace replayed through a policy, printed.

use crate::*;

pub(crate) fn backtest_cli(command: Command) -> Result<()> {
    let Command::Backtest {
        trace: trace_path,
        policy: policy_path,
        group,
        capacity_rps,
        boot,
        warm_start,
        ingestion_delay,
        oracle_utilisation,
        price,
        compare,
        json,
        chart,
    } = command
    else {
        unreachable!("called with a backtest");
    };
    if warm_start > boot {
        anyhow::bail!(
            "--warm-start {}: at most --boot ({}): an initialised instance does not start slower than a new one",
            humantime::format_duration(warm_start),
            humantime::format_duration(boot)
        );
    }
    let trace = Trace::load(&trace_path)?;
    let model = Model {
        capacity_rps,
        boot,
        price_per_hour: price,
        ingestion_delay,
        oracle_utilisation,
        warm_start,
    };
    // Everything is loaded and checked before anything runs.
    let main = pick_group(&Policy::load(&policy_path)?, group.as_deref(), true)?;
    let mut runs = vec![(label(&policy_path), main)];
    for entry in &compare {
        let entry = entry.trim();
        if entry == "fixed-peak" {
            let instances = peak_instances(&trace, &model);
            runs.push(("fixed-peak".into(), fixed_fleet("fixed-peak", instances)?));
        } else if entry.is_empty() {
            anyhow::bail!("--compare: empty entry; allowed: fixed-peak or a policy file, comma-separated");
        } else {
            let path = PathBuf::from(entry);
            let policy = Policy::load(&path).with_context(|| {
                format!("--compare {entry:?}: allowed: fixed-peak or a policy file, comma-separated")
            })?;
            runs.push((label(&path), pick_group(&policy, group.as_deref(), false)?));
        }
    }
    let oracle_billed = oracle_instances(&trace, &model, runs[0].1.min);
    let mut reports: Vec<(String, Report)> = runs
        .into_iter()
        .map(|(name, group)| {
            let report = run(&trace, &group, model).with_context(|| format!("backtest of {name}"))?;
            Ok((name, report))
        })
        .collect::<Result<_>>()?;
    // The fixed fleet's min is its size: it is judged by the policy's oracle.
    let oracle = reports[0].1.oracle_instance_hours;
    for (name, report) in &mut reports {
        if name == "fixed-peak" {
            report.set_oracle(oracle);
        }
    }

    if let Some(path) = &chart {
        std::fs::write(path, chart_of(&trace_path, &reports, &model, &oracle_billed).to_svg())
            .with_context(|| format!("--chart {}: could not write", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        if compare.is_empty() {
            serde_json::to_writer_pretty(&mut out, &reports[0].1)?;
        } else {
            let all: Vec<&Report> = reports.iter().map(|(_, r)| r).collect();
            serde_json::to_writer_pretty(&mut out, &all)?;
        }
        writeln!(out)?;
    } else {
        print_summary(&mut out, &reports[0].1)?;
        if reports.len() > 1 {
            writeln!(out)?;
            print_comparison(&mut out, &reports)?;
        }
        if let Some(path) = &chart {
            writeln!(out, "chart written to {}", path.display())?;
        }
    }
    Ok(())
}

/// The group to replay from a policy file: the one named, or the first.
/// A compared file without that name falls back to its first group.
pub(crate) fn pick_group(policy: &Policy, name: Option<&str>, strict: bool) -> Result<GroupPolicy> {
    match name {
        Some(name) if !strict && policy.group(name).is_none() => Ok(policy.groups[0].clone()),
        _ => loadtest::verify::pick_group(policy, name),
    }
}

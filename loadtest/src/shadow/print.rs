//! The shadow report, printed.

use super::*;

/// The human report.
pub fn print(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let t = |at: Timestamp| at.strftime("%Y-%m-%d %H:%M").to_string();
    writeln!(
        out,
        "shadow report of group {} from {} to {} UTC ({} minutes; one instance serves {:.1} req/s at 100% CPU; boot {} s)",
        report.group,
        t(report.from),
        t(report.until),
        report.minutes,
        report.capacity_rps,
        report.boot_s
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "  {:<22} {:>15} {:>17} {:>15} {:>11} {:>10} {:>5}",
        "", "instance-hours", "shortfall minutes", "over capacity", "scale-outs", "scale-ins", "peak"
    )?;
    for (name, s) in [("actual (its own)", &report.actual), ("ours (dry run)", &report.ours)] {
        writeln!(
            out,
            "  {:<22} {:>15.2} {:>17} {:>14.2}% {:>11} {:>10} {:>5}",
            name,
            s.instance_hours,
            s.shortfall_minutes,
            s.over_capacity_share * 100.0,
            s.scale_outs,
            s.scale_ins,
            s.peak
        )?;
    }
    writeln!(out)?;
    if report.actual.instance_hours > 0.0 {
        writeln!(
            out,
            "ours / actual instance-hours: {:.3}",
            report.ours.instance_hours / report.actual.instance_hours
        )?;
    }
    writeln!(
        out,
        "where ours would have scaled ({} dry-run decisions, {} asking for a change):",
        report.dry_run_decisions,
        report.would_have_scaled.iter().map(|d| d.decisions).sum::<u32>()
    )?;
    if report.would_have_scaled.is_empty() {
        writeln!(out, "  nowhere: every dry-run decision held what the group had")?;
    }
    for d in &report.would_have_scaled {
        let span = if d.decisions > 1 {
            format!(
                "{} to {} ({} decisions)",
                t(d.first),
                d.last.strftime("%H:%M"),
                d.decisions
            )
        } else {
            t(d.first)
        };
        writeln!(out, "  {span}: {} -> {}  {}", d.from, d.to, d.reason)?;
    }
    writeln!(out, "what the group did ({} changes):", report.actual_changes.len())?;
    for c in &report.actual_changes {
        writeln!(out, "  {}: {} -> {}  {}", t(c.at), c.from, c.to, c.cause)?;
    }
    Ok(())
}

//! The human status view: groups, instances, the load balancer's view of
//! them, and recent activities, written to any `Write`.

use std::io::Write;

use crate::cloud::Status;
use crate::group::State;

/// Writes the status view.
pub fn print_status(out: &mut impl Write, status: &Status, activities: usize) -> std::io::Result<()> {
    writeln!(
        out,
        "cloud time {} (speed {}x)",
        status.now.strftime("%Y-%m-%d %H:%M:%S"),
        status.speed
    )?;
    for g in &status.groups {
        let in_service = g
            .instances
            .iter()
            .filter(|i| i.instance.state == State::InService)
            .count();
        writeln!(
            out,
            "\ngroup {}: min {} max {} desired {}, {} in service; load balancer {} ({} requests, {} errors, {} retries)",
            g.name,
            g.min,
            g.max,
            g.desired,
            in_service,
            g.load_balancer,
            g.lb_counters.requests,
            g.lb_counters.errors,
            g.lb_counters.retries
        )?;
        writeln!(
            out,
            "  {:<19} {:<9} {:<15} {:<12} {:<10} {:>8} LAUNCHED",
            "INSTANCE", "AZ", "ADDRESS", "STATE", "TARGET", "SERVED"
        )?;
        for i in &g.instances {
            let target = i.target.as_ref();
            writeln!(
                out,
                "  {:<19} {:<9} {:<15} {:<12} {:<10} {:>8} {}{}",
                i.instance.id,
                i.instance.az,
                i.instance.ip,
                format!("{:?}", i.instance.state),
                target.map_or_else(|| "-".to_string(), |t| format!("{:?}", t.health).to_lowercase()),
                target.map_or(0, |t| t.served),
                i.instance.launched_at.strftime("%H:%M:%S"),
                if i.instance.protected { " protected" } else { "" }
            )?;
        }
        if !g.activities.is_empty() {
            writeln!(out, "  recent activities:")?;
            for a in g.activities.iter().rev().take(activities).rev() {
                writeln!(
                    out,
                    "    {} - {}  {:<10} {}",
                    a.start.strftime("%H:%M:%S"),
                    a.end
                        .map_or_else(|| "        ".to_string(), |e| e.strftime("%H:%M:%S").to_string()),
                    format!("{:?}", a.status),
                    a.description
                )?;
                writeln!(out, "      cause: {}", a.cause)?;
            }
        }
    }
    if !status.alarms.is_empty() {
        writeln!(out, "\nalarms:")?;
        for a in &status.alarms {
            let values: Vec<String> = a
                .values
                .iter()
                .map(|v| v.map_or("-".into(), |v| format!("{v:.1}")))
                .collect();
            writeln!(
                out,
                "  {:<22} {:<18} since {}  last periods [{}]",
                a.name,
                format!("{:?}", a.state),
                a.state_since.strftime("%H:%M:%S"),
                values.join(", ")
            )?;
        }
    }
    if !status.invocations.is_empty() {
        writeln!(out, "\ndecisions (newest last):")?;
        for i in status.invocations.iter().rev().take(activities).rev() {
            let what = match (&i.result, &i.error) {
                (Some(result), _) => {
                    let reason = result["decision"]["reason"]
                        .as_str()
                        .or_else(|| result["reason"].as_str())
                        .unwrap_or("");
                    let acted = if result["acted"] == true { " (acted)" } else { "" };
                    format!("{reason}{acted}")
                }
                (None, Some(error)) => format!("error: {error}"),
                (None, None) => "pending".into(),
            };
            writeln!(
                out,
                "  {} {:<15} {}: {what}",
                i.at.strftime("%H:%M:%S"),
                i.function,
                i.event
            )?;
        }
    } else if !status.events.is_empty() {
        writeln!(out, "\nevents (no functions running):")?;
        for e in status.events.iter().rev().take(activities).rev() {
            writeln!(out, "  {} {}", e.at.strftime("%H:%M:%S"), e.summary)?;
        }
    }
    Ok(())
}

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
    Ok(())
}

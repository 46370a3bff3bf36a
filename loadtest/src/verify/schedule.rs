//! The schedule scenario, and where the load scenario's clock starts so
//! that no scheduled action fires during it.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use functions::policy::GroupPolicy;
use jiff::Timestamp;

use crate::engine::Live;

use super::*;

/// An upper bound of the cloud time the load scenario takes: instances in
/// service, every phase at its bound, and a margin.
pub(super) fn scenario_span(scenario: &Scenario, boot: Duration) -> Duration {
    let margin = Duration::from_secs(10 * 60);
    boot * 2
        + scenario.baseline
        + scenario.scale_out_within
        + scenario.hold
        + if scenario.kill_one {
            scenario.replace_within
        } else {
            Duration::ZERO
        }
        + scenario.scale_in_within
        + margin
}

/// The group's scheduled actions, parsed (those without an expression are
/// left out: validation refuses them).
pub(super) fn parsed_schedules(
    group: &GroupPolicy,
) -> Result<
    Vec<(
        functions::policy::Schedule,
        functions::schedule::ScheduleExpr,
        jiff::tz::TimeZone,
    )>,
> {
    let mut schedules = Vec::new();
    for schedule in &group.schedules {
        if schedule.expression().is_none() {
            continue;
        }
        let (expr, zone) = schedule
            .parsed()
            .map_err(|e| anyhow::anyhow!("schedule {}: {e}", schedule.name))?;
        schedules.push((schedule.clone(), expr, zone));
    }
    Ok(schedules)
}

/// The first start at or after `from` such that none of the group's
/// scheduled actions fires within `span` of it (searched up to 8 days
/// ahead), with a line saying why the clock moved; `from` itself, and no
/// line, when nothing fires. When every window has a firing (a rate
/// schedule shorter than the scenario), `from` and a warning line.
pub(super) fn quiet_start(group: &GroupPolicy, from: Timestamp, span: Duration) -> Result<(Timestamp, Option<String>)> {
    let schedules = parsed_schedules(group)?;
    let span = jiff::SignedDuration::try_from(span)?;
    let first_fire = |start: Timestamp| {
        schedules
            .iter()
            .filter_map(|(s, expr, zone)| {
                // next_after is strict: a firing exactly at `start` counts.
                let at = expr.next_after(start - jiff::SignedDuration::from_secs(1), zone)?;
                (at <= start + span).then(|| Firing {
                    at,
                    schedule: s.clone(),
                    zone: zone.clone(),
                })
            })
            .min_by_key(|f| f.at)
    };
    let Some(blocking) = first_fire(from) else {
        return Ok((from, None));
    };
    let limit = from + jiff::SignedDuration::from_hours(8 * 24);
    let mut start = blocking.at + jiff::SignedDuration::from_secs(60);
    while start <= limit {
        match first_fire(start) {
            None => {
                return Ok((
                    start,
                    Some(format!(
                        "local cloud clock set to {} UTC: from now, scheduled action {} would fire during the scenario (up to {} of cloud time)",
                        start.strftime("%Y-%m-%d %H:%M"),
                        blocking.describe(),
                        humantime::format_duration(Duration::try_from(span)?)
                    )),
                ));
            }
            Some(next) => start = next.at + jiff::SignedDuration::from_secs(60),
        }
    }
    Ok((
        from,
        Some(format!(
            "warning: every {} of the next 8 days has a scheduled action of group {} (first: {}); it may change the group's limits during the scenario",
            humantime::format_duration(Duration::try_from(span)?),
            group.name,
            blocking.describe()
        )),
    ))
}

/// One firing of a scheduled action, as the schedule scenario follows it.
pub(super) struct Firing {
    pub(super) at: Timestamp,
    pub(super) schedule: functions::policy::Schedule,
    pub(super) zone: jiff::tz::TimeZone,
}

impl Firing {
    /// e.g. `web-lunch-scale-out (min 4) at 11:00 Asia/Shanghai`.
    pub(super) fn describe(&self) -> String {
        let s = &self.schedule;
        let sets: Vec<String> = [("min", s.min), ("max", s.max), ("desired", s.desired)]
            .into_iter()
            .filter_map(|(k, v)| Some(format!("{k} {}", v?)))
            .collect();
        format!(
            "{} ({}) at {} {}",
            s.name,
            sets.join(", "),
            self.at.to_zoned_datetime(self.zone.clone()).strftime("%H:%M"),
            self.zone.iana_name().unwrap_or("UTC")
        )
    }

    /// Whether the group shows the action's settings.
    pub(super) fn applied(&self, observed: &Observed) -> bool {
        let s = &self.schedule;
        s.min.is_none_or(|v| observed.min == v)
            && s.max.is_none_or(|v| observed.max == v)
            && s.desired.is_none_or(|v| observed.desired == v)
    }
}

pub(super) async fn schedule_scenario<T: Target>(
    target: &T,
    group: &Limits,
    first: &Firing,
    second: Option<&Firing>,
    settings: &Scenario,
    out: &mut (impl Write + Send),
) -> Result<Report> {
    let mut watch = Watch {
        target,
        live: Arc::new(Live::default()),
        seconds: Arc::default(),
        load_started: None,
        samples: Vec::new(),
        last_requests: 0,
        last_failures: 0,
        last_at: Instant::now(),
        print: settings.live,
        observed: target.observe().await?,
    };
    let mut assertions = Vec::new();
    let until_time = |at: Timestamp| Duration::try_from(at.duration_since(target.now())).unwrap_or_default();
    writeln!(out, "phase baseline: waiting for {} instances in service", group.start)?;
    let ready = watch
        .until("baseline", until_time(first.at), out, |s, _| {
            s.in_service >= group.start
        })
        .await?;
    assertions.push(Assertion {
        name: format!(
            "the group has {} instances in service before {}",
            group.start,
            first.describe()
        ),
        passed: ready.is_some(),
        detail: ready.map_or("not in service in time".into(), |at| format!("at {at}")),
    });
    // Quiet until the action's time: it must not apply early.
    let early = watch
        .until("baseline", until_time(first.at), out, |_, o| first.applied(o))
        .await?
        .filter(|at| *at < first.at);
    for (index, firing) in std::iter::once(first).chain(second).enumerate() {
        let phase = if index == 0 { "scheduled" } else { "after" };
        writeln!(out, "phase {phase}: {} fires", firing.describe())?;
        if index > 0 {
            watch.until(phase, until_time(firing.at), out, |_, _| false).await?;
        }
        let applied = watch
            .until(phase, Duration::from_secs(5 * 60), out, |_, o| firing.applied(o))
            .await?
            .filter(|at| *at >= firing.at && (index > 0 || early.is_none()));
        assertions.push(Assertion::reached(
            format!(
                "scheduled action {} applied at its time, within 5 min",
                firing.describe()
            ),
            applied,
            firing.at,
            "after its time",
            "not applied at its time",
        ));
        let wanted = if index == 0 {
            let s = &firing.schedule;
            s.desired.unwrap_or(0).max(s.min.unwrap_or(0)).max(group.start)
        } else {
            group.min
        };
        let within = if index == 0 {
            Duration::from_secs(10 * 60)
        } else {
            settings.scale_in_within
        };
        let fired_at = target.now();
        let reached = watch
            .until(phase, within, out, |s, _| s.in_service == wanted && s.desired == wanted)
            .await?;
        assertions.push(Assertion::reached(
            format!(
                "{wanted} instances in service within {}",
                humantime::format_duration(within)
            ),
            reached,
            fired_at,
            "after the action",
            "did not happen",
        ));
    }
    Ok(report(&watch, settings, group, 0.0, assertions).await)
}

/// The schedule scenario on the embedded local cloud: the cloud's clock
/// starts a little before the group's next scheduled action that raises its
/// capacity (e.g. the lunch-hour scale-out), the action fires at its time in
/// its time zone through the schedule function, the group grows; the next
/// action fires and the group returns to min. No load is sent.
pub async fn run_schedule(local: Local, scenario: Scenario, out: &mut (impl Write + Send)) -> Result<Report> {
    if let Some(shadow) = &local.shadow {
        bail!(
            "--shadow {}: the schedule scenario has no shadow report",
            shadow.display()
        );
    }
    let policy = Policy::load(&local.policy_file)?;
    let group = pick_group(&policy, local.group.as_deref())?;
    let start_capacity = group.desired.unwrap_or(group.min);
    let now = Timestamp::now();
    let schedules = parsed_schedules(&group)?;
    let next = |after: Timestamp, raising: bool| {
        schedules
            .iter()
            .filter(|(s, _, _)| !raising || s.min.max(s.desired).is_some_and(|v| v > start_capacity))
            .filter_map(|(s, expr, zone)| {
                Some(Firing {
                    at: expr.next_after(after, zone)?,
                    schedule: s.clone(),
                    zone: zone.clone(),
                })
            })
            .min_by_key(|f| f.at)
    };
    let Some(first) = next(now, true) else {
        bail!(
            "group {}: no scheduled action raises its capacity above {start_capacity}; the schedule scenario needs one ([[group.schedule]] with min or desired, see the README's policy reference)",
            group.name
        );
    };
    let second = next(first.at, false).filter(|f| f.at <= first.at + jiff::SignedDuration::from_hours(24));
    // Time to get the starting instances in service, then a quiet spell.
    let lead = scenario.baseline.max(local.boot + Duration::from_secs(60));
    let start = first.at - jiff::SignedDuration::try_from(lead)?;
    let cloud = start_local(&local, &scenario.out, Some(start)).await?;
    let result = async {
        writeln!(
            out,
            "local cloud at speed {}x, its clock set to {} ({} before the first scheduled action): group {} ({}..{} instances), no load",
            local.speed,
            start.to_zoned_datetime(first.zone.clone()).strftime("%Y-%m-%d %H:%M %Z"),
            humantime::format_duration(lead),
            group.name,
            group.min,
            group.max,
        )?;
        let target = LocalTarget {
            cloud: &cloud,
            group: group.name.clone(),
        };
        let limits = Limits {
            group: group.name.clone(),
            min: group.min,
            max: group.max,
            start: start_capacity,
        };
        schedule_scenario(&target, &limits, &first, second.as_ref(), &scenario, out).await
    }
    .await;
    writeln!(out, "stopping the local cloud...")?;
    cloud.shutdown().await;
    let report = result?;
    write_outputs(&scenario, &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> GroupPolicy {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/two-tier.toml");
        Policy::load(&path).expect("policy").group("web").cloned().expect("web")
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn the_load_scenario_starts_its_clock_after_a_scheduled_action_it_would_cross() {
        // web-lunch-scale-out fires at 11:00 Asia/Shanghai (03:00 UTC): a
        // run started at 02:50 UTC would see min raised to 4 mid-scenario
        // (the CI failure of 2026-12-07), so the clock starts after it.
        let (start, note) = quiet_start(&web(), at("2026-12-07T02:50:00Z"), Duration::from_secs(95 * 60)).unwrap();
        assert_eq!(start, at("2026-12-07T03:01:00Z"));
        let note = note.expect("a line saying why");
        assert!(
            note.contains("web-lunch-scale-out (min 4) at 11:00 Asia/Shanghai"),
            "{note}"
        );
        // A window that would also cross 13:00 Shanghai (05:00 UTC) moves past it.
        let (start, _) = quiet_start(&web(), at("2026-12-07T02:50:00Z"), Duration::from_secs(3 * 3600)).unwrap();
        assert_eq!(start, at("2026-12-07T05:01:00Z"));
        // A firing exactly at the start counts.
        let (start, _) = quiet_start(&web(), at("2026-12-07T03:00:00Z"), Duration::from_secs(60)).unwrap();
        assert_eq!(start, at("2026-12-07T03:01:00Z"));
    }

    #[test]
    fn a_quiet_window_keeps_the_real_clock() {
        let from = at("2026-12-07T06:00:00Z");
        assert_eq!(
            quiet_start(&web(), from, Duration::from_secs(95 * 60)).unwrap(),
            (from, None)
        );
    }

    #[test]
    fn a_schedule_more_frequent_than_the_scenario_is_warned_about() {
        let mut group = web();
        group.schedules = vec![functions::policy::Schedule {
            name: "every-ten".into(),
            cron: None,
            rate: Some("rate(10 minutes)".into()),
            timezone: None,
            min: Some(3),
            max: None,
            desired: None,
        }];
        let from = at("2026-12-07T06:05:00Z");
        let (start, note) = quiet_start(&group, from, Duration::from_secs(95 * 60)).unwrap();
        assert_eq!(start, from);
        assert!(note.expect("a warning").starts_with("warning: every 1h 35m"));
    }
}

//! Shadow mode (issue 21): a policy deciding in dry run next to a group's
//! own scaling, compared with what actually happened. The same report for
//! a group on AWS (`loadtest shadow --aws`: the dry-run function's
//! `RecommendedCapacity` metric, the group's capacity, load and scaling
//! activities from CloudWatch and Auto Scaling) and for the local cloud
//! (`loadtest verify --shadow POLICY`: the shadow function's decisions).
//!
//! Both sides are measured with one model, so neither is favoured: each
//! minute a side has its desired capacity (ours: the newest dry-run
//! recommendation, which every tick re-decides; before the first, the
//! group's), billed from launch (instance-hours), and in service one boot
//! time after a raise and at once after a cut (the lowest desired of the
//! last boot time's minutes). A minute is short when the instances in
//! service times the capacity of one (requests per second at 100% CPU) are
//! below the load offered that minute (the load balancer's requests,
//! answered or not). A dry-run decision sees the group as the deciding
//! policy left it, so "ours" is what the shadow asked for at each moment,
//! not a replay of a world where it alone decided (that is `loadtest
//! backtest`).

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

mod print;
mod recorded;

pub use print::print;
pub use recorded::{Recorded, from_recorded, per_minute};

/// One minute of the group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Minute {
    /// The minute's start.
    pub at: Timestamp,
    /// Requests per second offered (answered or not).
    pub load_rps: f64,
    /// The group's desired capacity (the deciding policy's).
    pub desired: u32,
}

/// A decision that changed (or, for ours, would have changed) desired capacity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub at: Timestamp,
    pub from: u32,
    pub to: u32,
    /// The cause or the reason, as far as it is known.
    pub cause: String,
}

/// One dry-run decision: the capacity it recommended (its `from` when it held).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub at: Timestamp,
    pub from: u32,
    pub recommended: u32,
    pub reason: String,
}

/// What the report compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub group: String,
    /// Oldest first, one a minute, without gaps.
    pub minutes: Vec<Minute>,
    /// The group's own changes of desired capacity.
    pub actual: Vec<Change>,
    /// Every dry-run decision, oldest first.
    pub ours: Vec<Recommendation>,
    /// Requests per second one instance serves at 100% CPU.
    pub capacity_rps: f64,
    /// Launch to in service.
    pub boot: Duration,
}

/// One side's totals over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub instance_hours: f64,
    /// Minutes whose load was above what was in service.
    pub shortfall_minutes: u32,
    /// Requests above capacity, of all offered (0 to 1).
    pub over_capacity_share: f64,
    pub scale_outs: u32,
    pub scale_ins: u32,
    pub peak: u32,
}

/// The shadow report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub group: String,
    pub from: Timestamp,
    pub until: Timestamp,
    pub minutes: usize,
    pub capacity_rps: f64,
    pub boot_s: u64,
    pub dry_run_decisions: usize,
    /// The group as it was (its own scaling).
    pub actual: Side,
    /// The dry-run policy, as it asked.
    pub ours: Side,
    /// Where ours would have scaled: runs of dry-run decisions asking for
    /// another capacity than the group had, with the first one's reason.
    pub would_have_scaled: Vec<Divergence>,
    pub actual_changes: Vec<Change>,
}

/// A run of consecutive dry-run decisions that each asked for the same
/// change: from the first to the last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Divergence {
    pub first: Timestamp,
    pub last: Timestamp,
    pub decisions: u32,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// Minutes from launch to in service (at least 1: a launch serves the next minute at the earliest).
fn boot_minutes(boot: Duration) -> usize {
    (boot.as_secs().div_ceil(60) as usize).max(1)
}

/// Each minute's desired capacity for ours: what the newest decision made
/// by the end of the minute asked for when it asked for a change; the
/// group's own when it held (a hold leaves the group as it is, whatever
/// the group then does), or before the first decision.
pub fn our_desired(input: &Input) -> Vec<u32> {
    let mut next = input.ours.iter().peekable();
    let mut asked: Option<u32> = None;
    input
        .minutes
        .iter()
        .map(|m| {
            let end = m.at + jiff::SignedDuration::from_secs(60);
            while let Some(r) = next.next_if(|r| r.at < end) {
                asked = (r.recommended != r.from).then_some(r.recommended);
            }
            asked.unwrap_or(m.desired)
        })
        .collect()
}

/// A side's totals from its desired capacity a minute.
pub fn side(desired: &[u32], load_rps: &[f64], capacity_rps: f64, boot: Duration) -> Side {
    let b = boot_minutes(boot);
    let (mut short, mut over, mut offered) = (0u32, 0.0f64, 0.0f64);
    for (k, load) in load_rps.iter().enumerate() {
        let in_service = desired[k.saturating_sub(b)..=k].iter().copied().min().unwrap_or(0);
        let capacity = f64::from(in_service) * capacity_rps;
        if *load > capacity {
            short += 1;
            over += (load - capacity) * 60.0;
        }
        offered += load * 60.0;
    }
    let steps = desired.windows(2).map(|w| w[1].cmp(&w[0]));
    Side {
        instance_hours: desired.iter().map(|&d| f64::from(d)).sum::<f64>() / 60.0,
        shortfall_minutes: short,
        over_capacity_share: if offered > 0.0 { over / offered } else { 0.0 },
        scale_outs: steps.clone().filter(|o| o.is_gt()).count() as u32,
        scale_ins: steps.filter(|o| o.is_lt()).count() as u32,
        peak: desired.iter().copied().max().unwrap_or(0),
    }
}

/// Runs of dry-run decisions that asked for a change (from != recommended),
/// consecutive ones asking for the same change merged.
pub fn divergences(ours: &[Recommendation]) -> Vec<Divergence> {
    let mut runs: Vec<Divergence> = Vec::new();
    let mut open = false;
    for r in ours {
        if r.recommended == r.from {
            open = false;
            continue;
        }
        match runs.last_mut() {
            Some(d) if open && d.from == r.from && d.to == r.recommended => {
                d.last = r.at;
                d.decisions += 1;
            }
            _ => runs.push(Divergence {
                first: r.at,
                last: r.at,
                decisions: 1,
                from: r.from,
                to: r.recommended,
                reason: r.reason.clone(),
            }),
        }
        open = true;
    }
    runs
}

/// The report of `input`; an error names what is missing.
pub fn report(input: &Input) -> Result<Report, String> {
    let (Some(first), Some(last)) = (input.minutes.first(), input.minutes.last()) else {
        return Err(format!(
            "group {}: no minute of load and capacity to compare",
            input.group
        ));
    };
    if !(input.capacity_rps.is_finite() && input.capacity_rps > 0.0) {
        return Err(format!(
            "capacity of one instance {}: must be a positive number of requests per second",
            input.capacity_rps
        ));
    }
    let load: Vec<f64> = input.minutes.iter().map(|m| m.load_rps).collect();
    let actual: Vec<u32> = input.minutes.iter().map(|m| m.desired).collect();
    let ours = our_desired(input);
    Ok(Report {
        group: input.group.clone(),
        from: first.at,
        until: last.at + jiff::SignedDuration::from_secs(60),
        minutes: input.minutes.len(),
        capacity_rps: input.capacity_rps,
        boot_s: input.boot.as_secs(),
        dry_run_decisions: input.ours.len(),
        actual: side(&actual, &load, input.capacity_rps, input.boot),
        ours: side(&ours, &load, input.capacity_rps, input.boot),
        would_have_scaled: divergences(&input.ours),
        actual_changes: input.actual.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_794_787_200; // Monday 2026-11-16 00:00 UTC

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(T0 + minute * 60).expect("time")
    }

    fn input(load: &[f64], desired: &[u32], ours: Vec<Recommendation>) -> Input {
        Input {
            group: "web".into(),
            minutes: load
                .iter()
                .zip(desired)
                .enumerate()
                .map(|(k, (&load_rps, &desired))| Minute {
                    at: at(k as i64),
                    load_rps,
                    desired,
                })
                .collect(),
            actual: Vec::new(),
            ours,
            capacity_rps: 10.0,
            boot: Duration::from_secs(90),
        }
    }

    fn rec(minute: i64, second: i64, from: u32, recommended: u32) -> Recommendation {
        Recommendation {
            at: at(minute) + jiff::SignedDuration::from_secs(second),
            from,
            recommended,
            reason: format!("{from} -> {recommended}"),
        }
    }

    /// Hand-computed: 2 instances of 10 req/s each, the load steps to 45
    /// req/s at minute 2. The group raises to 5 at minute 5; ours asks for
    /// 5 at minute 2 and holds it. Boot 90 s = 2 minutes: a raise serves two
    /// minutes later.
    #[test]
    fn each_side_is_billed_from_launch_and_serves_one_boot_time_later() {
        let load = [15.0, 15.0, 45.0, 45.0, 45.0, 45.0, 45.0, 45.0, 45.0, 45.0];
        let desired = [2, 2, 2, 2, 2, 5, 5, 5, 5, 5];
        let ours = vec![rec(2, 30, 2, 5), rec(3, 30, 2, 5), rec(4, 30, 2, 5), rec(5, 30, 5, 5)];
        let report = report(&input(&load, &desired, ours)).expect("report");
        // actual: 5 x 2 + 5 x 5 = 35 instance-minutes; in service 2 until
        // minute 6 (min over minutes 5..=7 is 5 from minute 7): minutes 2-6 short.
        assert_eq!(report.actual.instance_hours, 35.0 / 60.0);
        assert_eq!(report.actual.shortfall_minutes, 5);
        // ours: 2, 2, then 5 from minute 2 = 4 + 40 = 44 instance-minutes;
        // in service 5 from minute 4: minutes 2-3 short.
        assert_eq!(report.ours.instance_hours, 44.0 / 60.0);
        assert_eq!(report.ours.shortfall_minutes, 2);
        // Over capacity: ours 2 minutes x (45 - 20) x 60 of 390 x 60 offered.
        assert!((report.ours.over_capacity_share - 50.0 / 390.0).abs() < 1e-12);
        assert!((report.actual.over_capacity_share - 125.0 / 390.0).abs() < 1e-12);
        assert_eq!((report.ours.scale_outs, report.ours.peak), (1, 5));
        // The three decisions asking 2 -> 5 are one run; the hold is not a change.
        assert_eq!(report.would_have_scaled.len(), 1);
        let run = &report.would_have_scaled[0];
        assert_eq!((run.from, run.to, run.decisions), (2, 5, 3));
        assert_eq!(
            (run.first, run.last),
            (
                at(2) + jiff::SignedDuration::from_secs(30),
                at(4) + jiff::SignedDuration::from_secs(30)
            )
        );
        assert_eq!(report.until, at(10));
    }

    #[test]
    fn before_its_first_decision_ours_is_the_groups_capacity_and_a_cut_is_immediate() {
        let load = [5.0; 6];
        let desired = [4, 4, 4, 4, 4, 4];
        let report = report(&input(&load, &desired, vec![rec(3, 0, 4, 1)])).expect("report");
        assert_eq!(
            our_desired(&input(&load, &desired, vec![rec(3, 0, 4, 1)])),
            [4, 4, 4, 1, 1, 1]
        );
        assert_eq!(report.ours.instance_hours, 15.0 / 60.0);
        assert_eq!((report.ours.shortfall_minutes, report.ours.scale_ins), (0, 1));
        assert_eq!(report.actual.instance_hours, 24.0 / 60.0);
    }

    /// A hold leaves the group as it is: after one, ours follows the group
    /// (here down to 1 by its own scaling) until ours asks again.
    #[test]
    fn after_a_hold_ours_is_whatever_the_group_has() {
        let load = [5.0; 6];
        let desired = [2, 2, 4, 4, 1, 1];
        let ours = vec![rec(0, 10, 2, 4), rec(1, 10, 2, 4), rec(2, 10, 4, 4), rec(5, 10, 1, 3)];
        assert_eq!(our_desired(&input(&load, &desired, ours)), [4, 4, 4, 4, 1, 3]);
    }

    #[test]
    fn runs_split_where_a_hold_or_another_change_comes_between() {
        let ours = [
            rec(0, 0, 2, 4),
            rec(1, 0, 2, 4),
            rec(2, 0, 4, 4),
            rec(3, 0, 4, 6),
            rec(4, 0, 2, 4),
        ];
        let runs = divergences(&ours);
        let shape: Vec<(u32, u32, u32)> = runs.iter().map(|d| (d.from, d.to, d.decisions)).collect();
        assert_eq!(shape, [(2, 4, 2), (4, 6, 1), (2, 4, 1)]);
    }

    #[test]
    fn nothing_to_compare_or_no_capacity_is_an_error_naming_it() {
        let empty = report(&input(&[], &[], Vec::new())).expect_err("empty");
        assert!(empty.contains("group web: no minute"), "{empty}");
        let mut bad = input(&[1.0], &[1], Vec::new());
        bad.capacity_rps = 0.0;
        let error = report(&bad).expect_err("capacity");
        assert!(error.contains("capacity of one instance 0"), "{error}");
    }

    #[test]
    fn recorded_series_become_minutes_decisions_and_the_groups_changes() {
        let d = |minute: i64, value: f64| functions::decide::Datapoint { at: at(minute), value };
        let requests = [d(0, 600.0), d(1, 1200.0), d(3, 2700.0)];
        let desired = [d(0, 2.0), d(1, 2.0), d(3, 4.0)];
        let recommended = [d(1, 2.0), d(2, 5.0)];
        let before = [d(1, 2.0), d(2, 2.0)];
        let activities = [(
            at(3) + jiff::SignedDuration::from_secs(5),
            "a user request set desired 4".to_string(),
        )];
        let recorded = Recorded {
            requests: &requests,
            desired: &desired,
            recommended: &recommended,
            before: &before,
            activities: &activities,
        };
        let input = from_recorded("web", &recorded, at(0), at(5), 10.0, Duration::from_secs(90)).expect("input");
        let loads: Vec<f64> = input.minutes.iter().map(|m| m.load_rps).collect();
        assert_eq!(
            loads,
            [10.0, 20.0, 0.0, 45.0, 0.0],
            "a minute without requests had none"
        );
        let desired: Vec<u32> = input.minutes.iter().map(|m| m.desired).collect();
        assert_eq!(
            desired,
            [2, 2, 2, 4, 4],
            "a missing datapoint keeps the previous capacity"
        );
        assert_eq!(input.actual.len(), 1);
        assert_eq!((input.actual[0].from, input.actual[0].to), (2, 4));
        assert_eq!(input.actual[0].cause, "a user request set desired 4");
        let asks: Vec<(u32, u32)> = input.ours.iter().map(|r| (r.from, r.recommended)).collect();
        assert_eq!(asks, [(2, 2), (2, 5)]);
        let none = from_recorded("web", &Recorded::default(), at(0), at(5), 10.0, Duration::ZERO).expect_err("none");
        assert!(none.contains("no desired capacity"), "{none}");
    }

    #[test]
    fn samples_become_minutes_with_the_newest_value_and_gaps_carried() {
        let s = |sec: i64, v: f64| (Timestamp::from_second(T0 + sec).expect("t"), v);
        let minutes = per_minute(&[s(10, 1.0), s(50, 2.0), s(70, 3.0), s(200, 5.0)]);
        let values: Vec<f64> = minutes.iter().map(|m| m.1).collect();
        assert_eq!(values, [2.0, 3.0, 3.0, 5.0]);
        assert_eq!(minutes[0].0, at(0));
        assert!(per_minute(&[]).is_empty());
    }
}

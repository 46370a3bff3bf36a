//! The backtest model on synthetic traces, and the shipped policies on the
//! recorded ones.

use std::path::Path;
use std::time::Duration;

use functions::policy::Policy;
use loadtest::backtest::{Model, oracle_instances, run, run_with_full_history};
use loadtest::trace::Trace;

/// A trace from 2026-11-16T00:00Z, one row a minute.
fn trace(rates: impl IntoIterator<Item = f64>) -> Trace {
    let start: jiff::Timestamp = "2026-11-16T00:00:00Z".parse().expect("start");
    let mut text = String::from("timestamp,requests_per_second\n");
    for (minute, rps) in rates.into_iter().enumerate() {
        text.push_str(&format!(
            "{},{rps}\n",
            start + jiff::SignedDuration::from_mins(minute as i64)
        ));
    }
    Trace::parse("synthetic.csv", &text).expect("trace")
}

fn shipped(name: &str) -> Policy {
    Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies").join(name)).expect("policy")
}

const MODEL: Model = Model {
    capacity_rps: 100.0,
    boot: Duration::from_secs(90),
    price_per_hour: 0.0416,
    ingestion_delay: functions::cloudwatch::INGESTION_DELAY,
    oracle_utilisation: loadtest::backtest::ORACLE_UTILISATION,
    warm_start: loadtest::backtest::WARM_START,
};

#[test]
fn a_steady_load_in_the_policy_band_never_scales() {
    // Seed step policy, 3 instances: 150 req/s is 50% CPU, between 30 and 70.
    let report = run(
        &trace(std::iter::repeat_n(150.0, 240)),
        &shipped("seed-step.toml").groups[0],
        MODEL,
    )
    .expect("backtest");
    assert_eq!(report.scaling_actions, 0);
    assert_eq!(report.requests_over_capacity, 0.0);
    assert!(
        (report.instance_hours - 3.0 * 4.0).abs() < 1e-9,
        "{}",
        report.instance_hours
    );
    // Target tracking at 50%, 2 instances: 100 req/s is exactly on target.
    let report = run(
        &trace(std::iter::repeat_n(100.0, 240)),
        &shipped("course-target-tracking.toml").groups[0],
        MODEL,
    )
    .expect("backtest");
    assert_eq!(report.scaling_actions, 0);
}

/// CloudWatch User Guide, "Aggregate statistics by Auto Scaling group":
/// CPUUtilization by AutoScalingGroupName is every instance's datapoints,
/// so its `Sum` over a period adds each instance's minutes (the local
/// cloud's metric store does the same, through `Statistic::of_repeated`).
/// The backtest once read the group's mean for any CPU statistic but a
/// count's, and never saw 50% on 3 instances exceed 300.
#[test]
fn a_cpu_alarm_on_sum_adds_every_instances_datapoints() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/seed-step.toml"))
        .expect("policy");
    let text =
        text.replacen("stat = \"Average\"", "stat = \"Sum\"", 1)
            .replacen("threshold = 70", "threshold = 300", 1);
    let policy = Policy::parse("seed-step-sum.toml", &text).expect("policy");
    // 150 req/s on 3 instances from 00:00: 50% each. A 300 s period breaches
    // once 3 of its minutes show (3 instances x 3 minutes x 50% = 450 >
    // 300; CloudWatch shows a minute 3 minutes late). At 00:13 the three
    // periods ending 00:03, 00:08 and 00:13 show 3, 5 and 3 minutes: ALARM.
    // At 00:12 the oldest shows 2 (300, not over 300).
    let report = run(&trace(std::iter::repeat_n(150.0, 60)), &policy.groups[0], MODEL).expect("backtest");
    let first = report.actions.first().expect("a scale-out");
    assert_eq!((first.from, first.to), (3, 5), "{first:?}");
    assert_eq!(first.at.to_string(), "2026-11-16T00:13:00Z", "{first:?}");
}

#[test]
fn a_step_up_scales_by_the_step_after_three_periods_and_the_boot() {
    // 150 -> 270 req/s at 00:30 on 3 instances: CPU 50% -> 90%. The alarm needs
    // three 300 s periods above 70%. CloudWatch evaluates it every minute on
    // periods ending then, with the minutes it has (3 minutes late): at 00:43
    // the periods end 00:33, 00:38, 00:43 and hold the minutes to 00:39, all
    // above 70% (the oldest 50, 50, 90, 90, 90 = 74%). Then +2, in service
    // 90 s later.
    let rates = (0..120).map(|m| if m < 30 { 150.0 } else { 270.0 });
    let report = run(&trace(rates), &shipped("seed-step.toml").groups[0], MODEL).expect("backtest");
    let at = |hhmm: &str| {
        report
            .timeline
            .iter()
            .find(|m| m.at.to_string() == format!("2026-11-16T{hhmm}:00Z"))
            .expect("minute")
    };
    assert_eq!((at("00:42").instances, at("00:42").in_service), (3, 3));
    // Decided at the end of the 00:42 minute (the evaluation at 00:43).
    assert_eq!((at("00:43").instances, at("00:43").in_service), (5, 3));
    assert_eq!(at("00:44").in_service, 3, "still booting");
    assert_eq!(at("00:45").in_service, 5, "in service 90 s after launch");
    // 270 req/s on 5 instances is 54%: inside the band, no further action.
    assert_eq!(report.scaling_actions, 1);
    // Short of capacity? 270 <= 300: never.
    assert_eq!(report.minutes_over_capacity, 0);
    assert!((at("00:45").cpu_percent - 54.0).abs() < 1e-9);
}

#[test]
fn a_surge_beyond_capacity_is_counted_until_capacity_covers_it() {
    // Target tracking, 2 instances, a jump to 500 req/s (2.5 x capacity).
    let rates = (0..60).map(|m| if m < 10 { 100.0 } else { 500.0 });
    let report = run(&trace(rates), &shipped("course-target-tracking.toml").groups[0], MODEL).expect("backtest");
    assert!(report.requests_over_capacity > 0.0);
    assert_eq!(report.shortfalls.len(), 1);
    let shortfall = report.shortfalls[0];
    assert_eq!(shortfall.start.to_string(), "2026-11-16T00:10:00Z");
    // CPU saturates at 100%, so each decision at most doubles the group, and
    // each waits for a minute with the new instances in service to reach
    // CloudWatch: the first surge minute (00:10) is readable at 00:13, then a
    // 90 s boot and 3 minutes of delay between doublings: 2 -> 4 -> 8 -> 10.
    let steps: Vec<(String, u32)> = report.actions.iter().map(|a| (a.at.to_string(), a.to)).collect();
    let want = [("00:13", 4), ("00:18", 8), ("00:23", 10)].map(|(t, n)| (format!("2026-11-16T{t}:00Z"), n));
    assert_eq!(steps, want);
    assert_eq!(shortfall.minutes, 10, "{shortfall:?}");
    assert!(report.highest_cpu_percent >= 250.0 - 1e-9);
    // At the end the group sits near 50% of 500 req/s: 10 instances (the max).
    assert_eq!(report.timeline.last().expect("minute").in_service, 10);
}

#[test]
fn shipped_policies_on_the_lunch_peak_week() {
    let trace = Trace::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces/lunch-peak-week.csv"))
        .expect("the recorded trace");
    let step = run(&trace, &shipped("seed-step.toml").groups[0], MODEL).expect("backtest");
    let tracking = run(&trace, &shipped("course-target-tracking.toml").groups[0], MODEL).expect("backtest");
    // Both cost well under a fleet fixed at the peak.
    assert!(step.ratio_to_fixed_peak < 0.6, "{}", step.ratio_to_fixed_peak);
    assert!(tracking.ratio_to_fixed_peak < step.ratio_to_fixed_peak);
    assert!(tracking.over_capacity_fraction <= step.over_capacity_fraction);
}

fn recorded(name: &str) -> Trace {
    Trace::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/traces")
            .join(name),
    )
    .expect("recorded trace")
}

#[test]
fn the_recommended_policy_meets_its_targets_on_the_lunch_peak_week() {
    let trace = recorded("lunch-peak-week.csv");
    let ours = run(&trace, &shipped("recommended.toml").groups[0], MODEL).expect("backtest");
    let step = run(&trace, &shipped("seed-step.toml").groups[0], MODEL).expect("backtest");
    assert!(ours.ratio_to_fixed_peak <= 0.45, "{}", ours.ratio_to_fixed_peak);
    assert!(ours.over_capacity_fraction <= 0.005, "{}", ours.over_capacity_fraction);
    assert!(ours.ratio_to_fixed_peak < step.ratio_to_fixed_peak);
    assert!(ours.over_capacity_fraction < step.over_capacity_fraction);
}

#[test]
fn the_recommended_policy_follows_a_flash_crowd_within_six_minutes() {
    let trace = recorded("flash-crowd-day.csv");
    let ours = run(&trace, &shipped("recommended.toml").groups[0], MODEL).expect("backtest");
    assert_eq!(ours.surges.len(), 1, "{:?}", ours.surges);
    let surge = &ours.surges[0];
    assert_eq!(surge.onset.to_string(), "2026-11-16T09:18:00Z");
    assert!(surge.peak_rps > 10.0 * surge.baseline_rps, "{surge:?}");
    // Issue 7 asked for 5 minutes, measured with data read at once; 3 of the
    // 6 are CloudWatch's ingestion delay (the first surge minute is readable
    // 3 minutes after it starts), then a tick and a 90 s boot, as the load
    // still climbs.
    assert!(surge.minutes_to_capacity.is_some_and(|m| m <= 6), "{surge:?}");
    assert!(ours.over_capacity_fraction <= 0.02, "{}", ours.over_capacity_fraction);
    // The course's policy (max 10, CPU only) cannot: it is what we improve on.
    let course = run(&trace, &shipped("course-target-tracking.toml").groups[0], MODEL).expect("backtest");
    assert!(course.over_capacity_fraction > 5.0 * ours.over_capacity_fraction);
}

/// Issue 22: the office-hours policy (cpu_demand alone) on every shipped
/// trace, against the oracle at 70%: daily cycles within 1.15 x and no
/// request over capacity, sudden surges within 1.3 x; cheaper than
/// recommended everywhere. Over capacity on the surges is what the
/// CloudWatch delay and the boot leave (issue 22's 0.5% and 3% are not met
/// by any shipped policy; the README table says so).
#[test]
fn the_office_hours_policy_tracks_demand_close_to_the_oracle_on_every_trace() {
    let policy = shipped("office-hours.toml");
    let recommended = shipped("recommended.toml");
    for (name, within, over_at_most) in [
        ("lunch-peak-week.csv", 1.15, 0.0),
        ("flash-crowd-day.csv", 1.3, 0.01),
        ("cc-attack-6h.csv", 1.3, 0.15),
    ] {
        let trace = recorded(name);
        let ours = run(&trace, &policy.groups[0], MODEL).expect("backtest");
        let theirs = run(&trace, &recommended.groups[0], MODEL).expect("backtest");
        assert!(
            ours.ratio_to_oracle <= within,
            "{name}: {} x oracle",
            ours.ratio_to_oracle
        );
        assert!(
            ours.over_capacity_fraction <= over_at_most,
            "{name}: {} over capacity",
            ours.over_capacity_fraction
        );
        assert!(
            ours.instance_hours < theirs.instance_hours,
            "{name}: {} vs recommended {}",
            ours.instance_hours,
            theirs.instance_hours
        );
        for surge in &ours.surges {
            assert!(surge.minutes_to_capacity.is_some_and(|m| m <= 7), "{name}: {surge:?}");
        }
    }
}

/// Issue 22: no policy tuned to one trace. The same office-hours policy on
/// the synthetic shapes (`loadtest trace --shape`), against issue 22's
/// targets: cycles and ramps <= 1.15 x oracle and <= 0.1% over capacity;
/// fast square waves <= 1.6 x, <= 10 actions per 4 h, <= 1.5%. The
/// holiday week misses the over-capacity target (each weekday's 6x step at
/// 09:00 is a surge, read 3 minutes late: 0.38%): its bound here is the
/// measured miss, so a regression still fails.
#[test]
fn the_office_hours_policy_meets_issue_22s_targets_on_synthetic_shapes() {
    let policy = shipped("office-hours.toml");
    for (shape, within, over_at_most, actions_per_4h) in [
        ("square", 1.6, 0.015, 10.0),
        ("ramp", 1.15, 0.001, 10.0),
        ("two-peaks", 1.15, 0.001, 10.0),
        ("holiday-week", 1.15, 0.004, 10.0),
    ] {
        let trace = Trace::synthetic(shape).expect(shape);
        let ours = run(&trace, &policy.groups[0], MODEL).expect("backtest");
        let per_4h = ours.scaling_actions as f64 * 240.0 / trace.samples.len() as f64;
        assert!(
            ours.ratio_to_oracle <= within,
            "{shape}: {} x oracle",
            ours.ratio_to_oracle
        );
        assert!(
            ours.over_capacity_fraction <= over_at_most,
            "{shape}: {} over capacity",
            ours.over_capacity_fraction
        );
        assert!(per_4h <= actions_per_4h, "{shape}: {per_4h} actions per 4 h");
    }
}

/// Issue 22's predictive scaling, replayed: office-hours-predictive.toml
/// (office-hours with a forecast in place of its lunch floor) on four
/// weeks of office hours with a holiday in the third. With a week of
/// history it launches each working day's capacity 5 minutes before 09:00
/// (AWS's default SchedulingBufferTime), so the 6x step is no longer a
/// surge: within issue 22's daily-cycle targets (<= 1.15 x oracle, <= 0.1%
/// over capacity), where office-hours alone leaves 0.4% over capacity.
/// Measured 2026-12-07: 1.092 x / 0.027% against 1.075 x / 0.415%.
#[test]
fn predictive_scaling_launches_a_learnt_weekday_before_it_starts() {
    let trace = Trace::synthetic("holiday-month").expect("holiday-month");
    let predictive = run(&trace, &shipped("office-hours-predictive.toml").groups[0], MODEL).expect("backtest");
    let reactive = run(&trace, &shipped("office-hours.toml").groups[0], MODEL).expect("backtest");
    assert!(
        predictive.ratio_to_oracle <= 1.15,
        "{} x oracle",
        predictive.ratio_to_oracle
    );
    assert!(
        predictive.over_capacity_fraction <= 0.001,
        "{} over",
        predictive.over_capacity_fraction
    );
    assert!(
        predictive.over_capacity_fraction * 10.0 < reactive.over_capacity_fraction,
        "{} vs {}",
        predictive.over_capacity_fraction,
        reactive.over_capacity_fraction
    );
    // The fourth Monday (2026-12-07): raised by the forecast at 08:55,
    // before any metric could show the load.
    let monday: jiff::Timestamp = "2026-12-07T08:55:00Z".parse().expect("time");
    let action = predictive.actions.iter().find(|a| a.at == monday).unwrap_or_else(|| {
        panic!(
            "no action at {monday}: {:?}",
            &predictive.actions[predictive.actions.len() - 12..]
        )
    });
    assert!(
        action.to > action.from && action.reason.starts_with("predictive:"),
        "{action:?}"
    );
    // The same policy on the other daily cycles stays within the targets;
    // on one week alone it cannot know a weekend (it forecasts from the
    // days before): the holiday week costs 1.35 x (measured 1.345), the
    // miss the README reports; its over capacity still meets 0.1%.
    for (trace, within) in [
        (Trace::synthetic("two-peaks").expect("shape"), 1.15),
        (recorded("lunch-peak-week.csv"), 1.15),
        (Trace::synthetic("holiday-week").expect("shape"), 1.35),
    ] {
        let report = run(&trace, &shipped("office-hours-predictive.toml").groups[0], MODEL).expect("backtest");
        assert!(report.ratio_to_oracle <= within, "{} x oracle", report.ratio_to_oracle);
        assert!(
            report.over_capacity_fraction <= 0.001,
            "{} over",
            report.over_capacity_fraction
        );
    }
}

#[test]
fn the_recommended_policy_rides_out_attack_bursts_without_thrashing() {
    let trace = recorded("cc-attack-6h.csv");
    let ours = run(&trace, &shipped("recommended.toml").groups[0], MODEL).expect("backtest");
    assert_eq!(ours.surges.len(), 3, "{:?}", ours.surges);
    for surge in &ours.surges {
        // Out, out again at max, in: 3. CloudWatch's delay once made it 4
        // (40 -> 4 -> 2, then 3 again): the datapoint read after the
        // scale-in was served by 40 instances and was read as if 4 had
        // carried it (`tracking::recommend` now counts those gone).
        assert!(surge.scaling_actions <= 3, "{surge:?}");
        assert!(surge.minutes_back_to_baseline.is_some_and(|m| m <= 30), "{surge:?}");
        assert!(surge.minutes_to_capacity.is_some_and(|m| m <= 5), "{surge:?}");
    }
}

#[test]
fn surges_are_found_against_the_trailing_baseline() {
    // 60 minutes at 100, 20 at 800, 60 at 100: one surge at minute 60.
    let rates = std::iter::repeat_n(100.0, 60)
        .chain(std::iter::repeat_n(800.0, 20))
        .chain(std::iter::repeat_n(100.0, 60));
    let report = run(&trace(rates), &shipped("recommended.toml").groups[0], MODEL).expect("backtest");
    assert_eq!(report.surges.len(), 1, "{:?}", report.surges);
    let surge = &report.surges[0];
    assert_eq!(surge.onset.to_string(), "2026-11-16T01:00:00Z");
    assert_eq!(
        surge.end.map(|t| t.to_string()).as_deref(),
        Some("2026-11-16T01:20:00Z")
    );
    assert_eq!((surge.baseline_rps, surge.peak_rps), (100.0, 800.0));
    // 2 instances before; the datapoint of 01:00 is readable at 01:03
    // (CloudWatch's ingestion delay), the instances boot for 90 s: in
    // service for the minute of 01:05.
    assert_eq!(surge.instances_before, 2);
    assert_eq!(surge.minutes_to_capacity, Some(5));
    // One scale-out (100 -> 800 req/s needs 16 at 50 req/s each), one scale-in
    // after the 10-minute stabilisation.
    assert_eq!(surge.scaling_actions, 2, "{:?}", report.actions);
    assert_eq!(report.actions[0].to, 16, "{:?}", report.actions);
    assert!(
        surge.minutes_back_to_baseline.is_some_and(|m| (10..=12).contains(&m)),
        "{surge:?}"
    );
}

#[test]
fn a_fleet_fixed_at_exactly_the_load_is_never_short_and_never_scales() {
    let fleet = loadtest::backtest::fixed_fleet("fixed", 4).expect("fixed fleet");
    let report = run(&trace(std::iter::repeat_n(400.0, 120)), &fleet, MODEL).expect("backtest");
    assert_eq!(report.scaling_actions, 0);
    assert_eq!(report.requests_over_capacity, 0.0);
    assert_eq!(report.highest_cpu_percent, 100.0);
    assert!((report.ratio_to_fixed_peak - 1.0).abs() < 1e-12);
    assert!(report.surges.is_empty());
}

#[test]
fn the_recommended_lunch_floor_holds_on_weekdays_only() {
    // 100 req/s all day (2 instances at 50 req/s each), Monday then Saturday.
    let floor = |trace: &Trace, hhmm: &str| {
        let day = trace.samples[0].at.strftime("%Y-%m-%d").to_string();
        let t: jiff::Timestamp = format!("{day}T{hhmm}:00Z").parse().expect("time");
        let report = run(trace, &shipped("recommended.toml").groups[0], MODEL).expect("backtest");
        report.timeline.iter().find(|m| m.at == t).expect("minute").instances
    };
    let monday = trace(std::iter::repeat_n(100.0, 24 * 60));
    assert_eq!(floor(&monday, "10:44"), 2);
    assert_eq!(floor(&monday, "10:46"), 4);
    assert_eq!(floor(&monday, "13:29"), 4);
    assert_eq!(floor(&monday, "13:45"), 2, "scaled back in after the floor lifts");
    let saturday_start: jiff::Timestamp = "2026-11-21T00:00:00Z".parse().expect("start");
    let mut text = String::from("timestamp,requests_per_second\n");
    for minute in 0..24 * 60 {
        text.push_str(&format!(
            "{},100\n",
            saturday_start + jiff::SignedDuration::from_mins(minute)
        ));
    }
    let saturday = Trace::parse("saturday.csv", &text).expect("trace");
    assert_eq!(floor(&saturday, "10:46"), 2);
}

/// Scale from zero (issue 18) with the shipped scale-to-zero policy: the
/// group starts at 0; the first requests are answered 503 for want of a
/// target (HTTPCode_ELB_503_Count, the only datapoint a group at zero has:
/// no CPU without an instance, no RequestCountPerTarget without a target),
/// that alarm brings 2 instances, CPU grows the group under load, and ten
/// idle minutes take it back to 0. The same rules as the local cloud's
/// `infra/local/tests/functions.rs` run.
#[test]
fn a_group_at_zero_comes_back_on_load_grows_and_returns_to_zero() {
    // 30 idle minutes, 60 at 150 req/s (1.5 instances' worth), 60 idle.
    let rates = (0..150).map(|m| if (30..90).contains(&m) { 150.0 } else { 0.0 });
    let report = run(&trace(rates), &shipped("scale-to-zero.toml").groups[0], MODEL).expect("backtest");
    let at = |hhmm: &str| {
        report
            .timeline
            .iter()
            .find(|m| m.at.to_string() == format!("2026-11-16T{hhmm}:00Z"))
            .unwrap_or_else(|| panic!("minute {hhmm}"))
    };
    assert_eq!(
        at("00:29").instances,
        0,
        "idle at zero: nothing to bill, nothing scales"
    );
    // The 00:30 minute's 503s are readable at 00:33: +2, in service 90 s later.
    let first = &report.actions[0];
    assert_eq!(
        (first.at.to_string().as_str(), first.from, first.to),
        ("2026-11-16T00:33:00Z", 0, 2),
        "{first:?}"
    );
    assert!(first.reason.contains("web-from-zero"), "{}", first.reason);
    assert!(at("00:36").in_service >= 2);
    // 150 req/s on 2 instances is 75% CPU: the CPU alarm grows the group.
    let most = report.timeline.iter().map(|m| m.in_service).max().unwrap_or(0);
    assert!(most > 2, "grew beyond the first 2 under load: {most}");
    // Only the minutes before the first instances served were short.
    assert!(
        report.shortfalls[0].start.to_string() == "2026-11-16T00:30:00Z",
        "{:?}",
        report.shortfalls
    );
    assert!(
        report
            .timeline
            .iter()
            .filter(|m| m.at >= at("00:40").at)
            .all(|m| m.rps <= f64::from(m.in_service) * 100.0)
    );
    // Idle again from 01:30: CPU under 5% for 10 minutes (readable 3 later) -> 0.
    let last = report.actions.last().expect("actions");
    assert_eq!(last.to, 0, "{last:?}");
    assert!(last.reason.contains("web-idle"), "{}", last.reason);
    assert_eq!(report.timeline.last().expect("minute").instances, 0);
}

/// Issue 22's oracle, computed by hand: 5 req/s per instance (capacity 10
/// at U = 50%), min 1, a 90 s boot billed as 2 minutes ahead.
#[test]
fn the_oracle_is_the_load_in_service_launched_a_boot_ahead() {
    let model = Model {
        capacity_rps: 10.0,
        oracle_utilisation: 0.5,
        ..MODEL
    };
    let load = trace([0.0, 12.0, 12.0, 4.0, 0.0, 0.0, 15.0]);
    // Needed in service: 1 (min), 3, 3, 1, 1, 1, 3 (15 / 5 is exactly 3).
    // Billed: each minute the most needed from it to 2 minutes later.
    assert_eq!(oracle_instances(&load, &model, 1), [3, 3, 3, 1, 3, 3, 3]);
    // No boot: billed is what is in service.
    let instant = Model {
        boot: Duration::ZERO,
        ..model
    };
    assert_eq!(oracle_instances(&load, &instant, 1), [1, 3, 3, 1, 1, 1, 3]);
    // Min 0: nothing while there is no load and none is coming.
    assert_eq!(oracle_instances(&load, &instant, 0), [0, 3, 3, 1, 0, 0, 3]);
    // The report: a fleet fixed at 3 has min 3, so its own oracle keeps 3
    // every minute (the CLI judges such a fleet by the policy's oracle).
    let group = &Policy::parse("fixed", "[[group]]\nname = \"web\"\nmin = 3\nmax = 3\n")
        .expect("policy")
        .groups[0];
    let report = run(&load, group, model).expect("backtest");
    assert!(
        (report.oracle_instance_hours - 21.0 / 60.0).abs() < 1e-9,
        "{}",
        report.oracle_instance_hours
    );
    assert!(
        (report.ratio_to_oracle - 1.0).abs() < 1e-9,
        "{}",
        report.ratio_to_oracle
    );
}

#[test]
fn the_oracle_yardstick_on_the_recorded_lunch_week() {
    // Issue 22 measured the recommended policy at 1.21 x the oracle here.
    let trace = recorded("lunch-peak-week.csv");
    let ours = run(&trace, &shipped("recommended.toml").groups[0], MODEL).expect("backtest");
    let billed = oracle_instances(&trace, &MODEL, shipped("recommended.toml").groups[0].min);
    let hours = billed.iter().map(|&n| f64::from(n)).sum::<f64>() / 60.0;
    assert!((ours.oracle_instance_hours - hours).abs() < 1e-9);
    // The oracle never lets load go over 70% of what is in service.
    for (minute, (&n, sample)) in billed.iter().zip(&trace.samples).enumerate() {
        assert!(
            sample.rps <= f64::from(n) * MODEL.capacity_rps * 0.7 + 1e-6,
            "minute {minute}"
        );
    }
    assert!(
        ours.ratio_to_oracle > 1.0 && ours.ratio_to_oracle < 1.5,
        "{}",
        ours.ratio_to_oracle
    );
}

/// Issue 23: the backtest hands decide() only the metrics target tracking
/// reads (`tracking::metrics_window`), and decide() finds each instance's
/// datapoint by binary search: every shipped policy on every recorded trace
/// decides exactly as with the whole hour the functions fetch.
#[test]
fn the_fast_path_decides_exactly_as_the_full_history() {
    // (The week too, in release: `cargo bench --bench backtest` replays it
    // both ways; in a debug test build the reference takes a minute.)
    for trace in ["flash-crowd-day.csv", "cc-attack-6h.csv"] {
        let trace = recorded(trace);
        for policy in [
            "recommended.toml",
            "course-target-tracking.toml",
            "two-tier.toml",
            "scale-to-zero.toml",
        ] {
            let group = &shipped(policy).groups[0];
            let fast = run(&trace, group, MODEL).expect("backtest");
            let reference = run_with_full_history(&trace, group, MODEL).expect("backtest");
            assert!(!fast.actions.is_empty(), "{policy}: nothing to compare");
            assert_eq!(fast, reference, "{policy}");
        }
    }
}

/// A warm pool, replayed by hand ("Warm pools for Amazon EC2 Auto
/// Scaling"): group 1..=4 with MaxGroupPreparedCapacity 4, so 3 initialised
/// instances wait beside the 1 in service. A scheduled action raises it to 4
/// at 00:10: the 3 come from the pool, in service --warm-start (30 s) later
/// (00:11, where a launch would serve from 00:12). At 00:15 it goes back to
/// 1: with ReuseOnScaleIn the 3 return to the pool; without, they are
/// terminated and 3 new ones launched and initialised (billed for their 90 s
/// boot). A stopped pool is not billed; a running one is.
#[test]
fn a_warm_pool_serves_a_scale_out_sooner_and_a_stopped_pool_is_not_billed() {
    let policy = |pool: &str| {
        let text = format!(
            "[[group]]\nname = \"web\"\nmin = 1\nmax = 4\n\n[[group.schedule]]\nname = \"up\"\ncron = \"cron(10 0 * * ? *)\"\nmin = 4\ndesired = 4\n\n[[group.schedule]]\nname = \"down\"\ncron = \"cron(15 0 * * ? *)\"\nmin = 1\ndesired = 1\n{pool}"
        );
        Policy::parse("pool.toml", &text).expect("valid").groups.remove(0)
    };
    let load = trace(std::iter::repeat_n(10.0, 20));
    let in_service = |report: &loadtest::backtest::Report, minute: usize| report.timeline[minute].in_service;
    let cold = run(&load, &policy(""), MODEL).expect("backtest");
    let warm = |extra: &str| {
        let pool = format!("\n[group.warm_pool]\nmax_group_prepared_capacity = 4\n{extra}");
        run(&load, &policy(&pool), MODEL).expect("backtest")
    };
    let reused = warm("reuse_on_scale_in = true\n");
    assert_eq!((in_service(&cold, 11), in_service(&cold, 12)), (1, 4));
    assert_eq!((in_service(&reused, 10), in_service(&reused, 11)), (1, 4));
    // Billed instance-minutes: 10 x 1, 5 x 4, 5 x 1; the stopped pool free.
    assert_eq!((reused.instance_hours * 60.0).round(), 35.0);
    assert_eq!((cold.instance_hours * 60.0).round(), 35.0);
    // Without reuse: the 3 scaled in are terminated; the 3 launched to
    // refill the pool are billed while they initialise (00:15 and 00:16).
    let terminated = warm("");
    assert_eq!((terminated.instance_hours * 60.0).round(), 41.0);
    // A running pool is paid for: 3 more a minute while they wait.
    let running = warm("pool_state = \"running\"\nreuse_on_scale_in = true\n");
    assert_eq!((running.instance_hours * 60.0).round(), 35.0 + 3.0 * 15.0);
    assert!(reused.warm_pool && !cold.warm_pool);
}

/// Issue 22's surge targets with a warm pool: spiky-consumer.toml
/// (office-hours' target tracking and a stopped pool up to 40 with the
/// group) meets the flash crowd's (<= 1.3 x oracle, <= 0.5% over capacity:
/// measured 1.235 x / 0.499% on 2026-12-07, office-hours without the pool
/// 0.688%) at no more instance-hours. The attack's 3% stays out of reach
/// (11.1%, office-hours 14.3%): CloudWatch's 3 minutes come before any
/// instance is asked for. Its bound is the measured miss.
#[test]
fn a_warm_pool_meets_the_flash_crowd_targets() {
    let spiky = &shipped("spiky-consumer.toml").groups[0];
    let office = &shipped("office-hours.toml").groups[0];
    let flash = recorded("flash-crowd-day.csv");
    let warm = run(&flash, spiky, MODEL).expect("backtest");
    let cold = run(&flash, office, MODEL).expect("backtest");
    assert!(warm.ratio_to_oracle <= 1.3, "{} x oracle", warm.ratio_to_oracle);
    assert!(
        warm.over_capacity_fraction <= 0.005,
        "{} over",
        warm.over_capacity_fraction
    );
    assert!(warm.over_capacity_fraction < cold.over_capacity_fraction * 0.8);
    assert!(
        warm.instance_hours <= cold.instance_hours * 1.01,
        "{} vs {}",
        warm.instance_hours,
        cold.instance_hours
    );
    let attack = run(&recorded("cc-attack-6h.csv"), spiky, MODEL).expect("backtest");
    assert!(
        attack.over_capacity_fraction <= 0.112,
        "{} over",
        attack.over_capacity_fraction
    );
}

//! The replay: each minute of the trace served by the group as it is,
//! its datapoints published, the alarms judged, the schedules and ticks
//! fired, each decision applied; the report made at the end.

use super::*;

pub(super) fn replay(
    trace: &Trace,
    group: &GroupPolicy,
    model: Model,
    full_history: bool,
) -> Result<Report, DecideError> {
    let first = trace.samples[0].at;
    let desired = group.desired.unwrap_or(group.min);
    let mut sim = Sim {
        group,
        model,
        min: group.min,
        max: group.max,
        desired,
        instances: (0..desired)
            .map(|i| SimInstance {
                id: format!("i-start{i:03}"),
                launched_at: first - SignedDuration::from_hours(24),
                ready_at: first - SignedDuration::from_hours(24),
            })
            .collect(),
        launched: 0,
        activities: Vec::new(),
        actions: Vec::new(),
        cpu: Vec::new(),
        per_target: Vec::new(),
        no_target: Vec::new(),
        per_instance: BTreeMap::new(),
        full_history,
        load_minutes: Default::default(),
        load_cache: None,
        pool: Vec::new(),
        observed: Observation {
            min: 0,
            max: 0,
            desired: 0,
            instances: Vec::new(),
        },
        history: MetricHistory::default(),
    };
    // The warm pool starts full and initialised, as the group's instances do.
    if let Some(pool) = &group.warm_pool {
        let size = functions::group::warm_pool_size(pool, group.max, desired);
        sim.pool = (0..size)
            .map(|i| SimInstance {
                id: format!("i-pool{i:03}"),
                launched_at: first - SignedDuration::from_hours(24),
                ready_at: first - SignedDuration::from_hours(24),
            })
            .collect();
    }
    let mut alarms: Vec<AlarmSim> = group
        .alarm_policies
        .iter()
        .map(|p| AlarmSim {
            policy: p.clone(),
            newest: None,
            state: AlarmState::InsufficientData,
            since: first,
        })
        .collect();
    // Minutes kept: the decisions' history, and every alarm's evaluation
    // range with the minutes still being ingested.
    let keep = group
        .alarm_policies
        .iter()
        .map(|p| {
            let range = cloudwatch::evaluation_range(p) as u32;
            SignedDuration::try_from(p.period * range + model.ingestion_delay).unwrap_or(HISTORY)
        })
        .fold(HISTORY, SignedDuration::max);
    let first_minute = trace.samples[0].at;
    let schedules: Vec<(String, ScheduleExpr, TimeZone)> = group
        .schedules
        .iter()
        .filter_map(|s| {
            let (expr, tz) = s.parsed().ok()?;
            Some((s.name.clone(), expr, tz))
        })
        .collect();
    let mut next_fires: Vec<Option<Timestamp>> = schedules
        .iter()
        .map(|(_, expr, tz)| expr.next_after(first_minute, tz))
        .collect();

    let mut timeline = Vec::with_capacity(trace.samples.len());
    let (mut billed_minutes, mut requests, mut over, mut over_minutes, mut highest) = (0u64, 0.0, 0.0, 0u64, 0.0f64);
    let mut shortfalls: Vec<Shortfall> = Vec::new();
    let mut short_since: Option<Timestamp> = None;
    for sample in &trace.samples {
        let t = sample.at;
        let now = t + MINUTE;
        let in_service = sim.instances.iter().filter(|i| i.ready_at <= t).count() as u32;
        let capacity = f64::from(in_service) * model.capacity_rps;
        let cpu = if capacity > 0.0 {
            (100.0 * sample.rps / capacity).min(100.0)
        } else {
            100.0
        };
        let over_rps = (sample.rps - capacity).max(0.0);
        requests += sample.rps * 60.0;
        over += over_rps * 60.0;
        highest = highest.max(if capacity > 0.0 {
            100.0 * sample.rps / capacity
        } else {
            f64::INFINITY
        });
        billed_minutes += sim.instances.len() as u64 + sim.pool_billed(t);
        if over_rps > 0.0 {
            over_minutes += 1;
            short_since.get_or_insert(t);
        } else if let Some(start) = short_since.take() {
            shortfalls.push(Shortfall {
                start,
                minutes: (t.duration_since(start).as_secs() / 60) as u64,
            });
        }
        timeline.push(Minute {
            at: t,
            rps: sample.rps,
            instances: sim.instances.len() as u32,
            in_service,
            cpu_percent: cpu,
        });
        // The minute's datapoints, available at its end.
        // CPUUtilization by AutoScalingGroupName: a datapoint per in-service
        // instance (as the local cloud's sampler takes them).
        if in_service > 0 {
            sim.cpu.push((t, cpu, in_service));
        }
        if sample.rps > 0.0 {
            if in_service > 0 {
                sim.per_target.push((t, sample.rps * 60.0 / f64::from(in_service), 1));
            } else {
                sim.no_target.push((t, sample.rps * 60.0, 1));
            }
        }
        if group.predictive.is_some() {
            // CPUUtilization by AutoScalingGroupName: one datapoint per
            // reporting instance, summed by the hour; the load balancer's
            // counts of requests routed to a target and of those shed.
            let load = &mut sim.load_minutes;
            load.cpu.push((t, cpu * f64::from(in_service)));
            if in_service > 0 && sample.rps > 0.0 {
                load.requests.push((t, sample.rps * 60.0));
                if over_rps > 0.0 {
                    load.shed.push((t, over_rps * 60.0));
                }
            }
            load.expire(now - functions::predictive::LOOKBACK - functions::predictive::REFRESH);
        }
        for policy in &group.target_tracking {
            // What each in-service instance reports for the minute.
            let value = match &policy.metric {
                TrackedMetric::Predefined(PredefinedMetric::Cpu) => cpu,
                // CPU x requests over those served: the load over capacity
                // is what the instances shed (answered 503).
                TrackedMetric::Predefined(PredefinedMetric::CpuDemand) => {
                    cpu * functions::tracking::demand_factor(Some(sample.rps), Some(over_rps))
                }
                // ALB RequestCountPerTarget: requests in the minute per target.
                TrackedMetric::Predefined(PredefinedMetric::RequestCountPerTarget) => {
                    sample.rps * 60.0 / f64::from(in_service.max(1))
                }
                // A custom per-instance load metric: requests/s per instance.
                TrackedMetric::Custom(_) => sample.rps / f64::from(in_service.max(1)),
            };
            let series = sim.per_instance.entry(metric_key(&policy.metric)).or_default();
            for instance in sim.instances.iter().filter(|i| i.ready_at <= t) {
                let point = Datapoint { at: t, value };
                // No id copied for an instance already reporting.
                match series.get_mut(&instance.id) {
                    Some(points) => points.push(point),
                    None => {
                        series.insert(instance.id.clone(), vec![point]);
                    }
                }
            }
        }
        // Every series is in time order: what expired is a prefix. The
        // per-instance ones are read from their window on by binary search
        // (`Sim::history`), so older points are dropped an hour's worth at
        // a time rather than shifting the whole series every minute.
        let keep_from = now - keep;
        for series in [&mut sim.cpu, &mut sim.per_target, &mut sim.no_target] {
            let expired = series.partition_point(|(at, _, _)| *at < keep_from);
            series.drain(..expired);
        }
        for points in sim.per_instance.values_mut().flat_map(|m| m.values_mut()) {
            if points.first().is_some_and(|d| d.at < keep_from - HISTORY) {
                let expired = points.partition_point(|d| d.at < keep_from);
                points.drain(..expired);
            }
        }

        // Alarms evaluate every minute (`cloudwatch::evaluation_end`), over
        // their evaluation range of periods ending then, as CloudWatch shows
        // it then; a change is an event.
        for alarm in &mut alarms {
            let period = alarm.policy.period.as_secs() as i64;
            if period == 0 || cloudwatch::evaluation_end(alarm.policy.period, now) != now {
                continue;
            }
            let values = cloudwatch::read_range(&alarm.policy, now, |end| {
                period_value(&alarm.policy, &sim, end, (model.ingestion_delay, now))
            });
            let judged = cloudwatch::judge(&alarm.policy, &values, alarm.state);
            alarm.newest = judged
                .evaluated
                .last()
                .map(|(k, v)| (cloudwatch::period_start(&alarm.policy, now, values.len(), *k), *v));
            if judged.state != alarm.state {
                alarm.state = judged.state;
                alarm.since = now;
                let _ = sim.decide(&Trigger::Alarm(alarm.status()), now)?;
            }
        }
        // The fires in (t, now], as `ScheduleExpr::fires_between` lists
        // them, from each schedule's next fire kept across minutes (working
        // it out afresh every minute was a tenth of a year's replay).
        for ((name, expr, tz), next) in schedules.iter().zip(&mut next_fires) {
            while let Some(at) = next.filter(|at| *at <= now) {
                if at > t {
                    let _ = sim.decide(&Trigger::Scheduled { name: name.clone(), at }, now)?;
                }
                *next = expr.next_after(at, tz);
            }
        }
        let in_alarm: Vec<AlarmStatus> = alarms
            .iter()
            .filter(|a| a.state == AlarmState::Alarm)
            .map(AlarmSim::status)
            .collect();
        let _ = sim.decide(
            &Trigger::Tick {
                at: now,
                alarms: in_alarm,
            },
            now,
        )?;
    }
    if let (Some(start), Some(last)) = (short_since, trace.samples.last()) {
        shortfalls.push(Shortfall {
            start,
            minutes: (last.at.duration_since(start).as_secs() / 60) as u64 + 1,
        });
    }
    let hours = trace.samples.len() as f64 / 60.0;
    let fixed_peak_instances = peak_instances(trace, &model);
    let instance_hours = billed_minutes as f64 / 60.0;
    let fixed_peak_instance_hours = f64::from(fixed_peak_instances) * hours;
    let oracle_instance_hours = oracle_instances(trace, &model, group.min)
        .iter()
        .map(|&n| u64::from(n))
        .sum::<u64>() as f64
        / 60.0;
    Ok(Report {
        group: group.name.clone(),
        model,
        minutes: trace.samples.len(),
        instance_hours,
        cost: instance_hours * model.price_per_hour,
        fixed_peak_instances,
        fixed_peak_instance_hours,
        ratio_to_fixed_peak: instance_hours / fixed_peak_instance_hours,
        oracle_instance_hours,
        ratio_to_oracle: ratio(instance_hours, oracle_instance_hours),
        requests,
        requests_over_capacity: over,
        over_capacity_fraction: if requests > 0.0 { over / requests } else { 0.0 },
        minutes_over_capacity: over_minutes,
        highest_cpu_percent: highest,
        scaling_actions: sim.actions.len() as u32,
        warm_pool: group.warm_pool.is_some(),
        surges: surges(&timeline, &sim.actions, model.capacity_rps),
        actions: sim.actions,
        shortfalls,
        timeline,
    })
}

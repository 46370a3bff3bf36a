//! The load scenario's phases (baseline, load, hold with a kill, cool) and
//! the load engines that drive them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::engine::{Batch, Live, Mode, Plan, Ramp};
use crate::stats::Stats;

use super::*;

pub(super) async fn run_scenario<T: Target>(
    target: &T,
    group: &Limits,
    base_url: &str,
    rate: f64,
    settings: &Scenario,
    out: &mut (impl Write + Send),
) -> Result<Report> {
    let live = Arc::new(Live::default());
    let seconds: Arc<Mutex<BTreeMap<u64, Stats>>> = Arc::default();
    let mut watch = Watch {
        target,
        live: live.clone(),
        seconds: seconds.clone(),
        load_started: None,
        samples: Vec::new(),
        last_requests: 0,
        last_failures: 0,
        last_at: Instant::now(),
        print: settings.live,
        observed: target.observe().await?,
    };
    let mut assertions = Vec::new();
    let min = group.start;

    // Baseline: min instances in service, then a quiet spell.
    writeln!(out, "phase baseline: waiting for {min} instances in service")?;
    let ready = watch
        .until(
            "baseline",
            Duration::from_secs(600).max(Duration::from_secs(30).mul_f64(target.speed())),
            out,
            |s, _| s.in_service >= min,
        )
        .await?;
    assertions.push(Assertion {
        name: format!("the group starts with {min} instances in service"),
        passed: ready.is_some(),
        detail: ready.map_or("not in service in time".into(), |at| format!("at {at}")),
    });
    if ready.is_none() {
        return Ok(report(&watch, settings, group, rate, assertions).await);
    }
    watch.until("baseline", settings.baseline, out, |_, _| false).await?;

    // Load above capacity.
    writeln!(out, "phase load: {rate:.0} req/s through the load balancer")?;
    let url = format!("{base_url}/fibo/{}", settings.n);
    let full = start_load(
        &url,
        rate,
        (settings.scale_out_within + settings.hold).div_f64(target.speed()) + Duration::from_secs(60),
        &seconds,
        0,
    )?;
    watch.switch(full.live.clone());
    watch.load_started = Some(Instant::now());
    let load_at = target.now();
    let out_by = watch
        .until("load", settings.scale_out_within, out, |s, _| s.desired >= min + 2)
        .await?;
    assertions.push(Assertion::reached(
        format!(
            "scale-out to at least {} within {}",
            min + 2,
            humantime::format_duration(settings.scale_out_within)
        ),
        out_by,
        load_at,
        "after the load started",
        "did not happen",
    ));
    let left = settings
        .scale_out_within
        .saturating_sub(out_by.map_or(Duration::ZERO, |at| {
            Duration::try_from(at.duration_since(load_at)).unwrap_or_default()
        }));
    let max_by = watch
        .until("load", left, out, |s, observed| {
            s.desired >= group.max && s.in_service >= group.max && observed.serving >= group.max
        })
        .await?;
    // The hold is the group at max serving the load: it starts once the
    // load balancer sends requests to all of them (a new target gets none
    // until its health checks pass: after a large step, half the group can
    // be in service and not yet serving).
    if max_by.is_some() {
        tokio::time::sleep(target.health_settle()).await;
    }
    assertions.push(Assertion::reached(
        format!(
            "scale-out to max {} in service and serving within {}",
            group.max,
            humantime::format_duration(settings.scale_out_within)
        ),
        max_by,
        load_at,
        "after the load started",
        "did not happen",
    ));

    // Hold at max (optionally losing an instance half way).
    writeln!(
        out,
        "phase hold: {} at full load",
        humantime::format_duration(settings.hold)
    )?;
    let hold_from = (
        full.live.requests.load(Ordering::Relaxed),
        full.live.failures.load(Ordering::Relaxed),
    );
    if settings.kill_one {
        watch.until("hold", settings.hold / 2, out, |_, _| false).await?;
        let victim = watch
            .observed
            .instances
            .iter()
            .find(|(_, in_service)| *in_service)
            .map(|(id, _)| id.clone());
        if let Some(victim) = victim {
            writeln!(
                out,
                "fault: {} {victim}",
                if target.kind() == "local" {
                    "kill -9"
                } else {
                    "terminate (desired kept)"
                }
            )?;
            target.kill(&victim).await?;
            let killed_at = target.now();
            // Replaced: the victim gone and as many in service as desired.
            // Desired, not max: target tracking may scale in during the
            // hold (when the load is under the target at max), and then no
            // replacement is owed. Within its own bound, not the rest of
            // the hold: detection, boot and health checks take about as
            // long as a short hold's half (both made a test flaky: 10 -> 8
            // a minute after the kill; replaced "2.0 min" after the kill
            // with 2 min allowed).
            let replaced = watch
                .until("hold", settings.replace_within, out, |s, observed| {
                    s.in_service >= s.desired && observed.instances.iter().all(|(id, _)| *id != victim)
                })
                .await?;
            assertions.push(Assertion::reached(
                "a killed instance is replaced".into(),
                replaced,
                killed_at,
                "after the kill",
                "not replaced in time",
            ));
            // The rest of the hold, if the replacement came sooner.
            let since_kill = Duration::try_from(target.now().duration_since(killed_at)).unwrap_or_default();
            if let Some(rest) = (settings.hold / 2).checked_sub(since_kill)
                && !rest.is_zero()
            {
                watch.until("hold", rest, out, |_, _| false).await?;
            }
        }
    } else {
        watch.until("hold", settings.hold, out, |_, _| false).await?;
    }

    let hold_to = (
        full.live.requests.load(Ordering::Relaxed),
        full.live.failures.load(Ordering::Relaxed),
    );
    let (hold_requests, hold_failures) = (hold_to.0 - hold_from.0, hold_to.1 - hold_from.1);
    let allowed = hold_requests / 1000;
    assertions.push(Assertion {
        name: if settings.kill_one {
            "at most 0.1% failed requests during the hold, an instance killed included".into()
        } else {
            "at most 0.1% failed requests during the hold".into()
        },
        passed: hold_failures <= allowed,
        detail: format!("{hold_failures} of {hold_requests}"),
    });

    // A tenth of the load stays: the scale-in happens under traffic.
    let offset = watch.load_started.map_or(0, |s| s.elapsed().as_secs() + 1);
    let total = full.stop().await;
    let cool_rate = rate * settings.residual_load;
    writeln!(
        out,
        "phase cool: load down to {cool_rate:.0} req/s, waiting for the group to return to {}",
        group.min
    )?;
    let residual = start_load(
        &url,
        cool_rate,
        settings.scale_in_within.div_f64(target.speed()) + Duration::from_secs(60),
        &seconds,
        offset,
    )?;
    watch.switch(residual.live.clone());
    let stopped_at = target.now();
    let in_by = watch
        .until("cool", settings.scale_in_within, out, |s, _| {
            s.desired <= group.min && s.in_service <= group.min
        })
        .await?;
    assertions.push(Assertion::reached(
        format!(
            "scale-in back to min {} within {}",
            group.min,
            humantime::format_duration(settings.scale_in_within)
        ),
        in_by,
        stopped_at,
        "after the load dropped",
        "did not happen",
    ));
    let cool = residual.stop().await;
    if cool_rate > 0.0 {
        assertions.push(Assertion {
            name: "no failed request while scaling in under load".into(),
            passed: cool.failures() == 0 && cool.requests > 0,
            detail: format!("{} of {}", cool.failures(), cool.requests),
        });
    }
    let mut r = report(&watch, settings, group, rate, assertions).await;
    r.requests = total.requests + cool.requests;
    r.failures = total.failures() + cool.failures();
    Ok(r)
}

/// p99 (ms) of the requests completed in seconds `from..=to` of the load.
pub(super) fn p99_over(seconds: &Mutex<BTreeMap<u64, Stats>>, from: u64, to: u64) -> Option<f64> {
    let seconds = seconds.lock().ok()?;
    let mut window = Stats::default();
    for (_, s) in seconds.range(from..=to) {
        window.merge(s);
    }
    (window.requests > 0).then(|| window.quantile(0.99).as_secs_f64() * 1e3)
}

/// A load engine running in the background, its batches merged into the
/// shared per-second map (shifted by `offset` seconds).
pub(super) struct Load {
    pub(super) live: Arc<Live>,
    pub(super) engine: tokio::task::JoinHandle<()>,
    pub(super) collector: tokio::task::JoinHandle<Stats>,
}

/// The longest an answer takes while a group is too small: the workload
/// queues up to its `--queue-budget` (2 s) of work and answers what it sheds
/// after `--shed-delay` (1 s), plus the request's own compute and the load
/// balancer. The open loop needs this many seconds of requests in flight.
pub(super) const OPEN_LOOP_HORIZON_S: f64 = 4.0;
/// Connections of the open loop at most (each one is also one of the load
/// balancer's and, behind it, one of an instance's).
pub(super) const OPEN_LOOP_MAX_CONNECTIONS: usize = 4096;

/// Enough connections that the open loop keeps its schedule while answers
/// take up to [`OPEN_LOOP_HORIZON_S`]: with fewer (2 x rate, until issue 24)
/// every connection waited on a queued or deferred answer during the
/// scale-out, the schedule fell behind and caught up later in a burst that
/// overloaded the group at max.
pub(super) fn open_loop_connections(rate: f64) -> usize {
    ((rate * OPEN_LOOP_HORIZON_S).ceil() as usize).clamp(16, OPEN_LOOP_MAX_CONNECTIONS)
}

pub(super) fn start_load(
    url: &str,
    rate: f64,
    duration: Duration,
    seconds: &Arc<Mutex<BTreeMap<u64, Stats>>>,
    offset: u64,
) -> Result<Load> {
    let plan = Plan {
        url: url.parse()?,
        mode: Mode::Open {
            connections: open_loop_connections(rate),
            ramp: Ramp::constant(rate),
        },
        duration,
        max_requests: None,
        timeout: Duration::from_secs(30),
    };
    let live = Arc::new(Live::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Batch>();
    let engine = tokio::spawn(crate::engine::run(plan, tx, live.clone()));
    let seconds = seconds.clone();
    let collector = tokio::spawn(async move {
        let mut total = Stats::default();
        while let Some(batch) = rx.recv().await {
            total.merge(&batch.stats);
            if let Ok(mut seconds) = seconds.lock() {
                seconds.entry(batch.second + offset).or_default().merge(&batch.stats);
            }
        }
        total
    });
    Ok(Load {
        live,
        engine,
        collector,
    })
}

impl Load {
    pub(super) async fn stop(self) -> Stats {
        self.live.stop.store(true, Ordering::Relaxed);
        let _ = self.engine.await;
        self.collector.await.unwrap_or_default()
    }
}

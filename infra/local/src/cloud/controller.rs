//! Each group's controller: reconcile desired capacity with instances
//! (launch, health, replace, terminate) every `RECONCILE`.

use super::*;

/// One group's controller loop.
pub(super) async fn controller(cloud: Cloud, runtime: Arc<GroupRuntime>) {
    let mut tick = tokio::time::interval(RECONCILE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        reconcile(&cloud, &runtime).await;
    }
}

/// One pass: notice exits and health, promote pending instances, then act on the plan.
async fn reconcile(cloud: &Cloud, runtime: &Arc<GroupRuntime>) {
    let inner = &cloud.inner;
    let now = inner.clock.now();
    // Processes that exited on their own.
    let exited: Vec<(String, String)> = runtime
        .children()
        .iter_mut()
        .filter_map(|(id, running)| match running.child.try_wait() {
            Ok(Some(status)) => Some((id.clone(), format!("the process exited ({status})"))),
            _ => None,
        })
        .collect();
    let with_process: HashSet<String> = runtime.children().keys().cloned().collect();
    // Pending instances to probe, and in-service ones the load balancer finds unhealthy.
    let (pending, failing) = {
        let mut group = runtime.group();
        // Every launch the controller planned got a process or was marked
        // unhealthy when its start failed; an active instance without one is
        // replaced rather than counted forever (issue 25.1: phantoms).
        let orphans: Vec<String> = group
            .active()
            .filter(|i| !with_process.contains(&i.id))
            .map(|i| i.id.clone())
            .collect();
        for id in orphans {
            let _ = group.mark_unhealthy(&id, "it never got a process");
        }
        for (id, why) in &exited {
            if group.instance(id).is_some_and(|i| i.is_active()) {
                // An instance that dies before it is in service (a bad flag, a
                // busy address) would be relaunched at once, again and again:
                // wait a second first, as a real group backs off.
                if group.instance(id).is_some_and(|i| i.state == State::Pending) {
                    *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(Instant::now() + Duration::from_secs(1));
                }
                let _ = group.mark_unhealthy(id, why);
            }
        }
        let boot = SignedDuration::try_from(inner.config.boot).unwrap_or(SignedDuration::ZERO);
        let grace = SignedDuration::try_from(inner.config.health_grace).unwrap_or(SignedDuration::ZERO);
        let pending: Vec<(String, SocketAddr)> = group
            .active()
            .filter(|i| i.state == State::Pending && i.launched_at + boot <= now)
            .map(|i| {
                (
                    i.id.clone(),
                    SocketAddr::V4(SocketAddrV4::new(i.ip, inner.config.instance_port)),
                )
            })
            .collect();
        let failing: Vec<String> = group
            .active()
            .filter(|i| i.state == State::InService && i.in_service_at.is_some_and(|t| t + grace <= now))
            .filter(|i| runtime.lb.health(&i.id) == Some(TargetHealth::Unhealthy))
            .map(|i| i.id.clone())
            .collect();
        (pending, failing)
    };
    for id in failing {
        let _ = runtime
            .group()
            .mark_unhealthy(&id, "it failed the load balancer's health checks");
    }
    for (id, addr) in pending {
        if probe(inner, addr).await {
            let now = inner.clock.now();
            if runtime.group().mark_in_service(&id, now).is_ok() {
                runtime.lb.register(&id, addr);
                tracing::info!(instance = %id, %addr, "in service");
            }
        }
    }

    let backoff = *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner);
    if backoff.is_some_and(|until| Instant::now() < until) {
        return;
    }
    let plan = runtime.group().plan(now);
    if let Some(error) = &plan.launch_failed {
        // Recorded as a failed activity; tried again after a second, as a
        // real group retries a failed launch.
        tracing::warn!(%error, "launch failed");
        *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + Duration::from_secs(1));
    }
    for step in plan.steps {
        match step {
            Step::Launch { id } => launch(cloud, runtime, &id),
            Step::Terminate { id } => {
                let cloud = cloud.clone();
                let runtime = runtime.clone();
                tokio::spawn(async move { terminate(&cloud, &runtime, &id).await });
            }
        }
    }
}

/// GET /health on an instance, directly.
async fn probe(inner: &Inner, addr: SocketAddr) -> bool {
    let Ok(uri) = format!("http://{addr}/health").parse::<http::Uri>() else {
        return false;
    };
    match tokio::time::timeout(Duration::from_millis(500), inner.probe.get(uri)).await {
        Ok(Ok(response)) => response.status() == http::StatusCode::OK,
        _ => false,
    }
}

fn launch(cloud: &Cloud, runtime: &Arc<GroupRuntime>, id: &str) {
    let inner = &cloud.inner;
    let Some(instance) = runtime.group().instance(id).cloned() else {
        return;
    };
    let addr = SocketAddr::V4(SocketAddrV4::new(instance.ip, inner.config.instance_port));
    let window = inner
        .clock
        .wall(Duration::from_secs(60))
        .max(Duration::from_millis(500));
    // The workload's admission times are cloud times too: at 60x, its 2 s
    // queueing budget would hold 2 minutes of cloud time, a whole boot of the
    // instances a scale-out waits for, and absorb a share of the overload
    // that no instance on AWS absorbs (issue 24: the laptop must not be more
    // lenient than AWS). Scaled, a phase queues the same share as on AWS.
    let (budget, shed_delay) = (
        inner.clock.wall(INSTANCE_QUEUE_BUDGET),
        inner.clock.wall(INSTANCE_SHED_DELAY),
    );
    let args: Vec<String> = vec![
        "--listen".into(),
        addr.to_string(),
        "--cpu-limit".into(),
        inner.config.cpu_limit.to_string(),
        "--cpu-window".into(),
        format!("{}ms", window.as_millis()),
        "--instance-id".into(),
        instance.id.clone(),
        "--hostname".into(),
        format!("ip-{}", instance.ip.to_string().replace('.', "-")),
        "--private-ip".into(),
        instance.ip.to_string(),
        "--availability-zone".into(),
        instance.az.clone(),
        "--drain-timeout".into(),
        format!("{}ms", inner.config.drain_timeout.as_millis()),
        "--queue-budget".into(),
        format!("{}us", budget.as_micros()),
        "--shed-delay".into(),
        format!("{}us", shed_delay.as_micros()),
    ];
    let log = inner.config.log_dir.join(format!("{id}.log"));
    match inner.spawner.spawn(&inner.config.workload, &args, &log) {
        Ok(child) => {
            tracing::info!(instance = %id, %addr, az = %instance.az, "launched");
            runtime.children().insert(id.to_string(), Running { child });
        }
        Err(error) => {
            tracing::warn!(instance = %id, %error, "launch failed");
            let _ = runtime.group().mark_unhealthy(id, &format!("launch failed: {error}"));
            *runtime.backoff.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Instant::now() + Duration::from_secs(1));
        }
    }
}

/// Deregister (draining), stop the process, record the end.
async fn terminate(cloud: &Cloud, runtime: &Arc<GroupRuntime>, id: &str) {
    runtime.lb.deregister(id).await;
    let running = runtime.children().remove(id);
    if let Some(mut running) = running {
        let grace = cloud.inner.config.drain_timeout + Duration::from_secs(1);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = stop(&mut running.child, grace);
        })
        .await;
    }
    let now = cloud.inner.clock.now();
    let _ = runtime.group().mark_terminated(id, now);
    tracing::info!(instance = %id, "terminated");
}

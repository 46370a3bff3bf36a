//! One metric sample per cloud minute: each instance's CPU, the group's,
//! and the load balancer's counts, as CloudWatch publishes them.

use super::*;

/// One metric sample per cloud minute for every in-service instance and the group.
pub(super) async fn sampler(cloud: Cloud, runtime: Arc<GroupRuntime>) {
    let inner = &cloud.inner;
    let period = inner
        .clock
        .wall(Duration::from_secs(60))
        .max(Duration::from_millis(100));
    let name = runtime.group().name.clone();
    let mut previous_cpu: HashMap<String, f64> = HashMap::new();
    let mut previous = runtime.lb.counters();
    // Samples are taken at each cloud-minute boundary and stamped with the
    // minute they cover, so every minute has one datapoint per instance.
    let minute = SignedDuration::from_mins(1);
    let mut started = Instant::now();
    loop {
        let now = inner.clock.now();
        let boundary = Timestamp::from_second((now.as_second().div_euclid(60) + 1) * 60).unwrap_or(now);
        let wake = inner.clock.instant_of(boundary).max(started + period / 2);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        let ended = Instant::now();
        let wall = ended.duration_since(started).as_secs_f64().max(1e-3);
        let at = boundary - minute;
        started = ended;
        let instances: Vec<(String, SocketAddr)> = runtime
            .group()
            .active()
            .filter(|i| i.state == State::InService)
            .map(|i| {
                (
                    i.id.clone(),
                    SocketAddr::V4(SocketAddrV4::new(i.ip, inner.config.instance_port)),
                )
            })
            .collect();
        let mut readings = Vec::new();
        for (id, addr) in &instances {
            readings.push((id.clone(), read_cpu(inner, *addr).await));
        }
        let targets = runtime.lb.status();
        let counters = runtime.lb.counters();
        let latencies = runtime.lb.take_latencies();
        let mut store = lock(&inner.store);
        for (id, reading) in readings {
            if let Some((cpu_seconds, capacity)) = reading
                && let Some(before) = previous_cpu.insert(id.clone(), cpu_seconds)
            {
                let percent = (100.0 * (cpu_seconds - before) / (wall * capacity)).clamp(0.0, 100.0);
                store.put(
                    SeriesKey::new("AWS/EC2", "CPUUtilization", &[("InstanceId", &id)]),
                    at,
                    percent,
                );
                store.put(
                    SeriesKey::new("AWS/EC2", "CPUUtilization", &[("AutoScalingGroupName", &name)]),
                    at,
                    percent,
                );
            }
        }
        previous_cpu.retain(|id, _| instances.iter().any(|(i, _)| i == id));
        let rate = counters.routed.saturating_sub(previous.routed) as f64 / wall;
        let no_target = counters.no_target.saturating_sub(previous.no_target) as f64 / wall;
        let target_5xx = counters.target_5xx.saturating_sub(previous.target_5xx) as f64 / wall;
        previous = counters;
        // As the load balancer publishes them (ALB docs), only in a minute
        // with a nonzero value: RequestCountPerTarget by TargetGroup alone,
        // one value a minute, the requests over the healthy targets (its Sum
        // is that average); RequestCount and TargetResponseTime by
        // LoadBalancer (and with TargetGroup), counting only requests for which a
        // target was chosen; HTTPCode_Target_5XX_Count likewise, the requests
        // targets answered 5xx (shed); HTTPCode_ELB_503_Count by LoadBalancer, the
        // requests answered 503 for want of a target (all a group at zero
        // instances has to scale out on). Requests a minute at the
        // wall-clock rate (see crate::metrics).
        let healthy = targets
            .iter()
            .filter(|t| t.health == crate::lb::TargetHealth::Healthy)
            .count();
        if rate > 0.0 {
            if healthy > 0 {
                let per_target = rate * 60.0 / healthy as f64;
                store.put(
                    SeriesKey::new("AWS/ApplicationELB", "RequestCountPerTarget", &[("TargetGroup", &name)]),
                    at,
                    per_target,
                );
            }
            for dimensions in [
                &[("LoadBalancer", name.as_str())][..],
                &[("LoadBalancer", &name), ("TargetGroup", &name)],
            ] {
                store.put(
                    SeriesKey::new("AWS/ApplicationELB", "RequestCount", dimensions),
                    at,
                    rate * 60.0,
                );
            }
        }
        if target_5xx > 0.0 {
            for dimensions in [
                &[("LoadBalancer", name.as_str())][..],
                &[("LoadBalancer", &name), ("TargetGroup", &name)],
            ] {
                store.put(
                    SeriesKey::new("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dimensions),
                    at,
                    target_5xx * 60.0,
                );
            }
        }
        if no_target > 0.0 {
            store.put(
                SeriesKey::new(
                    "AWS/ApplicationELB",
                    "HTTPCode_ELB_503_Count",
                    &[("LoadBalancer", &name)],
                ),
                at,
                no_target * 60.0,
            );
        }
        let key = SeriesKey::new(
            "AWS/ApplicationELB",
            "TargetResponseTime",
            &[("LoadBalancer", &name), ("TargetGroup", &name)],
        );
        for latency in latencies {
            store.put(key.clone(), at, latency);
        }
    }
}

/// (CPU seconds used, CPU cap in cores) from an instance's /metrics.
async fn read_cpu(inner: &Inner, addr: SocketAddr) -> Option<(f64, f64)> {
    use http_body_util::BodyExt;
    let uri = format!("http://{addr}/metrics").parse::<http::Uri>().ok()?;
    let response = tokio::time::timeout(Duration::from_millis(500), inner.probe.get(uri))
        .await
        .ok()?
        .ok()?;
    let body = tokio::time::timeout(Duration::from_millis(500), response.into_body().collect())
        .await
        .ok()?
        .ok()?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    Some((
        prometheus_value(&text, "workload_cpu_seconds_total")?,
        prometheus_value(&text, "workload_cpu_capacity_cores")?,
    ))
}

//! Active health checks: each target checked every interval, healthy and
//! unhealthy after their thresholds, as an ALB target group does.

use super::*;

impl LoadBalancer {
    /// Runs the health checks until the returned task is aborted.
    pub fn start_health_checks(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lb = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lb.config.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let checks: Vec<(String, SocketAddr)> = lb
                    .targets()
                    .iter()
                    .filter(|t| t.health != TargetHealth::Draining)
                    .map(|t| (t.id.clone(), t.addr))
                    .collect();
                let results = futures_join(checks.into_iter().map(|(id, addr)| {
                    let lb = lb.clone();
                    async move { (id, lb.check(addr).await) }
                }))
                .await;
                let mut targets = lb.targets();
                for (id, ok) in results {
                    let Some(t) = targets.iter_mut().find(|t| t.id == id) else {
                        continue;
                    };
                    if t.health == TargetHealth::Draining {
                        continue;
                    }
                    if ok {
                        t.failures = 0;
                        t.passes += 1;
                        if t.passes >= lb.config.healthy_threshold {
                            t.health = TargetHealth::Healthy;
                        }
                    } else {
                        t.passes = 0;
                        t.failures += 1;
                        if t.failures >= lb.config.unhealthy_threshold {
                            t.health = TargetHealth::Unhealthy;
                        }
                    }
                }
            }
        })
    }

    /// One health check: GET /health answered 200 within the timeout.
    async fn check(&self, addr: SocketAddr) -> bool {
        let Ok(uri) = format!("http://{addr}/health").parse::<Uri>() else {
            return false;
        };
        let Ok(request) = Request::get(uri).body(Full::new(Bytes::new())) else {
            return false;
        };
        match tokio::time::timeout(self.config.timeout, self.client.request(request)).await {
            Ok(Ok(response)) => {
                let ok = response.status() == StatusCode::OK;
                let _ = response.into_body().collect().await;
                ok
            }
            _ => false,
        }
    }
}

/// Runs futures concurrently and collects their outputs (in completion order).
async fn futures_join<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(value) = handle.await {
            out.push(value);
        }
    }
    out
}

//! The load balancer: an HTTP/1.1 reverse proxy on loopback, hyper's server
//! on the client side and keep-alive connections driven by each request's
//! own task on the target side ([`crate::upstream`]), with Application Load
//! Balancer semantics:
//! targets registered when their instance is in service, active health
//! checks (interval, timeout, healthy/unhealthy thresholds), round robin or
//! least outstanding requests over healthy targets, deregistration with
//! connection draining, and one retry on another target for an idempotent
//! request whose connection failed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::upstream::{Failure, Forwarded, Upstream};

/// How requests are spread over healthy targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    RoundRobin,
    LeastOutstandingRequests,
}

/// Health checks and draining (wall-clock durations).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LbConfig {
    pub algorithm: Algorithm,
    #[serde(with = "millis")]
    pub interval: Duration,
    #[serde(with = "millis")]
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// Longest wait for in-flight requests of a deregistered target.
    #[serde(with = "millis")]
    pub deregistration_delay: Duration,
    /// Longest a proxied request may take.
    #[serde(with = "millis")]
    pub request_timeout: Duration,
    /// Client connections: how many at once, and the idle timeout.
    pub connections: crate::server::Limits,
}

impl Default for LbConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RoundRobin,
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(1000),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            deregistration_delay: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            connections: crate::server::Limits::LOAD_BALANCER,
        }
    }
}

pub(crate) mod millis {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// A target's health, as the target group shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetHealth {
    /// Registered, not yet passed `healthy_threshold` checks.
    Initial,
    Healthy,
    Unhealthy,
    /// Deregistered: no new requests, in-flight ones finish.
    Draining,
}

#[derive(Debug)]
struct Target {
    health: TargetHealth,
    passes: u32,
    failures: u32,
    /// What a request needs (one `Arc` clone per request).
    shared: Arc<Chosen>,
}

impl std::ops::Deref for Target {
    type Target = Chosen;

    fn deref(&self) -> &Chosen {
        &self.shared
    }
}

/// A target as requests see it.
#[derive(Debug)]
struct Chosen {
    id: String,
    addr: SocketAddr,
    outstanding: AtomicUsize,
    served: AtomicU64,
    /// Idle keep-alive connections to the target.
    idle: Mutex<Vec<Upstream>>,
}

/// Idle connections kept per target.
const MAX_IDLE: usize = 256;

impl Chosen {
    /// An idle connection that is still open, else a new one.
    async fn connection(&self, idempotent: bool) -> Result<Upstream, Failure> {
        loop {
            let pooled = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            match pooled {
                Some(mut upstream) => {
                    if upstream.reusable(!idempotent) {
                        return Ok(upstream);
                    }
                }
                None => return Upstream::connect(self.addr, Duration::from_secs(1)).await,
            }
        }
    }

    fn give_back(&self, upstream: Upstream) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(upstream);
        }
    }

    /// Sends the request on one connection; a connection reused from the
    /// pool that fails before any answer (the target closed it while idle)
    /// is replaced by a new one once.
    async fn forward(&self, request: Forwarded<'_>, idempotent: bool) -> Result<Response<Full<Bytes>>, Failure> {
        let mut upstream = self.connection(idempotent).await?;
        let mut fresh_tried = false;
        loop {
            let reused = upstream.reused;
            match upstream.send(request, self.addr).await {
                Ok((response, keep_alive)) => {
                    if keep_alive {
                        self.give_back(upstream);
                    }
                    return Ok(response);
                }
                Err(failure) if failure.before_response && reused && idempotent && !fresh_tried => {
                    fresh_tried = true;
                    upstream = Upstream::connect(self.addr, Duration::from_secs(1)).await?;
                }
                Err(failure) => return Err(failure),
            }
        }
    }
}

/// Counts a request outstanding on its target until dropped (also when the
/// client goes away and the request's future with it).
struct Outstanding(Arc<Chosen>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A target as the status view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetStatus {
    pub id: String,
    pub addr: SocketAddr,
    pub health: TargetHealth,
    pub outstanding: usize,
    pub served: u64,
}

/// Counters of the load balancer itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LbCounters {
    pub requests: u64,
    /// Requests for which a target was chosen (ALB `RequestCount` counts
    /// only these: "the load balancer node was able to choose a target").
    #[serde(default)]
    pub routed: u64,
    /// Answered 503 because no target could be chosen (ALB
    /// `HTTPCode_ELB_503_Count`: what a group at zero instances still sees).
    #[serde(default)]
    pub no_target: u64,
    /// Answered 5xx by a target (ALB `HTTPCode_Target_5XX_Count`: the
    /// workload's shed requests).
    #[serde(default)]
    pub target_5xx: u64,
    /// Answered 502/503/504 by the load balancer (no target, or the target failed).
    pub errors: u64,
    /// Requests sent again to another target after a connection failure.
    pub retries: u64,
    /// Client connections open now.
    #[serde(default)]
    pub connections_open: u64,
    /// Client connections closed at once because the connection cap was reached.
    #[serde(default)]
    pub connections_refused: u64,
    /// Failed accepts (out of file descriptors), each followed by a back-off.
    #[serde(default)]
    pub accept_errors: u64,
}

/// The load balancer of one group.
#[derive(Debug)]
pub struct LoadBalancer {
    config: LbConfig,
    targets: Mutex<Vec<Target>>,
    next: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
    requests: AtomicU64,
    routed: AtomicU64,
    no_target: AtomicU64,
    target_5xx: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    connections: Arc<crate::server::Counters>,
    /// Response times (seconds) since the last [`LoadBalancer::take_latencies`].
    latencies: Mutex<Vec<f64>>,
}

/// Response times kept between two metric samples (beyond it, new ones are dropped).
const MAX_LATENCIES: usize = 200_000;

/// Largest request body forwarded (bodies are buffered so a request can be retried).
const MAX_BODY: usize = 1 << 20;

impl LoadBalancer {
    pub fn new(config: LbConfig) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        Arc::new(Self {
            config,
            targets: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            client,
            requests: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            no_target: AtomicU64::new(0),
            target_5xx: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            connections: Arc::default(),
            latencies: Mutex::new(Vec::new()),
        })
    }

    pub fn config(&self) -> &LbConfig {
        &self.config
    }

    fn targets(&self) -> std::sync::MutexGuard<'_, Vec<Target>> {
        self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a target; it receives requests once healthy.
    pub fn register(&self, id: &str, addr: SocketAddr) {
        let mut targets = self.targets();
        targets.retain(|t| t.id != id);
        targets.push(Target {
            health: TargetHealth::Initial,
            passes: 0,
            failures: 0,
            shared: Arc::new(Chosen {
                id: id.to_string(),
                addr,
                outstanding: AtomicUsize::new(0),
                served: AtomicU64::new(0),
                idle: Mutex::new(Vec::new()),
            }),
        });
    }

    /// Deregisters a target: no new requests; returns when its in-flight
    /// requests are done or the deregistration delay has passed.
    pub async fn deregister(&self, id: &str) {
        let outstanding = {
            let mut targets = self.targets();
            let Some(target) = targets.iter_mut().find(|t| t.id == id) else {
                return;
            };
            target.health = TargetHealth::Draining;
            target.shared.clone()
        };
        let deadline = Instant::now() + self.config.deregistration_delay;
        while outstanding.outstanding.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.targets().retain(|t| t.id != id);
    }

    /// A target's health, if registered.
    pub fn health(&self, id: &str) -> Option<TargetHealth> {
        self.targets().iter().find(|t| t.id == id).map(|t| t.health)
    }

    pub fn status(&self) -> Vec<TargetStatus> {
        self.targets()
            .iter()
            .map(|t| TargetStatus {
                id: t.id.clone(),
                addr: t.addr,
                health: t.health,
                outstanding: t.outstanding.load(Ordering::Relaxed),
                served: t.served.load(Ordering::Relaxed),
            })
            .collect()
    }

    pub fn counters(&self) -> LbCounters {
        LbCounters {
            requests: self.requests.load(Ordering::Relaxed),
            routed: self.routed.load(Ordering::Relaxed),
            no_target: self.no_target.load(Ordering::Relaxed),
            target_5xx: self.target_5xx.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            connections_open: self.connections.open.load(Ordering::Relaxed) as u64,
            connections_refused: self.connections.refused.load(Ordering::Relaxed),
            accept_errors: self.connections.accept_errors.load(Ordering::Relaxed),
        }
    }

    /// The response times (seconds) recorded since the last call.
    pub fn take_latencies(&self) -> Vec<f64> {
        std::mem::take(&mut *self.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn record_latency(&self, seconds: f64) {
        let mut latencies = self.latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if latencies.len() < MAX_LATENCIES {
            latencies.push(seconds);
        }
    }

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

    /// Picks a healthy target other than `except`, counting it outstanding.
    fn pick(&self, except: Option<&str>) -> Option<Arc<Chosen>> {
        let targets = self.targets();
        let eligible = |t: &&Target| t.health == TargetHealth::Healthy && Some(t.id.as_str()) != except;
        let count = targets.iter().filter(eligible).count();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        let chosen = match self.config.algorithm {
            Algorithm::RoundRobin => targets.iter().filter(eligible).nth(start)?,
            // Ties go round robin (the first from `start` on), so an idle group still spreads load.
            Algorithm::LeastOutstandingRequests => {
                targets
                    .iter()
                    .filter(eligible)
                    .enumerate()
                    .min_by_key(|(k, t)| (t.outstanding.load(Ordering::Relaxed), (k + count - start) % count))?
                    .1
            }
        };
        chosen.outstanding.fetch_add(1, Ordering::AcqRel);
        Some(chosen.shared.clone())
    }

    /// Proxies one request from `client` (its address as an `X-Forwarded-For` value).
    pub async fn handle(&self, request: Request<Incoming>, client: &HeaderValue) -> Response<Full<Bytes>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = request.into_parts();
        let body = if hyper::body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match crate::server::read_body(body, MAX_BODY, "1 MiB").await {
                Ok(body) => body,
                Err(error) => return self.error(error.status(), &error.to_string()),
            }
        };
        // What the target receives (origin-form URI, no hop-by-hop headers,
        // X-Forwarded-*) is written from `parts` by the connection, again for a retry.
        let forwarded = Forwarded {
            parts: &parts,
            body: &body,
            client,
        };
        let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let mut tried: Option<Arc<Chosen>> = None;
        loop {
            let Some(chosen) = self.pick(tried.as_ref().map(|t| t.id.as_str())) else {
                if tried.is_none() {
                    self.no_target.fetch_add(1, Ordering::Relaxed);
                }
                return self.error(StatusCode::SERVICE_UNAVAILABLE, "no healthy target in the group");
            };
            if tried.is_none() {
                self.routed.fetch_add(1, Ordering::Relaxed);
            }
            let outstanding = Outstanding(chosen);
            let sent = Instant::now();
            let result = tokio::time::timeout(
                self.config.request_timeout,
                outstanding.0.forward(forwarded, idempotent),
            )
            .await;
            let chosen = outstanding.0.clone();
            drop(outstanding);
            match result {
                Ok(Ok(response)) => {
                    chosen.served.fetch_add(1, Ordering::Relaxed);
                    if response.status().is_server_error() {
                        self.target_5xx.fetch_add(1, Ordering::Relaxed);
                    }
                    self.record_latency(sent.elapsed().as_secs_f64());
                    return response;
                }
                Ok(Err(failure)) => {
                    // Before the response: the connection failed (refused, reset):
                    // nothing was processed.
                    if failure.before_response && idempotent && tried.is_none() {
                        self.retries.fetch_add(1, Ordering::Relaxed);
                        tried = Some(chosen);
                        continue;
                    }
                    return self.error(
                        StatusCode::BAD_GATEWAY,
                        &format!("target {} failed: {}", chosen.id, failure.message),
                    );
                }
                Err(_) => return self.error(StatusCode::GATEWAY_TIMEOUT, &format!("target {} timed out", chosen.id)),
            }
        }
    }

    fn error(&self, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// Serves the listener until the returned task is aborted, within the
    /// configured connection limits.
    pub fn serve(self: &Arc<Self>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        let lb = self.clone();
        crate::server::serve(
            listener,
            self.config.connections,
            crate::server::Heads::Hyper,
            self.connections.clone(),
            move |peer| {
                let lb = lb.clone();
                // One X-Forwarded-For value per connection, not per request.
                let client =
                    HeaderValue::from_str(&peer.ip().to_string()).unwrap_or(HeaderValue::from_static("unknown"));
                move |request| {
                    let lb = lb.clone();
                    let client = client.clone();
                    async move { lb.handle(request, &client).await }
                }
            },
        )
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

//! The load balancer: an HTTP/1.1 reverse proxy on loopback, hyper's server
//! on the client side and keep-alive connections driven by each request's
//! own task on the target side ([`crate::upstream`]), with Application Load
//! Balancer semantics:
//! targets registered when their instance is in service, active health
//! checks (interval, timeout, healthy/unhealthy thresholds), round robin or
//! least outstanding requests over healthy targets, deregistration with
//! connection draining, and one retry on another target for an idempotent
//! request whose connection failed.
//!
//! Here: the targets and counters; `forward` (picking a target, its pooled
//! connections, the retry, the server), `health` (the health checks).

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

mod forward;
mod health;

use forward::*;

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
}

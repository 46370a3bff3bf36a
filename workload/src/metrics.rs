//! Prometheus metrics: requests by route and status, latency, in flight,
//! compute pool counters (shed among them) and CPU utilisation.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::cpu::{CpuMeter, process_cpu_time};
use crate::pool::{ComputePool, ShedReason};
use prometheus_client::metrics::MetricType;

/// Labels of the request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route pattern (`/fibo/{n}`), or `unmatched`.
    pub route: String,
    pub method: String,
    pub status: u16,
}

/// Labels of the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~8 s: health checks sit in the first buckets, fibo(38) in the last.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

/// The service's metrics and the registry they are exposed from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    in_flight: Gauge,
}

impl Metrics {
    /// Registers every metric; pool and CPU values are read at scrape time.
    pub fn new(pool: Arc<ComputePool>, cpu: Arc<CpuMeter>) -> Self {
        let mut registry = Registry::with_prefix("workload");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response, by route",
            Unit::Seconds,
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled now",
            in_flight.clone(),
        );
        registry.register_collector(Box::new(StateCollector { pool, cpu }));
        Self {
            registry,
            requests,
            latency,
            in_flight,
        }
    }

    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The in-flight gauge (incremented for the life of a request).
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// The exposition text (OpenMetrics, which Prometheus scrapes).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Values owned by the pool and the CPU meter, read on each scrape.
#[derive(Debug)]
struct StateCollector {
    pool: Arc<ComputePool>,
    cpu: Arc<CpuMeter>,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let pool = self.pool.snapshot();
        let e = &mut encoder;
        counter(
            e,
            "compute_completed",
            "Fibonacci computations finished",
            None,
            pool.completed as f64,
        )?;
        {
            // One family, a series per reason (`over_budget`, `queue_full`).
            let help =
                "Requests refused with 503: their expected wait was over the queueing budget, or the queue was full";
            let mut family = e.encode_descriptor("compute_shed", help, None, MetricType::Counter)?;
            for reason in ShedReason::ALL {
                let value = match reason {
                    ShedReason::OverBudget => pool.shed_over_budget,
                    ShedReason::QueueFull => pool.shed_queue_full,
                };
                let labels = [("reason", reason.as_str())];
                ConstCounter::new(value as f64).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "compute_demand",
            "Computations asked for: completed, in the pool, abandoned and shed (served + shed)",
            None,
            pool.demand as f64,
        )?;
        gauge(
            e,
            "compute_expected_wait_seconds",
            "Expected queueing delay of a computation admitted now",
            pool.expected_wait_ms / 1e3,
        )?;
        gauge(
            e,
            "compute_last_wait_seconds",
            "Queueing delay of the computation started last",
            pool.last_wait_ms / 1e3,
        )?;
        gauge(
            e,
            "compute_queue_budget_seconds",
            "Longest expected queueing delay a computation is admitted with",
            pool.budget_ms / 1e3,
        )?;
        counter(
            e,
            "compute_abandoned",
            "Queued computations dropped because the client went away",
            None,
            pool.abandoned as f64,
        )?;
        gauge(e, "compute_running", "Computations running now", pool.running as f64)?;
        gauge(
            e,
            "compute_queued",
            "Computations waiting for a compute thread",
            pool.queued as f64,
        )?;
        gauge(e, "compute_workers", "Compute threads", pool.workers as f64)?;
        gauge(
            e,
            "compute_queue_capacity",
            "Computations that may wait before shedding",
            pool.queue_capacity as f64,
        )?;
        counter(
            e,
            "cpu",
            "CPU time used by the process (user and system)",
            Some(&Unit::Seconds),
            process_cpu_time().as_secs_f64(),
        )?;
        gauge(
            e,
            "cpu_capacity_cores",
            "What 100% utilisation means, in cores (the CPU cap, or the cores)",
            self.cpu.capacity_cores(),
        )?;
        gauge(
            e,
            "cpu_utilization_percent",
            "CPU utilisation over the last window, relative to the capacity",
            self.cpu.utilization_percent(),
        )?;
        gauge(
            e,
            "cpu_window_seconds",
            "Window of the utilisation gauge",
            self.cpu.window().as_secs_f64(),
        )?;
        gauge(
            e,
            "uptime_seconds",
            "Seconds since start",
            self.cpu.uptime().as_secs_f64(),
        )?;
        Ok(())
    }
}

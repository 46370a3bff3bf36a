//! The workload service: a deliberately recursive Fibonacci over HTTP, with
//! health, Prometheus metrics, load shedding and graceful drain.
//!
//! This is what goes into the instance image. `main` parses [`config::Args`]
//! and calls [`serve`]; tests build the same app with [`routes::configure`].

pub mod config;
pub mod cpu;
pub mod error;
pub mod fib;
pub mod identity;
pub mod metrics;
pub mod pool;
pub mod routes;
pub mod shed;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};

pub use error::{Error, Result};

use config::Config;
use cpu::CpuMeter;
use identity::Identity;
use metrics::Metrics;
use pool::{ComputePool, PoolConfig};
use shed::ShedGate;

/// Everything a request handler reads.
#[derive(Debug)]
pub struct AppState {
    pub identity: Identity,
    pub max_n: u32,
    pub pool: Arc<ComputePool>,
    /// When refused requests are answered.
    pub shed: ShedGate,
    pub cpu: Arc<CpuMeter>,
    pub metrics: Metrics,
}

impl AppState {
    /// Starts the compute pool and the meters for `config`.
    pub fn start(config: &Config, identity: Identity) -> Result<Self> {
        let pool = Arc::new(
            ComputePool::start(&PoolConfig {
                workers: config.compute_workers,
                queue: config.queue,
                budget: config.args.queue_budget,
                cpu_limit: config.args.cpu_limit,
                nice: config.args.compute_nice,
            })
            .map_err(Error::StartPool)?,
        );
        let cpu = Arc::new(CpuMeter::new(config.cpu_capacity_cores(), config.args.cpu_window));
        let metrics = Metrics::new(Arc::clone(&pool), Arc::clone(&cpu));
        Ok(Self {
            identity,
            max_n: config.args.max_n,
            pool,
            shed: ShedGate::new(config.args.shed_delay, config.args.shed_rate),
            cpu,
            metrics,
        })
    }
}

/// Serves until SIGTERM/SIGINT, then drains: stops accepting, lets in-flight
/// requests finish within the drain timeout, stops the compute pool.
///
/// `on_listening` is told the bound addresses (port 0 picks a free port).
pub async fn serve(
    config: Config,
    identity: Identity,
    on_listening: impl FnOnce(&[std::net::SocketAddr]),
) -> Result<()> {
    let state = web::Data::new(AppState::start(&config, identity)?);
    let sampler = actix_web::rt::spawn(sample_cpu(Arc::clone(&state.cpu)));
    let trimmer = actix_web::rt::spawn(return_freed_memory(state.clone()));
    let listen = config.args.listen;
    let app_state = state.clone();
    let drain = config.args.drain_timeout;
    let server = HttpServer::new(move || App::new().configure(routes::configure(app_state.clone())))
        .workers(config.http_workers)
        .shutdown_timeout(drain.as_secs_f64().ceil() as u64)
        // Our own signal handling: the drain's deadline counts from the signal.
        .disable_signals()
        .bind(listen)
        .map_err(|source| Error::Bind { addr: listen, source })?;
    on_listening(&server.addrs());
    tracing::info!(
        addrs = ?server.addrs(),
        instance_id = %state.identity.instance_id,
        private_ip = %state.identity.private_ip,
        compute_workers = config.compute_workers,
        queue = config.queue,
        queue_budget = ?config.args.queue_budget,
        shed_delay = ?config.args.shed_delay,
        cpu_limit = ?config.args.cpu_limit,
        max_n = config.args.max_n,
        "listening"
    );
    let server = server.run();
    let stop_asked = Arc::new(std::sync::Mutex::new(None));
    let signals = actix_web::rt::spawn(stop_on_signal(server.handle(), stop_asked.clone()));
    let result = server.await.map_err(Error::Serve);
    sampler.abort();
    trimmer.abort();
    signals.abort();
    // The compute threads get what is left of the drain timeout: a job paced
    // by a tiny CPU cap must not hold the exit past it (issue 25.8: 30 s for
    // --drain-timeout 2s). Threads still computing then end with the process.
    let asked = stop_asked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_else(std::time::Instant::now);
    state.pool.shutdown_until(asked + drain);
    let snapshot = state.pool.snapshot();
    tracing::info!(completed = snapshot.completed, shed = snapshot.shed, "stopped");
    result
}

/// SIGTERM and SIGINT drain (stop accepting, finish in-flight requests
/// within the drain timeout); SIGQUIT stops at once. Records when.
async fn stop_on_signal(
    server: actix_web::dev::ServerHandle,
    asked: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot listen for signals; stop with SIGKILL");
        return;
    };
    let graceful = tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => true,
        _ = quit.recv() => false,
    };
    *asked.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    tracing::info!(graceful, "stopping");
    server.stop(graceful).await;
}

/// Samples process CPU a few times per utilisation window.
async fn sample_cpu(cpu: Arc<CpuMeter>) {
    let every = (cpu.window() / 4).clamp(Duration::from_millis(25), Duration::from_secs(1));
    let mut interval = actix_web::rt::time::interval(every);
    loop {
        interval.tick().await;
        cpu.sample();
    }
}

/// After a crowd has gone (requests in flight fell to a quarter of a peak
/// over 1000), gives the memory its connections used back to the system:
/// glibc's allocator otherwise keeps it (issue 24: RSS stayed 166 MB up after
/// 10,000 connections; actix holds 16 KB of buffers per connection).
async fn return_freed_memory(state: actix_web::web::Data<AppState>) {
    let mut interval = actix_web::rt::time::interval(Duration::from_secs(1));
    let mut peak = 0i64;
    loop {
        interval.tick().await;
        let in_flight = state.metrics.in_flight().get();
        peak = peak.max(in_flight);
        if peak > 1000 && in_flight <= peak / 4 {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only releases free heap memory.
            unsafe {
                libc::malloc_trim(0);
            }
            peak = in_flight;
        }
    }
}

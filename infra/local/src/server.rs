//! How every local server (load balancer, control API, Lambda Runtime API)
//! accepts HTTP/1.1 connections: at most `max_connections` open at once, a
//! time limit on reading each request head that also closes idle keep-alive
//! connections, a bounded read buffer, and a back-off when `accept` fails
//! (out of descriptors) instead of a spinning loop. Slow or idle clients
//! cannot exhaust the process (issue 25.2).
//!
//! The load balancer's defaults follow an Application Load Balancer's
//! connection idle timeout (`idle_timeout.timeout_seconds`, default 60 s:
//! "the load balancer closes the connection" when no data is sent or
//! received for that long).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Connections open at once; one more is accepted and closed at once.
    pub max_connections: usize,
    /// Longest wait for a whole request head, and for the next request on an
    /// idle keep-alive connection; then the connection is closed.
    #[serde(with = "crate::lb::millis")]
    pub idle_timeout: Duration,
}

impl Limits {
    /// The load balancer's defaults: ALB's 60 s idle timeout.
    pub const LOAD_BALANCER: Self = Self {
        max_connections: 10_000,
        idle_timeout: Duration::from_secs(60),
    };
    /// The control API and the Runtime API: few clients, all local.
    pub const INTERNAL: Self = Self {
        max_connections: 512,
        idle_timeout: Duration::from_secs(60),
    };
}

/// Largest request head a connection buffers (hyper answers 431 beyond it).
const MAX_BUFFER: usize = 64 * 1024;

/// A server's connection counters (what its status shows).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Connections accepted and closed at once because `max_connections` were open.
    pub refused: AtomicU64,
    /// `accept` calls that failed (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
}

/// Serves `listener` until the returned task is aborted: each connection
/// gets the service `make(peer)` builds.
pub fn serve<M, S, F>(
    listener: TcpListener,
    limits: Limits,
    counters: Arc<Counters>,
    make: M,
) -> tokio::task::JoinHandle<()>
where
    M: Fn(SocketAddr) -> S + Send + 'static,
    S: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(error) => {
                    counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                    // EMFILE and friends: the listener stays readable, so a
                    // plain retry would spin on every core. Wait, longer each
                    // time (10 ms to 1 s), for descriptors to come back.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    if backoff == Duration::from_millis(10) {
                        tracing::warn!(%error, "accept failed; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = make(peer);
            let counters = counters.clone();
            counters.open.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = service(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.idle_timeout)
                    .max_buf_size(MAX_BUFFER)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                counters.open.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    })
}

/// Raises this process's soft limit on open files to its hard limit (as
/// servers do at start), so the connection caps, not the descriptor limit,
/// decide when a flood is refused. Returns the soft limit in effect.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

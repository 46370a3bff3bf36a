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
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

mod head;

use head::*;

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

/// Pending connections the kernel queues for `accept`: a burst of new
/// clients (a load test's ramp) is queued, not dropped. With the default of
/// 128, clients opening connections back to back lost a SYN (and waited 1 s
/// for its retransmission) every 129 connections whenever accept fell 15 ms
/// behind. The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// A listener on `addr` with a deep accept queue (and SO_REUSEADDR, as
/// `TcpListener::bind` sets).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `listener` until the returned task is aborted: each connection
/// gets the service `make(peer)` builds.
pub fn serve<M, S, F>(
    listener: TcpListener,
    limits: Limits,
    heads: Heads,
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
        let mut trim = tokio::time::interval(Duration::from_secs(2));
        trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut peak = 0;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = trim.tick() => {
                    peak = return_freed_memory(&counters, peak);
                    continue;
                }
            };
            let (stream, peer) = match accepted {
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
            let open = counters.open.fetch_add(1, Ordering::Relaxed) + 1;
            peak = peak.max(open);
            tokio::spawn(async move {
                connection(stream, limits, heads, service).await;
                counters.open.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    })
}

/// How a server reads its requests.
#[derive(Debug, Clone, Copy)]
pub enum Heads {
    /// hyper reads every request of a keep-alive connection; a head it
    /// cannot parse gets hyper's own refusal (400, 431, 505 with no body).
    Hyper,
    /// One request per connection, its head read and checked here first, so
    /// a head that cannot be parsed is answered in the server's own error
    /// format: `refuse(status, message)` gives the JSON body (issue 25.7:
    /// the control API's refusals were hyper's, with empty bodies).
    Checked(fn(StatusCode, &str) -> String),
}

/// One client connection, until it closes or times out.
async fn connection<S, F>(mut stream: TcpStream, limits: Limits, heads: Heads, service: S)
where
    S: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let response = service(request);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_BUFFER);
    match heads {
        Heads::Hyper => {
            // Until its first byte a connection costs a task and a socket,
            // not hyper's buffers: an idle client that never sends is closed
            // after the idle timeout without them. (`peek`, not `readable`:
            // readiness may be reported before any byte has arrived.)
            let first = tokio::time::timeout(limits.idle_timeout, stream.peek(&mut [0u8; 1])).await;
            if let Ok(Ok(1..)) = first {
                // Boxed: the task's own future stays small while it waits.
                let _ = Box::pin(builder.keep_alive(true).serve_connection(TokioIo::new(stream), service)).await;
            }
        }
        Heads::Checked(refuse) => match tokio::time::timeout(limits.idle_timeout, read_head(&mut stream)).await {
            Ok(Ok(Ok(head))) => {
                let io = TokioIo::new(Prefixed { head, at: 0, stream });
                let _ = Box::pin(builder.keep_alive(false).serve_connection(io, service)).await;
            }
            Ok(Ok(Err((status, message)))) => {
                let body = refuse(status, &message);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
            // Closed, failed, or too slow: nothing to answer.
            Ok(Err(_)) | Err(_) => {}
        },
    }
}

/// Why a request body was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Longer than the server takes (413).
    #[error("request body over {0}")]
    TooLarge(&'static str),
    /// Not a valid HTTP/1.1 body (bad chunk framing, cut short): 400, not
    /// 413 (issue 25.8: a malformed chunked body was answered "over 1 MiB").
    #[error("malformed request body: {0}")]
    Malformed(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// A whole request body of at most `limit` bytes (`limit_text` says it for people).
pub async fn read_body(body: Incoming, limit: usize, limit_text: &'static str) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit_text)),
        Err(error) => Err(BodyError::Malformed(error.to_string())),
    }
}

/// After a flood of connections has gone (open fell to a quarter of the
/// peak, and the peak was over 1000), gives the memory their buffers used
/// back to the system: glibc's allocator otherwise keeps it (RSS stayed at
/// 370 MB after 18,576 connections had closed). Returns the new peak.
fn return_freed_memory(counters: &Counters, peak: usize) -> usize {
    let open = counters.open.load(Ordering::Relaxed);
    if peak > 1000 && open <= peak / 4 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe {
            libc::malloc_trim(0);
        }
        return open;
    }
    peak
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

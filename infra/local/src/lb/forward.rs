//! Forwarding a request: the target picked, its pooled keep-alive
//! connections, the one retry on another target, the proxy's server.

use super::*;

/// A target as requests see it.
#[derive(Debug)]
pub(super) struct Chosen {
    pub(super) id: String,
    pub(super) addr: SocketAddr,
    pub(super) outstanding: AtomicUsize,
    pub(super) served: AtomicU64,
    /// Idle keep-alive connections to the target.
    pub(super) idle: Mutex<Vec<Upstream>>,
}

/// Idle connections kept per target.
pub(super) const MAX_IDLE: usize = 256;

impl Chosen {
    /// An idle connection that is still open, else a new one.
    pub(super) async fn connection(&self, idempotent: bool) -> Result<Upstream, Failure> {
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

    pub(super) fn give_back(&self, upstream: Upstream) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(upstream);
        }
    }

    /// Sends the request on one connection; a connection reused from the
    /// pool that fails before any answer (the target closed it while idle)
    /// is replaced by a new one once.
    pub(super) async fn forward(
        &self,
        request: Forwarded<'_>,
        idempotent: bool,
    ) -> Result<Response<Full<Bytes>>, Failure> {
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
pub(super) struct Outstanding(pub(super) Arc<Chosen>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LoadBalancer {
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

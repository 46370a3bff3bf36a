//! An in-process HTTP server for the load engine's and verify's tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// A server on 127.0.0.1: `/ok` answers like the workload (alternating two
/// instances), `/fail` 503, `/slow` after 2 s, `/drop` closes without answering.
pub async fn server() -> (SocketAddr, Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let counter = counter.clone();
                    async move {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let path = request.uri().path().to_string();
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        match path.as_str() {
                            "/fail" => *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE,
                            "/slow" => tokio::time::sleep(Duration::from_secs(2)).await,
                            "/drop" => return Err("dropped"),
                            _ => {
                                *response.body_mut() = Full::new(Bytes::from(format!(
                                    "Fibo(10) = 89 \nComputed by h{} with private ip 10.0.0.{} \n",
                                    n % 2,
                                    n % 2 + 1
                                )))
                            }
                        }
                        Ok::<_, &str>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, served, task)
}

//! The load balancer's connections to its targets: HTTP/1.1 keep-alive
//! connections driven by the task of the request they carry. The request is
//! written straight from the parts hyper's server parsed (no copy of the
//! request for a retry, no header map rebuilt); the answer is read by the
//! one HTTP/1.1 response reader ([`crate::h1`]) into a buffered body. There is
//! no task hop: hyper's client connection costs a channel round trip to its
//! connection task for each request and for each body, which kept the load
//! balancer near 0.8 x nginx's throughput.
//!
//! Only what a proxy of buffered messages needs: one request at a time, no
//! pipelining, no upgrades (a 101 answer is an error), trailers dropped.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Response, StatusCode, Version};
use http_body_util::Full;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::h1::{Buffered, Framing, ReadError, Reader};
/// The largest response body forwarded (responses are buffered).
pub const MAX_RESPONSE_BODY: u64 = 64 << 20;
/// A connection idle this long is checked for a close by the target before
/// it is reused (a keep-alive timeout on the other side).
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// Headers a proxy does not forward (RFC 9110 7.6.1), plus the framing
/// headers it sets itself.
pub const HOP_BY_HOP: [HeaderName; 8] = [
    HeaderName::from_static("connection"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("proxy-authenticate"),
    HeaderName::from_static("proxy-authorization"),
    HeaderName::from_static("te"),
    HeaderName::from_static("trailer"),
    HeaderName::from_static("upgrade"),
];

/// Why a request got no complete answer.
#[derive(Debug)]
pub struct Failure {
    /// No byte of an answer arrived: the target cannot have answered, so an
    /// idempotent request may be sent again.
    pub before_response: bool,
    pub message: String,
}

impl Failure {
    fn new(before_response: bool, message: impl Into<String>) -> Self {
        Self {
            before_response,
            message: message.into(),
        }
    }
}

impl From<ReadError> for Failure {
    fn from(error: ReadError) -> Self {
        let before_response = error.before_response();
        let message = match error {
            ReadError::Closed { .. } => "the target closed the connection before a complete response".to_string(),
            other => other.to_string(),
        };
        Self::new(before_response, message)
    }
}

/// What the request looks like to the target.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    pub parts: &'a Parts,
    pub body: &'a [u8],
    /// The client's address, as an `X-Forwarded-For` value.
    pub client: &'a HeaderValue,
}

/// One keep-alive connection to a target.
#[derive(Debug)]
pub struct Upstream {
    stream: TcpStream,
    /// The request being written (reused).
    out: Vec<u8>,
    reader: Reader,
    last_used: Instant,
    /// Whether a request was already carried (a failure on a reused
    /// connection may be the target's keep-alive close).
    pub reused: bool,
}

impl Upstream {
    /// Connects to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, Failure> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Failure::new(true, format!("connect to {addr} timed out")))?
            .map_err(|e| Failure::new(true, format!("connect to {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Self {
            stream,
            out: Vec::with_capacity(1024),
            reader: Reader::default(),
            last_used: Instant::now(),
            reused: false,
        })
    }

    /// False when the target has closed (or written to) the connection
    /// while it was idle. Checked only after [`IDLE_CHECK`] of idleness
    /// (a busy connection costs no extra system call) unless `always`: a
    /// request that cannot be sent again (not idempotent) must not go on a
    /// connection the target has just closed.
    pub fn reusable(&mut self, always: bool) -> bool {
        if !always && self.last_used.elapsed() < IDLE_CHECK {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the request and reads the whole answer; the flag says whether
    /// the connection can carry another request.
    pub async fn send(
        &mut self,
        request: Forwarded<'_>,
        host: SocketAddr,
    ) -> Result<(Response<Full<Bytes>>, bool), Failure> {
        self.encode(request, host);
        let write = self.stream.write_all(&self.out).await;
        self.reused = true;
        // A write error leaves nothing to read: the target has not answered.
        write.map_err(|e| Failure::new(true, format!("sending the request: {e}")))?;
        let head_only = request.parts.method == Method::HEAD;
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.version_mut() = Version::HTTP_11;
        let map = response.headers_mut();
        // The target's end-to-end fields; the framing is the server side's.
        let head = self
            .reader
            .head(&mut self.stream, head_only, |field| {
                let name = HeaderName::from_bytes(field.name.as_bytes())
                    .map_err(|_| "a response header with an invalid name")?;
                if name == TRANSFER_ENCODING || HOP_BY_HOP.contains(&name) {
                    return Ok(());
                }
                let value =
                    HeaderValue::from_bytes(field.value).map_err(|_| "a response header with an invalid value")?;
                map.append(name, value);
                Ok(())
            })
            .await?;
        *response.status_mut() =
            StatusCode::from_u16(head.status).map_err(|_| Failure::new(false, "a response status out of range"))?;
        match head.framing {
            // The decoded body gets its own Content-Length from the server side.
            Framing::Chunked => {
                response.headers_mut().remove(CONTENT_LENGTH);
            }
            Framing::Length(length) if length > MAX_RESPONSE_BODY => {
                return Err(Failure::new(false, "response body over 64 MiB"));
            }
            _ => {}
        }
        let mut body = Buffered {
            body: Vec::new(),
            limit: MAX_RESPONSE_BODY as usize,
            over: "response body over 64 MiB",
        };
        if let Framing::Length(length) = head.framing {
            body.body.reserve(length.min(1 << 16) as usize);
        }
        self.reader.body(&mut self.stream, head.framing, &mut body).await?;
        // Bytes nobody asked for: the connection cannot be trusted any more.
        let clean = self.reader.finish();
        let keep_alive = head.keep_alive && head.framing != Framing::UntilClose && clean;
        self.last_used = Instant::now();
        *response.body_mut() = Full::new(Bytes::from(body.body));
        Ok((response, keep_alive))
    }

    /// The request bytes: request line, the client's end-to-end headers,
    /// Host if the client sent none, `Content-Length` for a body,
    /// `X-Forwarded-For` (one more field: the list grows by the client) and
    /// `X-Forwarded-Proto`.
    fn encode(&mut self, request: Forwarded<'_>, host: SocketAddr) {
        use std::io::Write;
        let parts = request.parts;
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(parts.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut framed = false;
        for (name, value) in &parts.headers {
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                framed = true;
                continue;
            }
            if HOP_BY_HOP.contains(name) || name == "x-forwarded-proto" {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !parts.headers.contains_key(HOST) {
            let _ = write!(out, "host: {host}\r\n");
        }
        if framed || !request.body.is_empty() {
            let _ = write!(out, "content-length: {}\r\n", request.body.len());
        }
        out.extend_from_slice(b"x-forwarded-for: ");
        out.extend_from_slice(request.client.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n\r\n");
        out.extend_from_slice(request.body);
    }
}

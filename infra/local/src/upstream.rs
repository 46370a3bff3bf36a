//! The load balancer's connections to its targets: HTTP/1.1 keep-alive
//! connections driven by the task of the request they carry. The request is
//! written straight from the parts hyper's server parsed (no copy of the
//! request for a retry, no header map rebuilt), the response head is parsed
//! in place by httparse (the parser hyper uses) and the body framed by
//! Content-Length, chunked encoding or the end of the connection. There is
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
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

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
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
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..filled]`.
    pos: usize,
    filled: usize,
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
            buf: vec![0; 8192],
            pos: 0,
            filled: 0,
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
        let (mut response, framing, mut keep_alive) = self.head(head_only).await?;
        let body = match framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(length) => {
                if length > MAX_RESPONSE_BODY {
                    return Err(Failure::new(false, "response body over 64 MiB"));
                }
                let mut body = Vec::new();
                self.take(length as usize, &mut body).await?;
                Bytes::from(body)
            }
            Framing::Chunked => self.chunked().await?,
            Framing::UntilClose => {
                keep_alive = false;
                let mut body = Vec::new();
                loop {
                    let available = self.filled - self.pos;
                    self.take(available, &mut body).await?;
                    if body.len() as u64 > MAX_RESPONSE_BODY {
                        return Err(Failure::new(false, "response body over 64 MiB"));
                    }
                    if !self.fill(true).await? {
                        break Bytes::from(body);
                    }
                }
            }
        };
        // Bytes nobody asked for: the connection cannot be trusted any more.
        if self.pos != self.filled {
            keep_alive = false;
        }
        self.pos = 0;
        self.filled = 0;
        self.last_used = Instant::now();
        *response.body_mut() = Full::new(body);
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

    /// Reads more bytes after `filled`; false at the end of the connection.
    /// `received`: whether a byte of the answer has arrived already.
    async fn fill(&mut self, received: bool) -> Result<bool, Failure> {
        if self.pos == self.filled {
            self.pos = 0;
            self.filled = 0;
        } else if self.filled == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.filled, 0);
                self.filled -= self.pos;
                self.pos = 0;
            } else if self.buf.len() < MAX_HEAD {
                self.buf.resize(self.buf.len() * 2, 0);
            } else {
                return Err(Failure::new(false, "a response head or chunk line over 64 KiB"));
            }
        }
        let read = self.stream.read(&mut self.buf[self.filled..]).await.map_err(|e| {
            // Nothing received yet and the read failed: the answer never started.
            Failure::new(!received, format!("reading the response: {e}"))
        })?;
        self.filled += read;
        Ok(read > 0)
    }

    /// Reads more bytes; the end of the connection is an error.
    async fn more(&mut self, received: bool) -> Result<(), Failure> {
        if self.fill(received).await? {
            Ok(())
        } else {
            Err(Failure::new(
                !received,
                "the target closed the connection before a complete response",
            ))
        }
    }

    /// Parses the final response head (skipping 1xx interim answers) into a
    /// response without its body, how the body ends, and whether the
    /// connection stays open.
    async fn head(&mut self, head_only: bool) -> Result<(Response<Full<Bytes>>, Framing, bool), Failure> {
        let mut received = false;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            let used = match parsed.parse(&self.buf[self.pos..self.filled]) {
                Ok(httparse::Status::Complete(used)) => used,
                Ok(httparse::Status::Partial) => {
                    received |= self.filled > self.pos;
                    self.more(received).await?;
                    continue;
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(Failure::new(false, "a response with more than 64 header fields"));
                }
                Err(_) => return Err(Failure::new(false, "not an HTTP/1.x response")),
            };
            received = true;
            let status = parsed.code.unwrap_or(0);
            if status == 101 {
                return Err(Failure::new(false, "101 Switching Protocols: upgrades are not proxied"));
            }
            if (100..200).contains(&status) {
                self.pos += used;
                continue;
            }
            let status =
                StatusCode::from_u16(status).map_err(|_| Failure::new(false, "a response status out of range"))?;
            let http11 = parsed.version == Some(1);
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = status;
            *response.version_mut() = Version::HTTP_11;
            let (mut length, mut chunked, mut close, mut keep) = (None, false, false, false);
            let map = response.headers_mut();
            map.reserve(parsed.headers.len());
            for header in parsed.headers.iter() {
                let name = HeaderName::from_bytes(header.name.as_bytes())
                    .map_err(|_| Failure::new(false, "a response header with an invalid name"))?;
                if name == CONTENT_LENGTH {
                    let value = std::str::from_utf8(header.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or_else(|| Failure::new(false, "a Content-Length that is not a number"))?;
                    if length.is_some_and(|l| l != value) {
                        return Err(Failure::new(false, "two different Content-Length values"));
                    }
                    length = Some(value);
                } else if name == TRANSFER_ENCODING {
                    chunked = header
                        .value
                        .rsplit(|b| *b == b',')
                        .next()
                        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                    continue;
                } else if name == http::header::CONNECTION {
                    for token in header.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                if HOP_BY_HOP.contains(&name) {
                    continue;
                }
                let value = HeaderValue::from_bytes(header.value)
                    .map_err(|_| Failure::new(false, "a response header with an invalid value"))?;
                map.append(name, value);
            }
            self.pos += used;
            let framing = if head_only || status.as_u16() == 204 || status.as_u16() == 304 {
                Framing::Empty
            } else if chunked {
                // The decoded body gets its own Content-Length from the server side.
                map.remove(CONTENT_LENGTH);
                Framing::Chunked
            } else if let Some(length) = length {
                Framing::Length(length)
            } else {
                Framing::UntilClose
            };
            let keep_alive = !close && (http11 || keep);
            return Ok((response, framing, keep_alive));
        }
    }

    /// Moves `count` body bytes (reading as needed) into `body`.
    async fn take(&mut self, count: usize, body: &mut Vec<u8>) -> Result<(), Failure> {
        body.reserve(count.min(self.buf.len().max(1 << 16)));
        let mut left = count;
        while left > 0 {
            if self.pos == self.filled {
                self.more(true).await?;
            }
            let now = left.min(self.filled - self.pos);
            body.extend_from_slice(&self.buf[self.pos..self.pos + now]);
            self.pos += now;
            left -= now;
        }
        Ok(())
    }

    /// A chunked body: chunks, the last chunk, trailers (dropped).
    async fn chunked(&mut self) -> Result<Bytes, Failure> {
        let mut body = Vec::new();
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.pos..self.filled]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.pos += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.more(true).await?,
                    Err(_) => return Err(Failure::new(false, "a bad chunk size line")),
                }
            };
            if size == 0 {
                loop {
                    match self.buf[self.pos..self.filled].windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            self.pos += 2;
                            return Ok(Bytes::from(body));
                        }
                        Some(end) => self.pos += end + 2,
                        None => self.more(true).await?,
                    }
                }
            }
            if body.len() as u64 + size > MAX_RESPONSE_BODY {
                return Err(Failure::new(false, "response body over 64 MiB"));
            }
            self.take(size as usize, &mut body).await?;
            while self.filled - self.pos < 2 {
                self.more(true).await?;
            }
            if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                return Err(Failure::new(false, "a chunk not followed by CRLF"));
            }
            self.pos += 2;
        }
    }
}

//! The load engine's HTTP/1.1 client: one GET at a time on a keep-alive
//! connection, as lean per request as wrk. The request bytes are built once
//! per connection; the response head is parsed in place by httparse (the
//! parser hyper uses); the body is framed by Content-Length, chunked
//! encoding or the end of the connection and read into one reused buffer.
//! Nothing is allocated per request and there is no task hop: hyper's client
//! connection costs a channel round trip to its connection task and a
//! header map per response, which kept `loadtest run` under wrk's rate.
//!
//! Only what a load generator needs: no request body, no pipelining, no
//! upgrades. The first [`SCANNED`] bytes of each body are kept for the
//! caller (the workload names its instance there); the rest is counted
//! and dropped, so a large body costs no memory.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Body bytes kept for [`Answer::body`] per response.
pub const SCANNED: usize = 4096;
/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// A connection idle this long is checked for a close by the server before
/// it is reused (a keep-alive timeout on the other side), so the next
/// request goes on a fresh connection instead of failing.
const IDLE_CHECK: Duration = Duration::from_millis(200);

/// Why a request got no complete answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the socket failed.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before a complete answer.
    #[error("the server closed the connection before a complete answer")]
    Closed,
    /// The answer is not HTTP/1.x as framed by RFC 9112.
    #[error("invalid answer: {0}")]
    Invalid(&'static str),
}

/// A complete answer.
#[derive(Debug)]
pub struct Answer<'a> {
    pub status: u16,
    /// The first [`SCANNED`] bytes of the body.
    pub body: &'a [u8],
    /// Body length in bytes.
    pub length: u64,
    /// Whether the connection can carry the next request.
    pub keep_alive: bool,
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// One keep-alive connection to the target.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..filled]`.
    pos: usize,
    filled: usize,
    body: Vec<u8>,
    last_used: Instant,
}

impl Connection {
    /// Connects to `authority` (host:port) for GETs of `path`.
    pub async fn connect(authority: &str, path: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            request: format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes(),
            buf: vec![0; 8192],
            pos: 0,
            filled: 0,
            body: Vec::with_capacity(SCANNED),
            last_used: Instant::now(),
        })
    }

    /// False when the server has closed (or written to) the connection
    /// while it was idle; checked only after [`IDLE_CHECK`] of idleness, so
    /// a busy connection costs no extra system call.
    pub fn reusable(&mut self) -> bool {
        if self.last_used.elapsed() < IDLE_CHECK {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the GET and reads the whole answer.
    pub async fn get(&mut self) -> Result<Answer<'_>, Error> {
        self.stream.write_all(&self.request).await?;
        let (status, framing, mut keep_alive) = self.head().await?;
        self.body.clear();
        let length = match framing {
            Framing::Empty => 0,
            Framing::Length(length) => {
                self.take(length).await?;
                length
            }
            Framing::Chunked => self.chunked().await?,
            Framing::UntilClose => {
                keep_alive = false;
                let mut length = 0;
                loop {
                    length += self.take((self.filled - self.pos) as u64).await?;
                    if !self.fill().await? {
                        break length;
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
        Ok(Answer {
            status,
            body: &self.body,
            length,
            keep_alive,
        })
    }

    /// Reads more bytes after `filled`; false at the end of the connection.
    async fn fill(&mut self) -> Result<bool, Error> {
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
                return Err(Error::Invalid("a head or chunk line over 64 KiB"));
            }
        }
        let read = self.stream.read(&mut self.buf[self.filled..]).await?;
        self.filled += read;
        Ok(read > 0)
    }

    /// Reads more bytes; the end of the connection is an error.
    async fn more(&mut self) -> Result<(), Error> {
        if self.fill().await? { Ok(()) } else { Err(Error::Closed) }
    }

    /// Parses the final response head (skipping 1xx interim answers):
    /// status, how the body ends, whether the connection stays open.
    async fn head(&mut self) -> Result<(u16, Framing, bool), Error> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = match response.parse(&self.buf[self.pos..self.filled]) {
                Ok(httparse::Status::Complete(used)) => Some(used),
                Ok(httparse::Status::Partial) => None,
                Err(httparse::Error::TooManyHeaders) => return Err(Error::Invalid("more than 64 header fields")),
                Err(_) => return Err(Error::Invalid("not an HTTP/1.x response head")),
            };
            let Some(used) = parsed else {
                self.more().await?;
                continue;
            };
            let status = response.code.unwrap_or(0);
            let http11 = response.version == Some(1);
            let (mut length, mut chunked, mut close, mut keep) = (None, false, false, false);
            for header in response.headers.iter() {
                if header.name.eq_ignore_ascii_case("content-length") {
                    let value = std::str::from_utf8(header.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or(Error::Invalid("a Content-Length that is not a number"))?;
                    if length.is_some_and(|l| l != value) {
                        return Err(Error::Invalid("two different Content-Length values"));
                    }
                    length = Some(value);
                } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = header
                        .value
                        .rsplit(|b| *b == b',')
                        .next()
                        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                } else if header.name.eq_ignore_ascii_case("connection") {
                    for token in header.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
            }
            self.pos += used;
            if (100..200).contains(&status) {
                if status == 101 {
                    return Err(Error::Invalid("101 Switching Protocols to a GET"));
                }
                continue;
            }
            let framing = if status == 204 || status == 304 {
                Framing::Empty
            } else if chunked {
                Framing::Chunked
            } else if let Some(length) = length {
                Framing::Length(length)
            } else {
                Framing::UntilClose
            };
            let keep_alive = !close && (http11 || keep);
            return Ok((status, framing, keep_alive));
        }
    }

    /// Consumes `count` body bytes (reading as needed), keeping the first
    /// [`SCANNED`] of the body. Returns how many were consumed.
    async fn take(&mut self, count: u64) -> Result<u64, Error> {
        let mut left = count;
        while left > 0 {
            if self.pos == self.filled {
                self.more().await?;
            }
            let now = left.min((self.filled - self.pos) as u64) as usize;
            let keep = now.min(SCANNED - self.body.len());
            self.body.extend_from_slice(&self.buf[self.pos..self.pos + keep]);
            self.pos += now;
            left -= now as u64;
        }
        Ok(count)
    }

    /// A chunked body: chunks, the last chunk, trailers. Returns its length.
    async fn chunked(&mut self) -> Result<u64, Error> {
        let mut length = 0u64;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.pos..self.filled]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.pos += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.more().await?,
                    Err(_) => return Err(Error::Invalid("a bad chunk size line")),
                }
            };
            if size == 0 {
                // Trailer lines up to an empty one.
                loop {
                    match self.buf[self.pos..self.filled].windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            self.pos += 2;
                            return Ok(length);
                        }
                        Some(end) => self.pos += end + 2,
                        None => self.more().await?,
                    }
                }
            }
            length += self.take(size).await?;
            while self.filled - self.pos < 2 {
                self.more().await?;
            }
            if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                return Err(Error::Invalid("a chunk not followed by CRLF"));
            }
            self.pos += 2;
        }
    }
}

//! The load engine's HTTP/1.1 client: one GET at a time on a keep-alive
//! connection, as lean per request as wrk. The request bytes are built once
//! per connection; the answer is read by the one HTTP/1.1 response reader
//! the local cloud's load balancer uses too (`localcloud::h1`: the head
//! parsed in place by httparse, the body framed by RFC 9112), keeping the
//! first bytes of the body in one reused buffer.
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

use localcloud::h1::{ReadError, Reader, Scanned};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Body bytes kept for [`Answer::body`] per response.
pub const SCANNED: usize = 4096;
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

impl From<ReadError> for Error {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Io { error, .. } => Self::Io(error),
            ReadError::Closed { .. } => Self::Closed,
            ReadError::Invalid(why) => Self::Invalid(why),
        }
    }
}

/// One keep-alive connection to the target.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    reader: Reader,
    body: Scanned,
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
            reader: Reader::default(),
            body: Scanned {
                body: Vec::with_capacity(SCANNED),
                keep: SCANNED,
            },
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
        let head = self.reader.head(&mut self.stream, false, |_| Ok(())).await?;
        self.body.body.clear();
        let length = self.reader.body(&mut self.stream, head.framing, &mut self.body).await?;
        // Bytes nobody asked for: the connection cannot be trusted any more.
        let clean = self.reader.finish();
        self.last_used = Instant::now();
        Ok(Answer {
            status: head.status,
            body: &self.body.body,
            length,
            keep_alive: head.keep_alive && head.framing != localcloud::h1::Framing::UntilClose && clean,
        })
    }
}

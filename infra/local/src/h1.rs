//! The one HTTP/1.1 response reader: the load balancer's connections to its
//! targets ([`crate::upstream`]) and the load generator's connections
//! (`loadtest::h1`) both read answers with it. The head is parsed in place
//! by httparse (the parser hyper uses), interim 1xx answers skipped; the
//! body is framed as RFC 9112 section 6.3 says (no body for a HEAD, a 204
//! or a 304; else chunked, Content-Length, or to the end of the
//! connection) and handed to a [`Sink`] a slice at a time, so the caller
//! decides what a body costs: the load generator keeps its first bytes and
//! counts the rest, the load balancer buffers it up to a limit. Nothing is
//! allocated per answer and there is no task hop.
//!
//! Only what a client of one request at a time needs: no pipelining, no
//! upgrades (a 101 answer is an error), trailers read and dropped.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest response head (or chunk-size line) accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (a HEAD request, 1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// To the end of the connection (no length, not chunked).
    UntilClose,
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Reading the socket failed. `received`: a byte of the answer had
    /// arrived (if not, the server cannot have answered).
    #[error("reading the response: {error}")]
    Io { error: io::Error, received: bool },
    /// The connection ended before a complete answer.
    #[error("the server closed the connection before a complete answer")]
    Closed { received: bool },
    /// Not an answer RFC 9112 frames, or a body the sink refused.
    #[error("{0}")]
    Invalid(&'static str),
}

impl ReadError {
    /// Whether no byte of an answer had arrived (a request that cannot
    /// have been answered may be sent again if it is idempotent).
    pub fn before_response(&self) -> bool {
        match self {
            Self::Io { received, .. } | Self::Closed { received } => !received,
            Self::Invalid(_) => false,
        }
    }
}

/// A final answer's head, as far as reading it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// HTTP/1.1 (else 1.0).
    pub http11: bool,
    pub framing: Framing,
    /// Whether the connection can carry the next request once the body is
    /// read (`Connection: close`, or HTTP/1.0 without `keep-alive`, say no).
    pub keep_alive: bool,
}

/// Where a body's bytes go.
pub trait Sink {
    /// Takes the next bytes of the body; an error ends the answer.
    fn put(&mut self, bytes: &[u8]) -> Result<(), &'static str>;
}

/// The read buffer of one connection: bytes read and not yet consumed are
/// `buf[pos..filled]`.
#[derive(Debug)]
pub struct Reader {
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            buf: vec![0; 8192],
            pos: 0,
            filled: 0,
        }
    }
}

impl Reader {
    /// Ends an answer: true when nothing followed it (bytes nobody asked
    /// for mean the connection cannot be trusted with another request).
    /// The buffer is empty afterwards.
    pub fn finish(&mut self) -> bool {
        let clean = self.pos == self.filled;
        self.pos = 0;
        self.filled = 0;
        clean
    }

    /// Reads more bytes after `filled`; false at the end of the connection.
    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S, received: bool) -> Result<bool, ReadError> {
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
                return Err(ReadError::Invalid("a response head or chunk line over 64 KiB"));
            }
        }
        let read = stream
            .read(&mut self.buf[self.filled..])
            .await
            .map_err(|error| ReadError::Io { error, received })?;
        self.filled += read;
        Ok(read > 0)
    }

    /// Reads more bytes; the end of the connection is an error.
    async fn more<S: AsyncRead + Unpin>(&mut self, stream: &mut S, received: bool) -> Result<(), ReadError> {
        if self.fill(stream, received).await? {
            Ok(())
        } else {
            Err(ReadError::Closed { received })
        }
    }

    /// Reads the final answer's head (skipping interim 1xx answers), calling
    /// `header` with each of its fields, and says how its body is framed.
    /// `head_only`: the request was a HEAD (no body, whatever the fields say).
    pub async fn head<S, H>(&mut self, stream: &mut S, head_only: bool, mut header: H) -> Result<Head, ReadError>
    where
        S: AsyncRead + Unpin,
        H: FnMut(&httparse::Header<'_>) -> Result<(), &'static str>,
    {
        let mut received = false;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let used = match response.parse(&self.buf[self.pos..self.filled]) {
                Ok(httparse::Status::Complete(used)) => used,
                Ok(httparse::Status::Partial) => {
                    received |= self.filled > self.pos;
                    self.more(stream, received).await?;
                    continue;
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ReadError::Invalid("a response with more than 64 header fields"));
                }
                Err(_) => return Err(ReadError::Invalid("not an HTTP/1.x response head")),
            };
            received = true;
            let status = response.code.unwrap_or(0);
            if status == 101 {
                return Err(ReadError::Invalid(
                    "101 Switching Protocols: upgrades are not supported",
                ));
            }
            if (100..200).contains(&status) {
                self.pos += used;
                continue;
            }
            let (mut length, mut chunked, mut close, mut keep) = (None, false, false, false);
            for field in response.headers.iter() {
                if field.name.eq_ignore_ascii_case("content-length") {
                    let value = std::str::from_utf8(field.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or(ReadError::Invalid("a Content-Length that is not a number"))?;
                    if length.is_some_and(|l| l != value) {
                        return Err(ReadError::Invalid("two different Content-Length values"));
                    }
                    length = Some(value);
                } else if field.name.eq_ignore_ascii_case("transfer-encoding") {
                    // Chunked when it is the last coding (RFC 9112 6.3).
                    chunked = field
                        .value
                        .rsplit(|b| *b == b',')
                        .next()
                        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                } else if field.name.eq_ignore_ascii_case("connection") {
                    for token in field.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                header(field).map_err(ReadError::Invalid)?;
            }
            self.pos += used;
            let http11 = response.version == Some(1);
            let framing = if head_only || status == 204 || status == 304 {
                Framing::Empty
            } else if chunked {
                Framing::Chunked
            } else if let Some(length) = length {
                Framing::Length(length)
            } else {
                Framing::UntilClose
            };
            return Ok(Head {
                status,
                http11,
                framing,
                keep_alive: !close && (http11 || keep),
            });
        }
    }

    /// Reads the body `framing` says into `sink`; returns its length. After
    /// a body to the end of the connection, the connection is done.
    pub async fn body<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        framing: Framing,
        sink: &mut impl Sink,
    ) -> Result<u64, ReadError> {
        match framing {
            Framing::Empty => Ok(0),
            Framing::Length(length) => self.take(stream, length, sink).await,
            Framing::Chunked => self.chunked(stream, sink).await,
            Framing::UntilClose => {
                let mut length = 0;
                loop {
                    let available = (self.filled - self.pos) as u64;
                    length += self.take(stream, available, sink).await?;
                    if !self.fill(stream, true).await? {
                        return Ok(length);
                    }
                }
            }
        }
    }

    /// Moves `count` body bytes (reading as needed) into `sink`.
    async fn take<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        count: u64,
        sink: &mut impl Sink,
    ) -> Result<u64, ReadError> {
        let mut left = count;
        while left > 0 {
            if self.pos == self.filled {
                self.more(stream, true).await?;
            }
            let now = left.min((self.filled - self.pos) as u64) as usize;
            sink.put(&self.buf[self.pos..self.pos + now])
                .map_err(ReadError::Invalid)?;
            self.pos += now;
            left -= now as u64;
        }
        Ok(count)
    }

    /// A chunked body: chunks, the last chunk, trailers (dropped).
    async fn chunked<S: AsyncRead + Unpin>(&mut self, stream: &mut S, sink: &mut impl Sink) -> Result<u64, ReadError> {
        let mut length = 0u64;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.pos..self.filled]) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        self.pos += used;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.more(stream, true).await?,
                    Err(_) => return Err(ReadError::Invalid("a bad chunk size line")),
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
                        None => self.more(stream, true).await?,
                    }
                }
            }
            length += self.take(stream, size, sink).await?;
            while self.filled - self.pos < 2 {
                self.more(stream, true).await?;
            }
            if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                return Err(ReadError::Invalid("a chunk not followed by CRLF"));
            }
            self.pos += 2;
        }
    }
}

/// A body kept whole, up to `limit` bytes.
#[derive(Debug, Default)]
pub struct Buffered {
    pub body: Vec<u8>,
    pub limit: usize,
    /// The error when the body grows past `limit`.
    pub over: &'static str,
}

impl Sink for Buffered {
    fn put(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        if self.body.len() + bytes.len() > self.limit {
            return Err(self.over);
        }
        self.body.extend_from_slice(bytes);
        Ok(())
    }
}

/// A body of which the first `keep` bytes are kept and the rest counted.
#[derive(Debug, Default)]
pub struct Scanned {
    pub body: Vec<u8>,
    pub keep: usize,
}

impl Sink for Scanned {
    fn put(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        let room = self.keep.saturating_sub(self.body.len());
        self.body.extend_from_slice(&bytes[..room.min(bytes.len())]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The framing suite, on answers split at every byte (each read returns
    //! one byte): both users read through this code.
    use super::*;

    /// Yields its bytes one read at a time, `step` bytes per read.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let n = self.step.min(self.bytes.len()).min(buf.remaining());
            buf.put_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Reads every answer of `bytes` in turn: (status, body, keep-alive,
    /// clean end), or the first error.
    async fn read_all(
        bytes: &[u8],
        step: usize,
        head_only: bool,
    ) -> Result<Vec<(u16, Vec<u8>, bool, bool)>, ReadError> {
        let mut stream = Trickle { bytes, step };
        let mut reader = Reader::default();
        let mut answers = Vec::new();
        loop {
            if reader.pos == reader.filled && !reader.fill(&mut stream, false).await? {
                return Ok(answers);
            }
            let head = reader.head(&mut stream, head_only, |_| Ok(())).await?;
            let mut sink = Buffered {
                limit: 1 << 20,
                over: "over 1 MiB",
                ..Buffered::default()
            };
            let length = reader.body(&mut stream, head.framing, &mut sink).await?;
            assert_eq!(length, sink.body.len() as u64);
            let until_close = head.framing == Framing::UntilClose;
            let clean = if until_close { true } else { reader.pos == reader.filled };
            answers.push((head.status, sink.body, head.keep_alive && !until_close, clean));
            if until_close {
                return Ok(answers);
            }
        }
    }

    #[tokio::test]
    async fn every_framing_rfc_9112_allows_split_at_every_byte() {
        // (name, the answer, (status, body, keep-alive))
        type Case<'a> = (&'a str, &'a [u8], (u16, &'a [u8], bool));
        let cases: [Case; 9] = [
            ("length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", (200, b"hello", true)),
            (
                "chunked, an extension and a trailer",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nx-t: 1\r\n\r\n",
                (200, b"hello", true),
            ),
            (
                "chunked as the last coding",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
                (200, b"hi", true),
            ),
            ("204 has no body", b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", (204, b"", true)),
            ("304 has no body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", (304, b"", true)),
            (
                "an interim 100 first",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\ncontent-length: 4\r\n\r\nbusy",
                (503, b"busy", true),
            ),
            ("HTTP/1.0 closes", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", (200, b"ok", false)),
            (
                "HTTP/1.0 with keep-alive",
                b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
                (200, b"ok", true),
            ),
            ("to the end of the connection", b"HTTP/1.1 200 OK\r\n\r\nuntil the end", (200, b"until the end", false)),
        ];
        for (name, bytes, (status, body, keep_alive)) in cases {
            for step in [1, 7, 8192] {
                let answers = read_all(bytes, step, false)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(answers.len(), 1, "{name}");
                assert_eq!(
                    (answers[0].0, answers[0].1.as_slice(), answers[0].2, answers[0].3),
                    (status, body, keep_alive, true),
                    "{name}, {step} bytes a read"
                );
            }
        }
        // A HEAD's answer has no body whatever its fields say.
        let head = read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, true)
            .await
            .expect("head");
        assert_eq!(head, [(200, Vec::new(), true, true)]);
        // Two answers on one connection, then its end.
        let two = read_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
            3,
            false,
        )
        .await
        .expect("two");
        assert_eq!(
            two.iter().map(|a| a.1.clone()).collect::<Vec<_>>(),
            [b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[tokio::test]
    async fn broken_answers_are_errors_that_say_whether_an_answer_began() {
        let cases: [(&[u8], &str, bool); 9] = [
            (b"", "closed the connection", true),
            (b"HTTP/1.1 200 O", "closed the connection", false),
            (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x response head", false),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                "closed the connection",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                "two different",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n",
                "not a number",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "a bad chunk size line",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
                "not followed by CRLF",
                false,
            ),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                "upgrades are not supported",
                false,
            ),
        ];
        for (bytes, expected, before_response) in cases {
            let mut stream = Trickle { bytes, step: 1 };
            let mut reader = Reader::default();
            let result = async {
                let head = reader.head(&mut stream, false, |_| Ok(())).await?;
                let mut sink = Scanned {
                    keep: 16,
                    ..Scanned::default()
                };
                reader.body(&mut stream, head.framing, &mut sink).await
            }
            .await;
            let error = result.expect_err(expected);
            assert!(error.to_string().contains(expected), "{error} (wanted {expected})");
            assert_eq!(error.before_response(), before_response, "{expected}");
        }
        // A head over 64 KiB.
        let long = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let error = read_all(long.as_bytes(), 8192, false).await.expect_err("too long");
        assert!(error.to_string().contains("over 64 KiB"), "{error}");
    }

    #[tokio::test]
    async fn each_sink_decides_what_a_body_costs() {
        let body = "x".repeat(100_000);
        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let mut stream = Trickle {
            bytes: answer.as_bytes(),
            step: 4096,
        };
        let mut reader = Reader::default();
        let head = reader.head(&mut stream, false, |_| Ok(())).await.expect("head");
        let mut scanned = Scanned {
            keep: 10,
            ..Scanned::default()
        };
        assert_eq!(
            reader
                .body(&mut stream, head.framing, &mut scanned)
                .await
                .expect("body"),
            100_000
        );
        assert_eq!(scanned.body, b"xxxxxxxxxx");
        let mut stream = Trickle {
            bytes: answer.as_bytes(),
            step: 4096,
        };
        let mut reader = Reader::default();
        let head = reader.head(&mut stream, false, |_| Ok(())).await.expect("head");
        let mut buffered = Buffered {
            limit: 50_000,
            over: "response body over the limit",
            ..Buffered::default()
        };
        let error = reader
            .body(&mut stream, head.framing, &mut buffered)
            .await
            .expect_err("over");
        assert!(error.to_string().contains("over the limit"), "{error}");
        // The header callback sees every field of the final answer and may refuse one.
        let mut stream = Trickle {
            bytes: b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n",
            step: 5,
        };
        let mut seen = Vec::new();
        Reader::default()
            .head(&mut stream, false, |h| {
                seen.push(h.name.to_string());
                Ok(())
            })
            .await
            .expect("head");
        assert_eq!(seen, ["A", "B", "Content-Length"]);
        let mut stream = Trickle {
            bytes: b"HTTP/1.1 200 OK\r\nBad: 1\r\n\r\n",
            step: 5,
        };
        let error = Reader::default()
            .head(&mut stream, false, |_| Err("a response header with an invalid value"))
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("invalid value"), "{error}");
    }
}

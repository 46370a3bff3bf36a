//! A request head read before hyper sees the connection: bounded, timed,
//! its framing checked (a head hyper would refuse is answered here), and
//! the bytes read replayed to hyper (`Prefixed`).

use super::*;

/// Reads one request head (and whatever followed it in the same reads):
/// `Ok(bytes)` once it parses, `Err((status, why))` for a head hyper would
/// refuse, the I/O error when the client goes away first.
pub(super) async fn read_head(stream: &mut TcpStream) -> std::io::Result<Result<Vec<u8>, (StatusCode, String)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                return Ok(check_framing(request.headers).map(|()| buf));
            }
            Ok(httparse::Status::Partial) if buf.len() >= MAX_BUFFER => {
                return Ok(Err((
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    format!("request head over {} KiB", MAX_BUFFER / 1024),
                )));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::Version) => {
                return Ok(Err((
                    StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                    "HTTP version not supported: HTTP/1.0 and HTTP/1.1 are".into(),
                )));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Ok(Err((
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "more than 64 header fields".into(),
                )));
            }
            Err(error) => {
                return Ok(Err((
                    StatusCode::BAD_REQUEST,
                    format!("malformed request head: {error}"),
                )));
            }
        }
    }
}

/// The body framing hyper would refuse: a Content-Length that is not one
/// number, or Content-Length with Transfer-Encoding (RFC 9112 6.3).
pub(super) fn check_framing(headers: &[httparse::Header<'_>]) -> Result<(), (StatusCode, String)> {
    let mut length: Option<&[u8]> = None;
    let mut chunked = false;
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let valid =
                !header.value.is_empty() && header.value.iter().all(u8::is_ascii_digit) && header.value.len() <= 19;
            if !valid || length.is_some_and(|l| l != header.value) {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "content-length {:?}: must be one number",
                        String::from_utf8_lossy(header.value)
                    ),
                ));
            }
            length = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && length.is_some() {
        return Err((
            StatusCode::BAD_REQUEST,
            "content-length and transfer-encoding together".into(),
        ));
    }
    Ok(())
}

/// A stream whose first bytes were already read: they are replayed first.
pub(super) struct Prefixed {
    pub(super) head: Vec<u8>,
    pub(super) at: usize,
    pub(super) stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = out.remaining().min(this.head.len() - this.at);
            out.put_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            if this.at == this.head.len() {
                this.head = Vec::new();
                this.at = 0;
            }
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut this.stream).poll_read(cx, out)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

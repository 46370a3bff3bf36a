//! Who this instance is: instance id, host name, private IP, availability zone.
//!
//! Flags win; with `--imds` the rest comes from the EC2 instance metadata
//! service (IMDSv2: a session token from `PUT /latest/api/token`, then reads
//! with that token); otherwise from the system.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

use crate::config::Args;

/// The identity reported by `/health` and in every Fibonacci answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub instance_id: String,
    pub host: String,
    pub private_ip: IpAddr,
    pub availability_zone: Option<String>,
}

/// Why the instance metadata service could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// The endpoint is not an `http://host[:port]` URL.
    #[error("--imds-endpoint {0:?} is not an http://host[:port] URL")]
    BadEndpoint(String),
    /// Connecting, writing or reading failed.
    #[error("IMDS request {path} failed")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// IMDS answered with a non-200 status.
    #[error("IMDS request {path} answered {status}")]
    Status { path: String, status: u16 },
    /// IMDS answered something that is not HTTP or not the expected value.
    #[error("IMDS request {path} answered malformed data: {detail}")]
    Malformed { path: String, detail: String },
}

impl Identity {
    /// Resolves the identity from flags, IMDS (when asked) and the system.
    pub fn resolve(args: &Args) -> Result<Self, ImdsError> {
        let imds = if args.imds {
            Some(ImdsClient::new(&args.imds_endpoint)?.session()?)
        } else {
            None
        };
        let host = match &args.hostname {
            Some(host) => host.clone(),
            None => system_hostname(),
        };
        let instance_id = match (&args.instance_id, &imds) {
            (Some(id), _) => id.clone(),
            (None, Some(session)) => session.get("meta-data/instance-id")?,
            (None, None) => host.clone(),
        };
        let private_ip = match (args.private_ip, &imds) {
            (Some(ip), _) => ip,
            (None, Some(session)) => {
                let path = "meta-data/local-ipv4";
                let text = session.get(path)?;
                text.parse().map_err(|_| ImdsError::Malformed {
                    path: path.into(),
                    detail: format!("{text:?} is not an IP address"),
                })?
            }
            (None, None) if !args.listen.ip().is_unspecified() => args.listen.ip(),
            (None, None) => first_non_loopback_ipv4().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4),
        };
        let availability_zone = match (&args.availability_zone, &imds) {
            (Some(az), _) => Some(az.clone()),
            (None, Some(session)) => Some(session.get("meta-data/placement/availability-zone")?),
            (None, None) => None,
        };
        Ok(Self {
            instance_id,
            host,
            private_ip,
            availability_zone,
        })
    }
}

/// The system's host name (`gethostname`), or `localhost` if it cannot be read.
pub fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes a
    // NUL-terminated name into it (truncated names are still terminated below).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len() - 1);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The first IPv4 address of an interface that is up and not loopback.
fn first_non_loopback_ipv4() -> Option<Ipv4Addr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return None;
        }
        let mut found = None;
        let mut cursor = head;
        while !cursor.is_null() {
            let entry = &*cursor;
            let up = entry.ifa_flags & libc::IFF_UP as u32 != 0;
            let loopback = entry.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
            if up && !loopback && !entry.ifa_addr.is_null() && i32::from((*entry.ifa_addr).sa_family) == libc::AF_INET {
                let addr = &*(entry.ifa_addr as *const libc::sockaddr_in);
                found = Some(Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)));
                break;
            }
            cursor = entry.ifa_next;
        }
        libc::freeifaddrs(head);
        found
    }
}

/// A minimal IMDSv2 client: two plain HTTP/1.1 requests at start-up do not
/// justify an HTTP client dependency in the instance image.
#[derive(Debug)]
struct ImdsClient {
    addr: SocketAddr,
    host: String,
}

#[derive(Debug)]
struct ImdsSession {
    client: ImdsClient,
    token: String,
}

const IMDS_TIMEOUT: Duration = Duration::from_secs(2);

impl ImdsClient {
    fn new(endpoint: &str) -> Result<Self, ImdsError> {
        let bad = || ImdsError::BadEndpoint(endpoint.to_string());
        let host = endpoint.strip_prefix("http://").ok_or_else(bad)?.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let addr = with_port.to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)?;
        Ok(Self {
            addr,
            host: host.to_string(),
        })
    }

    fn session(self) -> Result<ImdsSession, ImdsError> {
        let token = self.request(
            "PUT",
            "latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
        )?;
        Ok(ImdsSession { client: self, token })
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<String, ImdsError> {
        let io = |source| ImdsError::Io {
            path: path.to_string(),
            source,
        };
        let mut stream = TcpStream::connect_timeout(&self.addr, IMDS_TIMEOUT).map_err(io)?;
        stream.set_read_timeout(Some(IMDS_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(IMDS_TIMEOUT)).map_err(io)?;
        let mut request = format!(
            "{method} /{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n",
            self.host
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).map_err(io)?;
        let mut response = Vec::new();
        stream.take(64 * 1024).read_to_end(&mut response).map_err(io)?;
        parse_response(path, &response)
    }
}

impl ImdsSession {
    fn get(&self, path: &str) -> Result<String, ImdsError> {
        let value = self.client.request(
            "GET",
            &format!("latest/{path}"),
            &[("X-aws-ec2-metadata-token", &self.token)],
        )?;
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(ImdsError::Malformed {
                path: path.into(),
                detail: "empty value".into(),
            });
        }
        Ok(value)
    }
}

/// Parses an HTTP/1.x response read to its end: status 200 and the body
/// (bounded by Content-Length when present).
fn parse_response(path: &str, raw: &[u8]) -> Result<String, ImdsError> {
    let malformed = |detail: &str| ImdsError::Malformed {
        path: path.to_string(),
        detail: detail.to_string(),
    };
    let text = std::str::from_utf8(raw).map_err(|_| malformed("not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed("no HTTP status line"))?;
    if status != 200 {
        return Err(ImdsError::Status {
            path: path.to_string(),
            status,
        });
    }
    let length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, value)| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| malformed("bad Content-Length"))
        })
        .transpose()?;
    match length {
        Some(length) if length > body.len() => Err(malformed("body shorter than Content-Length")),
        Some(length) => Ok(body[..length].to_string()),
        None => Ok(body.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("workload").chain(extra.iter().copied())).expect("args")
    }

    #[test]
    fn flags_win() {
        let identity = Identity::resolve(&args(&[
            "--instance-id",
            "i-0abc",
            "--hostname",
            "web-1",
            "--private-ip",
            "127.0.1.7",
            "--availability-zone",
            "local-1a",
        ]))
        .expect("identity");
        assert_eq!(
            identity,
            Identity {
                instance_id: "i-0abc".into(),
                host: "web-1".into(),
                private_ip: "127.0.1.7".parse().expect("ip"),
                availability_zone: Some("local-1a".into()),
            }
        );
    }

    #[test]
    fn without_flags_the_listen_ip_and_host_name_are_used() {
        let identity = Identity::resolve(&args(&["--listen", "127.0.1.9:8080"])).expect("identity");
        assert_eq!(identity.private_ip.to_string(), "127.0.1.9");
        assert_eq!(identity.host, system_hostname());
        assert_eq!(identity.instance_id, identity.host);
        assert!(!identity.host.is_empty());
    }

    /// A fake IMDSv2 on loopback: the token from PUT must come back on every GET.
    fn fake_imds(requests: usize) -> (String, Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let handle = std::thread::spawn(move || {
            for _ in 0..requests {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).expect("read");
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let first = request.lines().next().unwrap_or_default().to_string();
                let has_token = request.contains("X-aws-ec2-metadata-token: tok-123");
                let body = match first.as_str() {
                    "PUT /latest/api/token HTTP/1.1" if request.contains("ttl-seconds: 21600") => Some("tok-123"),
                    "GET /latest/meta-data/instance-id HTTP/1.1" if has_token => Some("i-0123456789abcdef0"),
                    "GET /latest/meta-data/local-ipv4 HTTP/1.1" if has_token => Some("10.0.1.23"),
                    "GET /latest/meta-data/placement/availability-zone HTTP/1.1" if has_token => Some("eu-west-1a"),
                    _ => None,
                };
                log.lock().expect("log").push(first);
                let response = match body {
                    Some(body) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
                    None => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                stream.write_all(response.as_bytes()).expect("write");
            }
        });
        (endpoint, seen, handle)
    }

    #[test]
    fn imds_v2_supplies_what_flags_do_not() {
        let (endpoint, seen, server) = fake_imds(4);
        let identity = Identity::resolve(&args(&[
            "--imds",
            "--imds-endpoint",
            &endpoint,
            "--hostname",
            "ip-10-0-1-23",
        ]))
        .expect("identity");
        server.join().expect("server");
        assert_eq!(identity.instance_id, "i-0123456789abcdef0");
        assert_eq!(identity.private_ip.to_string(), "10.0.1.23");
        assert_eq!(identity.availability_zone.as_deref(), Some("eu-west-1a"));
        assert_eq!(seen.lock().expect("seen")[0], "PUT /latest/api/token HTTP/1.1");
    }

    #[test]
    fn imds_errors_name_the_request() {
        let (endpoint, _seen, server) = fake_imds(1);
        // Ask for a path the fake refuses: the error names it and its status.
        let client = ImdsClient::new(&endpoint).expect("client");
        let err = client.request("GET", "latest/meta-data/nope", &[]).expect_err("401");
        server.join().expect("server");
        assert_eq!(err.to_string(), "IMDS request latest/meta-data/nope answered 401");
        let err = ImdsClient::new("https://169.254.169.254").expect_err("https refused");
        assert!(err.to_string().contains("http://host[:port]"), "{err}");
    }

    #[test]
    fn response_parsing() {
        assert_eq!(
            parse_response("p", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").expect("ok"),
            "hi"
        );
        assert_eq!(parse_response("p", b"HTTP/1.0 200 OK\r\n\r\nrest").expect("ok"), "rest");
        assert!(matches!(
            parse_response("p", b"garbage"),
            Err(ImdsError::Malformed { .. })
        ));
        assert!(matches!(
            parse_response("p", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhi"),
            Err(ImdsError::Malformed { .. })
        ));
    }
}

//! The load balancer against scripted targets (raw TCP servers that answer
//! exactly the bytes a test gives them): every response framing, what the
//! target and the client see of each other's headers, retries, a target's
//! keep-alive close, and the outstanding count when a client goes away.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use localcloud::lb::{Algorithm, LbConfig, LoadBalancer, TargetHealth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted target does for one request.
#[derive(Debug, Clone)]
enum Step {
    /// Writes these bytes (flushed on their own).
    Send(Vec<u8>),
    /// Writes these bytes one at a time, pausing between them.
    Trickle(Vec<u8>),
    /// Closes the connection.
    Close,
    /// Never answers (keeps the connection open).
    Hang,
}

/// A request as the target received it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
    /// Which connection of the target carried it (in accept order).
    connection: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

type Script = Arc<dyn Fn(&Seen) -> Vec<Step> + Send + Sync>;

/// A raw target on 127.0.0.1; health checks (GET /health) are answered 200.
struct Target {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn target(script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let script: Script = Arc::new(script);
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let connection = {
                let mut count = connections.lock().unwrap();
                *count += 1;
                *count
            };
            tokio::spawn(serve(stream, connection, script.clone(), seen2.clone()));
        }
    });
    Target { addr, seen, task }
}

async fn serve(mut stream: TcpStream, connection: usize, script: Script, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    loop {
        // One request: head, then a Content-Length body.
        let (head_len, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.trim().parse::<usize>().expect("content-length"));
                break (end + 4, length);
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < head_len + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let request = Seen {
            head: String::from_utf8_lossy(&buf[..head_len - 4]).to_string(),
            body: buf[head_len..head_len + length].to_vec(),
            connection,
        };
        buf.drain(..head_len + length);
        if request.head.starts_with("GET /health ") {
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        let steps = script(&request);
        seen.lock().unwrap().push(request);
        for step in steps {
            match step {
                Step::Send(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Trickle(bytes) => {
                    for byte in bytes {
                        if stream.write_all(&[byte]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                Step::Close => return,
                Step::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
            }
        }
    }
}

fn ok(body: &str) -> Vec<Step> {
    vec![Step::Send(
        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes(),
    )]
}

/// A load balancer serving on a free port of 127.0.0.1, its targets healthy.
struct Lb {
    lb: Arc<LoadBalancer>,
    addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Lb {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn lb(targets: &[&Target]) -> Lb {
    let lb = LoadBalancer::new(LbConfig {
        algorithm: Algorithm::RoundRobin,
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        healthy_threshold: 1,
        unhealthy_threshold: 2,
        deregistration_delay: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..LbConfig::default()
    });
    for (k, t) in targets.iter().enumerate() {
        lb.register(&format!("i-{k}"), t.addr);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tasks = vec![lb.serve(listener), lb.start_health_checks()];
    let deadline = Instant::now() + Duration::from_secs(5);
    while (0..targets.len()).any(|k| lb.health(&format!("i-{k}")) != Some(TargetHealth::Healthy)) {
        assert!(Instant::now() < deadline, "targets never healthy: {:?}", lb.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Lb { lb, addr, tasks }
}

/// A response as the client received it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (a whole request; `Connection: close` is added) on a new
/// connection to `addr` and reads the answer up to the close.
async fn ask(addr: SocketAddr, request: &str) -> Answer {
    let (head, body) = request.split_once("\r\n\r\n").expect("a request head");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("{head}\r\nconnection: close\r\n\r\n{body}").as_bytes())
        .await
        .expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 10 s")
        .expect("read");
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(&raw) {
        Ok(httparse::Status::Complete(used)) => used,
        other => panic!("not a response ({other:?}): {:?}", String::from_utf8_lossy(&raw)),
    };
    Answer {
        status: response.code.expect("status"),
        headers: response
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).to_string()))
            .collect(),
        body: raw[used..].to_vec(),
    }
}

const GET: &str = "GET /x HTTP/1.1\r\nhost: example.test\r\n\r\n";

#[tokio::test]
async fn every_response_framing_reaches_the_client_and_the_connection_is_reused_when_it_can_be() {
    // (what the target answers, the body the client must get, whether the
    // target's connection can carry the next request)
    let mut big = String::new();
    for k in 0..20_000 {
        big.push_str(&format!("{k:08}\n"));
    }
    let cases: Vec<(&str, Vec<Step>, Vec<u8>, bool)> = vec![
        ("content-length", ok("hello"), b"hello".to_vec(), true),
        (
            "content-length, trickled byte by byte",
            vec![Step::Trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec())],
            b"hello".to_vec(),
            true,
        ),
        (
            "chunked with an extension and trailers, trickled",
            vec![Step::Trickle(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nx-trailer: 1\r\n\r\n".to_vec(),
            )],
            b"hello".to_vec(),
            true,
        ),
        (
            "a large chunked body",
            vec![Step::Send(
                format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n", big.len())
                    .into_bytes(),
            )],
            big.clone().into_bytes(),
            true,
        ),
        (
            "until close",
            vec![Step::Send(b"HTTP/1.1 200 OK\r\n\r\nhello until close".to_vec()), Step::Close],
            b"hello until close".to_vec(),
            false,
        ),
        (
            "an interim 100 then the answer",
            vec![Step::Send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi".to_vec())],
            b"hi".to_vec(),
            true,
        ),
        (
            "HTTP/1.0 without keep-alive",
            vec![Step::Send(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nhi".to_vec())],
            b"hi".to_vec(),
            false,
        ),
        (
            "Connection: close",
            vec![Step::Send(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nhi".to_vec())],
            b"hi".to_vec(),
            false,
        ),
    ];
    for (name, steps, body, reusable) in cases {
        let t = target(move |_| steps.clone()).await;
        let lb = lb(&[&t]).await;
        for round in 0..3 {
            let answer = ask(lb.addr, GET).await;
            assert_eq!(answer.status, 200, "{name}, request {round}");
            assert_eq!(answer.body, body, "{name}, request {round}");
            assert_eq!(
                answer.header("content-length"),
                Some(body.len().to_string().as_str()),
                "{name}: the client gets the decoded length"
            );
            assert_eq!(answer.header("transfer-encoding"), None, "{name}");
        }
        // The proxied requests share one connection exactly when the framing allows it.
        let mut used: Vec<usize> = t.seen.lock().unwrap().iter().map(|s| s.connection).collect();
        assert_eq!(used.len(), 3, "{name}");
        used.dedup();
        assert_eq!(used.len(), if reusable { 1 } else { 3 }, "{name}: connections {used:?}");
        let counters = lb.lb.counters();
        assert_eq!((counters.errors, counters.retries), (0, 0), "{name}: {counters:?}");
    }
}

#[tokio::test]
async fn bodiless_answers_end_at_their_head() {
    // HEAD gets the length of what GET would get, and no body; 204 and 304 have none.
    let t = target(|seen| {
        let line = seen.head.lines().next().unwrap_or_default().to_string();
        let answer: &[u8] = if line.starts_with("HEAD") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"
        } else if line.contains("/204") {
            b"HTTP/1.1 204 No Content\r\n\r\n"
        } else {
            b"HTTP/1.1 304 Not Modified\r\netag: \"a\"\r\n\r\n"
        };
        vec![Step::Send(answer.to_vec())]
    })
    .await;
    let lb = lb(&[&t]).await;
    for _ in 0..2 {
        let head = ask(lb.addr, "HEAD /x HTTP/1.1\r\nhost: h\r\n\r\n").await;
        assert_eq!((head.status, head.body.len()), (200, 0));
        assert_eq!(head.header("content-length"), Some("5"));
        let none = ask(lb.addr, "GET /204 HTTP/1.1\r\nhost: h\r\n\r\n").await;
        assert_eq!((none.status, none.body.len()), (204, 0));
        let not_modified = ask(lb.addr, "GET /304 HTTP/1.1\r\nhost: h\r\n\r\n").await;
        assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
        assert_eq!(not_modified.header("etag"), Some("\"a\""));
    }
    let mut used: Vec<usize> = t.seen.lock().unwrap().iter().map(|s| s.connection).collect();
    assert_eq!(used.len(), 6);
    used.dedup();
    assert_eq!(used.len(), 1, "one connection carried all six");
}

#[tokio::test]
async fn the_target_gets_end_to_end_headers_a_body_and_forwarded_for_and_the_client_no_hop_by_hop() {
    let t = target(|_| {
        vec![Step::Send(
            b"HTTP/1.1 201 Created\r\nkeep-alive: timeout=5\r\nconnection: keep-alive\r\nx-answer: yes\r\ncontent-length: 0\r\n\r\n"
                .to_vec(),
        )]
    })
    .await;
    let lb = lb(&[&t]).await;
    let answer = ask(
        lb.addr,
        "POST /items?id=7 HTTP/1.1\r\nhost: shop.test\r\nx-custom: a\r\nte: trailers\r\nkeep-alive: 300\r\nproxy-authorization: secret\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: https\r\ncontent-length: 4\r\n\r\nabcd",
    )
    .await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.header("x-answer"), Some("yes"));
    assert_eq!(
        answer.header("keep-alive"),
        None,
        "hop-by-hop from the target: {:?}",
        answer.headers
    );
    let seen = t.seen.lock().unwrap()[0].clone();
    assert!(seen.head.starts_with("POST /items?id=7 HTTP/1.1\r\n"), "{}", seen.head);
    assert_eq!(seen.body, b"abcd");
    assert_eq!(seen.header("content-length"), vec!["4"]);
    assert_eq!(seen.header("host"), vec!["shop.test"]);
    assert_eq!(seen.header("x-custom"), vec!["a"]);
    for hop in ["te", "keep-alive", "proxy-authorization", "connection"] {
        assert!(seen.header(hop).is_empty(), "{hop} forwarded: {}", seen.head);
    }
    // The client's address joins the list; the protocol is the load balancer's.
    assert_eq!(seen.header("x-forwarded-for"), vec!["10.0.0.1", "127.0.0.1"]);
    assert_eq!(seen.header("x-forwarded-proto"), vec!["http"]);

    // A chunked request body is forwarded with its length; a request
    // without Host (HTTP/1.0) gets the target's.
    let answer = ask(
        lb.addr,
        "PUT /c HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 201);
    let answer = ask(lb.addr, "GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(answer.status, 201);
    let seen = t.seen.lock().unwrap().clone();
    assert_eq!(seen[1].body, b"abc");
    assert_eq!(seen[1].header("content-length"), vec!["3"]);
    assert!(seen[1].header("transfer-encoding").is_empty());
    assert_eq!(seen[2].header("host"), vec![t.addr.to_string()]);
}

#[tokio::test]
async fn a_connection_the_target_closed_after_answering_costs_no_failed_request() {
    // The target answers and closes without saying so (as a keep-alive
    // timeout does): the pooled connection is dead when the next request
    // comes. With a single target there is nobody to retry on: the request
    // must go out again on a new connection to the same target.
    let t = target(|_| {
        let mut steps = ok("once");
        steps.push(Step::Close);
        steps
    })
    .await;
    let lb = lb(&[&t]).await;
    for k in 0..5 {
        let get = ask(lb.addr, GET).await;
        assert_eq!((get.status, get.body.as_slice()), (200, b"once".as_slice()), "GET {k}");
        // Not idempotent: the pooled connection is checked before it is used.
        let post = ask(lb.addr, "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 1\r\n\r\nx").await;
        assert_eq!(
            (post.status, post.body.as_slice()),
            (200, b"once".as_slice()),
            "POST {k}"
        );
    }
    let counters = lb.lb.counters();
    assert_eq!((counters.errors, counters.retries), (0, 0), "{counters:?}");
    assert_eq!(t.seen.lock().unwrap().len(), 10, "each request reached the target once");
}

#[tokio::test]
async fn a_get_whose_connection_fails_goes_to_another_target_once_and_a_post_does_not() {
    // `bad` accepts and closes before answering; `good` answers.
    let bad = target(|_| vec![Step::Close]).await;
    let good = target(|_| ok("good")).await;
    let lb = lb(&[&bad, &good]).await;
    for _ in 0..4 {
        let answer = ask(lb.addr, GET).await;
        assert_eq!((answer.status, answer.body.as_slice()), (200, b"good".as_slice()));
    }
    let retries = lb.lb.counters().retries;
    let first_to_bad = bad.seen.lock().unwrap().len() as u64;
    assert!(first_to_bad >= 1, "round robin never tried the bad target");
    assert_eq!(
        retries, first_to_bad,
        "each GET the bad target dropped went to the good one"
    );
    assert_eq!(good.seen.lock().unwrap().len(), 4);
    // The bad target may have processed a POST before closing: never sent twice.
    let mut failed = 0u64;
    for _ in 0..4 {
        let answer = ask(lb.addr, "POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 1\r\n\r\nx").await;
        match answer.status {
            200 => {}
            502 => {
                failed += 1;
                let text = String::from_utf8_lossy(&answer.body).to_string();
                assert!(text.contains("target i-0 failed"), "{text}");
            }
            other => panic!("status {other}"),
        }
    }
    assert!(failed >= 1, "round robin never sent a POST to the bad target");
    assert_eq!(failed, bad.seen.lock().unwrap().len() as u64 - first_to_bad);
    assert_eq!(lb.lb.counters().retries, retries, "no POST retried");
}

#[tokio::test]
async fn a_broken_answer_is_a_502_naming_the_target_and_is_not_retried() {
    let cases: [(&str, &[u8]); 4] = [
        ("not HTTP", b"SSH-2.0-OpenSSH\r\n\r\n"),
        ("bad length", b"HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\n"),
        (
            "two lengths",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        ),
        (
            "an upgrade",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        ),
    ];
    for (name, bytes) in cases {
        let t = target(move |_| vec![Step::Send(bytes.to_vec()), Step::Close]).await;
        let other = target(|_| ok("other")).await;
        let lb = lb(&[&t, &other]).await;
        let mut saw_502 = false;
        for _ in 0..2 {
            let answer = ask(lb.addr, GET).await;
            if answer.status == 502 {
                saw_502 = true;
                let text = String::from_utf8_lossy(&answer.body).to_string();
                assert!(text.contains("target i-0 failed"), "{name}: {text}");
            } else {
                assert_eq!(answer.body, b"other", "{name}");
            }
        }
        assert!(saw_502, "{name}");
        assert_eq!(lb.lb.counters().retries, 0, "{name}: an answer arrived, so no retry");
    }
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_nothing_outstanding() {
    let t = target(|_| vec![Step::Hang]).await;
    let lb = lb(&[&t]).await;
    let mut stream = TcpStream::connect(lb.addr).await.expect("connect");
    stream.write_all(GET.as_bytes()).await.expect("write");
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the request never reached the target");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lb.lb.status()[0].outstanding, 1);
    drop(stream);
    // Draining waits for outstanding requests: a request nobody waits for
    // any more must not hold it for the whole deregistration delay.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lb.lb.status()[0].outstanding != 0 {
        assert!(Instant::now() < deadline, "still outstanding: {:?}", lb.lb.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    lb.lb.deregister("i-0").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "drained in {:?}",
        started.elapsed()
    );
}

/// Issue 25.8: a malformed chunked body was answered 413 "over 1 MiB"; it is
/// a 400 saying what is wrong, and only a body over the limit is a 413.
#[tokio::test]
async fn a_malformed_chunked_body_is_a_400_and_only_an_oversized_one_a_413() {
    let t = target(|_| ok("fine")).await;
    let lb = lb(&[&t]).await;
    let post =
        |body: &str| format!("POST /x HTTP/1.1\r\nhost: example.test\r\ntransfer-encoding: chunked\r\n\r\n{body}");
    let answer = ask(lb.addr, &post("zz\r\nnot hex\r\n0\r\n\r\n")).await;
    assert_eq!(answer.status, 400, "{:?}", String::from_utf8_lossy(&answer.body));
    let text = String::from_utf8_lossy(&answer.body).to_string();
    assert!(text.starts_with("malformed request body:"), "{text}");
    let big = format!("{:x}\r\n{}\r\n0\r\n\r\n", 2 << 20, "a".repeat(2 << 20));
    let answer = ask(lb.addr, &post(&big)).await;
    assert_eq!(answer.status, 413);
    assert_eq!(String::from_utf8_lossy(&answer.body), "request body over 1 MiB\n");
    let answer = ask(lb.addr, &post("4\r\nfine\r\n0\r\n\r\n")).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, b"fine".as_slice()));
}

/// ALB docs, "CloudWatch metrics for your Application Load Balancer":
/// RequestCount is "only incremented for requests where the load balancer
/// node was able to choose a target"; the 503s answered for want of one are
/// HTTPCode_ELB_503_Count. The counters the sampler publishes keep the two apart.
#[tokio::test]
async fn requests_with_no_target_are_counted_apart_from_routed_ones() {
    let empty = lb(&[]).await;
    for _ in 0..3 {
        assert_eq!(ask(empty.addr, GET).await.status, 503);
    }
    let counters = empty.lb.counters();
    assert_eq!(
        (counters.requests, counters.routed, counters.no_target),
        (3, 0, 3),
        "{counters:?}"
    );
    let t = target(|_| ok("hi")).await;
    let one = lb(&[&t]).await;
    assert_eq!(ask(one.addr, GET).await.status, 200);
    let counters = one.lb.counters();
    assert_eq!(
        (counters.requests, counters.routed, counters.no_target),
        (1, 1, 0),
        "{counters:?}"
    );
}

//! The engine's HTTP/1.1 client against scripted servers on loopback: every
//! framing RFC 9112 allows for a GET's answer, answers split at every byte,
//! keep-alive rules, and broken answers classified, never a panic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use loadtest::h1::{Connection, Error, SCANNED};

/// How the server writes each answer.
#[derive(Clone, Copy)]
enum Pace {
    /// In one write.
    Whole,
    /// One byte per write (each its own segment: partial reads everywhere).
    Bytewise,
}

/// A server on a free loopback port that answers requests with `answers`
/// in order, then closes the connection. Returns the address and how many
/// connections it accepted.
fn server(answers: Vec<Vec<u8>>, pace: Pace) -> (String, Arc<AtomicUsize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let handle = std::thread::spawn(move || {
        // The answers go out in order over however many connections the
        // client opens (the tests expect one unless an answer closes it).
        let mut answers = answers.iter().peekable();
        while answers.peek().is_some() {
            let Ok((mut stream, _)) = listener.accept() else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            stream.set_nodelay(true).expect("nodelay");
            stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            while let Some(answer) = answers.peek() {
                if !read_request(&mut stream) {
                    break;
                }
                match pace {
                    Pace::Whole => stream.write_all(answer).expect("write"),
                    Pace::Bytewise => {
                        for byte in answer.iter() {
                            stream.write_all(&[*byte]).expect("write");
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                }
                answers.next();
            }
        }
    });
    (address, accepted, handle)
}

/// Reads one request head; false at the end of the connection.
fn read_request(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    assert!(
        head.starts_with(b"GET /fibo/20 HTTP/1.1\r\nHost: 127.0.0.1:"),
        "{head:?}"
    );
    true
}

fn text(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

async fn connect(address: &str) -> Connection {
    Connection::connect(address, "/fibo/20").await.expect("connect")
}

#[tokio::test]
async fn keep_alive_answers_by_length_reuse_one_connection() {
    let line = "Computed by vm-1 with private ip 10.0.0.7\n";
    let (address, accepted, server) = server(vec![text(line), text(line), text("")], Pace::Whole);
    let mut connection = connect(&address).await;
    for expected in [line, line, ""] {
        let answer = connection.get().await.expect("answer");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, expected.as_bytes());
        assert_eq!(answer.length, expected.len() as u64);
        assert!(answer.keep_alive);
    }
    drop(connection);
    server.join().expect("server");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn every_framing_split_at_every_byte() {
    let answers = vec![
        // Chunked with an extension and a trailer.
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: t\r\n\r\n"
            .to_vec(),
        // No body by status, then an interim 100 before the final answer.
        b"HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n".to_vec(),
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy".to_vec(),
        // HTTP/1.0 with an explicit keep-alive.
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        // To the end of the connection.
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(),
    ];
    let (address, accepted, server) = server(answers, Pace::Bytewise);
    let mut connection = connect(&address).await;
    let expected: [(u16, &[u8], bool); 5] = [
        (200, b"hello, world", true),
        (204, b"", true),
        (503, b"busy", true),
        (200, b"ok", true),
        (200, b"until the end", false),
    ];
    for (status, body, keep_alive) in expected {
        let answer = connection.get().await.expect("answer");
        assert_eq!(
            (answer.status, answer.body, answer.keep_alive),
            (status, body, keep_alive)
        );
        assert_eq!(answer.length, body.len() as u64);
    }
    server.join().expect("server");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn closing_answers_end_the_connection() {
    for answer in [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        // More bytes than the framing says: not to be trusted for the next request.
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA".to_vec(),
    ] {
        let (address, _, server) = server(vec![answer], Pace::Whole);
        let mut connection = connect(&address).await;
        let answer = connection.get().await.expect("answer");
        assert_eq!((answer.status, answer.body), (200, &b"ok"[..]));
        assert!(!answer.keep_alive);
        server.join().expect("server");
    }
}

#[tokio::test]
async fn a_large_body_is_counted_not_kept() {
    let body = "x".repeat(1_000_000);
    let (address, _, server) = server(vec![text(&body)], Pace::Whole);
    let mut connection = connect(&address).await;
    let answer = connection.get().await.expect("answer");
    assert_eq!(answer.length, 1_000_000);
    assert_eq!(answer.body.len(), SCANNED);
    server.join().expect("server");
}

#[tokio::test]
async fn broken_answers_are_errors() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
            "invalid answer: not an HTTP/1.x response head",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "closed the connection",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            "two different Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "not a number"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "a bad chunk size line",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
            "not followed by CRLF",
        ),
    ];
    for (answer, expected) in cases {
        let (address, _, server) = server(vec![answer.to_vec()], Pace::Whole);
        let mut connection = connect(&address).await;
        let error = connection.get().await.expect_err(expected);
        assert!(error.to_string().contains(expected), "{error} (wanted {expected})");
        drop(connection);
        server.join().expect("server");
    }
    // Nothing at all.
    let (address, _, server) = server(vec![Vec::new()], Pace::Whole);
    let mut connection = connect(&address).await;
    assert!(matches!(connection.get().await, Err(Error::Closed | Error::Io(_))));
    server.join().expect("server");
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_server_is_not_reused() {
    let (address, _, server) = server(vec![text("ok")], Pace::Whole);
    let mut connection = connect(&address).await;
    connection.get().await.expect("answer");
    assert!(connection.reusable(), "just used");
    // The server closes it after its one answer; a keep-alive timeout looks the same.
    server.join().expect("server");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!connection.reusable());
}

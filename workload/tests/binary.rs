//! The real `workload` binary: start-up errors, serving, and drain on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_workload");

/// A running binary, killed if the test fails before stopping it.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--hostname",
                "test-host",
                "--private-ip",
                "127.0.1.5",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn workload");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("socket address");
        Self { child, addr }
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill on our own child's pid with a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "workload did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one GET and returns (status, body); the connection closes after.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn health_json(addr: SocketAddr) -> serde_json::Value {
    let (status, body) = get(addr, "/health").expect("health");
    assert_eq!(status, 200);
    serde_json::from_str(&body).expect("health json")
}

#[test]
fn serves_and_exits_zero_on_sigint() {
    let mut server = Server::start(&[]);
    assert_eq!(get(server.addr, "/").expect("index"), (200, "I am healthy".to_string()));
    assert_eq!(
        get(server.addr, "/fibo/20").expect("fibo"),
        (
            200,
            "Fibo(20) = 10946 \nComputed by test-host with private ip 127.0.1.5 \n".to_string()
        )
    );
    server.signal(libc::SIGINT);
    assert!(server.wait(Duration::from_secs(10)).success());
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut server = Server::start(&["--compute-workers", "1", "--drain-timeout", "30s"]);
    let addr = server.addr;
    // A computation long enough to be in flight when the signal arrives.
    let in_flight = std::thread::spawn(move || get(addr, "/fibo/37"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while health_json(addr)["compute"]["running"] != 1 {
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.signal(libc::SIGTERM);
    let (status, body) = in_flight.join().expect("join").expect("in-flight request answered");
    assert_eq!(status, 200);
    assert!(body.starts_with("Fibo(37) = 39088169 \n"), "{body}");
    assert!(server.wait(Duration::from_secs(30)).success(), "exit 0 after drain");
    // Stopped: no longer accepting.
    assert!(get(addr, "/").is_err());
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let output = Command::new(BIN).args(["--cpu-limit=-3"]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cpu-limit"), "{stderr}");

    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--log", "loud"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--log") && stderr.contains("\"loud\""), "{stderr}");
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = Command::new(BIN).args(["--listen", &addr]).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("could not listen on {addr}")), "{stderr}");
}

/// Issue 25.8: with its compute thread paced by a tiny CPU cap, the service
/// ignored --drain-timeout (30 s instead of 2 s: the exit waited for the
/// paced job). The drain's deadline counts from the signal.
#[test]
fn the_drain_timeout_holds_when_a_tiny_cpu_cap_paces_the_computation() {
    let mut server = Server::start(&["--compute-workers", "1", "--cpu-limit", "0.01", "--drain-timeout", "2s"]);
    let addr = server.addr;
    // At 1% of a core this takes minutes.
    let in_flight = std::thread::spawn(move || get(addr, "/fibo/34"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while health_json(addr)["compute"]["running"] != 1 {
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    let status = server.wait(Duration::from_secs(30));
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_millis(3500),
        "exit {took:?} after SIGTERM with --drain-timeout 2s"
    );
    assert!(
        took >= Duration::from_millis(1900),
        "exit {took:?}: before the drain timeout, the request was cut"
    );
    let answer = in_flight.join().expect("join");
    assert!(
        answer.is_err() || answer.is_ok_and(|(status, _)| status != 200),
        "the paced job cannot have finished"
    );
}

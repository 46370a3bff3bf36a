//! A minimal Lambda Runtime API on loopback, enough to run a real function
//! binary: `GET /2018-06-01/runtime/invocation/next` hands out queued events,
//! `POST .../{id}/response` and `.../{id}/error` and `/runtime/init/error`
//! are collected. Test support (the local cloud will carry the full one).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response {
        id: String,
        body: String,
        at: Instant,
    },
    Error {
        id: String,
        error_type: String,
        body: String,
        at: Instant,
    },
    InitError {
        body: String,
        at: Instant,
    },
}

#[derive(Default)]
struct Queue {
    events: VecDeque<(String, String)>,
    closed: bool,
}

/// The server; dropping it stops handing out events.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: Arc<(Mutex<Queue>, Condvar)>,
    answers: Receiver<Answer>,
    next_id: u64,
}

impl RuntimeApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let (sender, answers) = channel();
        let shared = Arc::clone(&queue);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let queue = Arc::clone(&shared);
                let sender = sender.clone();
                std::thread::spawn(move || serve(stream, &queue, &sender));
            }
        });
        Self {
            addr,
            queue,
            answers,
            next_id: 0,
        }
    }

    /// Queues an event; returns its request id.
    pub fn invoke(&mut self, event: &str) -> String {
        self.next_id += 1;
        let id = format!("req-{}", self.next_id);
        let (lock, ready) = &*self.queue;
        lock.lock()
            .expect("queue")
            .events
            .push_back((id.clone(), event.to_string()));
        ready.notify_all();
        id
    }

    /// The next answer, waiting at most `within`.
    pub fn answer(&self, within: Duration) -> Option<Answer> {
        self.answers.recv_timeout(within).ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let (lock, ready) = &*self.queue;
        lock.lock().expect("queue").closed = true;
        ready.notify_all();
    }
}

fn serve(stream: TcpStream, queue: &(Mutex<Queue>, Condvar), answers: &Sender<Answer>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut error_type = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "lambda-runtime-function-error-type" => error_type = value.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let at = Instant::now();
        let reply = match (method, path) {
            ("GET", "/2018-06-01/runtime/invocation/next") => {
                let (lock, ready) = queue;
                let mut state = lock.lock().expect("queue");
                while state.events.is_empty() && !state.closed {
                    state = ready.wait(state).expect("wait");
                }
                let Some((id, event)) = state.events.pop_front() else {
                    return;
                };
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis()
                    + 30_000;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{event}",
                    event.len()
                )
            }
            ("POST", "/2018-06-01/runtime/init/error") => {
                let _ = answers.send(Answer::InitError { body, at });
                accepted()
            }
            ("POST", path) if path.starts_with("/2018-06-01/runtime/invocation/") => {
                let rest = &path["/2018-06-01/runtime/invocation/".len()..];
                let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
                let answer = match kind {
                    "response" => Answer::Response {
                        id: id.into(),
                        body,
                        at,
                    },
                    _ => Answer::Error {
                        id: id.into(),
                        error_type: error_type.clone(),
                        body,
                        at,
                    },
                };
                let _ = answers.send(answer);
                accepted()
            }
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn accepted() -> String {
    "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}"
        .to_string()
}

/// Starts a function binary against `api`, with AWS pointed at a closed
/// loopback port so no call can leave the machine.
/// `SCALER_LOAD_BALANCERS` as the template sets it: every group of the
/// policy file its own load balancer (an unreadable file: none, so the
/// function's own refusal of the file is what a test sees).
fn load_balancers(policy: &str) -> String {
    functions::policy::Policy::load(std::path::Path::new(policy))
        .map(|p| {
            p.group_names()
                .iter()
                .map(|g| format!("{g}=app/{g}/0123456789abcdef"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub fn start_function(binary: &str, api: &RuntimeApi, policy: &str, extra_env: &[(&str, &str)]) -> std::process::Child {
    let mut command = std::process::Command::new(binary);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("SCALER_POLICY", policy)
        .env("SCALER_LOAD_BALANCERS", load_balancers(policy))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command.spawn().expect("start function binary")
}

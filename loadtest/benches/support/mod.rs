//! What the benchmarks that drive real processes share: flags, free ports,
//! the release binaries, child processes stopped when dropped, one
//! `loadtest run` and a local cloud started from a policy text.

#![allow(dead_code)] // each benchmark uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The value after `--name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A whole number >= 1 after `name`, else `default`.
pub fn count_arg(name: &str, default: usize) -> usize {
    arg(name).map_or(default, |n| match n.parse() {
        Ok(count) if count >= 1 => count,
        _ => panic!("{name}: a whole number >= 1, got {n:?}"),
    })
}

/// A group of a local cloud's status view.
pub fn group<'a>(status: &'a localcloud::cloud::Status, name: &str) -> &'a localcloud::cloud::GroupStatus {
    status
        .groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("group {name} in the local cloud's status"))
}

/// `--duration` (humantime), else `default`.
pub fn duration_arg(default: Duration) -> Duration {
    arg("--duration").map_or(default, |d| {
        humantime::parse_duration(&d).unwrap_or_else(|e| panic!("--duration: {e} (e.g. 5s), got {d:?}"))
    })
}

/// Whether this runs in CI (`CI=true` or `CI=1`), where a missing tool is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A program on PATH or in the sbin directories.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port} after 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds the release binaries (the workspace's one feature set of
/// benchmarks: `cargo bench --workspace` and .ci/run's release build use
/// the same, so nothing is compiled twice) and names them.
pub fn release_binaries() -> impl Fn(&str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "-q", "--release", "--workspace", "--bins", "--bench", "*"])
        .current_dir(&root)
        .status()
        .is_ok_and(|s| s.success());
    assert!(built, "cargo build --release of the binaries failed");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    move |name: &str| target.join("release").join(name)
}

/// A new directory for one run's files.
pub fn scratch_dir(bench: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{bench}-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Kills the child process when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; SIGTERM lets nginx and localcloud stop their children.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `loadtest run`, from its JSON report.
#[derive(Debug, Clone)]
pub struct Run {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub peak_memory_mb: f64,
    pub requests: u64,
    /// Requests without a 2xx answer.
    pub failed: u64,
    pub report: serde_json::Value,
}

impl Run {
    /// The answers that were not 2xx and the errors, e.g. `502: 3, reset: 1`.
    pub fn failures(&self) -> String {
        let statuses = self.report["statuses"].as_object().into_iter().flatten();
        let errors = self.report["errors"].as_object().into_iter().flatten();
        let listed: Vec<String> = statuses
            .filter(|(status, _)| !status.starts_with('2'))
            .chain(errors)
            .map(|(what, count)| format!("{what}: {count}"))
            .collect();
        if listed.is_empty() {
            "none".into()
        } else {
            listed.join(", ")
        }
    }
}

/// Runs `loadtest run URL ARGS... --json` to its end.
// The child is reaped by wait4 (which also gives its peak memory), not by Child::wait.
#[allow(clippy::zombie_processes)]
pub fn loadtest(binary: &Path, url: &str, args: &[&str]) -> Run {
    let child = Command::new(binary)
        .args(["run", url])
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("loadtest runs");
    let pid = child.id() as i32;
    let mut stdout = child.stdout.expect("stdout");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).expect("read");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 on our own child fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers.
    unsafe {
        libc::wait4(pid, &mut status, 0, &mut usage);
    }
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let requests = report["requests"].as_u64().unwrap_or(0);
    Run {
        requests_per_second: report["requests_per_second"].as_f64().unwrap_or(0.0),
        p50_ms: report["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        p99_ms: report["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        peak_memory_mb: usage.ru_maxrss as f64 / 1024.0,
        requests,
        failed: requests.saturating_sub(report["successes"].as_u64().unwrap_or(0)),
        report,
    }
}

/// A `localcloud up --no-functions` on free ports, stopped when dropped.
pub struct LocalCloud {
    /// The load balancer of each group, in the policy's order.
    pub load_balancers: Vec<(String, String)>,
    /// The control API (`HOST:PORT`).
    pub control: String,
    binary: PathBuf,
    _process: Guard,
}

impl LocalCloud {
    /// Starts the local cloud of `policy` (a policy file's text) with
    /// instances on 127.A.`subnet`.N, plus `args`; returns once every
    /// group's load balancer is listening.
    pub fn start(bin: &dyn Fn(&str) -> PathBuf, dir: &Path, policy: &str, subnet: u8, args: &[&str]) -> Self {
        let policy_file = dir.join("policy.toml");
        std::fs::write(&policy_file, policy).expect("policy");
        let groups = policy.matches("[[group]]").count();
        let mut child = Command::new(bin("localcloud"))
            .args(["up", "--no-functions", "--lb-port", "0", "--control-port", "0"])
            .args(["--subnet", &format!("{}.{subnet}", 100 + std::process::id() % 100)])
            .arg("--policy")
            .arg(&policy_file)
            .arg("--workload")
            .arg(bin("workload"))
            .arg("--log-dir")
            .arg(dir.join("logs"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("localcloud");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"))
            .lines()
            .map_while(Result::ok);
        let (mut control, mut load_balancers) = (None, Vec::new());
        for line in lines.by_ref() {
            if let Some(rest) = line.strip_prefix("control API: http://") {
                control = rest.split_whitespace().next().map(str::to_string);
            } else if let Some((name, lb)) = line
                .strip_prefix("group ")
                .and_then(|rest| rest.split_once(": load balancer http://"))
            {
                load_balancers.push((name.to_string(), lb.trim().to_string()));
            }
            if load_balancers.len() == groups {
                break;
            }
        }
        // Keep reading its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let process = Guard(child);
        assert_eq!(load_balancers.len(), groups, "localcloud did not start every group");
        Self {
            load_balancers,
            control: control.expect("the control API's address"),
            binary: bin("localcloud"),
            _process: process,
        }
    }

    /// The first group's load balancer (`HOST:PORT`).
    pub fn lb(&self) -> &str {
        &self.load_balancers[0].1
    }

    /// Runs `localcloud COMMAND ARGS... --control ADDR` and returns its output.
    pub fn command(&self, command: &str, args: &[&str]) -> String {
        let out = Command::new(&self.binary)
            .arg(command)
            .args(args)
            .args(["--control", &self.control])
            .output()
            .expect("localcloud runs");
        assert!(
            out.status.success(),
            "localcloud {command} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The status view (`GET /status`).
    pub fn status(&self) -> localcloud::cloud::Status {
        let text = self.command("status", &["--json"]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("localcloud status --json: {e}: {text}"))
    }
}

/// How a report names a target's outcome.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

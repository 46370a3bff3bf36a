//! The `localcloud` binary: up, status, faults, clean stop on SIGTERM, and
//! no orphan instance when it is killed with SIGKILL.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = "[[group]]\nname = \"web\"\nmin = 2\nmax = 4\n";

/// Starts `localcloud up` on free ports; returns the child, the control address and the instance addresses' subnet.
fn up(test: u8) -> (Child, String, String) {
    up_with(test, true)
}

/// As [`up`]; with `keep_reading` false, stdout is closed after its first
/// line (as `localcloud up | head -1` does).
fn up_with(test: u8, keep_reading: bool) -> (Child, String, String) {
    let dir = std::env::temp_dir().join(format!("localcloud-bin-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    let subnet = format!("{}.{}", 100 + std::process::id() % 100, 200 + u32::from(test));
    let mut child = Command::new(env!("CARGO_BIN_EXE_localcloud"))
        .args([
            "up",
            "--speed",
            "60",
            "--boot",
            "30s",
            "--lb-port",
            "0",
            "--control-port",
            "0",
            "--subnet",
            &subnet,
        ])
        .arg("--policy")
        .arg(&policy)
        .arg("--workload")
        .arg(support::workload_bin())
        .arg("--functions")
        .arg(support::binaries())
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .stdout(Stdio::piped())
        .stderr(if keep_reading { Stdio::inherit() } else { Stdio::piped() })
        .spawn()
        .expect("localcloud up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    let control = first
        .strip_prefix("control API: http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    if keep_reading {
        // Keep reading so the pipe never fills.
        std::thread::spawn(move || for _ in lines {});
    }
    (child, control, format!("127.{subnet}"))
}

fn localcloud(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_localcloud"))
        .args(args)
        .output()
        .expect("localcloud")
}

/// Addresses of in-service instances, from `localcloud status --json`.
fn instances(control: &str) -> Vec<String> {
    let out = localcloud(&["status", "--json", "--control", control]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    status["groups"][0]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["state"] == "InService")
        .map(|i| format!("{}:8080", i["ip"].as_str().expect("ip")))
        .collect()
}

fn wait_for_two(control: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let addrs = instances(control);
        if addrs.len() == 2 {
            return addrs;
        }
        assert!(Instant::now() < deadline, "no 2 instances in service within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_closed(addrs: &[String], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if addrs.iter().all(|a| std::net::TcpStream::connect(a).is_err()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn status_faults_and_a_clean_stop_on_sigterm() {
    let (mut child, control, subnet) = up(1);
    let addrs = wait_for_two(&control);
    assert!(addrs.iter().all(|a| a.starts_with(&subnet)), "{addrs:?} in {subnet}");
    let out = localcloud(&["status", "--control", &control]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("group web: min 2 max 4 desired 2, 2 in service"),
        "{text}"
    );
    assert!(text.contains("Launching a new instance"), "{text}");
    let out = localcloud(&["set-desired", "--control", &control, "web", "9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("desired 9 is outside min..=max (2..=4)"));
    let out = localcloud(&["stop-az", "--control", &control, "local-1z"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no availability zone \"local-1z\""));

    // SIGTERM: every instance stops, then the local cloud exits 0.
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status}");
    assert!(
        all_closed(&addrs, Duration::from_secs(1)),
        "instances outlived the local cloud"
    );
}

#[test]
fn no_orphan_instances_when_the_local_cloud_is_killed() {
    let (mut child, control, _) = up(2);
    let addrs = wait_for_two(&control);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        all_closed(&addrs, Duration::from_secs(5)),
        "instances outlived a killed local cloud: {addrs:?}"
    );
}

#[test]
fn bad_flags_name_the_flag_and_the_allowed_values() {
    for (args, expected) in [
        (vec!["up", "--speed", "0"], "must be a number from 1 to 3600"),
        (vec!["up", "--subnet", "1.2.3"], "must be A.B"),
        (vec!["up", "--azs", "9"], "--azs"),
        (vec!["up", "--policy", "/nonexistent.toml"], "/nonexistent.toml"),
        (
            vec!["status", "--control", "127.0.0.1:1"],
            "no local cloud answers at 127.0.0.1:1",
        ),
    ] {
        let out = localcloud(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Issue 25.3: `localcloud up | head -1` used to panic on the next status
/// line and kill every instance without draining.
#[test]
fn a_closed_stdout_does_not_stop_the_cloud() {
    let (mut child, control, _) = up_with(3, false);
    // The instances coming up print status lines into the closed pipe.
    let addrs = wait_for_two(&control);
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().expect("wait").is_none(), "the local cloud exited");
    assert_eq!(instances(&control), addrs, "the same instances serve on");
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let output = child.wait_with_output().expect("exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: {stderr}", output.status);
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        all_closed(&addrs, Duration::from_secs(1)),
        "instances outlived the local cloud"
    );
}

/// Issue 25.4: `--health-interval 0s` panicked the health checker (the group
/// looked up, the load balancer answered 503 forever) and `--boot
/// 99999999999d` overflowed the controller's timestamps. Every duration and
/// limit is checked at start: exit 2 naming the flag and the allowed range.
#[test]
fn out_of_range_durations_and_limits_exit_2_naming_the_flag() {
    let dir = std::env::temp_dir().join(format!("localcloud-bin-{}-flags", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    let big_max = dir.join("big.toml");
    std::fs::write(&big_max, "[[group]]\nname = \"web\"\nmin = 1\nmax = 300\n").expect("policy");
    for (flag, value, expected) in [
        (
            "--health-interval",
            "0s",
            "lb.interval (--health-interval) = 0s: must be 10ms to 5m",
        ),
        ("--boot", "99999999999d", "boot (--boot) = "),
        ("--health-timeout", "1h", "(--health-timeout) = 1h: must be 10ms to 2m"),
        (
            "--health-grace",
            "2days",
            "(--health-grace) = 2days: must be 0s to 1day",
        ),
        (
            "--deregistration-delay",
            "2h",
            "(--deregistration-delay) = 2h: must be 0s to 1h",
        ),
        ("--drain-timeout", "2h", "(--drain-timeout) = 2h: must be 0s to 1h"),
        ("--idle-timeout", "0s", "(--idle-timeout) = 0s: must be 100ms to 4000s"),
        (
            "--max-connections",
            "0",
            "(--max-connections) = 0: must be 1 to 1000000",
        ),
        (
            "--max-connections",
            "1000000000",
            "--max-connections 1000000000: must be at most",
        ),
        ("--cpu-limit", "1e-300", "cpu_limit (--cpu-limit) = 0.000"),
        // CloudWatch shows a minute 2-3 minutes late: sooner is more lenient than AWS.
        (
            "--ingestion-delay",
            "1m",
            "ingestion_delay (--ingestion-delay) = 1m: must be 3m (CloudWatch's) to 1h (cloud time)",
        ),
        (
            "--policy",
            big_max.to_str().expect("path"),
            "group web max 300: must be at most 254 instances per group",
        ),
        // Exists, but nothing can be written there (not even as root).
        ("--log-dir", "/proc", "cannot write instance logs to /proc (--log-dir)"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_localcloud"));
        command.args(["up", "--lb-port", "0", "--control-port", "0", "--no-functions"]);
        if flag != "--policy" {
            command.arg("--policy").arg(&policy);
        }
        if flag != "--log-dir" {
            command.arg("--log-dir").arg(dir.join("logs"));
        }
        let mut child = command
            .args([flag, value])
            .arg("--workload")
            .arg(support::workload_bin())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("localcloud up");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{flag} {value}: accepted (still running after 20 s)");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
        assert_eq!(status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
    }
}

//! `localcloud up` (part of the binary, not the library): the cloud started
//! from the flags, its progress printed, a summary at the end.

use super::*;

pub(crate) async fn run_up(up: Up) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCALCLOUD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let policy = Policy::load(&up.policy)?;
    let shadow = match &up.shadow {
        Some(file) => Some(localcloud::ShadowPolicy {
            policy: Policy::load(file).with_context(|| format!("--shadow {}", file.display()))?,
            policy_file: file.clone(),
        }),
        None => None,
    };
    // Descriptors: one per client connection (target connections are
    // pooled per target and bounded by the requests in flight); 1024 kept for
    // everything else. Shared by the groups' load balancers.
    let open_files = localcloud::server::raise_open_files_limit();
    let groups = policy.groups.len().max(1) as u64;
    let fits = (open_files.saturating_sub(1024) / groups).max(1) as usize;
    let max_connections = match up.max_connections {
        Some(asked) if asked > fits => bail!(
            "--max-connections {asked}: must be at most {fits} with this process's open-files limit of {open_files} and {groups} group(s) (raise it with ulimit -n)"
        ),
        Some(asked) => asked,
        None => localcloud::server::Limits::LOAD_BALANCER.max_connections.min(fits),
    };
    if up.workload.is_none() && (up.functions.is_none() || up.no_functions) {
        let dir = localcloud::binaries::beside_current_exe().map_err(anyhow::Error::msg)?;
        if !up.no_functions || !dir.join("workload").is_file() {
            localcloud::binaries::ensure(&dir, env!("CARGO_PKG_NAME")).map_err(anyhow::Error::msg)?;
        }
    }
    let workload = match up.workload {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .map(|dir| dir.join("workload"))
            .context("the directory of this binary")?,
    };
    let functions = if up.no_functions {
        None
    } else {
        Some(match up.functions {
            Some(dir) => dir,
            None => std::env::current_exe()?
                .parent()
                .map(std::path::Path::to_path_buf)
                .context("the directory of this binary")?,
        })
    };
    let log_dir = up
        .log_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("localcloud-{}", std::process::id())));
    let config = Config {
        policy,
        speed: up.speed,
        start: up.start,
        boot: up.boot,
        health_grace: up.health_grace,
        azs: (0..up.azs)
            .map(|k| format!("local-1{}", char::from(b'a' + k)))
            .collect(),
        subnet: up.subnet,
        instance_port: up.instance_port,
        lb_port: up.lb_port,
        control_port: up.control_port,
        lb: LbConfig {
            algorithm: up.algorithm,
            interval: up.health_interval,
            timeout: up.health_timeout,
            healthy_threshold: up.healthy_threshold,
            unhealthy_threshold: up.unhealthy_threshold,
            deregistration_delay: up.deregistration_delay,
            connections: localcloud::server::Limits {
                max_connections,
                idle_timeout: up.idle_timeout,
            },
            ..LbConfig::default()
        },
        workload,
        cpu_limit: up.cpu_limit,
        log_dir: log_dir.clone(),
        drain_timeout: up.drain_timeout,
        functions,
        policy_file: Some(up.policy.clone()),
        ingestion_delay: up.ingestion_delay,
        shadow,
    };
    let cloud = Cloud::start(config).await?;
    let control = cloud.control_addr().context("control API address")?;
    say(format_args!(
        "control API: http://{control} (localcloud status --control {control})"
    ));
    for name in cloud.group_names() {
        say(format_args!(
            "group {name}: load balancer http://{}",
            cloud.lb_addr(&name)?
        ));
    }
    say(format_args!("instance logs: {}", log_dir.display()));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut check = tokio::time::interval(Duration::from_millis(200));
    let mut last = String::new();
    let mut failed = None;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = check.tick() => {
                // A dead internal task (no health checks, no controller) must
                // not leave a cloud that looks up but never acts.
                if let Some(stopped) = cloud.stopped_task() {
                    failed = Some(stopped);
                    break;
                }
            }
            _ = tick.tick() => {
                let status = cloud.status();
                let line = summary(&status);
                if line != last {
                    say(format_args!("[{}] {line}", status.now.strftime("%H:%M:%S")));
                    last = line;
                }
            }
        }
    }
    if let Some(stopped) = &failed {
        eprintln!("localcloud: {stopped}; stopping every instance");
    }
    say(format_args!("stopping every instance..."));
    cloud.shutdown().await;
    say(format_args!("stopped"));
    match failed {
        Some(stopped) => bail!("{stopped}"),
        None => Ok(()),
    }
}

/// One line to stdout. A closed pipe or a full disk must not stop the cloud
/// (issue 25.3: `localcloud up | head` panicked on the next line and killed
/// every instance without draining): the line is dropped, once with a note
/// on stderr.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush())
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        eprintln!("localcloud: cannot write to stdout ({error}); running on without status lines");
    }
}

/// One line: each group's desired and in-service counts.
pub(crate) fn summary(status: &Status) -> String {
    let groups: Vec<String> = status
        .groups
        .iter()
        .map(|g| {
            let count = |s: localcloud::group::State| g.instances.iter().filter(|i| i.instance.state == s).count();
            format!(
                "{} desired {} in service {} pending {} terminating {}",
                g.name,
                g.desired,
                count(localcloud::group::State::InService),
                count(localcloud::group::State::Pending),
                count(localcloud::group::State::Terminating)
            )
        })
        .collect();
    groups.join(" | ")
}

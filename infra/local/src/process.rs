//! Child processes that cannot outlive the local cloud: each is started
//! with a parent-death signal (SIGKILL when the local cloud dies, even by
//! `kill -9`) in its own process group, from one long-lived thread (the
//! parent-death signal fires when the *thread* that forked exits, so a
//! short-lived pool thread must never spawn; keep the [`Spawner`] alive
//! until every child has been stopped).

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A request to the spawner thread.
type Job = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts child processes from one thread that lives as long as the process.
#[derive(Debug)]
pub struct Spawner {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Default for Spawner {
    fn default() -> Self {
        Self::new()
    }
}

impl Spawner {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("localcloud-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .ok();
        Self { jobs: Mutex::new(tx) }
    }

    /// Starts `program args` with stdout and stderr appended to `log`.
    pub fn spawn(&self, program: &Path, args: &[String], log: &Path) -> std::io::Result<Child> {
        self.spawn_with_env(program, args, &[], log)
    }

    /// Like [`Spawner::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        &self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        log: &Path,
    ) -> std::io::Result<Child> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        guard(&mut command);
        let (tx, rx) = mpsc::channel();
        self.jobs
            .lock()
            .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
            .send((command, tx))
            .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
        rx.recv().map_err(|_| std::io::Error::other("spawner thread is gone"))?
    }
}

/// Makes the child die with its parent and sit in its own process group.
fn guard(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (prctl, getppid, setpgid, _exit).
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl: then exit at once.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            libc::setpgid(0, 0);
            Ok(())
        });
    }
}

/// Sends `signal` to a child.
pub fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a pid we own; an exited child is a no-op (ESRCH or zombie).
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// SIGTERM, then SIGKILL if the child has not exited within `grace`.
pub fn stop(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    signal(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill()?;
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_stopped_by_sigterm_and_logs_to_its_file() {
        let dir = std::env::temp_dir().join(format!("localcloud-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("child.log");
        let spawner = Spawner::new();
        let mut child = spawner
            .spawn(
                Path::new("/bin/sh"),
                &["-c".into(), "echo started; exec sleep 30".into()],
                &log,
            )
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(200));
        let status = stop(&mut child, Duration::from_secs(5)).expect("stop");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "started\n");
        std::fs::remove_dir_all(&dir).ok();
    }
}

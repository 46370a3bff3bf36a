//! Where the instance and function binaries are, and building them when the
//! caller runs under cargo, so `cargo run -p loadtest -- verify` (or
//! `cargo run -p localcloud -- up`) works from a fresh clone.

use std::path::{Path, PathBuf};

/// The binaries the local cloud runs.
pub const NEEDED: [&str; 4] = ["workload", "alarm-scaler", "schedule-scaler", "target-tracker"];

/// The directory of the running binary (target/release under cargo).
pub fn beside_current_exe() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "this binary has no directory".into())
}

/// Makes sure `dir` holds the binaries. Under cargo (`CARGO` is set, as by
/// `cargo run`) they are built (or found up to date) in the profile `dir`
/// names; otherwise a missing one is an error that says how to build it.
pub fn ensure(dir: &Path) -> Result<(), String> {
    if let Some(cargo) = std::env::var_os("CARGO")
        && manifest().is_file()
    {
        let release = dir.file_name().is_some_and(|n| n == "release");
        eprintln!(
            "building the workload and function binaries{} (once; then only when they change)...",
            if release { " (release)" } else { "" }
        );
        let status = build(&cargo, dir.parent(), release).map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build -p workload -p functions failed ({status})"));
        }
    }
    let missing: Vec<String> = NEEDED
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {}; build them with `cargo build --release -p workload -p functions`",
            missing.join(", ")
        ))
    }
}

/// The workspace's manifest (this crate is infra/local).
fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml")
}

/// `cargo build -p workload -p functions --bins` of this workspace, into
/// `target_dir` when given.
fn build(
    cargo: &std::ffi::OsStr,
    target_dir: Option<&Path>,
    release: bool,
) -> std::io::Result<std::process::ExitStatus> {
    let mut command = std::process::Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "workload",
            "-p",
            "functions",
            "--bins",
            "--manifest-path",
        ])
        .arg(manifest());
    if release {
        command.arg("--release");
    }
    if let Some(target) = target_dir {
        command.arg("--target-dir").arg(target);
    }
    command.status()
}

/// For tests: the directory with the binaries, as `cargo test --workspace`
/// builds them (`target/<profile>/`, beside the test's `deps/`), else built
/// once into `target/localcloud-tests` (a separate target directory, so the
/// running `cargo test` is not waited for). After editing `functions/` or
/// `workload/` alone, rebuild with `cargo build -p workload -p functions --bins`
/// or run the whole workspace's tests.
pub fn for_tests() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if NEEDED.iter().all(|b| profile_dir.join(b).is_file()) {
        return profile_dir;
    }
    let target = profile_dir
        .parent()
        .map(|t| t.join("localcloud-tests"))
        .unwrap_or_default();
    eprintln!(
        "building workload and the functions into {} (`cargo test --workspace` reuses the main build)",
        target.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = build(&cargo, Some(&target), false).is_ok_and(|s| s.success());
    assert!(built, "cargo build -p workload -p functions --bins failed");
    target.join("debug")
}

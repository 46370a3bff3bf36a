//! Where the instance and function binaries are, and building them when the
//! caller runs under cargo, so `cargo run -p loadtest -- verify` (or
//! `cargo run -p localcloud -- up`) works from a fresh clone.

use std::path::{Path, PathBuf};

/// The binaries the local cloud runs.
pub const NEEDED: [&str; 2] = ["workload", scaling::FUNCTION.0];

/// The directory of the running binary (target/release under cargo).
pub fn beside_current_exe() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "this binary has no directory".into())
}

/// Makes sure `dir` holds the binaries. Under cargo (`CARGO` is set, as by
/// `cargo run`) they are built (or found up to date) in the profile `dir`
/// names, with `caller` (the package `cargo run` built, which depends on
/// both) selected too: cargo then resolves the same features as for the
/// caller and reuses every dependency it compiled, instead of compiling
/// much of the tree again with another feature set. Otherwise a missing one
/// is an error that says how to build it.
pub fn ensure(dir: &Path, caller: &str) -> Result<(), String> {
    if let Some(cargo) = std::env::var_os("CARGO")
        && manifest().is_file()
    {
        let release = dir.file_name().is_some_and(|n| n == "release");
        eprintln!(
            "building the workload and function binaries{} (once; then only when they change)...",
            if release { " (release)" } else { "" }
        );
        let status =
            build(&cargo, dir.parent(), release, Some(caller)).map_err(|e| format!("cannot run cargo: {e}"))?;
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

/// `cargo build [-p CALLER] -p workload -p functions --bins` of this
/// workspace, into `target_dir` when given.
fn build(
    cargo: &std::ffi::OsStr,
    target_dir: Option<&Path>,
    release: bool,
    caller: Option<&str>,
) -> std::io::Result<std::process::ExitStatus> {
    let mut command = std::process::Command::new(cargo);
    command.arg("build");
    match caller {
        // A user waits for it: cargo's progress shows (issue 23: no silent minutes).
        Some(caller) => command.args(["-p", caller]),
        None => command.arg("--quiet"),
    };
    command
        .args(["-p", "workload", "-p", "functions", "--bins", "--manifest-path"])
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
/// builds them (`target/<profile>/`, beside the test's `deps/`), when they are
/// all there and newer than the sources they are built from; else they are
/// built (or found up to date by cargo) in `target/localcloud-tests`, a
/// separate target directory, since the running `cargo test` holds the lock
/// of its own. So `cargo test -p loadtest` after editing `workload/` runs the
/// edited workload, not the one the last workspace build left behind.
pub fn for_tests() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let why = match fresh(&profile_dir, &sources()) {
        Ok(()) => return profile_dir,
        Err(why) => why,
    };
    let target = profile_dir
        .parent()
        .map(|t| t.join("localcloud-tests"))
        .unwrap_or_default();
    eprintln!(
        "{why}: building workload and the functions into {} (`cargo test --workspace` reuses the main build)",
        target.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = build(&cargo, Some(&target), false, None).is_ok_and(|s| s.success());
    assert!(built, "cargo build -p workload -p functions --bins failed");
    target.join("debug")
}

/// The files the binaries are compiled from: the packages' sources (the
/// functions' core included) and what `functions` embeds. Not the manifests or the lock file: cargo does
/// not relink a binary whose inputs an edit there leaves unchanged, so such
/// a binary would look stale for good.
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for package in ["workload", "functions", "functions/core"] {
        walk(&root.join(package).join("src"), &mut files);
    }
    files.push(root.join("infra/aws/bootstrap.sh"));
    files
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// `Ok` when every needed binary is in `dir` and none is older than a
/// source file; else why not.
fn fresh(dir: &Path, sources: &[PathBuf]) -> Result<(), String> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut oldest = None;
    for name in NEEDED {
        let Some(built) = modified(&dir.join(name)) else {
            return Err(format!("no {name} in {}", dir.display()));
        };
        oldest = Some(oldest.map_or(built, |o: std::time::SystemTime| o.min(built)));
    }
    let Some(oldest) = oldest else { return Ok(()) };
    match sources.iter().find(|s| modified(s).is_some_and(|m| m > oldest)) {
        Some(newer) => Err(format!(
            "the binaries in {} are older than {}",
            dir.display(),
            newer.display()
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn touch(path: &Path, at: SystemTime) {
        std::fs::write(path, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn binaries_older_than_a_source_are_stale() {
        let dir = std::env::temp_dir().join(format!("binaries-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = SystemTime::now() - Duration::from_secs(3600);
        let source = dir.join("main.rs");
        touch(&source, t0);
        let missing = fresh(&dir, std::slice::from_ref(&source)).unwrap_err();
        assert!(missing.contains("no workload"), "{missing}");
        for (i, name) in NEEDED.iter().enumerate() {
            touch(&dir.join(name), t0 + Duration::from_secs(10 + i as u64));
        }
        assert_eq!(fresh(&dir, std::slice::from_ref(&source)), Ok(()));
        // A source edited after the oldest binary was built.
        touch(&source, t0 + Duration::from_secs(11));
        let why = fresh(&dir, std::slice::from_ref(&source)).unwrap_err();
        assert!(why.contains("older than") && why.contains("main.rs"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_sources_are_both_packages_and_what_they_embed() {
        let files = sources();
        let has = |end: &str| files.iter().any(|f| f.ends_with(end));
        assert!(has("workload/src/main.rs") && has("functions/core/src/decide/mod.rs"));
        assert!(has("functions/src/bin/scaler.rs") && has("infra/aws/bootstrap.sh"));
    }
}

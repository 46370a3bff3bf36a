//! Shared by the local cloud's tests: where the binaries are.

#![allow(dead_code)]

use std::path::PathBuf;

/// The directory with `workload` and the function binaries: the test's own
/// target directory (`cargo test --workspace` builds them there), else a
/// separate target directory they are built into once.
pub fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    // target/<profile>/deps/TEST-HASH -> target/<profile>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let needed = ["workload", "alarm-scaler", "schedule-scaler", "target-tracker"];
    if needed.iter().all(|b| profile_dir.join(b).is_file()) {
        return profile_dir.to_path_buf();
    }
    let target = profile_dir.parent().expect("target").join("localcloud-tests");
    eprintln!(
        "building workload and the functions into {} (`cargo test --workspace` reuses the main build)",
        target.display()
    );
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "workload",
            "-p",
            "functions",
            "--bins",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(status.success(), "cargo build -p workload -p functions failed");
    target.join("debug")
}

pub fn workload_bin() -> PathBuf {
    binaries().join("workload")
}

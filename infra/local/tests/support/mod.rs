//! Shared by the local cloud's tests: where the binaries are.

#![allow(dead_code)]

use std::path::PathBuf;

pub fn binaries() -> PathBuf {
    localcloud::binaries::for_tests()
}

pub fn workload_bin() -> PathBuf {
    binaries().join("workload")
}

//! Helpers shared by the test crates: the shipped policy, the sample events,
//! and a minimal Lambda Runtime API.

#![allow(dead_code)]

pub mod runtime_api;

use std::path::PathBuf;

use functions::policy::{GroupPolicy, Policy};

/// A path relative to the functions crate.
pub fn crate_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The shipped two-tier policy (policies/two-tier.toml).
pub fn two_tier() -> Policy {
    Policy::load(&crate_path("../policies/two-tier.toml")).expect("the shipped policy loads")
}

/// A shipped policy, by file name under policies/.
pub fn shipped(file: &str) -> Policy {
    Policy::load(&crate_path(&format!("../policies/{file}"))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// One group of the shipped two-tier policy.
pub fn two_tier_group(name: &str) -> GroupPolicy {
    two_tier()
        .group(name)
        .unwrap_or_else(|| panic!("no group {name}"))
        .clone()
}

/// A sample event from tests/fixtures/events.
pub fn event_text(name: &str) -> String {
    let path = crate_path("tests/fixtures/events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

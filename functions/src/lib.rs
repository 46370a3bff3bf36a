//! The Lambda functions' shell around the pure core (`scaling`, re-exported
//! here under its module names): ports and their adapters (AWS, the local
//! cloud's control API, in memory), the handler, the Lambda glue, the
//! CloudFormation generator and the binaries.
//!
//! The test doubles (`memory`: an in-memory cloud; `contract`: the port
//! contract every adapter's tests run, and the `moto_server` they use) are
//! not part of the library a deployment links: they exist only with the
//! `test-support` feature, which the workspace's tests turn on.

pub mod aws;
pub mod cfn;
#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod dashboard;
pub mod emf;
pub mod handler;
pub mod history;
pub mod import;
pub mod lambda;
pub mod local;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod ports;

pub use scaling::import as policy_import;
pub use scaling::{
    calendar, cloudwatch, decide, group, input, policy, predictive, queue, rule, schedule, state, tracking, trigger,
};

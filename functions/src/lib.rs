//! The Lambda functions' shell around the pure core (`scaling`, re-exported
//! here under its module names): ports and their adapters (AWS, the local
//! cloud's control API, in memory), the handler, the Lambda glue, the
//! CloudFormation generator and the binaries.

pub mod aws;
pub mod cfn;
pub mod contract;
pub mod dashboard;
pub mod emf;
pub mod handler;
pub mod history;
pub mod import;
pub mod lambda;
pub mod local;
pub mod memory;
pub mod ports;

pub use scaling::import as policy_import;
pub use scaling::{
    calendar, cloudwatch, decide, group, input, policy, queue, rule, schedule, state, tracking, trigger,
};

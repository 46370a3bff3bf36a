//! The embedded local cloud: groups of real `workload` processes on their
//! own loopback addresses, a load balancer per group, and a control API,
//! with EC2 Auto Scaling semantics, all on one machine (see README.md).

pub mod alarms;
pub mod binaries;
pub mod clock;
pub mod cloud;
pub mod control;
pub mod error;
pub mod group;
pub mod h1;
pub mod lb;
pub mod metrics;
pub mod process;
pub mod report;
pub mod runtime;
pub mod server;
pub mod upstream;

pub use cloud::{Cloud, Config, SHADOW_FUNCTION, ShadowPolicy};
pub use error::{Error, Result};

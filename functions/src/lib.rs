//! The scaling engine: the policy file, the pure decision core and schedule
//! expressions. The Lambda binaries, triggers and adapters build on these.

pub mod aws;
pub mod calendar;
pub mod cfn;
pub mod cloudwatch;
pub mod contract;
pub mod decide;
pub mod handler;
pub mod input;
pub mod lambda;
pub mod local;
pub mod memory;
pub mod policy;
pub mod ports;
pub mod queue;
pub mod schedule;
pub mod state;
pub mod tracking;
pub mod trigger;

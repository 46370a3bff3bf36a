//! The load-test harness: traces and policy backtests (the load generator
//! and the verify scenario come with issue 5).

pub mod backtest;
pub mod trace;

//! The load-test harness: the load generator (engine -> batches -> pure
//! statistics -> printers), policy backtests on traces, and charts.

pub mod backtest;
pub mod chart;
pub mod engine;
pub mod h1;
pub mod run;
pub mod shadow;
pub mod stats;
pub mod trace;
pub mod verify;

//! The load-test harness: traces, policy backtests and their charts (the load
//! generator and the verify scenario come with issue 5).

pub mod backtest;
pub mod chart;
pub mod trace;

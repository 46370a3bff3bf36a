//! The pure scaling core (issue 19): the policy file parsed into types,
//! `decide` (simple/step scaling, target tracking, scheduled actions),
//! schedule expressions, CloudWatch's alarm rules, the trigger and queue
//! formats. No AWS SDK, no Lambda runtime, no tokio, no HTTP: the Lambda
//! functions (`functions`), the local cloud (`localcloud`) and the backtest
//! (`loadtest`) all call this one implementation of each rule.

pub mod calendar;
pub mod cloudwatch;
pub mod decide;
pub mod group;
pub mod import;
pub mod input;
pub mod policy;
pub mod predictive;
pub mod queue;
pub mod rule;
pub mod schedule;
pub mod state;
pub mod tracking;
pub mod trigger;

/// The function binary (every trigger of every group) and its template id:
/// the one list of functions, for the template, the build and the local
/// cloud's runtime.
pub const FUNCTION: (&str, &str) = ("scaler", "Scaler");

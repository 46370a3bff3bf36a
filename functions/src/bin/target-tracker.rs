//! `target-tracker`: the Lambda function for the periodic tick (target tracking and re-checks of alarms still in ALARM).
//! Everything else is shared: see `functions::lambda`.

use functions::handler::Accepts;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::run(Accepts::Ticks).await
}

//! `schedule-scaler`: the Lambda function for scheduled actions (EventBridge Scheduled Events).
//! Everything else is shared: see `functions::lambda`.

use functions::handler::Accepts;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::run(Accepts::Schedules).await
}

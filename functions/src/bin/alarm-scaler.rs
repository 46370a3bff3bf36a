//! `alarm-scaler`: the Lambda function for alarm state changes (EventBridge, alarm actions, SNS).
//! Everything else is shared: see `functions::lambda`.

use functions::handler::Accepts;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::run(Accepts::Alarms).await
}

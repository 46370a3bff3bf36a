//! `scaler`: the Lambda function that decides for every group. It consumes
//! the groups' SQS FIFO queue (alarm state changes, ticks and scheduled
//! actions, one message group per group: one decision at a time per group).
//! Everything else is shared: see `functions::lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    functions::lambda::run().await
}

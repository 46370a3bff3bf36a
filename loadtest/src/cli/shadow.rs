//! `loadtest shadow`: a dry-run policy against what the group's own scaling did.

use crate::*;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["stack", "namespace"])))]
pub(crate) struct ShadowArgs {
    /// Read from AWS (CloudWatch and Auto Scaling; credentials, region and
    /// AWS_ENDPOINT_URL from the environment). On the local cloud, run
    /// `loadtest verify --shadow POLICY` instead.
    #[arg(long, required = true)]
    aws: bool,
    /// The Auto Scaling group.
    #[arg(long)]
    group: String,
    /// The dry-run stack: its functions write their decisions in the metric
    /// namespace Autoscaler/STACK.
    #[arg(long)]
    stack: Option<String>,
    /// The metric namespace of the dry-run decisions instead of --stack.
    #[arg(long)]
    namespace: Option<String>,
    /// How far back from --until (at most 15d).
    #[arg(long, default_value = "1d", value_parser = trace_since)]
    since: Duration,
    /// The end of the window (RFC 3339; default: now).
    #[arg(long)]
    until: Option<jiff::Timestamp>,
    /// The target group whose requests are the load (`targetgroup/NAME/ID`; default: the group's one).
    #[arg(long)]
    target_group: Option<String>,
    /// Requests per second one instance serves at 100% CPU (default: derived
    /// from the same history, as `loadtest trace --aws` does).
    #[arg(long, value_parser = positive)]
    capacity_rps: Option<f64>,
    /// Launch to in service (the template's instance warm-up).
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    boot: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn shadow_cli(args: ShadowArgs) -> Result<()> {
    let namespace = match (&args.namespace, &args.stack) {
        (Some(namespace), _) => namespace.clone(),
        (None, Some(stack)) => format!("{}/{stack}", functions::emf::DEFAULT_NAMESPACE),
        (None, None) => anyhow::bail!("--stack or --namespace: where the dry-run decisions are"),
    };
    let until = args.until.unwrap_or_else(jiff::Timestamp::now);
    let since = until - jiff::SignedDuration::try_from(args.since)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (history, shadow, activities) = runtime
        .block_on(async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let autoscaling = aws_sdk_autoscaling::Client::new(&config);
            let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
            let history = functions::history::read(
                &autoscaling,
                &cloudwatch,
                &args.group,
                args.target_group.as_deref(),
                since,
                until,
            )
            .await?;
            let shadow = functions::history::read_shadow(&cloudwatch, &args.group, &namespace, since, until).await?;
            let activities = functions::history::read_activities(&autoscaling, &args.group, since, until).await?;
            Ok::<_, String>((history, shadow, activities))
        })
        .map_err(anyhow::Error::msg)?;
    let capacity_rps = match args.capacity_rps {
        Some(given) => given,
        None => loadtest::trace::calibrate(&history.requests, &history.cpu, &history.in_service)
            .map(|c| c.capacity_rps)
            .context("the capacity of one instance could not be derived from the history (no minute at 20-90% CPU with instances in service): pass --capacity-rps")?,
    };
    let recorded = loadtest::shadow::Recorded {
        requests: &history.requests,
        desired: &shadow.desired,
        recommended: &shadow.recommended,
        before: &shadow.before,
        activities: &activities,
    };
    let input = loadtest::shadow::from_recorded(&args.group, &recorded, since, until, capacity_rps, args.boot)
        .map_err(anyhow::Error::msg)?;
    let report = loadtest::shadow::report(&input).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        loadtest::shadow::print(&report, &mut out)?;
    }
    Ok(())
}

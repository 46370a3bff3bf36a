//! `loadtest trace`: a group's recorded traffic from CloudWatch, or a
//! synthetic shape, written as a trace.

use crate::*;

/// `loadtest trace`: a group's recorded traffic, or a synthetic shape, as a trace.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["aws", "shape"])))]
pub(crate) struct TraceArgs {
    /// Read from AWS: CloudWatch and Auto Scaling, with credentials, region
    /// and AWS_ENDPOINT_URL from the environment, as for the AWS CLI.
    #[arg(long, requires = "group")]
    aws: bool,
    /// Write a synthetic shape instead (see README "Backtests").
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(loadtest::trace::SHAPES), conflicts_with_all = ["group", "since", "until", "target_group"])]
    shape: Option<String>,
    /// The Auto Scaling group (with --aws).
    #[arg(long)]
    group: Option<String>,
    /// How far back from --until (at most 15d: CloudWatch keeps one-minute datapoints 15 days).
    #[arg(long, default_value = "14d", value_parser = trace_since)]
    since: Duration,
    /// The end of the window (RFC 3339; default: now).
    #[arg(long)]
    until: Option<jiff::Timestamp>,
    /// The target group to read (`targetgroup/NAME/ID`; default: the group's one target group).
    #[arg(long)]
    target_group: Option<String>,
    /// Write the trace here (default: standard output).
    #[arg(long, value_name = "FILE.csv")]
    out: Option<PathBuf>,
}

/// `--since`: a duration of at most 15 days.
pub(crate) fn trace_since(text: &str) -> std::result::Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| format!("{e}; expected e.g. 14d, 36h"))?;
    if value.is_zero() || value > Duration::from_secs(15 * 24 * 3600) {
        return Err("must be more than 0 and at most 15d (CloudWatch keeps one-minute datapoints 15 days)".into());
    }
    Ok(value)
}

/// Writes `csv` to `--out` whole or not at all (a temporary file beside
/// it, renamed), or to standard output.
pub(crate) fn write_trace(out: Option<&std::path::Path>, csv: &str) -> Result<()> {
    match out {
        Some(path) => {
            let partial = path.with_extension("csv.partial");
            std::fs::write(&partial, csv)
                .and_then(|()| std::fs::rename(&partial, path))
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(&partial);
                })
                .with_context(|| format!("--out {}: cannot write the trace", path.display()))?;
        }
        None => std::io::stdout().write_all(csv.as_bytes())?,
    }
    Ok(())
}

pub(crate) fn trace_cli(args: TraceArgs) -> Result<()> {
    if let Some(shape) = &args.shape {
        let trace = Trace::synthetic(shape).with_context(|| format!("--shape {shape}: unknown"))?;
        write_trace(args.out.as_deref(), &trace.to_csv())?;
        eprintln!(
            "shape {shape}: {} minutes from {}, mean {:.1} req/s, peak {:.1}",
            trace.samples.len(),
            trace.samples[0].at,
            trace.mean(),
            trace.peak()
        );
        return Ok(());
    }
    let group = args.group.clone().context("--aws needs --group")?;
    let until = args.until.unwrap_or_else(jiff::Timestamp::now);
    let since = until - jiff::SignedDuration::try_from(args.since)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let history = runtime
        .block_on(async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            functions::history::read(
                &aws_sdk_autoscaling::Client::new(&config),
                &aws_sdk_cloudwatch::Client::new(&config),
                &group,
                args.target_group.as_deref(),
                since,
                until,
            )
            .await
        })
        .map_err(anyhow::Error::msg)?;
    let trace =
        Trace::from_requests_a_minute(&history.requests, since, until).context("the window holds no whole minute")?;
    write_trace(args.out.as_deref(), &trace.to_csv())?;
    let mean = trace.mean();
    eprintln!(
        "group {}: {} minutes from {} to {} (target group {}, load balancer {}), {} with requests; mean {mean:.1} req/s, peak {:.1}",
        history.group,
        trace.samples.len(),
        trace.samples[0].at,
        until,
        history.target_group,
        history.load_balancer,
        history.requests.len(),
        trace.peak()
    );
    let name = args
        .out
        .as_ref()
        .map_or("TRACE.csv".to_string(), |p| p.display().to_string());
    match loadtest::trace::calibrate(&history.requests, &history.cpu, &history.in_service) {
        Some(calibration) => eprintln!(
            "capacity: {:.1} req/s per instance at 100% CPU (the median of {} minutes at {:.0}-{:.0}% CPU)\nreplay it: loadtest backtest --trace {name} --capacity-rps {:.1} --policy POLICY.toml",
            calibration.capacity_rps,
            calibration.minutes,
            loadtest::trace::CALIBRATION_CPU.start(),
            loadtest::trace::CALIBRATION_CPU.end(),
            calibration.capacity_rps
        ),
        None => eprintln!(
            "capacity: not derived: {} CPU and {} GroupInServiceInstances datapoints, no minute with both at {:.0}-{:.0}% CPU (GroupInServiceInstances needs the group's metrics collection on: EnableMetricsCollection)\nreplay it: loadtest backtest --trace {name} --capacity-rps N --policy POLICY.toml",
            history.cpu.len(),
            history.in_service.len(),
            loadtest::trace::CALIBRATION_CPU.start(),
            loadtest::trace::CALIBRATION_CPU.end()
        ),
    }
    Ok(())
}

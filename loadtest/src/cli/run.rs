//! `loadtest run`: a load run against a URL, its flags and expectations.

use crate::*;

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// http://HOST:PORT/PATH
    url: String,
    /// Concurrent connections (closed loop: each sends when its last request is answered).
    #[arg(long, short = 'c', default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// How long to send.
    #[arg(long, short = 'd', default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Open loop at this many requests per second (latency from the scheduled send time).
    #[arg(long, value_parser = positive, conflicts_with = "ramp")]
    rate: Option<f64>,
    /// Open loop with a rate ramp, e.g. 0:100,60s:500.
    #[arg(long, value_parser = loadtest::engine::Ramp::parse)]
    ramp: Option<loadtest::engine::Ramp>,
    /// Stop after this many requests.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Longest one request may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the report as JSON (with the per-second timeline).
    #[arg(long)]
    json: bool,
    /// Expectations that set the exit code, e.g. success>=99.9,p99<=200ms,rps>=100.
    #[arg(long, value_parser = checks)]
    check: Option<Checks>,
}

/// The expectations of `--check`.
#[derive(Debug, Clone)]
pub(crate) struct Checks(Vec<loadtest::run::Expectation>);

pub(crate) fn checks(text: &str) -> Result<Checks, String> {
    loadtest::run::Expectation::parse_list(text).map(Checks)
}

pub(crate) fn run_load(args: RunArgs) -> Result<bool> {
    use loadtest::engine::{Mode, Plan, Ramp};
    let url: http::Uri = args
        .url
        .parse()
        .with_context(|| format!("URL {:?}: expected http://HOST:PORT/PATH", args.url))?;
    if url.scheme_str() != Some("http") || url.host().is_none() {
        anyhow::bail!("URL {:?}: expected http://HOST:PORT/PATH (plain HTTP)", args.url);
    }
    let url = if url.port().is_none() {
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{}:80{path}", url.host().unwrap_or_default()).parse()?
    } else {
        url
    };
    let connections = args.connections as usize;
    let mode = match (args.rate, args.ramp) {
        (Some(rate), _) => Mode::Open {
            connections,
            ramp: Ramp::constant(rate),
        },
        (None, Some(ramp)) => Mode::Open { connections, ramp },
        (None, None) => Mode::Closed { connections },
    };
    let plan = Plan {
        url,
        mode,
        duration: args.duration,
        max_requests: args.requests,
        timeout: args.timeout,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = runtime.block_on(loadtest::run::execute(plan.clone()));
    let report = loadtest::run::RunReport::new(&plan, &outcome);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        report.print(&mut out)?;
    }
    let mut all = true;
    for expectation in args.check.map(|c| c.0).unwrap_or_default() {
        let (value, ok) = expectation.check(&report);
        all &= ok;
        eprintln!(
            "check {}: {value:.2} {}",
            expectation.text,
            if ok { "ok" } else { "FAILED" }
        );
    }
    Ok(all)
}

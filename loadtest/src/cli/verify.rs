//! `loadtest verify`: the end-to-end scenario's flags, and the run.

use crate::*;

#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// What to show: `load` (scale out under load, hold, scale back in) or
    /// `schedule` (the group's scheduled actions fire at their times, no load).
    #[arg(long, value_enum, default_value_t = Kind::Load)]
    scenario: Kind,
    /// Run against a deployed stack instead of the local cloud: needs
    /// --group (the Auto Scaling group), --url (its load balancer) and --rate.
    /// AWS credentials and region come from the environment, as for the AWS CLI.
    #[arg(long, requires_all = ["group", "url", "rate"], conflicts_with_all = ["policy", "speed", "cpu_limit", "load_cores", "boot", "binaries"])]
    aws: bool,
    /// The load balancer of the group (with --aws), e.g. http://web-alb-123.eu-west-1.elb.amazonaws.com.
    #[arg(long, requires = "aws")]
    url: Option<String>,
    /// Requests per second to send (default on the local cloud: --load-cores worth).
    #[arg(long, value_parser = positive, conflicts_with = "load_cores")]
    rate: Option<f64>,
    /// The policy file (the shipped two-tier policy by default).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The group to load (default: the policy's first).
    #[arg(long)]
    group: Option<String>,
    /// Cloud time runs this many times faster than the wall clock.
    #[arg(long, default_value_t = 60.0, value_parser = localcloud::clock::parse_speed)]
    speed: f64,
    /// CPU cap of each instance (fraction of a core).
    #[arg(long, default_value_t = 0.1, value_parser = cpu_limit)]
    cpu_limit: f64,
    /// The Fibonacci n of each request.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(10..=38))]
    n: u32,
    /// The load, in cores of Fibonacci work (default: enough to need the max group at 60% CPU).
    #[arg(long, value_parser = positive)]
    load_cores: Option<f64>,
    /// Quiet time before the load (cloud time).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    baseline: Duration,
    /// The scale-out to min+2 and to max must happen within this (cloud time).
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    scale_out_within: Duration,
    /// Full load at max for this long (cloud time).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// After the load stops, the group must be back at min within this (cloud time).
    #[arg(long, default_value = "40m", value_parser = humantime::parse_duration)]
    scale_in_within: Duration,
    /// Launch to in service (cloud time).
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    boot: Duration,
    /// Kill one instance half way through the hold (local: SIGKILL; AWS:
    /// terminate without lowering desired): it must be replaced.
    #[arg(long)]
    kill_one: bool,
    /// Shadow mode: a second policy for the same group decides in dry run
    /// beside --policy (its own alarms, schedules and ticks); the run ends
    /// with the shadow report comparing the two (target/verify/shadow.json).
    #[arg(long, conflicts_with = "aws")]
    shadow: Option<PathBuf>,
    /// With --kill-one: the replacement must be in service within this
    /// (cloud time; the full load goes on meanwhile, past the hold if need be).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    replace_within: Duration,
    /// The share of the load that stays while the group scales in (0 to 1; 0: none).
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    residual_load: f64,
    /// Where verify.json, verify.svg and the instance logs go.
    #[arg(long, default_value = "target/verify")]
    out: PathBuf,
    /// The workload and function binaries (default: beside this binary, built by cargo if needed).
    #[arg(long)]
    binaries: Option<PathBuf>,
    /// Print only phases and the report, not a line a second.
    #[arg(long)]
    quiet: bool,
}

pub(crate) fn fraction(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=1.0).contains(v))
        .ok_or_else(|| "must be a number from 0 to 1".into())
}

pub(crate) fn cpu_limit(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 4.0)
        .ok_or_else(|| "must be a fraction of a core above 0, at most 4".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    Load,
    Schedule,
}

pub(crate) fn verify(args: VerifyArgs) -> Result<bool> {
    if let (Some(shadow), Kind::Schedule) = (&args.shadow, args.scenario) {
        anyhow::bail!(
            "--shadow {}: the shadow report comes with --scenario load (the schedule scenario sends no load to compare capacity against)",
            shadow.display()
        );
    }
    let scenario = loadtest::verify::Scenario {
        n: args.n,
        baseline: args.baseline,
        scale_out_within: args.scale_out_within,
        hold: args.hold,
        scale_in_within: args.scale_in_within,
        kill_one: args.kill_one,
        replace_within: args.replace_within,
        residual_load: args.residual_load,
        out: args.out.clone(),
        live: !args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut out = std::io::stdout();
    let report = if args.aws {
        if args.scenario != Kind::Load {
            anyhow::bail!("--scenario schedule runs on the local cloud only (drop --aws)");
        }
        let (Some(group), Some(url), Some(rate)) = (args.group, args.url, args.rate) else {
            anyhow::bail!("--aws needs --group, --url and --rate");
        };
        let parsed: http::Uri = url
            .parse()
            .with_context(|| format!("--url {url:?}: expected http://HOST[:PORT]"))?;
        if parsed.scheme_str() != Some("http") || parsed.host().is_none() {
            anyhow::bail!("--url {url:?}: expected http://HOST[:PORT] (plain HTTP, the load balancer's listener)");
        }
        let url = if parsed.port().is_none() {
            format!("http://{}:80", parsed.host().unwrap_or_default())
        } else {
            format!("http://{}", parsed.authority().map_or("", |a| a.as_str()))
        };
        runtime.block_on(async {
            let target = loadtest::verify::AwsTarget::from_env(group).await;
            loadtest::verify::run_aws(target, &url, rate, scenario, &mut out).await
        })?
    } else {
        let policy = match args.policy {
            Some(path) => path,
            None => {
                let here = PathBuf::from("policies/two-tier.toml");
                if here.is_file() {
                    here
                } else {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies/two-tier.toml")
                }
            }
        };
        let loaded = Policy::load(&policy)?;
        let group = pick_group(&loaded, args.group.as_deref(), true)?;
        let binaries = match args.binaries {
            Some(dir) => dir,
            None => localcloud::binaries::beside_current_exe().map_err(anyhow::Error::msg)?,
        };
        localcloud::binaries::ensure(&binaries, env!("CARGO_PKG_NAME")).map_err(anyhow::Error::msg)?;
        // Enough work to need the max group at 60% CPU (above a 50% target).
        let load_cores = args.load_cores.unwrap_or(f64::from(group.max) * args.cpu_limit * 0.6);
        let local = loadtest::verify::Local {
            policy_file: policy,
            group: args.group,
            speed: args.speed,
            cpu_limit: args.cpu_limit,
            load_cores,
            rate: args.rate,
            boot: args.boot,
            binaries,
            shadow: args.shadow,
        };
        match args.scenario {
            Kind::Load => runtime.block_on(loadtest::verify::run_local(local, scenario, &mut out))?,
            Kind::Schedule => runtime.block_on(loadtest::verify::run_schedule(local, scenario, &mut out))?,
        }
    };
    loadtest::verify::print_report(&mut out, &report)?;
    println!(
        "report: {}, chart: {}",
        args.out.join("verify.json").display(),
        args.out.join("verify.svg").display()
    );
    Ok(report.passed)
}

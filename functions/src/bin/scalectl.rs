//! `scalectl`: the operators' CLI over the same core the Lambda functions run.
//!
//! `scalectl decide --policy FILE --state STATE.json --event EVENT.json [--now RFC3339] [--explain]`
//! prints the decision as JSON; `scalectl validate --policy FILE` checks a
//! policy file; `scalectl schedule --policy FILE [--at T] [--next N] [--json]`
//! lists the scheduled actions' next fire times and the limits in effect at
//! T; `scalectl preflight --policy FILE --stack NAME` checks the names a
//! deploy would create; `scalectl import --group NAME [--group NAME...]
//! [--region R] [--out FILE]` writes existing groups as a policy file. Bad
//! input exits 2 with the reason.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use functions::decide::{Action, AlarmState, Trigger, decide};
use functions::policy::Policy;
use functions::state::State;
use functions::trigger::{Parsed, Routed, parse_str};
use jiff::Timestamp;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "scalectl", version, about = "Decide and validate scaling policies offline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decide what an event asks of a group in a given state; prints JSON.
    Decide {
        /// The policy file (TOML).
        #[arg(long)]
        policy: PathBuf,
        /// The observed state (JSON: observed, metrics, activities, alarms).
        #[arg(long)]
        state: PathBuf,
        /// The event, in any shape the functions accept.
        #[arg(long)]
        event: PathBuf,
        /// The decision time (RFC 3339, e.g. 2026-11-20T11:05:00Z); default: now.
        #[arg(long)]
        now: Option<Timestamp>,
        /// Also print a one-line reason to stderr.
        #[arg(long)]
        explain: bool,
        /// The alarm's newest datapoint, for an event that carries none (an
        /// SNS notification); default: the state file's `alarms` entry.
        #[arg(long)]
        value: Option<f64>,
    },
    /// Check a policy file; prints every problem.
    Validate {
        #[arg(long)]
        policy: PathBuf,
    },
    /// The scheduled actions: the next fire times of each (in UTC and its
    /// time zone, daylight saving time as EventBridge Scheduler applies it)
    /// and the min/max/desired they have put in effect at a time.
    Schedule {
        #[arg(long)]
        policy: PathBuf,
        /// The time to look from (RFC 3339, e.g. 2026-11-20T12:00:00+08:00); default: now.
        #[arg(long)]
        at: Option<Timestamp>,
        /// How many fire times of each action to list (1 to 100).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
        next: u16,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check, before a deploy, that every name the template builds from the
    /// stack's name fits AWS's limits (exit 2 naming each one that does not).
    Preflight {
        #[arg(long)]
        policy: PathBuf,
        /// The CloudFormation stack's name.
        #[arg(long)]
        stack: String,
    },
    /// Read existing Auto Scaling groups (limits, scaling policies, scheduled
    /// actions, the alarms that invoke the policies) through the AWS SDK and
    /// write them as a policy file, each part naming its source; what the
    /// format cannot express is a comment and listed on stderr. Credentials,
    /// region and AWS_ENDPOINT_URL come from the standard environment.
    Import {
        /// A group to import (repeat for several).
        #[arg(long = "group", required = true, value_parser = group_name)]
        groups: Vec<String>,
        /// The AWS region (default: the standard environment's).
        #[arg(long)]
        region: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the adopt template's parameters (each group's target
        /// group and load balancer) to this JSON file, for `aws
        /// cloudformation deploy --parameter-overrides file://F` with
        /// `scalectl template --adopt`.
        #[arg(long, value_name = "F.json")]
        parameters: Option<PathBuf>,
    },
    /// Print the AWS CloudFormation template (JSON) of a policy file's groups,
    /// alarms, schedules and functions (infra/aws/template.json).
    Template {
        #[arg(long)]
        policy: PathBuf,
        /// Adopt groups that already exist (made in a console): only the
        /// alarms, schedules, functions, ticks, stack alarms and dashboards;
        /// each group's target group and load balancer are parameters
        /// (infra/aws/adopt.json; `import --parameters` writes them).
        #[arg(long)]
        adopt: bool,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scalectl: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// An Auto Scaling group name: 1 to 255 characters (the API's limit).
fn group_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().count() > 255 {
        return Err("allowed: a group name of 1 to 255 characters".into());
    }
    Ok(text.to_string())
}

/// `scalectl import`: read, write, then check the file as `validate` would.
fn import(groups: &[String], region: Option<String>, out: Option<&Path>, parameters: Option<&Path>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let read = runtime.block_on(async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        let config = loader.load().await;
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        let read = functions::import::read(&aws_sdk_autoscaling::Client::new(&config), &cloudwatch, groups).await?;
        let adopt = match parameters {
            Some(_) => Some(functions::import::adopt_parameters(&cloudwatch, &read).await),
            None => None,
        };
        Ok::<_, String>((read, adopt))
    });
    let (read, adopt) = read.map_err(|e| anyhow::anyhow!("--group: {e}"))?;
    if let (Some(path), Some((values, unreadable))) = (parameters, &adopt) {
        std::fs::write(path, serde_json::to_string_pretty(values)? + "\n")
            .with_context(|| format!("--parameters {}: cannot write (nothing written)", path.display()))?;
        for part in unreadable {
            eprintln!(
                "not found: {}: {} (left empty in {})",
                part.part,
                part.error,
                path.display()
            );
        }
        eprintln!(
            "adopt parameters of {} group(s) in {} (deploy: scalectl template --adopt; aws cloudformation deploy --parameter-overrides file://{})",
            read.groups.len(),
            path.display(),
            path.display()
        );
    }
    let imported = functions::policy_import::write_policy(&read.groups, &read.alarms, &read.unreadable);
    match out {
        Some(path) => {
            std::fs::write(path, &imported.text).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => print!("{}", imported.text),
    }
    let written = out.map_or_else(
        || "the policy written to stdout".to_string(),
        |p| p.display().to_string(),
    );
    for line in &imported.not_expressed {
        eprintln!("not imported: {line}");
    }
    Policy::parse(&written, &imported.text)
        .with_context(|| format!("{written} was written but does not validate: edit it before deploying"))?;
    eprintln!(
        "imported {} group(s) into {written}; {} part(s) not imported (comments in the file)",
        read.groups.len(),
        imported.not_expressed.len()
    );
    Ok(())
}

fn read(path: &Path, what: &str, max_bytes: u64) -> Result<String> {
    functions::input::read_text(path, max_bytes)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Import {
            groups,
            region,
            out,
            parameters,
        } => import(&groups, region, out.as_deref(), parameters.as_deref()),
        Command::Preflight { policy, stack } => {
            let loaded = Policy::load(&policy)?;
            let problems = functions::cfn::name_problems(&loaded, &stack);
            if !problems.is_empty() {
                anyhow::bail!("--stack {stack:?} cannot be deployed:\n  - {}", problems.join("\n  - "));
            }
            println!("--stack {stack}: every name fits AWS's limits");
            Ok(())
        }
        Command::Template { policy, adopt, out } => {
            let loaded = Policy::load(&policy)?;
            let template = if adopt {
                functions::cfn::adopt_template(&loaded)
            } else {
                functions::cfn::template(&loaded)
            };
            let text = serde_json::to_string_pretty(&template)? + "\n";
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::Schedule { policy, at, next, json } => {
            let loaded = Policy::load(&policy)?;
            let at = at.unwrap_or_else(Timestamp::now);
            let upcoming = functions::calendar::upcoming(&loaded, at, usize::from(next))?;
            let in_effect = functions::calendar::in_effect(&loaded, at)?;
            if json {
                let out = json!({ "at": at, "upcoming": upcoming, "in_effect": in_effect });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            println!("scheduled actions of {} after {at}:", policy.display());
            if upcoming.is_empty() {
                println!("  (none)");
            }
            for action in &upcoming {
                println!(
                    "  {} {}: {} in {}, sets {}",
                    action.group, action.action, action.expression, action.timezone, action.sets
                );
                for (utc, local) in action.next.iter().zip(&action.next_local) {
                    println!("    {local}  ({utc})");
                }
                if action.next.is_empty() {
                    println!("    never again");
                }
            }
            println!("in effect at {at}:");
            let limit = |name: &str, limit: &functions::calendar::Limit| match &limit.set_by {
                Some((action, when)) => format!("{name} {} (set by {action} at {when})", limit.value),
                None => format!("{name} {} (the policy file's)", limit.value),
            };
            for group in &in_effect {
                let desired = match &group.desired {
                    Some(d) => limit("desired", d),
                    None => format!(
                        "desired: the scaler's, within {}..={}",
                        group.min.value, group.max.value
                    ),
                };
                println!(
                    "  {}: {}, {}, {desired}",
                    group.group,
                    limit("min", &group.min),
                    limit("max", &group.max)
                );
            }
            Ok(())
        }
        Command::Validate { policy } => {
            let loaded = Policy::load(&policy)?;
            let groups: Vec<&str> = loaded.groups.iter().map(|g| g.name.as_str()).collect();
            println!(
                "{}: valid ({} group(s): {})",
                policy.display(),
                groups.len(),
                groups.join(", ")
            );
            Ok(())
        }
        Command::Decide {
            policy,
            state,
            event,
            now,
            explain,
            value,
        } => {
            let policy = Policy::load(&policy)?;
            let state_path = state;
            let state = State::parse(
                &state_path.display().to_string(),
                &read(&state_path, "state", functions::input::STATE_MAX_BYTES)?,
            )?;
            let parsed = parse_str(&read(&event, "event", functions::input::EVENT_MAX_BYTES)?)
                .with_context(|| format!("event {}", event.display()))?;
            let now = now.unwrap_or_else(Timestamp::now);
            let output = match parsed {
                Parsed::Ignored(reason) => json!({ "ignored": reason }),
                Parsed::Event(event) => match event.route(&policy, &state.alarms) {
                    Routed::Ignored(reason) => json!({ "ignored": reason }),
                    Routed::Decide { group, mut trigger } => {
                        let group_policy = policy.group(&group).context("routed to a group the policy has")?;
                        // As the functions read the metric for an SNS
                        // notification, scalectl takes the datapoint from
                        // --value or the state file, and says so when neither has it.
                        if let Trigger::Alarm(alarm) = &mut trigger
                            && alarm.value.is_none()
                            && alarm.state == AlarmState::Alarm
                            && group_policy.alarm_policy(&alarm.name).is_some()
                        {
                            alarm.value = value
                                .or_else(|| state.alarms.iter().find(|a| a.name == alarm.name).and_then(|a| a.value));
                            if alarm.value.is_none() {
                                anyhow::bail!(
                                    "alarm {}: the event carries no datapoint (an SNS notification); pass --value N or give the alarm's value in the state file's alarms",
                                    alarm.name
                                );
                            }
                        }
                        let decision = decide(
                            group_policy,
                            &state.observed,
                            &state.metrics,
                            &state.activities,
                            &trigger,
                            now,
                        )
                        .with_context(|| format!("state file {}: observed", state_path.display()))?;
                        if explain {
                            let what = match decision.action {
                                Action::Hold => format!("hold at {}", decision.from),
                                Action::SetDesired(n) => {
                                    format!("set desired {} -> {n}", decision.from)
                                }
                                Action::SetLimits { min, max, desired } => {
                                    format!("set min {min}, max {max}, desired {} -> {desired}", decision.from)
                                }
                            };
                            eprintln!("{group}: {what}: {} [{}]", decision.reason, decision.explain("; "));
                        }
                        json!({ "group": group, "now": now, "trigger": trigger, "decision": decision })
                    }
                },
            };
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
    }
}

//! `Config::check`: every setting within its allowed range, named when not.

use super::*;

/// A wall- or cloud-clock duration setting within its allowed range.
fn check_duration(
    field: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
    allowed: &'static str,
) -> Result<()> {
    if value < min || value > max {
        return Err(Error::Config {
            field,
            value: humantime::format_duration(value).to_string(),
            allowed,
        });
    }
    Ok(())
}

impl Config {
    pub(super) fn check(&self) -> Result<()> {
        // Durations: a zero interval would panic the health checker, a boot of
        // centuries overflows the controller's timestamps (issue 25.4). The
        // ranges follow the ALB's where it has one (HealthCheckIntervalSeconds
        // 5-300, HealthCheckTimeoutSeconds 2-120, deregistration delay 0-3600,
        // idle timeout 1-4000 s), with shorter minimums since the local cloud
        // runs faster than real time.
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        check_duration(
            "boot (--boot)",
            self.boot,
            Duration::ZERO,
            s(86_400),
            "0s to 1day (cloud time)",
        )?;
        check_duration(
            "health_grace (--health-grace)",
            self.health_grace,
            Duration::ZERO,
            s(86_400),
            "0s to 1day (cloud time)",
        )?;
        check_duration(
            "lb.interval (--health-interval)",
            self.lb.interval,
            ms(10),
            s(300),
            "10ms to 5m",
        )?;
        check_duration(
            "lb.timeout (--health-timeout)",
            self.lb.timeout,
            ms(10),
            s(120),
            "10ms to 2m",
        )?;
        check_duration(
            "lb.deregistration_delay (--deregistration-delay)",
            self.lb.deregistration_delay,
            Duration::ZERO,
            s(3600),
            "0s to 1h",
        )?;
        check_duration(
            "lb.request_timeout",
            self.lb.request_timeout,
            ms(100),
            s(4000),
            "100ms to 4000s",
        )?;
        check_duration(
            "lb.connections.idle_timeout (--idle-timeout)",
            self.lb.connections.idle_timeout,
            ms(100),
            s(4000),
            "100ms to 4000s",
        )?;
        // Never earlier than AWS shows data: a shorter delay would be more lenient.
        check_duration(
            "ingestion_delay (--ingestion-delay)",
            self.ingestion_delay,
            scaling::cloudwatch::INGESTION_DELAY,
            scaling::cloudwatch::MAX_INGESTION_DELAY,
            "3m (CloudWatch's) to 1h (cloud time)",
        )?;
        check_duration(
            "drain_timeout (--drain-timeout)",
            self.drain_timeout,
            Duration::ZERO,
            s(3600),
            "0s to 1h",
        )?;
        if !(1..=1_000_000).contains(&self.lb.connections.max_connections) {
            return Err(Error::Config {
                field: "lb.connections.max_connections (--max-connections)",
                value: self.lb.connections.max_connections.to_string(),
                allowed: "1 to 1000000",
            });
        }
        let bad =
            |field: &'static str, value: String, allowed: &'static str| Err(Error::Config { field, value, allowed });
        if !(self.speed.is_finite() && (1.0..=3600.0).contains(&self.speed)) {
            return bad("speed", self.speed.to_string(), "a number from 1 to 3600");
        }
        if self.azs.is_empty() || self.azs.len() > 6 {
            return bad("azs", self.azs.len().to_string(), "1 to 6 availability zones");
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
        // Below 1% of a core nothing useful is ever computed (issue 25.8: 1e-300 was accepted).
        if !(self.cpu_limit.is_finite() && self.cpu_limit >= MIN_CPU_LIMIT && self.cpu_limit <= cores) {
            return bad(
                "cpu_limit (--cpu-limit)",
                self.cpu_limit.to_string(),
                "0.01 (1% of a core, MIN_CPU_LIMIT) up to the machine's cores",
            );
        }
        // Each group has one /24 of loopback addresses: refuse at start a
        // policy whose group or scheduled action asks for more instances
        // than that, rather than fail launches later.
        for group in &self.policy.groups {
            let asked = std::iter::once(("max", group.max)).chain(
                group
                    .schedules
                    .iter()
                    .flat_map(|s| {
                        [
                            ("schedule max", s.max),
                            ("schedule min", s.min),
                            ("schedule desired", s.desired),
                        ]
                    })
                    .filter_map(|(field, value)| Some((field, value?))),
            );
            for (field, value) in asked {
                if value > crate::group::SUBNET_HOSTS {
                    return Err(Error::Config {
                        field: "policy",
                        value: format!("group {} {field} {value}", group.name),
                        allowed: "at most 254 instances per group in the local cloud (one /24 of loopback addresses)",
                    });
                }
            }
        }
        if self.policy.groups.len() > 16 {
            return bad("policy", self.policy.groups.len().to_string(), "at most 16 groups");
        }
        if let Some(shadow) = &self.shadow {
            // The shadow decides for groups of the deciding policy, and its
            // alarms are other alarms: CloudWatch alarm names are unique in
            // an account and region (a second stack reusing one fails).
            for group in &shadow.policy.groups {
                if !self.policy.groups.iter().any(|g| g.name == group.name) {
                    return Err(Error::Config {
                        field: "shadow (--shadow)",
                        value: format!("group {}", group.name),
                        allowed: "groups of the deciding policy (the shadow decides for existing groups)",
                    });
                }
                for alarm in &group.alarm_policies {
                    let taken = self
                        .policy
                        .groups
                        .iter()
                        .flat_map(|g| &g.alarm_policies)
                        .any(|a| a.alarm == alarm.alarm);
                    if taken {
                        return Err(Error::Config {
                            field: "shadow (--shadow)",
                            value: format!("alarm {}", alarm.alarm),
                            allowed: "alarm names the deciding policy does not use (CloudWatch alarm names are unique per account and region)",
                        });
                    }
                }
            }
        }
        if !self.workload.is_file() {
            return Err(Error::Workload(self.workload.clone()));
        }
        Ok(())
    }
}

//! Alarms, schedules and ticks: the events EventBridge and CloudWatch would send.

use super::*;

/// Alarms, schedules and ticks: what EventBridge and CloudWatch would send.
pub(super) async fn events(cloud: Cloud) {
    let inner = &cloud.inner;
    // (shadow?, group, name, expression, zone): the deciding policy's
    // schedules, then the shadow policy's (to the shadow function).
    let policies =
        std::iter::once((false, &inner.config.policy)).chain(inner.config.shadow.iter().map(|s| (true, &s.policy)));
    let mut schedules: Vec<(
        bool,
        String,
        String,
        scaling::schedule::ScheduleExpr,
        jiff::tz::TimeZone,
    )> = Vec::new();
    // Groups that need the periodic tick: target tracking, or alarms to re-check.
    let mut ticking: Vec<(bool, String)> = Vec::new();
    for (shadow, policy) in policies {
        for g in &policy.groups {
            schedules.extend(g.schedules.iter().filter_map(|s| {
                let (expr, tz) = s.parsed().ok()?;
                Some((shadow, g.name.clone(), s.name.clone(), expr, tz))
            }));
            if g.needs_tick() {
                ticking.push((shadow, g.name.clone()));
            }
        }
    }
    let tick: Option<scaling::schedule::ScheduleExpr> = "rate(1 minute)".parse().ok();
    // Alarms judge a period a little after it ends, once its samples are in
    // (CloudWatch, too, evaluates with a delay).
    let lag = SignedDuration::try_from(Duration::from_millis(300).mul_f64(inner.clock.speed()))
        .unwrap_or(SignedDuration::ZERO);
    let mut last = inner.clock.now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = inner.clock.now();
        let changes: Vec<crate::alarms::StateChange> = {
            let store = lock(&inner.store);
            lock(&inner.alarms)
                .iter_mut()
                .filter_map(|a| a.evaluate(&store, now - lag))
                .collect()
        };
        for change in changes {
            let summary = format!("alarm {} {:?} -> {:?}", change.alarm, change.from, change.to);
            cloud.emit_to(change.shadow, &change.group, summary, change.event);
        }
        for (shadow, group, name, expr, tz) in &schedules {
            for at in expr.fires_between(last, now, tz) {
                cloud.emit_to(
                    *shadow,
                    group,
                    format!("schedule {name} at {at}"),
                    scheduled_event(name, at),
                );
            }
        }
        if let Some(tick) = &tick {
            for at in tick.fires_between(last, now, &jiff::tz::TimeZone::UTC) {
                for (shadow, group) in &ticking {
                    let rule = format!("{group}-tick");
                    // The event names its group, as the template's input transformer does.
                    let mut event = scheduled_event(&rule, at);
                    event["detail"] = serde_json::json!({ "group": group });
                    cloud.emit_to(*shadow, group, format!("tick {rule} at {at}"), event);
                }
            }
        }
        last = now;
    }
}

/// EventBridge's "Scheduled Event" for a rule firing at `at`.
pub fn scheduled_event(rule: &str, at: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": crate::alarms::event_id(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": crate::alarms::ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": crate::alarms::REGION,
        "resources": [format!("arn:aws:events:{}:{}:rule/{rule}", crate::alarms::REGION, crate::alarms::ACCOUNT)],
        "detail": {},
    })
}

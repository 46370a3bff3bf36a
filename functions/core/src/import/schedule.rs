//! A source group's scheduled actions written out, a recurrence as
//! EventBridge cron.

use super::*;

pub(super) fn write_schedule(w: &mut Writer, group: &SourceGroup, schedule: &SourceSchedule) {
    w.blank();
    let from = format!("scheduled action {} of group {}", schedule.name, group.name);
    let Some(recurrence) = &schedule.recurrence else {
        w.not_expressed(&format!(
            "{from}: a one-time action at {} (the policy format has recurring schedules only)",
            schedule.start_time.as_deref().unwrap_or("an unknown time")
        ));
        return;
    };
    let crons = match cron_from_recurrence(recurrence) {
        Ok(crons) => crons,
        Err(why) => {
            w.not_expressed(&format!("{from}: recurrence {recurrence:?}: {why}"));
            return;
        }
    };
    if let Some(end) = &schedule.end_time {
        w.not_expressed(&format!(
            "{from}: its end time {end} is not in the policy format: written without it, so it keeps firing after"
        ));
    }
    w.line(&source("scheduled action", &schedule.name, schedule.arn.as_ref()));
    if let Some(start) = &schedule.start_time {
        // DescribeScheduledActions reports a recurring action's next start
        // here, so it is no sign of a boundary set on purpose.
        w.line(&format!(
            "# StartTime {start} as described (the next run, or a start set on purpose)"
        ));
    }
    w.line(&format!("# recurrence {recurrence:?} (Unix cron)"));
    if crons.len() > 1 {
        w.line("# cron fires when either its day of month or its day of week matches;");
        w.line("# EventBridge takes one of the two: one schedule for each.");
    }
    let base = schedule_name(&schedule.name);
    for (k, cron) in crons.iter().enumerate() {
        w.line("[[group.schedule]]");
        let name = match (crons.len(), k) {
            (1, _) => base.clone(),
            (_, 0) => format!("{base}-days-of-month"),
            _ => format!("{base}-days-of-week"),
        };
        w.line(&format!("name = {}", quoted(&name)));
        w.line(&format!("cron = {}", quoted(cron)));
        if let Some(zone) = &schedule.time_zone {
            w.line(&format!("timezone = {}", quoted(zone)));
        }
        for (key, value) in [
            ("min", schedule.min),
            ("max", schedule.max),
            ("desired", schedule.desired),
        ] {
            if let Some(value) = value {
                w.line(&format!("{key} = {value}"));
            }
        }
    }
}

/// A scheduled action's name as an EventBridge Scheduler name allows
/// (`[0-9a-zA-Z-_.]+`, at most 64): other characters become `-`.
pub(super) fn schedule_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.chars().take(48).collect()
}

pub(super) const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Converts Auto Scaling's Recurrence (Unix cron: minute hour day-of-month
/// month day-of-week, days of the week 0-7 with 0 and 7 Sunday) into
/// EventBridge cron expressions (six fields, `?` in one of the day fields,
/// days of the week 1-7 or SUN-SAT). Unix cron fires when either day field
/// matches if both are restricted; EventBridge cannot say that in one
/// expression, so that gives two.
pub fn cron_from_recurrence(recurrence: &str) -> Result<Vec<String>, String> {
    let fields: Vec<&str> = recurrence.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = fields[..] else {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        ));
    };
    let days = days_of_week(dow)?;
    let all_days = days.len() == 7;
    let dow = week_days(&days);
    Ok(match (dom, all_days) {
        ("*", true) => vec![format!("cron({minute} {hour} * {month} ? *)")],
        (_, true) => vec![format!("cron({minute} {hour} {dom} {month} ? *)")],
        ("*", false) => vec![format!("cron({minute} {hour} ? {month} {dow} *)")],
        (_, false) => vec![
            format!("cron({minute} {hour} {dom} {month} ? *)"),
            format!("cron({minute} {hour} ? {month} {dow} *)"),
        ],
    })
}

/// The days (0 = Sunday) a Unix cron day-of-week field names.
pub(super) fn days_of_week(field: &str) -> Result<Vec<usize>, String> {
    let value = |text: &str| -> Result<usize, String> {
        if let Some(k) = DAYS.iter().position(|d| d.eq_ignore_ascii_case(text)) {
            return Ok(k);
        }
        match text.parse::<usize>() {
            Ok(n) if n <= 7 => Ok(n % 7),
            _ => Err(format!("day of week {text:?}: allowed: 0-7 or SUN-SAT")),
        }
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<usize>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("day of week step {step:?}: allowed: a number above 0"))?,
            ),
            None => (item, 1),
        };
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (value(a)?, value(b)?);
                    // 5-7 is Friday to Sunday: 7 ends the week.
                    (a, if b == 0 && a > 0 { 7 } else { b })
                }
                None if step > 1 => (value(range)?, 6),
                None => {
                    let d = value(range)?;
                    (d, d)
                }
            },
        };
        if first > last {
            return Err(format!("day of week range {range:?} runs backwards"));
        }
        for d in (first..=last).step_by(step) {
            days[d % 7] = true;
        }
    }
    Ok((0..7).filter(|d| days[*d]).collect())
}

/// Days as EventBridge names, consecutive runs as ranges: `MON-FRI`, `SUN,SAT`.
pub(super) fn week_days(days: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut k = 0;
    while k < days.len() {
        let mut end = k;
        while end + 1 < days.len() && days[end + 1] == days[end] + 1 {
            end += 1;
        }
        if end >= k + 2 {
            parts.push(format!("{}-{}", DAYS[days[k]], DAYS[days[end]]));
        } else {
            for d in &days[k..=end] {
                parts.push(DAYS[*d].to_string());
            }
        }
        k = end + 1;
    }
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{part}");
    }
    text
}

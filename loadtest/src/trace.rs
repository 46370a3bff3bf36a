//! Request-rate traces: CSV with `timestamp` (RFC 3339, UTC) and
//! `requests_per_second`, one row a minute. Bad rows are refused with their
//! line number; nothing is half-read.

use std::path::Path;

use jiff::{SignedDuration, Timestamp};

/// One row: the mean request rate of the minute starting at `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Timestamp,
    pub rps: f64,
}

/// A whole trace, rows in time order, one minute apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub samples: Vec<Sample>,
}

/// Why a trace was refused.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read trace {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A row breaks the format; `line` is 1-based, the header is line 1.
    #[error("trace {file} line {line}: {problem}")]
    Row { file: String, line: usize, problem: String },
}

const STEP: SignedDuration = SignedDuration::from_secs(60);

impl Trace {
    /// Reads a trace file.
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let text = functions::input::read_text(path, functions::input::TRACE_MAX_BYTES).map_err(|source| {
            TraceError::Read {
                path: path.display().to_string(),
                source,
            }
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses trace text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, TraceError> {
        let row = |line: usize, problem: String| TraceError::Row {
            file: file.to_string(),
            line,
            problem,
        };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == "timestamp,requests_per_second" => {}
            Some((_, header)) => {
                return Err(row(
                    1,
                    format!("header {header:?}; expected \"timestamp,requests_per_second\""),
                ));
            }
            None => {
                return Err(row(
                    1,
                    "empty file; expected the header timestamp,requests_per_second".into(),
                ));
            }
        }
        let mut samples: Vec<Sample> = Vec::new();
        for (index, text) in lines {
            let line = index + 1;
            if text.trim().is_empty() {
                continue;
            }
            let Some((at, rps)) = text.split_once(',') else {
                return Err(row(line, format!("{text:?}: expected TIMESTAMP,REQUESTS_PER_SECOND")));
            };
            let at: Timestamp = at
                .trim()
                .parse()
                .map_err(|e| row(line, format!("timestamp {at:?} is not RFC 3339 ({e})")))?;
            let rps: f64 = rps
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| row(line, format!("requests_per_second {rps:?} must be a number >= 0")))?;
            if let Some(previous) = samples.last()
                && at.duration_since(previous.at) != STEP
            {
                return Err(row(
                    line,
                    format!("{at} is not one minute after the previous row ({})", previous.at),
                ));
            }
            samples.push(Sample { at, rps });
        }
        if samples.is_empty() {
            return Err(row(2, "no rows".into()));
        }
        Ok(Self { samples })
    }

    /// The highest rate.
    pub fn peak(&self) -> f64 {
        self.samples.iter().map(|s| s.rps).fold(0.0, f64::max)
    }

    /// The mean request rate (0 for no samples).
    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().map(|s| s.rps).sum::<f64>() / self.samples.len() as f64
    }

    /// A trace from a load balancer's requests a minute (datapoints at
    /// their minute's start): every minute of `[since, until)` (whole
    /// minutes), a minute with no datapoint as no request (the load
    /// balancer publishes nothing then). None when that is no minute.
    pub fn from_requests_a_minute(
        requests: &[functions::decide::Datapoint],
        since: Timestamp,
        until: Timestamp,
    ) -> Option<Self> {
        let minute = |t: Timestamp| t.as_second().div_euclid(60);
        let (first, end) = (
            minute(since) + i64::from(since.as_second().rem_euclid(60) != 0),
            minute(until),
        );
        let by_minute: std::collections::BTreeMap<i64, f64> =
            requests.iter().map(|d| (minute(d.at), d.value)).collect();
        let samples: Vec<Sample> = (first..end)
            .filter_map(|m| {
                Some(Sample {
                    at: Timestamp::from_second(m * 60).ok()?,
                    rps: by_minute.get(&m).copied().unwrap_or(0.0).max(0.0) / 60.0,
                })
            })
            .collect();
        (!samples.is_empty()).then_some(Self { samples })
    }

    /// The trace as its CSV (what [`Trace::parse`] reads).
    pub fn to_csv(&self) -> String {
        let mut text = String::from("timestamp,requests_per_second\n");
        for sample in &self.samples {
            text.push_str(&format!("{},{}\n", sample.at, (sample.rps * 1000.0).round() / 1000.0));
        }
        text
    }
}

/// Synthetic shapes of traffic (issue 22: a policy must not be tuned to
/// one trace), from Monday 2026-11-16 00:00 UTC, one row a minute, the
/// base load 100 req/s:
///
/// | shape | what |
/// |---|---|
/// | `square` | a day of 5 minutes at 1x, 5 at 3x: a half-period near the 90 s boot plus the 3-minute metric delay |
/// | `ramp` | a day: 2 h at 1x, a ramp to 3x over 10 h, 12 h at 3x |
/// | `two-peaks` | a week: two daily peaks (5x at 10:00 and 4x at 20:00, 1 h wide each) over a night trough of 0.5x |
/// | `holiday-week` | a week of office hours (9:00-18:00 at 6x on weekdays, 1x otherwise), Wednesday a holiday at 1x |
/// | `holiday-month` | four weeks of those office hours, the third week's Wednesday a holiday: the holiday week with the history a forecast learns from |
pub const SHAPES: [&str; 5] = ["square", "ramp", "two-peaks", "holiday-week", "holiday-month"];

impl Trace {
    /// The synthetic shape `name` (one of [`SHAPES`]); None for another name.
    pub fn synthetic(name: &str) -> Option<Self> {
        const BASE: f64 = 100.0;
        let (days, rate): (i64, fn(i64) -> f64) = match name {
            "square" => (1, |m| if (m / 5) % 2 == 0 { 1.0 } else { 3.0 }),
            "ramp" => (1, |m| {
                let hours = m as f64 / 60.0;
                if hours < 2.0 {
                    1.0
                } else if hours < 12.0 {
                    1.0 + 2.0 * (hours - 2.0) / 10.0
                } else {
                    3.0
                }
            }),
            "two-peaks" => (7, |m| {
                let hour = (m % 1440) as f64 / 60.0;
                let bump = |centre: f64, height: f64| height * (-((hour - centre) / 0.5).powi(2)).exp();
                // 1x by day, down to 0.5x at 03:00.
                let trough = (1.0 - ((hour - 3.0) / 4.0).powi(2)).max(0.0);
                1.0 - 0.5 * trough + bump(10.0, 4.5) + bump(20.0, 3.5)
            }),
            "holiday-week" => (7, |m| {
                let (day, hour) = (m / 1440, (m % 1440) / 60);
                let working = day < 5 && day != 2 && (9..18).contains(&hour);
                if working { 6.0 } else { 1.0 }
            }),
            "holiday-month" => (28, |m| {
                let (day, hour) = (m / 1440, (m % 1440) / 60);
                let working = day % 7 < 5 && day != 16 && (9..18).contains(&hour);
                if working { 6.0 } else { 1.0 }
            }),
            _ => return None,
        };
        let start = Timestamp::from_second(1_794_787_200).ok()?;
        let samples = (0..days * 1440)
            .map(|m| Sample {
                at: start + SignedDuration::from_mins(m),
                rps: (BASE * rate(m) * 1000.0).round() / 1000.0,
            })
            .collect();
        Some(Self { samples })
    }
}

/// What one instance serves at 100% CPU, derived from a group's history
/// (`loadtest trace --aws`): each minute with the group between
/// [`CALIBRATION_CPU`] % CPU and at least one instance in service gives
/// (requests a second per instance) / (CPU / 100); the median of those.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub capacity_rps: f64,
    /// The minutes it is the median of.
    pub minutes: usize,
}

/// The CPU range calibration reads: below it idle work (health checks,
/// the OS) weighs too much, above it the group sheds and CPU no longer
/// grows with the load.
pub const CALIBRATION_CPU: std::ops::RangeInclusive<f64> = 20.0..=90.0;

/// Calibrates from requests a minute, CPU % and instances in service of
/// the same minutes; None without a usable minute.
pub fn calibrate(
    requests: &[functions::decide::Datapoint],
    cpu: &[functions::decide::Datapoint],
    in_service: &[functions::decide::Datapoint],
) -> Option<Calibration> {
    let minute = |t: Timestamp| t.as_second().div_euclid(60);
    let of = |series: &[functions::decide::Datapoint]| -> std::collections::BTreeMap<i64, f64> {
        series.iter().map(|d| (minute(d.at), d.value)).collect()
    };
    let (cpu, in_service) = (of(cpu), of(in_service));
    let mut per_instance: Vec<f64> = requests
        .iter()
        .filter_map(|r| {
            let m = minute(r.at);
            let (c, n) = (*cpu.get(&m)?, *in_service.get(&m)?);
            (CALIBRATION_CPU.contains(&c) && n >= 1.0 && r.value > 0.0).then(|| r.value / 60.0 / n / (c / 100.0))
        })
        .filter(|v| v.is_finite())
        .collect();
    let median = functions::policy::median(&mut per_instance)?;
    Some(Calibration {
        capacity_rps: median,
        minutes: per_instance.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minute: i64, value: f64) -> functions::decide::Datapoint {
        functions::decide::Datapoint {
            at: Timestamp::from_second(1_763_251_200 + 60 * minute).expect("time"),
            value,
        }
    }

    #[test]
    fn a_trace_from_requests_a_minute_has_every_minute_and_reads_back() {
        let since = Timestamp::from_second(1_763_251_200).expect("since");
        let until = since + SignedDuration::from_mins(4);
        // Minute 2 has no datapoint: the load balancer saw no request.
        let trace = Trace::from_requests_a_minute(&[point(0, 600.0), point(1, 1200.0), point(3, 60.0)], since, until)
            .expect("minutes");
        let rates: Vec<f64> = trace.samples.iter().map(|s| s.rps).collect();
        assert_eq!(rates, [10.0, 20.0, 0.0, 1.0]);
        assert_eq!(Trace::parse("t.csv", &trace.to_csv()).expect("reads back"), trace);
        // Part minutes at the ends are left out; an empty window is none.
        let late = since + SignedDuration::from_secs(30);
        assert_eq!(
            Trace::from_requests_a_minute(&[], late, until)
                .expect("3")
                .samples
                .len(),
            3
        );
        assert_eq!(Trace::from_requests_a_minute(&[], since, since), None);
    }

    #[test]
    fn calibration_is_the_median_per_instance_rate_at_full_cpu() {
        // 2 instances: 6000 a minute at 50% CPU -> 50 req/s each at half
        // their CPU -> 100 at 100%; 9000 at 50% -> 150; 12000 at 80% -> 125.
        let requests = [
            point(0, 6000.0),
            point(1, 9000.0),
            point(2, 12000.0),
            point(3, 600.0),
            point(4, 30000.0),
        ];
        let cpu = [
            point(0, 50.0),
            point(1, 50.0),
            point(2, 80.0),
            point(3, 5.0),
            point(4, 100.0),
        ];
        let in_service = [
            point(0, 2.0),
            point(1, 2.0),
            point(2, 2.0),
            point(3, 2.0),
            point(4, 2.0),
        ];
        let calibration = calibrate(&requests, &cpu, &in_service).expect("calibrated");
        // Minutes 3 (5% CPU: idle) and 4 (100%: saturated) are not read.
        assert_eq!(
            calibration,
            Calibration {
                capacity_rps: 125.0,
                minutes: 3
            }
        );
        assert_eq!(calibrate(&requests, &cpu, &[]), None, "no instances in service known");
        assert_eq!(
            calibrate(&requests[3..], &cpu, &in_service),
            None,
            "only idle and saturated minutes"
        );
    }

    #[test]
    fn synthetic_shapes_are_what_they_say() {
        let rate = |trace: &Trace, minute: usize| trace.samples[minute].rps;
        let square = Trace::synthetic("square").expect("square");
        assert_eq!(square.samples.len(), 1440);
        // Day 0 is a Monday: holiday-week's weekdays count from it.
        assert_eq!(
            jiff::tz::Offset::UTC.to_datetime(square.samples[0].at).weekday(),
            jiff::civil::Weekday::Monday
        );
        assert_eq!(
            (rate(&square, 4), rate(&square, 5), rate(&square, 10)),
            (100.0, 300.0, 100.0)
        );
        let ramp = Trace::synthetic("ramp").expect("ramp");
        assert_eq!(
            (rate(&ramp, 60), rate(&ramp, 7 * 60), rate(&ramp, 13 * 60)),
            (100.0, 200.0, 300.0)
        );
        let peaks = Trace::synthetic("two-peaks").expect("two-peaks");
        assert_eq!(peaks.samples.len(), 7 * 1440);
        let (ten, eight_pm, three_am) = (rate(&peaks, 600), rate(&peaks, 1200), rate(&peaks, 180));
        assert!(
            ten > eight_pm && eight_pm > 4.0 * three_am,
            "{ten} {eight_pm} {three_am}"
        );
        let week = Trace::synthetic("holiday-week").expect("holiday-week");
        let monday_noon = rate(&week, 12 * 60);
        let wednesday_noon = rate(&week, 2 * 1440 + 12 * 60);
        let saturday_noon = rate(&week, 5 * 1440 + 12 * 60);
        assert_eq!((monday_noon, wednesday_noon, saturday_noon), (600.0, 100.0, 100.0));
        let month = Trace::synthetic("holiday-month").expect("holiday-month");
        assert_eq!(month.samples.len(), 28 * 1440);
        let noon = |day: usize| rate(&month, day * 1440 + 12 * 60);
        // Wednesdays work but the third week's; weekends never do.
        assert_eq!(
            (noon(2), noon(9), noon(16), noon(23), noon(19)),
            (600.0, 600.0, 100.0, 600.0, 100.0)
        );
        for name in SHAPES {
            let trace = Trace::synthetic(name).expect(name);
            assert_eq!(
                Trace::parse(name, &trace.to_csv()).expect("reads back"),
                trace,
                "{name}"
            );
        }
        assert_eq!(Trace::synthetic("sine"), None);
    }

    #[test]
    fn parses_rows() {
        let trace = Trace::parse(
            "t.csv",
            "timestamp,requests_per_second\n2026-11-16T00:00:00Z,42.6\n2026-11-16T00:01:00Z,43\n",
        )
        .expect("trace");
        assert_eq!(trace.samples.len(), 2);
        assert_eq!(trace.peak(), 43.0);
    }

    #[test]
    fn bad_rows_are_refused_with_their_line() {
        let cases = [
            ("header", "time,rps\n", "line 1: header"),
            ("empty", "", "line 1: empty file"),
            ("no rows", "timestamp,requests_per_second\n", "line 2: no rows"),
            (
                "bad time",
                "timestamp,requests_per_second\nyesterday,1\n",
                "line 2: timestamp \"yesterday\"",
            ),
            (
                "negative",
                "timestamp,requests_per_second\n2026-11-16T00:00:00Z,-1\n",
                "line 2: requests_per_second \"-1\" must be a number >= 0",
            ),
            (
                "not a number",
                "timestamp,requests_per_second\n2026-11-16T00:00:00Z,lots\n",
                "line 2",
            ),
            (
                "one column",
                "timestamp,requests_per_second\n2026-11-16T00:00:00Z\n",
                "line 2",
            ),
            (
                "gap",
                "timestamp,requests_per_second\n2026-11-16T00:00:00Z,1\n2026-11-16T00:02:00Z,1\n",
                "line 3: 2026-11-16T00:02:00Z is not one minute after the previous row",
            ),
        ];
        for (name, text, expected) in cases {
            let error = Trace::parse("t.csv", text).expect_err(name).to_string();
            assert!(
                error.contains(expected) && error.starts_with("trace t.csv line"),
                "{name}: {error}"
            );
        }
    }
}

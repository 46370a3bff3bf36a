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
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Scheduled actions.

use super::*;

/// A scheduled action: sets min/max/desired at cron or rate times.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    /// `cron(...)` in EventBridge syntax.
    pub cron: Option<String>,
    /// `rate(...)` in EventBridge syntax.
    pub rate: Option<String>,
    /// IANA time zone of the cron expression (default UTC).
    pub timezone: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
}

impl Schedule {
    /// The expression, whichever key holds it.
    pub fn expression(&self) -> Option<&str> {
        self.cron.as_deref().or(self.rate.as_deref())
    }

    /// The expression parsed and the time zone it is read in (default UTC),
    /// as every part that fires schedules needs them; the error names what
    /// is wrong (validation refuses such a file first).
    pub fn parsed(&self) -> Result<(ScheduleExpr, jiff::tz::TimeZone), String> {
        let expression = self.expression().ok_or("no cron or rate expression")?;
        let expr = expression.parse::<ScheduleExpr>().map_err(|e| e.to_string())?;
        let zone = match self.timezone.as_deref() {
            Some(name) => crate::schedule::time_zone(name).map_err(|e| format!("time zone {name:?}: {e}"))?,
            None => jiff::tz::TimeZone::UTC,
        };
        Ok((expr, zone))
    }
}

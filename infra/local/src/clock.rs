//! Cloud time: the local cloud runs `speed` times faster than the wall
//! clock, so a 300 s cooldown lasts 5 s at speed 60. Every timestamp the
//! cloud shows (launch times, activities, events) is in cloud time; every
//! sleep is converted to wall time.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A clock that starts at the wall time of its creation (or a chosen cloud
/// time) and runs `speed` times faster.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    /// The wall time at `started`.
    wall_epoch: Timestamp,
    epoch: Timestamp,
    speed: f64,
}

impl Clock {
    /// A clock starting now; `speed` must be finite and >= 1 (checked by the config).
    pub fn new(speed: f64) -> Self {
        Self::starting_at(speed, Timestamp::now())
    }

    /// A clock whose cloud time is `epoch` now (e.g. just before a schedule fires).
    pub fn starting_at(speed: f64, epoch: Timestamp) -> Self {
        Self {
            started: Instant::now(),
            wall_epoch: Timestamp::now(),
            epoch,
            speed,
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The cloud time that corresponds to its start (for functions that share the clock).
    pub fn epoch(&self) -> Timestamp {
        self.epoch
    }

    /// `SPEED@EPOCH=CLOUD` for the functions' `SCALER_CLOCK`: the same clock in another process.
    pub fn to_env(&self) -> String {
        format!("{}@{}={}", self.speed, self.wall_epoch, self.epoch)
    }

    /// The wall instant the clock started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Cloud time now.
    pub fn now(&self) -> Timestamp {
        self.at(Instant::now())
    }

    /// Cloud time at a wall instant.
    pub fn at(&self, instant: Instant) -> Timestamp {
        let wall = instant.saturating_duration_since(self.started);
        let cloud = SignedDuration::try_from(wall.mul_f64(self.speed)).unwrap_or(SignedDuration::MAX);
        self.epoch.checked_add(cloud).unwrap_or(Timestamp::MAX)
    }

    /// How long a cloud duration lasts on the wall clock.
    pub fn wall(&self, cloud: Duration) -> Duration {
        cloud.div_f64(self.speed)
    }

    /// The wall instant of a cloud time (now if it is in the past).
    pub fn instant_of(&self, at: Timestamp) -> Instant {
        let cloud = at.duration_since(self.epoch);
        match Duration::try_from(cloud) {
            Ok(ahead) => self.started + self.wall(ahead),
            Err(_) => self.started,
        }
    }
}

/// Parses a `--speed` flag: a number from 1 to 3600.
pub fn parse_speed(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (1.0..=3600.0).contains(v))
        .ok_or_else(|| "must be a number from 1 to 3600".into())
}

/// Parses a `--start` flag: an RFC 3339 instant.
pub fn parse_start(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|e| format!("must be an RFC 3339 instant such as 2026-11-24T02:58:00Z ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_time_runs_at_speed() {
        let clock = Clock::new(60.0);
        let later = clock.started() + Duration::from_millis(500);
        assert_eq!(
            clock.at(later).duration_since(clock.epoch()),
            SignedDuration::from_secs(30)
        );
        assert_eq!(clock.wall(Duration::from_secs(300)), Duration::from_secs(5));
        let back = clock.instant_of(clock.epoch() + SignedDuration::from_secs(30));
        assert_eq!(back.duration_since(clock.started()), Duration::from_millis(500));
    }

    #[test]
    fn speed_one_is_the_wall_clock() {
        let clock = Clock::new(1.0);
        assert_eq!(clock.wall(Duration::from_secs(7)), Duration::from_secs(7));
        let drift = clock.now().duration_since(Timestamp::now()).abs();
        assert!(drift < SignedDuration::from_secs(1), "{drift:?}");
    }
}

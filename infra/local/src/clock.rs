//! Cloud time: the local cloud runs `speed` times faster than the wall
//! clock, so a 300 s cooldown lasts 5 s at speed 60. Every timestamp the
//! cloud shows (launch times, activities, events) is in cloud time; every
//! sleep is converted to wall time.

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A clock that starts at the wall time of its creation and runs `speed` times faster.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    epoch: Timestamp,
    speed: f64,
}

impl Clock {
    /// A clock starting now; `speed` must be finite and >= 1 (checked by the config).
    pub fn new(speed: f64) -> Self {
        Self {
            started: Instant::now(),
            epoch: Timestamp::now(),
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

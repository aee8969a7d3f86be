//! A drift-free sampling schedule: tick `k` is due at `start + k × interval`, however long each
//! sample took. When sampling falls behind, missed ticks are skipped (never bunched up) and
//! counted, so the caller can say how far behind it is.

use std::time::{Duration, Instant};

/// When the next sample is due.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
    tick: u64,
    /// Ticks skipped because sampling was late.
    pub missed: u64,
    /// The largest lateness seen.
    pub worst_lateness: Duration,
}

impl Schedule {
    /// A schedule of `rate_hz` ticks a second starting at `start`.
    pub fn new(start: Instant, rate_hz: f64) -> Schedule {
        let rate = if rate_hz.is_finite() && rate_hz > 0.0 {
            rate_hz
        } else {
            1.0
        };
        Schedule {
            start,
            interval: Duration::from_secs_f64(1.0 / rate),
            tick: 0,
            missed: 0,
            worst_lateness: Duration::ZERO,
        }
    }

    /// The time between ticks.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Called after a sample finished at `now`: returns when the next one is due.
    pub fn next_after(&mut self, now: Instant) -> Instant {
        self.tick += 1;
        let mut due = self.due(self.tick);
        if now > due {
            let late = now - due;
            self.worst_lateness = self.worst_lateness.max(late);
            // Skip the ticks that are already past; the next due tick is in the future.
            let behind = (late.as_nanos() / self.interval.as_nanos().max(1)) as u64 + 1;
            self.missed += behind;
            self.tick += behind;
            due = self.due(self.tick);
        }
        due
    }

    fn due(&self, tick: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(tick));
        self.start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_time_ticks_do_not_drift() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 100.0);
        let mut due = t0;
        for k in 1..=1000 {
            // Each sample takes 3 ms, finishing well before the next tick.
            due = s.next_after(due + Duration::from_millis(3));
            assert_eq!(due, t0 + Duration::from_millis(10 * k));
        }
        assert_eq!(s.missed, 0);
    }

    #[test]
    fn late_ticks_are_skipped_and_counted() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 100.0);
        // The first sample took 35 ms: ticks at 10, 20, 30 ms are past.
        let due = s.next_after(t0 + Duration::from_millis(35));
        assert_eq!(due, t0 + Duration::from_millis(40));
        assert_eq!(s.missed, 3);
        assert_eq!(s.worst_lateness, Duration::from_millis(25));
    }

    #[test]
    fn silly_rates_do_not_panic() {
        let t0 = Instant::now();
        for rate in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e12] {
            let mut s = Schedule::new(t0, rate);
            s.next_after(t0 + Duration::from_secs(1));
        }
    }
}

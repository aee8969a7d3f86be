//! The sampling schedule: time is cut into slots of `1 / rate` from the start, and each slot's
//! sample falls at a uniformly random point inside it (stratified jitter). The random phase
//! means a workload with a period of its own cannot line up with the sampler (a fixed period
//! aliases with periodic code and biases shares); one sample per slot keeps the variance of
//! measured shares far below that of exponential (Poisson) intervals at the same rate, and
//! the slots never drift. A slot whose time has just passed (less than [`CATCH_UP`] ago: the
//! sampler woke up a little late, or the last sample ran long) is still taken, at once; slots
//! further behind are skipped and counted, so that a sampler that cannot keep up never bunches
//! its samples up for long.

use std::time::{Duration, Instant};

/// How late a slot may be and still be taken. A sleep ends some tens of microseconds after it
/// was due, which at tens of kilohertz is several slots: skipping them would make a sampler
/// that keeps up with the rate miss it after every sleep.
pub const CATCH_UP: Duration = Duration::from_micros(200);

/// When the next sample is due.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    slot: u64,
    next_due: Instant,
    interval: Duration,
    rng: u64,
    /// Ticks skipped because sampling was late.
    pub missed: u64,
    /// The largest lateness seen.
    pub worst_lateness: Duration,
}

impl Schedule {
    /// A schedule of `rate_hz` ticks a second (on average) starting at `start`, with the
    /// jitter drawn from a generator seeded with `seed`.
    pub fn new(start: Instant, rate_hz: f64, seed: u64) -> Schedule {
        let rate = if rate_hz.is_finite() && rate_hz > 0.0 {
            rate_hz.min(1e9)
        } else {
            1.0
        };
        Schedule {
            start,
            slot: 0,
            next_due: start,
            interval: Duration::from_secs_f64(1.0 / rate),
            // splitmix64 of the seed: a zero seed still gives a working xorshift state.
            rng: splitmix(seed) | 1,
            missed: 0,
            worst_lateness: Duration::ZERO,
        }
    }

    /// Called after a sample finished at `now`: returns when the next one is due (which may
    /// have passed, by less than [`CATCH_UP`]).
    pub fn next_after(&mut self, now: Instant) -> Instant {
        self.slot += 1;
        self.next_due = self.due_in(self.slot);
        if now > self.next_due {
            self.worst_lateness = self.worst_lateness.max(now - self.next_due);
            while self.next_due + CATCH_UP < now {
                self.missed += 1;
                self.slot += 1;
                self.next_due = self.due_in(self.slot);
            }
        }
        self.next_due
    }

    /// A random instant inside slot `slot`. In whole nanoseconds, worked out in floating
    /// point (exact for over a hundred days), which is cheaper than `Duration`'s own.
    fn due_in(&mut self, slot: u64) -> Instant {
        let nanos = self.interval.as_nanos() as f64 * (slot as f64 + self.uniform());
        self.start + Duration::from_nanos(nanos as u64)
    }

    /// A uniform draw in [0, 1): xorshift64*, plenty for jitter and reproducible from the seed.
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_rate_holds_without_drift() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 100.0, 7);
        let mut due = t0;
        for _ in 0..20_000 {
            // Samples take no time here: every slot is kept.
            due = s.next_after(due);
        }
        // The 20 000th tick at 100 Hz falls inside the slot starting at 200 s.
        let secs = (due - t0).as_secs_f64();
        assert!((200.0..200.01).contains(&secs), "{secs}");
        assert_eq!(s.missed, 0);
    }

    #[test]
    fn intervals_vary_and_repeat_with_the_seed() {
        let t0 = Instant::now();
        let draws = |seed| {
            let mut s = Schedule::new(t0, 1000.0, seed);
            let mut at = t0;
            (0..50)
                .map(|_| {
                    let next = s.next_after(at);
                    let gap = next - at;
                    at = next;
                    gap
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
        let d = draws(3);
        assert!(d.iter().any(|x| *x != d[0]), "{d:?}");
        // One sample per 1 ms slot: gaps stay under two slots.
        assert!(d.iter().all(|g| *g < Duration::from_millis(2)), "{d:?}");
    }

    #[test]
    fn late_ticks_are_skipped_and_counted() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 100.0, 5);
        let now = t0 + Duration::from_millis(500);
        let due = s.next_after(now);
        assert!(due >= now);
        assert!(
            s.missed >= 20,
            "about 50 ticks were due in 500 ms: {}",
            s.missed
        );
        assert!(s.worst_lateness > Duration::ZERO);
    }

    #[test]
    fn slots_just_missed_are_taken_late_and_the_rate_holds() {
        // 100 kHz, samples of 8 µs, and every 40th tick a sleep that ends 60 µs late: the slots
        // it overslept are taken back to back, none is skipped, and the mean rate holds.
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, 100_000.0, 9);
        let mut now = t0;
        let mut ticks = 0u64;
        while now < t0 + Duration::from_secs(1) {
            ticks += 1;
            now += Duration::from_micros(8);
            let due = s.next_after(now);
            if ticks % 40 == 0 {
                now = now.max(due) + Duration::from_micros(60);
            } else {
                now = now.max(due);
            }
        }
        assert_eq!(s.missed, 0);
        assert!((99_000..=100_001).contains(&ticks), "{ticks}");
    }

    #[test]
    fn silly_rates_do_not_panic() {
        let t0 = Instant::now();
        for rate in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e12] {
            let mut s = Schedule::new(t0, rate, 0);
            s.next_after(t0 + Duration::from_millis(10));
        }
    }
}

//! The one backoff of the program: delays that double from `min` up to `max` after each failed
//! attempt and start over after a success. Reconnects to brokers, restarts of parts and
//! watchers, retried writes all use it.
//!
//! [`Backoff::next_delay`] gives the delay itself; [`Backoff::next_delay_jittered`] draws it
//! between half and all of it, so that many clients of one broker that went away do not come
//! back in step (the MQTT watcher's reconnects).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start at `min` and double up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt: `min × 2^attempts`, capped at `max`.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// [`Backoff::next_delay`] drawn between half and all of it; `unit` is a random number in
    /// [0, 1).
    pub fn next_delay_jittered(&mut self, unit: f64) -> Duration {
        self.next_delay().mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Failed attempts since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After an attempt that worked: the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    /// From 100 ms up to 10 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let ms: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_draws_between_half_and_all_of_the_delay() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let top: Vec<u64> = (0..6)
            .map(|_| b.next_delay_jittered(1.0).as_millis() as u64)
            .collect();
        assert_eq!(top, [500, 1_000, 2_000, 4_000, 4_000, 4_000]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.next_delay_jittered(0.0), Duration::from_millis(250));
        assert_eq!(b.next_delay_jittered(0.5), Duration::from_millis(750));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        for _ in 0..1_000 {
            assert!(b.next_delay_jittered(0.99) <= Duration::from_secs(30));
        }
    }
}

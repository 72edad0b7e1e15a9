//! Exponential reconnect backoff with jitter, so a broker that goes away is not hammered and
//! many watchers do not come back in step.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start near `min` and double up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min: min.max(Duration::from_millis(1)),
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `unit` is a random number in [0, 1). The delay is
    /// drawn between half and all of `min × 2^attempt` (capped at `max`).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let ceiling = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let unit = unit.clamp(0.0, 1.0);
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }

    /// Failed attempts since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a connection that worked: the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let top: Vec<u64> = (0..6)
            .map(|_| b.next_delay(1.0).as_millis() as u64)
            .collect();
        assert_eq!(top, [500, 1_000, 2_000, 4_000, 4_000, 4_000]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
        assert_eq!(b.next_delay(0.5), Duration::from_millis(750));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        for _ in 0..1_000 {
            assert!(b.next_delay(0.99) <= Duration::from_secs(30));
        }
    }
}

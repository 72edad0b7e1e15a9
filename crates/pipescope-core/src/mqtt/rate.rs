//! Messages per minute over 1, 5 and 15 minute windows, from two small rings of counters.
//!
//! A message costs two counter increments (and, once per bucket width, clearing the buckets that
//! went by). The 1-minute window is read from 2-second buckets, the 5 and 15 minute windows from
//! 30-second buckets. A window is read as the whole buckets whose start lies inside it, and
//! divided by the time those buckets cover (or by the time since the topic was first seen, when
//! that is shorter), so a steady rate reads right whatever the phase of the clock.

use crate::clock::EpochMillis;
use crate::windows::Window;

const FINE_BUCKETS: u64 = 32;
const FINE_MS: u64 = 2_000;
const COARSE_BUCKETS: u64 = 32;
const COARSE_MS: u64 = 30_000;

#[derive(Debug, Clone)]
struct Ring<const N: usize> {
    counts: [u32; N],
    /// Index (time / width) of the newest bucket written.
    last: u64,
}

impl<const N: usize> Ring<N> {
    fn new() -> Self {
        Self {
            counts: [0; N],
            last: 0,
        }
    }

    #[inline]
    fn add(&mut self, bucket: u64) {
        // A clock that steps back counts into the newest bucket instead of corrupting older ones.
        let bucket = bucket.max(self.last);
        if bucket != self.last {
            let gap = bucket - self.last;
            if gap >= N as u64 {
                self.counts = [0; N];
            } else {
                for b in self.last + 1..=bucket {
                    self.counts[(b % N as u64) as usize] = 0;
                }
            }
            self.last = bucket;
        }
        let slot = &mut self.counts[(bucket % N as u64) as usize];
        *slot = slot.saturating_add(1);
    }

    /// Messages in buckets `from..=to` that the ring still holds.
    fn sum(&self, from: u64, to: u64) -> u64 {
        let to = to.min(self.last);
        let from = from.max((self.last + 1).saturating_sub(N as u64));
        if from > to {
            return 0;
        }
        (from..=to)
            .map(|b| u64::from(self.counts[(b % N as u64) as usize]))
            .sum()
    }
}

/// Per-topic rate counters: 256 bytes, no allocation.
#[derive(Debug, Clone)]
pub struct RateCounter {
    fine: Ring<{ FINE_BUCKETS as usize }>,
    coarse: Ring<{ COARSE_BUCKETS as usize }>,
}

impl Default for RateCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateCounter {
    pub fn new() -> Self {
        Self {
            fine: Ring::new(),
            coarse: Ring::new(),
        }
    }

    /// Counts one message at `now`.
    #[inline]
    pub fn record(&mut self, now: EpochMillis) {
        self.fine.add(now / FINE_MS);
        self.coarse.add(now / COARSE_MS);
    }

    /// Messages counted in `window` before `now`, and the milliseconds that count covers.
    pub fn count(&self, window: Window, now: EpochMillis) -> (u64, u64) {
        let width = match window {
            Window::OneMinute => FINE_MS,
            _ => COARSE_MS,
        };
        let start = now.saturating_sub(window.millis());
        // First bucket that starts inside the window.
        let first = start.div_ceil(width);
        let covered = now - (first * width).min(now);
        let count = match window {
            Window::OneMinute => self.fine.sum(first, now / width),
            _ => self.coarse.sum(first, now / width),
        };
        (count, covered)
    }

    /// Messages per minute over `window`, for a topic first seen at `first_seen`.
    pub fn per_minute(&self, window: Window, now: EpochMillis, first_seen: EpochMillis) -> f64 {
        let (count, covered) = self.count(window, now);
        if count == 0 {
            return 0.0;
        }
        // A topic seen for less than the window is measured over the time it has been seen;
        // at least one second, so a single fresh message does not read as a huge rate.
        let span = covered.min(now.saturating_sub(first_seen)).max(1_000);
        count as f64 * 60_000.0 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn a_steady_rate_reads_exactly_in_every_window() {
        let mut rate = RateCounter::new();
        // 10 messages a second for 20 minutes, starting mid-bucket.
        let start = T0 + 1_234;
        let mut now = start;
        while now < start + 20 * 60_000 {
            rate.record(now);
            now += 100;
        }
        let now = now - 100 + 50;
        for window in Window::ALL {
            let r = rate.per_minute(window, now, start);
            assert!((r - 600.0).abs() <= 600.0 * 0.002, "{window:?}: {r}");
        }
    }

    #[test]
    fn a_young_topic_is_measured_over_its_age() {
        let mut rate = RateCounter::new();
        for i in 0..100 {
            rate.record(T0 + i * 100); // 10/s for 10 s
        }
        let now = T0 + 10_000;
        // 100 messages over 10 s: 600/min in every window.
        for window in Window::ALL {
            assert_eq!(rate.per_minute(window, now, T0), 600.0, "{window:?}");
        }
    }

    #[test]
    fn rates_fall_to_zero_after_the_publisher_stops() {
        let mut rate = RateCounter::new();
        for i in 0..600 {
            rate.record(T0 + i * 1_000); // 1/s for 10 minutes
        }
        let stop = T0 + 600_000;
        assert!((rate.per_minute(Window::OneMinute, stop, T0) - 60.0).abs() < 1.5);
        let later = stop + 61_000;
        assert_eq!(rate.per_minute(Window::OneMinute, later, T0), 0.0);
        assert!(rate.per_minute(Window::FiveMinutes, later, T0) > 0.0);
        let much_later = stop + 16 * 60_000;
        for window in Window::ALL {
            assert_eq!(rate.per_minute(window, much_later, T0), 0.0, "{window:?}");
        }
        // and a new burst after a long silence is counted from clean buckets
        rate.record(much_later);
        assert_eq!(rate.count(Window::FifteenMinutes, much_later).0, 1);
    }

    #[test]
    fn counts_and_coverage_of_the_one_minute_window() {
        let mut rate = RateCounter::new();
        let base = 1_000_000 * FINE_MS; // bucket-aligned
        rate.record(base); // bucket b
        rate.record(base + 59_999); // last bucket of the minute
        rate.record(base + 60_000);
        // At base+60_000 the window starts at base: buckets base.. are all inside.
        assert_eq!(rate.count(Window::OneMinute, base + 60_000), (3, 60_000));
        // 1 ms later the bucket starting at base is no longer wholly inside.
        assert_eq!(rate.count(Window::OneMinute, base + 60_001), (2, 58_001));
    }

    #[test]
    fn a_clock_stepping_back_counts_into_the_newest_bucket() {
        let mut rate = RateCounter::new();
        rate.record(T0 + 10_000);
        rate.record(T0);
        assert_eq!(rate.count(Window::OneMinute, T0 + 10_000).0, 2);
    }
}

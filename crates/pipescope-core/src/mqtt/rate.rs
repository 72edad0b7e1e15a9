//! Exact message counts over the last 1, 5 and 15 minutes, from two small rings of counters.
//!
//! Every message is counted in the bucket of its arrival: 2-second buckets for the 1-minute
//! window, 30-second buckets for the 5 and 15-minute windows. A window is read over whole
//! buckets: it ends at the newest edge of its buckets at or before now (the current bucket is
//! still filling) and starts exactly one window earlier, so its count is exact over a window of
//! the right length. Nothing is scaled: how much of the window the watcher was counting
//! (`covered_ms`) is the caller's ([`window_count`]).

use crate::clock::EpochMillis;
use crate::windows::{self, Window, WindowCount};

const FINE_BUCKETS: u64 = 32;
const FINE_MS: u64 = 2_000;
const COARSE_BUCKETS: u64 = 32;
const COARSE_MS: u64 = 30_000;

// A window's buckets and the one still filling must fit in its ring.
const _: () = assert!(Window::OneMinute.millis() / FINE_MS < FINE_BUCKETS);
const _: () = assert!(Window::FifteenMinutes.millis() / COARSE_MS < COARSE_BUCKETS);

/// Width of the buckets `window` is read from: where its end falls (a multiple of this).
pub const fn bucket_ms(window: Window) -> u64 {
    match window {
        Window::OneMinute => FINE_MS,
        Window::FiveMinutes | Window::FifteenMinutes => COARSE_MS,
    }
}

/// The end of `window` read at `now`: the newest edge of its buckets at or before `now`.
pub const fn window_end(window: Window, now: EpochMillis) -> EpochMillis {
    now / bucket_ms(window) * bucket_ms(window)
}

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
        // A clock that steps back counts into the newest bucket instead of corrupting older ones:
        // the message is counted once, a little late.
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

    /// Messages in buckets `from..to` that the ring still holds.
    fn sum(&self, from: u64, to: u64) -> u64 {
        let to = to.min(self.last + 1);
        let from = from.max((self.last + 1).saturating_sub(N as u64));
        (from..to)
            .map(|b| u64::from(self.counts[(b % N as u64) as usize]))
            .sum()
    }
}

/// Per-topic counters: 256 bytes of counts (and two bucket indexes), no allocation.
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

    /// Counts one message arrived at `now`.
    #[inline]
    pub fn record(&mut self, now: EpochMillis) {
        self.fine.add(now / FINE_MS);
        self.coarse.add(now / COARSE_MS);
    }

    /// Forgets every count (a new subscription counts from nothing).
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    /// Messages counted in `window` read at `now`: in the whole buckets from
    /// `window_end(now) − window` to `window_end(now)`.
    pub fn count(&self, window: Window, now: EpochMillis) -> u64 {
        let width = bucket_ms(window);
        let end = window_end(window, now) / width;
        let start = end.saturating_sub(window.millis() / width);
        match window {
            Window::OneMinute => self.fine.sum(start, end),
            _ => self.coarse.sum(start, end),
        }
    }
}

/// What a topic's counter (`None`: nothing counted in this subscription) says about `window` at
/// `now`, for a watcher counting since `counting_since` (`None`: not counting, nothing
/// covered). The count covers `window_end − max(counting_since, window_start)`; a per-minute
/// figure only when that is the whole window.
pub fn window_count(
    counter: Option<&RateCounter>,
    window: Window,
    now: EpochMillis,
    counting_since: Option<EpochMillis>,
) -> WindowCount {
    let count = counter.map_or(0, |c| c.count(window, now));
    let covered = counting_since.map_or(0, |since| {
        windows::covered_ms(window, window_end(window, now), since)
    });
    WindowCount::new(window, count as f64, covered)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 30-second edge (so also a 2-second one).
    const T0: u64 = 1_700_000_010_000;
    const _: () = assert!(T0.is_multiple_of(COARSE_MS));

    /// The true number of `arrivals` (sorted) in `[from, to)`.
    fn truth(arrivals: &[u64], from: u64, to: u64) -> u64 {
        (arrivals.partition_point(|&a| a < to) - arrivals.partition_point(|&a| a < from)) as u64
    }

    /// Checks every window read at `now` against the arrivals: exact counts over
    /// `[window_end − window, window_end)`, and the coverage the formula gives.
    fn check(rate: &RateCounter, arrivals: &[u64], now: u64, since: u64) {
        for window in Window::ALL {
            let end = window_end(window, now);
            assert!(end <= now && now - end < bucket_ms(window));
            let start = end - window.millis();
            let got = window_count(Some(rate), window, now, Some(since));
            let expected = truth(arrivals, start.max(since), end);
            assert_eq!(got.count, expected as f64, "{window:?} at {now}");
            let covered = end.saturating_sub(start.max(since));
            assert_eq!(
                got.covered_s,
                covered as f64 / 1000.0,
                "{window:?} at {now}"
            );
            let full = covered == window.millis();
            assert_eq!(got.per_minute.is_some(), full, "{window:?} at {now}");
        }
    }

    /// Counts `arrivals` (sorted) into a counter, checking every window at each `read` time
    /// (sorted) as it goes, and handing the counter to `also` there; returns the counter.
    fn replay(
        arrivals: &[u64],
        reads: &[u64],
        since: u64,
        mut also: impl FnMut(&RateCounter, u64),
    ) -> RateCounter {
        let mut rate = RateCounter::new();
        let mut next = 0;
        for &now in reads {
            while next < arrivals.len() && arrivals[next] <= now {
                rate.record(arrivals[next]);
                next += 1;
            }
            check(&rate, arrivals, now, since);
            also(&rate, now);
        }
        rate
    }

    /// Read times from `from` for `span` ms, every `step` ms.
    fn reads(from: u64, span: u64, step: u64) -> Vec<u64> {
        (from..from + span).step_by(step as usize).collect()
    }

    #[test]
    fn a_steady_publisher_reads_exactly_at_every_phase() {
        // 10 messages a second for 20 minutes, from several phases of the buckets.
        for phase in [0, 1, 999, 1_234, 1_999, 17_321, 29_999] {
            let start = T0 + phase;
            let arrivals: Vec<u64> = (0..12_000).map(|i| start + i * 100).collect();
            // Once covered, every window holds exactly 600 a minute, whatever the read phase.
            let covered = start + 15 * 60_000 + 30_000;
            replay(
                &arrivals,
                &reads(start, 20 * 60_000, 1_013),
                start,
                |rate, now| {
                    if now >= covered {
                        for window in Window::ALL {
                            let c = window_count(Some(rate), window, now, Some(start));
                            assert_eq!(c.per_minute, Some(600.0), "{window:?} at {now}");
                        }
                    }
                },
            );
        }
    }

    #[test]
    fn bursty_publishers_read_exactly_at_every_phase() {
        for phase in [0, 1, 1_500, 4_999, 9_999, 29_999, 59_999] {
            let start = T0 + phase;
            // 5 messages every 10 s, and 100 once a minute, for 20 minutes.
            let fives: Vec<u64> = (0..120).flat_map(|k| [start + k * 10_000; 5]).collect();
            let hundreds: Vec<u64> = (0..20).flat_map(|k| [start + k * 60_000; 100]).collect();
            for (arrivals, per_minute) in [(fives, 30.0), (hundreds, 100.0)] {
                let covered = start + 15 * 60_000 + 30_000;
                replay(
                    &arrivals,
                    &reads(start, 20 * 60_000, 997),
                    start,
                    |rate, now| {
                        if now >= covered {
                            let counts =
                                Window::ALL.map(|w| window_count(Some(rate), w, now, Some(start)));
                            assert_eq!(
                                counts.map(|c| c.per_minute),
                                [Some(per_minute); 3],
                                "at {now}"
                            );
                            assert_eq!(counts[0].count, per_minute);
                        }
                    },
                );
            }
        }
    }

    #[test]
    fn five_messages_in_a_burst_after_start_read_as_five_not_a_rate() {
        // The case: subscribed at T0, 5 messages 2 s later (read 141.7/min before).
        let mut rate = RateCounter::new();
        for _ in 0..5 {
            rate.record(T0 + 2_000);
        }
        let at = |now, w| window_count(Some(&rate), w, now, Some(T0));
        // Until the 2 s bucket that holds them is over, the 1-minute window has not got them.
        assert_eq!(at(T0 + 3_999, Window::OneMinute).count, 0.0);
        let c = at(T0 + 4_100, Window::OneMinute);
        assert_eq!((c.count, c.covered_s, c.per_minute), (5.0, 4.0, None));
        for w in Window::ALL {
            let c = at(T0 + 31_000, w);
            assert_eq!(
                (c.count, c.covered_s, c.per_minute),
                (5.0, 30.0, None),
                "{w:?}"
            );
        }
        // A minute after the start the 1-minute window is covered: 5 in the last minute.
        assert_eq!(at(T0 + 60_000, Window::OneMinute).per_minute, Some(5.0));
        assert_eq!(at(T0 + 60_000, Window::FiveMinutes).per_minute, None);
        assert_eq!(at(T0 + 300_000, Window::FiveMinutes).per_minute, Some(1.0));
        assert_eq!(
            at(T0 + 900_000, Window::FifteenMinutes).per_minute,
            Some(5.0 / 15.0)
        );
        // and once it has left the minute, none in the last minute.
        assert_eq!(at(T0 + 63_999, Window::OneMinute).per_minute, Some(5.0));
        assert_eq!(at(T0 + 64_000, Window::OneMinute).per_minute, Some(0.0));
    }

    #[test]
    fn a_single_message_reads_as_one() {
        // Read 19.8/min before.
        let mut rate = RateCounter::new();
        rate.record(T0 + 500);
        for w in Window::ALL {
            let c = window_count(Some(&rate), w, T0 + 31_000, Some(T0));
            assert_eq!((c.count, c.per_minute), (1.0, None), "{w:?}");
        }
        let minute = window_count(Some(&rate), Window::OneMinute, T0 + 60_500, Some(T0));
        assert_eq!(minute.per_minute, Some(1.0));
    }

    #[test]
    fn a_watcher_started_mid_burst_counts_what_it_saw_and_no_more() {
        // A burst of 100 over 2 s around the subscription, which falls mid-bucket: the watcher
        // sees the 50 after it.
        let since = T0 + 700;
        let burst: Vec<u64> = (0..100).map(|i| since - 1_000 + i * 20).collect();
        let seen: Vec<u64> = burst.into_iter().filter(|&a| a >= since).collect();
        assert_eq!(seen.len(), 50);
        let rate = replay(&seen, &reads(since, 16 * 60_000, 503), since, |_, _| {});
        // The first bucket is covered from the subscription on: the minute is covered only
        // from the edge a minute after the first edge past it.
        let c = window_count(Some(&rate), Window::OneMinute, T0 + 60_100, Some(since));
        assert_eq!((c.count, c.covered_s, c.per_minute), (50.0, 59.3, None));
        let c = window_count(Some(&rate), Window::OneMinute, T0 + 62_000, Some(since));
        assert_eq!((c.count, c.per_minute), (0.0, Some(0.0)));
        let c = window_count(Some(&rate), Window::FiveMinutes, T0 + 330_000, Some(since));
        assert_eq!((c.count, c.per_minute), (0.0, Some(0.0)));
    }

    #[test]
    fn nothing_is_covered_before_counting_starts() {
        let c = window_count(None, Window::OneMinute, T0, None);
        assert_eq!(c, WindowCount::EMPTY);
        // A clock behind the start of counting covers nothing either.
        let c = window_count(None, Window::OneMinute, T0, Some(T0 + 5_000));
        assert_eq!((c.count, c.covered_s, c.per_minute), (0.0, 0.0, None));
    }

    #[test]
    fn a_clock_stepping_back_counts_each_message_once() {
        let mut rate = RateCounter::new();
        rate.record(T0 + 10_000);
        rate.record(T0 + 1_000); // counted in the newest bucket, T0 + 10 s
        assert_eq!(rate.count(Window::OneMinute, T0 + 12_000), 2);
        assert_eq!(rate.count(Window::FifteenMinutes, T0 + 30_000), 2);
        // Read at a time behind what was counted: what is ahead of it is not in the window yet.
        assert_eq!(rate.count(Window::OneMinute, T0 + 5_000), 0);
        assert_eq!(rate.count(Window::OneMinute, T0 + 71_999), 2);
        assert_eq!(rate.count(Window::OneMinute, T0 + 72_000), 0);
    }

    #[test]
    fn counts_fall_to_zero_after_the_publisher_stops_and_restart_from_clean_buckets() {
        let arrivals: Vec<u64> = (0..600).map(|i| T0 + i * 1_000).collect();
        let mut rate = replay(&arrivals, &reads(T0, 40 * 60_000, 2_311), T0, |_, _| {});
        let much_later = T0 + 40 * 60_000;
        for w in Window::ALL {
            assert_eq!(rate.count(w, much_later), 0, "{w:?}");
        }
        rate.record(much_later);
        assert_eq!(rate.count(Window::FifteenMinutes, much_later + 30_000), 1);
        rate.clear();
        assert_eq!(rate.count(Window::FifteenMinutes, much_later + 30_000), 0);
    }
}

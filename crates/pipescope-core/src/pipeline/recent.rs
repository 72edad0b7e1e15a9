//! What a part did over the last minute, for its progress line: a count over whole seconds of
//! real time, and until the part has run a minute, the count since it started with the span it
//! covers — never a rate scaled up from the first seconds of a run.

use std::collections::VecDeque;

use crate::EpochMillis;
use crate::windows::{Window, WindowCount, covered_ms};

/// Events counted per second of wall time, the last minute of them.
#[derive(Debug, Clone)]
pub struct RecentCount {
    started_ms: EpochMillis,
    /// (second since the epoch, events in it), oldest first.
    seconds: VecDeque<(u64, u64)>,
}

impl RecentCount {
    /// Counting from `started_ms`: nothing before it is covered.
    pub fn new(started_ms: EpochMillis) -> Self {
        Self {
            started_ms,
            seconds: VecDeque::new(),
        }
    }

    /// Counts `n` events at `now_ms`.
    pub fn add(&mut self, now_ms: EpochMillis, n: u64) {
        let second = now_ms / 1000;
        match self.seconds.back_mut() {
            Some((s, count)) if *s >= second => *count += n,
            _ => self.seconds.push_back((second, n)),
        }
        let oldest_needed = second.saturating_sub(Window::OneMinute.millis() / 1000);
        while self
            .seconds
            .front()
            .is_some_and(|(s, _)| *s < oldest_needed)
        {
            self.seconds.pop_front();
        }
    }

    /// The events of the minute that ends at the last whole second before `now_ms`; before the
    /// part has run that minute, the events since it started, over the span that covers.
    pub fn last_minute(&self, now_ms: EpochMillis) -> WindowCount {
        let end = now_ms / 1000;
        let start = end.saturating_sub(Window::OneMinute.millis() / 1000);
        let count: u64 = self
            .seconds
            .iter()
            .filter(|(s, _)| (start..end).contains(s))
            .map(|(_, n)| n)
            .sum();
        let covered = covered_ms(Window::OneMinute, end * 1000, self.started_ms);
        WindowCount::new(Window::OneMinute, count as f64, covered)
    }
}

/// A count over a minute in words: "600 in the last minute", or "120 in the 12 s since start".
pub fn describe(count: WindowCount) -> String {
    if count.per_minute.is_some() {
        format!("{:.0} in the last minute", count.count)
    } else {
        format!(
            "{:.0} in the {:.0} s since start",
            count.count, count.covered_s
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_that_ran_ten_seconds_gives_its_count_not_six_times_it() {
        let mut recent = RecentCount::new(100_000);
        for s in 0..10 {
            recent.add(100_000 + s * 1000 + 500, 10);
        }
        let c = recent.last_minute(110_200);
        assert_eq!((c.count, c.covered_s, c.per_minute), (100.0, 10.0, None));
        assert_eq!(describe(c), "100 in the 10 s since start");
    }

    #[test]
    fn once_covered_the_count_is_over_the_last_whole_minute() {
        let mut recent = RecentCount::new(0);
        // 10 a second for 90 s, then 1 a second for 30 s.
        for s in 0..90 {
            recent.add(s * 1000, 10);
        }
        for s in 90..120 {
            recent.add(s * 1000 + 999, 1);
        }
        // At 120.5 s the minute is [60 s, 120 s): 30 s at 10/s and 30 s at 1/s.
        let c = recent.last_minute(120_500);
        assert_eq!(c, WindowCount::new(Window::OneMinute, 330.0, 60_000));
        assert_eq!(c.per_minute, Some(330.0));
        assert_eq!(describe(c), "330 in the last minute");
        // The second still running is not in it.
        recent.add(120_600, 1_000);
        assert_eq!(recent.last_minute(120_700).count, 330.0);
        assert_eq!(recent.last_minute(121_000).count, 1_320.0);
    }

    #[test]
    fn a_quiet_minute_counts_zero_and_old_seconds_are_forgotten() {
        let mut recent = RecentCount::new(0);
        recent.add(1_000, 5);
        recent.add(200_000, 1);
        assert_eq!(recent.seconds.len(), 1);
        assert_eq!(recent.last_minute(300_000).count, 0.0);
        assert_eq!(recent.last_minute(300_000).per_minute, Some(0.0));
    }
}

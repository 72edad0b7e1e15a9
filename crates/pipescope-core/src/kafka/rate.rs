//! Produce rates from end-offset deltas, and the (time, end offset) history of a partition.
//!
//! A rate is always taken over the real time between two good readings of the same partition:
//! a missed or failed scrape simply makes the interval longer. A log end (or log start) that
//! goes backwards means the partition is not the one we knew any more (topic deleted and
//! re-created, offsets reset, unclean truncation): that interval has no rate, and counting
//! starts again from the new offsets.

use std::collections::VecDeque;

use serde::Serialize;

use crate::clock::EpochMillis;

/// One good reading of a partition's offsets, at the time of its scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OffsetReading {
    pub time_ms: EpochMillis,
    pub earliest: i64,
    /// The log end offset.
    pub latest: i64,
}

/// What two successive good readings of one partition say about its produce rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RateOutcome {
    /// Records appended per second over `interval_ms` (the real time between the readings).
    Measured {
        messages_per_second: f64,
        interval_ms: u64,
    },
    /// The log end or the log start went backwards: the topic was deleted and re-created, or its
    /// offsets were reset. There is no rate over this interval; the next one counts from here.
    Reset,
    /// The readings carry the same time (or time went backwards): no rate can be taken.
    NoElapsedTime,
}

impl RateOutcome {
    pub fn messages_per_second(&self) -> Option<f64> {
        match self {
            RateOutcome::Measured {
                messages_per_second,
                ..
            } => Some(*messages_per_second),
            RateOutcome::Reset | RateOutcome::NoElapsedTime => None,
        }
    }
}

/// The produce rate between two readings of the same partition.
///
/// The log start only moves forward (retention, compaction, DeleteRecords), so it going back is
/// as sure a sign of a re-created topic as the log end going back; a compacted topic's log start
/// jumping forward changes nothing, since the rate only counts the log end.
pub fn rate_between(previous: &OffsetReading, current: &OffsetReading) -> RateOutcome {
    if current.latest < previous.latest || current.earliest < previous.earliest {
        return RateOutcome::Reset;
    }
    if current.time_ms <= previous.time_ms {
        return RateOutcome::NoElapsedTime;
    }
    let interval_ms = current.time_ms - previous.time_ms;
    let appended = (current.latest - previous.latest) as f64;
    RateOutcome::Measured {
        messages_per_second: appended * 1000.0 / interval_ms as f64,
        interval_ms,
    }
}

/// One point of a partition's end-offset history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EndOffsetPoint {
    pub time_ms: EpochMillis,
    pub latest: i64,
}

/// A bounded history of a partition's log end offset over time, used to answer "when was the
/// log end at offset X?" (the estimated lag in seconds when no record timestamp is known).
///
/// While the log end does not move only the first and the last reading of that flat run are
/// kept, so an idle partition costs two points however long it stays idle. When full, every
/// second point of the older half is dropped: recent readings stay dense, older ones get
/// sparser, and the history still reaches back to its first reading. The log end is
/// assumed never to go back: call [`EndOffsetHistory::clear`] on a reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndOffsetHistory {
    points: VecDeque<EndOffsetPoint>,
    capacity: usize,
}

impl EndOffsetHistory {
    /// An empty history keeping at most `capacity` points (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            points: VecDeque::new(),
            capacity: capacity.max(2),
        }
    }

    /// Rebuilds a history from stored points (oldest first), as if each had been recorded.
    pub fn from_points(capacity: usize, points: impl IntoIterator<Item = EndOffsetPoint>) -> Self {
        let mut history = Self::new(capacity);
        for point in points {
            history.record(point.time_ms, point.latest);
        }
        history
    }

    /// Adds a reading. Readings older than the newest one, or with a log end lower than the
    /// newest one, are ignored (a reset must clear the history first).
    pub fn record(&mut self, time_ms: EpochMillis, latest: i64) {
        let len = self.points.len();
        if let Some(last) = self.points.back() {
            if time_ms <= last.time_ms || latest < last.latest {
                return;
            }
            // The middle of a flat run carries no information: move the run's end instead.
            if latest == last.latest && len >= 2 && self.points[len - 2].latest == latest {
                self.points[len - 1].time_ms = time_ms;
                return;
            }
        }
        self.points.push_back(EndOffsetPoint { time_ms, latest });
        if self.points.len() > self.capacity {
            // Thin the older half (every second point) rather than forget the oldest: the
            // history keeps reaching back, at a coarser step the further back it goes.
            let older_half = self.points.len() / 2;
            let mut index = 0;
            self.points.retain(|_| {
                let keep = index >= older_half || index % 2 == 0;
                index += 1;
                keep
            });
        }
    }

    pub fn clear(&mut self) {
        self.points.clear();
    }

    pub fn points(&self) -> impl ExactSizeIterator<Item = &EndOffsetPoint> {
        self.points.iter()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The last time the log end was at `offset`: the time up to which a consumer whose committed
    /// offset is `offset` has read everything. Interpolated linearly between the last reading at
    /// or below `offset` and the next one above it; the newest reading's time when `offset` is at
    /// or past the newest log end. `None` when the history does not reach back that far.
    pub fn time_at_offset(&self, offset: i64) -> Option<EpochMillis> {
        // Log ends are non-decreasing, so the readings at or below `offset` form a prefix.
        let at_or_below = self.points.partition_point(|p| p.latest <= offset);
        if at_or_below == 0 {
            return None;
        }
        let before = self.points[at_or_below - 1];
        let Some(after) = self.points.get(at_or_below) else {
            return Some(before.time_ms);
        };
        let fraction = (offset - before.latest) as f64 / (after.latest - before.latest) as f64;
        let span = (after.time_ms - before.time_ms) as f64;
        Some(before.time_ms + (fraction * span).round() as EpochMillis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(time_ms: u64, earliest: i64, latest: i64) -> OffsetReading {
        OffsetReading {
            time_ms,
            earliest,
            latest,
        }
    }

    #[test]
    fn rate_is_taken_over_the_real_interval() {
        let outcome = rate_between(&reading(10_000, 0, 100), &reading(20_000, 0, 600));
        assert_eq!(
            outcome,
            RateOutcome::Measured {
                messages_per_second: 50.0,
                interval_ms: 10_000
            }
        );
    }

    #[test]
    fn a_missed_scrape_makes_a_longer_interval_not_a_higher_rate() {
        // Scrapes every 10 s; the one at 20 s failed, so 30 s separate the two good readings.
        let outcome = rate_between(&reading(10_000, 0, 100), &reading(40_000, 0, 1_600));
        assert_eq!(outcome.messages_per_second(), Some(50.0));
    }

    #[test]
    fn idle_partition_has_rate_zero() {
        let outcome = rate_between(&reading(0, 5, 100), &reading(10_000, 5, 100));
        assert_eq!(outcome.messages_per_second(), Some(0.0));
    }

    #[test]
    fn log_end_going_back_is_a_reset_not_a_negative_rate() {
        // Topic deleted and re-created: offsets start again from 0.
        let outcome = rate_between(&reading(0, 0, 5_000), &reading(10_000, 0, 40));
        assert_eq!(outcome, RateOutcome::Reset);
        assert_eq!(outcome.messages_per_second(), None);
    }

    #[test]
    fn log_start_going_back_is_a_reset_even_when_the_end_grew() {
        // Re-created and refilled past the old end within one interval: only the start tells.
        let outcome = rate_between(&reading(0, 4_000, 5_000), &reading(10_000, 0, 6_000));
        assert_eq!(outcome, RateOutcome::Reset);
    }

    #[test]
    fn compaction_moving_the_log_start_forward_keeps_the_rate() {
        let outcome = rate_between(&reading(0, 0, 1_000), &reading(10_000, 900, 1_200));
        assert_eq!(outcome.messages_per_second(), Some(20.0));
    }

    #[test]
    fn same_time_or_time_going_back_gives_no_rate() {
        assert_eq!(
            rate_between(&reading(5_000, 0, 1), &reading(5_000, 0, 9)),
            RateOutcome::NoElapsedTime
        );
        assert_eq!(
            rate_between(&reading(5_000, 0, 1), &reading(4_000, 0, 9)),
            RateOutcome::NoElapsedTime
        );
    }

    fn history(points: &[(u64, i64)]) -> EndOffsetHistory {
        EndOffsetHistory::from_points(
            100,
            points
                .iter()
                .map(|&(time_ms, latest)| EndOffsetPoint { time_ms, latest }),
        )
    }

    #[test]
    fn time_at_offset_interpolates_between_readings() {
        let h = history(&[(0, 100), (10_000, 200), (20_000, 400)]);
        assert_eq!(h.time_at_offset(150), Some(5_000));
        assert_eq!(h.time_at_offset(300), Some(15_000));
        assert_eq!(h.time_at_offset(200), Some(10_000));
    }

    #[test]
    fn time_at_offset_takes_the_end_of_a_flat_run() {
        // The log end sat at 100 from 0 s to 20 s: a consumer at 100 had everything until 20 s.
        let h = history(&[(0, 100), (10_000, 100), (20_000, 100), (30_000, 200)]);
        assert_eq!(h.len(), 3, "the middle of the flat run is not kept");
        assert_eq!(h.time_at_offset(100), Some(20_000));
        assert_eq!(h.time_at_offset(150), Some(25_000));
    }

    #[test]
    fn time_at_offset_past_the_newest_end_is_the_newest_time() {
        let h = history(&[(0, 100), (10_000, 200)]);
        assert_eq!(h.time_at_offset(200), Some(10_000));
        assert_eq!(h.time_at_offset(250), Some(10_000));
    }

    #[test]
    fn time_at_offset_before_the_history_is_unknown() {
        let h = history(&[(0, 100), (10_000, 200)]);
        assert_eq!(h.time_at_offset(99), None);
        assert_eq!(EndOffsetHistory::new(10).time_at_offset(0), None);
    }

    #[test]
    fn history_is_bounded_by_thinning_its_older_half() {
        let mut h = EndOffsetHistory::new(4);
        for i in 0..5 {
            h.record(i * 1_000, i as i64 * 10);
        }
        // Full at 5 > 4: of the older half [0, 10] only 0 stays.
        assert_eq!(
            h.points().map(|p| p.latest).collect::<Vec<_>>(),
            [0, 20, 30, 40]
        );
        for i in 5..100 {
            h.record(i * 1_000, i as i64 * 10);
        }
        assert!(h.len() <= 4);
        assert_eq!(h.points().next().map(|p| p.latest), Some(0));
        assert_eq!(h.points().last().map(|p| p.latest), Some(990));
        // Still answers for old offsets, at a coarser step: exact here as the rate is steady.
        assert_eq!(h.time_at_offset(250), Some(25_000));
    }

    #[test]
    fn history_ignores_out_of_order_readings() {
        let mut h = history(&[(0, 100), (10_000, 200)]);
        h.record(5_000, 1_000); // older than the newest reading
        h.record(20_000, 50); // log end below the newest one
        assert_eq!(h.len(), 2);
        assert_eq!(h.time_at_offset(200), Some(10_000));
    }
}

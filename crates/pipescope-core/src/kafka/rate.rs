//! Produce rates from end-offset deltas, and the (time, end offset) history of a partition.
//!
//! A rate is always taken over the real time between two good readings of the same partition:
//! a missed or failed scrape simply makes the interval longer. Offsets going backwards mean the
//! partition's log was replaced (topic deleted and re-created, offsets reset, unclean
//! truncation): no rate over that interval — never a negative one — and counting starts again
//! from the new offsets. [`RateTracker`] tells a replaced log from a new leader briefly
//! answering a lower end offset.

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

/// What two readings of one partition say about its produce rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RateOutcome {
    /// Records appended per second over `interval_ms` (the real time between the readings).
    Measured {
        messages_per_second: f64,
        interval_ms: u64,
    },
    /// The log start went backwards: the log was replaced (topic re-created, offsets reset).
    Reset,
    /// The log end went backwards but the log start did not: a replaced log, or a new leader
    /// answering a lower end offset for a moment. No rate either way.
    EndWentBack,
    /// The second reading is not newer than the first: no rate can be taken.
    NoElapsedTime,
}

impl RateOutcome {
    pub fn messages_per_second(&self) -> Option<f64> {
        match self {
            RateOutcome::Measured {
                messages_per_second,
                ..
            } => Some(*messages_per_second),
            RateOutcome::Reset | RateOutcome::EndWentBack | RateOutcome::NoElapsedTime => None,
        }
    }
}

/// The produce rate between two readings of the same partition.
///
/// The log start only moves forward (retention, compaction, DeleteRecords), so it going back is
/// a sure sign of a replaced log; a compacted topic's log start jumping forward changes nothing,
/// since the rate only counts the log end.
pub fn rate_between(previous: &OffsetReading, current: &OffsetReading) -> RateOutcome {
    if current.time_ms <= previous.time_ms {
        return RateOutcome::NoElapsedTime;
    }
    if current.earliest < previous.earliest {
        return RateOutcome::Reset;
    }
    if current.latest < previous.latest {
        return RateOutcome::EndWentBack;
    }
    let interval_ms = current.time_ms - previous.time_ms;
    let appended = (current.latest - previous.latest) as f64;
    RateOutcome::Measured {
        messages_per_second: appended * 1000.0 / interval_ms as f64,
        interval_ms,
    }
}

/// What [`RateTracker::observe`] makes of one reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RateStep {
    /// The first reading: a rate needs two.
    FirstReading,
    /// Measured since the previous good reading (over a longer interval after a missed scrape or
    /// after a lower end offset that did not persist).
    Measured {
        messages_per_second: f64,
        interval_ms: u64,
    },
    /// The log end is below the previous reading's while the log start is not: held for one
    /// scrape, no rate.
    EndWentBack,
    /// The log was replaced. `first_of_new_log` is the held reading when the reset was confirmed
    /// by a second lower reading, with the rate since it (counting from the new start).
    Reset {
        first_of_new_log: Option<OffsetReading>,
        messages_per_second: Option<f64>,
    },
    /// Not newer than the previous reading: ignored.
    NoElapsedTime,
}

impl RateStep {
    pub fn messages_per_second(&self) -> Option<f64> {
        match self {
            RateStep::Measured {
                messages_per_second,
                ..
            } => Some(*messages_per_second),
            RateStep::Reset {
                messages_per_second,
                ..
            } => *messages_per_second,
            RateStep::FirstReading | RateStep::EndWentBack | RateStep::NoElapsedTime => None,
        }
    }
}

/// Follows the readings of one partition and gives the rate for each.
///
/// The rule for offsets going back: the log start going back is a reset at once. The log end
/// going back alone is held for one scrape: if the next reading is back at or above the last
/// good one, it was a leader answering a lower end offset for a moment, and the rate is taken
/// from the last good reading over the whole interval; if the next reading is still below it,
/// the log was replaced (a topic re-created with no retention yet has log start 0 both times)
/// and the rate counts from the held reading, the new log's first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateTracker {
    last_good: Option<OffsetReading>,
    held: Option<OffsetReading>,
}

impl RateTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The newest reading the rates count from.
    pub fn last_good(&self) -> Option<OffsetReading> {
        self.last_good
    }

    pub fn observe(&mut self, current: OffsetReading) -> RateStep {
        let Some(last_good) = self.last_good else {
            self.last_good = Some(current);
            return RateStep::FirstReading;
        };
        if self
            .held
            .is_some_and(|held| current.time_ms <= held.time_ms)
        {
            return RateStep::NoElapsedTime;
        }
        match rate_between(&last_good, &current) {
            RateOutcome::NoElapsedTime => RateStep::NoElapsedTime,
            RateOutcome::Measured {
                messages_per_second,
                interval_ms,
            } => {
                self.held = None;
                self.last_good = Some(current);
                RateStep::Measured {
                    messages_per_second,
                    interval_ms,
                }
            }
            RateOutcome::Reset => {
                self.held = None;
                self.last_good = Some(current);
                RateStep::Reset {
                    first_of_new_log: None,
                    messages_per_second: None,
                }
            }
            RateOutcome::EndWentBack => match self.held.take() {
                None => {
                    self.held = Some(current);
                    RateStep::EndWentBack
                }
                Some(held) => {
                    self.last_good = Some(current);
                    let since_held = rate_between(&held, &current);
                    RateStep::Reset {
                        first_of_new_log: Some(held),
                        messages_per_second: since_held.messages_per_second(),
                    }
                }
            },
        }
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
    fn log_end_going_back_gives_no_rate_never_a_negative_one() {
        let outcome = rate_between(&reading(0, 0, 5_000), &reading(10_000, 0, 40));
        assert_eq!(outcome, RateOutcome::EndWentBack);
        assert_eq!(outcome.messages_per_second(), None);
    }

    #[test]
    fn log_start_going_back_is_a_reset_even_when_the_end_grew() {
        // Re-created and refilled past the old end within one interval: only the start tells.
        let outcome = rate_between(&reading(0, 4_000, 5_000), &reading(10_000, 0, 6_000));
        assert_eq!(outcome, RateOutcome::Reset);
    }

    #[test]
    fn tracker_confirms_a_recreated_topic_and_counts_from_the_new_start() {
        let mut t = RateTracker::new();
        assert_eq!(t.observe(reading(0, 0, 4_000)), RateStep::FirstReading);
        assert_eq!(
            t.observe(reading(10_000, 0, 5_000)).messages_per_second(),
            Some(100.0)
        );
        // Deleted and re-created (log start 0 before and after): held one scrape.
        assert_eq!(t.observe(reading(20_000, 0, 40)), RateStep::EndWentBack);
        assert_eq!(
            t.observe(reading(30_000, 0, 240)),
            RateStep::Reset {
                first_of_new_log: Some(reading(20_000, 0, 40)),
                messages_per_second: Some(20.0)
            }
        );
        assert_eq!(
            t.observe(reading(40_000, 0, 340)).messages_per_second(),
            Some(10.0)
        );
    }

    #[test]
    fn tracker_ignores_a_lower_end_offset_that_does_not_persist() {
        // A new leader answered a lower end offset once (broker restart).
        let mut t = RateTracker::new();
        t.observe(reading(0, 0, 1_000));
        assert_eq!(t.observe(reading(10_000, 0, 900)), RateStep::EndWentBack);
        let step = t.observe(reading(20_000, 0, 1_400));
        assert_eq!(
            step,
            RateStep::Measured {
                messages_per_second: 20.0,
                interval_ms: 20_000
            }
        );
    }

    #[test]
    fn tracker_resets_at_once_when_the_log_start_goes_back() {
        let mut t = RateTracker::new();
        t.observe(reading(0, 3_000, 4_000));
        assert_eq!(
            t.observe(reading(10_000, 0, 10)),
            RateStep::Reset {
                first_of_new_log: None,
                messages_per_second: None
            }
        );
        assert_eq!(
            t.observe(reading(20_000, 0, 110)).messages_per_second(),
            Some(10.0)
        );
    }

    #[test]
    fn tracker_ignores_readings_not_newer_than_the_last() {
        let mut t = RateTracker::new();
        t.observe(reading(10_000, 0, 100));
        assert_eq!(t.observe(reading(10_000, 0, 200)), RateStep::NoElapsedTime);
        assert_eq!(t.observe(reading(20_000, 0, 50)), RateStep::EndWentBack);
        assert_eq!(t.observe(reading(20_000, 0, 60)), RateStep::NoElapsedTime);
        assert_eq!(t.last_good(), Some(reading(10_000, 0, 100)));
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

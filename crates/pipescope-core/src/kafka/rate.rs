//! Produce rates and counts over time windows from end-offset deltas, and the (time, end offset)
//! history of a partition.
//!
//! Two kinds of figure come from a partition's log end offsets `L(t)`:
//! - the instantaneous rate ([`RateTracker`]): `ΔL / Δt` over the last scrape interval, for the
//!   live chart only — with bursty producers it jumps between scrapes;
//! - the counts over the last 1, 5 and 15 minutes ([`EndOffsetHistory::count`]), "as of the
//!   last scrape": over `[t_last − W, t_last]`, where `t_last` is the newest good reading's time,
//!   the count is `L(t_last) − L(t_last − W)`, with `L(t_last − W)` interpolated linearly between
//!   the two readings around it (exact when a reading falls on the edge, as it does when the
//!   scrape interval divides 60 s). The window is covered once a reading at or before
//!   `t_last − W` exists; until then the count is taken from the first reading (`covered_s` says
//!   over how long) and there is no per-minute figure: nothing is scaled up.
//!
//! The same [`EndOffsetHistory`] serves lag in seconds ("when was the log end at offset X?"),
//! which wants readings reaching far back, thinned by count, while the windows want every reading
//! of the last 15 minutes and nothing older. Each reading is stored once, marked when only the
//! windows still need it, as varint differences from the one before: a busy partition's full
//! history and windows take about 0.7 KB instead of 4 KB.
//!
//! A rate is always taken over the real time between two good readings of the same partition:
//! a missed or failed scrape simply makes the interval longer. Offsets going backwards mean the
//! partition's log was replaced (topic deleted and re-created, offsets reset, unclean
//! truncation): no rate over that interval — never a negative one — and counting starts again
//! from the new offsets. [`RateTracker`] tells a replaced log from a new leader briefly
//! answering a lower end offset.

use serde::Serialize;

use crate::clock::EpochMillis;
use crate::kafka::packed;
use crate::windows::{Window, WindowCount, WindowCounts};

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateTracker {
    last_good: Option<OffsetReading>,
    /// A lower end offset waiting for the next scrape: rarely set, and every partition has a
    /// tracker, so boxed.
    held: Option<Box<OffsetReading>>,
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
            .as_ref()
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
                    self.held = Some(Box::new(current));
                    RateStep::EndWentBack
                }
                Some(held) => {
                    self.last_good = Some(current);
                    let since_held = rate_between(&held, &current);
                    RateStep::Reset {
                        first_of_new_log: Some(*held),
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

/// A partition's log end offset over time: one store of readings that answers both what the
/// analyzer asks of it.
///
/// - **When was the log end at offset X?** ([`EndOffsetHistory::time_at_offset`], and
///   [`crate::kafka::lag::end_passed`]: the estimated lag in seconds when no record timestamp is
///   known.) The *history points* are bounded by count: when there are more than `capacity`,
///   every second one of the older half is dropped, so recent readings stay dense, older ones
///   get sparser, and the history still reaches back to its first reading.
/// - **How many records over the last 1, 5 and 15 minutes?** ([`EndOffsetHistory::count`], see
///   the module doc for the formula.) The *window points* are every reading of the last 15
///   minutes and the last one at or before that span's start, bounded by time: a busy partition
///   scraped every `I` seconds needs about `900 / I + 2` of them (92 at the default 10 s).
///
/// The two sets overlap almost entirely (the newest readings are in both), so each reading is
/// stored once, with a mark when only the windows still need it (a history point thinned away
/// inside the last 15 minutes). Such points are dropped once they are all older than the
/// windows' first point, or at the next thinning; until then they change no answer. Both sets keep only the
/// first and the last reading of a flat run (the log end not moving), whose interpolation is
/// exact, so an idle partition costs two points however long it stays idle.
///
/// Readings are stored as differences from the one before (varints, see `packed`): 4 to 6
/// bytes each instead of 16, exactly. Reading them back is a walk from the oldest, which every
/// question does anyway (a few hundred points at most).
///
/// Readings not newer than the newest are ignored. A reading with a lower log end than the
/// newest starts everything again from it: the log was replaced, and counting or estimating
/// across the two logs would be wrong (the analyzer leaves out the lower readings
/// [`RateTracker`] holds until they are confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndOffsetHistory {
    /// The oldest stored point (always a history point: thinning keeps the first).
    first: EndOffsetPoint,
    /// The newest stored point (always a history point).
    last: EndOffsetPoint,
    /// Where the newest point's entry starts in `deltas`, when there are two points or more.
    last_entry: u32,
    /// Points stored, history points and window-only ones.
    stored: u32,
    /// History points among them: what `capacity` bounds.
    history_len: u32,
    capacity: u32,
    /// When every window-only point is older than the windows' first point (and is dropped);
    /// `EpochMillis::MAX` when there is none. Otherwise they are dropped at the next thinning.
    stale_at_ms: EpochMillis,
    /// Each stored point after the first, as varints: `(time − previous time) × 2 + 1 if only
    /// the windows need it`, then `log end − previous log end` (never negative).
    deltas: Vec<u8>,
}

/// `first` and `last` of an empty history.
const NO_POINT: EndOffsetPoint = EndOffsetPoint {
    time_ms: 0,
    latest: 0,
};

/// A stored point and whether only the window counts still need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredPoint {
    point: EndOffsetPoint,
    window_only: bool,
}

/// The stored points, oldest first, decoded on the way.
struct StoredPoints<'a> {
    next: Option<EndOffsetPoint>,
    deltas: &'a [u8],
    at: usize,
    window_only: bool,
}

impl Iterator for StoredPoints<'_> {
    type Item = StoredPoint;

    fn next(&mut self) -> Option<StoredPoint> {
        let point = self.next?;
        let item = StoredPoint {
            point,
            window_only: self.window_only,
        };
        self.next = (self.at < self.deltas.len()).then(|| {
            let time = packed::get_u64(self.deltas, &mut self.at);
            let latest = packed::get_u64(self.deltas, &mut self.at);
            self.window_only = time & 1 == 1;
            EndOffsetPoint {
                time_ms: point.time_ms + (time >> 1),
                latest: point.latest + latest as i64,
            }
        });
        Some(item)
    }
}

impl EndOffsetHistory {
    /// An empty history keeping at most `capacity` history points (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            first: NO_POINT,
            last: NO_POINT,
            last_entry: 0,
            stored: 0,
            history_len: 0,
            capacity: capacity.clamp(2, u32::MAX as usize) as u32,
            stale_at_ms: EpochMillis::MAX,
            deltas: Vec::new(),
        }
    }

    /// Rebuilds a history from stored points (oldest first): after a restart, the windows are
    /// covered at once when the points reach back 15 minutes. The store keeps every scrape's end
    /// offset, blips included, so a lower point is taken as a new log only when the next one is
    /// lower too (the rule of [`RateTracker`]); a lone lower point is left out.
    pub fn from_points(capacity: usize, points: impl IntoIterator<Item = EndOffsetPoint>) -> Self {
        let mut history = Self::new(capacity);
        let mut held: Option<EndOffsetPoint> = None;
        for point in points {
            let lower = history.newest().is_some_and(|n| point.latest < n.latest);
            if !lower {
                held = None;
            } else if let Some(first_of_new_log) = held.take() {
                history.record(first_of_new_log.time_ms, first_of_new_log.latest);
            } else {
                held = Some(point);
                continue;
            }
            history.record(point.time_ms, point.latest);
        }
        history
    }

    /// Adds a good reading (see the type's doc for what is ignored and what starts again).
    pub fn record(&mut self, time_ms: EpochMillis, latest: i64) {
        if let Some(last) = self.newest() {
            if time_ms <= last.time_ms {
                return;
            }
            if latest < last.latest {
                self.clear();
            } else if latest == last.latest
                && self.stored >= 2
                && self.before_last().latest == latest
            {
                // The middle of a flat run carries no information: move the run's end instead.
                self.move_last(time_ms);
                return;
            }
        }
        self.push(EndOffsetPoint { time_ms, latest });
        if self.history_len > self.capacity {
            self.rebuild(true);
        } else if time_ms >= self.stale_at_ms {
            self.rebuild(false);
        }
    }

    pub fn clear(&mut self) {
        self.deltas.clear();
        self.first = NO_POINT;
        self.last = NO_POINT;
        self.stale_at_ms = EpochMillis::MAX;
        self.stored = 0;
        self.history_len = 0;
        self.last_entry = 0;
    }

    /// The history points, oldest first.
    pub fn points(&self) -> impl Iterator<Item = EndOffsetPoint> + '_ {
        self.stored_points()
            .filter(|p| !p.window_only)
            .map(|p| p.point)
    }

    /// History points.
    pub fn len(&self) -> usize {
        self.history_len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.stored == 0
    }

    /// Points the window counts are taken over: the last 15 minutes' and the one before.
    pub fn window_len(&self) -> usize {
        let window_first = self.window_first().time_ms;
        self.stored_points()
            .filter(|p| p.point.time_ms >= window_first)
            .count()
    }

    /// Points held, history and window ones together (what the memory is).
    pub fn stored_len(&self) -> usize {
        self.stored as usize
    }

    /// The newest reading: the time the counts are "as of".
    pub fn newest(&self) -> Option<EndOffsetPoint> {
        (self.stored > 0).then_some(self.last)
    }

    /// The last time the log end was at `offset`: the time up to which a consumer whose committed
    /// offset is `offset` has read everything. Interpolated linearly between the last reading at
    /// or below `offset` and the next one above it; the newest reading's time when `offset` is at
    /// or past the newest log end. `None` when the history does not reach back that far.
    pub fn time_at_offset(&self, offset: i64) -> Option<EpochMillis> {
        // Log ends are non-decreasing, so the readings at or below `offset` come first.
        let mut before = None;
        for after in self.points() {
            if after.latest > offset {
                let before: EndOffsetPoint = before?;
                let fraction =
                    (offset - before.latest) as f64 / (after.latest - before.latest) as f64;
                let span = (after.time_ms - before.time_ms) as f64;
                return Some(before.time_ms + (fraction * span).round() as EpochMillis);
            }
            before = Some(after);
        }
        before.map(|b| b.time_ms)
    }

    /// Records appended over `window` ending at the newest reading; over the span since the
    /// windows' first reading (with no per-minute figure) while that is shorter than the window.
    pub fn count(&self, window: Window) -> WindowCount {
        self.counts().get(window)
    }

    /// [`EndOffsetHistory::count`] of the three windows, in one walk over the points.
    pub fn counts(&self) -> WindowCounts {
        let Some(last) = self.newest() else {
            return WindowCounts::from_fn(|_| WindowCount::EMPTY);
        };
        // Per window, its start and the two points around it: the last at or before the start
        // and the first after it.
        let starts = Window::ALL.map(|w| last.time_ms.checked_sub(w.millis()));
        let mut around: [Option<(EndOffsetPoint, EndOffsetPoint)>; 3] = [None; 3];
        let mut previous: Option<EndOffsetPoint> = None;
        for p in self.stored_points() {
            for (start, around) in starts.iter().zip(around.iter_mut()) {
                if let (Some(start), None, Some(before)) = (start, &around, previous)
                    && p.point.time_ms > *start
                    && before.time_ms <= *start
                {
                    *around = Some((before, p.point));
                }
            }
            previous = Some(p.point);
        }
        // The windows' first point: the last at or before the longest window's start.
        let longest = Window::ALL
            .iter()
            .position(|&w| w == Window::LONGEST)
            .expect("one of them");
        let first = around[longest].map_or(self.first, |(before, _)| before);
        WindowCounts::from_fn(|window| {
            let index = Window::ALL
                .iter()
                .position(|&w| w == window)
                .expect("one of them");
            let watched_ms = last.time_ms - first.time_ms;
            match around[index] {
                Some((before, after)) if watched_ms >= window.millis() => {
                    let start = last.time_ms - window.millis();
                    let fraction =
                        (start - before.time_ms) as f64 / (after.time_ms - before.time_ms) as f64;
                    let at_start =
                        before.latest as f64 + (after.latest - before.latest) as f64 * fraction;
                    WindowCount::new(window, last.latest as f64 - at_start, window.millis())
                }
                _ => WindowCount::new(window, (last.latest - first.latest) as f64, watched_ms),
            }
        })
    }

    fn stored_points(&self) -> StoredPoints<'_> {
        StoredPoints {
            next: (self.stored > 0).then_some(self.first),
            deltas: &self.deltas,
            at: 0,
            window_only: false,
        }
    }

    /// The first point the window counts need: the last at or before the longest window's start,
    /// or the oldest when none is. Older window-only points are no longer needed.
    fn window_first(&self) -> EndOffsetPoint {
        let start = self.last.time_ms.saturating_sub(Window::LONGEST.millis());
        let mut first = self.first;
        for p in self.stored_points().skip(1) {
            if p.point.time_ms > start {
                break;
            }
            first = p.point;
        }
        first
    }

    /// The point before the newest (there are two or more).
    fn before_last(&self) -> EndOffsetPoint {
        let mut at = self.last_entry as usize;
        let time = packed::get_u64(&self.deltas, &mut at) >> 1;
        let latest = packed::get_u64(&self.deltas, &mut at) as i64;
        EndOffsetPoint {
            time_ms: self.last.time_ms - time,
            latest: self.last.latest - latest,
        }
    }

    /// Moves the newest point (the end of a flat run, a history point) to `time_ms`.
    fn move_last(&mut self, time_ms: EpochMillis) {
        let before = self.before_last();
        self.deltas.truncate(self.last_entry as usize);
        self.last = before;
        self.stored -= 1;
        self.history_len -= 1;
        self.push(EndOffsetPoint {
            time_ms,
            latest: before.latest,
        });
    }

    /// Appends a history point newer than the newest, with a log end at or above its.
    fn push(&mut self, point: EndOffsetPoint) {
        if self.stored == 0 {
            self.first = point;
        } else {
            packed::reserve(&mut self.deltas, 20);
            self.last_entry = self.deltas.len() as u32;
            put_step(&mut self.deltas, self.last, point, false);
        }
        self.last = point;
        self.stored += 1;
        self.history_len += 1;
    }

    /// Drops the window-only points the windows no longer need, and with `thin` every second
    /// history point of the older half (kept as window-only while the windows need it).
    fn rebuild(&mut self, thin: bool) {
        let older_half = if thin { self.history_len / 2 } else { 0 };
        let window_first = self.window_first().time_ms;
        let mut deltas = Vec::with_capacity(self.deltas.len() + self.deltas.len() / 8);
        let (mut stored, mut history_len, mut history_index) = (0u32, 0u32, 0u32);
        let mut previous: Option<EndOffsetPoint> = None;
        let (mut first, mut last_entry) = (None, 0);
        let (mut after_window_only, mut stale_at_ms) = (false, EpochMillis::MAX);
        for p in self.stored_points() {
            let window_only = if p.window_only {
                true
            } else {
                history_index += 1;
                history_index - 1 < older_half && (history_index - 1) % 2 == 1
            };
            if window_only && p.point.time_ms < window_first {
                continue;
            }
            match previous {
                None => first = Some(p.point),
                Some(previous) => {
                    last_entry = deltas.len() as u32;
                    put_step(&mut deltas, previous, p.point, window_only);
                }
            }
            if after_window_only {
                // The windows stop needing the window-only points before this one once it is
                // at or before their start.
                stale_at_ms = p.point.time_ms.saturating_add(Window::LONGEST.millis());
            }
            after_window_only = window_only;
            previous = Some(p.point);
            stored += 1;
            history_len += u32::from(!window_only);
        }
        self.stale_at_ms = stale_at_ms;
        self.first = first.expect("the first point is kept");
        self.last_entry = last_entry;
        self.deltas = deltas;
        self.stored = stored;
        self.history_len = history_len;
    }
}

/// Appends the entry of `point` after `previous`.
fn put_step(out: &mut Vec<u8>, previous: EndOffsetPoint, point: EndOffsetPoint, window_only: bool) {
    packed::put_u64(
        out,
        ((point.time_ms - previous.time_ms) << 1) | u64::from(window_only),
    );
    packed::put_u64(out, (point.latest - previous.latest) as u64);
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
    fn history_ignores_out_of_order_readings_and_starts_again_on_a_new_log() {
        let mut h = history(&[(0, 100), (10_000, 200)]);
        h.record(5_000, 1_000); // older than the newest reading
        assert_eq!(h.len(), 2);
        assert_eq!(h.time_at_offset(200), Some(10_000));
        h.record(20_000, 50); // log end below the newest one: a new log
        assert_eq!(
            h.points().collect::<Vec<_>>(),
            [EndOffsetPoint {
                time_ms: 20_000,
                latest: 50
            }]
        );
        assert_eq!(h.time_at_offset(200), Some(20_000));
        assert_eq!(h.time_at_offset(49), None);
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    /// The monitor starts long after the producers did: the log has a past it must not count.
    const START: u64 = 10_000_000;

    /// Records' arrival times (ms, sorted): the log end at `t` is how many arrived at or before.
    struct Log(Vec<u64>);

    impl Log {
        fn end_at(&self, t: u64) -> i64 {
            self.0.partition_point(|&a| a <= t) as i64
        }
        /// What a perfect monitor would say: records arriving in `(from, to]`.
        fn arrived(&self, from: u64, to: u64) -> f64 {
            (self.end_at(to) - self.end_at(from)) as f64
        }
    }

    /// `size` records at once, every `every_ms`, at `offset_ms` past each multiple.
    fn bursts(size: usize, every_ms: u64, offset_ms: u64, until: u64) -> Log {
        let times = (0..until / every_ms)
            .map(|k| k * every_ms + offset_ms)
            .flat_map(|t| std::iter::repeat_n(t, size));
        Log(times.collect())
    }

    /// Five records every 10 s (the issue's `machine.out`), 100 records once a minute, and a
    /// steady 10 per second. Bursts land 50 and 120 ms off the 250 ms grid the scrape phases are
    /// on, so a scrape a few ms off its phase never splits one; the steady records land on it.
    fn producers(until: u64) -> [(&'static str, Log); 3] {
        [
            ("5 every 10 s", bursts(5, 10_000, 3_300, until)),
            ("100 once a minute", bursts(100, MINUTE, 17_370, until)),
            ("steady 10/s", bursts(1, 100, 0, until)),
        ]
    }

    use crate::test_rng::Lcg;

    /// How long each scrape run lasts: long enough to cover the 15-minute window.
    const RUN: u64 = 17 * MINUTE;

    /// Scrapes every `interval_ms` at `phase_ms`, each up to `jitter_ms` late or early, for
    /// [`RUN`]; checks every window at every scrape against the true count.
    fn check_scrapes(
        logs: &[(&str, Log)],
        interval_ms: u64,
        phase_ms: u64,
        jitter_ms: u64,
        rng: &mut Lcg,
    ) {
        for (name, log) in logs {
            let mut windows = EndOffsetHistory::new(120);
            let mut first = None;
            let mut t = START + phase_ms;
            while t < START + RUN {
                let jitter = rng.below(2 * jitter_ms + 1);
                let at = t + jitter - jitter_ms;
                let first_ms = *first.get_or_insert(at);
                windows.record(at, log.end_at(at));
                for w in Window::ALL {
                    let c = windows.count(w);
                    let ctx =
                        || format!("{name}, every {interval_ms} ms at {phase_ms}, t {at}, {w:?}");
                    if at - first_ms < w.millis() {
                        assert_eq!(c.count, log.arrived(first_ms, at), "{}", ctx());
                        assert_eq!(c.covered_s, (at - first_ms) as f64 / 1000.0, "{}", ctx());
                        assert_eq!(c.per_minute, None, "{}", ctx());
                        continue;
                    }
                    let truth = log.arrived(at - w.millis(), at);
                    let minutes = w.millis() as f64 / MINUTE as f64;
                    assert_eq!(c.covered_s, w.millis() as f64 / 1000.0, "{}", ctx());
                    let per_minute = c.per_minute.expect("covered");
                    assert!((per_minute - c.count / minutes).abs() < 1e-9, "{}", ctx());
                    if jitter_ms == 0 {
                        assert_eq!(c.count, truth, "{}: a reading is on the edge", ctx());
                    } else {
                        assert!(
                            (c.count - truth).abs() <= 0.02 * truth,
                            "{}: {c:?} vs {truth}",
                            ctx()
                        );
                    }
                }
                t += interval_ms;
            }
            assert!(windows.window_len() <= (15 * MINUTE / interval_ms) as usize + 2);
        }
    }

    #[test]
    fn one_minute_figure_is_the_count_of_the_last_minute_at_every_scrape_phase() {
        let mut rng = Lcg(7);
        let logs = producers(START + RUN + MINUTE);
        for interval_s in [1, 2, 5, 10, 15, 30] {
            for phase_ms in (0..interval_s * 1_000).step_by(250) {
                check_scrapes(&logs, interval_s * 1_000, phase_ms, 0, &mut rng);
                check_scrapes(&logs, interval_s * 1_000, phase_ms, 4, &mut rng);
            }
        }
    }

    #[test]
    fn the_issues_bursty_topic_reads_thirty_per_minute_every_time() {
        // 5 records every 10 s, scraped every 5 s: the interval rate read 60, 0, 60, 0.
        let log = bursts(5, 10_000, 3_300, START + 10 * MINUTE);
        let mut windows = EndOffsetHistory::new(120);
        for k in 0..100 {
            let t = START + k * 5_000;
            windows.record(t, log.end_at(t));
            if k >= 12 {
                assert_eq!(windows.count(Window::OneMinute).per_minute, Some(30.0));
            }
        }
    }

    #[test]
    fn a_monitor_started_mid_burst_reports_no_more_than_it_saw() {
        // 100 records 20 ms apart from 10 s; the monitor's first reading is at 11 s.
        let log = Log((0..100).map(|i| 10_000 + i * 20).collect());
        let mut windows = EndOffsetHistory::new(120);
        windows.record(11_000, log.end_at(11_000));
        assert_eq!(windows.count(Window::OneMinute), WindowCount::EMPTY);
        for t in [12_000, 13_000, 30_000] {
            windows.record(t, log.end_at(t));
        }
        let seen = log.arrived(11_000, 30_000);
        assert_eq!(seen, 49.0);
        for w in Window::ALL {
            let c = windows.count(w);
            assert_eq!((c.count, c.covered_s, c.per_minute), (seen, 19.0, None));
        }
    }

    #[test]
    fn a_missed_scrape_is_bridged_by_interpolation() {
        // Steady 10/s, scraped every 10 s from 0 s; the scrape at 60 s failed.
        let mut windows = EndOffsetHistory::new(120);
        for s in (0..=120).step_by(10).filter(|&s| s != 60) {
            windows.record(s * 1_000, s as i64 * 10);
            if s >= 60 {
                let c = windows.count(Window::OneMinute);
                assert_eq!(c.per_minute, Some(600.0), "at {s} s");
            }
        }
        // A burst inside the gap around the edge: the edge's log end is interpolated.
        let mut windows = EndOffsetHistory::new(120);
        for (s, end) in [(0, 0), (10, 0), (30, 100), (70, 100)] {
            windows.record(s * 1_000, end);
        }
        // Edge at 10 s, on a reading: exact.
        assert_eq!(windows.count(Window::OneMinute).count, 100.0);
        windows.record(80_000, 100);
        // Edge at 20 s, halfway between the readings at 10 s (0) and 30 s (100).
        assert_eq!(windows.count(Window::OneMinute).count, 50.0);
    }

    #[test]
    fn a_reset_starts_coverage_again_from_the_new_logs_first_reading() {
        let mut windows = EndOffsetHistory::new(120);
        for s in 0..=120 {
            windows.record(s * 1_000, 5_000 + s as i64 * 10);
        }
        assert_eq!(windows.count(Window::OneMinute).per_minute, Some(600.0));
        // Re-created: the log end is back to 40.
        windows.record(121_000, 40);
        assert_eq!(windows.count(Window::OneMinute), WindowCount::EMPTY);
        windows.record(131_000, 140);
        let c = windows.count(Window::OneMinute);
        assert_eq!((c.count, c.covered_s, c.per_minute), (100.0, 10.0, None));
        windows.clear();
        assert!(windows.is_empty());
    }

    #[test]
    fn memory_is_the_last_fifteen_minutes_and_idle_runs_cost_two_points() {
        let mut busy = EndOffsetHistory::new(120);
        let mut idle = EndOffsetHistory::new(120);
        for s in 0..3_600u64 {
            busy.record(s * 1_000, s as i64);
            idle.record(s * 1_000, 7);
        }
        assert_eq!(
            busy.window_len(),
            901,
            "900 s of readings and the one at the start"
        );
        assert_eq!((idle.len(), idle.stored_len()), (2, 2));
        assert_eq!(busy.count(Window::FifteenMinutes).per_minute, Some(60.0));
        assert_eq!(idle.count(Window::FifteenMinutes).per_minute, Some(0.0));
        assert_eq!(busy.newest().map(|p| p.time_ms), Some(3_599_000));
    }

    #[test]
    fn restored_points_cover_the_windows_at_once() {
        let stored = (0..=91u64).map(|k| EndOffsetPoint {
            time_ms: k * 10_000,
            latest: k as i64 * 50,
        });
        let mut windows = EndOffsetHistory::from_points(120, stored);
        windows.record(920_000, 4_600);
        let counts = windows.counts();
        assert_eq!(counts.one_minute.per_minute, Some(300.0));
        assert_eq!(counts.fifteen_minutes.per_minute, Some(300.0));
    }

    #[test]
    fn restored_points_skip_a_lone_lower_end_offset_but_follow_a_new_log() {
        let points = |ends: &[i64]| {
            ends.iter()
                .enumerate()
                .map(|(k, &latest)| EndOffsetPoint {
                    time_ms: k as u64 * 10_000,
                    latest,
                })
                .collect::<Vec<_>>()
        };
        // A new leader answered 900 once: not a new log.
        let blip = EndOffsetHistory::from_points(120, points(&[1_000, 1_100, 900, 1_300, 1_400]));
        assert_eq!(blip.window_len(), 4);
        assert_eq!(blip.count(Window::OneMinute).count, 400.0);
        // Re-created: 40 and 140 are the new log.
        let reset = EndOffsetHistory::from_points(120, points(&[1_000, 1_100, 40, 140, 240]));
        let c = reset.count(Window::OneMinute);
        assert_eq!((c.count, c.covered_s), (200.0, 20.0));
    }

    /// The same formula over every reading ever taken: what the bounded windows must match.
    fn naive(readings: &[(u64, i64)], window: Window) -> WindowCount {
        let (first, last) = (readings[0], readings[readings.len() - 1]);
        if last.0 - first.0 < window.millis() {
            return WindowCount::new(window, (last.1 - first.1) as f64, last.0 - first.0);
        }
        let start = last.0 - window.millis();
        let i = readings.iter().rposition(|r| r.0 <= start).unwrap();
        let (b, a) = (readings[i], readings[i + 1]);
        let at_start = b.1 as f64 + (a.1 - b.1) as f64 * (start - b.0) as f64 / (a.0 - b.0) as f64;
        WindowCount::new(window, last.1 as f64 - at_start, window.millis())
    }

    #[test]
    fn bounded_windows_answer_as_the_whole_history_would_on_random_input() {
        let mut rng = Lcg(99);
        for _ in 0..20 {
            let mut windows = EndOffsetHistory::new(120);
            let mut readings: Vec<(u64, i64)> = Vec::new();
            let (mut t, mut end) = (START, 1_000i64);
            for _ in 0..2_000 {
                t += 1 + rng.below(20_000); // irregular scrapes, missed ones
                match rng.below(300) {
                    0 if end > 0 => {
                        // A new log, lower than the old (how it is told apart).
                        end = rng.below(end.min(50) as u64) as i64;
                        readings.clear();
                    }
                    0..=150 => {} // idle
                    _ => end += rng.below(500) as i64,
                }
                readings.push((t, end));
                windows.record(t, end);
                for w in Window::ALL {
                    let (got, want) = (windows.count(w), naive(&readings, w));
                    assert!((got.count - want.count).abs() < 1e-6, "{got:?} {want:?}");
                    assert_eq!(got.covered_s, want.covered_s);
                    assert_eq!(got.per_minute.is_some(), want.per_minute.is_some());
                    assert!(got.count >= 0.0);
                    assert!(got.count <= (end - readings[0].1) as f64 + 1e-6);
                }
                assert!(windows.window_len() <= readings.len().min(902));
            }
        }
    }
}

/// The two structures [`EndOffsetHistory`] replaced, as they were: what it must answer as.
#[cfg(test)]
#[allow(dead_code)]
mod reference {
    use std::collections::VecDeque;

    use super::*;

    #[derive(Debug, Clone)]
    pub struct OldHistory {
        points: VecDeque<EndOffsetPoint>,
        capacity: usize,
    }

    impl OldHistory {
        pub fn new(capacity: usize) -> Self {
            Self {
                points: VecDeque::new(),
                capacity: capacity.max(2),
            }
        }

        pub fn from_points(
            capacity: usize,
            points: impl IntoIterator<Item = EndOffsetPoint>,
        ) -> Self {
            let mut history = Self::new(capacity);
            for point in points {
                history.record(point.time_ms, point.latest);
            }
            history
        }

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

    #[derive(Debug, Clone, Default)]
    pub struct OldWindows {
        points: VecDeque<EndOffsetPoint>,
    }

    impl OldWindows {
        pub fn new() -> Self {
            Self::default()
        }

        pub fn from_points(points: impl IntoIterator<Item = EndOffsetPoint>) -> Self {
            let mut windows = Self::new();
            let mut held: Option<EndOffsetPoint> = None;
            for point in points {
                let lower = windows.newest().is_some_and(|n| point.latest < n.latest);
                if !lower {
                    held = None;
                } else if let Some(first_of_new_log) = held.take() {
                    windows.record(first_of_new_log.time_ms, first_of_new_log.latest);
                } else {
                    held = Some(point);
                    continue;
                }
                windows.record(point.time_ms, point.latest);
            }
            windows
        }

        pub fn record(&mut self, time_ms: EpochMillis, latest: i64) {
            let len = self.points.len();
            if let Some(last) = self.points.back() {
                if time_ms <= last.time_ms {
                    return;
                }
                if latest < last.latest {
                    // A new log: coverage starts again from its first reading.
                    self.points.clear();
                } else if latest == last.latest && len >= 2 && self.points[len - 2].latest == latest
                {
                    // The middle of a flat run carries no information: move the run's end instead.
                    self.points[len - 1].time_ms = time_ms;
                    self.forget_before(time_ms);
                    return;
                }
            }
            self.points.push_back(EndOffsetPoint { time_ms, latest });
            self.forget_before(time_ms);
        }

        fn forget_before(&mut self, now: EpochMillis) {
            let start = now.saturating_sub(Window::LONGEST.millis());
            while self.points.get(1).is_some_and(|p| p.time_ms <= start) {
                self.points.pop_front();
            }
        }

        pub fn clear(&mut self) {
            self.points.clear();
        }

        pub fn len(&self) -> usize {
            self.points.len()
        }

        pub fn is_empty(&self) -> bool {
            self.points.is_empty()
        }

        pub fn newest(&self) -> Option<EndOffsetPoint> {
            self.points.back().copied()
        }

        pub fn count(&self, window: Window) -> WindowCount {
            let (Some(first), Some(last)) = (self.points.front(), self.points.back()) else {
                return WindowCount::EMPTY;
            };
            let watched_ms = last.time_ms - first.time_ms;
            if watched_ms < window.millis() {
                return WindowCount::new(window, (last.latest - first.latest) as f64, watched_ms);
            }
            let start = last.time_ms - window.millis();
            // The first reading is at or before `start` and the last after it: 1 ≤ i < len.
            let i = self.points.partition_point(|p| p.time_ms <= start);
            let (before, after) = (self.points[i - 1], self.points[i]);
            let fraction =
                (start - before.time_ms) as f64 / (after.time_ms - before.time_ms) as f64;
            let at_start = before.latest as f64 + (after.latest - before.latest) as f64 * fraction;
            WindowCount::new(window, last.latest as f64 - at_start, window.millis())
        }

        pub fn counts(&self) -> WindowCounts {
            WindowCounts::from_fn(|w| self.count(w))
        }
    }
}

#[cfg(test)]
mod reference_tests {
    use super::reference::{OldHistory, OldWindows};
    use super::*;
    use crate::test_rng::Lcg;

    /// Random readings — bursts, idle runs, missed scrapes, new logs — at several capacities and
    /// scrape intervals: the one store answers exactly as the history and the windows did, and
    /// holds no more than they did together.
    #[test]
    fn answers_as_the_separate_history_and_windows_did() {
        let mut rng = Lcg(2026);
        for run in 0..60 {
            let capacity = [2, 3, 4, 8, 20, 120][run % 6];
            let interval = [1_000, 5_000, 10_000, 30_000][run / 6 % 4];
            let (mut new, mut history, mut windows) = (
                EndOffsetHistory::new(capacity),
                OldHistory::new(capacity),
                OldWindows::new(),
            );
            let (mut t, mut end) = (1_000_000u64, 5_000i64);
            let mut most_window_points = 0;
            for _ in 0..1_500 {
                t += match rng.below(20) {
                    0 => interval * (2 + rng.below(40)), // missed scrapes
                    1 => 1 + rng.below(interval),
                    _ => interval + rng.below(50) - 25,
                };
                match rng.below(400) {
                    0 => {
                        // A new log: the analyzer clears on the reset it confirms.
                        end = rng.below(100) as i64;
                        new.clear();
                        history.clear();
                        windows.clear();
                        most_window_points = 0;
                    }
                    1..=150 => {}
                    _ => {
                        let scale = 1 + rng.below(100_000);
                        end += rng.below(scale) as i64;
                    }
                }
                new.record(t, end);
                history.record(t, end);
                windows.record(t, end);
                let old_points: Vec<EndOffsetPoint> = history.points().copied().collect();
                assert_eq!(new.points().collect::<Vec<_>>(), old_points);
                assert_eq!(new.len(), history.len());
                assert_eq!(new.window_len(), windows.len());
                assert_eq!(new.newest(), windows.newest());
                assert_eq!(new.counts(), windows.counts());
                for offset in [0, end / 2, end - 1, end, end + 1] {
                    assert_eq!(new.time_at_offset(offset), history.time_at_offset(offset));
                }
                // Beyond both sets: window-only points no longer needed, which were needed once.
                most_window_points = most_window_points.max(windows.len());
                assert!(new.stored_len() <= history.len() + windows.len() + most_window_points);
            }
        }
    }
}

//! Threshold-free lag verdicts after Burrow's sliding-window rules.
//!
//! For each group and partition a [`LagWindow`] keeps the last N observations
//! `(time, committed offset, log end offset)` — one per scrape that saw both. (OffsetFetch does
//! not say *when* an offset was committed, so a scrape that reads the group's committed offset
//! is what counts as "a commit" here; re-committing the same offset and not committing look the
//! same.) [`LagWindow::evaluate`] then applies, in Burrow's order:
//!
//! 1. **OK** when the current lag is 0, or the lag was 0 at any point in the window.
//! 2. **REWOUND** when the committed offset went backwards inside the window — only rewinds that
//!    persisted across two scrapes get into the window (see [`LagWindow::push`]).
//! 3. **STOPPED** when no commit has been seen for longer than the window spans:
//!    `now − last commit seen > newest − oldest observation`, judged against the clock. Needs at
//!    least 2 observations (Burrow's false alarm: a one-point window spans 0 s, so any delay at
//!    all read as STOPPED).
//! 4. **STALLED** when the window is complete (N observations) and the committed offset is the
//!    same throughout (the lag is > 0 throughout, by rule 1).
//! 5. **WARN** when the window is complete and the lag never went down from one observation to
//!    the next *and* ended higher than it started. (Burrow warns on "never went down" alone, which
//!    pages on a healthy consumer whose lag just sits at a constant level.)
//! 6. **OK** otherwise.
//!
//! Rules 4 and 5 wait for a complete window: with two or three observations after a start-up,
//! a consumer that commits less often than we scrape would look stalled.
//!
//! A group's verdict is its worst partition's: [`Verdict`] orders by severity like Burrow's
//! status codes, `Ok < Warn < Stopped < Stalled < Rewound < Lost`.
//!
//! **LOST** is not a window rule: the analyzer sets it over the window's verdict when records
//! were deleted before the group read them (see [`crate::kafka::loss`]).

use serde::Serialize;

use crate::clock::EpochMillis;
use crate::kafka::packed;

/// Burrow's default window: 10 commits.
pub const DEFAULT_WINDOW_LEN: usize = 10;

/// The verdict on one partition of a group (or on a group: its worst partition's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Keeping up: the lag reached 0 in the window, or it is not growing.
    #[default]
    Ok,
    /// The lag grew across the whole window: the consumer is slower than its producers.
    Warn,
    /// No commit seen for longer than the window spans, with lag > 0.
    Stopped,
    /// The same committed offset throughout the window, with lag > 0.
    Stalled,
    /// The committed offset went backwards (and stayed back for two scrapes).
    Rewound,
    /// Records were deleted (retention, DeleteRecords) before the group read them: its committed
    /// offset is below the log start, or was within the last window of scrapes.
    Lost,
}

impl Verdict {
    /// The numeric code exported in `pipescope_kafka_group_verdict`:
    /// 0 OK, 1 WARN, 2 STOPPED, 3 STALLED, 4 REWOUND, 5 LOST (higher is worse).
    pub fn code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warn => 1,
            Verdict::Stopped => 2,
            Verdict::Stalled => 3,
            Verdict::Rewound => 4,
            Verdict::Lost => 5,
        }
    }

    /// The verdict named `text` (`STALLED`, any case).
    pub fn parse(text: &str) -> Option<Verdict> {
        [
            Verdict::Ok,
            Verdict::Warn,
            Verdict::Stopped,
            Verdict::Stalled,
            Verdict::Rewound,
            Verdict::Lost,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(text))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warn => "WARN",
            Verdict::Stopped => "STOPPED",
            Verdict::Stalled => "STALLED",
            Verdict::Rewound => "REWOUND",
            Verdict::Lost => "LOST",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observation of a group's committed offset on a partition, with the partition's log end
/// offset read in the same scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CommitPoint {
    pub time_ms: EpochMillis,
    pub committed: i64,
    pub latest: i64,
}

impl CommitPoint {
    pub fn new(time_ms: EpochMillis, committed: i64, latest: i64) -> Self {
        Self {
            time_ms,
            committed,
            latest,
        }
    }

    /// `latest − committed`, never negative.
    pub fn lag(&self) -> i64 {
        (self.latest - self.committed).max(0)
    }
}

/// The result of evaluating a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerdictReport {
    pub verdict: Verdict,
    /// Observations the verdict was taken over.
    pub observations: usize,
    /// Whether the window holds its full N observations (rules STALLED and WARN need it).
    pub complete: bool,
}

/// The sliding window of the last N commit observations of one group on one partition.
///
/// A big cluster has hundreds of thousands of group partitions, each with a full window: the
/// observations are kept as varint differences from the one before (the oldest in full), about
/// 6 bytes each instead of 24, and decoded on the stack when a verdict is taken. The rarely set
/// pending rewind is boxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagWindow {
    /// The observations, oldest first: the oldest as varints of its time, committed offset and
    /// log end (signed ones zigzagged), each next one as the differences from the one before.
    entries: Vec<u8>,
    len: u32,
    capacity: u32,
    /// A backward step not yet confirmed by the next scrape.
    pending_rewind: Option<Box<CommitPoint>>,
    /// [`NEVER`] until a commit is seen.
    last_commit_seen_ms: EpochMillis,
    ignored_rewinds: u32,
}

/// `last_commit_seen_ms` before any commit was seen.
const NEVER: EpochMillis = EpochMillis::MAX;

/// Windows up to this length are decoded on the stack.
const ON_STACK: usize = 16;

/// The observations of a window, oldest first, decoded on the way.
struct CommitPoints<'a> {
    entries: &'a [u8],
    at: usize,
    previous: CommitPoint,
    left: usize,
}

impl Iterator for CommitPoints<'_> {
    type Item = CommitPoint;

    fn next(&mut self) -> Option<CommitPoint> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let p = &self.previous;
        self.previous = CommitPoint {
            time_ms: p.time_ms + packed::get_u64(self.entries, &mut self.at),
            committed: p
                .committed
                .wrapping_add(packed::get_i64(self.entries, &mut self.at)),
            latest: p
                .latest
                .wrapping_add(packed::get_i64(self.entries, &mut self.at)),
        };
        Some(self.previous)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for CommitPoints<'_> {}

/// Appends the entry of `point` after `previous` (the oldest after a zero point: in full).
fn put_commit_step(out: &mut Vec<u8>, previous: CommitPoint, point: CommitPoint) {
    packed::put_u64(out, point.time_ms - previous.time_ms);
    // Wrapping: any two stored offsets round-trip, even ones no broker would send.
    packed::put_i64(out, point.committed.wrapping_sub(previous.committed));
    packed::put_i64(out, point.latest.wrapping_sub(previous.latest));
}

const ZERO: CommitPoint = CommitPoint {
    time_ms: 0,
    committed: 0,
    latest: 0,
};

impl LagWindow {
    /// An empty window of `len` observations (at least 2).
    pub fn new(len: usize) -> Self {
        Self {
            entries: Vec::new(),
            len: 0,
            capacity: len.clamp(2, u32::MAX as usize) as u32,
            pending_rewind: None,
            last_commit_seen_ms: NEVER,
            ignored_rewinds: 0,
        }
    }

    /// Rebuilds a window from stored history (oldest first): the same state as if each point had
    /// been pushed as it was scraped.
    pub fn from_points(len: usize, points: impl IntoIterator<Item = CommitPoint>) -> Self {
        let mut window = Self::new(len);
        for point in points {
            window.push(point);
        }
        window
    }

    /// Adds the observation of one scrape. Observations not newer than the last one are ignored.
    ///
    /// The REWIND rule: a committed offset below the previous one is held back as *pending*.
    /// If the next observation is still below the highest committed offset seen before the drop,
    /// the rewind persisted across two scrapes and both enter the window (REWOUND). If the next
    /// observation is back at or above that high mark, the drop was a blip — a coordinator that
    /// answered with a stale offset while a broker restarted — and it is dropped and counted in
    /// [`LagWindow::ignored_rewinds`]. Until then the pending point takes no part in verdicts.
    pub fn push(&mut self, point: CommitPoint) {
        let last = self.points().last();
        let newest_time = self
            .pending_rewind
            .as_deref()
            .or(last.as_ref())
            .map(|p| p.time_ms);
        if newest_time.is_some_and(|t| point.time_ms <= t) {
            return;
        }
        self.note_commit_seen(point.time_ms);
        if let Some(pending) = self.pending_rewind.take() {
            let high_mark = self.points().map(|p| p.committed).max();
            if high_mark.is_some_and(|high| point.committed < high) {
                self.append(*pending, last);
                self.append(point, Some(*pending));
            } else {
                self.ignored_rewinds = self.ignored_rewinds.saturating_add(1);
                self.append(point, last);
            }
            return;
        }
        match last {
            Some(last) if point.committed < last.committed => {
                self.pending_rewind = Some(Box::new(point));
            }
            _ => self.append(point, last),
        }
    }

    /// Appends `point` after `last`, the newest observation.
    fn append(&mut self, point: CommitPoint, last: Option<CommitPoint>) {
        packed::reserve(&mut self.entries, 30);
        put_commit_step(&mut self.entries, last.unwrap_or(ZERO), point);
        self.len += 1;
        if self.len > self.capacity {
            self.drop_oldest();
        }
    }

    /// Drops the oldest observation: the second one is written in full in its place.
    fn drop_oldest(&mut self) {
        let mut points = CommitPoints {
            entries: &self.entries,
            at: 0,
            previous: ZERO,
            left: 2,
        };
        points.next();
        let second = points.next().expect("two observations or more");
        let at = points.at;
        // Written at the end, turned to the front, and the two old entries drained: no
        // allocation, two short moves.
        let end = self.entries.len();
        packed::reserve(&mut self.entries, 30);
        put_commit_step(&mut self.entries, ZERO, second);
        let head = self.entries.len() - end;
        self.entries.rotate_right(head);
        self.entries.drain(head..head + at);
        self.len -= 1;
    }

    /// Records that the group reported a committed offset at `time_ms` although no observation
    /// could be made (the partition's end offset failed this scrape): the consumer is not STOPPED.
    pub fn note_commit_seen(&mut self, time_ms: EpochMillis) {
        self.last_commit_seen_ms = match self.last_commit_seen_ms {
            NEVER => time_ms,
            seen => seen.max(time_ms),
        };
    }

    /// Forgets everything (the partition was re-created: old offsets mean nothing now).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.len = 0;
        self.pending_rewind = None;
        self.last_commit_seen_ms = NEVER;
    }

    /// The observations in the window, oldest first (a pending rewind is not among them).
    pub fn points(&self) -> impl ExactSizeIterator<Item = CommitPoint> + '_ {
        CommitPoints {
            entries: &self.entries,
            at: 0,
            previous: ZERO,
            left: self.len as usize,
        }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The window length N.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub fn last_commit_seen_ms(&self) -> Option<EpochMillis> {
        (self.last_commit_seen_ms != NEVER).then_some(self.last_commit_seen_ms)
    }

    /// Backward steps that did not persist to the next scrape, and were dropped.
    pub fn ignored_rewinds(&self) -> u64 {
        u64::from(self.ignored_rewinds)
    }

    /// Whether the newest observation is a rewind still waiting for confirmation.
    pub fn has_pending_rewind(&self) -> bool {
        self.pending_rewind.is_some()
    }

    /// Calls `f` with the observations decoded, oldest first: on the stack for windows of up to
    /// [`ON_STACK`] observations.
    fn with_points<R>(&self, f: impl FnOnce(&[CommitPoint]) -> R) -> R {
        if self.len() <= ON_STACK {
            let mut buffer = [ZERO; ON_STACK];
            for (slot, point) in buffer.iter_mut().zip(self.points()) {
                *slot = point;
            }
            f(&buffer[..self.len()])
        } else {
            f(&self.points().collect::<Vec<_>>())
        }
    }

    /// The verdict at `now_ms`, by the rules in the module documentation.
    pub fn evaluate(&self, now_ms: EpochMillis) -> VerdictReport {
        self.with_points(|points| self.evaluate_points(points, now_ms))
    }

    /// [`LagWindow::evaluate`] and [`LagWindow::rates`] from one decoding of the observations.
    pub fn evaluate_with_rates(&self, now_ms: EpochMillis) -> (VerdictReport, Option<WindowRates>) {
        self.with_points(|points| (self.evaluate_points(points, now_ms), rates_over(points)))
    }

    fn evaluate_points(&self, points: &[CommitPoint], now_ms: EpochMillis) -> VerdictReport {
        let complete = points.len() >= self.capacity();
        let report = |verdict| VerdictReport {
            verdict,
            observations: points.len(),
            complete,
        };
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            return report(Verdict::Ok);
        };
        if last.lag() == 0 || points.iter().any(|p| p.lag() == 0) {
            return report(Verdict::Ok);
        }
        let pairs = || points.iter().zip(points.iter().skip(1));
        if pairs().any(|(a, b)| b.committed < a.committed) {
            return report(Verdict::Rewound);
        }
        let last_seen = self.last_commit_seen_ms().unwrap_or(last.time_ms);
        let span = last.time_ms - first.time_ms;
        if points.len() >= 2 && now_ms.saturating_sub(last_seen) > span {
            return report(Verdict::Stopped);
        }
        if complete && pairs().all(|(a, b)| a.committed == b.committed) {
            return report(Verdict::Stalled);
        }
        if complete && pairs().all(|(a, b)| b.lag() >= a.lag()) && last.lag() > first.lag() {
            return report(Verdict::Warn);
        }
        report(Verdict::Ok)
    }

    /// Records consumed per second and records produced per second over the window, from the
    /// moves of the committed offset and of the log end since the oldest observation (or the
    /// last rewind, if any), with the span they are over. `None` with fewer than two
    /// observations in that span or no time between them: never a rate from one reading.
    pub fn rates(&self) -> Option<WindowRates> {
        self.with_points(rates_over)
    }
}

/// [`LagWindow::rates`] over its decoded observations.
fn rates_over(points: &[CommitPoint]) -> Option<WindowRates> {
    let last_index = points.len().checked_sub(1)?;
    let last = points[last_index];
    // Rates only make sense since the last backward step.
    let start = (1..points.len())
        .rev()
        .find(|&i| points[i].committed < points[i - 1].committed)
        .unwrap_or(0);
    let first = points[start];
    if last.time_ms <= first.time_ms {
        return None;
    }
    let over_ms = last.time_ms - first.time_ms;
    let seconds = over_ms as f64 / 1000.0;
    Some(WindowRates {
        consume_per_second: (last.committed - first.committed) as f64 / seconds,
        produce_per_second: (last.latest - first.latest).max(0) as f64 / seconds,
        over_ms,
        intervals: last_index - start,
    })
}

/// A group partition's consume and produce rates over its verdict window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowRates {
    /// Records per second the committed offset moved.
    pub consume_per_second: f64,
    /// Records per second the log end moved.
    pub produce_per_second: f64,
    /// Milliseconds between the first and the last observation the rates are taken over.
    pub over_ms: u64,
    /// Scrape intervals in that span: 1 means the rates come from two scrapes only.
    pub intervals: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 5;

    /// A window from `(seconds, committed, latest)` triples.
    fn window(points: &[(u64, i64, i64)]) -> LagWindow {
        LagWindow::from_points(
            N,
            points
                .iter()
                .map(|&(s, committed, latest)| CommitPoint::new(s * 1_000, committed, latest)),
        )
    }

    fn verdict_at(w: &LagWindow, now_s: u64) -> Verdict {
        w.evaluate(now_s * 1_000).verdict
    }

    #[test]
    fn empty_window_is_ok_and_incomplete() {
        let report = LagWindow::new(N).evaluate(0);
        assert_eq!(
            report,
            VerdictReport {
                verdict: Verdict::Ok,
                observations: 0,
                complete: false
            }
        );
    }

    #[test]
    fn consumer_keeping_up_is_ok() {
        let w = window(&[
            (0, 90, 100),
            (10, 195, 200),
            (20, 290, 300),
            (30, 398, 400),
            (40, 495, 500),
        ]);
        let report = w.evaluate(40_000);
        assert_eq!(report.verdict, Verdict::Ok);
        assert!(report.complete);
    }

    #[test]
    fn lag_reaching_zero_in_the_window_is_ok_even_if_growing_since() {
        let w = window(&[
            (0, 100, 100),
            (10, 100, 150),
            (20, 100, 200),
            (30, 100, 250),
            (40, 100, 300),
        ]);
        assert_eq!(verdict_at(&w, 40), Verdict::Ok);
    }

    #[test]
    fn lag_growing_across_the_whole_window_is_warn() {
        let w = window(&[
            (0, 100, 110),
            (10, 150, 170),
            (20, 200, 230),
            (30, 250, 290),
            (40, 300, 350),
        ]);
        assert_eq!(verdict_at(&w, 40), Verdict::Warn);
    }

    #[test]
    fn a_constant_lag_is_not_a_warning() {
        // Burrow's false alarm: its "lag never decreased" rule warns on this healthy consumer.
        let w = window(&[
            (0, 100, 120),
            (10, 200, 220),
            (20, 300, 320),
            (30, 400, 420),
            (40, 500, 520),
        ]);
        assert_eq!(verdict_at(&w, 40), Verdict::Ok);
    }

    #[test]
    fn lag_that_dips_once_is_not_a_warning() {
        let w = window(&[
            (0, 100, 110),
            (10, 150, 170),
            (20, 220, 230),
            (30, 250, 290),
            (40, 300, 350),
        ]);
        assert_eq!(verdict_at(&w, 40), Verdict::Ok);
    }

    #[test]
    fn same_committed_offset_throughout_with_lag_is_stalled() {
        let w = window(&[
            (0, 100, 110),
            (10, 100, 120),
            (20, 100, 130),
            (30, 100, 140),
            (40, 100, 150),
        ]);
        assert_eq!(verdict_at(&w, 40), Verdict::Stalled);
    }

    #[test]
    fn stalled_and_warn_wait_for_a_complete_window() {
        // Right after start-up: a consumer that commits every 30 s looks frozen for 3 scrapes.
        let w = window(&[(0, 100, 110), (10, 100, 120), (20, 100, 130)]);
        let report = w.evaluate(20_000);
        assert_eq!(report.verdict, Verdict::Ok);
        assert!(!report.complete);
    }

    #[test]
    fn no_commit_for_longer_than_the_window_spans_is_stopped() {
        let w = window(&[(0, 100, 110), (10, 120, 130), (20, 140, 150)]);
        // Window spans 20 s; last commit seen at 20 s.
        assert_eq!(verdict_at(&w, 40), Verdict::Ok);
        assert_eq!(verdict_at(&w, 41), Verdict::Stopped);
    }

    #[test]
    fn a_single_observation_never_means_stopped() {
        // Burrow's false alarm: a one-commit window spans 0 s.
        let w = window(&[(0, 100, 110)]);
        assert_eq!(verdict_at(&w, 3_600), Verdict::Ok);
    }

    #[test]
    fn stopped_needs_lag() {
        let w = window(&[(0, 100, 110), (10, 120, 120)]);
        assert_eq!(verdict_at(&w, 1_000), Verdict::Ok);
    }

    #[test]
    fn a_commit_seen_without_an_end_offset_keeps_the_consumer_from_stopped() {
        let mut w = window(&[(0, 100, 110), (10, 120, 130)]);
        w.note_commit_seen(25_000);
        assert_eq!(verdict_at(&w, 30), Verdict::Ok);
        assert_eq!(verdict_at(&w, 36), Verdict::Stopped);
    }

    #[test]
    fn a_rewind_that_persists_two_scrapes_is_rewound() {
        let mut w = window(&[(0, 100, 200), (10, 150, 250), (20, 200, 300)]);
        w.push(CommitPoint::new(30_000, 20, 350));
        assert!(w.has_pending_rewind());
        assert_eq!(verdict_at(&w, 30), Verdict::Ok, "one scrape is not enough");
        w.push(CommitPoint::new(40_000, 60, 400));
        assert_eq!(verdict_at(&w, 40), Verdict::Rewound);
        assert_eq!(w.len(), 5);
    }

    #[test]
    fn a_brief_rewind_during_a_broker_restart_is_ignored() {
        // The coordinator moved and answered once with an old offset, then the right one again.
        let mut w = window(&[(0, 100, 200), (10, 150, 250), (20, 200, 300)]);
        w.push(CommitPoint::new(30_000, 20, 350));
        w.push(CommitPoint::new(40_000, 260, 400));
        assert_eq!(verdict_at(&w, 40), Verdict::Ok);
        assert_eq!(w.ignored_rewinds(), 1);
        assert_eq!(
            w.points().map(|p| p.committed).collect::<Vec<_>>(),
            [100, 150, 200, 260]
        );
    }

    #[test]
    fn rewound_lasts_until_the_backward_step_leaves_the_window() {
        let mut w = window(&[(0, 500, 600), (10, 100, 600), (20, 120, 600)]);
        assert_eq!(verdict_at(&w, 20), Verdict::Rewound);
        for (i, committed) in [140, 160, 180].into_iter().enumerate() {
            w.push(CommitPoint::new(30_000 + i as u64 * 10_000, committed, 600));
        }
        // The window (N = 5) now starts after the backward step: lag shrinking, OK.
        assert_eq!(w.points().next().unwrap().committed, 100);
        assert_eq!(verdict_at(&w, 50), Verdict::Ok);
    }

    #[test]
    fn rewind_to_zero_lag_is_ok() {
        let w = window(&[(0, 500, 600), (10, 100, 100), (20, 100, 100)]);
        assert_eq!(verdict_at(&w, 20), Verdict::Ok);
    }

    #[test]
    fn rebuilding_from_stored_points_gives_the_same_window() {
        let raw = [
            (0, 100, 110),
            (10, 100, 120),
            (20, 40, 130),
            (30, 300, 330),
            (40, 310, 340),
            (50, 320, 350),
            (60, 330, 360),
        ];
        let mut live = LagWindow::new(N);
        for &(s, c, l) in &raw {
            live.push(CommitPoint::new(s * 1_000, c, l));
        }
        assert_eq!(window(&raw), live);
        assert_eq!(live.len(), N);
        assert_eq!(live.ignored_rewinds(), 1);
    }

    #[test]
    fn out_of_order_points_are_ignored() {
        let mut w = window(&[(0, 100, 110), (10, 120, 130)]);
        w.push(CommitPoint::new(5_000, 1, 2));
        w.push(CommitPoint::new(10_000, 1, 2));
        assert_eq!(w.len(), 2);
        assert!(!w.has_pending_rewind());
    }

    #[test]
    fn observations_round_trip_whatever_their_size_and_long_windows_judge_alike() {
        // Offsets far apart, a rewind, times years apart: kept exactly.
        let points = [
            CommitPoint::new(1, 0, i64::MAX / 2),
            CommitPoint::new(10_000, i64::MAX / 2, i64::MAX / 2 + 7),
            CommitPoint::new(20_000, i64::MAX / 2 + 1, i64::MAX - 1),
            CommitPoint::new(u64::MAX / 4, 3, 5),
            CommitPoint::new(u64::MAX / 4 + 1, 3, 5),
        ];
        let w = LagWindow::from_points(10, points[..4].iter().copied());
        assert_eq!(w.points().collect::<Vec<_>>(), points[..3]);
        assert!(
            w.has_pending_rewind(),
            "the drop to 3 waits for the next scrape"
        );
        let w = LagWindow::from_points(10, points);
        assert_eq!(
            w.points().collect::<Vec<_>>(),
            points,
            "the rewind persisted"
        );
        assert_eq!(w.evaluate(u64::MAX / 4 + 1).verdict, Verdict::Rewound);
        // A window longer than the stack buffer: decoded on the heap, same rules.
        let growing = |len: usize| {
            LagWindow::from_points(
                len,
                (0..len as u64).map(|i| {
                    CommitPoint::new(i * 10_000, 100 + i as i64 * 50, 110 + i as i64 * 60)
                }),
            )
        };
        for len in [5, ON_STACK, ON_STACK + 1, 40] {
            let w = growing(len);
            let report = w.evaluate(len as u64 * 10_000);
            assert_eq!(
                (report.verdict, report.observations, report.complete),
                (Verdict::Warn, len, true)
            );
            let rates = w.rates().unwrap();
            assert_eq!(
                (rates.consume_per_second, rates.produce_per_second),
                (5.0, 6.0)
            );
            assert_eq!(rates.intervals, len - 1);
        }
    }

    #[test]
    fn rates_over_the_window_since_the_last_rewind() {
        let w = window(&[(0, 100, 200), (10, 300, 400), (20, 500, 600)]);
        assert_eq!(
            w.rates(),
            Some(WindowRates {
                consume_per_second: 20.0,
                produce_per_second: 20.0,
                over_ms: 20_000,
                intervals: 2
            })
        );
        // Since the rewind at 10 s: over one interval only, and it says so.
        let w = window(&[(0, 900, 1_000), (10, 100, 1_100), (20, 400, 1_200)]);
        assert_eq!(
            w.rates(),
            Some(WindowRates {
                consume_per_second: 30.0,
                produce_per_second: 10.0,
                over_ms: 10_000,
                intervals: 1
            })
        );
        assert_eq!(window(&[(0, 1, 2)]).rates(), None);
        assert_eq!(LagWindow::new(N).rates(), None);
    }

    #[test]
    fn rates_span_the_whole_window_once_it_is_full() {
        // N = 5 observations, 10 s apart: over 40 s, 4 intervals; older points have left.
        let w = window(&[
            (0, 0, 0),
            (10, 100, 200),
            (20, 200, 400),
            (30, 300, 600),
            (40, 400, 800),
            (50, 500, 1_000),
        ]);
        let rates = w.rates().unwrap();
        assert_eq!((rates.over_ms, rates.intervals), (40_000, 4));
        assert_eq!(
            (rates.consume_per_second, rates.produce_per_second),
            (10.0, 20.0)
        );
    }

    #[test]
    fn verdicts_order_by_severity_and_codes_are_stable() {
        let mut all = [
            Verdict::Rewound,
            Verdict::Lost,
            Verdict::Ok,
            Verdict::Stalled,
            Verdict::Warn,
            Verdict::Stopped,
        ];
        all.sort();
        assert_eq!(all.map(Verdict::code), [0, 1, 2, 3, 4, 5]);
        assert_eq!(all.iter().max(), Some(&Verdict::Lost));
        assert_eq!(Verdict::Stalled.to_string(), "STALLED");
    }
}

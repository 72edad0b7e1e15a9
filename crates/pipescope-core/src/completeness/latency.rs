//! Latency from a record's origin timestamp to its arrival at a hop, in DDSketch quantile
//! sketches (the `sketches-ddsketch` crate, a port of Datadog's reference implementation).
//!
//! Error: every quantile is within 1 % of the true value of that rank ([`RELATIVE_ACCURACY`]),
//! for values from 1 µs to about 10^12 ms (2,048 bins; only beyond that range would the lowest
//! bins collapse). `max` is exact. Sketches merge without losing that bound, so monitor
//! instances sharing a flow can add theirs.
//!
//! Windows: one sketch per minute of arrival time. The figure of a window of N minutes merges
//! the current (partial) minute with the N complete minutes before it, so it covers between N
//! and N + 1 minutes: quantiles are not rates, a slightly longer span does not skew them.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;
use sketches_ddsketch::{Config, DDSketch};

use crate::EpochMillis;
use crate::windows::Window;

/// The relative error of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
const MAX_BINS: u32 = 2_048;
/// Milliseconds: below a microsecond counts as zero.
const MIN_VALUE_MS: f64 = 1e-3;
const MINUTE_MS: u64 = 60_000;
const MINUTES_KEPT: u64 = Window::LONGEST.millis() / MINUTE_MS;

/// A latency sketch (milliseconds).
#[derive(Clone)]
pub struct Sketch(DDSketch);

impl fmt::Debug for Sketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sketch")
            .field("count", &self.0.count())
            .field("max", &self.0.max())
            .finish()
    }
}

impl Default for Sketch {
    fn default() -> Self {
        Self(DDSketch::new(Config::new(
            RELATIVE_ACCURACY,
            MAX_BINS,
            MIN_VALUE_MS,
        )))
    }
}

impl Sketch {
    pub fn add(&mut self, ms: f64) {
        self.0.add(ms);
    }

    /// `ms` added `count` times, at the cost of one.
    pub fn add_count(&mut self, ms: f64, count: u64) {
        self.0.add_with_count(ms, count);
    }

    pub fn count(&self) -> u64 {
        self.0.count() as u64
    }

    pub fn merge(&mut self, other: &Sketch) {
        // Every sketch here has the same config, so merging cannot fail.
        let _ = self.0.merge(&other.0);
    }

    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    pub fn quantiles(&self) -> Quantiles {
        Quantiles {
            count: self.count(),
            p50_ms: self.quantile(0.5),
            p90_ms: self.quantile(0.9),
            p99_ms: self.quantile(0.99),
            p999_ms: self.quantile(0.999),
            max_ms: self.0.max(),
        }
    }

    /// Bytes held on the heap (bins).
    pub fn heap_bytes(&self) -> usize {
        self.0.length() * std::mem::size_of::<u64>()
    }
}

/// Latency quantiles in milliseconds; absent when nothing was measured.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Quantiles since the start and over the last 1, 5 and 15 minutes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencyFigures {
    pub all: Quantiles,
    #[serde(rename = "1m")]
    pub one_minute: Quantiles,
    #[serde(rename = "5m")]
    pub five_minutes: Quantiles,
    #[serde(rename = "15m")]
    pub fifteen_minutes: Quantiles,
    /// Records that arrived before their origin timestamp (clock skew between the origin's host
    /// and the monitor's): counted here, never put in the sketch.
    pub negative: u64,
}

/// Latency sketches rotated per minute of arrival time.
#[derive(Debug, Clone, Default)]
pub struct WindowedLatency {
    /// Every complete minute merged.
    closed: Sketch,
    /// The last complete minutes that had records, oldest first.
    minutes: VecDeque<(u64, Sketch)>,
    current_minute: u64,
    current: Sketch,
    /// The last latency recorded (ms) and how many records in a row had it, not yet in
    /// `current`: at high rates many records share their millisecond, and one insertion (a
    /// logarithm) per run costs less than one per record.
    run: (u64, u64),
    negative: u64,
}

impl WindowedLatency {
    /// One record that arrived at `arrival_ms` and was made at `origin_ms`.
    pub fn record(&mut self, origin_ms: EpochMillis, arrival_ms: EpochMillis) {
        if arrival_ms < origin_ms {
            self.negative += 1;
            return;
        }
        self.rotate(arrival_ms);
        let ms = arrival_ms - origin_ms;
        if self.run.1 > 0 && self.run.0 == ms {
            self.run.1 += 1;
            return;
        }
        self.end_run();
        self.run = (ms, 1);
    }

    fn end_run(&mut self) {
        let (ms, count) = std::mem::take(&mut self.run);
        self.current.add_count(ms as f64, count);
    }

    /// Closes the current minute once `now` is past it.
    pub fn rotate(&mut self, now: EpochMillis) {
        let minute = now / MINUTE_MS;
        if minute <= self.current_minute {
            return;
        }
        self.end_run();
        let finished = std::mem::take(&mut self.current);
        if finished.count() > 0 {
            self.closed.merge(&finished);
            self.minutes.push_back((self.current_minute, finished));
        }
        self.current_minute = minute;
        while self
            .minutes
            .front()
            .is_some_and(|(m, _)| m + MINUTES_KEPT < minute)
        {
            self.minutes.pop_front();
        }
    }

    /// The sketch of a window (`None`: since the start).
    pub fn sketch(&self, window: Option<Window>) -> Sketch {
        let mut sum = self.current.clone();
        sum.add_count(self.run.0 as f64, self.run.1);
        match window {
            None => sum.merge(&self.closed),
            Some(w) => {
                let first = self.current_minute.saturating_sub(w.millis() / MINUTE_MS);
                for (_, s) in self.minutes.iter().filter(|(m, _)| *m >= first) {
                    sum.merge(s);
                }
            }
        }
        sum
    }

    pub fn figures(&self) -> LatencyFigures {
        LatencyFigures {
            all: self.sketch(None).quantiles(),
            one_minute: self.sketch(Some(Window::OneMinute)).quantiles(),
            five_minutes: self.sketch(Some(Window::FiveMinutes)).quantiles(),
            fifteen_minutes: self.sketch(Some(Window::FifteenMinutes)).quantiles(),
            negative: self.negative,
        }
    }

    /// Adds another's sketches (a monitor instance's, an origin kind's) minute by minute.
    pub fn merge(&mut self, other: &WindowedLatency) {
        self.rotate(other.current_minute * MINUTE_MS);
        self.end_run();
        let mut other = other.clone();
        other.rotate(self.current_minute * MINUTE_MS);
        other.end_run();
        self.closed.merge(&other.closed);
        self.current.merge(&other.current);
        self.negative += other.negative;
        for (minute, sketch) in other.minutes {
            match self.minutes.iter_mut().find(|(m, _)| *m == minute) {
                Some((_, mine)) => mine.merge(&sketch),
                None => {
                    let at = self.minutes.partition_point(|(m, _)| *m < minute);
                    self.minutes.insert(at, (minute, sketch));
                }
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.closed.heap_bytes()
            + self.current.heap_bytes()
            + self
                .minutes
                .iter()
                .map(|(_, s)| s.heap_bytes() + std::mem::size_of::<(u64, Sketch)>())
                .sum::<usize>()
    }
}

/// The latency a hop adds over the one before it: the difference of their quantiles over the
/// same window (downstream minus upstream), in milliseconds.
///
/// This is the difference of quantiles, not the quantile of per-record differences: exact
/// when every record is delayed by the same amount, and in general a summary of how the
/// distribution moved. Each quantile carries [`RELATIVE_ACCURACY`], so a difference is within
/// 1 % of the upstream plus 1 % of the downstream quantile.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct AddedLatency {
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
}

impl AddedLatency {
    pub fn between(upstream: &Quantiles, downstream: &Quantiles) -> Self {
        let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
        Self {
            p50_ms: diff(upstream.p50_ms, downstream.p50_ms),
            p90_ms: diff(upstream.p90_ms, downstream.p90_ms),
            p99_ms: diff(upstream.p99_ms, downstream.p99_ms),
            p999_ms: diff(upstream.p999_ms, downstream.p999_ms),
        }
    }
}

/// [`AddedLatency`] since the start and per window.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct AddedLatencyFigures {
    pub all: AddedLatency,
    #[serde(rename = "1m")]
    pub one_minute: AddedLatency,
    #[serde(rename = "5m")]
    pub five_minutes: AddedLatency,
    #[serde(rename = "15m")]
    pub fifteen_minutes: AddedLatency,
}

impl AddedLatencyFigures {
    pub fn between(upstream: &LatencyFigures, downstream: &LatencyFigures) -> Self {
        Self {
            all: AddedLatency::between(&upstream.all, &downstream.all),
            one_minute: AddedLatency::between(&upstream.one_minute, &downstream.one_minute),
            five_minutes: AddedLatency::between(&upstream.five_minutes, &downstream.five_minutes),
            fifteen_minutes: AddedLatency::between(
                &upstream.fifteen_minutes,
                &downstream.fifteen_minutes,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_040_000; // a whole minute

    fn within(value: Option<f64>, truth: f64) {
        let v = value.expect("a quantile");
        assert!(
            (v - truth).abs() <= truth * RELATIVE_ACCURACY + 1e-9,
            "{v} is not within 1 % of {truth}"
        );
    }

    #[test]
    fn quantiles_are_within_the_stated_relative_error_and_max_is_exact() {
        let mut l = WindowedLatency::default();
        // Latencies 1..=10,000 ms: the true p50 is 5,000 (rank 4,999.5), p99 9,900.
        for ms in 1..=10_000u64 {
            l.record(T0, T0 + ms);
        }
        let f = l.figures();
        assert_eq!(f.all.count, 10_000);
        within(f.all.p50_ms, 5_000.0);
        within(f.all.p90_ms, 9_000.0);
        within(f.all.p99_ms, 9_900.0);
        within(f.all.p999_ms, 9_990.0);
        assert_eq!(f.all.max_ms, Some(10_000.0));
    }

    #[test]
    fn arrival_before_the_origin_time_is_counted_apart_not_in_the_sketch() {
        let mut l = WindowedLatency::default();
        l.record(T0 + 5, T0);
        l.record(T0, T0); // zero latency is a latency
        let f = l.figures();
        assert_eq!((f.negative, f.all.count), (1, 1));
        assert_eq!(f.all.max_ms, Some(0.0));
    }

    #[test]
    fn windows_merge_the_current_minute_with_the_complete_minutes_before_it() {
        let mut l = WindowedLatency::default();
        l.record(T0, T0 + 1_000); // minute 0: 1 s
        l.record(T0 + 120_000, T0 + 120_000 + 50); // minute 2: 50 ms
        l.record(T0 + 180_000, T0 + 180_000 + 20); // minute 3 (current): 20 ms
        let f = l.figures();
        assert_eq!(f.one_minute.count, 2, "minute 2 and the current minute 3");
        assert_eq!(f.one_minute.max_ms, Some(50.0));
        assert_eq!(f.five_minutes.count, 3);
        assert_eq!(f.all.count, 3);
        // Twenty minutes on, only the cumulative figure remembers.
        l.rotate(T0 + 20 * 60_000);
        let f = l.figures();
        assert_eq!((f.fifteen_minutes.count, f.all.count), (0, 3));
        assert_eq!(f.all.max_ms, Some(1_000.0));
    }

    #[test]
    fn runs_of_one_latency_count_every_record_through_windows_and_merges() {
        let (mut runs, mut one_by_one) = (WindowedLatency::default(), Sketch::default());
        let mut at = T0;
        for (ms, times) in [(5u64, 300), (7, 1), (5, 200), (900, 2), (5, 1)] {
            for _ in 0..times {
                runs.record(at, at + ms);
                one_by_one.add(ms as f64);
            }
            at += 60_000; // each run in a minute of its own
        }
        assert_eq!(runs.figures().all, one_by_one.quantiles());
        assert_eq!(runs.figures().one_minute.count, 3, "the last two runs");
        // A run still open on both sides of a merge.
        let mut other = WindowedLatency::default();
        for _ in 0..10 {
            other.record(at, at + 5);
            one_by_one.add(5.0);
        }
        runs.merge(&other);
        assert_eq!(runs.figures().all, one_by_one.quantiles());
    }

    #[test]
    fn merged_sketches_answer_as_one_that_saw_everything() {
        let (mut a, mut b, mut both) = Default::default();
        let (a, b, both): (
            &mut WindowedLatency,
            &mut WindowedLatency,
            &mut WindowedLatency,
        ) = (&mut a, &mut b, &mut both);
        for ms in 0..500u64 {
            a.record(T0, T0 + ms);
            both.record(T0, T0 + ms);
        }
        for ms in 500..1_000u64 {
            b.record(T0 + 60_000, T0 + 60_000 + ms);
            both.record(T0 + 60_000, T0 + 60_000 + ms);
        }
        a.merge(b);
        assert_eq!(a.figures(), both.figures());
    }

    #[test]
    fn added_latency_is_the_difference_of_the_quantiles_within_the_stated_error() {
        let (mut up, mut down) = (WindowedLatency::default(), WindowedLatency::default());
        for ms in 100..=200u64 {
            up.record(T0, T0 + ms);
            down.record(T0, T0 + ms + 50);
        }
        let added = AddedLatencyFigures::between(&up.figures(), &down.figures());
        let p50 = added.all.p50_ms.unwrap();
        // True: 50 ms; error at most 1 % of 150 plus 1 % of 200.
        assert!((p50 - 50.0).abs() <= 3.5, "{p50}");
        assert!((added.one_minute.p99_ms.unwrap() - 50.0).abs() <= 0.01 * (199.0 + 249.0));
        assert_eq!(
            AddedLatency::between(&Quantiles::default(), &down.figures().all),
            AddedLatency::default()
        );
    }
}

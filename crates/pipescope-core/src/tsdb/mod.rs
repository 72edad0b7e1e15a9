//! The arithmetic of the embedded time-series store: resolutions and their buckets, roll-up
//! aggregates, the choice of a resolution for a query, down-sampling to a step, and label
//! matchers. The store itself (SQLite, threads) lives in the binary.

pub mod chunk;
pub mod matcher;
pub mod time_param;

use std::collections::BTreeMap;
use std::fmt;

use crate::clock::EpochMillis;

pub use matcher::{MatchOp, Matcher, MatcherError, parse_selector};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;

/// The resolutions the store keeps, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// Every sample as it came.
    Raw,
    /// One aggregate per series per minute.
    Minute,
    /// One aggregate per series per hour.
    Hour,
}

impl Resolution {
    /// Finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Raw, Resolution::Minute, Resolution::Hour];

    /// Width of one bucket; raw samples count as 1 ms buckets.
    pub fn bucket_ms(self) -> u64 {
        match self {
            Resolution::Raw => 1,
            Resolution::Minute => MINUTE_MS,
            Resolution::Hour => HOUR_MS,
        }
    }

    /// Start of the bucket that holds `time_ms`.
    pub fn bucket_start(self, time_ms: EpochMillis) -> EpochMillis {
        bucket_start(time_ms, self.bucket_ms())
    }

    pub fn name(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Start of the `width_ms` bucket (aligned to the epoch) that holds `time_ms`. A width of 0 is
/// treated as 1 so that no input divides by zero.
pub fn bucket_start(time_ms: EpochMillis, width_ms: u64) -> EpochMillis {
    let width = width_ms.max(1);
    time_ms - time_ms % width
}

/// How long each resolution is kept, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw_ms: u64,
    pub minute_ms: u64,
    pub hour_ms: u64,
}

impl Default for Retention {
    /// Raw 24 hours, 1-minute 30 days, 1-hour one year.
    fn default() -> Self {
        Self {
            raw_ms: 24 * HOUR_MS,
            minute_ms: 30 * 24 * HOUR_MS,
            hour_ms: 365 * 24 * HOUR_MS,
        }
    }
}

impl Retention {
    pub fn of(&self, resolution: Resolution) -> u64 {
        match resolution {
            Resolution::Raw => self.raw_ms,
            Resolution::Minute => self.minute_ms,
            Resolution::Hour => self.hour_ms,
        }
    }

    /// Data of `resolution` older than this (exclusive) is deleted at `now_ms`.
    pub fn cutoff(&self, resolution: Resolution, now_ms: EpochMillis) -> EpochMillis {
        now_ms.saturating_sub(self.of(resolution))
    }
}

/// The resolution a range query reads: the coarsest whose buckets fit in `step_ms` (fewest rows
/// for the points asked for), moved to a coarser one when that resolution no longer holds data as
/// old as `from_ms`.
pub fn choose_resolution(
    from_ms: EpochMillis,
    step_ms: u64,
    now_ms: EpochMillis,
    retention: &Retention,
) -> Resolution {
    let preferred = Resolution::ALL
        .into_iter()
        .rev()
        .find(|r| r.bucket_ms() <= step_ms)
        .unwrap_or(Resolution::Raw);
    Resolution::ALL
        .into_iter()
        .filter(|r| *r >= preferred)
        .find(|r| from_ms >= retention.cutoff(*r, now_ms))
        .unwrap_or(Resolution::Hour)
}

/// Count, sum, min, max and the last value (by time) of the samples in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    /// Time of `last`, so merging keeps the newest value whatever the order of arrival.
    pub last_ms: EpochMillis,
}

impl Aggregate {
    pub fn single(time_ms: EpochMillis, value: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
            last_ms: time_ms,
        }
    }

    pub fn add(&mut self, time_ms: EpochMillis, value: f64) {
        self.merge(&Self::single(time_ms, value));
    }

    /// Combines two aggregates of the same bucket. Of two "last" values at the same time the
    /// one merged in wins, as a later write of the same sample would.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if other.last_ms >= self.last_ms {
            self.last = other.last;
            self.last_ms = other.last_ms;
        }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }

    pub fn get(&self, function: AggregateFn) -> f64 {
        match function {
            AggregateFn::Avg => self.avg(),
            AggregateFn::Min => self.min,
            AggregateFn::Max => self.max,
            AggregateFn::Last => self.last,
            AggregateFn::Sum => self.sum,
            AggregateFn::Count => self.count as f64,
        }
    }
}

/// Which part of an aggregate a query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AggregateFn {
    #[default]
    Avg,
    Min,
    Max,
    Last,
    Sum,
    Count,
}

impl std::str::FromStr for AggregateFn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "avg" => AggregateFn::Avg,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            "last" => AggregateFn::Last,
            "sum" => AggregateFn::Sum,
            "count" => AggregateFn::Count,
            other => {
                return Err(format!(
                    "unknown aggregate {other:?}: use avg, min, max, last, sum or count"
                ));
            }
        })
    }
}

/// Rolls samples up into one aggregate per run of samples with the same key in the same bucket
/// of `resolution`. For samples sorted by key and time (as the store writes them) that is one
/// aggregate per key per bucket, made as it goes: nothing is held but the aggregate being made.
/// Unsorted samples give several aggregates of a key and bucket, which merge to the same.
pub fn roll_up<K: PartialEq>(
    samples: impl IntoIterator<Item = (K, EpochMillis, f64)>,
    resolution: Resolution,
) -> impl Iterator<Item = ((K, EpochMillis), Aggregate)> {
    let mut samples = samples.into_iter().peekable();
    std::iter::from_fn(move || {
        let (key, time_ms, value) = samples.next()?;
        let bucket = resolution.bucket_start(time_ms);
        let mut aggregate = Aggregate::single(time_ms, value);
        while let Some((_, time_ms, value)) = samples.next_if(|(next, time_ms, _)| {
            *next == key && resolution.bucket_start(*time_ms) == bucket
        }) {
            aggregate.add(time_ms, value);
        }
        Some(((key, bucket), aggregate))
    })
}

/// Groups points (in any order) into `step_ms` buckets aligned to the epoch, keeping only those
/// inside `[from_ms, to_ms]`; the result is sorted by bucket start.
pub fn downsample(
    points: impl IntoIterator<Item = (EpochMillis, Aggregate)>,
    from_ms: EpochMillis,
    to_ms: EpochMillis,
    step_ms: u64,
) -> Vec<(EpochMillis, Aggregate)> {
    let mut buckets: BTreeMap<EpochMillis, Aggregate> = BTreeMap::new();
    for (time_ms, aggregate) in points {
        if time_ms < from_ms || time_ms > to_ms {
            continue;
        }
        buckets
            .entry(bucket_start(time_ms, step_ms))
            .and_modify(|a| a.merge(&aggregate))
            .or_insert(aggregate);
    }
    buckets.into_iter().collect()
}

/// Splits `[from_ms, to_ms]` (inclusive) into pieces that each come whole from one
/// resolution: whole hours from the 1-hour roll-ups, whole minutes from the 1-minute ones, the
/// rest from raw rows. Their aggregates together are exactly those of the raw rows (the roll-ups
/// are written in the same transactions), from far fewer rows. In time order.
pub fn split_exact(
    from_ms: EpochMillis,
    to_ms: EpochMillis,
) -> Vec<(Resolution, EpochMillis, EpochMillis)> {
    fn split(
        out: &mut Vec<(Resolution, EpochMillis, EpochMillis)>,
        from: EpochMillis,
        to: EpochMillis,
        levels: &[Resolution],
    ) {
        if from > to {
            return;
        }
        let Some((&level, finer)) = levels.split_first() else {
            out.push((Resolution::Raw, from, to));
            return;
        };
        let width = level.bucket_ms();
        let first = from.div_ceil(width) * width;
        let end = to.saturating_add(1) / width * width;
        if first >= end {
            return split(out, from, to, finer);
        }
        if from < first {
            split(out, from, first - 1, finer);
        }
        out.push((level, first, end - 1));
        if end <= to {
            split(out, end, to, finer);
        }
    }
    let mut out = Vec::new();
    split(
        &mut out,
        from_ms,
        to_ms,
        &[Resolution::Hour, Resolution::Minute],
    );
    out
}

/// The `n` entries with the highest values, highest first; NaN values are left out and ties
/// keep their input order.
pub fn top_n<T>(entries: impl IntoIterator<Item = (T, f64)>, n: usize) -> Vec<(T, f64)> {
    let mut entries: Vec<(T, f64)> = entries.into_iter().filter(|e| !e.1.is_nan()).collect();
    entries.sort_by(|a, b| b.1.total_cmp(&a.1));
    entries.truncate(n);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_whole_hours_whole_minutes_and_raw_edges() {
        const M: u64 = 60_000;
        const H: u64 = 3_600_000;
        use Resolution::{Hour, Minute, Raw};
        // exactly one hour, plus the millisecond at its end
        assert_eq!(
            split_exact(10 * H, 11 * H),
            vec![(Hour, 10 * H, 11 * H - 1), (Raw, 11 * H, 11 * H)]
        );
        // an unaligned hour: minutes and raw edges, no whole hour
        assert_eq!(
            split_exact(10 * H + 30_500, 11 * H + 30_500),
            vec![
                (Raw, 10 * H + 30_500, 10 * H + M - 1),
                (Minute, 10 * H + M, 11 * H - 1),
                (Raw, 11 * H, 11 * H + 30_500),
            ]
        );
        // two days and a bit: hours in the middle, minutes and raw on both sides
        assert_eq!(
            split_exact(H - M - 1, 49 * H + M + 5),
            vec![
                (Raw, H - M - 1, H - M - 1),
                (Minute, H - M, H - 1),
                (Hour, H, 49 * H - 1),
                (Minute, 49 * H, 49 * H + M - 1),
                (Raw, 49 * H + M, 49 * H + M + 5),
            ]
        );
        // less than a minute: raw only
        assert_eq!(split_exact(5, 59_000), vec![(Raw, 5, 59_000)]);
        assert_eq!(split_exact(7, 6), vec![]);
    }

    #[test]
    fn buckets_are_aligned_to_the_epoch() {
        assert_eq!(Resolution::Minute.bucket_start(119_999), 60_000);
        assert_eq!(Resolution::Minute.bucket_start(120_000), 120_000);
        assert_eq!(Resolution::Hour.bucket_start(7_199_999), 3_600_000);
        assert_eq!(Resolution::Raw.bucket_start(12_345), 12_345);
        assert_eq!(bucket_start(12_345, 0), 12_345);
        assert_eq!(bucket_start(12_345, 10_000), 10_000);
    }

    #[test]
    fn default_retention_is_a_day_a_month_and_a_year() {
        let r = Retention::default();
        assert_eq!(r.raw_ms, 86_400_000);
        assert_eq!(r.minute_ms, 2_592_000_000);
        assert_eq!(r.hour_ms, 31_536_000_000);
        assert_eq!(r.cutoff(Resolution::Raw, 100_000_000), 13_600_000);
        assert_eq!(r.cutoff(Resolution::Hour, 5), 0);
    }

    #[test]
    fn the_step_picks_the_coarsest_resolution_that_fits() {
        let r = Retention::default();
        let now = 1_000 * HOUR_MS;
        let an_hour_ago = now - HOUR_MS;
        assert_eq!(
            choose_resolution(an_hour_ago, 1_000, now, &r),
            Resolution::Raw
        );
        assert_eq!(
            choose_resolution(an_hour_ago, 59_999, now, &r),
            Resolution::Raw
        );
        assert_eq!(
            choose_resolution(an_hour_ago, 60_000, now, &r),
            Resolution::Minute
        );
        assert_eq!(
            choose_resolution(an_hour_ago, 300_000, now, &r),
            Resolution::Minute
        );
        assert_eq!(
            choose_resolution(an_hour_ago, HOUR_MS, now, &r),
            Resolution::Hour
        );
    }

    #[test]
    fn a_start_older_than_the_retention_moves_to_a_coarser_resolution() {
        let r = Retention::default();
        let now = 10_000 * HOUR_MS;
        // 25 hours ago: raw data no longer goes back that far.
        assert_eq!(
            choose_resolution(now - 25 * HOUR_MS, 1_000, now, &r),
            Resolution::Minute
        );
        // exactly at the raw cutoff: raw still holds it.
        assert_eq!(
            choose_resolution(now - 24 * HOUR_MS, 1_000, now, &r),
            Resolution::Raw
        );
        // 31 days ago: only hours are left.
        assert_eq!(
            choose_resolution(now - 31 * 24 * HOUR_MS, 60_000, now, &r),
            Resolution::Hour
        );
        // older than everything: hours, the longest kept.
        assert_eq!(choose_resolution(0, 1_000, now, &r), Resolution::Hour);
    }

    #[test]
    fn aggregates_keep_count_sum_min_max_and_the_newest_last() {
        let mut a = Aggregate::single(1_000, 5.0);
        a.add(3_000, 1.0);
        a.add(2_000, 9.0); // arrives late: not the last value
        assert_eq!(
            a,
            Aggregate {
                count: 3,
                sum: 15.0,
                min: 1.0,
                max: 9.0,
                last: 1.0,
                last_ms: 3_000
            }
        );
        assert_eq!(a.avg(), 5.0);
        assert_eq!(a.get(AggregateFn::Count), 3.0);
        let mut b = Aggregate::single(4_000, -2.0);
        b.merge(&a);
        assert_eq!((b.count, b.sum, b.min, b.max), (4, 13.0, -2.0, 9.0));
        assert_eq!((b.last, b.last_ms), (-2.0, 4_000));
    }

    #[test]
    fn roll_up_groups_by_key_and_bucket() {
        let rolled: Vec<_> = roll_up(
            [
                ("a", 60_000, 1.0),
                ("a", 119_000, 3.0),
                ("a", 120_000, 10.0),
                ("b", 61_000, 7.0),
            ],
            Resolution::Minute,
        )
        .collect();
        let keys: Vec<_> = rolled.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [("a", 60_000), ("a", 120_000), ("b", 60_000)]);
        let a0 = rolled[0].1;
        assert_eq!(
            (a0.count, a0.avg(), a0.last, a0.last_ms),
            (2, 2.0, 3.0, 119_000)
        );
        assert_eq!((rolled[1].1.count, rolled[2].1.count), (1, 1));
    }

    #[test]
    fn unsorted_samples_roll_up_into_aggregates_that_merge_to_the_sorted_ones() {
        let samples = [("a", 60_000, 1.0), ("b", 61_000, 7.0), ("a", 119_000, 3.0)];
        let rolled: Vec<_> = roll_up(samples, Resolution::Minute).collect();
        assert_eq!(rolled.len(), 3);
        let mut a = rolled[0].1;
        a.merge(&rolled[2].1);
        assert_eq!((a.count, a.sum, a.last, a.last_ms), (2, 4.0, 3.0, 119_000));
    }

    #[test]
    fn downsample_merges_into_steps_within_the_range() {
        let points = [
            (10_000, Aggregate::single(10_000, 1.0)),
            (5_000, Aggregate::single(5_000, 100.0)), // before from
            (24_999, Aggregate::single(24_999, 3.0)),
            (20_000, Aggregate::single(20_000, 5.0)),
            (40_001, Aggregate::single(40_001, 9.0)), // after to
        ];
        let out = downsample(points, 10_000, 40_000, 10_000);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, 10_000);
        assert_eq!(out[0].1.count, 1);
        assert_eq!(out[1].0, 20_000);
        assert_eq!(
            (out[1].1.count, out[1].1.avg(), out[1].1.last),
            (2, 4.0, 3.0)
        );
    }

    #[test]
    fn top_n_sorts_high_first_and_drops_nan() {
        let top = top_n([("a", 1.0), ("b", f64::NAN), ("c", 7.0), ("d", 3.0)], 2);
        assert_eq!(top, [("c", 7.0), ("d", 3.0)]);
        assert!(top_n(Vec::<(u8, f64)>::new(), 3).is_empty());
    }

    #[test]
    fn aggregate_names_parse() {
        assert_eq!("max".parse::<AggregateFn>(), Ok(AggregateFn::Max));
        assert!(
            "median"
                .parse::<AggregateFn>()
                .unwrap_err()
                .contains("median")
        );
    }
}

//! Consumer lag of one partition: in offsets (never negative), in seconds (exact or estimated),
//! and the time to catch up.

use serde::Serialize;

use crate::clock::EpochMillis;
use crate::kafka::rate::EndOffsetHistory;
use crate::kafka::verdict::WindowRates;

/// How a lag in offsets was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LagNote {
    /// `latest - committed`, at or above 0 as read.
    Measured,
    /// The committed offset was a little past the end offset read in the same scrape: a commit
    /// landed between the two reads. The lag is reported as 0 and the event counted.
    ClampedCommitRace,
    /// The committed offset is beyond the end offset in a way no read race explains (see
    /// [`lag_offsets`]): the broker's end offset is wrong, or the group committed offsets the
    /// log never had. No lag is reported: "committed offset beyond end offset".
    CommittedBeyondEnd,
    /// The partition's end offset is unknown this scrape: its leader failed to answer, or the
    /// end offset went back and is held until the next scrape tells why.
    EndOffsetUnknown,
}

impl LagNote {
    /// What to show beside (or instead of) the number, in the words the monitor uses.
    pub fn message(self) -> Option<&'static str> {
        match self {
            LagNote::Measured => None,
            LagNote::ClampedCommitRace => Some("commit landed after the end offset was read"),
            LagNote::CommittedBeyondEnd => Some("committed offset beyond end offset"),
            LagNote::EndOffsetUnknown => Some("end offset unknown this scrape"),
        }
    }
}

/// A lag in offsets and how it was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OffsetLag {
    /// Records the group has yet to consume; `None` when it cannot be told (see `note`).
    pub offsets: Option<i64>,
    pub note: LagNote,
}

/// The lag of a committed offset against the end offset read in the same scrape.
///
/// Never negative. When `committed > latest` the rule is:
/// - **committed offset beyond end offset** when the overshoot is larger than the whole growth
///   of the log end over the previous scrape interval (`end_growth_since_previous`), or when the
///   previous scrape of this group and partition was already past the end
///   (`was_past_end_last_scrape`). A commit racing the end-offset read can only overshoot by the
///   records appended between the two reads of one scrape — far less than a whole interval's
///   growth — and the next scrape's end offset has moved past it again. So an overshoot that is
///   too large or that persists means the end offset is wrong (tansu's memory engine reports the
///   last batch's base offset + 1) or the commits are: the lag is unknown, not a confident 0;
/// - otherwise a **commit race**: lag 0, noted so the caller counts it.
pub fn lag_offsets(
    committed: i64,
    latest: i64,
    end_growth_since_previous: Option<i64>,
    was_past_end_last_scrape: bool,
) -> OffsetLag {
    if committed <= latest {
        return OffsetLag {
            offsets: Some(latest - committed),
            note: LagNote::Measured,
        };
    }
    let overshoot = committed - latest;
    let too_far = end_growth_since_previous.is_some_and(|growth| overshoot > growth);
    if too_far || was_past_end_last_scrape {
        OffsetLag {
            offsets: None,
            note: LagNote::CommittedBeyondEnd,
        }
    } else {
        OffsetLag {
            offsets: Some(0),
            note: LagNote::ClampedCommitRace,
        }
    }
}

/// How a lag in seconds was obtained.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LagSecondsBasis {
    /// From the timestamp of the record at the committed offset (or 0 because the lag is 0).
    Exact,
    /// Interpolated over the partition's (time, end offset) readings: when did the log end pass
    /// the committed offset?
    Estimated,
    /// Neither a record timestamp nor readings that reach back to the committed offset.
    Unknown,
}

/// How far behind in time a consumer is: now minus the time of the oldest record it has not
/// consumed yet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagSeconds {
    pub seconds: Option<f64>,
    pub basis: LagSecondsBasis,
    /// For an estimate, the seconds between the two end-offset readings it was interpolated
    /// between: the log end passed the committed offset somewhere in that span, so the estimate
    /// is off by at most that much. `None` unless estimated.
    pub interpolated_over_s: Option<f64>,
}

impl LagSeconds {
    pub const UNKNOWN: LagSeconds = LagSeconds {
        seconds: None,
        basis: LagSecondsBasis::Unknown,
        interpolated_over_s: None,
    };

    /// An exact lag of `seconds`.
    pub const fn exact(seconds: f64) -> LagSeconds {
        LagSeconds {
            seconds: Some(seconds),
            basis: LagSecondsBasis::Exact,
            interpolated_over_s: None,
        }
    }

    pub fn is_estimated(&self) -> bool {
        self.basis == LagSecondsBasis::Estimated
    }
}

/// When the log end passed an offset, as read from the end-offset history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndPassed {
    /// The last time the log end was at the offset: interpolated linearly between the last
    /// reading at or below it and the next reading above it.
    pub time_ms: EpochMillis,
    /// The time between those two readings (the interpolation's span).
    pub span_ms: u64,
}

/// When the log end was last at `offset`, from `history` as of `now_ms`; `None` when no reading
/// is at or below `offset` — the history does not reach back that far, and nothing is
/// extrapolated beyond its oldest reading. When `offset` is at or past the newest reading, the
/// log end passed it after that reading: the newest reading's time, over the span up to now.
pub fn end_passed(
    history: &EndOffsetHistory,
    offset: i64,
    now_ms: EpochMillis,
) -> Option<EndPassed> {
    // Log ends are non-decreasing in time: the readings at or below `offset` come first.
    let mut before = None;
    let mut after = None;
    for point in history.points() {
        if point.latest <= offset {
            before = Some(point);
        } else {
            after = Some(point);
            break;
        }
    }
    let before = before?;
    let Some(after) = after else {
        return Some(EndPassed {
            time_ms: before.time_ms,
            span_ms: now_ms.saturating_sub(before.time_ms),
        });
    };
    let fraction = (offset - before.latest) as f64 / (after.latest - before.latest) as f64;
    let span_ms = after.time_ms.saturating_sub(before.time_ms);
    Some(EndPassed {
        time_ms: before.time_ms + (fraction * span_ms as f64).round() as EpochMillis,
        span_ms,
    })
}

/// Lag in seconds at `now_ms`, never negative (clock skew between hosts is clamped to 0):
/// - lag 0 → exactly 0 s;
/// - the record at the committed offset has timestamp `record_time_ms` → `now − that`, exact;
/// - otherwise `now −` the last time the log end was at the committed offset, interpolated over
///   `history` ([`end_passed`]), estimated, with the span it was interpolated over; unknown when
///   the history does not reach back that far (never extrapolated past its oldest reading).
pub fn lag_seconds(
    now_ms: EpochMillis,
    lag_offsets: i64,
    committed: i64,
    record_time_ms: Option<EpochMillis>,
    history: &EndOffsetHistory,
) -> LagSeconds {
    lag_millis(now_ms, lag_offsets, committed, record_time_ms, history).seconds()
}

/// [`lag_seconds`] in the whole milliseconds it is computed from.
pub fn lag_millis(
    now_ms: EpochMillis,
    lag_offsets: i64,
    committed: i64,
    record_time_ms: Option<EpochMillis>,
    history: &EndOffsetHistory,
) -> LagMillis {
    if lag_offsets <= 0 {
        return LagMillis::Exact { lag_ms: 0 };
    }
    if let Some(t) = record_time_ms {
        return LagMillis::Exact {
            lag_ms: now_ms.saturating_sub(t),
        };
    }
    match end_passed(history, committed, now_ms) {
        Some(passed) => LagMillis::Estimated {
            lag_ms: now_ms.saturating_sub(passed.time_ms),
            interpolated_over_ms: passed.span_ms,
        },
        None => LagMillis::Unknown,
    }
}

/// A lag in seconds as the analyzer keeps it between scrapes: in whole milliseconds, which
/// [`LagMillis::seconds`] turns into exactly the [`LagSeconds`] that [`lag_seconds`] gives, in
/// 24 bytes instead of 40 (one per group partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagMillis {
    Unknown,
    Exact {
        lag_ms: u64,
    },
    Estimated {
        lag_ms: u64,
        interpolated_over_ms: u64,
    },
}

impl LagMillis {
    pub fn seconds(self) -> LagSeconds {
        let seconds = |ms: u64| ms as f64 / 1000.0;
        match self {
            LagMillis::Unknown => LagSeconds::UNKNOWN,
            LagMillis::Exact { lag_ms } => LagSeconds::exact(seconds(lag_ms)),
            LagMillis::Estimated {
                lag_ms,
                interpolated_over_ms,
            } => LagSeconds {
                seconds: Some(seconds(lag_ms)),
                basis: LagSecondsBasis::Estimated,
                interpolated_over_s: Some(seconds(interpolated_over_ms)),
            },
        }
    }
}

/// When a consumer will have caught up with its partition's log end.
///
/// `rates_over_s` is the span of the consume and produce rates the answer was taken from (the
/// verdict window since its last rewind), and `rates_over_intervals` the scrape intervals in it:
/// 1 means the rates come from two scrapes only.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CatchUp {
    /// Lag is 0.
    CaughtUp,
    /// At the rates over the last `rates_over_s`, in this many seconds.
    InSeconds {
        seconds: f64,
        rates_over_s: f64,
        rates_over_intervals: u32,
    },
    /// Over the last `rates_over_s` the consumer read no faster than producers wrote: the lag
    /// will not shrink.
    FallingBehind {
        rates_over_s: f64,
        rates_over_intervals: u32,
    },
    /// Rates are not known yet (fewer than two observations since the start or the last rewind).
    Unknown,
}

/// Time to catch up: `lag / (consume rate − produce rate)`, from the rate at which the committed
/// offset moved and the rate at which the log end moved over the same span (`rates`, from
/// [`crate::kafka::verdict::LagWindow::rates`]), in records per second.
pub fn catch_up(lag_offsets: Option<i64>, rates: Option<WindowRates>) -> CatchUp {
    let Some(lag) = lag_offsets else {
        return CatchUp::Unknown;
    };
    if lag <= 0 {
        return CatchUp::CaughtUp;
    }
    let Some(rates) = rates else {
        return CatchUp::Unknown;
    };
    let rates_over_s = rates.over_ms as f64 / 1000.0;
    let rates_over_intervals = u32::try_from(rates.intervals).unwrap_or(u32::MAX);
    let gain = rates.consume_per_second - rates.produce_per_second;
    if gain <= 0.0 {
        CatchUp::FallingBehind {
            rates_over_s,
            rates_over_intervals,
        }
    } else {
        CatchUp::InSeconds {
            seconds: lag as f64 / gain,
            rates_over_s,
            rates_over_intervals,
        }
    }
}

/// Processing skew of a group: how far its worst partition is behind the group's typical one
/// ("one partition is late"). `offsets` = worst lag − median lag, over the partitions whose lag
/// is known; the median of an even count is the mean of the two middle lags.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LagSkew {
    /// Worst lag minus the median lag (0 when every partition lags alike, or with one partition).
    pub offsets: f64,
    pub median_lag_offsets: f64,
    pub worst_lag_offsets: i64,
    /// Index, in the lags given to [`lag_skew`], of the worst partition (the first of equals).
    #[serde(skip)]
    pub worst_index: usize,
}

/// The skew of `lags` (one known lag per partition); `None` when there is none.
pub fn lag_skew(lags: &[i64]) -> Option<LagSkew> {
    let (worst_index, &worst) = lags
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?;
    let mut sorted = lags.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 {
        sorted[mid] as f64
    } else {
        (sorted[mid - 1] as f64 + sorted[mid] as f64) / 2.0
    };
    Some(LagSkew {
        offsets: worst as f64 - median,
        median_lag_offsets: median,
        worst_lag_offsets: worst,
        worst_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_the_worst_lag_against_the_median() {
        let skew = lag_skew(&[10, 12, 500, 11, 9]).unwrap();
        assert_eq!(skew.median_lag_offsets, 11.0);
        assert_eq!(skew.worst_lag_offsets, 500);
        assert_eq!(skew.offsets, 489.0);
        assert_eq!(skew.worst_index, 2);
    }

    #[test]
    fn skew_of_an_even_count_takes_the_mean_of_the_middle_two() {
        let skew = lag_skew(&[0, 3, 4, 100]).unwrap();
        assert_eq!(skew.median_lag_offsets, 3.5);
        assert_eq!(skew.offsets, 96.5);
        assert_eq!(skew.worst_index, 3);
    }

    #[test]
    fn skew_is_zero_when_partitions_lag_alike_or_alone_and_none_without_lags() {
        assert_eq!(lag_skew(&[7, 7, 7]).unwrap().offsets, 0.0);
        assert_eq!(lag_skew(&[7, 7, 7]).unwrap().worst_index, 0);
        let alone = lag_skew(&[42]).unwrap();
        assert_eq!((alone.offsets, alone.worst_lag_offsets), (0.0, 42));
        assert_eq!(lag_skew(&[]), None);
    }
    use crate::kafka::rate::EndOffsetPoint;

    #[test]
    fn lag_is_end_minus_committed() {
        assert_eq!(
            lag_offsets(40, 100, Some(10), false),
            OffsetLag {
                offsets: Some(60),
                note: LagNote::Measured
            }
        );
        assert_eq!(lag_offsets(100, 100, None, false).offsets, Some(0));
    }

    #[test]
    fn small_overshoot_is_a_commit_race_clamped_to_zero() {
        // The log grew by 500 over the last interval; the commit is 3 past the end read.
        let lag = lag_offsets(103, 100, Some(500), false);
        assert_eq!(
            lag,
            OffsetLag {
                offsets: Some(0),
                note: LagNote::ClampedCommitRace
            }
        );
        // First scrape of the partition: no growth known yet, benefit of the doubt.
        assert_eq!(
            lag_offsets(103, 100, None, false).note,
            LagNote::ClampedCommitRace
        );
    }

    #[test]
    fn overshoot_larger_than_the_interval_growth_is_beyond_end() {
        // tansu's memory engine: end offset stuck at a batch base while the group is far ahead.
        let lag = lag_offsets(1_500, 100, Some(20), false);
        assert_eq!(
            lag,
            OffsetLag {
                offsets: None,
                note: LagNote::CommittedBeyondEnd
            }
        );
        // Idle log: no race can put a commit past an end that did not move.
        assert_eq!(
            lag_offsets(101, 100, Some(0), false).note,
            LagNote::CommittedBeyondEnd
        );
    }

    #[test]
    fn beyond_end_says_so_in_words() {
        let note = lag_offsets(1_500, 100, Some(20), false).note;
        assert_eq!(note.message(), Some("committed offset beyond end offset"));
        assert_eq!(LagNote::Measured.message(), None);
    }

    #[test]
    fn overshoot_that_persists_is_beyond_end() {
        assert_eq!(
            lag_offsets(103, 100, Some(500), true).note,
            LagNote::CommittedBeyondEnd
        );
        // Back under the end: measured again.
        assert_eq!(
            lag_offsets(90, 100, Some(500), true).note,
            LagNote::Measured
        );
    }

    fn history() -> EndOffsetHistory {
        EndOffsetHistory::from_points(
            10,
            [(0, 100), (10_000, 200), (20_000, 300)]
                .map(|(time_ms, latest)| EndOffsetPoint { time_ms, latest }),
        )
    }

    #[test]
    fn lag_seconds_is_exact_from_the_record_timestamp() {
        let s = lag_seconds(30_000, 50, 250, Some(12_500), &history());
        assert_eq!(s, LagSeconds::exact(17.5));
        assert_eq!(s.basis, LagSecondsBasis::Exact);
        assert_eq!(s.interpolated_over_s, None);
    }

    #[test]
    fn lag_seconds_clamps_a_record_from_the_future_to_zero() {
        let s = lag_seconds(30_000, 50, 250, Some(31_000), &history());
        assert_eq!(s.seconds, Some(0.0));
    }

    #[test]
    fn lag_seconds_is_estimated_from_history_without_a_timestamp() {
        // Log end was at 250 at 15 s (interpolated between the readings at 10 s and 20 s):
        // 15 s behind at 30 s, give or take the 10 s between those readings.
        let s = lag_seconds(30_000, 50, 250, None, &history());
        assert_eq!(
            s,
            LagSeconds {
                seconds: Some(15.0),
                basis: LagSecondsBasis::Estimated,
                interpolated_over_s: Some(10.0),
            }
        );
        assert!(s.is_estimated());
    }

    #[test]
    fn a_committed_offset_on_a_reading_is_the_last_time_the_end_was_there() {
        // A flat run: the end sat at 200 from 10 s to 20 s, then moved on.
        let flat = EndOffsetHistory::from_points(
            10,
            [(0, 100), (10_000, 200), (20_000, 200), (30_000, 300)]
                .map(|(time_ms, latest)| EndOffsetPoint { time_ms, latest }),
        );
        assert_eq!(
            end_passed(&flat, 200, 40_000),
            Some(EndPassed {
                time_ms: 20_000,
                span_ms: 10_000
            })
        );
    }

    #[test]
    fn lag_seconds_is_unknown_when_the_history_does_not_reach_back() {
        // The oldest reading (100 at 0 s) is past the committed offset: when the end was at 50
        // is not in the history, and is not extrapolated from the readings after it.
        assert_eq!(
            lag_seconds(30_000, 250, 50, None, &history()),
            LagSeconds::UNKNOWN
        );
        // Not even by one record.
        assert_eq!(
            lag_seconds(30_000, 201, 99, None, &history()),
            LagSeconds::UNKNOWN
        );
        assert_eq!(end_passed(&history(), 99, 30_000), None);
        // No history at all.
        assert_eq!(
            lag_seconds(30_000, 5, 295, None, &EndOffsetHistory::new(10)),
            LagSeconds::UNKNOWN
        );
        // The oldest reading itself is far enough.
        assert_eq!(
            lag_seconds(30_000, 200, 100, None, &history()).seconds,
            Some(30.0)
        );
    }

    #[test]
    fn an_offset_past_the_newest_reading_was_passed_since_that_reading() {
        assert_eq!(
            end_passed(&history(), 300, 25_000),
            Some(EndPassed {
                time_ms: 20_000,
                span_ms: 5_000
            })
        );
    }

    #[test]
    fn zero_lag_is_zero_seconds_exactly() {
        let s = lag_seconds(30_000, 0, 300, None, &EndOffsetHistory::new(2));
        assert_eq!(s, LagSeconds::exact(0.0));
    }

    fn rates(consume: f64, produce: f64, over_ms: u64, intervals: usize) -> Option<WindowRates> {
        Some(WindowRates {
            consume_per_second: consume,
            produce_per_second: produce,
            over_ms,
            intervals,
        })
    }

    #[test]
    fn catch_up_from_consume_and_produce_rates_says_what_span_they_are_over() {
        assert_eq!(
            catch_up(Some(1_000), rates(150.0, 50.0, 45_000, 9)),
            CatchUp::InSeconds {
                seconds: 10.0,
                rates_over_s: 45.0,
                rates_over_intervals: 9
            }
        );
        assert_eq!(
            catch_up(Some(1_000), rates(50.0, 50.0, 5_000, 1)),
            CatchUp::FallingBehind {
                rates_over_s: 5.0,
                rates_over_intervals: 1
            }
        );
        assert_eq!(
            catch_up(Some(1_000), rates(10.0, 50.0, 10_000, 2)),
            CatchUp::FallingBehind {
                rates_over_s: 10.0,
                rates_over_intervals: 2
            }
        );
        assert_eq!(catch_up(Some(0), None), CatchUp::CaughtUp);
        assert_eq!(catch_up(Some(5), None), CatchUp::Unknown);
        assert_eq!(catch_up(None, rates(5.0, 1.0, 5_000, 1)), CatchUp::Unknown);
    }

    #[test]
    fn catch_up_serializes_its_span() {
        let json = serde_json::to_value(catch_up(Some(100), rates(20.0, 10.0, 20_000, 4))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "state": "in_seconds",
                "seconds": 10.0,
                "rates_over_s": 20.0,
                "rates_over_intervals": 4
            })
        );
    }
}

//! Consumer lag of one partition: in offsets (never negative), in seconds (exact or estimated),
//! and the time to catch up.

use serde::Serialize;

use crate::clock::EpochMillis;
use crate::kafka::rate::EndOffsetHistory;

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
    /// Interpolated over the partition's (time, end offset) history: when was the log end at the
    /// committed offset?
    Estimated,
    /// Neither a record timestamp nor enough history.
    Unknown,
}

/// How far behind in time a consumer is: now minus the time of the oldest record it has not
/// consumed yet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagSeconds {
    pub seconds: Option<f64>,
    pub basis: LagSecondsBasis,
}

impl LagSeconds {
    pub const UNKNOWN: LagSeconds = LagSeconds {
        seconds: None,
        basis: LagSecondsBasis::Unknown,
    };

    pub fn is_estimated(&self) -> bool {
        self.basis == LagSecondsBasis::Estimated
    }
}

/// Lag in seconds at `now_ms`, never negative (clock skew between hosts is clamped to 0):
/// - lag 0 → exactly 0 s;
/// - the record at the committed offset has timestamp `record_time_ms` → `now − that`, exact;
/// - otherwise `now −` the last time the log end was at the committed offset (from `history`),
///   estimated; unknown when the history does not reach back that far.
pub fn lag_seconds(
    now_ms: EpochMillis,
    lag_offsets: i64,
    committed: i64,
    record_time_ms: Option<EpochMillis>,
    history: &EndOffsetHistory,
) -> LagSeconds {
    let since = |t: EpochMillis| Some(now_ms.saturating_sub(t) as f64 / 1000.0);
    if lag_offsets <= 0 {
        return LagSeconds {
            seconds: Some(0.0),
            basis: LagSecondsBasis::Exact,
        };
    }
    if let Some(t) = record_time_ms {
        return LagSeconds {
            seconds: since(t),
            basis: LagSecondsBasis::Exact,
        };
    }
    match history.time_at_offset(committed) {
        Some(t) => LagSeconds {
            seconds: since(t),
            basis: LagSecondsBasis::Estimated,
        },
        None => LagSeconds::UNKNOWN,
    }
}

/// When a consumer will have caught up with its partition's log end.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CatchUp {
    /// Lag is 0.
    CaughtUp,
    /// At the current rates, in this many seconds.
    InSeconds { seconds: f64 },
    /// The consumer reads no faster than producers write: the lag will not shrink.
    FallingBehind,
    /// Rates are not known yet.
    Unknown,
}

/// Time to catch up: `lag / (consume rate − produce rate)`, from the rate at which the committed
/// offset moves and the rate at which the log end moves, both in records per second.
pub fn catch_up(
    lag_offsets: Option<i64>,
    consume_per_second: Option<f64>,
    produce_per_second: Option<f64>,
) -> CatchUp {
    let Some(lag) = lag_offsets else {
        return CatchUp::Unknown;
    };
    if lag <= 0 {
        return CatchUp::CaughtUp;
    }
    let (Some(consume), Some(produce)) = (consume_per_second, produce_per_second) else {
        return CatchUp::Unknown;
    };
    let gain = consume - produce;
    if gain <= 0.0 {
        CatchUp::FallingBehind
    } else {
        CatchUp::InSeconds {
            seconds: lag as f64 / gain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(
            s,
            LagSeconds {
                seconds: Some(17.5),
                basis: LagSecondsBasis::Exact
            }
        );
    }

    #[test]
    fn lag_seconds_clamps_a_record_from_the_future_to_zero() {
        let s = lag_seconds(30_000, 50, 250, Some(31_000), &history());
        assert_eq!(s.seconds, Some(0.0));
    }

    #[test]
    fn lag_seconds_is_estimated_from_history_without_a_timestamp() {
        // Log end was at 250 at 15 s (interpolated): 15 s behind at 30 s.
        let s = lag_seconds(30_000, 50, 250, None, &history());
        assert_eq!(
            s,
            LagSeconds {
                seconds: Some(15.0),
                basis: LagSecondsBasis::Estimated
            }
        );
        assert!(s.is_estimated());
    }

    #[test]
    fn lag_seconds_is_unknown_before_the_history() {
        assert_eq!(
            lag_seconds(30_000, 250, 50, None, &history()),
            LagSeconds::UNKNOWN
        );
    }

    #[test]
    fn zero_lag_is_zero_seconds_exactly() {
        let s = lag_seconds(30_000, 0, 300, None, &EndOffsetHistory::new(2));
        assert_eq!(
            s,
            LagSeconds {
                seconds: Some(0.0),
                basis: LagSecondsBasis::Exact
            }
        );
    }

    #[test]
    fn catch_up_from_consume_and_produce_rates() {
        assert_eq!(
            catch_up(Some(1_000), Some(150.0), Some(50.0)),
            CatchUp::InSeconds { seconds: 10.0 }
        );
        assert_eq!(
            catch_up(Some(1_000), Some(50.0), Some(50.0)),
            CatchUp::FallingBehind
        );
        assert_eq!(
            catch_up(Some(1_000), Some(10.0), Some(50.0)),
            CatchUp::FallingBehind
        );
        assert_eq!(catch_up(Some(0), None, None), CatchUp::CaughtUp);
        assert_eq!(catch_up(Some(5), None, Some(1.0)), CatchUp::Unknown);
        assert_eq!(catch_up(None, Some(5.0), Some(1.0)), CatchUp::Unknown);
    }
}

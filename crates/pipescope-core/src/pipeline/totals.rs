//! Running totals of calls, per input partition, with the position they were computed up to.
//!
//! The state and its position travel together in one changelog record, so an instance that
//! restores a partition's state knows exactly which records it already holds: records below
//! `next_offset` are skipped, the rest are applied. That keeps totals exact across restarts
//! and rebalances even when offsets were committed late.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::calls::CallRecord;
use crate::EpochMillis;

/// Calls over this many seconds are "long" (logged by the processor).
pub const LONG_CALL_S: f64 = 60.0;

/// The longest call duration taken (7 days): a producer's `duration_s` that is not a finite
/// number of seconds from 0 to this is refused, so that one absurd record (`1e300`) cannot
/// saturate the totals for good.
pub const MAX_CALL_S: f64 = 7.0 * 24.0 * 3600.0;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub calls: u64,
    pub duration_ms: u64,
    pub long_calls: u64,
}

impl Totals {
    /// Saturating: totals restored from a changelog are not trusted to be small.
    pub fn add(&mut self, other: &Totals) {
        self.calls = self.calls.saturating_add(other.calls);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
        self.long_calls = self.long_calls.saturating_add(other.long_calls);
    }
}

/// What the processor holds for one input partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionTotals {
    /// Offset of the next input record to apply.
    pub next_offset: i64,
    pub overall: Totals,
    /// Per calendar minute of call start (epoch ms of the minute's start), the last
    /// `MINUTES_KEPT`: counts over named minutes, never rates. Calls are counted as they arrive,
    /// so the newest minute may still be filling ([`PartitionTotals::open_minute`]).
    pub per_minute: BTreeMap<EpochMillis, Totals>,
}

/// Minutes of per-minute totals kept per partition (one day).
pub const MINUTES_KEPT: usize = 1440;

/// What applying one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Already part of the state (offset below `next_offset`): ignored.
    AlreadyCounted,
    Counted {
        long: bool,
    },
    /// Its duration is not a finite number of seconds from 0 to [`MAX_CALL_S`]: counted
    /// nowhere, the position moved past it.
    Refused,
}

impl PartitionTotals {
    /// Applies the call at `offset`.
    pub fn apply(&mut self, offset: i64, call: &CallRecord) -> Applied {
        self.apply_call(offset, call.start, call.duration_s)
    }

    /// Applies the call at `offset` that started at `start` and lasted `duration_s`.
    pub fn apply_call(&mut self, offset: i64, start: EpochMillis, duration_s: f64) -> Applied {
        if offset < self.next_offset {
            return Applied::AlreadyCounted;
        }
        self.next_offset = offset.saturating_add(1);
        if !(0.0..=MAX_CALL_S).contains(&duration_s) {
            return Applied::Refused;
        }
        let long = duration_s > LONG_CALL_S;
        let t = Totals {
            calls: 1,
            duration_ms: super::calls::duration_ms(duration_s),
            long_calls: u64::from(long),
        };
        self.overall.add(&t);
        let minute = start - start % 60_000;
        self.per_minute.entry(minute).or_default().add(&t);
        while self.per_minute.len() > MINUTES_KEPT {
            self.per_minute.pop_first();
        }
        Applied::Counted { long }
    }

    /// The minute that may still be filling: the newest one a call was counted in. The minutes
    /// before it are closed as far as this partition goes: a call that starts in a later minute
    /// has arrived (one that arrives out of start order is still added to its own minute).
    /// `None` before the first call.
    pub fn open_minute(&self) -> Option<EpochMillis> {
        self.per_minute.keys().next_back().copied()
    }

    /// Moves the position past a record that is not a call (it is counted nowhere, but must not
    /// be read again).
    pub fn skip(&mut self, offset: i64) {
        self.next_offset = self.next_offset.max(offset.saturating_add(1));
    }
}

/// The changelog key of an input partition's state.
pub fn changelog_key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// The first minute not closed in all of `parts` (the earliest [`PartitionTotals::open_minute`]
/// among those with calls): per-minute sums from there on may still grow, the ones before it are
/// whole minutes. `None` when no partition has a call.
pub fn open_from<'a>(parts: impl IntoIterator<Item = &'a PartitionTotals>) -> Option<EpochMillis> {
    parts
        .into_iter()
        .filter_map(PartitionTotals::open_minute)
        .min()
}

/// The overall totals of many partitions, and per minute.
pub fn sum<'a>(
    parts: impl IntoIterator<Item = &'a PartitionTotals>,
) -> (Totals, BTreeMap<EpochMillis, Totals>) {
    let mut overall = Totals::default();
    let mut per_minute: BTreeMap<EpochMillis, Totals> = BTreeMap::new();
    for p in parts {
        overall.add(&p.overall);
        for (m, t) in &p.per_minute {
            per_minute.entry(*m).or_default().add(t);
        }
    }
    (overall, per_minute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(start: EpochMillis, duration_s: f64) -> CallRecord {
        CallRecord {
            call_id: "c".into(),
            caller: "a".into(),
            callee: "b".into(),
            start,
            duration_s,
            region: "north".into(),
        }
    }

    #[test]
    fn absurd_durations_are_refused_and_totals_saturate() {
        let mut p = PartitionTotals::default();
        assert_eq!(p.apply(0, &call(0, 1.5)), Applied::Counted { long: false });
        let before = p.clone();
        for (offset, duration_s) in [
            (1, 1e300),
            (2, f64::INFINITY),
            (3, f64::NAN),
            (4, -1.0),
            (5, MAX_CALL_S + 0.001),
            (6, f64::MAX),
        ] {
            assert_eq!(p.apply(offset, &call(0, duration_s)), Applied::Refused);
            assert_eq!(
                (p.overall, &p.per_minute),
                (before.overall, &before.per_minute)
            );
            assert_eq!(p.next_offset, offset + 1);
        }
        assert_eq!(
            p.apply(7, &call(0, MAX_CALL_S)),
            Applied::Counted { long: true }
        );
        assert_eq!(p.overall.duration_ms, 1_500 + 604_800_000);
        assert_eq!(
            p.apply(i64::MAX, &call(u64::MAX, 0.0)),
            Applied::Counted { long: false }
        );
        assert_eq!(p.next_offset, i64::MAX);
        let mut t = Totals {
            calls: u64::MAX,
            duration_ms: u64::MAX - 1,
            long_calls: 1,
        };
        t.add(&p.overall);
        assert_eq!(
            t,
            Totals {
                calls: u64::MAX,
                duration_ms: u64::MAX,
                long_calls: 2
            }
        );
    }

    #[test]
    fn totals_count_once_per_offset_and_per_minute() {
        let mut p = PartitionTotals::default();
        assert_eq!(
            p.apply(0, &call(60_000, 10.5)),
            Applied::Counted { long: false }
        );
        assert_eq!(
            p.apply(1, &call(119_999, 60.001)),
            Applied::Counted { long: true }
        );
        assert_eq!(p.apply(1, &call(119_999, 60.001)), Applied::AlreadyCounted);
        assert_eq!(p.apply(0, &call(60_000, 10.5)), Applied::AlreadyCounted);
        assert_eq!(
            p.apply(5, &call(120_000, 60.0)),
            Applied::Counted { long: false }
        );
        assert_eq!(p.next_offset, 6);
        assert_eq!(
            p.overall,
            Totals {
                calls: 3,
                duration_ms: 10_500 + 60_001 + 60_000,
                long_calls: 1
            }
        );
        assert_eq!(p.per_minute[&60_000].calls, 2);
        assert_eq!(p.per_minute[&60_000].duration_ms, 70_501);
        assert_eq!(p.per_minute[&120_000].calls, 1);
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        // Apply 0..10, snapshot at 6 (as the changelog would), "crash", restore, replay 4..10
        // (committed offset older than the snapshot): the totals equal a run without a crash.
        let calls: Vec<_> = (0..10).map(|i| call(i * 1000, i as f64 * 7.25)).collect();
        let mut straight = PartitionTotals::default();
        let mut first = PartitionTotals::default();
        let mut snapshot = None;
        for (o, c) in calls.iter().enumerate() {
            straight.apply(o as i64, c);
            first.apply(o as i64, c);
            if o == 5 {
                snapshot = Some(serde_json::to_string(&first).unwrap());
            }
        }
        let mut restored: PartitionTotals = serde_json::from_str(&snapshot.unwrap()).unwrap();
        assert_eq!(restored.next_offset, 6);
        for (o, c) in calls.iter().enumerate().skip(4) {
            restored.apply(o as i64, c);
        }
        assert_eq!(restored, straight);
    }

    #[test]
    fn per_minute_history_is_bounded() {
        let mut p = PartitionTotals::default();
        for i in 0..(MINUTES_KEPT as u64 + 10) {
            p.apply(i as i64, &call(i * 60_000, 1.0));
        }
        assert_eq!(p.per_minute.len(), MINUTES_KEPT);
        assert_eq!(*p.per_minute.keys().next().unwrap(), 10 * 60_000);
        assert_eq!(p.overall.calls, MINUTES_KEPT as u64 + 10);
    }

    #[test]
    fn sums_add_partitions() {
        let mut a = PartitionTotals::default();
        let mut b = PartitionTotals::default();
        a.apply(0, &call(0, 1.0));
        b.apply(0, &call(30_000, 2.0));
        b.apply(1, &call(60_000, 3.0));
        let (overall, per_minute) = sum([&a, &b]);
        assert_eq!(overall.calls, 3);
        assert_eq!(overall.duration_ms, 6000);
        assert_eq!(per_minute[&0].calls, 2);
        assert_eq!(per_minute[&60_000].duration_ms, 3000);
        assert_eq!(changelog_key("calls", 2), "calls/2");
    }

    #[test]
    fn the_newest_minute_of_a_partition_is_open_and_a_sum_is_whole_before_the_earliest() {
        let mut a = PartitionTotals::default();
        let mut b = PartitionTotals::default();
        assert_eq!(a.open_minute(), None);
        assert_eq!(open_from([&a, &b]), None);
        a.apply(0, &call(10_000, 1.0));
        a.apply(1, &call(130_000, 1.0));
        // Minute 120 000 of `a` is filling; 0 and 60 000 are closed.
        assert_eq!(a.open_minute(), Some(120_000));
        // `b` has no calls: it closes nothing and holds nothing open.
        assert_eq!(open_from([&a, &b]), Some(120_000));
        b.apply(0, &call(70_000, 1.0));
        // `b` may still get calls of minute 60 000: only minute 0 is whole in the sum.
        assert_eq!(open_from([&a, &b]), Some(60_000));
        // A call that arrives out of start order still counts in its own minute; the open
        // minute stays the newest.
        a.apply(2, &call(20_000, 1.0));
        assert_eq!(a.per_minute[&0].calls, 2);
        assert_eq!(a.open_minute(), Some(120_000));
    }
}

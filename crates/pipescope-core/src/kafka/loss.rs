//! Records deleted before a consumer group read them: lost for that group.
//!
//! Retention (or DeleteRecords) moves a partition's log start forward. When a group's committed
//! offset `C` is below the log start `L`, the records in `[C, L)` are gone and the group will
//! never read them. [`RetentionLoss`] counts each such record once per group partition:
//!
//! - it keeps the offset it has counted up to, so a later scrape adds only the newly lost range
//!   (the log start moving on while the group stays behind);
//! - records below the highest offset the group ever committed were read, so a group that seeks
//!   back below the log start loses nothing;
//! - a group that resets its offset (`auto.offset.reset` after the loss) goes on from there: a
//!   later loss is counted from where it then is.
//!
//! A re-created partition (a new log) starts over with [`RetentionLoss::restart`]; the total is
//! a counter and is kept.

use serde::Serialize;

/// The offsets `[from, to)` found deleted before a group read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LostRange {
    pub from: i64,
    pub to: i64,
}

impl LostRange {
    pub fn records(&self) -> u64 {
        (self.to - self.from).max(0) as u64
    }
}

/// The loss accounting of one group on one partition. Kept for every group partition and set
/// for few: what only a loss sets is boxed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionLoss {
    /// Offsets below this were counted lost or were read by the group: never counted again.
    settled_up_to: Option<i64>,
    /// `None` until a record is counted lost.
    lost: Option<Box<Lost>>,
}

/// What a group partition lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lost {
    /// Records counted lost, since the monitor started watching this group partition.
    total: u64,
    /// The latest range counted lost.
    last: LostRange,
}

impl RetentionLoss {
    /// Takes in one scrape's committed offset and log start; returns the range newly counted
    /// lost, if any.
    pub fn observe(&mut self, committed: i64, log_start: i64) -> Option<LostRange> {
        let settled = self.settled_up_to.map_or(committed, |s| s.max(committed));
        self.settled_up_to = Some(settled.max(log_start));
        if log_start <= settled {
            return None;
        }
        let range = LostRange {
            from: settled,
            to: log_start,
        };
        let lost = self.lost.get_or_insert_with(|| {
            Box::new(Lost {
                total: 0,
                last: range,
            })
        });
        lost.total += range.records();
        lost.last = range;
        Some(range)
    }

    /// The partition's log was replaced: its old offsets say nothing about the new one.
    pub fn restart(&mut self) {
        self.settled_up_to = None;
    }

    pub fn total(&self) -> u64 {
        self.lost.as_ref().map_or(0, |l| l.total)
    }

    pub fn last(&self) -> Option<LostRange> {
        self.lost.as_ref().map(|l| l.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_behind_the_log_start_loses_the_records_between() {
        let mut loss = RetentionLoss::default();
        assert_eq!(loss.observe(10, 0), None);
        assert_eq!(loss.observe(10, 25), Some(LostRange { from: 10, to: 25 }));
        assert_eq!(loss.total(), 15);
    }

    #[test]
    fn each_lost_record_is_counted_once_as_the_log_start_moves_on() {
        let mut loss = RetentionLoss::default();
        assert_eq!(loss.observe(10, 25).map(|r| r.records()), Some(15));
        // The same state seen again: nothing new.
        assert_eq!(loss.observe(10, 25), None);
        // The log start moves on while the group stays: only the new stretch.
        assert_eq!(loss.observe(10, 40), Some(LostRange { from: 25, to: 40 }));
        assert_eq!(loss.total(), 30);
        assert_eq!(loss.last(), Some(LostRange { from: 25, to: 40 }));
    }

    #[test]
    fn a_group_that_reset_to_the_log_start_loses_only_what_it_misses_later() {
        let mut loss = RetentionLoss::default();
        loss.observe(10, 25);
        // auto.offset.reset=earliest: it jumps to the log start and reads on.
        assert_eq!(loss.observe(25, 25), None);
        assert_eq!(loss.observe(60, 30), None);
        // It falls behind retention again, from where it then was.
        assert_eq!(loss.observe(70, 90), Some(LostRange { from: 70, to: 90 }));
        assert_eq!(loss.total(), 15 + 20);
    }

    #[test]
    fn a_group_that_reset_to_the_latest_offset_loses_what_it_skipped_only_if_deleted() {
        let mut loss = RetentionLoss::default();
        assert_eq!(loss.observe(5, 8), Some(LostRange { from: 5, to: 8 }));
        // auto.offset.reset=latest: skipped records still in the log are not deleted ones.
        assert_eq!(loss.observe(100, 8), None);
        assert_eq!(loss.observe(100, 100), None);
        assert_eq!(loss.total(), 3);
    }

    #[test]
    fn records_the_group_read_before_seeking_back_are_not_lost() {
        let mut loss = RetentionLoss::default();
        assert_eq!(loss.observe(50, 0), None);
        // It seeks back to 0 after retention deleted up to 30: it had read those.
        assert_eq!(loss.observe(0, 30), None);
        // Deleted past what it had read: those it never read are lost.
        assert_eq!(loss.observe(0, 55), Some(LostRange { from: 50, to: 55 }));
        assert_eq!(loss.total(), 5);
    }

    #[test]
    fn a_new_log_starts_over_and_the_total_stays() {
        let mut loss = RetentionLoss::default();
        loss.observe(90, 100);
        loss.restart();
        // The topic was re-created: offsets begin again below the old ones.
        assert_eq!(loss.observe(2, 5), Some(LostRange { from: 2, to: 5 }));
        assert_eq!(loss.total(), 10 + 3);
    }
}

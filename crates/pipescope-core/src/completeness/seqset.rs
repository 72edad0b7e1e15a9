//! Which sequence numbers of one (origin, stream) a hop has seen, kept as the gaps below the
//! highest one: in-order traffic holds no gap at all, so a stream costs the same after a
//! billion records as after one.
//!
//! Everything from `base` up to `top`, the highest number seen, was seen except the gaps. A gap is noticed when a
//! higher number arrives; it becomes loss once it has stayed open for the grace period. Gaps are
//! added at the top and never reordered, so they are sorted both by number and by the time they
//! were noticed: the lost ones are always a prefix of the list.

use serde::{Deserialize, Serialize};

use super::ranges::{Ranges, Span};
use crate::EpochMillis;

/// When a gap was noticed (arrival time at the hop) and whether it is counted lost yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapState {
    pub noticed_ms: EpochMillis,
    pub lost: bool,
}

/// What one arrival was, for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The stream's first record: it sets the base.
    First,
    /// The first record after the reader jumped past records it never read (deleted by
    /// retention or compaction): a new base.
    Rebased,
    /// The next number expected.
    InOrder,
    /// Above the next number expected: the numbers between are a new gap.
    AfterGap { missing: u64 },
    /// Filled a gap before its grace ran out.
    OutOfOrder,
    /// Filled a gap already counted lost: un-lost, counted late.
    Late,
    /// Seen before.
    Duplicate,
    /// Below the base (before the hop watched, or skipped as gone): never judged.
    BeforeBase,
    /// Above the base but in the part already trimmed past the horizon: cannot tell.
    PastHorizon,
    /// The stream is not tracked (past the cap on streams).
    Untracked,
}

impl Outcome {
    /// Whether this is the first copy of a record the hop judges (what an edge matches).
    pub fn is_first_sight(self) -> bool {
        matches!(
            self,
            Outcome::First
                | Outcome::Rebased
                | Outcome::InOrder
                | Outcome::AfterGap { .. }
                | Outcome::OutOfOrder
                | Outcome::Late
        )
    }
}

/// Side effects of one call besides the outcome: gaps counted lost now because the cap on gaps
/// forced the oldest one out before its grace ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forced {
    pub lost: u64,
    pub gaps_folded: u64,
}

/// The sequence state of one (origin, stream) at one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSeqs {
    base: u64,
    /// Numbers below are no longer judged (the base, raised by trimming).
    floor: u64,
    /// The highest number seen (every number up to u64::MAX can be told from its copy).
    top: u64,
    gaps: Ranges<GapState>,
    lost_prefix: usize,
    /// The reader jumped (its position fell below the log start): the next number sets a new base.
    rebase_on_next: bool,
    pub(crate) last_seen_ms: EpochMillis,
    /// The Kafka partition the stream's records are read from, when the stream is not the
    /// partition itself (a carried-over MQTT trace, keyed by its MQTT topic); else `NO_PARTITION`.
    pub(crate) partition: u32,
}

/// No partition: the stream is read from MQTT, or is itself the partition.
pub const NO_PARTITION: u32 = u32::MAX;

/// A stream's state as another monitor instance can adopt it (hand-over of a partition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSeqsSnapshot {
    pub base: u64,
    pub floor: u64,
    pub top: u64,
    pub gaps: Vec<Span<GapState>>,
    pub rebase_on_next: bool,
    pub last_seen_ms: EpochMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// Why a snapshot cannot be adopted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "the stream snapshot is inconsistent ({0}) — it was not made by StreamSeqs::snapshot; take a new one from the instance that held the stream"
    )]
    Inconsistent(&'static str),
}

impl StreamSeqs {
    /// A stream whose first record is `seq`.
    pub fn starting_at(seq: u64, now: EpochMillis) -> Self {
        Self {
            base: seq,
            floor: seq,
            top: seq,
            gaps: Ranges::default(),
            lost_prefix: 0,
            rebase_on_next: false,
            last_seen_ms: now,
            partition: NO_PARTITION,
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn top(&self) -> u64 {
        self.top
    }

    pub fn gap_count(&self) -> usize {
        self.gaps.len()
    }

    /// Numbers in gaps not yet counted lost.
    pub fn pending(&self) -> u64 {
        self.gaps
            .iter()
            .skip(self.lost_prefix)
            .map(Span::len)
            .fold(0, u64::saturating_add)
    }

    /// Numbers counted lost and still tracked (a late arrival can still un-lose them).
    pub fn lost_tracked(&self) -> u64 {
        self.gaps
            .iter()
            .take(self.lost_prefix)
            .map(Span::len)
            .fold(0, u64::saturating_add)
    }

    /// One arrival. `max_gaps` caps the gaps kept: past it the oldest is forced to loss.
    pub fn observe(&mut self, seq: u64, now: EpochMillis, max_gaps: usize) -> (Outcome, Forced) {
        self.last_seen_ms = self.last_seen_ms.max(now);
        // `seq == top + 1`, without overflow when top is u64::MAX.
        if seq.wrapping_sub(self.top) == 1 && seq != 0 {
            self.top = seq;
            self.rebase_on_next = false;
            return (Outcome::InOrder, Forced::default());
        }
        if self.rebase_on_next {
            self.rebase_on_next = false;
            if seq > self.top {
                self.skip_below(seq);
                self.top = seq;
                return (Outcome::Rebased, Forced::default());
            }
        }
        if seq > self.top {
            let missing = seq - self.top - 1;
            self.gaps.push_top(Span {
                start: self.top + 1,
                end: seq - 1,
                value: GapState {
                    noticed_ms: self.last_seen_ms,
                    lost: false,
                },
            });
            self.top = seq;
            let forced = self.enforce_cap(max_gaps);
            return (Outcome::AfterGap { missing }, forced);
        }
        if seq < self.base {
            return (Outcome::BeforeBase, Forced::default());
        }
        if seq < self.floor {
            return (Outcome::PastHorizon, Forced::default());
        }
        match self.gaps.find(seq) {
            None => (Outcome::Duplicate, Forced::default()),
            Some(index) => {
                let before = self.gaps.len();
                let state = self.gaps.remove_at(index, seq);
                if state.lost {
                    // The lost prefix grew or shrank with the split or removal.
                    self.lost_prefix = self.lost_prefix + self.gaps.len() - before;
                    (Outcome::Late, Forced::default())
                } else {
                    (Outcome::OutOfOrder, Forced::default())
                }
            }
        }
    }

    fn enforce_cap(&mut self, max_gaps: usize) -> Forced {
        let mut forced = Forced::default();
        while self.gaps.len() > max_gaps.max(1) {
            let Some(oldest) = self.gaps.pop_front() else {
                break;
            };
            if oldest.value.lost {
                self.lost_prefix -= 1;
            } else {
                forced.lost = forced.lost.saturating_add(oldest.len());
            }
            forced.gaps_folded += 1;
            self.floor = oldest.end + 1;
        }
        forced
    }

    /// Gaps open for `grace_ms` become loss; lost gaps older than `horizon_ms` are trimmed (a
    /// late arrival there is no longer recognised). Returns the numbers newly counted lost.
    pub fn tick(&mut self, now: EpochMillis, grace_ms: u64, horizon_ms: u64) -> u64 {
        let mut lost = 0u64;
        while let Some(gap) = self.gaps.get_mut(self.lost_prefix) {
            if gap.value.noticed_ms.saturating_add(grace_ms) > now {
                break;
            }
            gap.value.lost = true;
            lost = lost.saturating_add(gap.len());
            self.lost_prefix += 1;
        }
        while self.lost_prefix > 0 {
            let Some(oldest) = self.gaps.front() else {
                break;
            };
            if oldest.value.noticed_ms.saturating_add(horizon_ms) > now {
                break;
            }
            self.floor = oldest.end + 1;
            self.gaps.pop_front();
            self.lost_prefix -= 1;
        }
        self.gaps.compact();
        lost
    }

    /// Numbers below `bound` are gone without having been seen (deleted by retention or
    /// compaction before the reader got to them): they are not loss. Gaps already counted lost
    /// stay lost. Returns how many unseen numbers were skipped.
    pub fn skip_below(&mut self, bound: u64) -> u64 {
        if bound <= self.base {
            return 0;
        }
        let mut skipped = 0;
        self.gaps.remove_below(bound, |span| {
            if !span.value.lost {
                skipped = u64::saturating_add(skipped, span.len());
            }
        });
        // Lost gaps are still a prefix; a lost gap split by the bound keeps its upper part.
        self.lost_prefix = self.gaps.iter().take_while(|g| g.value.lost).count();
        if bound - 1 > self.top {
            skipped = u64::saturating_add(skipped, bound - 1 - self.top);
            self.top = bound - 1;
        }
        self.base = bound;
        self.floor = self.floor.max(bound);
        skipped
    }

    /// The reader's position jumped forward by an unknown number of this stream's records:
    /// the next arrival above `top` sets a new base instead of opening a gap.
    pub fn rebase_on_next(&mut self) {
        self.rebase_on_next = true;
    }

    pub fn snapshot(&self) -> StreamSeqsSnapshot {
        StreamSeqsSnapshot {
            base: self.base,
            floor: self.floor,
            top: self.top,
            gaps: self.gaps.to_vec(),
            rebase_on_next: self.rebase_on_next,
            last_seen_ms: self.last_seen_ms,
            partition: (self.partition != NO_PARTITION).then_some(self.partition),
        }
    }

    pub fn from_snapshot(s: StreamSeqsSnapshot) -> Result<Self, SnapshotError> {
        if s.base > s.floor || s.floor > s.top.saturating_add(1) {
            return Err(SnapshotError::Inconsistent(
                "base <= floor <= top + 1 is broken",
            ));
        }
        if s.gaps.first().is_some_and(|g| g.start < s.floor)
            || s.gaps.last().is_some_and(|g| g.end >= s.top)
        {
            return Err(SnapshotError::Inconsistent("a gap lies outside floor..top"));
        }
        let lost_prefix = s.gaps.iter().take_while(|g| g.value.lost).count();
        if s.gaps[lost_prefix..].iter().any(|g| g.value.lost) {
            return Err(SnapshotError::Inconsistent(
                "lost gaps are not the oldest ones",
            ));
        }
        let gaps = Ranges::from_spans(s.gaps)
            .ok_or(SnapshotError::Inconsistent("gaps overlap or are unsorted"))?;
        Ok(Self {
            base: s.base,
            floor: s.floor,
            top: s.top,
            gaps,
            lost_prefix,
            rebase_on_next: s.rebase_on_next,
            last_seen_ms: s.last_seen_ms,
            partition: s.partition.unwrap_or(NO_PARTITION),
        })
    }

    /// Heap bytes held beyond the struct itself.
    pub fn heap_bytes(&self) -> usize {
        self.gaps.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: u64 = 10_000;
    const HORIZON: u64 = 60_000;

    fn feed(s: &mut StreamSeqs, seqs: &[u64], now: EpochMillis) -> Vec<Outcome> {
        seqs.iter().map(|&q| s.observe(q, now, 1024).0).collect()
    }

    #[test]
    fn in_order_traffic_keeps_no_gap() {
        let mut s = StreamSeqs::starting_at(100, 0);
        for seq in 101..1_000_000 {
            assert_eq!(s.observe(seq, 5, 1024).0, Outcome::InOrder);
        }
        assert_eq!(s.gap_count(), 0);
        assert_eq!(s.heap_bytes(), 0);
        assert_eq!(s.tick(1_000_000, GRACE, HORIZON), 0);
    }

    #[test]
    fn a_gap_becomes_loss_after_the_grace_measured_from_when_it_was_noticed() {
        let mut s = StreamSeqs::starting_at(0, 1_000);
        assert_eq!(
            feed(&mut s, &[1, 5], 2_000),
            [Outcome::InOrder, Outcome::AfterGap { missing: 3 }]
        );
        assert_eq!(s.tick(11_999, GRACE, HORIZON), 0);
        assert_eq!(s.pending(), 3);
        assert_eq!(s.tick(12_000, GRACE, HORIZON), 3);
        assert_eq!(s.tick(13_000, GRACE, HORIZON), 0, "counted once");
        assert_eq!(s.lost_tracked(), 3);
    }

    #[test]
    fn filling_a_gap_in_time_is_out_of_order_after_it_is_late() {
        let mut s = StreamSeqs::starting_at(0, 0);
        feed(&mut s, &[10], 0); // gap 1..=9
        assert_eq!(feed(&mut s, &[4], 5_000), [Outcome::OutOfOrder]);
        assert_eq!(s.tick(10_000, GRACE, HORIZON), 8);
        assert_eq!(
            feed(&mut s, &[5, 5, 1, 9, 10, 0], 20_000),
            [
                Outcome::Late,
                Outcome::Duplicate,
                Outcome::Late,
                Outcome::Late,
                Outcome::Duplicate,
                Outcome::Duplicate
            ]
        );
        assert_eq!(s.lost_tracked(), 5); // 2, 3, 6, 7, 8
        assert_eq!(feed(&mut s, &[0], 20_000), [Outcome::Duplicate]);
    }

    #[test]
    fn lost_gaps_stay_a_prefix_when_split_and_newer_gaps_wait_their_own_grace() {
        let mut s = StreamSeqs::starting_at(0, 0);
        feed(&mut s, &[5], 0); // gap 1..=4 noticed at 0
        feed(&mut s, &[9], 8_000); // gap 6..=8 noticed at 8 s
        assert_eq!(s.tick(10_000, GRACE, HORIZON), 4);
        assert_eq!(feed(&mut s, &[2], 10_500), [Outcome::Late]); // splits the lost gap
        assert_eq!(feed(&mut s, &[7], 10_500), [Outcome::OutOfOrder]);
        assert_eq!(s.lost_tracked(), 3);
        assert_eq!(s.pending(), 2);
        assert_eq!(s.tick(18_000, GRACE, HORIZON), 2);
        assert_eq!(s.lost_tracked(), 5);
    }

    #[test]
    fn trimmed_past_the_horizon_a_number_is_no_longer_judged() {
        let mut s = StreamSeqs::starting_at(0, 0);
        feed(&mut s, &[3], 0);
        s.tick(10_000, GRACE, HORIZON);
        assert_eq!(s.tick(60_000, GRACE, HORIZON), 0);
        assert_eq!(s.gap_count(), 0);
        assert_eq!(feed(&mut s, &[1], 61_000), [Outcome::PastHorizon]);
    }

    #[test]
    fn past_the_cap_the_oldest_gap_is_forced_to_loss_and_counted_folded() {
        let mut s = StreamSeqs::starting_at(0, 0);
        let mut forced = Forced::default();
        for seq in [2, 4, 6, 8] {
            let (_, f) = s.observe(seq, 0, 3);
            forced.lost += f.lost;
            forced.gaps_folded += f.gaps_folded;
        }
        assert_eq!(s.gap_count(), 3);
        assert_eq!(
            forced,
            Forced {
                lost: 1,
                gaps_folded: 1
            }
        );
        assert_eq!(feed(&mut s, &[1], 0), [Outcome::PastHorizon]);
        assert_eq!(feed(&mut s, &[3], 0), [Outcome::OutOfOrder]);
    }

    #[test]
    fn numbers_skipped_as_gone_are_not_loss_and_the_base_moves() {
        let mut s = StreamSeqs::starting_at(0, 0);
        feed(&mut s, &[1, 2, 5], 0); // pending gap 3..=4
        assert_eq!(s.skip_below(20), 2 + 14); // 3, 4 and 6..=19
        assert_eq!(s.pending(), 0);
        assert_eq!(
            feed(&mut s, &[20, 4], 0),
            [Outcome::InOrder, Outcome::BeforeBase]
        );
        assert_eq!(s.tick(100_000, GRACE, HORIZON), 0);
    }

    #[test]
    fn after_a_jump_of_the_reader_the_next_number_sets_a_new_base() {
        let mut s = StreamSeqs::starting_at(0, 0);
        feed(&mut s, &[1, 2], 0);
        s.rebase_on_next();
        assert_eq!(
            feed(&mut s, &[500, 501], 0),
            [Outcome::Rebased, Outcome::InOrder]
        );
        assert_eq!(s.base(), 500);
        assert_eq!(s.tick(100_000, GRACE, HORIZON), 0);
    }

    #[test]
    fn a_snapshot_round_trips_and_a_broken_one_is_refused() {
        let mut s = StreamSeqs::starting_at(0, 0);
        feed(&mut s, &[3, 9], 0);
        s.tick(10_000, GRACE, HORIZON);
        feed(&mut s, &[12], 11_000);
        let json = serde_json::to_string(&s.snapshot()).unwrap();
        let back = StreamSeqs::from_snapshot(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, s);
        let mut broken = s.snapshot();
        broken.gaps.reverse();
        assert!(StreamSeqs::from_snapshot(broken).is_err());
        let mut broken = s.snapshot();
        broken.gaps[0].value.lost = false;
        assert!(
            StreamSeqs::from_snapshot(broken)
                .unwrap_err()
                .to_string()
                .contains("lost gaps are not the oldest")
        );
    }

    /// The same judgement made the slow, obvious way: every number ever seen in a set, every
    /// missing number with the time it was noticed.
    #[derive(Default)]
    struct Model {
        base: Option<u64>,
        seen: std::collections::BTreeSet<u64>,
        missing: std::collections::BTreeMap<u64, (u64, bool)>,
        lost: u64,
    }

    impl Model {
        fn tick(&mut self, now: u64) {
            for (noticed, lost) in self.missing.values_mut() {
                if !*lost && *noticed + GRACE <= now {
                    *lost = true;
                    self.lost += 1;
                }
            }
        }

        fn observe(&mut self, seq: u64, now: u64) -> Outcome {
            let Some(base) = self.base else {
                self.base = Some(seq);
                self.seen.insert(seq);
                return Outcome::First;
            };
            if seq < base {
                return Outcome::BeforeBase;
            }
            if !self.seen.insert(seq) {
                return Outcome::Duplicate;
            }
            let max = *self.seen.range(..seq).next_back().unwrap_or(&base);
            if seq > max && self.seen.range(seq + 1..).next().is_none() {
                for n in max + 1..seq {
                    self.missing.insert(n, (now, false));
                }
                return if seq == max + 1 {
                    Outcome::InOrder
                } else {
                    Outcome::AfterGap {
                        missing: seq - max - 1,
                    }
                };
            }
            match self.missing.remove(&seq) {
                Some((_, true)) => {
                    self.lost -= 1;
                    Outcome::Late
                }
                _ => Outcome::OutOfOrder,
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_interval_accounting_judges_as_the_obvious_model_does(
            // Time moves in quarters of the grace, so gaps often meet it exactly.
            steps in proptest::collection::vec((0u64..60, 0u64..4), 1..300)
        ) {
            let mut model = Model::default();
            let mut seqs: Option<StreamSeqs> = None;
            let (mut now, mut lost) = (0u64, 0u64);
            for (seq, quarters) in steps {
                now += quarters * GRACE / 4;
                model.tick(now);
                let outcome = match seqs.as_mut() {
                    None => {
                        seqs = Some(StreamSeqs::starting_at(seq, now));
                        Outcome::First
                    }
                    Some(s) => {
                        lost += s.tick(now, GRACE, u64::MAX);
                        let (outcome, forced) = s.observe(seq, now, usize::MAX);
                        proptest::prop_assert_eq!(forced, Forced::default());
                        if outcome == Outcome::Late {
                            lost -= 1;
                        }
                        outcome
                    }
                };
                proptest::prop_assert_eq!(outcome, model.observe(seq, now), "seq {} at {}", seq, now);
                proptest::prop_assert_eq!(lost, model.lost);
            }
        }
    }
}

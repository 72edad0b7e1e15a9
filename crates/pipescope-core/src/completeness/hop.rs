//! One observed point of a pipeline (an MQTT filter on a broker, a Kafka topic on a cluster):
//! per (origin, stream) sequence accounting, counters and latency per origin kind.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::CompletenessConfig;
use super::buckets::{BucketRing, Kinds};
use super::latency::{LatencyFigures, WindowedLatency};
use super::seqset::{Forced, NO_PARTITION, Outcome, SnapshotError, StreamSeqs, StreamSeqsSnapshot};
use crate::EpochMillis;
use crate::windows::{Window, WindowCounts};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Cumulative counts of a hop (or of one origin kind at it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HopCounters {
    /// Traced records that arrived, every copy.
    pub records: u64,
    /// Sequence numbers counted lost and not since arrived (a late arrival takes one off).
    pub lost: u64,
    /// Records that arrived after being counted lost.
    pub late: u64,
    /// Copies of records already seen.
    pub duplicated: u64,
    /// Records that filled a gap before its grace ran out.
    pub out_of_order: u64,
    /// Records below the base of their stream (before the hop watched it, or skipped as gone).
    pub before_base: u64,
    /// Records in the part of a stream trimmed past the horizon: neither late nor duplicate can
    /// be told.
    pub past_horizon: u64,
    /// Sequence numbers the reader reported gone before it read them (retention, compaction):
    /// not loss.
    pub skipped: u64,
    /// Records of streams past the cap on streams: counted and timed, not tracked.
    pub untracked: u64,
    /// Gaps settled as lost early because a stream held too many.
    pub gaps_folded: u64,
}

/// What a hop counted over each window (by arrival time at the hop).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct HopWindows {
    pub records: WindowCounts,
    /// Numbers counted lost in the window (a later late arrival does not take them off here:
    /// it is counted in `late` of its own window).
    pub lost: WindowCounts,
    pub late: WindowCounts,
    pub duplicated: WindowCounts,
    pub out_of_order: WindowCounts,
}

const RECORDS: usize = 0;
const LOST: usize = 1;
const LATE: usize = 2;
const DUPLICATED: usize = 3;
const OUT_OF_ORDER: usize = 4;
const FIELDS: usize = 5;

/// A hop's figures for one origin kind, or for all.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct KindFigures {
    pub counters: HopCounters,
    pub windows: HopWindows,
    pub latency: LatencyFigures,
}

/// What a hop shows: totals and the split by origin kind (a bounded label set).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HopFigures {
    pub watching_since_ms: EpochMillis,
    /// Streams tracked now.
    pub streams: u64,
    /// Streams forgotten after `idle_ms` without records.
    pub streams_forgotten: u64,
    /// Traces the reader could not decode (counted into the hop by the reader).
    pub malformed: u64,
    pub malformed_windows: WindowCounts,
    pub total: KindFigures,
    /// Per origin kind.
    pub by_kind: BTreeMap<String, KindFigures>,
}

#[derive(Debug, Clone, Default)]
struct KindAccount {
    counters: HopCounters,
    windows: BucketRing<FIELDS>,
    latency: WindowedLatency,
}

impl KindAccount {
    fn count(&mut self, outcome: Outcome, forced: Forced, now: EpochMillis) {
        let c = &mut self.counters;
        c.records += 1;
        self.windows.add(RECORDS, 1, now);
        match outcome {
            Outcome::First | Outcome::Rebased | Outcome::InOrder | Outcome::AfterGap { .. } => {}
            Outcome::OutOfOrder => {
                c.out_of_order += 1;
                self.windows.add(OUT_OF_ORDER, 1, now);
            }
            Outcome::Late => {
                // Saturating: after a hand-over the loss may have been counted by the other
                // instance (docs/completeness.md, "Several instances").
                c.lost = c.lost.saturating_sub(1);
                c.late += 1;
                self.windows.add(LATE, 1, now);
            }
            Outcome::Duplicate => {
                c.duplicated += 1;
                self.windows.add(DUPLICATED, 1, now);
            }
            Outcome::BeforeBase => c.before_base += 1,
            Outcome::PastHorizon => c.past_horizon += 1,
            Outcome::Untracked => c.untracked += 1,
        }
        c.gaps_folded += forced.gaps_folded;
        self.lose(forced.lost, now);
    }

    fn lose(&mut self, n: u64, now: EpochMillis) {
        if n > 0 {
            self.counters.lost = self.counters.lost.saturating_add(n);
            self.windows.add(LOST, n, now);
        }
    }

    fn figures(&self, now: EpochMillis, since: EpochMillis) -> KindFigures {
        let w = |field| {
            WindowCounts::from_fn(|win: Window| self.windows.window(field, win, now, since))
        };
        KindFigures {
            counters: self.counters,
            windows: HopWindows {
                records: w(RECORDS),
                lost: w(LOST),
                late: w(LATE),
                duplicated: w(DUPLICATED),
                out_of_order: w(OUT_OF_ORDER),
            },
            latency: self.latency.figures(),
        }
    }
}

#[derive(Debug, Clone)]
struct OriginStreams {
    kind: usize,
    streams: Map<Box<str>, StreamSeqs>,
}

/// One stream's state handed from one monitor instance to another (a partition reassigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHandover {
    pub origin: String,
    pub stream: String,
    pub seqs: StreamSeqsSnapshot,
}

/// Why a handed-over stream cannot be adopted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptError {
    #[error(
        "stream {stream:?} of origin {origin:?} is already tracked by this hop — hand it over before it was read here, or drop this hand-over"
    )]
    AlreadyTracked { origin: String, stream: String },
    #[error(
        "this hop already tracks {0} streams, its cap (max_streams) — raise it or split the flow across more instances"
    )]
    Full(usize),
    #[error(
        "the hand-over holds {hops} hops and {edges} edges, not this flow's — configure both instances with the same hops and edges"
    )]
    OtherFlow { hops: usize, edges: usize },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// Completeness accounting at one hop.
#[derive(Debug, Clone)]
pub struct Hop {
    config: CompletenessConfig,
    since_ms: EpochMillis,
    now_ms: EpochMillis,
    origins: Map<Box<str>, OriginStreams>,
    streams: usize,
    streams_forgotten: u64,
    kinds: Kinds<KindAccount>,
    malformed: u64,
    malformed_windows: BucketRing<1>,
}

impl Hop {
    /// A hop that starts watching at `since_ms`.
    pub fn new(config: CompletenessConfig, since_ms: EpochMillis) -> Self {
        Self {
            kinds: Kinds::new(config.max_kinds, config.kind_prefixes.clone()),
            config,
            since_ms,
            now_ms: since_ms,
            origins: Map::default(),
            streams: 0,
            streams_forgotten: 0,
            malformed: 0,
            malformed_windows: BucketRing::default(),
        }
    }

    pub fn config(&self) -> &CompletenessConfig {
        &self.config
    }

    pub fn watching_since(&self) -> EpochMillis {
        self.since_ms
    }

    /// The hop's reader is in place only now (it connected after the hop was made): it has
    /// watched since `since_ms`, if that is later than what the hop was told.
    pub fn watching_from(&mut self, since_ms: EpochMillis) {
        self.since_ms = self.since_ms.max(since_ms);
        self.now_ms = self.now_ms.max(since_ms);
    }

    /// One traced record of `stream` (a Kafka partition as decimal text, or the MQTT topic) that
    /// `origin` made at `origin_ms` as number `seq`, arriving at `arrival_ms`.
    pub fn observe(
        &mut self,
        origin: &str,
        stream: &str,
        seq: u64,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) -> Outcome {
        self.observe_in(NO_PARTITION, origin, stream, seq, origin_ms, arrival_ms)
    }

    /// [`Hop::observe`] for a record read from Kafka `partition` whose stream is not the
    /// partition itself (a trace carried over from MQTT: its stream is the `mqtt-topic`), so
    /// that [`Hop::rebase_partition_on_next`] and [`Hop::hand_over_partition`] find it.
    pub fn observe_in_partition(
        &mut self,
        partition: u32,
        origin: &str,
        stream: &str,
        seq: u64,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) -> Outcome {
        self.observe_in(partition, origin, stream, seq, origin_ms, arrival_ms)
    }

    fn observe_in(
        &mut self,
        partition: u32,
        origin: &str,
        stream: &str,
        seq: u64,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) -> Outcome {
        self.now_ms = self.now_ms.max(arrival_ms);
        let now = self.now_ms;
        let max_gaps = self.config.max_gaps_per_stream;
        let (kind, outcome, forced) = match self.origins.get_mut(origin) {
            Some(entry) => match entry.streams.get_mut(stream) {
                Some(seqs) => {
                    seqs.partition = partition;
                    let (o, f) = seqs.observe(seq, now, max_gaps);
                    (entry.kind, o, f)
                }
                None if self.streams < self.config.max_streams => {
                    let mut seqs = StreamSeqs::starting_at(seq, now);
                    seqs.partition = partition;
                    entry.streams.insert(stream.into(), seqs);
                    self.streams += 1;
                    (entry.kind, Outcome::First, Forced::default())
                }
                None => (entry.kind, Outcome::Untracked, Forced::default()),
            },
            None => {
                let kind = self.kinds.slot_of(origin);
                if self.streams < self.config.max_streams {
                    let mut streams = Map::default();
                    let mut seqs = StreamSeqs::starting_at(seq, now);
                    seqs.partition = partition;
                    streams.insert(stream.into(), seqs);
                    self.origins
                        .insert(origin.into(), OriginStreams { kind, streams });
                    self.streams += 1;
                    (kind, Outcome::First, Forced::default())
                } else {
                    (kind, Outcome::Untracked, Forced::default())
                }
            }
        };
        let account = self.kinds.get_mut(kind);
        account.count(outcome, forced, now);
        if outcome != Outcome::Duplicate {
            account.latency.record(origin_ms, arrival_ms);
        }
        outcome
    }

    /// A record whose trace could not be decoded.
    pub fn malformed(&mut self, arrival_ms: EpochMillis) {
        self.now_ms = self.now_ms.max(arrival_ms);
        self.malformed += 1;
        self.malformed_windows.add(0, 1, self.now_ms);
    }

    /// Settles gaps whose grace ran out, trims what is past the horizon, forgets idle streams.
    /// Call it about once a second.
    pub fn tick(&mut self, now: EpochMillis) {
        self.now_ms = self.now_ms.max(now);
        let now = self.now_ms;
        let (grace, horizon, idle) = (
            self.config.grace_ms,
            self.config.horizon_ms,
            self.config.idle_ms,
        );
        let mut forgotten = 0;
        for entry in self.origins.values_mut() {
            let account = self.kinds.get_mut(entry.kind);
            entry.streams.retain(|_, seqs| {
                let lost = seqs.tick(now, grace, horizon);
                account.lose(lost, now);
                let keep = seqs.pending() > 0 || seqs.last_seen_ms.saturating_add(idle) > now;
                forgotten += u64::from(!keep);
                keep
            });
        }
        self.origins.retain(|_, e| !e.streams.is_empty());
        self.streams -= forgotten as usize;
        self.streams_forgotten += forgotten;
        for account in self.kinds.iter_mut() {
            account.windows.rotate(now);
            account.latency.rotate(now);
        }
        self.malformed_windows.rotate(now);
    }

    /// Numbers of `origin` on `stream` below `bound` were deleted before the reader saw them:
    /// not loss. For a reader that knows the numbers (a probe). Returns how many were skipped.
    pub fn skip_below(&mut self, origin: &str, stream: &str, bound: u64) -> u64 {
        let Some(entry) = self.origins.get_mut(origin) else {
            return 0;
        };
        let Some(seqs) = entry.streams.get_mut(stream) else {
            return 0;
        };
        let skipped = seqs.skip_below(bound);
        let c = &mut self.kinds.get_mut(entry.kind).counters;
        c.skipped = c.skipped.saturating_add(skipped);
        skipped
    }

    /// The reader's position on `stream` jumped forward past records it never read (a Kafka
    /// reader found its offset below the log start offset after retention or compaction): for
    /// every origin on that stream, the next record sets a new base instead of opening a gap.
    pub fn rebase_on_next(&mut self, stream: &str) {
        for entry in self.origins.values_mut() {
            if let Some(seqs) = entry.streams.get_mut(stream) {
                seqs.rebase_on_next();
            }
        }
    }

    /// Like [`Hop::rebase_on_next`] for every stream read from Kafka `partition` through
    /// [`Hop::observe_in_partition`].
    pub fn rebase_partition_on_next(&mut self, partition: u32) {
        for entry in self.origins.values_mut() {
            for seqs in entry.streams.values_mut() {
                if seqs.partition == partition {
                    seqs.rebase_on_next();
                }
            }
        }
    }

    /// Takes every origin's state of `stream` out of this hop, for another instance to adopt
    /// (the stream's partition was reassigned). Counters stay here: each instance reports what
    /// it counted, and the figures of a flow are their sum.
    pub fn hand_over(&mut self, stream: &str) -> Vec<StreamHandover> {
        self.hand_over_where(|name, _| name == stream)
    }

    /// Takes out every stream read from Kafka `partition` through
    /// [`Hop::observe_in_partition`].
    pub fn hand_over_partition(&mut self, partition: u32) -> Vec<StreamHandover> {
        self.hand_over_where(|_, seqs| seqs.partition == partition)
    }

    /// Takes out every stream read from Kafka `partition`: those observed in it (see
    /// [`Hop::hand_over_partition`]) and those named by the partition itself (a trace stamped
    /// per partition, observed with [`Hop::observe`]). What a shared flow hands over when the
    /// partition moves to another instance.
    pub fn hand_over_read_from(&mut self, partition: u32) -> Vec<StreamHandover> {
        let named = partition.to_string();
        self.hand_over_where(|name, seqs| {
            seqs.partition == partition || (seqs.partition == NO_PARTITION && name == named)
        })
    }

    fn hand_over_where(&mut self, take: impl Fn(&str, &StreamSeqs) -> bool) -> Vec<StreamHandover> {
        let mut out = Vec::new();
        for (origin, entry) in &mut self.origins {
            entry.streams.retain(|name, seqs| {
                let taken = take(name, seqs);
                if taken {
                    out.push(StreamHandover {
                        origin: origin.to_string(),
                        stream: name.to_string(),
                        seqs: seqs.snapshot(),
                    });
                }
                !taken
            });
        }
        self.streams -= out.len();
        self.origins.retain(|_, e| !e.streams.is_empty());
        out.sort_by(|a, b| (&a.origin, &a.stream).cmp(&(&b.origin, &b.stream)));
        out
    }

    /// Takes over a stream another instance handed over.
    pub fn adopt(&mut self, handover: StreamHandover) -> Result<(), AdoptError> {
        if self.streams >= self.config.max_streams {
            return Err(AdoptError::Full(self.streams));
        }
        let already = self
            .origins
            .get(handover.origin.as_str())
            .is_some_and(|e| e.streams.contains_key(handover.stream.as_str()));
        if already {
            return Err(AdoptError::AlreadyTracked {
                origin: handover.origin,
                stream: handover.stream,
            });
        }
        let seqs = StreamSeqs::from_snapshot(handover.seqs)?;
        let kind = self.kinds.slot_of(&handover.origin);
        self.origins
            .entry(handover.origin.into_boxed_str())
            .or_insert_with(|| OriginStreams {
                kind,
                streams: Map::default(),
            })
            .streams
            .insert(handover.stream.into_boxed_str(), seqs);
        self.streams += 1;
        Ok(())
    }

    pub fn stream_count(&self) -> usize {
        self.streams
    }

    /// Heap bytes held by stream state (keys, map slots, gaps), for the memory figures.
    pub fn stream_heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(Box<str>, StreamSeqs)>() + 1;
        self.origins
            .iter()
            .map(|(origin, e)| {
                origin.len()
                    + std::mem::size_of::<(Box<str>, OriginStreams)>()
                    + e.streams.capacity() * slot
                    + e.streams
                        .iter()
                        .map(|(k, s)| k.len() + s.heap_bytes())
                        .sum::<usize>()
            })
            .sum()
    }

    /// The figures as of the latest time the hop saw.
    pub fn figures(&self) -> HopFigures {
        let (now, since) = (self.now_ms, self.since_ms);
        let by_kind: BTreeMap<String, KindFigures> = self
            .kinds
            .iter()
            .map(|(kind, a)| (kind.to_owned(), a.figures(now, since)))
            .collect();
        let mut total = KindAccount::default();
        for (_, a) in self.kinds.iter() {
            total.latency.merge(&a.latency);
        }
        let mut total = total.figures(now, since);
        total.counters = sum_counters(by_kind.values().map(|f| &f.counters));
        let sum = |pick: fn(&HopWindows) -> &WindowCounts| {
            WindowCounts::sum(by_kind.values().map(|f| pick(&f.windows)))
                .unwrap_or_else(|| total_windows_empty(now, since))
        };
        total.windows = HopWindows {
            records: sum(|w| &w.records),
            lost: sum(|w| &w.lost),
            late: sum(|w| &w.late),
            duplicated: sum(|w| &w.duplicated),
            out_of_order: sum(|w| &w.out_of_order),
        };
        HopFigures {
            watching_since_ms: since,
            streams: self.streams as u64,
            streams_forgotten: self.streams_forgotten,
            malformed: self.malformed,
            malformed_windows: WindowCounts::from_fn(|w| {
                self.malformed_windows.window(0, w, now, since)
            }),
            total,
            by_kind,
        }
    }
}

fn total_windows_empty(now: EpochMillis, since: EpochMillis) -> WindowCounts {
    WindowCounts::from_fn(|w| BucketRing::<1>::default().window(0, w, now, since))
}

fn sum_counters<'a>(all: impl Iterator<Item = &'a HopCounters>) -> HopCounters {
    all.fold(HopCounters::default(), |s, c| HopCounters {
        records: s.records.saturating_add(c.records),
        lost: s.lost.saturating_add(c.lost),
        late: s.late.saturating_add(c.late),
        duplicated: s.duplicated.saturating_add(c.duplicated),
        out_of_order: s.out_of_order.saturating_add(c.out_of_order),
        before_base: s.before_base.saturating_add(c.before_base),
        past_horizon: s.past_horizon.saturating_add(c.past_horizon),
        skipped: s.skipped.saturating_add(c.skipped),
        untracked: s.untracked.saturating_add(c.untracked),
        gaps_folded: s.gaps_folded.saturating_add(c.gaps_folded),
    })
}

#[cfg(test)]
mod tests {
    use super::super::FOLDED_KIND;
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn hop() -> Hop {
        Hop::new(CompletenessConfig::default(), T0)
    }

    /// Feeds `seqs` of (origin, stream), each made 5 ms before it arrives at `at`.
    fn feed(h: &mut Hop, origin: &str, stream: &str, seqs: impl IntoIterator<Item = u64>, at: u64) {
        for seq in seqs {
            h.observe(origin, stream, seq, at - 5, at);
        }
    }

    fn counters(h: &Hop) -> HopCounters {
        h.figures().total.counters
    }

    fn assert_no_loss_nor_duplicate(h: &mut Hop, at: u64) {
        h.tick(at + 3_600_000);
        let c = counters(h);
        assert_eq!((c.lost, c.duplicated, c.late), (0, 0, 0), "{c:?}");
    }

    #[test]
    fn the_first_record_after_the_monitor_starts_sets_the_base() {
        let mut h = hop();
        // The part has been running for a while: its numbers are in the thousands.
        feed(&mut h, "sim-1", "machine/a", 5_000..5_100, T0 + 1_000);
        // Records in flight from before the start arrive after the first one.
        feed(&mut h, "sim-1", "machine/a", [4_998, 4_999], T0 + 1_000);
        assert_eq!(counters(&h).before_base, 2);
        assert_no_loss_nor_duplicate(&mut h, T0);
        assert_eq!(counters(&h).records, 102);
    }

    #[test]
    fn a_restarted_monitor_starts_a_new_base_where_it_resumes() {
        let mut before = hop();
        feed(&mut before, "sim-1", "0", 0..100, T0 + 1_000);
        // Down for a minute; the part kept counting.
        let mut after = Hop::new(CompletenessConfig::default(), T0 + 61_000);
        feed(&mut after, "sim-1", "0", 1_300..1_400, T0 + 62_000);
        assert_no_loss_nor_duplicate(&mut after, T0);
    }

    #[test]
    fn a_restarted_part_is_a_new_origin_with_a_fresh_base_and_the_old_one_is_forgotten() {
        let mut h = hop();
        feed(&mut h, "sim-7f3a", "0", 0..500, T0 + 1_000);
        // The part restarts with a new origin id and counts from 0 again.
        feed(&mut h, "sim-91c2", "0", 0..500, T0 + 2_000);
        assert_eq!(h.stream_count(), 2);
        h.tick(T0 + 1_000 + 900_000);
        assert_eq!(h.stream_count(), 1, "the old origin went idle");
        assert_eq!(h.figures().streams_forgotten, 1);
        assert_no_loss_nor_duplicate(&mut h, T0);
    }

    #[test]
    fn a_partition_added_is_a_new_stream() {
        let mut h = hop();
        feed(&mut h, "sim-1", "0", 0..100, T0 + 1_000);
        feed(&mut h, "sim-1", "1", 0..100, T0 + 1_000);
        // Partition 2 appears; the producer starts its numbers there at 0.
        feed(&mut h, "sim-1", "2", 0..50, T0 + 2_000);
        feed(&mut h, "sim-1", "0", 100..150, T0 + 2_000);
        assert_eq!(h.stream_count(), 3);
        assert_no_loss_nor_duplicate(&mut h, T0);
    }

    #[test]
    fn records_deleted_before_the_reader_got_there_are_not_loss() {
        let mut h = hop();
        feed(&mut h, "sim-1", "0", 0..100, T0 + 1_000);
        feed(&mut h, "sim-2", "0", 0..100, T0 + 1_000);
        // The reader fell behind the log start offset of partition 0: it jumps; it cannot
        // know the sequence numbers of what was deleted.
        h.rebase_on_next("0");
        feed(&mut h, "sim-1", "0", 700..800, T0 + 2_000);
        feed(&mut h, "sim-2", "0", 650..700, T0 + 2_000);
        // A probe that knows its numbers skips them instead.
        feed(&mut h, "probe-1", "0", 0..10, T0 + 2_000);
        assert_eq!(h.skip_below("probe-1", "0", 50), 40);
        feed(&mut h, "probe-1", "0", 50..60, T0 + 3_000);
        assert_eq!(counters(&h).skipped, 40);
        assert_no_loss_nor_duplicate(&mut h, T0);
    }

    #[test]
    fn deleted_records_of_carried_over_mqtt_streams_are_found_by_their_partition() {
        let mut h = hop();
        // The bridge wrote two MQTT topics to partition 2 and one to partition 0.
        for (partition, topic) in [(2, "machine/a"), (2, "machine/b"), (0, "machine/c")] {
            for seq in 0..10 {
                h.observe_in_partition(partition, "sim-1", topic, seq, T0, T0 + 1_000);
            }
        }
        // Retention deleted part of partition 2 before the reader got there.
        h.rebase_partition_on_next(2);
        for (partition, topic, from) in [
            (2, "machine/a", 500),
            (2, "machine/b", 480),
            (0, "machine/c", 12),
        ] {
            for seq in from..from + 10 {
                h.observe_in_partition(partition, "sim-1", topic, seq, T0, T0 + 2_000);
            }
        }
        h.tick(T0 + 60_000);
        // Partition 0 was not touched: its gap (10, 11) is loss.
        assert_eq!(counters(&h).lost, 2);
        // A move of partition 2 takes both its topics, and only them.
        let moved: Vec<String> = h
            .hand_over_partition(2)
            .into_iter()
            .map(|m| {
                assert_eq!(m.seqs.partition, Some(2));
                m.stream
            })
            .collect();
        assert_eq!(moved, ["machine/a", "machine/b"]);
        assert_eq!(h.stream_count(), 1);
    }

    #[test]
    fn loss_late_duplicates_and_out_of_order_are_counted_exactly() {
        let mut h = hop();
        feed(&mut h, "sim-1", "0", 0..10, T0 + 1_000);
        feed(&mut h, "sim-1", "0", 15..20, T0 + 2_000); // gap 10..=14 noticed at +2 s
        feed(&mut h, "sim-1", "0", [12], T0 + 3_000); // in time: out of order
        feed(&mut h, "sim-1", "0", [3, 19], T0 + 3_000); // copies
        h.tick(T0 + 11_999);
        assert_eq!(
            counters(&h).lost,
            0,
            "the grace runs from when the gap was noticed"
        );
        h.tick(T0 + 12_000);
        let c = counters(&h);
        assert_eq!(
            (c.records, c.lost, c.out_of_order, c.duplicated),
            (18, 4, 1, 2)
        );
        feed(&mut h, "sim-1", "0", [10, 14], T0 + 20_000);
        let c = counters(&h);
        assert_eq!((c.lost, c.late), (2, 2));
        h.malformed(T0 + 20_000);
        let f = h.figures();
        assert_eq!(f.malformed, 1);
        // Windows end at the last 10 s boundary: T0 + 20 s holds the first two buckets.
        let w = f.total.windows;
        assert_eq!(
            w.lost.one_minute.count, 4.0,
            "lost as declared in the window"
        );
        assert_eq!(w.records.one_minute.count, 18.0);
        assert_eq!(w.records.one_minute.covered_s, 20.0);
        assert_eq!(
            w.late.one_minute.count, 0.0,
            "the late ones are in the current bucket"
        );
        h.tick(T0 + 30_000);
        assert_eq!(h.figures().total.windows.late.one_minute.count, 2.0);
    }

    #[test]
    fn latency_is_from_the_origin_time_to_arrival_without_copies_and_skew_apart() {
        let mut h = hop();
        for seq in 0..100u64 {
            h.observe("sim-1", "0", seq, T0, T0 + 10 + seq);
        }
        h.observe("sim-1", "0", 50, T0, T0 + 100_000); // a copy: not a latency
        h.observe("sim-1", "0", 100, T0 + 500, T0 + 200); // arrived before it was made
        let l = h.figures().total.latency;
        assert_eq!(l.all.count, 100);
        assert_eq!(l.negative, 1);
        assert_eq!(l.all.max_ms, Some(109.0));
        // The rank-49 value of 10..=109 is 59; within 1 %.
        let p50 = l.all.p50_ms.unwrap();
        assert!((p50 - 59.0).abs() <= 0.59, "{p50}");
    }

    #[test]
    fn figures_split_by_origin_kind_never_by_origin_and_serialize() {
        let config = CompletenessConfig {
            max_kinds: 3,
            ..Default::default()
        };
        let mut h = Hop::new(config, T0);
        for i in 0..50 {
            feed(&mut h, &format!("sim-{i}"), "0", 0..2, T0 + 1_000);
        }
        feed(&mut h, "bridge-1", "0", 0..3, T0 + 1_000);
        feed(&mut h, "calls-1", "0", 0..4, T0 + 1_000);
        feed(&mut h, "sink-1", "0", 0..5, T0 + 1_000);
        let f = h.figures();
        let kinds: Vec<(&str, u64)> = f
            .by_kind
            .iter()
            .map(|(k, f)| (k.as_str(), f.counters.records))
            .collect();
        assert_eq!(kinds, [(FOLDED_KIND, 9), ("bridge", 3), ("sim", 100)]);
        assert_eq!(f.total.counters.records, 112);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["total"]["counters"]["records"], 112);
        assert_eq!(json["total"]["windows"]["records"]["1m"]["count"], 0.0);
        assert!(json["total"]["latency"]["5m"]["p99_ms"].is_number());
        assert_eq!(json["by_kind"]["sim"]["counters"]["records"], 100);
    }

    #[test]
    fn hostile_sequence_jumps_saturate_the_counters_instead_of_overflowing() {
        let mut h = hop();
        for stream in ["0", "1", "2"] {
            feed(
                &mut h,
                "evil-1",
                stream,
                [0, u64::MAX - 1, u64::MAX, u64::MAX],
                T0 + 1_000,
            );
        }
        h.skip_below("evil-1", "0", u64::MAX);
        h.tick(T0 + 60_000);
        h.tick(T0 + 70_000); // the bucket of the loss is complete
        let f = h.figures();
        assert_eq!(f.total.counters.lost, u64::MAX);
        assert_eq!(f.total.windows.lost.one_minute.count, u64::MAX as f64);
        assert_eq!(f.total.counters.duplicated, 3);
    }

    #[test]
    fn past_the_cap_on_streams_records_are_counted_not_tracked() {
        let config = CompletenessConfig {
            max_streams: 2,
            ..Default::default()
        };
        let mut h = Hop::new(config, T0);
        feed(&mut h, "sim-1", "0", 0..3, T0 + 1_000);
        feed(&mut h, "sim-1", "1", 0..3, T0 + 1_000);
        feed(&mut h, "sim-1", "2", [0, 5, 9], T0 + 1_000);
        feed(&mut h, "sim-2", "0", [0, 5, 9], T0 + 1_000);
        let c = counters(&h);
        assert_eq!((c.records, c.untracked), (12, 6));
        assert_eq!(h.stream_count(), 2);
        assert_no_loss_nor_duplicate(&mut h, T0);
    }

    #[test]
    fn a_stream_handed_over_continues_exactly_at_the_other_instance() {
        let (mut one, mut two) = (hop(), hop());
        feed(
            &mut one,
            "sim-1",
            "3",
            (0..10).filter(|s| *s != 5),
            T0 + 1_000,
        );
        feed(&mut one, "sim-2", "3", 0..4, T0 + 1_000);
        feed(&mut one, "sim-1", "4", 0..4, T0 + 1_000);
        // Partition 3 moves to instance two, through JSON as it would over the wire.
        let handed = one.hand_over("3");
        assert_eq!(handed.len(), 2);
        assert_eq!(one.stream_count(), 1);
        let wire = serde_json::to_string(&handed).unwrap();
        for h in serde_json::from_str::<Vec<StreamHandover>>(&wire).unwrap() {
            two.adopt(h).unwrap();
        }
        // 5 arrives within its grace, then the stream goes on: nothing lost, nothing doubled.
        feed(&mut two, "sim-1", "3", [5], T0 + 4_000);
        feed(&mut two, "sim-1", "3", 10..20, T0 + 4_000);
        feed(&mut two, "sim-2", "3", 4..8, T0 + 4_000);
        // Adopting a stream already tracked is refused with what to do.
        let again = StreamHandover {
            origin: "sim-1".into(),
            stream: "4".into(),
            seqs: StreamSeqs::starting_at(0, T0).snapshot(),
        };
        let err = one.adopt(again).unwrap_err().to_string();
        assert_no_loss_nor_duplicate(&mut two, T0);
        assert_no_loss_nor_duplicate(&mut one, T0);
        let c = counters(&two);
        assert_eq!((c.out_of_order, c.before_base), (1, 0));
        assert!(err.contains("already tracked"), "{err}");
    }

    #[test]
    fn memory_per_stream_is_as_documented() {
        assert_eq!(std::mem::size_of::<StreamSeqs>(), 80);
        let mut h = hop();
        let n = 10_000u64;
        for p in 0..n {
            // Ten origins, a thousand streams each: stream names of 4 bytes.
            feed(
                &mut h,
                &format!("sim-{}", p % 10),
                &format!("{:04}", p / 10),
                0..3,
                T0 + 1,
            );
        }
        let per_stream = h.stream_heap_bytes() as f64 / n as f64;
        eprintln!("{per_stream} bytes per stream");
        // 80 bytes of state + a 16-byte key + a control byte, at a hash map's load factor,
        // + the 4-byte name: under 200 bytes.
        assert!(per_stream < 200.0, "{per_stream} bytes per stream");
        // A gap costs 32 bytes.
        assert_eq!(
            std::mem::size_of::<super::super::ranges::Span<super::super::seqset::GapState>>(),
            32
        );
    }
}

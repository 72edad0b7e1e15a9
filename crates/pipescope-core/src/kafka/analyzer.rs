//! The stateful side of the Kafka formulas: feed it the successive [`OffsetsSnapshot`]s of one
//! cluster, get back a [`KafkaView`] with rates, lag, catch-up times and verdicts.
//!
//! "Now" is the snapshot's `time_ms` (the scraper stamps it from its [`crate::Clock`]), so the
//! analyzer is as deterministic as its input.
//!
//! Memory stays bounded: each partition keeps at most `history_points` end-offset readings for
//! lag in seconds and the readings of the last 15 minutes for its window counts, in one store
//! (see [`EndOffsetHistory`]), each group partition a window of `window_len` observations, and the
//! state of a partition or a group partition that no snapshot has reported for
//! `forget_after_ms` is dropped.

use std::borrow::Borrow;
use std::sync::Arc;

use serde::Serialize;

use crate::clock::EpochMillis;
use crate::kafka::lag::{
    CatchUp, LagMillis, LagNote, LagSeconds, LagSkew, OffsetLag, catch_up, lag_millis, lag_offsets,
    lag_skew,
};
use crate::kafka::loss::RetentionLoss;
use crate::kafka::rate::{EndOffsetHistory, EndOffsetPoint, OffsetReading, RateStep, RateTracker};
use crate::kafka::verdict::{CommitPoint, DEFAULT_WINDOW_LEN, LagWindow, Verdict};
use crate::kafka::{FastMap, GroupCommit, OffsetsSnapshot, TopicPartition};
use crate::windows::WindowCounts;

/// Settings of a [`KafkaAnalyzer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AnalyzerConfig {
    /// Observations in each group partition's verdict window (Burrow's N). Default 10.
    pub window_len: usize,
    /// End-offset readings kept per partition for the estimated lag in seconds. Flat runs cost
    /// two points, and a full history thins its older half instead of forgetting it (see
    /// [`EndOffsetHistory`]). Default 120: about 2 KB per partition, 20 MB for 10,000 busy
    /// partitions.
    pub history_points: usize,
    /// State of a partition or group partition not reported for this long is dropped.
    /// Until then a group partition that stopped being reported stays in the view (and turns
    /// STOPPED once that absence outlasts its window). Default 15 minutes.
    pub forget_after_ms: u64,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self {
            window_len: DEFAULT_WINDOW_LEN,
            history_points: 120,
            forget_after_ms: 15 * 60 * 1000,
        }
    }
}

/// How a partition's rate came out this scrape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateNote {
    /// Measured over the time since the previous good reading.
    Measured,
    /// First reading of this partition: a rate needs two.
    FirstReading,
    /// The log was replaced (topic re-created, offsets reset): counting restarts from the new
    /// log, with a rate when its first reading was held a scrape earlier.
    Reset,
    /// The end offset went back while the log start did not: held one scrape to tell a
    /// re-created topic from a new leader answering a lower end offset. No rate, and no lag
    /// against that end offset.
    EndWentBack,
    /// This snapshot is not newer than the previous good reading.
    NoElapsedTime,
    /// The partition's offsets failed this scrape (see `error`); its previous state is kept.
    OffsetsError,
}

/// One partition, as of this snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionView {
    /// Shared with the analyzer's and the snapshot's name of the topic.
    pub topic: Arc<str>,
    pub partition: i32,
    pub earliest: Option<i64>,
    pub latest: Option<i64>,
    /// Records appended over the last 1, 5 and 15 minutes, as of this scrape (see
    /// [`EndOffsetHistory::count`]). `None` when this scrape gave no usable reading (offsets failed, or
    /// an end offset held as possibly a reset).
    pub rates: Option<WindowCounts>,
    /// Records per second over the last scrape interval (for the live chart: bursty producers
    /// make it jump between scrapes).
    pub instant_messages_per_second: Option<f64>,
    /// The interval `instant_messages_per_second` is over, in seconds.
    pub instant_interval_s: Option<f64>,
    pub rate_note: RateNote,
    /// Why the offsets are unknown this scrape.
    pub error: Option<String>,
}

/// One topic: sums over the partitions whose rates are known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicView {
    pub topic: Arc<str>,
    /// Partitions reported this scrape.
    pub partitions: usize,
    /// Of those, the ones whose window counts are known (and summed in `rates`).
    pub partitions_with_rate: usize,
    /// The sum of those partitions' window counts ([`WindowCounts::sum`]: a window is covered
    /// only when it is for every one of them).
    pub rates: Option<WindowCounts>,
    /// The sum of the partitions' instantaneous rates that are known (live chart only).
    pub instant_messages_per_second: Option<f64>,
    /// The longest of the intervals those rates are over, in seconds.
    pub instant_interval_s: Option<f64>,
}

/// One partition of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPartitionView {
    pub partition: i32,
    pub committed: i64,
    /// The end offset the lag was taken against (this scrape's, or the last known when stale).
    pub latest: Option<i64>,
    pub lag: OffsetLag,
    pub lag_seconds: LagSeconds,
    pub catch_up: CatchUp,
    pub verdict: Verdict,
    /// Observations in the verdict window, and whether it is full.
    pub window_observations: u32,
    pub window_complete: bool,
    pub last_commit_seen_ms: Option<EpochMillis>,
    /// `false` when this snapshot did not report the group on this partition: the numbers are
    /// the last known ones.
    pub reported_this_scrape: bool,
    /// Records deleted (retention, DeleteRecords) before the group read them, since the
    /// analyzer started watching this group partition (see [`crate::kafka::loss`]).
    pub lost_to_retention: u64,
    /// Why the verdict is LOST; `None` otherwise.
    pub verdict_reason: Option<Box<str>>,
}

/// One topic of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupTopicView {
    pub topic: String,
    /// Sum of the known lags.
    pub lag_offsets: i64,
    /// Partitions whose lag is unknown (not in `lag_offsets`).
    pub partitions_lag_unknown: usize,
    pub max_lag_seconds: Option<f64>,
    pub verdict: Verdict,
    /// Sum over its partitions.
    pub lost_to_retention: u64,
    pub partitions: Vec<GroupPartitionView>,
}

/// One consumer group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupView {
    pub group: String,
    /// Sum of the known lags over all its partitions.
    pub lag_offsets: i64,
    pub partitions_lag_unknown: usize,
    /// Partitions where the committed offset is beyond the end offset (lag unknown).
    pub partitions_beyond_end: usize,
    pub max_lag_seconds: Option<f64>,
    /// Whether `max_lag_seconds` comes from an estimated partition.
    pub max_lag_seconds_estimated: bool,
    /// Its worst partition's verdict.
    pub verdict: Verdict,
    /// Why the verdict is LOST (its first losing partition's reason); `None` otherwise.
    pub verdict_reason: Option<String>,
    /// Records deleted before the group read them, summed over its partitions.
    pub lost_to_retention: u64,
    pub topics: Vec<GroupTopicView>,
}

/// A group's processing skew ([`crate::kafka::lag::lag_skew`]) over the partitions whose lag
/// this scrape reported, and which partition is the worst.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupSkew {
    #[serde(flatten)]
    pub skew: LagSkew,
    pub worst_topic: String,
    pub worst_partition: i32,
    /// Partitions the skew was taken over.
    pub partitions: usize,
}

impl GroupView {
    /// `None` when no partition's lag is known this scrape.
    pub fn lag_skew(&self) -> Option<GroupSkew> {
        let known: Vec<(&str, i32, i64)> = self
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.as_str(), p)))
            .filter(|(_, p)| p.reported_this_scrape)
            .filter_map(|(topic, p)| Some((topic, p.partition, p.lag.offsets?)))
            .collect();
        let lags: Vec<i64> = known.iter().map(|k| k.2).collect();
        let skew = lag_skew(&lags)?;
        let (topic, partition, _) = known[skew.worst_index];
        Some(GroupSkew {
            skew,
            worst_topic: topic.to_owned(),
            worst_partition: partition,
            partitions: known.len(),
        })
    }
}

/// Running counts since the analyzer started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AnalyzerCounters {
    /// Commits found a little past the end offset (a commit racing the end-offset read),
    /// reported as lag 0.
    pub clamped_commits_total: u64,
    /// Partitions found re-created or reset (offsets went backwards).
    pub partition_resets_total: u64,
    /// Backward commits that did not persist to the next scrape, ignored by the verdicts.
    pub ignored_rewinds_total: u64,
}

/// Everything derived from one snapshot. Lists are sorted by topic, partition and group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KafkaView {
    pub time_ms: EpochMillis,
    pub partitions: Vec<PartitionView>,
    pub topics: Vec<TopicView>,
    pub groups: Vec<GroupView>,
    pub counters: AnalyzerCounters,
}

/// The state of one partition.
#[derive(Debug)]
struct PartitionState {
    rates: RateTracker,
    /// End-offset readings for lag in seconds and the window counts, in one compact store.
    history: EndOffsetHistory,
    /// Bumped on every reset, so group windows built on the old offsets are cleared.
    generation: u32,
    last_reported_ms: EpochMillis,
}

/// A topic's partitions, sorted by partition number: the topic's name is held once, as the
/// key (shared with its group partitions), and a partition is found by the name's hash and a
/// binary search.
type TopicPartitions = Vec<(i32, PartitionState)>;

/// The state of one group on one partition. A big cluster has hundreds of thousands of them, so
/// what the view can derive is not kept: the lag in offsets follows from the committed offset,
/// the end offset and `lag_note`; the end offset is unknown exactly when the note says so; lag
/// in seconds is kept in the whole milliseconds it was computed from; and what only a loss sets
/// is boxed inside [`RetentionLoss`].
#[derive(Debug)]
struct GroupPartitionState {
    window: LagWindow,
    committed: i64,
    /// The end offset the lag was taken against, unless `lag_note` is `EndOffsetUnknown`.
    latest: i64,
    last_reported_ms: EpochMillis,
    lag_seconds: LagMillis,
    loss: RetentionLoss,
    /// The log start when the committed offset was last seen below it.
    below_log_start: Option<i64>,
    generation: u32,
    /// Scrapes the LOST verdict still holds, counting this one: the last loss stays in the
    /// window for `window_len` scrapes.
    lost_scrapes_left: u32,
    lag_note: LagNote,
    was_past_end: bool,
}

/// One group partition in its group's list.
#[derive(Debug)]
struct GroupPartition {
    topic: Arc<str>,
    partition: i32,
    state: GroupPartitionState,
}

impl GroupPartition {
    fn key(&self) -> (&str, i32) {
        (&self.topic, self.partition)
    }
}

/// A group's partitions, sorted by topic and partition: no hash table per group (a sorted list
/// has no empty slots, and the group's view lists its partitions in this order anyway).
type GroupPartitions = Vec<GroupPartition>;

/// This scrape's offsets of a partition and how much its end grew since the previous reading.
#[derive(Debug, Clone, Copy)]
struct ScrapedEnd {
    earliest: i64,
    latest: i64,
    growth: Option<i64>,
}

/// Derives rates, lag and verdicts from the successive snapshots of one cluster.
#[derive(Debug)]
pub struct KafkaAnalyzer {
    config: AnalyzerConfig,
    /// Topic → its partitions.
    partitions: FastMap<Arc<str>, TopicPartitions>,
    /// Group → its partitions.
    groups: FastMap<Box<str>, GroupPartitions>,
    counters: AnalyzerCounters,
}

impl Default for KafkaAnalyzer {
    fn default() -> Self {
        Self::new(AnalyzerConfig::default())
    }
}

impl KafkaAnalyzer {
    pub fn new(config: AnalyzerConfig) -> Self {
        Self {
            config,
            partitions: FastMap::default(),
            groups: FastMap::default(),
            counters: AnalyzerCounters::default(),
        }
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    pub fn counters(&self) -> AnalyzerCounters {
        self.counters
    }

    /// Partitions and group partitions currently tracked (what bounds the memory).
    pub fn tracked(&self) -> (usize, usize) {
        let partitions = self.partitions.values().map(Vec::len).sum();
        let group_partitions = self.groups.values().map(Vec::len).sum();
        (partitions, group_partitions)
    }

    fn partition(&self, tp: &TopicPartition) -> Option<&PartitionState> {
        partition_in(&self.partitions, tp)
    }

    /// The state of `tp`, made when new.
    fn partition_mut(&mut self, tp: &TopicPartition) -> &mut PartitionState {
        if !self.partitions.contains_key(&*tp.topic) {
            self.partitions.insert(Arc::clone(&tp.topic), Vec::new());
        }
        let partitions = self.partitions.get_mut(&*tp.topic).expect("inserted above");
        let index = match partitions.binary_search_by_key(&tp.partition, |(p, _)| *p) {
            Ok(index) => index,
            Err(index) => {
                let state = PartitionState::new(self.config.history_points);
                partitions.insert(index, (tp.partition, state));
                index
            }
        };
        &mut partitions[index].1
    }

    /// The shared name of `topic` when a partition of it is tracked, else a new one.
    fn topic_name(&self, topic: &str) -> Arc<str> {
        self.partitions
            .get_key_value(topic)
            .map_or_else(|| Arc::from(topic), |(name, _)| Arc::clone(name))
    }

    /// Seeds a partition's end-offset history and window counts from stored points (oldest
    /// first), e.g. after a restart, so lag in seconds can be estimated at once and the windows
    /// the points reach back over are covered at once (the points of the last 15 minutes must be
    /// at scrape resolution, plus one before, for the counts to be as exact as live ones).
    pub fn restore_partition_history(
        &mut self,
        tp: TopicPartition,
        points: impl IntoIterator<Item = EndOffsetPoint>,
    ) {
        let history = EndOffsetHistory::from_points(self.config.history_points, points);
        let last_reported_ms = history.newest().map_or(0, |p| p.time_ms);
        let state = self.partition_mut(&tp);
        state.history = history;
        state.last_reported_ms = state.last_reported_ms.max(last_reported_ms);
    }

    /// Seeds a group partition's verdict window from stored `(time, committed, latest)` points
    /// (oldest first), e.g. after a restart.
    pub fn restore_group_window(
        &mut self,
        group: &str,
        tp: TopicPartition,
        points: impl IntoIterator<Item = CommitPoint>,
    ) {
        let window = LagWindow::from_points(self.config.window_len, points);
        let Some(last) = window.points().last() else {
            return;
        };
        let generation = self.partition(&tp).map_or(0, |p| p.generation);
        let state = GroupPartitionState {
            generation,
            committed: last.committed,
            latest: last.latest,
            lag_note: LagNote::Measured,
            lag_seconds: LagMillis::Unknown,
            was_past_end: false,
            last_reported_ms: last.time_ms,
            window,
            loss: RetentionLoss::default(),
            below_log_start: None,
            lost_scrapes_left: 0,
        };
        let topic = self.topic_name(&tp.topic);
        if !self.groups.contains_key(group) {
            self.groups.insert(group.into(), Vec::new());
        }
        let partitions = self.groups.get_mut(group).expect("inserted above");
        let entry = GroupPartition {
            topic,
            partition: tp.partition,
            state,
        };
        match partitions.binary_search_by(|p| p.key().cmp(&entry.key())) {
            Ok(index) => partitions[index] = entry,
            Err(index) => partitions.insert(index, entry),
        }
    }

    /// Marks groups whose committed offsets could not be fetched this scrape (coordinator down,
    /// request failed). Call it before [`KafkaAnalyzer::ingest`], with the snapshot's time.
    /// Their partitions keep their last numbers (shown as not reported this scrape), and the
    /// missing answer does not count towards STOPPED: no answer is not the same as no commit.
    /// A group simply left out of a snapshot is taken as no longer committing.
    pub fn hold_groups<'a>(
        &mut self,
        groups: impl IntoIterator<Item = &'a str>,
        time_ms: EpochMillis,
    ) {
        let held: std::collections::HashSet<&str> = groups.into_iter().collect();
        if held.is_empty() {
            return;
        }
        for group in held {
            for p in self.groups.get_mut(group).into_iter().flatten() {
                p.state.window.note_commit_seen(time_ms);
            }
        }
    }

    /// Takes in one snapshot and returns the derived view as of its time.
    ///
    /// Commits with a negative offset (OffsetFetch's "no committed offset") are ignored. A
    /// partition whose offsets failed must be reported with `Err`, not left out: an `Err` keeps
    /// its state, while leaving it out starts the clock towards forgetting it.
    ///
    /// Given the snapshot itself (not a reference), it is dropped before the views are made: at
    /// 100,000 partitions and 200,000 group partitions it is ~18 MB that need not be alive
    /// beside two views.
    pub fn ingest(&mut self, snapshot: impl Borrow<OffsetsSnapshot>) -> KafkaView {
        let now = snapshot.borrow().time_ms;
        let partition_views = self.ingest_offsets(snapshot.borrow());
        drop(snapshot);

        // Forgets what was not reported for long, and gives back the room partitions added or
        // forgotten left (a grown list has up to twice the room it needs).
        let forget_after = self.config.forget_after_ms;
        self.partitions.retain(|_, partitions| {
            partitions.retain(|(_, p)| now.saturating_sub(p.last_reported_ms) <= forget_after);
            partitions.shrink_to_fit();
            !partitions.is_empty()
        });
        self.groups.retain(|_, partitions| {
            partitions.retain(|p| now.saturating_sub(p.state.last_reported_ms) <= forget_after);
            partitions.shrink_to_fit();
            !partitions.is_empty()
        });

        KafkaView {
            time_ms: now,
            topics: topic_views(&partition_views),
            partitions: partition_views,
            groups: self.group_views(now),
            counters: self.counters,
        }
    }

    /// The offsets and commits of `snapshot` into the histories; returns the partitions' views,
    /// sorted by topic and partition.
    fn ingest_offsets(&mut self, snapshot: &OffsetsSnapshot) -> Vec<PartitionView> {
        let now = snapshot.time_ms;
        let mut partition_views = Vec::with_capacity(snapshot.partitions.len());
        let mut scraped_ends: FastMap<&TopicPartition, ScrapedEnd> = FastMap::default();

        for reported in &snapshot.partitions {
            let tp = &reported.tp;
            let state = self.partition_mut(tp);
            state.last_reported_ms = state.last_reported_ms.max(now);
            let mut view = PartitionView {
                topic: Arc::clone(&tp.topic),
                partition: tp.partition,
                earliest: None,
                latest: None,
                rates: None,
                instant_messages_per_second: None,
                instant_interval_s: None,
                rate_note: RateNote::OffsetsError,
                error: None,
            };
            let mut resets = 0;
            match &reported.offsets {
                Err(reason) => view.error = Some(reason.clone()),
                Ok(range) => {
                    let reading = OffsetReading {
                        time_ms: now,
                        earliest: range.earliest,
                        latest: range.latest,
                    };
                    let previous = state.rates.last_good();
                    let step = state.rates.observe(reading);
                    let mut growth = None;
                    let mut instant_interval_ms = None;
                    view.rate_note = match step {
                        RateStep::FirstReading => RateNote::FirstReading,
                        RateStep::Measured { interval_ms, .. } => {
                            growth = previous.map(|p| reading.latest - p.latest);
                            instant_interval_ms = Some(interval_ms);
                            RateNote::Measured
                        }
                        RateStep::EndWentBack => RateNote::EndWentBack,
                        RateStep::Reset {
                            first_of_new_log, ..
                        } => {
                            state.history.clear();
                            if let Some(first) = first_of_new_log {
                                state.history.record(first.time_ms, first.latest);
                                growth = Some(reading.latest - first.latest);
                                instant_interval_ms = Some(now.saturating_sub(first.time_ms));
                            }
                            state.generation = state.generation.wrapping_add(1);
                            resets += 1;
                            RateNote::Reset
                        }
                        RateStep::NoElapsedTime => RateNote::NoElapsedTime,
                    };
                    view.instant_messages_per_second = step.messages_per_second();
                    view.instant_interval_s = instant_interval_ms
                        .filter(|_| view.instant_messages_per_second.is_some())
                        .map(|ms| ms as f64 / 1000.0);
                    view.earliest = Some(range.earliest);
                    view.latest = Some(range.latest);
                    // A held lower end offset may be a blip: not a reading of the log to count,
                    // nor one to take lag against.
                    if step != RateStep::EndWentBack {
                        state.history.record(now, reading.latest);
                        view.rates = Some(state.history.counts());
                        let end = ScrapedEnd {
                            earliest: range.earliest,
                            latest: range.latest,
                            growth,
                        };
                        scraped_ends.insert(tp, end);
                    }
                }
            }
            self.counters.partition_resets_total += resets;
            partition_views.push(view);
        }
        partition_views.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));

        // By group, topic and partition: each group is looked up once, and its new partitions
        // are merged into its sorted list at once.
        let mut commits: Vec<&GroupCommit> = snapshot
            .commits
            .iter()
            .filter(|c| c.committed >= 0)
            .collect();
        if !commits.is_sorted_by_key(commit_order) {
            commits.sort_by(|a, b| commit_order(a).cmp(&commit_order(b)));
        }
        for run in commits.chunk_by(|a, b| a.group == b.group) {
            self.ingest_group_commits(run, &scraped_ends, now);
        }
        partition_views
    }

    /// One group's commits of this snapshot (`run`, sorted by topic and partition).
    fn ingest_group_commits(
        &mut self,
        run: &[&GroupCommit],
        scraped_ends: &FastMap<&TopicPartition, ScrapedEnd>,
        now: EpochMillis,
    ) {
        let group = &*run[0].group;
        let find = |partitions: &GroupPartitions, tp: &TopicPartition| {
            partitions.binary_search_by(|p| p.key().cmp(&(&*tp.topic, tp.partition)))
        };
        let mut new_partitions: Vec<GroupPartition> = Vec::new();
        {
            let known = self.groups.get(group).map_or(&[][..], Vec::as_slice);
            for commit in run {
                let is_new = known
                    .binary_search_by(|p| p.key().cmp(&(&commit.tp.topic, commit.tp.partition)))
                    .is_err();
                let repeated = new_partitions
                    .last()
                    .is_some_and(|p| p.key() == (&*commit.tp.topic, commit.tp.partition));
                if is_new && !repeated {
                    let generation = self.partition(&commit.tp).map_or(0, |p| p.generation);
                    new_partitions.push(GroupPartition {
                        topic: self.topic_name(&commit.tp.topic),
                        partition: commit.tp.partition,
                        state: GroupPartitionState::new(self.config.window_len, generation),
                    });
                }
            }
        }
        if !self.groups.contains_key(group) {
            self.groups.insert(group.into(), Vec::new());
        }
        if !new_partitions.is_empty() {
            let partitions = self.groups.get_mut(group).expect("inserted above");
            partitions.append(&mut new_partitions);
            partitions.sort_by(|a, b| a.key().cmp(&b.key()));
        }
        let partitions = self.groups.get_mut(group).expect("inserted above");
        for commit in run {
            let partition = partition_in(&self.partitions, &commit.tp);
            let index = find(partitions, &commit.tp).expect("inserted above");
            partitions[index].state.observe(
                commit,
                scraped_ends.get(&commit.tp),
                partition.map_or(0, |p| p.generation),
                partition.map(|p| &p.history),
                now,
                self.config.window_len,
                &mut self.counters,
            );
        }
    }

    fn group_views(&self, now: EpochMillis) -> Vec<GroupView> {
        // Sorted, then cut into runs: each list is allocated at its size (a big cluster has
        // ~200,000 group partitions, and two views are alive while the next is made).
        let mut groups: Vec<(&str, &GroupPartitions)> = self
            .groups
            .iter()
            .map(|(group, partitions)| (&**group, partitions))
            .collect();
        groups.sort_unstable_by_key(|(group, _)| *group);
        groups
            .into_iter()
            .map(|(group, partitions)| {
                let topics: Vec<GroupTopicView> = partitions
                    .chunk_by(|a, b| a.topic == b.topic)
                    .map(|run| {
                        let partitions: Vec<GroupPartitionView> =
                            run.iter().map(|p| p.state.view(p.partition, now)).collect();
                        GroupTopicView {
                            topic: run[0].topic.to_string(),
                            lag_offsets: partitions.iter().filter_map(|p| p.lag.offsets).sum(),
                            partitions_lag_unknown: partitions
                                .iter()
                                .filter(|p| p.lag.offsets.is_none())
                                .count(),
                            max_lag_seconds: max_seconds(partitions.iter().map(|p| p.lag_seconds))
                                .map(|s| s.0),
                            verdict: partitions
                                .iter()
                                .map(|p| p.verdict)
                                .max()
                                .unwrap_or_default(),
                            lost_to_retention: partitions.iter().map(|p| p.lost_to_retention).sum(),
                            partitions,
                        }
                    })
                    .collect();
                let all = || topics.iter().flat_map(|t| t.partitions.iter());
                let max = max_seconds(all().map(|p| p.lag_seconds));
                GroupView {
                    group: group.to_owned(),
                    lag_offsets: topics.iter().map(|t| t.lag_offsets).sum(),
                    partitions_lag_unknown: topics.iter().map(|t| t.partitions_lag_unknown).sum(),
                    partitions_beyond_end: all()
                        .filter(|p| p.lag.note == LagNote::CommittedBeyondEnd)
                        .count(),
                    max_lag_seconds: max.map(|s| s.0),
                    max_lag_seconds_estimated: max.is_some_and(|s| s.1),
                    verdict: topics.iter().map(|t| t.verdict).max().unwrap_or_default(),
                    verdict_reason: topics.iter().find_map(|t| {
                        t.partitions.iter().find_map(|p| {
                            let reason = p.verdict_reason.as_ref()?;
                            Some(format!("{} partition {}: {reason}", t.topic, p.partition))
                        })
                    }),
                    lost_to_retention: topics.iter().map(|t| t.lost_to_retention).sum(),
                    topics,
                }
            })
            .collect()
    }
}

fn max_seconds(values: impl Iterator<Item = LagSeconds>) -> Option<(f64, bool)> {
    values
        .filter_map(|s| s.seconds.map(|v| (v, s.is_estimated())))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn topic_views(partitions: &[PartitionView]) -> Vec<TopicView> {
    let mut topics: Vec<TopicView> = Vec::new();
    // `partitions` is sorted by topic: consecutive runs are one topic.
    for p in partitions {
        if topics.last().is_none_or(|t| t.topic != p.topic) {
            topics.push(TopicView {
                topic: p.topic.clone(),
                partitions: 0,
                partitions_with_rate: 0,
                rates: None,
                instant_messages_per_second: None,
                instant_interval_s: None,
            });
        }
        let topic = topics.last_mut().expect("pushed above");
        topic.partitions += 1;
        if let Some(rates) = &p.rates {
            topic.partitions_with_rate += 1;
            topic.rates = Some(topic.rates.map_or(*rates, |sum| sum.plus(rates)));
        }
        if let Some(rate) = p.instant_messages_per_second {
            topic.instant_messages_per_second =
                Some(topic.instant_messages_per_second.unwrap_or(0.0) + rate);
            topic.instant_interval_s = match (topic.instant_interval_s, p.instant_interval_s) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    topics
}

impl PartitionState {
    fn new(history_points: usize) -> Self {
        Self {
            rates: RateTracker::new(),
            history: EndOffsetHistory::new(history_points),
            generation: 0,
            last_reported_ms: 0,
        }
    }
}

/// The order commits are taken in: by group, topic and partition.
fn commit_order<'a>(commit: &&'a GroupCommit) -> (&'a str, &'a str, i32) {
    let commit: &'a GroupCommit = commit;
    (&commit.group, &commit.tp.topic, commit.tp.partition)
}

/// The partition `tp` in `partitions`.
fn partition_in<'a>(
    partitions: &'a FastMap<Arc<str>, TopicPartitions>,
    tp: &TopicPartition,
) -> Option<&'a PartitionState> {
    let partitions = partitions.get(&*tp.topic)?;
    let index = partitions
        .binary_search_by_key(&tp.partition, |(p, _)| *p)
        .ok()?;
    Some(&partitions[index].1)
}

impl GroupPartitionState {
    fn new(window_len: usize, generation: u32) -> Self {
        Self {
            window: LagWindow::new(window_len),
            generation,
            committed: 0,
            latest: 0,
            lag_note: LagNote::EndOffsetUnknown,
            lag_seconds: LagMillis::Unknown,
            was_past_end: false,
            last_reported_ms: 0,
            loss: RetentionLoss::default(),
            below_log_start: None,
            lost_scrapes_left: 0,
        }
    }

    /// Takes in this scrape's commit: `end` is the partition's end offset this scrape (`None`
    /// when unknown), `generation` its count of resets, `history` its end-offset history.
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &mut self,
        commit: &GroupCommit,
        end: Option<&ScrapedEnd>,
        generation: u32,
        history: Option<&EndOffsetHistory>,
        now: EpochMillis,
        window_len: usize,
        counters: &mut AnalyzerCounters,
    ) {
        if self.generation != generation {
            // The partition was re-created: the old commits say nothing about the new log.
            self.window.clear();
            self.was_past_end = false;
            self.loss.restart();
            self.below_log_start = None;
            self.generation = generation;
        }
        self.committed = commit.committed;
        self.last_reported_ms = now;
        let Some(end) = end else {
            self.window.note_commit_seen(now);
            self.lag_note = LagNote::EndOffsetUnknown;
            self.lag_seconds = LagMillis::Unknown;
            return;
        };
        let lost = self.loss.observe(commit.committed, end.earliest);
        self.below_log_start = (commit.committed < end.earliest).then_some(end.earliest);
        self.lost_scrapes_left = if lost.is_some() || self.below_log_start.is_some() {
            u32::try_from(window_len).unwrap_or(u32::MAX)
        } else {
            self.lost_scrapes_left.saturating_sub(1)
        };
        let lag = lag_offsets(commit.committed, end.latest, end.growth, self.was_past_end);
        self.was_past_end = commit.committed > end.latest;
        self.latest = end.latest;
        self.lag_note = lag.note;
        match lag.note {
            LagNote::CommittedBeyondEnd => self.window.note_commit_seen(now),
            note => {
                if note == LagNote::ClampedCommitRace {
                    counters.clamped_commits_total += 1;
                }
                let ignored_before = self.window.ignored_rewinds();
                self.window
                    .push(CommitPoint::new(now, commit.committed, end.latest));
                counters.ignored_rewinds_total += self.window.ignored_rewinds() - ignored_before;
            }
        }
        self.lag_seconds = match (lag.offsets, history) {
            (Some(l), Some(history)) => {
                lag_millis(now, l, commit.committed, commit.record_time_ms, history)
            }
            _ => LagMillis::Unknown,
        };
    }

    /// The lag in offsets, from the committed offset, the end offset and how it was taken.
    fn lag(&self) -> OffsetLag {
        let offsets = match self.lag_note {
            LagNote::Measured => Some((self.latest - self.committed).max(0)),
            LagNote::ClampedCommitRace => Some(0),
            LagNote::CommittedBeyondEnd | LagNote::EndOffsetUnknown => None,
        };
        OffsetLag {
            offsets,
            note: self.lag_note,
        }
    }

    /// What the view shows of this group partition at `now`.
    fn view(&self, partition: i32, now: EpochMillis) -> GroupPartitionView {
        let (report, rates) = self.window.evaluate_with_rates(now);
        // Boxed (two words, not three): a big cluster has 200,000 of these rows in each view.
        let verdict_reason = self.lost_reason().map(String::into_boxed_str);
        let lag = self.lag();
        GroupPartitionView {
            partition,
            committed: self.committed,
            latest: (self.lag_note != LagNote::EndOffsetUnknown).then_some(self.latest),
            lag,
            lag_seconds: self.lag_seconds.seconds(),
            catch_up: catch_up(lag.offsets, rates),
            verdict: if verdict_reason.is_some() {
                Verdict::Lost
            } else {
                report.verdict
            },
            window_observations: u32::try_from(report.observations).unwrap_or(u32::MAX),
            window_complete: report.complete,
            last_commit_seen_ms: self.window.last_commit_seen_ms(),
            reported_this_scrape: self.last_reported_ms == now,
            lost_to_retention: self.loss.total(),
            verdict_reason,
        }
    }

    /// Why the group partition is LOST, while it is: its committed offset is below the log
    /// start, or records were lost within the last window of scrapes.
    fn lost_reason(&self) -> Option<String> {
        if let Some(log_start) = self.below_log_start {
            return Some(format!(
                "committed offset {} is below the log start {log_start}: records deleted by retention or DeleteRecords before the group read them ({} lost so far)",
                self.committed,
                self.loss.total()
            ));
        }
        if self.lost_scrapes_left == 0 {
            return None;
        }
        let last = self.loss.last()?;
        Some(format!(
            "{} records (offsets {} to {}) were deleted by retention or DeleteRecords before the group read them",
            last.records(),
            last.from,
            last.to - 1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::lag::LagSecondsBasis;
    use crate::kafka::{GroupCommit, OffsetRange, PartitionOffsets};
    use crate::windows::{Window, WindowCount};

    /// A snapshot at `s` seconds.
    struct Snap(OffsetsSnapshot);

    fn at(s: u64) -> Snap {
        Snap(OffsetsSnapshot {
            time_ms: s * 1_000,
            ..Default::default()
        })
    }

    impl Borrow<OffsetsSnapshot> for &Snap {
        fn borrow(&self) -> &OffsetsSnapshot {
            &self.0
        }
    }

    impl std::ops::Deref for Snap {
        type Target = OffsetsSnapshot;
        fn deref(&self) -> &OffsetsSnapshot {
            &self.0
        }
    }

    impl Snap {
        fn part(mut self, topic: &str, partition: i32, earliest: i64, latest: i64) -> Self {
            self.0.partitions.push(PartitionOffsets {
                tp: TopicPartition::new(topic, partition),
                offsets: Ok(OffsetRange { earliest, latest }),
            });
            self
        }
        fn failed(mut self, topic: &str, partition: i32) -> Self {
            self.0.partitions.push(PartitionOffsets {
                tp: TopicPartition::new(topic, partition),
                offsets: Err("leader not available".into()),
            });
            self
        }
        fn commit(mut self, group: &str, topic: &str, partition: i32, committed: i64) -> Self {
            self.0.commits.push(GroupCommit {
                group: group.into(),
                tp: TopicPartition::new(topic, partition),
                committed,
                record_time_ms: None,
            });
            self
        }
        fn commit_at(mut self, group: &str, topic: &str, committed: i64, record_s: u64) -> Self {
            self.0.commits.push(GroupCommit {
                group: group.into(),
                tp: TopicPartition::new(topic, 0),
                committed,
                record_time_ms: Some(record_s * 1_000),
            });
            self
        }
    }

    fn analyzer(window_len: usize) -> KafkaAnalyzer {
        KafkaAnalyzer::new(AnalyzerConfig {
            window_len,
            history_points: 100,
            forget_after_ms: 60_000,
        })
    }

    fn partition<'a>(view: &'a KafkaView, topic: &str, p: i32) -> &'a PartitionView {
        view.partitions
            .iter()
            .find(|v| &*v.topic == topic && v.partition == p)
            .expect("partition in view")
    }

    fn topic<'a>(view: &'a KafkaView, topic: &str) -> &'a TopicView {
        view.topics
            .iter()
            .find(|t| &*t.topic == topic)
            .expect("topic in view")
    }

    fn group<'a>(view: &'a KafkaView, group: &str) -> &'a GroupView {
        view.groups
            .iter()
            .find(|g| g.group == group)
            .expect("group in view")
    }

    fn gp<'a>(view: &'a KafkaView, g: &str, t: &str, p: i32) -> &'a GroupPartitionView {
        group(view, g)
            .topics
            .iter()
            .find(|x| x.topic == t)
            .and_then(|x| x.partitions.iter().find(|x| x.partition == p))
            .expect("group partition in view")
    }

    #[test]
    fn a_group_skew_is_its_worst_partition_against_its_median_over_every_topic() {
        let mut a = analyzer(10);
        let v = a.ingest(
            &at(0)
                .part("a", 0, 0, 100)
                .part("a", 1, 0, 100)
                .part("b", 0, 0, 1_000)
                .part("b", 1, 0, 100)
                .commit("g", "a", 0, 90)
                .commit("g", "a", 1, 80)
                .commit("g", "b", 0, 100)
                .commit("g", "b", 1, 100),
        );
        // Lags 10, 20, 900, 0: median 15, worst b/0.
        let skew = group(&v, "g").lag_skew().expect("lags known");
        assert_eq!(skew.skew.offsets, 885.0);
        assert_eq!(skew.skew.median_lag_offsets, 15.0);
        assert_eq!(skew.skew.worst_lag_offsets, 900);
        assert_eq!((skew.worst_topic.as_str(), skew.worst_partition), ("b", 0));
        assert_eq!(skew.partitions, 4);
    }

    #[test]
    fn rates_per_partition_and_topic_over_the_real_interval() {
        let mut a = analyzer(10);
        let v = a.ingest(&at(0).part("t", 0, 0, 100).part("t", 1, 0, 50));
        assert_eq!(partition(&v, "t", 0).rate_note, RateNote::FirstReading);
        assert_eq!(topic(&v, "t").instant_messages_per_second, None);

        let v = a.ingest(&at(10).part("t", 0, 0, 600).part("t", 1, 0, 150));
        let p0 = partition(&v, "t", 0);
        assert_eq!(p0.instant_messages_per_second, Some(50.0));
        assert_eq!(p0.instant_interval_s, Some(10.0));
        assert_eq!(p0.latest, Some(600));
        assert_eq!(
            partition(&v, "t", 1).instant_messages_per_second,
            Some(10.0)
        );
        let t = topic(&v, "t");
        assert_eq!(t.instant_messages_per_second, Some(60.0));
        assert_eq!((t.partitions, t.partitions_with_rate), (2, 2));

        // The scrape at 20 s was missed: 20 s separate these readings.
        let v = a.ingest(&at(30).part("t", 0, 0, 1_600).part("t", 1, 0, 150));
        assert_eq!(
            partition(&v, "t", 0).instant_messages_per_second,
            Some(50.0)
        );
        assert_eq!(partition(&v, "t", 0).instant_interval_s, Some(20.0));
        assert_eq!(partition(&v, "t", 1).instant_messages_per_second, Some(0.0));
    }

    fn last_minute(rates: Option<WindowCounts>) -> WindowCount {
        rates.expect("rates known").get(Window::OneMinute)
    }

    #[test]
    fn window_counts_per_partition_and_topic_as_of_the_last_scrape() {
        let mut a = analyzer(10);
        let v = a.ingest(&at(0).part("t", 0, 0, 100).part("t", 1, 0, 50));
        assert_eq!(last_minute(partition(&v, "t", 0).rates), WindowCount::EMPTY);
        // 5 records every 10 s on partition 0, none on 1, scraped every 5 s.
        for k in 1..=12u64 {
            let v = a.ingest(
                &at(k * 5)
                    .part("t", 0, 0, 100 + (k as i64 / 2) * 5)
                    .part("t", 1, 0, 50),
            );
            let t = last_minute(topic(&v, "t").rates);
            if k < 12 {
                assert_eq!(t.per_minute, None, "not covered at {} s", k * 5);
                assert_eq!(t.covered_s, (k * 5) as f64);
                assert_eq!(
                    t.count,
                    ((k / 2) * 5) as f64,
                    "what was seen, not scaled up"
                );
            } else {
                assert_eq!(t.per_minute, Some(30.0));
                assert_eq!(
                    last_minute(partition(&v, "t", 1).rates).per_minute,
                    Some(0.0)
                );
            }
        }
        // A partition added to the topic: its windows are not covered, so neither are the topic's.
        let v = a.ingest(
            &at(65)
                .part("t", 0, 0, 130)
                .part("t", 1, 0, 50)
                .part("t", 2, 0, 0),
        );
        let t = topic(&v, "t");
        assert_eq!(t.partitions_with_rate, 3);
        assert_eq!(last_minute(t.rates).per_minute, None);
        assert_eq!(last_minute(t.rates).count, 30.0);
        // A partition whose offsets failed has no rates and is left out of the sum.
        let v = a.ingest(
            &at(70)
                .part("t", 0, 0, 135)
                .failed("t", 1)
                .part("t", 2, 0, 0),
        );
        assert_eq!(partition(&v, "t", 1).rates, None);
        assert_eq!(topic(&v, "t").partitions_with_rate, 2);
    }

    #[test]
    fn a_reset_starts_the_windows_again_and_restored_points_cover_them() {
        let mut a = analyzer(10);
        let tp = TopicPartition::new("t", 0);
        // Stored every 10 s for 15 minutes and 10 s before: 6 records a second.
        a.restore_partition_history(
            tp.clone(),
            (0..=91u64).map(|k| EndOffsetPoint {
                time_ms: k * 10_000,
                latest: k as i64 * 60,
            }),
        );
        let v = a.ingest(&at(920).part("t", 0, 0, 5_520));
        let p = partition(&v, "t", 0);
        assert_eq!(p.rate_note, RateNote::FirstReading);
        let rates = p.rates.expect("rates");
        for w in Window::ALL {
            assert_eq!(
                rates.get(w).per_minute,
                Some(360.0),
                "{w:?} covered at once"
            );
        }
        // Re-created: held one scrape (no rates), then counted from the new log's first reading.
        let v = a.ingest(&at(930).part("t", 0, 0, 40));
        assert_eq!(partition(&v, "t", 0).rates, None);
        let v = a.ingest(&at(940).part("t", 0, 0, 140));
        let c = last_minute(partition(&v, "t", 0).rates);
        assert_eq!((c.count, c.covered_s, c.per_minute), (100.0, 10.0, None));
    }

    #[test]
    fn errored_partition_has_no_rate_and_keeps_its_state() {
        let mut a = analyzer(10);
        a.ingest(&at(0).part("t", 0, 0, 100).commit("g", "t", 0, 90));
        let v = a.ingest(&at(10).failed("t", 0).commit("g", "t", 0, 95));
        let p = partition(&v, "t", 0);
        assert_eq!(p.rate_note, RateNote::OffsetsError);
        assert_eq!((p.latest, p.instant_messages_per_second), (None, None));
        assert_eq!(p.error.as_deref(), Some("leader not available"));
        let g = gp(&v, "g", "t", 0);
        assert_eq!(g.lag.note, LagNote::EndOffsetUnknown);
        assert_eq!(g.committed, 95);
        assert_eq!(group(&v, "g").partitions_lag_unknown, 1);
        // Back: the rate is over the 20 s since the last good reading.
        let v = a.ingest(&at(20).part("t", 0, 0, 300).commit("g", "t", 0, 280));
        assert_eq!(
            partition(&v, "t", 0).instant_messages_per_second,
            Some(10.0)
        );
        assert_eq!(gp(&v, "g", "t", 0).lag.offsets, Some(20));
    }

    #[test]
    fn recreated_topic_resets_rates_and_group_windows_instead_of_going_negative() {
        let mut a = analyzer(3);
        for (s, end, committed) in [(0, 5_000, 4_900), (10, 6_000, 5_900), (20, 7_000, 6_950)] {
            a.ingest(&at(s).part("t", 0, 0, end).commit("g", "t", 0, committed));
        }
        // Deleted and re-created: offsets start again at 0, the group starts again too.
        let v = a.ingest(&at(30).part("t", 0, 0, 40).commit("g", "t", 0, 10));
        let p = partition(&v, "t", 0);
        assert_eq!(p.rate_note, RateNote::EndWentBack);
        assert_eq!(p.instant_messages_per_second, None);
        let g = gp(&v, "g", "t", 0);
        assert_eq!(g.lag.note, LagNote::EndOffsetUnknown);
        assert_eq!(g.verdict, Verdict::Ok);
        // Still below the old end a scrape later: the log was replaced.
        let v = a.ingest(&at(40).part("t", 0, 0, 140).commit("g", "t", 0, 100));
        let p = partition(&v, "t", 0);
        assert_eq!(p.rate_note, RateNote::Reset);
        assert_eq!(
            p.instant_messages_per_second,
            Some(10.0),
            "counted from the new start"
        );
        assert_eq!(v.counters.partition_resets_total, 1);
        let g = gp(&v, "g", "t", 0);
        assert_eq!(g.verdict, Verdict::Ok, "a re-created topic is not a rewind");
        assert_eq!(g.window_observations, 1);
        assert_eq!(g.lag.offsets, Some(40));
        // Log end was at 100 at 36 s on the new log.
        assert_eq!(g.lag_seconds.seconds, Some(4.0));
        let v = a.ingest(&at(50).part("t", 0, 0, 240).commit("g", "t", 0, 200));
        assert_eq!(
            partition(&v, "t", 0).instant_messages_per_second,
            Some(10.0)
        );
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Ok);
    }

    #[test]
    fn a_lower_end_offset_for_one_scrape_is_not_a_reset() {
        let mut a = analyzer(3);
        for (s, end) in [(0, 1_000), (10, 1_100), (20, 1_200)] {
            a.ingest(&at(s).part("t", 0, 0, end).commit("g", "t", 0, 500));
        }
        let v = a.ingest(&at(30).part("t", 0, 0, 1_150).commit("g", "t", 0, 500));
        assert_eq!(partition(&v, "t", 0).rate_note, RateNote::EndWentBack);
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Stalled);
        let v = a.ingest(&at(40).part("t", 0, 0, 1_400).commit("g", "t", 0, 500));
        assert_eq!(
            partition(&v, "t", 0).instant_messages_per_second,
            Some(10.0)
        );
        assert_eq!(v.counters.partition_resets_total, 0);
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Stalled, "window kept");
    }

    #[test]
    fn new_partitions_join_the_topic_sum_once_they_have_a_rate() {
        let mut a = analyzer(10);
        a.ingest(&at(0).part("t", 0, 0, 100));
        a.ingest(&at(10).part("t", 0, 0, 200));
        let v = a.ingest(&at(20).part("t", 0, 0, 300).part("t", 1, 0, 0));
        let t = topic(&v, "t");
        // Its first reading gives window counts (nothing yet, over nothing) but no instant rate.
        assert_eq!((t.partitions, t.partitions_with_rate), (2, 2));
        assert_eq!(t.instant_messages_per_second, Some(10.0));
        assert_eq!(last_minute(t.rates).count, 200.0);
        assert_eq!(last_minute(t.rates).covered_s, 0.0);
        let v = a.ingest(&at(30).part("t", 0, 0, 400).part("t", 1, 0, 50));
        assert_eq!(topic(&v, "t").instant_messages_per_second, Some(15.0));
        assert_eq!(last_minute(topic(&v, "t").rates).count, 350.0);
    }

    #[test]
    fn compacted_topic_start_jumping_keeps_the_rate() {
        let mut a = analyzer(10);
        a.ingest(&at(0).part("c", 0, 0, 1_000));
        let v = a.ingest(&at(10).part("c", 0, 800, 1_100));
        assert_eq!(
            partition(&v, "c", 0).instant_messages_per_second,
            Some(10.0)
        );
        assert_eq!(partition(&v, "c", 0).earliest, Some(800));
    }

    #[test]
    fn lag_sums_per_topic_and_group_and_counts_clamped_commits() {
        let mut a = analyzer(10);
        a.ingest(
            &at(0)
                .part("a", 0, 0, 100)
                .part("a", 1, 0, 100)
                .part("b", 0, 0, 100),
        );
        let v = a.ingest(
            &at(10)
                .part("a", 0, 0, 200)
                .part("a", 1, 0, 200)
                .part("b", 0, 0, 200)
                .commit("g", "a", 0, 150)
                .commit("g", "a", 1, 203) // committed after the end-offset read
                .commit("g", "b", 0, 170)
                .commit("h", "b", 0, -1), // no committed offset: ignored
        );
        let g = group(&v, "g");
        assert_eq!(g.topics[0].lag_offsets, 50);
        assert_eq!(g.topics[1].lag_offsets, 30);
        assert_eq!(g.lag_offsets, 80);
        assert_eq!(gp(&v, "g", "a", 1).lag.note, LagNote::ClampedCommitRace);
        assert_eq!(gp(&v, "g", "a", 1).lag.offsets, Some(0));
        assert_eq!(v.counters.clamped_commits_total, 1);
        assert!(v.groups.iter().all(|g| g.group != "h"));
    }

    #[test]
    fn committed_beyond_a_wrong_end_offset_is_flagged_not_a_confident_zero() {
        // tansu's memory engine: the end offset is the last batch's base + 1, far behind.
        let mut a = analyzer(10);
        a.ingest(&at(0).part("t", 0, 0, 101).commit("g", "t", 0, 1_400));
        let v = a.ingest(&at(10).part("t", 0, 0, 101).commit("g", "t", 0, 1_500));
        let g = gp(&v, "g", "t", 0);
        assert_eq!(g.lag.note, LagNote::CommittedBeyondEnd);
        assert_eq!(g.lag.offsets, None);
        assert_eq!(g.lag_seconds, LagSeconds::UNKNOWN);
        let gv = group(&v, "g");
        assert_eq!(gv.partitions_beyond_end, 1);
        assert_eq!(gv.partitions_lag_unknown, 1);
        // The first scrape had no growth to compare with: a race, clamped once.
        assert_eq!(v.counters.clamped_commits_total, 1);
    }

    #[test]
    fn lag_seconds_exact_from_record_time_else_estimated_else_unknown() {
        let mut a = analyzer(10);
        a.ingest(&at(0).part("t", 0, 0, 100).part("u", 0, 0, 100));
        a.ingest(&at(10).part("t", 0, 0, 200).part("u", 0, 0, 200));
        let v = a.ingest(
            &at(20)
                .part("t", 0, 0, 300)
                .part("u", 0, 0, 300)
                .commit_at("exact", "t", 150, 4)
                .commit("estimated", "t", 0, 150)
                .commit("unknown", "t", 0, 50),
        );
        let exact = gp(&v, "exact", "t", 0).lag_seconds;
        assert_eq!(exact.seconds, Some(16.0));
        assert_eq!(exact.basis, LagSecondsBasis::Exact);
        // Log end was at 150 at 5 s, between the readings at 0 s and 10 s.
        let estimated = gp(&v, "estimated", "t", 0).lag_seconds;
        assert_eq!(estimated.seconds, Some(15.0));
        assert_eq!(estimated.basis, LagSecondsBasis::Estimated);
        assert_eq!(estimated.interpolated_over_s, Some(10.0));
        // The history starts at 100: no reading says when the end was at 50.
        assert!(group(&v, "estimated").max_lag_seconds_estimated);
        assert_eq!(gp(&v, "unknown", "t", 0).lag_seconds, LagSeconds::UNKNOWN);
    }

    #[test]
    fn catch_up_time_from_commit_and_end_offset_moves() {
        let mut a = analyzer(10);
        a.ingest(&at(0).part("t", 0, 0, 1_000).commit("g", "t", 0, 0));
        let v = a.ingest(&at(10).part("t", 0, 0, 1_100).commit("g", "t", 0, 500));
        // Consumes 50/s, produced 10/s: 600 behind, gaining 40/s — rates from two scrapes.
        assert_eq!(
            gp(&v, "g", "t", 0).catch_up,
            CatchUp::InSeconds {
                seconds: 15.0,
                rates_over_s: 10.0,
                rates_over_intervals: 1
            }
        );
        let v = a.ingest(&at(20).part("t", 0, 0, 1_200).commit("g", "t", 0, 500));
        // Over the window: consumed 25/s, produced 10/s.
        assert_eq!(
            gp(&v, "g", "t", 0).catch_up,
            CatchUp::InSeconds {
                seconds: 700.0 / 15.0,
                rates_over_s: 20.0,
                rates_over_intervals: 2
            }
        );
        let mut slow = analyzer(10);
        slow.ingest(&at(0).part("t", 0, 0, 1_000).commit("g", "t", 0, 0));
        let v = slow.ingest(&at(10).part("t", 0, 0, 2_000).commit("g", "t", 0, 500));
        assert_eq!(
            gp(&v, "g", "t", 0).catch_up,
            CatchUp::FallingBehind {
                rates_over_s: 10.0,
                rates_over_intervals: 1
            }
        );
    }

    #[test]
    fn stalled_partition_makes_the_group_stalled() {
        let mut a = analyzer(3);
        let mut v = a.ingest(&at(0));
        for s in 0..3 {
            v = a.ingest(
                &at(s * 10)
                    .part("t", 0, 0, 100 + s as i64 * 10)
                    .part("t", 1, 0, 100 + s as i64 * 10)
                    .commit("g", "t", 0, 50)
                    .commit("g", "t", 1, 95 + s as i64 * 10),
            );
        }
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Stalled);
        assert_eq!(gp(&v, "g", "t", 1).verdict, Verdict::Ok);
        assert_eq!(group(&v, "g").verdict, Verdict::Stalled);
        assert_eq!(group(&v, "g").topics[0].verdict, Verdict::Stalled);
    }

    #[test]
    fn group_no_longer_reported_turns_stopped_then_is_forgotten() {
        let mut a = analyzer(10);
        for s in [0, 10, 20] {
            a.ingest(
                &at(s)
                    .part("t", 0, 0, 100 + s as i64)
                    .commit("g", "t", 0, 50 + s as i64),
            );
        }
        let v = a.ingest(&at(30).part("t", 0, 0, 130));
        let g = gp(&v, "g", "t", 0);
        assert!(!g.reported_this_scrape);
        assert_eq!(g.verdict, Verdict::Ok, "absent 10 s, window spans 20 s");
        let v = a.ingest(&at(50).part("t", 0, 0, 150));
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Stopped);
        assert_eq!(a.tracked(), (1, 1));
        // forget_after is 60 s.
        let v = a.ingest(&at(90).part("t", 0, 0, 190));
        assert!(v.groups.is_empty());
        assert_eq!(a.tracked(), (1, 0));
    }

    #[test]
    fn held_group_whose_offsets_failed_is_not_stopped() {
        let mut a = analyzer(10);
        for s in [0, 10, 20] {
            a.ingest(
                &at(s)
                    .part("t", 0, 0, 100 + s as i64)
                    .commit("g", "t", 0, 50 + s as i64),
            );
        }
        for s in [30, 40, 50] {
            a.hold_groups(["g"], s * 1_000);
            let v = a.ingest(&at(s).part("t", 0, 0, 100 + s as i64));
            let g = gp(&v, "g", "t", 0);
            assert_eq!(g.verdict, Verdict::Ok);
            assert!(!g.reported_this_scrape);
            assert_eq!(g.committed, 70);
        }
    }

    #[test]
    fn rewind_blip_on_broker_restart_does_not_page_but_a_real_seek_back_does() {
        let mut a = analyzer(10);
        let mut feed = |s: u64, committed: i64| {
            a.ingest(
                &at(s)
                    .part("t", 0, 0, 1_000 + s as i64)
                    .commit("g", "t", 0, committed),
            )
        };
        feed(0, 500);
        feed(10, 600);
        let v = feed(20, 100); // stale offset from a restarting coordinator
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Ok);
        let v = feed(30, 650);
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Ok);
        assert_eq!(v.counters.ignored_rewinds_total, 1);
        feed(40, 10); // the consumer seeks back for real
        let v = feed(50, 60);
        assert_eq!(gp(&v, "g", "t", 0).verdict, Verdict::Rewound);
        assert_eq!(group(&v, "g").verdict, Verdict::Rewound);
    }

    #[test]
    fn vanished_partitions_are_forgotten_and_history_is_bounded() {
        let mut a = KafkaAnalyzer::new(AnalyzerConfig {
            window_len: 10,
            history_points: 4,
            forget_after_ms: 30_000,
        });
        for s in 0..20u64 {
            let mut snap = at(s * 10).part("keep", 0, 0, s as i64 * 7);
            if s < 3 {
                snap = snap.part("gone", 0, 0, s as i64);
            }
            a.ingest(&snap);
        }
        assert_eq!(a.tracked(), (1, 0));
        let keep = a.partition(&TopicPartition::new("keep", 0)).unwrap();
        assert_eq!(keep.history.len(), 4);
    }

    #[test]
    fn restored_window_judges_at_once() {
        let mut a = analyzer(3);
        let tp = TopicPartition::new("t", 0);
        a.restore_partition_history(
            tp.clone(),
            [(0, 100), (10_000, 200)].map(|(time_ms, latest)| EndOffsetPoint { time_ms, latest }),
        );
        a.restore_group_window(
            "g",
            tp.clone(),
            [(0, 50, 100), (10_000, 50, 200)].map(|(t, c, l)| CommitPoint::new(t, c, l)),
        );
        let v = a.ingest(&at(20).part("t", 0, 0, 300).commit("g", "t", 0, 50));
        let g = gp(&v, "g", "t", 0);
        assert_eq!(g.verdict, Verdict::Stalled);
        assert_eq!(g.window_observations, 3);
        // History came back too: the log end was at 50 before the history starts.
        assert_eq!(g.lag_seconds, LagSeconds::UNKNOWN);
    }

    #[test]
    fn view_serializes_for_the_json_api() {
        let mut a = analyzer(10);
        a.ingest(&at(0).part("t", 0, 0, 100).commit("g", "t", 0, 40));
        let v = a.ingest(&at(10).part("t", 0, 0, 200).commit("g", "t", 0, 150));
        let json = serde_json::to_value(&v).expect("view serializes");
        let p = &json["groups"][0]["topics"][0]["partitions"][0];
        assert_eq!(p["verdict"], "OK");
        assert_eq!(p["lag"]["offsets"], 50);
        assert_eq!(p["lag"]["note"], "measured");
        assert_eq!(p["lag_seconds"]["basis"], "estimated");
        assert_eq!(p["catch_up"]["state"], "in_seconds");
        assert_eq!(json["partitions"][0]["rate_note"], "measured");
    }

    use crate::test_rng::Lcg;

    #[test]
    fn invariants_hold_on_a_messy_random_cluster() {
        // Topics get re-created, partitions fail, appear and vanish, scrapes are missed, commits
        // race, rewind and blip; whatever happens: no negative rate, lag or time, topic sums add
        // up, and state stays bounded.
        let mut rng = Lcg(42);
        let config = AnalyzerConfig {
            window_len: 5,
            history_points: 8,
            forget_after_ms: 50_000,
        };
        let mut a = KafkaAnalyzer::new(config);
        let mut ends = [[0i64; 4]; 6];
        let mut commits = [[[0i64; 4]; 6]; 3];
        let mut time = 0;
        for _ in 0..2_000 {
            time += 10 * (1 + rng.below(3)); // missed scrapes now and then
            let mut snap = at(time);
            for (t, partitions) in ends.iter_mut().enumerate() {
                let topic = format!("t{t}");
                if rng.below(200) == 0 {
                    *partitions = [0; 4]; // deleted and re-created
                }
                let count = 2 + rng.below(3) as usize; // partition count changes
                for (p, end) in partitions.iter_mut().enumerate().take(count) {
                    *end += rng.below(50) as i64;
                    if rng.below(30) == 0 {
                        snap = snap.failed(&topic, p as i32);
                    } else if rng.below(50) == 0 {
                        snap = snap.part(&topic, p as i32, 0, *end - 5); // a leader answering low
                    } else {
                        snap = snap.part(&topic, p as i32, 0, *end);
                    }
                    for (g, group) in commits.iter_mut().enumerate() {
                        let c = &mut group[t][p];
                        match rng.below(20) {
                            0 => *c = rng.below(*end as u64 + 1) as i64, // seek anywhere
                            1 => continue,                               // not reported
                            _ => *c = (*c + rng.below(60) as i64).min(*end + 3), // may race ahead
                        }
                        snap = snap.commit(&format!("g{g}"), &topic, p as i32, *c);
                    }
                }
            }
            let v = a.ingest(&snap);
            for p in &v.partitions {
                assert!(
                    p.instant_messages_per_second.is_none_or(|r| r >= 0.0),
                    "{p:?}"
                );
            }
            for t in &v.topics {
                let sum: f64 = v
                    .partitions
                    .iter()
                    .filter(|p| p.topic == t.topic)
                    .filter_map(|p| p.instant_messages_per_second)
                    .sum();
                assert!(
                    t.instant_messages_per_second
                        .is_none_or(|r| (r - sum).abs() < 1e-9)
                );
                let with_rates: Vec<WindowCounts> = v
                    .partitions
                    .iter()
                    .filter(|p| p.topic == t.topic)
                    .filter_map(|p| p.rates)
                    .collect();
                assert_eq!(t.partitions_with_rate, with_rates.len());
                assert_eq!(t.rates, WindowCounts::sum(&with_rates));
            }
            for rates in v.partitions.iter().filter_map(|p| p.rates) {
                for w in Window::ALL {
                    let c = rates.get(w);
                    assert!(c.count >= 0.0 && c.covered_s <= w.millis() as f64 / 1000.0);
                    assert_eq!(
                        c.per_minute.is_some(),
                        c.covered_s * 1000.0 == w.millis() as f64
                    );
                }
            }
            for g in &v.groups {
                assert!(g.lag_offsets >= 0);
                for p in g.topics.iter().flat_map(|t| t.partitions.iter()) {
                    assert!(p.lag.offsets.is_none_or(|l| l >= 0), "{p:?}");
                    assert!(p.lag_seconds.seconds.is_none_or(|s| s >= 0.0), "{p:?}");
                    if let CatchUp::InSeconds { seconds, .. } = p.catch_up {
                        assert!(seconds > 0.0, "{p:?}");
                    }
                    assert!(p.window_observations <= 5);
                }
            }
            let (partitions, group_partitions) = a.tracked();
            assert!(partitions <= 6 * 4 && group_partitions <= 3 * 6 * 4);
            let mut states = a.partitions.values().flatten().map(|(_, p)| p);
            assert!(states.all(|p| p.history.len() <= 8));
            // Scrapes at least 10 s apart: 90 readings in 15 minutes, and the one before.
            let mut states = a.partitions.values().flatten().map(|(_, p)| p);
            assert!(states.all(|p| p.history.window_len() <= 91));
        }
        let counters = a.counters();
        assert!(counters.partition_resets_total > 0);
        assert!(counters.clamped_commits_total > 0);
    }

    #[test]
    fn records_deleted_before_a_group_read_them_are_lost_for_that_group_only() {
        let mut a = analyzer(3);
        let v = a.ingest(
            &at(0)
                .part("t", 0, 0, 100)
                .commit("slow", "t", 0, 10)
                .commit("fast", "t", 0, 60),
        );
        assert_eq!(group(&v, "slow").lost_to_retention, 0);
        // Retention moves the log start to 50: 10..49 are gone before "slow" read them.
        let v = a.ingest(
            &at(10)
                .part("t", 0, 50, 110)
                .commit("slow", "t", 0, 10)
                .commit("fast", "t", 0, 70),
        );
        let slow = gp(&v, "slow", "t", 0);
        assert_eq!(slow.lost_to_retention, 40);
        assert_eq!(slow.verdict, Verdict::Lost);
        assert_eq!(
            slow.verdict_reason.as_deref(),
            Some(
                "committed offset 10 is below the log start 50: records deleted by retention or DeleteRecords before the group read them (40 lost so far)"
            )
        );
        let g = group(&v, "slow");
        assert_eq!((g.lost_to_retention, g.verdict), (40, Verdict::Lost));
        assert_eq!(g.topics[0].lost_to_retention, 40);
        assert!(
            g.verdict_reason
                .as_deref()
                .unwrap()
                .starts_with("t partition 0: committed offset 10")
        );
        let fast = group(&v, "fast");
        assert_eq!((fast.lost_to_retention, fast.verdict), (0, Verdict::Ok));
        assert_eq!(fast.verdict_reason, None);

        // Seen again, and the log start moves on: only the new stretch is added.
        a.ingest(&at(20).part("t", 0, 50, 120).commit("slow", "t", 0, 10));
        let v = a.ingest(&at(30).part("t", 0, 65, 130).commit("slow", "t", 0, 10));
        assert_eq!(group(&v, "slow").lost_to_retention, 55);

        // auto.offset.reset: the group jumps to the log start. Nothing new is lost, and LOST
        // holds while the last loss is in the window (3 scrapes: 30, 40 and 50 s).
        let v = a.ingest(&at(40).part("t", 0, 65, 140).commit("slow", "t", 0, 65));
        let slow = gp(&v, "slow", "t", 0);
        assert_eq!((slow.lost_to_retention, slow.verdict), (55, Verdict::Lost));
        assert_eq!(
            slow.verdict_reason.as_deref(),
            Some(
                "15 records (offsets 50 to 64) were deleted by retention or DeleteRecords before the group read them"
            )
        );
        let v = a.ingest(&at(50).part("t", 0, 65, 150).commit("slow", "t", 0, 140));
        assert_eq!(gp(&v, "slow", "t", 0).verdict, Verdict::Lost);
        let v = a.ingest(&at(60).part("t", 0, 65, 160).commit("slow", "t", 0, 160));
        let slow = gp(&v, "slow", "t", 0);
        assert_eq!((slow.lost_to_retention, slow.verdict), (55, Verdict::Ok));
        assert_eq!(slow.verdict_reason, None);
    }

    #[test]
    fn a_recreated_partition_counts_loss_on_its_new_log() {
        let mut a = analyzer(3);
        a.ingest(&at(0).part("t", 0, 0, 5_000).commit("g", "t", 0, 4_000));
        a.ingest(&at(10).part("t", 0, 4_500, 5_000).commit("g", "t", 0, 4_000));
        // Re-created (held one scrape, then taken as a reset): the old offsets do not settle
        // the new log's.
        a.ingest(&at(20).part("t", 0, 0, 40).commit("g", "t", 0, 10));
        let v = a.ingest(&at(30).part("t", 0, 20, 140).commit("g", "t", 0, 10));
        assert_eq!(v.counters.partition_resets_total, 1);
        assert_eq!(group(&v, "g").lost_to_retention, 500 + 10);
    }
}

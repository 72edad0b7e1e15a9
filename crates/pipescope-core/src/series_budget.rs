//! Bounds on the series the store and InfluxDB receive: per-partition Kafka series only for the
//! partitions the configuration asks for or the top-K lagging and fastest ones, a hard cap on
//! series per source, and the estimate `pipescope check --cluster-size` prints.
//!
//! The per-partition selection is made from a scrape's view, before its samples are: a Kafka
//! watcher asks [`SeriesStage::partition_filter`] which partitions pass and makes samples only
//! for those (a big cluster's ~1.5 M per-partition samples are never made). The cap applies to
//! every batch in [`SeriesStage::select`].
//!
//! Topic and group series always pass (subject to the cap): they are few and are what the
//! portal's history shows first. `/metrics` is not fed from here (see docs/scale.md).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use regex::Regex;

use crate::clock::EpochMillis;
use crate::kafka::analyzer::KafkaView;
use crate::kafka::{FastMap, FastSet};
use crate::sample::{Labels, Sample};
use crate::windows::Window;

/// Bytes one sample takes in the store once its hour is compacted into chunks (raw, roll-ups
/// and series together), as measured by bench/store (BENCHMARKS.md); the last hour, not yet
/// compacted, takes about 60.
pub const STORE_BYTES_PER_SAMPLE: f64 = 1.50;

/// Sources beyond this many (a source is a configured cluster, broker or flow) share one.
pub const MAX_SOURCES: usize = 256;
/// The source that sources beyond [`MAX_SOURCES`] fold into.
pub const OTHER_SOURCE: &str = "other";

/// How a ranked set keeps its members when ranks move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopKSettings {
    /// A key enters when it ranks within `k`.
    pub k: usize,
    /// A member ranked within `k + margin` is not far out: it only leaves after `hold_ms`.
    pub margin: usize,
    /// A member leaves after this many consecutive scrapes ranked beyond `k + margin` (or absent).
    pub far_scrapes: u32,
    /// A member leaves after ranking beyond `k` for this long, even within the margin.
    pub hold_ms: u64,
}

impl TopKSettings {
    /// The margin a quarter of `k` (at least 1), 3 scrapes far out, 5 minutes outside the top.
    pub fn with_k(k: usize) -> Self {
        Self {
            k,
            margin: (k / 4).max(1),
            far_scrapes: 3,
            hold_ms: 5 * 60_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member {
    /// Consecutive scrapes ranked beyond `k + margin` or absent.
    far_streak: u32,
    /// Since when the member ranks beyond `k`; `None` while within it.
    outside_since: Option<EpochMillis>,
}

/// The keys with the `k` largest positive values, with hysteresis: two keys trading places at
/// rank `k` every scrape both stay, and a key leaves only when it has clearly dropped out.
/// Size: `k` plus the members within the margin plus members in their last far scrapes, so at
/// most `2k + margin`.
#[derive(Debug, Clone)]
pub struct TopK<K> {
    settings: TopKSettings,
    members: HashMap<K, Member>,
}

impl<K: Hash + Eq + Ord + Clone> TopK<K> {
    pub fn new(settings: TopKSettings) -> Self {
        Self {
            settings,
            members: HashMap::new(),
        }
    }

    /// Ranks this scrape's values (largest first, ties by key; zero, negative and NaN values are
    /// not ranked: nothing lags or flows there) and updates the members.
    pub fn update(&mut self, values: impl IntoIterator<Item = (K, f64)>, now_ms: EpochMillis) {
        let TopKSettings {
            k,
            margin,
            far_scrapes,
            hold_ms,
        } = self.settings;
        let mut ranked: Vec<(K, f64)> = values.into_iter().filter(|(_, v)| *v > 0.0).collect();
        let near = (k + margin).min(ranked.len());
        if near < ranked.len() {
            ranked.select_nth_unstable_by(near, by_value_then_key);
            ranked.truncate(near);
        }
        ranked.sort_unstable_by(by_value_then_key);
        let mut seen: HashSet<&K> = HashSet::with_capacity(ranked.len());
        for (rank, (key, _)) in ranked.iter().enumerate() {
            seen.insert(key);
            if rank < k {
                self.members.insert(
                    key.clone(),
                    Member {
                        far_streak: 0,
                        outside_since: None,
                    },
                );
            } else if let Some(member) = self.members.get_mut(key) {
                member.far_streak = 0;
                member.outside_since.get_or_insert(now_ms);
            }
        }
        self.members.retain(|key, member| {
            if !seen.contains(key) {
                member.far_streak += 1;
                member.outside_since.get_or_insert(now_ms);
            }
            let held_out = member
                .outside_since
                .is_some_and(|since| now_ms.saturating_sub(since) >= hold_ms);
            member.far_streak < far_scrapes && !held_out
        });
    }

    pub fn contains(&self, key: &K) -> bool {
        self.members.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

fn by_value_then_key<K: Ord>(a: &(K, f64), b: &(K, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0))
}

/// A set of admitted series keys with a hard cap: a key already in keeps flowing, a new key
/// beyond the cap is refused and counted; a key not seen for `retire_after_ms` leaves, so the
/// set does not fill up with dead series.
#[derive(Debug, Clone)]
pub struct SeriesCap<K> {
    max: usize,
    retire_after_ms: u64,
    last_seen: HashMap<K, EpochMillis>,
    next_retire_ms: EpochMillis,
    refused: u64,
}

impl<K: Hash + Eq + Clone> SeriesCap<K> {
    pub fn new(max: usize, retire_after_ms: u64) -> Self {
        Self {
            max,
            retire_after_ms,
            last_seen: HashMap::new(),
            next_retire_ms: 0,
            refused: 0,
        }
    }

    /// Whether a sample of `key` at `now_ms` may pass.
    pub fn admit(&mut self, key: &K, now_ms: EpochMillis) -> bool {
        if now_ms >= self.next_retire_ms {
            self.retire(now_ms);
        }
        if let Some(seen) = self.last_seen.get_mut(key) {
            *seen = (*seen).max(now_ms);
            return true;
        }
        if self.last_seen.len() >= self.max {
            self.refused += 1;
            return false;
        }
        self.last_seen.insert(key.clone(), now_ms);
        true
    }

    /// Forgets keys not seen for `retire_after_ms`. [`Self::admit`] calls it now and then (every
    /// quarter of `retire_after_ms`), so a whole pass over the set is rare.
    pub fn retire(&mut self, now_ms: EpochMillis) {
        let retire_after = self.retire_after_ms;
        self.last_seen
            .retain(|_, seen| now_ms.saturating_sub(*seen) < retire_after);
        self.next_retire_ms = now_ms.saturating_add((self.retire_after_ms / 4).max(1));
    }

    /// Series admitted and not retired.
    pub fn admitted(&self) -> usize {
        self.last_seen.len()
    }

    /// Samples refused since start.
    pub fn refused_samples(&self) -> u64 {
        self.refused
    }
}

/// Which per-partition series of a Kafka cluster reach the store and InfluxDB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartitionSeries {
    /// Every partition.
    All,
    /// Partitions allowed by pattern, plus the top-K by lag and by rate; every partition while
    /// the cluster has at most K.
    #[default]
    Top,
    /// Only partitions allowed by pattern.
    None,
}

/// One cluster's per-partition settings.
#[derive(Debug, Clone)]
pub struct ClusterSeries {
    pub mode: PartitionSeries,
    /// Topics whose partitions always pass.
    pub topics_allow: Vec<Regex>,
    /// Groups whose group-partition series always pass.
    pub groups_allow: Vec<Regex>,
    pub top: TopKSettings,
}

/// Default K of [`PartitionSeries::Top`].
pub const DEFAULT_PARTITION_TOP_K: usize = 200;
/// Default cap of series per source.
pub const DEFAULT_MAX_SERIES_PER_SOURCE: usize = 200_000;
/// Default time after which a series not seen leaves the cap's set.
pub const DEFAULT_RETIRE_AFTER_MS: u64 = 15 * 60_000;

impl Default for ClusterSeries {
    fn default() -> Self {
        Self {
            mode: PartitionSeries::Top,
            topics_allow: Vec::new(),
            groups_allow: Vec::new(),
            top: TopKSettings::with_k(DEFAULT_PARTITION_TOP_K),
        }
    }
}

/// The whole stage's settings.
#[derive(Debug, Clone)]
pub struct SeriesBudget {
    /// By cluster name; a cluster not listed gets [`ClusterSeries::default`].
    pub clusters: HashMap<String, ClusterSeries>,
    pub max_per_source: usize,
    pub retire_after_ms: u64,
}

impl Default for SeriesBudget {
    fn default() -> Self {
        Self {
            clusters: HashMap::new(),
            max_per_source: DEFAULT_MAX_SERIES_PER_SOURCE,
            retire_after_ms: DEFAULT_RETIRE_AFTER_MS,
        }
    }
}

/// What one source let through and held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCounts {
    pub source: String,
    /// Series in the cap's set now.
    pub admitted: usize,
    /// Samples refused by the cap since start.
    pub dropped_samples: u64,
    /// Per-partition samples left out by the selection since start.
    pub unselected_samples: u64,
}

type SeriesKey = (Cow<'static, str>, Labels);
/// A partition by topic and number; topic names shared with the filter made from the tops.
type PartitionKey = (Arc<str>, i32);

#[derive(Debug)]
struct Source {
    cap: SeriesCap<SeriesKey>,
    unselected: u64,
}

#[derive(Debug)]
struct ClusterTop {
    by_lag: TopK<PartitionKey>,
    by_rate: TopK<PartitionKey>,
}

/// The selection stage: per-partition selection, then the per-source cap.
#[derive(Debug)]
pub struct SeriesStage {
    budget: SeriesBudget,
    default_cluster: ClusterSeries,
    tops: HashMap<String, ClusterTop>,
    sources: HashMap<String, Source>,
}

impl SeriesStage {
    pub fn new(budget: SeriesBudget) -> Self {
        Self {
            budget,
            default_cluster: ClusterSeries::default(),
            tops: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// The samples of `batch` that the per-source cap lets through. Kafka per-partition
    /// samples arrive already selected (see [`Self::partition_filter`]).
    pub fn select(&mut self, batch: &[Sample], now_ms: EpochMillis) -> Vec<Sample> {
        let mut out = Vec::with_capacity(batch.len());
        for sample in batch {
            let source = self.source(source_name(sample));
            let key = (sample.metric.clone(), sample.labels.clone());
            if source.cap.admit(&key, now_ms) {
                out.push(sample.clone());
            }
        }
        out
    }

    /// Which partitions of Kafka cluster `cluster` get per-partition series this scrape: those
    /// its configuration allows, and its top-K by lag and by rate, moved first by `view`'s lags
    /// (each partition's largest over the groups) and rates (the last minute's where known,
    /// the last interval's otherwise). Call it once per scrape: each call is a ranking.
    pub fn partition_filter(
        &mut self,
        cluster: &str,
        view: &KafkaView,
        now_ms: EpochMillis,
    ) -> PartitionFilter {
        let config = self
            .budget
            .clusters
            .get(cluster)
            .unwrap_or(&self.default_cluster);
        let every = match config.mode {
            PartitionSeries::All => return PartitionFilter::every(),
            PartitionSeries::Top => at_most_partitions(view, config.top.k),
            PartitionSeries::None => false,
        };
        let mut filter = PartitionFilter {
            every,
            topics_allow: config.topics_allow.clone(),
            groups_allow: config.groups_allow.clone(),
            top: FastMap::default(),
        };
        let top = self
            .tops
            .entry(cluster.to_string())
            .or_insert_with(|| ClusterTop {
                by_lag: TopK::new(config.top),
                by_rate: TopK::new(config.top),
            });
        if config.mode == PartitionSeries::None {
            return filter;
        }
        let mut names = SharedNames::default();
        let mut lags: FastMap<(&str, i32), f64> = FastMap::default();
        for g in &view.groups {
            for t in &g.topics {
                for p in t.partitions.iter().filter(|p| p.reported_this_scrape) {
                    if let Some(lag) = p.lag.offsets.filter(|&lag| lag > 0) {
                        let max = lags.entry((t.topic.as_str(), p.partition)).or_insert(0.0);
                        *max = max.max(lag as f64);
                    }
                }
            }
        }
        top.by_lag.update(
            lags.into_iter()
                .map(|((topic, partition), lag)| ((names.get(topic), partition), lag)),
            now_ms,
        );
        let rates = view.partitions.iter().filter_map(|p| {
            let minute = p.rates.and_then(|r| r.get(Window::OneMinute).per_minute);
            let rate = minute.or(p.instant_messages_per_second.map(|r| r * 60.0))?;
            (rate > 0.0).then(|| ((names.get(&p.topic), p.partition), rate))
        });
        top.by_rate.update(rates, now_ms);
        for (topic, partition) in top.by_lag.members.keys().chain(top.by_rate.members.keys()) {
            let partitions = filter.top.entry(Arc::clone(topic)).or_default();
            if !partitions.contains(partition) {
                partitions.push(*partition);
            }
        }
        filter
    }

    /// Counts per-partition samples of Kafka cluster `cluster` that its watcher left out.
    pub fn count_unselected(&mut self, cluster: &str, samples: u64) {
        self.source(format!("kafka/{cluster}")).unselected += samples;
    }

    /// Counts by source, sorted by source.
    pub fn counts(&self) -> Vec<SourceCounts> {
        let mut counts: Vec<SourceCounts> = self
            .sources
            .iter()
            .map(|(name, s)| SourceCounts {
                source: name.clone(),
                admitted: s.cap.admitted(),
                dropped_samples: s.cap.refused_samples(),
                unselected_samples: s.unselected,
            })
            .collect();
        counts.sort_by(|a, b| a.source.cmp(&b.source));
        counts
    }

    /// Partitions in a cluster's top sets now (by lag or by rate).
    pub fn top_partitions(&self, cluster: &str) -> usize {
        self.tops.get(cluster).map_or(0, |t| {
            let mut keys: HashSet<&PartitionKey> = t.by_lag.members.keys().collect();
            keys.extend(t.by_rate.members.keys());
            keys.len()
        })
    }

    fn source(&mut self, mut name: String) -> &mut Source {
        if !self.sources.contains_key(&name) && self.sources.len() >= MAX_SOURCES {
            name = OTHER_SOURCE.to_string();
        }
        let (max, retire) = (self.budget.max_per_source, self.budget.retire_after_ms);
        self.sources.entry(name).or_insert_with(|| Source {
            cap: SeriesCap::new(max, retire),
            unselected: 0,
        })
    }
}

/// Which partitions of one cluster get per-partition series this scrape (from
/// [`SeriesStage::partition_filter`]); topic, group and cluster series are not its concern.
#[derive(Debug, Clone)]
pub struct PartitionFilter {
    every: bool,
    topics_allow: Vec<Regex>,
    groups_allow: Vec<Regex>,
    /// The top-K members, by topic.
    top: FastMap<Arc<str>, Vec<i32>>,
}

impl PartitionFilter {
    /// Keeps every partition.
    pub fn every() -> Self {
        Self {
            every: true,
            topics_allow: Vec::new(),
            groups_allow: Vec::new(),
            top: FastMap::default(),
        }
    }

    /// Keeps no partition: only topic, group and cluster series are made.
    pub fn no_partition() -> Self {
        Self {
            every: false,
            ..Self::every()
        }
    }

    pub fn keeps_every_partition(&self) -> bool {
        self.every
    }

    /// Whether `topic`'s `partition` gets its series; `group` for a group partition's.
    pub fn keeps(&self, topic: &str, partition: i32, group: Option<&str>) -> bool {
        self.every
            || self.top.get(topic).is_some_and(|p| p.contains(&partition))
            || self.topics_allow.iter().any(|r| r.is_match(topic))
            || group.is_some_and(|g| self.groups_allow.iter().any(|r| r.is_match(g)))
    }

    /// Partitions kept as top-K members (not counting what the patterns allow).
    pub fn top_partitions(&self) -> usize {
        self.top.values().map(Vec::len).sum()
    }
}

/// Whether `view` names at most `k` distinct partitions (its partitions' and its groups').
fn at_most_partitions(view: &KafkaView, k: usize) -> bool {
    if view.partitions.len() > k {
        return false;
    }
    let mut seen: FastSet<(&str, i32)> = FastSet::default();
    let partitions = view.partitions.iter().map(|p| (&*p.topic, p.partition));
    let of_groups = view.groups.iter().flat_map(|g| {
        g.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.as_str(), p.partition)))
    });
    for key in partitions.chain(of_groups) {
        seen.insert(key);
        if seen.len() > k {
            return false;
        }
    }
    true
}

/// One shared string per topic name, so that top-K keys cost no copy of the name each scrape.
#[derive(Default)]
struct SharedNames<'a>(FastMap<&'a str, Arc<str>>);

impl<'a> SharedNames<'a> {
    fn get(&mut self, name: &'a str) -> Arc<str> {
        Arc::clone(self.0.entry(name).or_insert_with(|| Arc::from(name)))
    }
}

/// `kafka/<cluster>`, `mqtt/<broker>`, `completeness/<flow>`, or the metric's subsystem
/// (`quality`, `parts`, ...): every name part comes from the configuration or the program.
pub fn source_name(sample: &Sample) -> String {
    let subsystem = sample
        .metric
        .strip_prefix("pipescope_")
        .and_then(|rest| rest.split('_').next())
        .unwrap_or(OTHER_SOURCE);
    let instance = match subsystem {
        "kafka" => sample.labels.get("cluster"),
        "mqtt" => sample.labels.get("broker"),
        "completeness" => sample.labels.get("flow"),
        _ => None,
    };
    match instance {
        Some(instance) => format!("{subsystem}/{instance}"),
        None => subsystem.to_string(),
    }
}

/// The size of a cluster for [`estimate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSize {
    pub partitions: u64,
    pub topics: u64,
    pub groups: u64,
    /// Partitions read by all groups together (a group reading 3 partitions counts 3).
    pub group_partitions: u64,
}

/// `partitions=100000,topics=20000,groups=10000[,group_partitions=N]`; without
/// `group_partitions`, each group is taken to read one topic of average size.
impl std::str::FromStr for ClusterSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        const FORM: &str = "write it as partitions=100000,topics=20000,groups=10000 (optionally ,group_partitions=N)";
        let (mut partitions, mut topics, mut groups, mut group_partitions) =
            (None, None, None, None);
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not key=value; {FORM}"))?;
            let value: u64 = value
                .trim()
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{key} = {value:?} is not a whole number; {FORM}"))?;
            let slot = match key.trim() {
                "partitions" => &mut partitions,
                "topics" => &mut topics,
                "groups" => &mut groups,
                "group_partitions" => &mut group_partitions,
                other => return Err(format!("unknown size {other:?}; {FORM}")),
            };
            *slot = Some(value);
        }
        let (Some(partitions), Some(topics), Some(groups)) = (partitions, topics, groups) else {
            return Err(format!(
                "partitions, topics and groups are all needed; {FORM}"
            ));
        };
        if topics == 0 || topics > partitions {
            return Err(format!(
                "{topics} topics for {partitions} partitions: a topic has at least one partition; {FORM}"
            ));
        }
        Ok(Self {
            partitions,
            topics,
            groups,
            group_partitions: group_partitions
                .unwrap_or_else(|| (groups * partitions).div_ceil(topics)),
        })
    }
}

/// `411.0 GB`, `26.3 MB`, `512 B` (powers of 1000, as disks are sold).
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000.0 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Series of one Kafka cluster and their disk per day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesEstimate {
    pub series: u64,
    pub bytes_per_day: f64,
}

/// Series a view yields at most: 4 per partition (start and end offsets, two rates), 3 per
/// topic (the rate windows), 6 per group partition, 1 per group topic (taken as 1 per group),
/// 2 per group, and 2 per cluster.
pub const SERIES_PER_PARTITION: u64 = 4;
pub const SERIES_PER_TOPIC: u64 = 3;
pub const SERIES_PER_GROUP_PARTITION: u64 = 6;
pub const SERIES_PER_GROUP: u64 = 3;
pub const SERIES_PER_CLUSTER: u64 = 2;

/// The series the store and InfluxDB receive from a cluster of `size` scraped every
/// `scrape_interval_ms`, with `config` and a cap of `max_per_source` (`None`: every series,
/// as before the bounds), and their disk per day in the store. Partitions allowed by pattern
/// are not counted: the estimate cannot know how many a pattern matches.
pub fn estimate(
    size: ClusterSize,
    scrape_interval_ms: u64,
    bounds: Option<(&ClusterSeries, usize)>,
) -> SeriesEstimate {
    let fixed =
        SERIES_PER_TOPIC * size.topics + SERIES_PER_GROUP * size.groups + SERIES_PER_CLUSTER;
    let (partitions, group_partitions) = match bounds.map(|(c, _)| (c.mode, c.top.k as u64)) {
        None | Some((PartitionSeries::All, _)) => (size.partitions, size.group_partitions),
        Some((PartitionSeries::Top, k)) if size.partitions <= k => {
            (size.partitions, size.group_partitions)
        }
        Some((PartitionSeries::Top, k)) => {
            // By lag and by rate: at most 2K partitions, with the groups reading them.
            let kept = (2 * k).min(size.partitions);
            let groups_kept = (size.group_partitions * kept).div_ceil(size.partitions.max(1));
            (kept, groups_kept)
        }
        Some((PartitionSeries::None, _)) => (0, 0),
    };
    let mut series =
        fixed + SERIES_PER_PARTITION * partitions + SERIES_PER_GROUP_PARTITION * group_partitions;
    if let Some((_, cap)) = bounds {
        series = series.min(cap as u64);
    }
    let samples_per_day = 86_400_000.0 / scrape_interval_ms.max(1) as f64;
    SeriesEstimate {
        series,
        bytes_per_day: series as f64 * samples_per_day * STORE_BYTES_PER_SAMPLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::metrics as names;
    use crate::kafka::{
        GroupCommit, KafkaAnalyzer, OffsetRange, OffsetsSnapshot, PartitionOffsets, TopicPartition,
        push_view_samples, view_to_samples,
    };

    fn settings(k: usize) -> TopKSettings {
        TopKSettings {
            k,
            margin: 1,
            far_scrapes: 2,
            hold_ms: 60_000,
        }
    }

    fn members(top: &TopK<&'static str>) -> Vec<&'static str> {
        let mut m: Vec<_> = top.members.keys().copied().collect();
        m.sort();
        m
    }

    #[test]
    fn the_k_largest_positive_values_enter_ties_broken_by_key() {
        let mut top = TopK::new(settings(2));
        top.update([("a", 1.0), ("b", 5.0), ("c", 5.0), ("d", 0.0)], 0);
        assert_eq!(members(&top), ["b", "c"]);
        let mut top = TopK::new(settings(3));
        top.update([("a", 0.0), ("b", -1.0), ("c", f64::NAN), ("d", 2.0)], 0);
        assert_eq!(
            members(&top),
            ["d"],
            "zero, negative and NaN are not ranked"
        );
    }

    #[test]
    fn two_keys_trading_places_at_rank_k_both_stay() {
        let mut top = TopK::new(settings(1));
        for scrape in 0..20u64 {
            let (a, b) = if scrape % 2 == 0 {
                (2.0, 1.0)
            } else {
                (1.0, 2.0)
            };
            top.update([("a", a), ("b", b), ("c", 0.5)], scrape * 10_000);
            if scrape > 0 {
                assert_eq!(members(&top), ["a", "b"], "scrape {scrape}");
            }
        }
    }

    #[test]
    fn a_key_far_out_leaves_after_the_consecutive_scrapes() {
        let mut top = TopK::new(settings(1));
        top.update([("a", 9.0), ("b", 1.0), ("c", 1.0)], 0);
        assert_eq!(members(&top), ["a"]);
        // a drops to rank 3 (beyond k + margin = 2): one far scrape is forgiven.
        top.update([("a", 0.5), ("b", 2.0), ("c", 1.0)], 10_000);
        assert_eq!(members(&top), ["a", "b"]);
        // Back within the margin: the streak starts over.
        top.update([("a", 1.5), ("b", 2.0), ("c", 1.0)], 20_000);
        assert_eq!(members(&top), ["a", "b"]);
        top.update([("a", 0.5), ("b", 2.0), ("c", 1.0)], 30_000);
        assert_eq!(members(&top), ["a", "b"]);
        top.update([("b", 2.0), ("c", 1.0)], 40_000);
        assert_eq!(members(&top), ["b"], "absent counts as far");
    }

    #[test]
    fn a_key_just_outside_leaves_after_the_hold_time() {
        let mut top = TopK::new(settings(1));
        top.update([("a", 3.0), ("b", 1.0)], 0);
        // a sits at rank 2, within the margin, from 10 s on.
        for t in (10_000..70_000).step_by(10_000) {
            top.update([("a", 1.0), ("b", 3.0)], t);
            assert!(top.contains(&"a"), "at {t} ms");
        }
        top.update([("a", 1.0), ("b", 3.0)], 70_000);
        assert_eq!(members(&top), ["b"]);
        // Back within k: it enters again at once.
        top.update([("a", 4.0), ("b", 3.0)], 80_000);
        assert_eq!(members(&top), ["a", "b"]);
    }

    #[test]
    fn the_cap_refuses_and_counts_new_keys_and_retires_idle_ones() {
        let mut cap = SeriesCap::new(2, 60_000);
        assert!(cap.admit(&"a", 0));
        assert!(cap.admit(&"b", 0));
        assert!(!cap.admit(&"c", 0));
        assert!(!cap.admit(&"c", 10_000));
        assert!(cap.admit(&"a", 30_000), "an admitted key keeps flowing");
        assert_eq!((cap.admitted(), cap.refused_samples()), (2, 2));
        // b was last seen at 0: at 60 s it is retired and c takes its place.
        assert!(cap.admit(&"c", 60_000));
        assert!(!cap.admit(&"b", 60_000));
        assert_eq!((cap.admitted(), cap.refused_samples()), (2, 3));
    }

    fn sample(metric: &'static str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample::new(metric, Labels::new(labels.iter().copied()), 0, value)
    }

    /// One scrape of cluster `c` as the analyzer sees it: partitions t/0..n ending at 100,
    /// group `g` committed on the partitions of `lags` that far behind.
    fn view(n: usize, lags: &[(usize, i64)]) -> KafkaView {
        let tp = |p: usize| TopicPartition::new("t", p as i32);
        let snapshot = OffsetsSnapshot {
            time_ms: 1_000,
            partitions: (0..n)
                .map(|p| PartitionOffsets {
                    tp: tp(p),
                    offsets: Ok(OffsetRange {
                        earliest: 0,
                        latest: 100,
                    }),
                })
                .collect(),
            commits: lags
                .iter()
                .map(|&(p, lag)| GroupCommit {
                    group: "g".into(),
                    tp: tp(p),
                    committed: 100 - lag,
                    record_time_ms: None,
                })
                .collect(),
        };
        KafkaAnalyzer::default().ingest(&snapshot)
    }

    /// What a watcher sends of `view` through `stage`: the samples of the partitions its filter
    /// keeps, then the cap; also the samples left out.
    fn scrape(stage: &mut SeriesStage, view: &KafkaView) -> (Vec<Sample>, u64) {
        let filter = stage.partition_filter("c", view, 0);
        let mut samples = Vec::new();
        let unselected = push_view_samples(view, "c", &filter, &mut samples);
        stage.count_unselected("c", unselected);
        (stage.select(&samples, 0), unselected)
    }

    fn partitions_of(samples: &[Sample]) -> Vec<(&str, &str)> {
        let mut out: Vec<_> = samples
            .iter()
            .filter_map(|s| Some((s.metric.as_ref(), s.labels.get("partition")?)))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn budget(mode: PartitionSeries, k: usize) -> SeriesBudget {
        let cluster = ClusterSeries {
            mode,
            top: TopKSettings::with_k(k),
            ..ClusterSeries::default()
        };
        SeriesBudget {
            clusters: HashMap::from([("c".to_string(), cluster)]),
            ..SeriesBudget::default()
        }
    }

    #[test]
    fn a_cluster_of_at_most_k_partitions_keeps_every_series() {
        let mut stage = SeriesStage::new(SeriesBudget::default());
        let view = view(3, &[(1, 5)]);
        assert_eq!(scrape(&mut stage, &view), (view_to_samples(&view, "c"), 0));
    }

    #[test]
    fn top_k_keeps_the_lagging_partition_and_every_topic_and_group_series() {
        let mut stage = SeriesStage::new(budget(PartitionSeries::Top, 1));
        let view = view(3, &[(0, 0), (2, 50)]);
        let (out, unselected) = scrape(&mut stage, &view);
        assert_eq!(
            partitions_of(&out),
            [
                (names::GROUP_COMMITTED_BEYOND_END, "2"),
                (names::GROUP_COMMITTED_OFFSET, "2"),
                (names::GROUP_LAG_OFFSETS, "2"),
                (names::GROUP_PARTITION_VERDICT, "2"),
                (names::PARTITION_END_OFFSET, "2"),
                (names::PARTITION_START_OFFSET, "2"),
            ]
        );
        assert!(out.iter().any(|s| s.metric == names::GROUP_VERDICT));
        assert!(out.iter().any(|s| s.metric == names::CLAMPED_COMMITS_TOTAL));
        assert_eq!(stage.top_partitions("c"), 1);
        // Partitions 0 and 1: start and end offsets each; group partition 0: verdict,
        // committed offset, lag, beyond-end flag, and its lag in seconds (0: caught up) with
        // its estimated flag.
        assert_eq!(unselected, 2 + 2 + 6);
        assert_eq!(
            out.len() as u64 + unselected,
            view_to_samples(&view, "c").len() as u64
        );
        let counts = &stage.counts()[0];
        assert_eq!(
            (counts.source.as_str(), counts.unselected_samples),
            ("kafka/c", 10)
        );
    }

    #[test]
    fn the_fastest_partition_is_kept_by_its_rate() {
        let mut stage = SeriesStage::new(budget(PartitionSeries::Top, 1));
        let mut view = view(3, &[]);
        view.partitions[1].instant_messages_per_second = Some(2.0);
        let filter = stage.partition_filter("c", &view, 0);
        let kept: Vec<i32> = (0..3).filter(|&p| filter.keeps("t", p, None)).collect();
        assert_eq!(kept, [1]);
        assert_eq!(filter.top_partitions(), 1);
    }

    #[test]
    fn allowed_topics_and_groups_pass_and_none_keeps_only_them() {
        let mut config = budget(PartitionSeries::None, 1);
        let c = config.clusters.get_mut("c").unwrap();
        c.groups_allow = vec![Regex::new("^g$").unwrap()];
        let mut stage = SeriesStage::new(config.clone());
        let lagging = view(3, &[(2, 50)]);
        let (out, _) = scrape(&mut stage, &lagging);
        assert!(
            out.iter()
                .filter(|s| s.labels.get("partition").is_some())
                .all(|s| s.labels.get("group") == Some("g")),
            "{out:?}"
        );
        assert!(partitions_of(&out).contains(&(names::GROUP_LAG_OFFSETS, "2")));
        config.clusters.get_mut("c").unwrap().topics_allow = vec![Regex::new("^t$").unwrap()];
        let mut stage = SeriesStage::new(config);
        assert_eq!(
            scrape(&mut stage, &lagging),
            (view_to_samples(&lagging, "c"), 0)
        );
    }

    #[test]
    fn all_keeps_every_partition() {
        let mut stage = SeriesStage::new(budget(PartitionSeries::All, 1));
        let view = view(5, &[(2, 50)]);
        assert_eq!(scrape(&mut stage, &view), (view_to_samples(&view, "c"), 0));
    }

    #[test]
    fn the_cap_counts_per_source_what_it_drops() {
        let mut config = budget(PartitionSeries::All, 1);
        config.max_per_source = 4;
        let mut stage = SeriesStage::new(config);
        let kafka = view_to_samples(&view(5, &[]), "c");
        // Start and end offsets of 5 partitions, and the clamped-commit count.
        assert_eq!(kafka.len(), 11);
        let mqtt = sample("pipescope_mqtt_messages_total", &[("broker", "m")], 1.0);
        let out = stage.select(&[kafka.clone(), vec![mqtt.clone()]].concat(), 0);
        assert_eq!(out.len(), 4 + 1);
        let out = stage.select(&kafka, 10_000);
        assert_eq!(out.len(), 4, "the admitted series keep flowing");
        let counts = stage.counts();
        assert_eq!(
            counts,
            [
                SourceCounts {
                    source: "kafka/c".into(),
                    admitted: 4,
                    dropped_samples: 7 + 7,
                    unselected_samples: 0
                },
                SourceCounts {
                    source: "mqtt/m".into(),
                    admitted: 1,
                    dropped_samples: 0,
                    unselected_samples: 0
                }
            ]
        );
    }

    #[test]
    fn sources_beyond_the_cap_fold_into_other() {
        let mut stage = SeriesStage::new(SeriesBudget::default());
        for i in 0..MAX_SOURCES + 3 {
            let broker = i.to_string();
            let s = sample("pipescope_mqtt_x", &[("broker", broker.as_str())], 1.0);
            stage.select(&[s], 0);
        }
        let counts = stage.counts();
        assert_eq!(counts.len(), MAX_SOURCES + 1);
        let other = counts.iter().find(|c| c.source == OTHER_SOURCE).unwrap();
        assert_eq!(other.admitted, 3);
    }

    #[test]
    fn a_cluster_size_is_read_and_its_mistakes_explained() {
        let size: ClusterSize = "partitions=100_000, topics=20000,groups=10000"
            .parse()
            .unwrap();
        assert_eq!(
            size,
            ClusterSize {
                partitions: 100_000,
                topics: 20_000,
                groups: 10_000,
                group_partitions: 50_000
            }
        );
        let size: ClusterSize = "partitions=10,topics=3,groups=2,group_partitions=4"
            .parse()
            .unwrap();
        assert_eq!(size.group_partitions, 4);
        let err = |text: &str| text.parse::<ClusterSize>().unwrap_err();
        assert!(err("partitions=10,topics=3").starts_with("partitions, topics and groups"));
        assert!(err("partitions=10,topics=3,groups=x").starts_with("groups = \"x\" is not"));
        assert!(err("partitions=1,topics=3,groups=1").starts_with("3 topics for 1 partitions"));
        assert!(err("brokers=3").starts_with("unknown size \"brokers\""));
        assert!(err("partitions").contains("is not key=value"));
    }

    #[test]
    fn bytes_read_in_powers_of_1000() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(26_345_000.0), "26.3 MB");
        assert_eq!(human_bytes(411.0e9), "411.0 GB");
        assert_eq!(human_bytes(2.5e18), "2500.0 PB");
    }

    #[test]
    fn the_estimate_counts_series_and_bytes_before_and_after() {
        let size = ClusterSize {
            partitions: 100_000,
            topics: 20_000,
            groups: 10_000,
            group_partitions: 50_000,
        };
        let before = estimate(size, 10_000, None);
        let fixed = 3 * 20_000 + 3 * 10_000 + 2;
        assert_eq!(before.series, fixed + 4 * 100_000 + 6 * 50_000);
        assert_eq!(before.bytes_per_day, before.series as f64 * 8_640.0 * 1.50);
        let top = ClusterSeries {
            top: TopKSettings::with_k(200),
            ..ClusterSeries::default()
        };
        let after = estimate(size, 10_000, Some((&top, 1_000_000)));
        // 400 partitions kept, and 0.4 % of the group partitions: 200.
        assert_eq!(after.series, fixed + 4 * 400 + 6 * 200);
        let capped = estimate(size, 10_000, Some((&top, 50_000)));
        assert_eq!(capped.series, 50_000);
        let small = ClusterSize {
            partitions: 100,
            topics: 10,
            groups: 5,
            group_partitions: 100,
        };
        assert_eq!(
            estimate(small, 10_000, Some((&top, 50_000))),
            estimate(small, 10_000, None)
        );
        let none = ClusterSeries {
            mode: PartitionSeries::None,
            ..top
        };
        assert_eq!(
            estimate(size, 10_000, Some((&none, 1_000_000))).series,
            fixed
        );
    }
}

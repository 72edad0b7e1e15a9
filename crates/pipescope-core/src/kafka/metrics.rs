//! Metric names of the Kafka view (one place, for the binary's exporters and the Grafana
//! dashboards) and the conversion of a [`KafkaView`] into [`Sample`]s.
//!
//! Labels: `cluster`, `topic`, `partition` on partition series; `cluster`, `topic` on topic
//! series; `window` (`1m`, `5m`, `15m`) on the per-minute series, which exist only once their
//! window is covered (see [`crate::kafka::rate::EndOffsetHistory::counts`]); `cluster`,
//! `group`, `topic`, `partition` on group partition series; `cluster`, `group` on group series.

use std::sync::Arc;

use crate::kafka::analyzer::{GroupPartitionView, KafkaView, PartitionView};
use crate::sample::{Labels, Sample};
use crate::series_budget::PartitionFilter;
use crate::windows::Window;

/// Log start offset of a partition.
pub const PARTITION_START_OFFSET: &str = "pipescope_kafka_partition_start_offset";
/// Log end offset of a partition.
pub const PARTITION_END_OFFSET: &str = "pipescope_kafka_partition_end_offset";
/// Records appended per second to a partition over the last scrape interval (absent when not
/// measurable this scrape): the instantaneous rate, jumpy with bursty producers.
pub const PARTITION_INSTANT_MESSAGES_PER_SECOND: &str =
    "pipescope_kafka_partition_instant_messages_per_second";
/// Records appended to a partition over the last minute (`window="1m"` only, to keep partition
/// series few), as of the scrape; absent until the monitor has watched it a whole minute.
pub const PARTITION_MESSAGES_PER_MINUTE: &str = "pipescope_kafka_partition_messages_per_minute";
/// Records appended to a topic per minute over the `window` (`1m`, `5m`, `15m`) ending at the
/// scrape, summed over its partitions; absent until every one of them is covered that long.
pub const TOPIC_MESSAGES_PER_MINUTE: &str = "pipescope_kafka_topic_messages_per_minute";
/// A group's committed offset on a partition (with the end offset, what rebuilds a verdict
/// window from stored history).
pub const GROUP_COMMITTED_OFFSET: &str = "pipescope_kafka_group_committed_offset";
/// Lag in records of a group on a partition. Absent when unknown — notably when the committed
/// offset is beyond the end offset.
pub const GROUP_LAG_OFFSETS: &str = "pipescope_kafka_group_lag_offsets";
/// Lag in seconds of a group on a partition (absent when unknown).
pub const GROUP_LAG_SECONDS: &str = "pipescope_kafka_group_lag_seconds";
/// 1 when the matching `pipescope_kafka_group_lag_seconds` is estimated by interpolation,
/// 0 when exact.
pub const GROUP_LAG_SECONDS_ESTIMATED: &str = "pipescope_kafka_group_lag_seconds_estimated";
/// 1 when the group's committed offset on the partition is beyond the end offset.
pub const GROUP_COMMITTED_BEYOND_END: &str = "pipescope_kafka_group_committed_beyond_end";
/// Verdict code of a group on one partition (codes as [`GROUP_VERDICT`]).
pub const GROUP_PARTITION_VERDICT: &str = "pipescope_kafka_group_partition_verdict";
/// Verdict code of a group (its worst partition's):
/// 0 OK, 1 WARN, 2 STOPPED, 3 STALLED, 4 REWOUND, 5 LOST. See
/// [`crate::kafka::verdict::Verdict::code`].
pub const GROUP_VERDICT: &str = "pipescope_kafka_group_verdict";
/// A group's processing skew: its worst partition's lag minus its median partition lag, over the
/// partitions whose lag this scrape reported (labels `cluster`, `group`; the worst partition is
/// in the API only, to keep labels bounded). See [`crate::kafka::lag::lag_skew`].
pub const GROUP_LAG_SKEW_OFFSETS: &str = "pipescope_kafka_group_lag_skew_offsets";
/// Records deleted (retention, DeleteRecords) before the group read them, summed over the
/// topic's partitions, since the monitor started watching them (labels `cluster`, `group`,
/// `topic`). See [`crate::kafka::loss`].
pub const GROUP_LOST_RECORDS_TOTAL: &str = "pipescope_kafka_group_lost_records_total";
/// Commits found a little past the end offset and reported as lag 0, since the watcher started.
pub const CLAMPED_COMMITS_TOTAL: &str = "pipescope_kafka_clamped_commits_total";

/// Every series a view yields, stamped with the view's time.
///
/// A group partition the snapshot did not report (kept while it may turn STOPPED) only yields
/// its verdict: its offsets and lag are old.
pub fn view_to_samples(view: &KafkaView, cluster: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    push_view_samples(view, cluster, &PartitionFilter::every(), &mut samples);
    samples
}

/// [`view_to_samples`] into `samples`, with per-partition and per-group-partition series only
/// for the partitions `filter` keeps (topic, group and cluster series always); returns how many
/// samples the filter left out. A big cluster's view would yield ~1.5 M samples unfiltered:
/// leaving them out here, rather than after they are made, is what keeps a scrape's memory
/// bounded.
pub fn push_view_samples(
    view: &KafkaView,
    cluster: &str,
    filter: &PartitionFilter,
    samples: &mut Vec<Sample>,
) -> u64 {
    let time = view.time_ms;
    let group_topics: usize = view.groups.iter().map(|g| g.topics.len()).sum();
    // Grown once for the series always made (3 per topic, 1 per group topic, 2 per group, 1);
    // when every partition passes, for theirs too (at most 4 per partition, 6 per group
    // partition). A filtered view's few partition series grow it as they come.
    let mut reserve = 3 * view.topics.len() + group_topics + 2 * view.groups.len() + 1;
    if filter.keeps_every_partition() {
        let group_partitions: usize = view
            .groups
            .iter()
            .flat_map(|g| &g.topics)
            .map(|t| t.partitions.len())
            .sum();
        reserve += 4 * view.partitions.len() + 6 * group_partitions;
    }
    samples.reserve(reserve);
    let mut unselected = 0u64;
    let mut push = |metric: &'static str, labels: &Labels, value: f64| {
        samples.push(Sample::new(metric, labels.clone(), time, value));
    };
    // One shared string per cluster, topic, group and partition number: the label sets of a
    // big cluster's ~300,000 series point at them instead of each holding copies.
    let cluster: Arc<str> = Arc::from(cluster);
    let mut numbers = PartitionNumbers::default();
    let mut last_topic: Option<Arc<str>> = None;
    let mut shared_topic = |topic: &str| -> Arc<str> {
        match &last_topic {
            Some(t) if **t == *topic => Arc::clone(t),
            _ => Arc::clone(last_topic.insert(Arc::from(topic))),
        }
    };

    for p in &view.partitions {
        if !filter.keeps(&p.topic, p.partition, None) {
            partition_samples(p, &mut |_, _| unselected += 1);
            continue;
        }
        let topic = shared_topic(&p.topic);
        let partition = numbers.get(p.partition);
        let labels = Labels::shared([
            ("cluster", Arc::clone(&cluster)),
            ("topic", Arc::clone(&topic)),
            ("partition", Arc::clone(&partition)),
        ]);
        partition_samples(p, &mut |metric, value| {
            if metric == PARTITION_MESSAGES_PER_MINUTE {
                let labels = Labels::shared([
                    ("cluster", Arc::clone(&cluster)),
                    ("topic", Arc::clone(&topic)),
                    ("partition", Arc::clone(&partition)),
                    ("window", Arc::from(Window::OneMinute.label())),
                ]);
                push(metric, &labels, value);
            } else {
                push(metric, &labels, value);
            }
        });
    }
    for t in &view.topics {
        let Some(rates) = &t.rates else { continue };
        for window in Window::ALL {
            if let Some(rate) = rates.get(window).per_minute {
                let labels = Labels::shared([
                    ("cluster", Arc::clone(&cluster)),
                    ("topic", shared_topic(&t.topic)),
                    ("window", Arc::from(window.label())),
                ]);
                push(TOPIC_MESSAGES_PER_MINUTE, &labels, rate);
            }
        }
    }
    for g in &view.groups {
        let group: Arc<str> = Arc::from(g.group.as_str());
        for t in &g.topics {
            let topic = shared_topic(&t.topic);
            for p in &t.partitions {
                if !filter.keeps(&t.topic, p.partition, Some(&g.group)) {
                    group_partition_samples(p, &mut |_, _| unselected += 1);
                    continue;
                }
                let labels = Labels::shared([
                    ("cluster", Arc::clone(&cluster)),
                    ("group", Arc::clone(&group)),
                    ("topic", Arc::clone(&topic)),
                    ("partition", numbers.get(p.partition)),
                ]);
                group_partition_samples(p, &mut |metric, value| push(metric, &labels, value));
            }
            let labels = Labels::shared([
                ("cluster", Arc::clone(&cluster)),
                ("group", Arc::clone(&group)),
                ("topic", topic),
            ]);
            push(
                GROUP_LOST_RECORDS_TOTAL,
                &labels,
                t.lost_to_retention as f64,
            );
        }
        let labels = Labels::shared([("cluster", Arc::clone(&cluster)), ("group", group)]);
        push(GROUP_VERDICT, &labels, f64::from(g.verdict.code()));
        if let Some(skew) = g.lag_skew() {
            push(GROUP_LAG_SKEW_OFFSETS, &labels, skew.skew.offsets);
        }
    }
    push(
        CLAMPED_COMMITS_TOTAL,
        &Labels::shared([("cluster", cluster)]),
        view.counters.clamped_commits_total as f64,
    );
    unselected
}

/// A partition's series as (metric, value): its offsets and rates where known.
fn partition_samples(p: &PartitionView, push: &mut impl FnMut(&'static str, f64)) {
    if let Some(earliest) = p.earliest {
        push(PARTITION_START_OFFSET, earliest as f64);
    }
    if let Some(latest) = p.latest {
        push(PARTITION_END_OFFSET, latest as f64);
    }
    if let Some(rate) = p.instant_messages_per_second {
        push(PARTITION_INSTANT_MESSAGES_PER_SECOND, rate);
    }
    if let Some(rate) = p.rates.and_then(|r| r.get(Window::OneMinute).per_minute) {
        push(PARTITION_MESSAGES_PER_MINUTE, rate);
    }
}

/// Partition numbers as label values, each made once per call: a cluster's topics mostly
/// number their partitions from 0, so a few strings serve every partition label.
#[derive(Default)]
struct PartitionNumbers(Vec<Option<Arc<str>>>);

impl PartitionNumbers {
    /// Above this, numbers are made each time (a cap on what an outside count can grow).
    const CACHED: usize = 4096;

    fn get(&mut self, partition: i32) -> Arc<str> {
        let Some(index) = usize::try_from(partition)
            .ok()
            .filter(|&i| i < Self::CACHED)
        else {
            return Arc::from(partition.to_string());
        };
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        Arc::clone(self.0[index].get_or_insert_with(|| Arc::from(partition.to_string())))
    }
}

/// A group partition's series as (metric, value): its verdict always; its offsets and lag
/// only when this scrape reported it (a kept one's are old).
fn group_partition_samples(p: &GroupPartitionView, push: &mut impl FnMut(&'static str, f64)) {
    use crate::kafka::lag::LagNote;
    push(GROUP_PARTITION_VERDICT, f64::from(p.verdict.code()));
    if !p.reported_this_scrape {
        return;
    }
    push(GROUP_COMMITTED_OFFSET, p.committed as f64);
    if let Some(lag) = p.lag.offsets {
        push(GROUP_LAG_OFFSETS, lag as f64);
    }
    if let Some(seconds) = p.lag_seconds.seconds {
        push(GROUP_LAG_SECONDS, seconds);
        let estimated = if p.lag_seconds.is_estimated() {
            1.0
        } else {
            0.0
        };
        push(GROUP_LAG_SECONDS_ESTIMATED, estimated);
    }
    if p.lag.note != LagNote::EndOffsetUnknown {
        let beyond = if p.lag.note == LagNote::CommittedBeyondEnd {
            1.0
        } else {
            0.0
        };
        push(GROUP_COMMITTED_BEYOND_END, beyond);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::analyzer::{AnalyzerConfig, KafkaAnalyzer};
    use crate::kafka::{
        GroupCommit, OffsetRange, OffsetsSnapshot, PartitionOffsets, TopicPartition,
    };

    fn snapshot(s: u64, latest: i64, committed: i64) -> OffsetsSnapshot {
        OffsetsSnapshot {
            time_ms: s * 1_000,
            partitions: vec![
                PartitionOffsets {
                    tp: TopicPartition::new("t", 0),
                    offsets: Ok(OffsetRange {
                        earliest: 0,
                        latest,
                    }),
                },
                PartitionOffsets {
                    tp: TopicPartition::new("t", 1),
                    offsets: Err("leader not available".into()),
                },
            ],
            commits: vec![GroupCommit {
                group: "g".into(),
                tp: TopicPartition::new("t", 0),
                committed,
                record_time_ms: None,
            }],
        }
    }

    fn find<'a>(samples: &'a [Sample], metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
        samples
            .iter()
            .filter(|s| {
                s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            })
            .collect()
    }

    fn value(samples: &[Sample], metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found = find(samples, metric, labels);
        assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
        found[0].value
    }

    #[test]
    fn view_becomes_samples_with_the_documented_names_and_labels() {
        let mut a = KafkaAnalyzer::new(AnalyzerConfig::default());
        a.ingest(snapshot(0, 100, 40));
        let view = a.ingest(snapshot(10, 200, 150));
        let samples = view_to_samples(&view, "prod");
        assert!(samples.iter().all(|s| s.time_ms == 10_000));
        assert!(
            samples
                .iter()
                .all(|s| s.labels.get("cluster") == Some("prod"))
        );
        let p0 = [("topic", "t"), ("partition", "0")];
        assert_eq!(value(&samples, PARTITION_END_OFFSET, &p0), 200.0);
        assert_eq!(
            value(&samples, PARTITION_INSTANT_MESSAGES_PER_SECOND, &p0),
            10.0
        );
        // Watched 10 s: no per-minute figure for any window yet.
        assert!(find(&samples, TOPIC_MESSAGES_PER_MINUTE, &[]).is_empty());
        assert!(find(&samples, PARTITION_MESSAGES_PER_MINUTE, &[]).is_empty());
        // The failed partition yields nothing rather than a made-up number.
        assert!(find(&samples, PARTITION_END_OFFSET, &[("partition", "1")]).is_empty());
        let gp = [("group", "g"), ("topic", "t"), ("partition", "0")];
        assert_eq!(value(&samples, GROUP_COMMITTED_OFFSET, &gp), 150.0);
        assert_eq!(value(&samples, GROUP_LAG_OFFSETS, &gp), 50.0);
        // Log end was at 150 at 5 s.
        assert_eq!(value(&samples, GROUP_LAG_SECONDS, &gp), 5.0);
        assert_eq!(value(&samples, GROUP_LAG_SECONDS_ESTIMATED, &gp), 1.0);
        assert_eq!(value(&samples, GROUP_COMMITTED_BEYOND_END, &gp), 0.0);
        assert_eq!(value(&samples, GROUP_PARTITION_VERDICT, &gp), 0.0);
        assert_eq!(value(&samples, GROUP_VERDICT, &[("group", "g")]), 0.0);
        let group_verdict = find(&samples, GROUP_VERDICT, &[]);
        assert_eq!(group_verdict[0].labels.get("topic"), None);
        // One partition with a known lag: no skew, and no partition label.
        let skew = find(&samples, GROUP_LAG_SKEW_OFFSETS, &[("group", "g")]);
        assert_eq!(skew.len(), 1);
        assert_eq!(skew[0].value, 0.0);
        assert_eq!(skew[0].labels.get("partition"), None);
        assert_eq!(value(&samples, CLAMPED_COMMITS_TOTAL, &[]), 0.0);
        let lost = find(&samples, GROUP_LOST_RECORDS_TOTAL, &[("group", "g")]);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].value, 0.0);
        assert_eq!(lost[0].labels.get("topic"), Some("t"));
        assert_eq!(
            lost[0].labels.get("partition"),
            None,
            "per topic, not partition"
        );
    }

    #[test]
    fn records_deleted_before_the_group_read_them_are_counted_per_group_and_topic() {
        let mut a = KafkaAnalyzer::new(AnalyzerConfig::default());
        a.ingest(snapshot(0, 100, 40));
        let mut deleted = snapshot(10, 120, 40);
        deleted.partitions[0].offsets = Ok(OffsetRange {
            earliest: 70,
            latest: 120,
        });
        let samples = view_to_samples(&a.ingest(&deleted), "c");
        let gt = [("group", "g"), ("topic", "t")];
        assert_eq!(value(&samples, GROUP_LOST_RECORDS_TOTAL, &gt), 30.0);
        assert_eq!(value(&samples, GROUP_VERDICT, &[("group", "g")]), 5.0);
    }

    #[test]
    fn per_minute_series_appear_window_by_window_once_covered() {
        let mut a = KafkaAnalyzer::new(AnalyzerConfig::default());
        let windows = |samples: &[Sample], metric: &str| -> Vec<(String, f64)> {
            find(samples, metric, &[("topic", "t")])
                .iter()
                .map(|s| (s.labels.get("window").unwrap_or("").to_owned(), s.value))
                .collect()
        };
        let mut samples = Vec::new();
        // 100 records every 10 s.
        for s in (0..=300).step_by(10) {
            samples = view_to_samples(&a.ingest(snapshot(s, 10 * s as i64, 0)), "c");
            if s == 50 {
                assert!(windows(&samples, TOPIC_MESSAGES_PER_MINUTE).is_empty());
            }
            if s == 60 {
                assert_eq!(
                    windows(&samples, TOPIC_MESSAGES_PER_MINUTE),
                    [("1m".to_owned(), 600.0)]
                );
                assert_eq!(
                    windows(&samples, PARTITION_MESSAGES_PER_MINUTE),
                    [("1m".to_owned(), 600.0)]
                );
            }
        }
        assert_eq!(
            windows(&samples, TOPIC_MESSAGES_PER_MINUTE),
            [("1m".to_owned(), 600.0), ("5m".to_owned(), 600.0)]
        );
        assert_eq!(
            windows(&samples, PARTITION_MESSAGES_PER_MINUTE),
            [("1m".to_owned(), 600.0)],
            "partitions: the last minute only"
        );
    }

    #[test]
    fn beyond_end_yields_no_lag_sample_but_the_flag() {
        let mut a = KafkaAnalyzer::new(AnalyzerConfig::default());
        a.ingest(snapshot(0, 101, 1_400));
        let view = a.ingest(snapshot(10, 101, 1_500));
        let samples = view_to_samples(&view, "c");
        let gp = [("group", "g"), ("partition", "0")];
        assert!(find(&samples, GROUP_LAG_OFFSETS, &gp).is_empty());
        assert!(find(&samples, GROUP_LAG_SECONDS, &gp).is_empty());
        assert_eq!(value(&samples, GROUP_COMMITTED_BEYOND_END, &gp), 1.0);
        assert_eq!(value(&samples, CLAMPED_COMMITS_TOTAL, &[]), 1.0);
    }

    #[test]
    fn metric_names_follow_the_project_convention() {
        for name in [
            PARTITION_END_OFFSET,
            PARTITION_INSTANT_MESSAGES_PER_SECOND,
            PARTITION_MESSAGES_PER_MINUTE,
            TOPIC_MESSAGES_PER_MINUTE,
            GROUP_COMMITTED_OFFSET,
            GROUP_LAG_OFFSETS,
            GROUP_LAG_SECONDS,
            GROUP_LAG_SECONDS_ESTIMATED,
            GROUP_COMMITTED_BEYOND_END,
            GROUP_PARTITION_VERDICT,
            GROUP_VERDICT,
            GROUP_LOST_RECORDS_TOTAL,
            CLAMPED_COMMITS_TOTAL,
        ] {
            assert!(name.starts_with("pipescope_kafka_"), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}

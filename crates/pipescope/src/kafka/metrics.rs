//! `pipescope_kafka_*` for Prometheus, read from the live state at each `/metrics` request:
//! the raw scrape (brokers, offsets, commits) and the analyzer's view (rates, lag, verdicts).
//! Group and topic allow/deny regexes bound the number of series on big clusters.

use std::collections::BTreeMap;

use pipescope_core::kafka::metrics as names;
use pipescope_core::kafka::push_view_samples;
use pipescope_core::series_budget::PartitionFilter;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use regex::Regex;

use super::state::{ClusterState, LiveState};
use crate::config::{KafkaCluster, MetricsGranularity};

/// Which names to export: all when `allow` is empty, never one that a `deny` regex matches.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

impl NameFilter {
    /// Patterns were checked by config validation; one that still fails is reported here.
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, regex::Error> {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| Regex::new(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            allow: compile(allow)?,
            deny: compile(deny)?,
        })
    }

    pub fn allows(&self, name: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|r| r.is_match(name)))
            && !self.deny.iter().any(|r| r.is_match(name))
    }
}

/// The filters of one cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilters {
    pub groups: NameFilter,
    pub topics: NameFilter,
    pub granularity: MetricsGranularity,
}

impl ClusterFilters {
    pub fn from_config(cluster: &KafkaCluster) -> Result<Self, regex::Error> {
        Ok(Self {
            groups: NameFilter::new(&cluster.groups_allow, &cluster.groups_deny)?,
            topics: NameFilter::new(&cluster.topics_allow, &cluster.topics_deny)?,
            granularity: cluster.metrics_granularity,
        })
    }
}

/// Registered once into the registry; encodes every cluster's latest scrape.
#[derive(Debug, Clone)]
pub struct KafkaCollector {
    live: LiveState,
    filters: BTreeMap<String, ClusterFilters>,
}

impl KafkaCollector {
    pub fn new(live: LiveState, filters: BTreeMap<String, ClusterFilters>) -> Self {
        Self { live, filters }
    }
}

type Gauge = (
    &'static str,
    &'static str,
    Vec<(Vec<(&'static str, String)>, f64)>,
);

fn gauges(state: &ClusterState, filters: &ClusterFilters) -> Vec<Gauge> {
    let cluster = || ("cluster", state.name.clone());
    let mut up = Vec::new();
    for b in &state.brokers {
        up.push((
            vec![cluster(), ("broker", b.id.to_string())],
            if b.up { 1.0 } else { 0.0 },
        ));
    }
    let scrape = vec![(vec![cluster()], state.scrape_duration_ms as f64 / 1000.0)];
    // Never reached: no age to report (the broker_up series say it is down).
    let age = if state.data_time_ms > 0 {
        vec![(
            vec![cluster()],
            state.scraped_at_ms.saturating_sub(state.data_time_ms) as f64 / 1000.0,
        )]
    } else {
        Vec::new()
    };
    let mut end = Vec::new();
    let mut start = Vec::new();
    let mut committed = Vec::new();
    let by_topic = filters.granularity == MetricsGranularity::Topic;
    for t in state
        .topics
        .iter()
        .filter(|t| filters.topics.allows(&t.name))
    {
        if by_topic {
            // A sum with a partition missing would look like a drop: leave it out instead.
            let sum = |f: fn(&super::state::PartitionState) -> Option<i64>| {
                t.partitions.iter().map(f).sum::<Option<i64>>()
            };
            let labels = vec![cluster(), ("topic", t.name.clone())];
            if let Some(v) = sum(|p| p.latest.as_ref().ok().copied()) {
                end.push((labels.clone(), v as f64));
            }
            if let Some(v) = sum(|p| p.earliest.as_ref().ok().copied()) {
                start.push((labels, v as f64));
            }
            continue;
        }
        for p in &t.partitions {
            let labels = vec![
                cluster(),
                ("topic", t.name.clone()),
                ("partition", p.partition.to_string()),
            ];
            if let Ok(v) = p.latest {
                end.push((labels.clone(), v as f64));
            }
            if let Ok(v) = p.earliest {
                start.push((labels, v as f64));
            }
        }
    }
    for g in state
        .groups
        .iter()
        .filter(|g| filters.groups.allows(&g.name))
    {
        let mut per_topic: BTreeMap<&str, i64> = BTreeMap::new();
        for c in g.offsets.iter().flatten() {
            if !filters.topics.allows(&c.topic) {
                continue;
            }
            if by_topic {
                *per_topic.entry(&c.topic).or_default() += c.committed;
                continue;
            }
            committed.push((
                vec![
                    cluster(),
                    ("group", g.name.clone()),
                    ("topic", c.topic.to_string()),
                    ("partition", c.partition.to_string()),
                ],
                c.committed as f64,
            ));
        }
        for (topic, sum) in per_topic {
            committed.push((
                vec![
                    cluster(),
                    ("group", g.name.clone()),
                    ("topic", topic.to_string()),
                ],
                sum as f64,
            ));
        }
    }
    let (end_name, start_name, committed_name) = if by_topic {
        (
            "pipescope_kafka_topic_end_offset_sum",
            "pipescope_kafka_topic_start_offset_sum",
            "pipescope_kafka_group_topic_committed_offset_sum",
        )
    } else {
        (
            "pipescope_kafka_partition_end_offset",
            "pipescope_kafka_partition_start_offset",
            "pipescope_kafka_group_committed_offset",
        )
    };
    let mut out = vec![
        (
            "pipescope_kafka_broker_up",
            "Whether the broker answered the latest scrape (1) or not (0).",
            up,
        ),
        (
            "pipescope_kafka_scrape_duration_seconds",
            "Wall time of the latest scrape of the cluster.",
            scrape,
        ),
        (
            "pipescope_kafka_scrape_staleness_seconds",
            "Age of the numbers at the latest scrape: above 0 when no broker answered it.",
            age,
        ),
        (
            end_name,
            "Log end offset (latest) of the partition, or summed over the topic's partitions.",
            end,
        ),
        (
            start_name,
            "Log start offset (earliest) of the partition, or summed over the topic's partitions.",
            start,
        ),
        (
            committed_name,
            "Offset the consumer group committed on the partition, or summed over the topic.",
            committed,
        ),
    ];
    out.extend(replication(state, filters));
    out.extend(derived(state, filters));
    out.extend(offsets_topic(state));
    out
}

/// Where committed offsets came from, and the `__consumer_offsets` reader while one runs.
fn offsets_topic(state: &ClusterState) -> Vec<Gauge> {
    let cluster = vec![("cluster", state.name.clone())];
    let source = &state.committed_offsets;
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut out = vec![(
        "pipescope_kafka_offsets_topic_in_use",
        "1 when the latest scrape's committed offsets were read from __consumer_offsets, 0 when asked with OffsetFetch.",
        vec![(cluster.clone(), flag(source.from_offsets_topic))],
    )];
    let Some(reader) = &source.reader else {
        return out;
    };
    let one = |v: f64| vec![(cluster.clone(), v)];
    out.extend([
        (
            "pipescope_kafka_offsets_topic_lag_records",
            "Records of __consumer_offsets its reader has not read yet (present while a reader runs).",
            one(reader.lag_records as f64),
        ),
        (
            "pipescope_kafka_offsets_topic_caught_up",
            "1 once the __consumer_offsets reader has read up to the end it saw at its start (its numbers are used only then).",
            one(flag(reader.caught_up)),
        ),
        (
            "pipescope_kafka_offsets_topic_commits",
            "Group partitions the __consumer_offsets reader holds a commit for.",
            one(reader.commits as f64),
        ),
        (
            "pipescope_kafka_offsets_topic_undecodable_records_total",
            "Records of __consumer_offsets that did not decode and were skipped.",
            one(reader.undecodable_records as f64),
        ),
        (
            "pipescope_kafka_offsets_topic_dropped_commits_total",
            "Commits of new group partitions not kept: the reader's table was full.",
            one(reader.dropped_commits as f64),
        ),
    ]);
    out
}

/// Per topic, whatever the granularity: how many of its partitions are under-replicated and
/// how many have no leader (the alert rules read the same flags).
fn replication(state: &ClusterState, filters: &ClusterFilters) -> Vec<Gauge> {
    let mut under = Vec::new();
    let mut offline = Vec::new();
    for t in state
        .topics
        .iter()
        .filter(|t| filters.topics.allows(&t.name))
    {
        let labels = vec![("cluster", state.name.clone()), ("topic", t.name.clone())];
        let count = |f: fn(&super::state::PartitionState) -> bool| {
            t.partitions.iter().filter(|p| f(p)).count() as f64
        };
        under.push((labels.clone(), count(|p| p.under_replicated)));
        offline.push((labels, count(|p| p.offline)));
    }
    vec![
        (
            "pipescope_kafka_topic_under_replicated_partitions",
            "Partitions of the topic whose in-sync replicas are fewer than their replicas.",
            under,
        ),
        (
            "pipescope_kafka_topic_offline_partitions",
            "Partitions of the topic without a leader.",
            offline,
        ),
    ]
}

/// Label names of the view's samples, in the order they are exported.
const LABEL_ORDER: [&str; 5] = ["cluster", "group", "topic", "partition", "window"];

/// The analyzer's series (rates, lag, verdicts, clamped commits), filtered like the raw ones.
/// End and committed offsets are left out: the raw gauges above already export them.
/// Per topic, partition series are replaced by the topic's rate and per group and topic sums.
fn derived(state: &ClusterState, filters: &ClusterFilters) -> Vec<Gauge> {
    let Some(view) = state.view.as_deref() else {
        return Vec::new();
    };
    let by_topic = filters.granularity == MetricsGranularity::Topic;
    let mut out: Vec<Gauge> = Vec::new();
    let mut push = |name: &'static str, labels: Vec<(&'static str, String)>, value: f64| match out
        .iter_mut()
        .find(|g| g.0 == name)
    {
        Some(g) => g.2.push((labels, value)),
        None => out.push((name, help(name), vec![(labels, value)])),
    };
    // By topic, no partition series is wanted: not made at all (a big cluster has millions).
    let partitions = if by_topic {
        PartitionFilter::no_partition()
    } else {
        PartitionFilter::every()
    };
    let mut samples = Vec::new();
    push_view_samples(view, &state.name, &partitions, &mut samples);
    for sample in samples {
        let Some(name) = DERIVED.iter().copied().find(|n| *n == sample.metric) else {
            continue;
        };
        let labels = &sample.labels;
        if labels
            .get("topic")
            .is_some_and(|t| !filters.topics.allows(t))
            || labels
                .get("group")
                .is_some_and(|g| !filters.groups.allows(g))
            || (by_topic && labels.get("partition").is_some())
        {
            continue;
        }
        let labels = LABEL_ORDER
            .iter()
            .filter_map(|k| labels.get(k).map(|v| (*k, v.to_string())))
            .collect();
        push(name, labels, sample.value);
    }
    if by_topic {
        for g in view
            .groups
            .iter()
            .filter(|g| filters.groups.allows(&g.group))
        {
            for t in g.topics.iter().filter(|t| filters.topics.allows(&t.topic)) {
                let labels = vec![
                    ("cluster", state.name.clone()),
                    ("group", g.group.clone()),
                    ("topic", t.topic.clone()),
                ];
                // A sum with a partition missing would look like a drop: leave it out instead.
                if t.partitions_lag_unknown == 0 {
                    push(
                        GROUP_TOPIC_LAG_OFFSETS_SUM,
                        labels.clone(),
                        t.lag_offsets as f64,
                    );
                }
                if let Some(seconds) = t.max_lag_seconds {
                    push(GROUP_TOPIC_LAG_SECONDS_MAX, labels.clone(), seconds);
                }
                push(GROUP_TOPIC_VERDICT, labels, f64::from(t.verdict.code()));
            }
        }
    }
    out
}

/// Per topic (`metrics_granularity = "topic"`): a group's lag summed over a topic's partitions.
pub const GROUP_TOPIC_LAG_OFFSETS_SUM: &str = "pipescope_kafka_group_topic_lag_offsets_sum";
/// Per topic: a group's largest lag in seconds over a topic's partitions.
pub const GROUP_TOPIC_LAG_SECONDS_MAX: &str = "pipescope_kafka_group_topic_lag_seconds_max";
/// Per topic: a group's worst verdict over a topic's partitions (same codes).
pub const GROUP_TOPIC_VERDICT: &str = "pipescope_kafka_group_topic_verdict";

/// The view's series exported here (its end and committed offsets come from the raw state).
const DERIVED: [&str; 12] = [
    names::PARTITION_INSTANT_MESSAGES_PER_SECOND,
    names::PARTITION_MESSAGES_PER_MINUTE,
    names::TOPIC_MESSAGES_PER_MINUTE,
    names::GROUP_LAG_OFFSETS,
    names::GROUP_LAG_SECONDS,
    names::GROUP_LAG_SECONDS_ESTIMATED,
    names::GROUP_COMMITTED_BEYOND_END,
    names::GROUP_PARTITION_VERDICT,
    names::GROUP_VERDICT,
    names::GROUP_LAG_SKEW_OFFSETS,
    names::GROUP_LOST_RECORDS_TOTAL,
    names::CLAMPED_COMMITS_TOTAL,
];

fn help(name: &str) -> &'static str {
    match name {
        names::PARTITION_INSTANT_MESSAGES_PER_SECOND => {
            "Records appended per second to the partition over the last scrape interval (instantaneous: jumps with bursty producers); absent while no broker answers."
        }
        names::PARTITION_MESSAGES_PER_MINUTE => {
            "Records appended to the partition in the last minute (window=\"1m\") as of the latest scrape; absent until a whole minute is watched."
        }
        names::TOPIC_MESSAGES_PER_MINUTE => {
            "Records appended to the topic per minute over the window (1m, 5m, 15m) ending at the latest scrape, summed over its partitions; absent until the window is watched whole."
        }
        names::GROUP_LAG_OFFSETS => {
            "Records between the group's committed offset and the log end (absent when unknown)."
        }
        names::GROUP_LAG_SECONDS => {
            "Age of the record at the group's committed offset, exact or estimated (absent when unknown)."
        }
        names::GROUP_LAG_SECONDS_ESTIMATED => {
            "1 when the matching lag in seconds is interpolated from end-offset history, 0 when exact."
        }
        names::GROUP_COMMITTED_BEYOND_END => {
            "1 when the group's committed offset is beyond the partition's end offset (lag unknown)."
        }
        names::GROUP_PARTITION_VERDICT => {
            "Verdict on the group's partition: 0 OK, 1 WARN, 2 STOPPED, 3 STALLED, 4 REWOUND, 5 LOST."
        }
        names::GROUP_VERDICT => {
            "Verdict on the group (its worst partition): 0 OK, 1 WARN, 2 STOPPED, 3 STALLED, 4 REWOUND, 5 LOST."
        }
        names::GROUP_LAG_SKEW_OFFSETS => {
            "The group's worst partition lag minus its median partition lag (one partition late); the worst partition is in the API."
        }
        names::GROUP_LOST_RECORDS_TOTAL => {
            "Records deleted (retention, DeleteRecords) before the group read them, over the topic's partitions, since the monitor started watching them."
        }
        names::CLAMPED_COMMITS_TOTAL => {
            "Commits found a little past the end offset (racing its read) and reported as lag 0."
        }
        GROUP_TOPIC_LAG_OFFSETS_SUM => {
            "The group's lag summed over the topic's partitions (absent when one is unknown)."
        }
        GROUP_TOPIC_LAG_SECONDS_MAX => {
            "The group's largest lag in seconds over the topic's partitions."
        }
        GROUP_TOPIC_VERDICT => {
            "The group's worst verdict over the topic's partitions (codes as the group verdict)."
        }
        _ => "",
    }
}

impl Collector for KafkaCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let default = ClusterFilters::default();
        // One descriptor per metric name, holding the series of every cluster.
        let mut merged: Vec<Gauge> = Vec::new();
        for state in self.live.all() {
            let filters = self.filters.get(&state.name).unwrap_or(&default);
            for (name, help, series) in gauges(&state, filters) {
                match merged.iter_mut().find(|m| m.0 == name) {
                    Some(m) => m.2.extend(series),
                    None => merged.push((name, help, series)),
                }
            }
        }
        for (name, help, series) in merged {
            // The encoder appends `_total` to a counter's name.
            if let Some(counter) = name.strip_suffix("_total") {
                let mut metric =
                    encoder.encode_descriptor(counter, help, None, MetricType::Counter)?;
                for (labels, value) in series {
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&(value as u64), None)?;
                }
                continue;
            }
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, value) in series {
                metric.encode_family(&labels)?.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}

//! What one scrape of a cluster saw: the live state the API, metrics and analyzer read.
//!
//! Every item carries its own error: a group the broker refuses to describe, a partition whose
//! leader is down, an API the broker lacks. The rest of the scrape stands. In JSON such an item
//! is its value when known, `{"error": "why"}` when not (see [`item`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use pipescope_core::EpochMillis;
use pipescope_core::kafka::{
    FastMap, GroupCommit, KafkaView, OffsetRange, OffsetsSnapshot, PartitionOffsets, TopicPartition,
};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ClusterState {
    pub name: String,
    /// When this scrape started (ms since the epoch).
    pub scraped_at_ms: EpochMillis,
    pub scrape_duration_ms: u64,
    /// When the numbers below were last read from the cluster: equals `scraped_at_ms` unless
    /// this scrape reached no broker, in which case the previous scrape's numbers are kept.
    pub data_time_ms: EpochMillis,
    /// Why this scrape got nothing from the cluster, when it did not.
    pub error: Option<String>,
    pub cluster_id: Option<String>,
    pub controller_id: Option<i32>,
    pub brokers: Vec<KafkaBrokerState>,
    pub topics: Vec<TopicState>,
    pub groups: Vec<GroupState>,
    /// Why the group list is incomplete (ListGroups failed on some broker), per broker.
    pub group_list_errors: Vec<String>,
    /// When each kind of request ran, in the order they finished: where a slow scrape's time went.
    pub stages: Vec<ScrapeStage>,
    /// When this scrape read the end offsets (the time the analyzer takes them at); `None` when
    /// it reached no broker and the numbers are the previous scrape's.
    #[serde(skip)]
    pub offsets_time_ms: Option<EpochMillis>,
    /// Rates, lag and verdicts derived by the watcher's analyzer; kept from the previous scrape
    /// when this one got nothing, `None` before the first analysed scrape.
    #[serde(skip)]
    pub view: Option<Arc<KafkaView>>,
    /// Where this scrape's committed offsets came from (metrics only).
    #[serde(skip)]
    pub committed_offsets: CommittedOffsetsSource,
}

/// Where a scrape's committed offsets came from, and how the `__consumer_offsets` reader is
/// doing when one runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedOffsetsSource {
    /// Read from `__consumer_offsets` (else asked with OffsetFetch).
    pub from_offsets_topic: bool,
    pub reader: Option<OffsetsTopicProgress>,
}

/// The `__consumer_offsets` reader at the time of a scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetsTopicProgress {
    pub caught_up: bool,
    /// Records of the topic not read yet.
    pub lag_records: i64,
    /// Group partitions held.
    pub commits: usize,
    pub undecodable_records: u64,
    /// Commits not kept: the table was full.
    pub dropped_commits: u64,
    /// Why the reader is not reading, when it is not.
    pub error: Option<String>,
}

/// When a scrape started, how long it took and where the time went.
#[derive(Debug, Clone)]
pub struct ScrapeTiming {
    pub scraped_at_ms: EpochMillis,
    pub duration_ms: u64,
    pub stages: Vec<ScrapeStage>,
}

/// What a scrape that reached the cluster read from it.
#[derive(Debug, Clone)]
pub struct ClusterReading {
    pub cluster_id: Option<String>,
    pub controller_id: Option<i32>,
    pub brokers: Vec<KafkaBrokerState>,
    pub topics: Vec<TopicState>,
    pub groups: Vec<GroupState>,
    pub group_list_errors: Vec<String>,
    pub offsets_time_ms: EpochMillis,
    pub committed_offsets: CommittedOffsetsSource,
}

impl ClusterState {
    /// The state of a scrape that reached the cluster: its numbers are read now (`data_time_ms`
    /// is `scraped_at_ms`). The view is left to the watcher's analyzer.
    pub fn read(name: impl Into<String>, timing: ScrapeTiming, reading: ClusterReading) -> Self {
        Self {
            name: name.into(),
            scraped_at_ms: timing.scraped_at_ms,
            scrape_duration_ms: timing.duration_ms,
            data_time_ms: timing.scraped_at_ms,
            error: None,
            cluster_id: reading.cluster_id,
            controller_id: reading.controller_id,
            brokers: reading.brokers,
            topics: reading.topics,
            groups: reading.groups,
            group_list_errors: reading.group_list_errors,
            stages: timing.stages,
            offsets_time_ms: Some(reading.offsets_time_ms),
            view: None,
            committed_offsets: reading.committed_offsets,
        }
    }

    /// The state of a scrape that reached no broker (`error` says why, `broker_error` is what
    /// every broker is marked down with): the `previous` scrape's numbers are kept, stale (with
    /// their `data_time_ms`, and no snapshot for the analyzer); with no previous scrape nothing
    /// is known (`data_time_ms` 0).
    pub fn unreachable(
        name: impl Into<String>,
        previous: Option<&ClusterState>,
        scraped_at_ms: EpochMillis,
        scrape_duration_ms: u64,
        error: String,
        broker_error: String,
    ) -> Self {
        let mut state = match previous {
            Some(previous) => previous.clone(),
            None => Self {
                name: name.into(),
                scraped_at_ms,
                scrape_duration_ms,
                data_time_ms: 0,
                error: None,
                cluster_id: None,
                controller_id: None,
                brokers: Vec::new(),
                topics: Vec::new(),
                groups: Vec::new(),
                group_list_errors: Vec::new(),
                stages: Vec::new(),
                offsets_time_ms: None,
                view: None,
                committed_offsets: CommittedOffsetsSource::default(),
            },
        };
        for broker in &mut state.brokers {
            broker.up = false;
            broker.error = Some(broker_error.clone());
        }
        state.scraped_at_ms = scraped_at_ms;
        state.scrape_duration_ms = scrape_duration_ms;
        state.error = Some(error);
        state.offsets_time_ms = None;
        state.view = state.view.take().map(without_instant_rates);
        state
    }

    /// This scrape's offsets and commits in the shape the analyzer reads; `None` when it read
    /// none. Made when wanted, not kept: on a big cluster it is a copy of tens of MB.
    pub fn offsets_snapshot(&self) -> Option<OffsetsSnapshot> {
        let time_ms = self.offsets_time_ms?;
        // One shared name per topic and per group, and lists sized up front (a grown list keeps
        // up to twice its length): on a big cluster this is 300,000 rows.
        let names: FastMap<&str, Arc<str>> = self
            .topics
            .iter()
            .map(|t| (t.name.as_str(), Arc::from(t.name.as_str())))
            .collect();
        let topic = |name: &str| names.get(name).cloned().unwrap_or_else(|| name.into());
        let mut partitions =
            Vec::with_capacity(self.topics.iter().map(|t| t.partitions.len()).sum());
        for t in &self.topics {
            let name = topic(&t.name);
            partitions.extend(t.partitions.iter().map(|p| PartitionOffsets {
                tp: TopicPartition::new(Arc::clone(&name), p.partition),
                offsets: match (&p.earliest, &p.latest) {
                    (Ok(earliest), Ok(latest)) => Ok(OffsetRange {
                        earliest: *earliest,
                        latest: *latest,
                    }),
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                },
            }));
        }
        let read = || {
            self.groups
                .iter()
                .filter_map(|g| g.offsets.as_ref().ok().map(|o| (g, o)))
        };
        let mut commits = Vec::with_capacity(read().map(|(_, o)| o.len()).sum());
        for (g, offsets) in read() {
            let group: Arc<str> = g.name.as_str().into();
            commits.extend(offsets.iter().map(|c| GroupCommit {
                group: Arc::clone(&group),
                tp: TopicPartition::new(topic(&c.topic), c.partition),
                committed: c.committed,
                record_time_ms: c.record_time_ms,
            }));
        }
        Some(OffsetsSnapshot {
            time_ms,
            partitions,
            commits,
        })
    }

    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topics.iter().find(|t| t.name == name)
    }
    pub fn group(&self, name: &str) -> Option<&GroupState> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// One kind of request of a scrape (all its requests to all brokers), in milliseconds from the
/// scrape's start.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ScrapeStage {
    pub name: &'static str,
    pub start_ms: f64,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct KafkaBrokerState {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Whether the broker answered this scrape.
    pub up: bool,
    /// Why it did not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicState {
    pub name: String,
    /// The topic's id (Metadata v10+): a topic deleted and made again under the same name
    /// gets a new one.
    pub id: Option<String>,
    pub internal: bool,
    /// The topic's own error from Metadata (e.g. leader not available), if any.
    pub error: Option<String>,
    #[serde(serialize_with = "item::serialize")]
    pub config: Result<TopicConfig, String>,
    pub partitions: Vec<PartitionState>,
}

/// The topic configs that matter for monitoring; `None` where the broker did not say.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TopicConfig {
    pub cleanup_policy: Option<String>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub min_insync_replicas: Option<i32>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartitionState {
    pub partition: i32,
    /// `None` when the partition has no leader (offline).
    pub leader: Option<i32>,
    // Boxed slices, not lists: a big cluster's state holds 100,000 partitions, twice while the
    // next scrape is read beside the last.
    #[schema(value_type = Vec<i32>)]
    pub replicas: Box<[i32]>,
    #[schema(value_type = Vec<i32>)]
    pub isr: Box<[i32]>,
    #[schema(value_type = Vec<i32>)]
    pub offline_replicas: Box<[i32]>,
    pub offline: bool,
    pub under_replicated: bool,
    pub error: Option<String>,
    /// Earliest offset (log start), or why it is unknown this scrape.
    #[serde(serialize_with = "item::serialize")]
    #[schema(schema_with = item::schema::<i64>)]
    pub earliest: Result<i64, String>,
    /// Latest offset (log end), or why it is unknown this scrape.
    #[serde(serialize_with = "item::serialize")]
    #[schema(schema_with = item::schema::<i64>)]
    pub latest: Result<i64, String>,
    /// Producers writing to the partition, or why they are unknown
    /// ("broker does not report producers").
    #[serde(serialize_with = "item::serialize")]
    #[schema(schema_with = item::schema::<Vec<ProducerState>>)]
    pub producers: Result<Vec<ProducerState>, String>,
}

#[cfg(test)]
impl PartitionState {
    /// For tests: a healthy partition led by broker 1 (its only replica, in sync), offsets
    /// 0..`latest`.
    pub(crate) fn healthy(
        partition: i32,
        latest: i64,
        producers: Result<Vec<ProducerState>, String>,
    ) -> Self {
        Self {
            partition,
            leader: Some(1),
            replicas: vec![1].into(),
            isr: vec![1].into(),
            offline_replicas: vec![].into(),
            offline: false,
            under_replicated: false,
            error: None,
            earliest: Ok(0),
            latest: Ok(latest),
            producers,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ProducerState {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// First offset of the open transaction, when one is open.
    pub current_txn_start_offset: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupState {
    pub name: String,
    /// The group's coordinator, or why it is unknown.
    #[serde(serialize_with = "item::serialize")]
    #[schema(schema_with = item::schema::<i32>)]
    pub coordinator: Result<i32, String>,
    /// From ListGroups (empty when the broker did not say).
    pub protocol_type: String,
    /// From DescribeGroups, or why the group could not be described.
    #[serde(serialize_with = "item::serialize")]
    #[schema(schema_with = item::schema::<GroupDescription>)]
    pub description: Result<GroupDescription, String>,
    /// Committed offsets, or why none could be read.
    #[serde(serialize_with = "item::serialize")]
    #[schema(schema_with = item::schema::<Vec<CommittedOffset>>)]
    pub offsets: Result<Vec<CommittedOffset>, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct GroupDescription {
    pub state: String,
    pub protocol_type: String,
    /// The assignor (for consumer groups), e.g. `range`.
    pub protocol: String,
    pub members: Vec<MemberState>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct MemberState {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded from the consumer protocol's assignment bytes (empty for other protocols).
    pub assignment: Vec<AssignedTopic>,
    /// Why the assignment bytes could not be decoded.
    pub assignment_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AssignedTopic {
    pub topic: String,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CommittedOffset {
    // Shared by a group's commits of one topic: a big cluster has 200,000 commits.
    #[schema(value_type = String)]
    pub topic: Arc<str>,
    pub partition: i32,
    pub committed: i64,
    // Boxed strings (two words, not three): a big cluster has 200,000 commits.
    #[schema(value_type = Option<String>)]
    pub metadata: Option<Box<str>>,
    /// Timestamp of the record at the committed offset (fetched for lagging partitions).
    pub record_time_ms: Option<EpochMillis>,
    /// Why that timestamp is missing although the partition lags (record gone, fetch failed).
    #[schema(value_type = Option<String>)]
    pub record_time_error: Option<Box<str>>,
}

/// A per-item `Result` in JSON: the value itself when known, `{"error": "why"}` when not.
pub mod item {
    use serde::Serialize;
    use serde::ser::{SerializeMap, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        item: &Result<T, String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match item {
            Ok(value) => value.serialize(serializer),
            Err(why) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("error", why)?;
                map.end()
            }
        }
    }

    /// The OpenAPI schema of such a field: the value's, or an object with `error`.
    pub fn schema<T: utoipa::PartialSchema>() -> utoipa::openapi::schema::Schema {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
        Schema::OneOf(
            OneOfBuilder::new()
                .item(T::schema())
                .item(
                    ObjectBuilder::new()
                        .property("error", ObjectBuilder::new().schema_type(Type::String))
                        .required("error"),
                )
                .build(),
        )
    }
}

/// The latest state of every configured cluster, shared by the watchers (writers) and the API
/// and metrics (readers).
#[derive(Debug, Clone)]
pub struct LiveState {
    clusters: Arc<RwLock<BTreeMap<String, Arc<ClusterState>>>>,
    /// Counts `set` calls, so the portal's live stream learns of each scrape without polling.
    version: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for LiveState {
    fn default() -> Self {
        Self {
            clusters: Arc::default(),
            version: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl LiveState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self, state: impl Into<Arc<ClusterState>>) {
        let state = state.into();
        self.clusters
            .write()
            .expect("live state lock")
            .insert(state.name.clone(), state);
        self.version.send_modify(|v| *v += 1);
    }

    /// Changes whenever a cluster's state is set.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// How many receivers of `changes` are alive.
    #[cfg(test)]
    pub fn subscribers(&self) -> usize {
        self.version.receiver_count()
    }

    pub fn get(&self, cluster: &str) -> Option<Arc<ClusterState>> {
        self.clusters
            .read()
            .expect("live state lock")
            .get(cluster)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<ClusterState>> {
        self.clusters
            .read()
            .expect("live state lock")
            .values()
            .cloned()
            .collect()
    }
}

/// The kept view of a scrape that reached no broker: an instant rate is over the latest scrape
/// interval, and nothing was read in this one, so it is unknown (the API and /metrics would
/// otherwise show the last interval's rate as this moment's). Windows, lag and verdicts stay, as
/// of `data_time_ms`.
fn without_instant_rates(view: Arc<KafkaView>) -> Arc<KafkaView> {
    let has_instant = view
        .partitions
        .iter()
        .map(|p| p.instant_messages_per_second)
        .chain(view.topics.iter().map(|t| t.instant_messages_per_second))
        .any(|rate| rate.is_some());
    if !has_instant {
        return view;
    }
    let mut stale = (*view).clone();
    for p in &mut stale.partitions {
        p.instant_messages_per_second = None;
        p.instant_interval_s = None;
    }
    for t in &mut stale.topics {
        t.instant_messages_per_second = None;
        t.instant_interval_s = None;
    }
    Arc::new(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Item {
        #[serde(serialize_with = "item::serialize")]
        value: Result<Vec<i64>, String>,
    }

    #[test]
    fn an_item_is_its_value_or_its_error() {
        let ok = serde_json::to_value(Item {
            value: Ok(vec![1, 2]),
        })
        .unwrap();
        assert_eq!(ok, serde_json::json!({"value": [1, 2]}));
        let err = serde_json::to_value(Item {
            value: Err("leader not available".into()),
        })
        .unwrap();
        assert_eq!(
            err,
            serde_json::json!({"value": {"error": "leader not available"}})
        );
    }

    #[test]
    fn a_scrape_that_reached_no_broker_keeps_windows_but_no_instant_rate() {
        use pipescope_core::kafka::analyzer::{PartitionView, RateNote, TopicView};
        use pipescope_core::windows::{Window, WindowCount, WindowCounts};

        let rates = WindowCounts::from_fn(|w| WindowCount::new(w, 50.0, 60_000));
        let previous = ClusterState {
            committed_offsets: Default::default(),
            view: Some(Arc::new(KafkaView {
                time_ms: 1_000,
                partitions: vec![PartitionView {
                    topic: "beats".into(),
                    partition: 0,
                    earliest: Some(0),
                    latest: Some(50),
                    rates: Some(rates),
                    instant_messages_per_second: Some(25.0),
                    instant_interval_s: Some(0.2),
                    rate_note: RateNote::Measured,
                    error: None,
                }],
                topics: vec![TopicView {
                    topic: "beats".into(),
                    partitions: 1,
                    partitions_with_rate: 1,
                    rates: Some(rates),
                    instant_messages_per_second: Some(25.0),
                    instant_interval_s: Some(0.2),
                }],
                groups: vec![],
                counters: Default::default(),
            })),
            ..ClusterState::unreachable("c", None, 1_000, 0, String::new(), String::new())
        };
        let down = ClusterState::unreachable(
            "c",
            Some(&previous),
            3_000,
            1_000,
            "cluster c: no broker answered Metadata".into(),
            "connection refused".into(),
        );
        let view = down.view.unwrap();
        let (p, t) = (&view.partitions[0], &view.topics[0]);
        assert_eq!(
            (p.instant_messages_per_second, p.instant_interval_s),
            (None, None)
        );
        assert_eq!(
            (t.instant_messages_per_second, t.instant_interval_s),
            (None, None)
        );
        // The counts as of the last read stay (the cluster's staleness says how old they are).
        assert_eq!(p.rates.unwrap().get(Window::OneMinute).count, 50.0);
        assert_eq!(t.rates, Some(rates));
        assert_eq!(p.latest, Some(50));
    }
}

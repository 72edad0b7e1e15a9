//! A big Kafka cluster answered from memory, for measuring pipescope at sizes no real broker on
//! this machine holds at speed (tansu's sqlite engine grows with the square of the partitions).
//! It speaks the real protocol with kafka-protocol's types, like the scripted broker, and its
//! answers are checked against tansu's on a small cluster (pipescope's
//! `synthetic_cluster::the_synthetic_cluster_answers_in_the_shape_tansu_does`).
//!
//! The cluster, for the sizes given to [`SyntheticCluster::builder`]:
//! - brokers 1..=B, one listener each on a free port of 127.0.0.1 (rack `rack-<id % 3>`);
//!   broker 1 is the controller of cluster `synthetic-cluster`;
//! - topics `t-00000`, `t-00001`, ... each with the same number of partitions; partition `k`
//!   (counting over all topics, topic by topic) is led by broker `k % B + 1`, replicated on the
//!   next broker as well (both in sync); configs `cleanup.policy=delete`,
//!   `retention.ms=604800000`, `retention.bytes=-1`, `min.insync.replicas=1` (Kafka's defaults,
//!   answered with the source `DEFAULT_CONFIG`);
//! - log start 0; log end [`START_OFFSET`] `+ rate(k) * n` after `n` ListOffsets for the latest
//!   offset of partition `k`, where `rate(k) = k % 4` (a quarter of the partitions are idle):
//!   the offsets move each scrape;
//! - the record at offset `o` of any partition is stamped `record_time_base + o * 1000`;
//! - groups `g-00000`, ... each committed on a run of partitions (`partitions_per_group`
//!   consecutive partitions from `g * partitions_per_group`, wrapping), coordinated by broker
//!   `g % B + 1`, which alone lists, describes and answers for it (others answer
//!   NOT_COORDINATOR); Stable, protocol `range`, its members (`m-<i>`, client `c-<g>-<i>` on
//!   `/10.0.<i>.1`) assigned its partitions round-robin;
//! - the committed offset of group `g` on partition `k` is the partition's log end of one
//!   listing earlier minus `trail(g, k) = (g + k) % 3 * 10` for an even `g` (active: it moves
//!   with the log, and a third of its partitions are caught up but for the last listing's
//!   records); an odd `g` is stalled at [`START_OFFSET`] `- trail(g, k)`.
//!
//! - with [`SyntheticClusterBuilder::offsets_topic`], the internal topic `__consumer_offsets`
//!   ([`OFFSETS_TOPIC_PARTITIONS`] partitions, partition `p` led by broker `p % B + 1`) holding
//!   the groups' commits as Kafka writes them (key v1, value v3; a group's partition by Kafka's
//!   rule, its name's Java hash code): at start one commit per group partition, then each
//!   commit that moves (an active group's, at each listing of a moving partition) appended
//!   when it moves; ListOffsets and Fetch (record batches) answer for it, and a Fetch at its
//!   end waits its `max_wait_ms` as Kafka's does.
//!
//! What can be is computed once at start (the Metadata answer per version, the assignments);
//! each broker counts the requests it received per API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedPartitions,
};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use pipescope_core::kafka::offsets_topic::{
    OFFSETS_TOPIC, OffsetCommitKey, OffsetCommitValue, encode_key, encode_value,
    partition_for_group,
};
use tokio::net::{TcpListener, TcpStream};

use crate::kafka_wire::{Counted, Counts, api_versions, encode, read_request, write_answer};
use crate::records::RecordBatchBuilder;

/// The log end offset of every partition before its first listing.
pub const START_OFFSET: i64 = 1_000;

/// Partitions of `__consumer_offsets`, as Kafka's default (`offsets.topic.num.partitions`).
pub const OFFSETS_TOPIC_PARTITIONS: u32 = 50;
/// How often a waiting Fetch looks for new records.
const FETCH_POLL: Duration = Duration::from_millis(5);
/// Most records one Fetch of `__consumer_offsets` returns per partition.
const OFFSETS_FETCH_RECORDS: usize = 2_000;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_COORDINATOR: i16 = 16;
const GROUP_ID_NOT_FOUND: i16 = 69;
/// DescribeConfigs' `DEFAULT_CONFIG` source: every config the cluster answers is Kafka's default
/// (tansu answers the same). kafka-protocol's default, -1, is no source at all: librdkafka hands
/// it on as is, and rust-rdkafka (klag-exporter) crashes on the enum value it cannot name.
const DEFAULT_CONFIG_SOURCE: i8 = 5;

/// The APIs served and their highest versions (those pipescope's scrape asks for).
const SERVED: [(ApiKey, i16); 10] = [
    (ApiKey::ApiVersions, 3),
    (ApiKey::Metadata, 12),
    (ApiKey::ListOffsets, 8),
    (ApiKey::DescribeConfigs, 4),
    (ApiKey::ListGroups, 4),
    (ApiKey::FindCoordinator, 4),
    (ApiKey::DescribeGroups, 5),
    (ApiKey::OffsetFetch, 8),
    (ApiKey::Fetch, 11),
    (ApiKey::DescribeProducers, 0),
];

/// The sizes of a synthetic cluster: made by [`SyntheticCluster::builder`], started with
/// [`Self::start`].
#[derive(Debug, Clone)]
pub struct SyntheticClusterBuilder {
    brokers: u32,
    topics: u32,
    partitions_per_topic: u32,
    groups: u32,
    partitions_per_group: u32,
    members_per_group: u32,
    record_time_base_ms: i64,
    offsets_topic: bool,
    moving: bool,
}

impl Default for SyntheticClusterBuilder {
    /// The size: 20 brokers, 20,000 topics × 5 partitions, 10,000 groups × 20
    /// partitions, 2 members each.
    fn default() -> Self {
        Self {
            brokers: 20,
            topics: 20_000,
            partitions_per_topic: 5,
            groups: 10_000,
            partitions_per_group: 20,
            members_per_group: 2,
            record_time_base_ms: crate::now_ms() - 3_600_000,
            offsets_topic: false,
            moving: true,
        }
    }
}

impl SyntheticClusterBuilder {
    pub fn brokers(mut self, n: u32) -> Self {
        self.brokers = n.max(1);
        self
    }

    pub fn topics(mut self, n: u32) -> Self {
        self.topics = n;
        self
    }

    pub fn partitions_per_topic(mut self, n: u32) -> Self {
        self.partitions_per_topic = n.max(1);
        self
    }

    pub fn groups(mut self, n: u32) -> Self {
        self.groups = n;
        self
    }

    /// Partitions each group has committed offsets on (at most every partition).
    pub fn partitions_per_group(mut self, n: u32) -> Self {
        self.partitions_per_group = n;
        self
    }

    pub fn members_per_group(mut self, n: u32) -> Self {
        self.members_per_group = n.max(1);
        self
    }

    /// The time of offset 0 (the record at offset `o` is stamped `base + o * 1000`).
    pub fn record_time_base_ms(mut self, base: i64) -> Self {
        self.record_time_base_ms = base;
        self
    }

    /// Whether the cluster has `__consumer_offsets` with the groups' commits (off by default:
    /// the topic adds [`OFFSETS_TOPIC_PARTITIONS`] partitions to every scrape).
    pub fn offsets_topic(mut self, on: bool) -> Self {
        self.offsets_topic = on;
        self
    }

    /// Whether listings move the log ends and the active groups' commits (on by default);
    /// off, every number stays as at start.
    pub fn moving(mut self, on: bool) -> Self {
        self.moving = on;
        self
    }

    /// Binds one listener per broker on 127.0.0.1 and serves on the current tokio runtime
    /// (IO driver enabled) until the returned handle drops.
    pub async fn start(self) -> SyntheticCluster {
        let mut listeners = Vec::new();
        for _ in 0..self.brokers {
            listeners.push(
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("cannot bind a port on 127.0.0.1 for a synthetic broker"),
            );
        }
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let model = Arc::new(Model::new(self, ports.clone()));
        let counts = Counts::default();
        let accepts = listeners
            .into_iter()
            .enumerate()
            .map(|(i, listener)| {
                let broker = Broker {
                    id: i as u32 + 1,
                    model: Arc::clone(&model),
                    counts: counts.clone(),
                };
                tokio::spawn(broker.accept(listener))
            })
            .collect();
        SyntheticCluster {
            ports,
            counts,
            accepts,
            model,
        }
    }
}

/// A running synthetic cluster; its brokers stop accepting connections when it drops.
#[derive(Debug)]
pub struct SyntheticCluster {
    ports: Vec<u16>,
    counts: Counts,
    accepts: Vec<tokio::task::JoinHandle<()>>,
    model: Arc<Model>,
}

impl SyntheticCluster {
    pub fn builder() -> SyntheticClusterBuilder {
        SyntheticClusterBuilder::default()
    }

    /// `127.0.0.1:<port>` of broker 1, to bootstrap a client with.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    /// The port of each broker, by id - 1.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Requests of `api` all brokers received so far.
    pub fn requests(&self, api: ApiKey) -> usize {
        self.counts.get(Counted::Request(api))
    }

    /// Connections all brokers accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.get(Counted::Connection)
    }

    pub fn partitions(&self) -> u64 {
        self.model.partitions as u64
    }

    pub fn group_partitions(&self) -> u64 {
        u64::from(self.model.sizes.groups) * u64::from(self.model.group_span())
    }

    /// The name of topic `t`.
    pub fn topic_name(t: u32) -> String {
        format!("t-{t:05}")
    }

    /// The name of group `g`.
    pub fn group_name(g: u32) -> String {
        format!("g-{g:05}")
    }

    /// The log end offset of `topic`'s `partition` now (without listing it).
    pub fn latest(&self, topic: u32, partition: u32) -> i64 {
        self.model
            .latest(topic * self.model.sizes.partitions_per_topic + partition)
    }

    /// The offset `group` has committed on `topic`'s `partition` now, if it has.
    pub fn committed(&self, group: u32, topic: u32, partition: u32) -> Option<i64> {
        let k = topic * self.model.sizes.partitions_per_topic + partition;
        self.model
            .group_partitions(group)
            .any(|p| p == k)
            .then(|| self.model.committed(group, k))
    }

    /// The timestamp of the record at `offset` (of any partition).
    pub fn record_time_ms(&self, offset: i64) -> i64 {
        self.model.record_time(offset)
    }

    /// Starts or stops the offsets (and commits) moving with each listing.
    pub fn set_moving(&self, on: bool) {
        self.model.moving.store(on, Ordering::Relaxed);
    }

    /// Records in `__consumer_offsets`, over its partitions (0 without the topic).
    pub fn offsets_topic_records(&self) -> usize {
        self.model
            .offsets_log
            .iter()
            .map(|p| p.lock().unwrap().len())
            .sum()
    }
}

impl Drop for SyntheticCluster {
    fn drop(&mut self) {
        for accept in &self.accepts {
            accept.abort();
        }
    }
}

/// The cluster's state: its sizes, and how often each partition's end was listed.
#[derive(Debug)]
struct Model {
    sizes: SyntheticClusterBuilder,
    ports: Vec<u16>,
    partitions: u32,
    topic_names: Vec<StrBytes>,
    group_names: Vec<StrBytes>,
    /// ListOffsets (latest) answered per partition: the clock of its log end.
    listed: Vec<AtomicU32>,
    /// Each group's members' assignments, encoded.
    assignments: Vec<Vec<Bytes>>,
    /// The whole-cluster Metadata answer, encoded, per version.
    metadata: Mutex<HashMap<i16, Bytes>>,
    /// Whether listings move the offsets (the builder's `moving`, then [`SyntheticCluster::set_moving`]).
    moving: AtomicBool,
    /// `__consumer_offsets`, per partition (empty without the topic).
    offsets_log: Vec<Mutex<Vec<Commit>>>,
    /// The groups committed on each partition (empty without the topic).
    groups_on: Vec<Vec<u32>>,
}

/// A commit of `__consumer_offsets`: group `g` at `offset` on partition `k`, made at `time`.
#[derive(Debug, Clone, Copy)]
struct Commit {
    g: u32,
    k: u32,
    offset: i64,
    time_ms: i64,
}

impl Model {
    fn new(sizes: SyntheticClusterBuilder, ports: Vec<u16>) -> Self {
        let partitions = sizes.topics * sizes.partitions_per_topic;
        let sizes_moving = sizes.moving;
        let topic_names = (0..sizes.topics)
            .map(|t| StrBytes::from_string(SyntheticCluster::topic_name(t)))
            .collect();
        let group_names = (0..sizes.groups)
            .map(|g| StrBytes::from_string(SyntheticCluster::group_name(g)))
            .collect();
        let mut model = Self {
            sizes,
            ports,
            partitions,
            topic_names,
            group_names,
            listed: (0..partitions).map(|_| AtomicU32::new(0)).collect(),
            assignments: Vec::new(),
            metadata: Mutex::default(),
            moving: AtomicBool::new(sizes_moving),
            offsets_log: Vec::new(),
            groups_on: Vec::new(),
        };
        let assignments = (0..model.sizes.groups)
            .map(|g| model.member_assignments(g))
            .collect();
        model.assignments = assignments;
        if model.sizes.offsets_topic {
            model.fill_offsets_topic();
        }
        model
    }

    /// `__consumer_offsets` at start: every group's commit on each of its partitions.
    fn fill_offsets_topic(&mut self) {
        let now = crate::now_ms();
        let mut logs: Vec<Vec<Commit>> = vec![Vec::new(); OFFSETS_TOPIC_PARTITIONS as usize];
        let mut groups_on = vec![Vec::new(); self.partitions as usize];
        for g in 0..self.sizes.groups {
            let log = &mut logs[self.offsets_partition(g)];
            for k in self.group_partitions(g) {
                groups_on[k as usize].push(g);
                log.push(Commit {
                    g,
                    k,
                    offset: self.committed(g, k),
                    time_ms: now,
                });
            }
        }
        self.offsets_log = logs.into_iter().map(Mutex::new).collect();
        self.groups_on = groups_on;
    }

    /// The partition of `__consumer_offsets` holding group `g`'s commits.
    fn offsets_partition(&self, g: u32) -> usize {
        partition_for_group(
            self.group_names[g as usize].as_str(),
            OFFSETS_TOPIC_PARTITIONS,
        ) as usize
    }

    /// The commits the active groups on `k` make as its `listings`-th listing moves it on.
    fn commit_moves(&self, k: u32, listings: u32) {
        // Commits trail one listing: the first listing leaves them where they started.
        if self.groups_on.is_empty() || Self::rate(k) == 0 || listings < 2 {
            return;
        }
        let now = crate::now_ms();
        for &g in self.groups_on[k as usize]
            .iter()
            .filter(|g| g.is_multiple_of(2))
        {
            let trail = i64::from((g + k) % 3) * 10;
            let commit = Commit {
                g,
                k,
                offset: Self::latest_after(k, listings - 1) - trail,
                time_ms: now,
            };
            self.offsets_log[self.offsets_partition(g)]
                .lock()
                .unwrap()
                .push(commit);
        }
    }

    /// The records of `__consumer_offsets` partition `p` from `from` (at most `max`), as one
    /// record batch, and the partition's end.
    fn offsets_records(&self, p: usize, from: i64, max: usize) -> (Option<Bytes>, i64) {
        let log = self.offsets_log[p].lock().unwrap();
        let end = log.len() as i64;
        let Ok(start) = usize::try_from(from) else {
            return (None, end);
        };
        let commits: Vec<(i64, Commit)> = log
            .iter()
            .copied()
            .enumerate()
            .skip(start)
            .take(max)
            .map(|(o, c)| (o as i64, c))
            .collect();
        drop(log);
        if commits.is_empty() {
            return (None, end);
        }
        let mut batch = RecordBatchBuilder::new().one_batch();
        for (o, c) in commits {
            let (t, partition) = self.topic_partition(c.k);
            let key = OffsetCommitKey {
                group: self.group_names[c.g as usize].to_string(),
                topic: self.topic_names[t as usize].to_string(),
                partition,
            };
            let value = OffsetCommitValue {
                offset: c.offset,
                leader_epoch: None,
                metadata: String::new(),
                commit_timestamp_ms: c.time_ms,
                expire_timestamp_ms: None,
            };
            batch = batch.keyed_record(
                o,
                c.time_ms,
                encode_key(&key),
                Some(Bytes::from(encode_value(&value))),
            );
        }
        (Some(batch.build()), end)
    }

    fn group_span(&self) -> u32 {
        self.sizes.partitions_per_group.min(self.partitions)
    }

    /// The partitions `g` committed on, in order.
    fn group_partitions(&self, g: u32) -> impl Iterator<Item = u32> + use<> {
        let n = self.partitions.max(1) as u64;
        let span = self.group_span() as u64;
        let start = u64::from(g) * span % n;
        (0..span).map(move |i| ((start + i) % n) as u32)
    }

    fn leader(&self, k: u32) -> u32 {
        k % self.sizes.brokers + 1
    }

    fn coordinator(&self, g: u32) -> u32 {
        g % self.sizes.brokers + 1
    }

    /// The coordinator of any group name, as Kafka names one for every group id (a consumer
    /// looks its new group up before joining): a listed group's own, else one by the name's
    /// hash (Kafka hashes the id onto `__consumer_offsets`' partitions and answers their
    /// leader).
    fn coordinator_of_key(&self, key: &str) -> u32 {
        match self.group_index(key) {
            Some(g) => self.coordinator(g),
            None => {
                let hash = key
                    .bytes()
                    .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                hash % self.sizes.brokers + 1
            }
        }
    }

    fn rate(k: u32) -> i64 {
        i64::from(k % 4)
    }

    fn latest_after(k: u32, listings: u32) -> i64 {
        START_OFFSET + Self::rate(k) * i64::from(listings)
    }

    fn latest(&self, k: u32) -> i64 {
        Self::latest_after(k, self.listed[k as usize].load(Ordering::Relaxed))
    }

    /// The log end, moved on by this listing (and the commits that move with it).
    fn list_latest(&self, k: u32) -> i64 {
        if !self.moving.load(Ordering::Relaxed) {
            return self.latest(k);
        }
        let listings = self.listed[k as usize].fetch_add(1, Ordering::Relaxed) + 1;
        self.commit_moves(k, listings);
        Self::latest_after(k, listings)
    }

    fn committed(&self, g: u32, k: u32) -> i64 {
        let trail = i64::from((g + k) % 3) * 10;
        if g.is_multiple_of(2) {
            let listings = self.listed[k as usize].load(Ordering::Relaxed);
            Self::latest_after(k, listings.saturating_sub(1)) - trail
        } else {
            START_OFFSET - trail
        }
    }

    fn record_time(&self, offset: i64) -> i64 {
        self.sizes.record_time_base_ms + offset * 1000
    }

    /// Topic index and partition of a partition count `k`.
    fn topic_partition(&self, k: u32) -> (u32, i32) {
        let per = self.sizes.partitions_per_topic;
        (k / per, (k % per) as i32)
    }

    /// The partition count of `topic`'s `partition`, if the cluster has it.
    fn partition_index(&self, topic: &str, partition: i32) -> Option<u32> {
        let t = parse_index(topic, "t-").filter(|t| *t < self.sizes.topics)?;
        let p = u32::try_from(partition)
            .ok()
            .filter(|p| *p < self.sizes.partitions_per_topic)?;
        Some(t * self.sizes.partitions_per_topic + p)
    }

    fn group_index(&self, group: &str) -> Option<u32> {
        parse_index(group, "g-").filter(|g| *g < self.sizes.groups)
    }

    /// The group's partitions by topic, in order.
    fn group_topics(&self, g: u32) -> Vec<(u32, Vec<u32>)> {
        let mut topics: Vec<(u32, Vec<u32>)> = Vec::new();
        for k in self.group_partitions(g) {
            let (t, _) = self.topic_partition(k);
            match topics.last_mut() {
                Some((last, ks)) if *last == t => ks.push(k),
                _ => topics.push((t, vec![k])),
            }
        }
        topics
    }

    fn member_assignments(&self, g: u32) -> Vec<Bytes> {
        let members = self.sizes.members_per_group as usize;
        let mut per_member: Vec<Vec<(u32, Vec<i32>)>> = vec![Vec::new(); members];
        for (i, k) in self.group_partitions(g).enumerate() {
            let (t, p) = self.topic_partition(k);
            let topics = &mut per_member[i % members];
            match topics.last_mut() {
                Some((last, ps)) if *last == t => ps.push(p),
                _ => topics.push((t, vec![p])),
            }
        }
        per_member
            .into_iter()
            .map(|topics| {
                let mut a = ConsumerProtocolAssignment::default();
                a.assigned_partitions = topics
                    .into_iter()
                    .map(|(t, partitions)| {
                        let mut tp = AssignedPartitions::default();
                        tp.topic = TopicName(self.topic_names[t as usize].clone());
                        tp.partitions = partitions;
                        tp
                    })
                    .collect();
                let mut buf = BytesMut::new();
                buf.put_i16(1); // the consumer protocol's own version comes first
                a.encode(&mut buf, 1).unwrap();
                buf.freeze()
            })
            .collect()
    }

    fn host(&self) -> StrBytes {
        StrBytes::from_static_str("127.0.0.1")
    }

    fn port_of(&self, broker: u32) -> i32 {
        i32::from(self.ports[broker as usize - 1])
    }

    fn topic_id(t: u32) -> uuid::Uuid {
        uuid::Uuid::from_u64_pair(0x5157_4e54_4845_5449, u64::from(t) + 1)
    }

    fn metadata_topic(&self, t: u32) -> MetadataResponseTopic {
        let brokers = self.sizes.brokers;
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(self.topic_names[t as usize].clone()));
        topic.topic_id = Self::topic_id(t);
        topic.partitions = (0..self.sizes.partitions_per_topic)
            .map(|p| {
                let k = t * self.sizes.partitions_per_topic + p;
                let leader = self.leader(k);
                let mut replicas = vec![BrokerId(leader as i32)];
                if brokers > 1 {
                    replicas.push(BrokerId((leader % brokers + 1) as i32));
                }
                let mut mp = MetadataResponsePartition::default();
                mp.partition_index = p as i32;
                mp.leader_id = BrokerId(leader as i32);
                mp.isr_nodes = replicas.clone();
                mp.replica_nodes = replicas;
                mp
            })
            .collect();
        topic
    }

    /// `__consumer_offsets` in Metadata, when the cluster has it.
    fn metadata_offsets_topic(&self) -> Option<MetadataResponseTopic> {
        if self.offsets_log.is_empty() {
            return None;
        }
        let brokers = self.sizes.brokers;
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(StrBytes::from_static_str(OFFSETS_TOPIC)));
        topic.topic_id = Self::topic_id(u32::MAX - 1);
        topic.is_internal = true;
        topic.partitions = (0..OFFSETS_TOPIC_PARTITIONS)
            .map(|p| {
                let leader = p % brokers + 1;
                let mut replicas = vec![BrokerId(leader as i32)];
                if brokers > 1 {
                    replicas.push(BrokerId((leader % brokers + 1) as i32));
                }
                let mut mp = MetadataResponsePartition::default();
                mp.partition_index = p as i32;
                mp.leader_id = BrokerId(leader as i32);
                mp.isr_nodes = replicas.clone();
                mp.replica_nodes = replicas;
                mp
            })
            .collect();
        Some(topic)
    }

    /// The partition of `__consumer_offsets` led by `broker`, or the error to answer; `None`
    /// for another topic.
    fn offsets_topic_led(
        &self,
        topic: &str,
        partition: i32,
        broker: u32,
    ) -> Option<Result<usize, i16>> {
        if topic != OFFSETS_TOPIC {
            return None;
        }
        let p = u32::try_from(partition)
            .ok()
            .filter(|p| *p < OFFSETS_TOPIC_PARTITIONS && !self.offsets_log.is_empty());
        Some(match p {
            None => Err(UNKNOWN_TOPIC_OR_PARTITION),
            Some(p) if p % self.sizes.brokers + 1 == broker => Ok(p as usize),
            Some(_) => Err(NOT_LEADER_OR_FOLLOWER),
        })
    }

    fn metadata(&self, request: &MetadataRequest, version: i16, out: &mut BytesMut) {
        let all = request.topics.is_none();
        if all && let Some(cached) = self.metadata.lock().unwrap().get(&version) {
            out.put_slice(cached);
            return;
        }
        let mut r = MetadataResponse::default();
        r.brokers = (1..=self.sizes.brokers)
            .map(|id| {
                let mut b = MetadataResponseBroker::default();
                b.node_id = BrokerId(id as i32);
                b.host = self.host();
                b.port = self.port_of(id);
                b.rack = Some(StrBytes::from_string(format!("rack-{}", id % 3)));
                b
            })
            .collect();
        r.cluster_id = Some(StrBytes::from_static_str("synthetic-cluster"));
        r.controller_id = BrokerId(1);
        r.topics = match &request.topics {
            None => (0..self.sizes.topics)
                .map(|t| self.metadata_topic(t))
                .chain(self.metadata_offsets_topic())
                .collect(),
            Some(asked) => asked
                .iter()
                .map(|a| {
                    let name = a.name.as_ref().map(|n| n.0.as_str()).unwrap_or("");
                    if name == OFFSETS_TOPIC
                        && let Some(topic) = self.metadata_offsets_topic()
                    {
                        return topic;
                    }
                    match parse_index(name, "t-").filter(|t| *t < self.sizes.topics) {
                        Some(t) => self.metadata_topic(t),
                        None => {
                            let mut topic = MetadataResponseTopic::default();
                            topic.name = a.name.clone();
                            topic.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                            topic
                        }
                    }
                })
                .collect(),
        };
        let start = out.len();
        encode(r, version, out);
        if all {
            let encoded = Bytes::copy_from_slice(&out[start..]);
            self.metadata.lock().unwrap().insert(version, encoded);
        }
    }
}

/// `prefix` then a decimal index, as the cluster names its topics and groups.
fn parse_index(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.parse().ok()
}

/// One broker of the cluster: answers for the partitions it leads and the groups it
/// coordinates.
struct Broker {
    id: u32,
    model: Arc<Model>,
    counts: Counts,
}

impl Broker {
    async fn accept(self, listener: TcpListener) {
        let broker = Arc::new(self);
        while let Ok((stream, _)) = listener.accept().await {
            broker.counts.add(Counted::Connection);
            tokio::spawn(Arc::clone(&broker).serve(stream));
        }
    }

    async fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut out = BytesMut::new();
        while let Some(mut request) = read_request(&mut stream).await {
            self.counts.add(Counted::Request(request.key));
            out.clear();
            let version = request.header.request_api_version;
            let body = request.body.clone();
            let Some(wait) = self.answer(request.key, version, &mut request.body, &mut out) else {
                return;
            };
            // A Fetch of nothing new is answered when records arrive or its wait is over.
            let deadline = tokio::time::Instant::now() + wait;
            let mut waiting = !wait.is_zero();
            while waiting && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(FETCH_POLL).await;
                out.clear();
                let Some(wait) = self.answer(request.key, version, &mut body.clone(), &mut out)
                else {
                    return;
                };
                waiting = !wait.is_zero();
            }
            if !write_answer(&mut stream, &request, &out).await {
                return;
            }
        }
    }

    /// Encodes the answer into `out`, with how long to wait before sending it (a Fetch of
    /// nothing new waits its `max_wait_ms`); `None` (dropping the connection) for a request it
    /// cannot decode or an API it does not serve, as a broker would.
    fn answer(
        &self,
        key: ApiKey,
        version: i16,
        body: &mut Bytes,
        out: &mut BytesMut,
    ) -> Option<Duration> {
        let mut wait = Duration::ZERO;
        let model = &*self.model;
        match key {
            ApiKey::ApiVersions => api_versions(&SERVED, version, out),
            ApiKey::Metadata => {
                let Ok(req) = MetadataRequest::decode(body, version) else {
                    return None;
                };
                model.metadata(&req, version, out);
            }
            ApiKey::ListOffsets => {
                let Ok(req) = ListOffsetsRequest::decode(body, version) else {
                    return None;
                };
                encode(self.list_offsets(&req), version, out);
            }
            ApiKey::DescribeConfigs => {
                let Ok(req) = DescribeConfigsRequest::decode(body, version) else {
                    return None;
                };
                encode(describe_configs(&req), version, out);
            }
            ApiKey::ListGroups => {
                let mut r = ListGroupsResponse::default();
                r.groups = (0..model.sizes.groups)
                    .filter(|g| model.coordinator(*g) == self.id)
                    .map(|g| {
                        let mut l = ListedGroup::default();
                        l.group_id = GroupId(model.group_names[g as usize].clone());
                        l.protocol_type = StrBytes::from_static_str("consumer");
                        l.group_state = StrBytes::from_static_str("Stable");
                        l
                    })
                    .collect();
                encode(r, version, out);
            }
            ApiKey::FindCoordinator => {
                let Ok(req) = FindCoordinatorRequest::decode(body, version) else {
                    return None;
                };
                encode(self.find_coordinator(&req, version), version, out);
            }
            ApiKey::OffsetFetch => {
                let Ok(req) = OffsetFetchRequest::decode(body, version) else {
                    return None;
                };
                if version < 8 {
                    return None; // not advertised
                }
                encode(self.offset_fetch(&req), version, out);
            }
            ApiKey::DescribeGroups => {
                let Ok(req) = DescribeGroupsRequest::decode(body, version) else {
                    return None;
                };
                encode(self.describe_groups(&req), version, out);
            }
            ApiKey::Fetch => {
                let Ok(req) = FetchRequest::decode(body, version) else {
                    return None;
                };
                let (response, empty) = self.fetch(&req);
                if empty && req.max_wait_ms > 0 {
                    wait = Duration::from_millis(req.max_wait_ms.min(1_000) as u64);
                }
                encode(response, version, out);
            }
            ApiKey::DescribeProducers => {
                let Ok(req) = DescribeProducersRequest::decode(body, version) else {
                    return None;
                };
                encode(self.describe_producers(&req), version, out);
            }
            _ => return None,
        }
        Some(wait)
    }

    /// The partition count of a partition this broker leads, or the error to answer.
    fn led(&self, topic: &str, partition: i32) -> Result<u32, i16> {
        let k = self
            .model
            .partition_index(topic, partition)
            .ok_or(UNKNOWN_TOPIC_OR_PARTITION)?;
        if self.model.leader(k) == self.id {
            Ok(k)
        } else {
            Err(NOT_LEADER_OR_FOLLOWER)
        }
    }

    fn list_offsets(&self, req: &ListOffsetsRequest) -> ListOffsetsResponse {
        let model = &*self.model;
        let mut r = ListOffsetsResponse::default();
        r.topics = req
            .topics
            .iter()
            .map(|t| {
                let mut rt = ListOffsetsTopicResponse::default();
                rt.name = t.name.clone();
                rt.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut rp = ListOffsetsPartitionResponse::default();
                        rp.partition_index = p.partition_index;
                        let offsets_topic =
                            model.offsets_topic_led(t.name.0.as_str(), p.partition_index, self.id);
                        if let Some(led) = offsets_topic {
                            match led {
                                Ok(i) => {
                                    let end = model.offsets_log[i].lock().unwrap().len() as i64;
                                    rp.offset = if p.timestamp == -2 { 0 } else { end };
                                    rp.timestamp = -1;
                                }
                                Err(code) => {
                                    rp.error_code = code;
                                    rp.offset = -1;
                                }
                            }
                            return rp;
                        }
                        match self.led(t.name.0.as_str(), p.partition_index) {
                            Ok(k) => {
                                rp.offset = match p.timestamp {
                                    -2 => 0,
                                    -1 => self.model.list_latest(k),
                                    _ => self.model.latest(k),
                                };
                                rp.timestamp = -1;
                            }
                            Err(code) => {
                                rp.error_code = code;
                                rp.offset = -1;
                            }
                        }
                        rp
                    })
                    .collect();
                rt
            })
            .collect();
        r
    }

    fn find_coordinator(
        &self,
        req: &FindCoordinatorRequest,
        version: i16,
    ) -> FindCoordinatorResponse {
        let model = &*self.model;
        let mut r = FindCoordinatorResponse::default();
        if version < 4 {
            let id = model.coordinator_of_key(req.key.as_str());
            r.node_id = BrokerId(id as i32);
            r.host = model.host();
            r.port = model.port_of(id);
        }
        r.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let id = model.coordinator_of_key(key.as_str());
                let mut c = Coordinator::default();
                c.key = key.clone();
                c.node_id = BrokerId(id as i32);
                c.host = model.host();
                c.port = model.port_of(id);
                c
            })
            .collect();
        r
    }

    /// The group this broker coordinates, or the error to answer for it.
    fn coordinated(&self, group: &str) -> Result<u32, i16> {
        let g = self.model.group_index(group).ok_or(GROUP_ID_NOT_FOUND)?;
        if self.model.coordinator(g) == self.id {
            Ok(g)
        } else {
            Err(NOT_COORDINATOR)
        }
    }

    fn offset_fetch(&self, req: &OffsetFetchRequest) -> OffsetFetchResponse {
        let model = &*self.model;
        let mut r = OffsetFetchResponse::default();
        r.groups = req
            .groups
            .iter()
            .map(|group| {
                let mut rg = OffsetFetchResponseGroup::default();
                rg.group_id = group.group_id.clone();
                match self.coordinated(group.group_id.0.as_str()) {
                    // A group the cluster does not know has no commits (Kafka answers so).
                    Err(GROUP_ID_NOT_FOUND) => {}
                    Err(code) => rg.error_code = code,
                    Ok(g) => {
                        rg.topics = model
                            .group_topics(g)
                            .into_iter()
                            .map(|(t, ks)| {
                                let mut rt = OffsetFetchResponseTopics::default();
                                rt.name = TopicName(model.topic_names[t as usize].clone());
                                rt.partitions = ks
                                    .into_iter()
                                    .map(|k| {
                                        let mut rp = OffsetFetchResponsePartitions::default();
                                        rp.partition_index = model.topic_partition(k).1;
                                        rp.committed_offset = model.committed(g, k);
                                        rp.committed_leader_epoch = -1;
                                        rp
                                    })
                                    .collect();
                                rt
                            })
                            .collect();
                    }
                }
                rg
            })
            .collect();
        r
    }

    fn describe_groups(&self, req: &DescribeGroupsRequest) -> DescribeGroupsResponse {
        let model = &*self.model;
        let mut r = DescribeGroupsResponse::default();
        r.groups = req
            .groups
            .iter()
            .map(|group| {
                let mut d = DescribedGroup::default();
                d.group_id = group.clone();
                match self.coordinated(group.0.as_str()) {
                    Err(GROUP_ID_NOT_FOUND) => d.group_state = StrBytes::from_static_str("Dead"),
                    Err(code) => d.error_code = code,
                    Ok(g) => {
                        d.group_state = StrBytes::from_static_str("Stable");
                        d.protocol_type = StrBytes::from_static_str("consumer");
                        d.protocol_data = StrBytes::from_static_str("range");
                        d.members = model.assignments[g as usize]
                            .iter()
                            .enumerate()
                            .map(|(i, assignment)| {
                                let mut m = DescribedGroupMember::default();
                                m.member_id = StrBytes::from_string(format!("m-{i}"));
                                m.client_id = StrBytes::from_string(format!("c-{g}-{i}"));
                                m.client_host =
                                    StrBytes::from_string(format!("/10.0.{}.1", i % 256));
                                m.member_assignment = assignment.clone();
                                m
                            })
                            .collect();
                    }
                }
                d
            })
            .collect();
        r
    }

    /// The answer, and whether it holds no records.
    fn fetch(&self, req: &FetchRequest) -> (FetchResponse, bool) {
        let model = &*self.model;
        let mut empty = true;
        let mut r = FetchResponse::default();
        r.responses = req
            .topics
            .iter()
            .map(|t| {
                let mut rt = FetchableTopicResponse::default();
                rt.topic = t.topic.clone();
                rt.partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut pd = PartitionData::default();
                        pd.partition_index = p.partition;
                        if let Some(led) =
                            model.offsets_topic_led(t.topic.0.as_str(), p.partition, self.id)
                        {
                            match led {
                                Ok(i) => {
                                    let max = (p.partition_max_bytes.max(0) as usize / 64)
                                        .clamp(1, OFFSETS_FETCH_RECORDS);
                                    let (records, end) =
                                        model.offsets_records(i, p.fetch_offset, max);
                                    empty &= records.is_none();
                                    pd.records = records;
                                    pd.high_watermark = end;
                                    pd.last_stable_offset = end;
                                    pd.log_start_offset = 0;
                                }
                                Err(code) => {
                                    pd.error_code = code;
                                    pd.high_watermark = -1;
                                }
                            }
                            return pd;
                        }
                        match self.led(t.topic.0.as_str(), p.partition) {
                            Ok(k) => {
                                let end = model.latest(k);
                                pd.high_watermark = end;
                                pd.last_stable_offset = end;
                                pd.log_start_offset = 0;
                                if (0..end).contains(&p.fetch_offset) {
                                    let o = p.fetch_offset;
                                    let batch = RecordBatchBuilder::new().record(
                                        o,
                                        model.record_time(o),
                                        Bytes::from_static(b"{}"),
                                    );
                                    pd.records = Some(batch.build());
                                    empty = false;
                                }
                            }
                            Err(code) => {
                                pd.error_code = code;
                                pd.high_watermark = -1;
                            }
                        }
                        pd
                    })
                    .collect();
                rt
            })
            .collect();
        (r, empty)
    }

    fn describe_producers(&self, req: &DescribeProducersRequest) -> DescribeProducersResponse {
        let mut r = DescribeProducersResponse::default();
        r.topics = req
            .topics
            .iter()
            .map(|t| {
                let mut rt = TopicResponse::default();
                rt.name = t.name.clone();
                rt.partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        let mut rp = PartitionResponse::default();
                        rp.partition_index = *p;
                        let led = match self.model.offsets_topic_led(t.name.0.as_str(), *p, self.id)
                        {
                            Some(led) => led.map(|_| 0),
                            None => self.led(t.name.0.as_str(), *p),
                        };
                        if let Err(code) = led {
                            rp.error_code = code;
                        }
                        rp
                    })
                    .collect();
                rt
            })
            .collect();
        r
    }
}

/// The same configs for every topic asked for.
fn describe_configs(req: &DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut r = DescribeConfigsResponse::default();
    r.results = req
        .resources
        .iter()
        .map(|res| {
            let mut result = DescribeConfigsResult::default();
            result.resource_type = res.resource_type;
            result.resource_name = res.resource_name.clone();
            result.configs = [
                ("cleanup.policy", "delete"),
                ("retention.ms", "604800000"),
                ("retention.bytes", "-1"),
                ("min.insync.replicas", "1"),
            ]
            .iter()
            .map(|(k, v)| {
                let mut c = DescribeConfigsResourceResult::default();
                c.name = StrBytes::from_static_str(k);
                c.value = Some(StrBytes::from_static_str(v));
                c.config_source = DEFAULT_CONFIG_SOURCE;
                c
            })
            .collect();
            result
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(brokers: u32, topics: u32, per_topic: u32, groups: u32, per_group: u32) -> Model {
        let sizes = SyntheticCluster::builder()
            .brokers(brokers)
            .topics(topics)
            .partitions_per_topic(per_topic)
            .groups(groups)
            .partitions_per_group(per_group)
            .record_time_base_ms(0);
        Model::new(sizes, (1..=brokers as u16).collect())
    }

    #[test]
    fn group_partitions_wrap_and_assignments_cover_them() {
        let m = model(3, 4, 5, 3, 8);
        assert_eq!(
            m.group_partitions(2).collect::<Vec<_>>(),
            [16, 17, 18, 19, 0, 1, 2, 3]
        );
        assert_eq!(
            m.group_topics(2),
            [(3, vec![16, 17, 18, 19]), (0, vec![0, 1, 2, 3])]
        );
        assert_eq!(m.assignments[2].len(), 2);
    }

    #[test]
    fn offsets_move_per_listing_and_active_commits_trail_them() {
        let m = model(2, 1, 4, 2, 4);
        assert_eq!(m.list_latest(3), START_OFFSET + 3);
        assert_eq!(m.list_latest(3), START_OFFSET + 6);
        assert_eq!(m.latest(3), START_OFFSET + 6);
        assert_eq!(m.list_latest(0), START_OFFSET, "partition 0 is idle");
        // Group 0 (active) trails the previous listing by (0 + 3) % 3 * 10 = 0.
        assert_eq!(m.committed(0, 3), START_OFFSET + 3);
        // Group 1 (stalled) stays put, (1 + 3) % 3 * 10 = 10 behind the start.
        assert_eq!(m.committed(1, 3), START_OFFSET - 10);
    }

    #[test]
    fn names_parse_back_and_strangers_are_refused() {
        let m = model(2, 3, 2, 2, 2);
        assert_eq!(m.partition_index("t-00002", 1), Some(5));
        assert_eq!(m.partition_index("t-00003", 0), None);
        assert_eq!(m.partition_index("t-00001", 2), None);
        assert_eq!(m.partition_index("orders", 0), None);
        assert_eq!(m.group_index("g-00001"), Some(1));
        assert_eq!(m.group_index("g-00002"), None);
    }
}

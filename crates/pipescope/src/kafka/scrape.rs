//! One scrape of one cluster, batched per broker: Metadata; then at once ListOffsets (earliest
//! and latest, grouped by leader, on two connections), DescribeConfigs, DescribeProducers and
//! the group chain — ListGroups, FindCoordinator (batched on v4+), then together OffsetFetch
//! (many groups per request on v8+) and DescribeGroups; last, Fetch of the record at each
//! lagging committed offset. Each stage's timing is kept on the result.
//!
//! Nothing here fails the whole scrape except reaching no broker at all: every other failure is
//! kept on the item it concerns.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeGroupsRequest, DescribeProducersRequest, FetchRequest,
    FindCoordinatorRequest, GroupId, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use pipescope_core::kafka::{
    GroupCommit, OffsetRange, OffsetsSnapshot, PartitionOffsets, TopicPartition,
};
use pipescope_core::{Clock, EpochMillis};

use super::conn::{KafkaError, Lane, Pool, error_name};
use super::state::{
    AssignedTopic, BrokerState, ClusterState, CommittedOffset, GroupDescription, GroupState,
    MemberState, PartitionState, ProducerState, ScrapeStage, TopicConfig, TopicState,
};

/// Highest versions asked for. Past these the requests change meaning (Fetch v13 and OffsetFetch
/// v10 name topics by id), so they are capped where the code below was written for.
const METADATA_MAX: i16 = 12;
const LIST_OFFSETS_MAX: i16 = 8;
const DESCRIBE_CONFIGS_MAX: i16 = 4;
const LIST_GROUPS_MAX: i16 = 4;
const FIND_COORDINATOR_MAX: i16 = 6;
const DESCRIBE_GROUPS_MAX: i16 = 5;
const OFFSET_FETCH_MAX: i16 = 9;
/// Fetch v12+ is flexible, and tansu 0.6 puts a top-level tagged field there that v12 does
/// not have (node endpoints, v16+): v11 carries everything needed here.
const FETCH_MAX: i16 = 11;
const DESCRIBE_PRODUCERS_MAX: i16 = 0;

/// Topic configs are read for every topic once in this many scrapes (and for new topics at
/// once); in between, the previous scrape's are kept.
pub const CONFIG_REFRESH_SCRAPES: u64 = 6;
/// At most this many requests of one kind in flight when the broker needs one per group.
const PER_GROUP_CONCURRENCY: usize = 32;
/// Bytes asked for per partition when fetching the record at a committed offset: enough for
/// many batches; a larger batch is asked for again alone, and then comes whole (KIP-74).
const FETCH_PARTITION_BYTES: i32 = 16 * 1024;
const CONFIG_KEYS: [&str; 4] = [
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "min.insync.replicas",
];
const NO_PRODUCERS: &str = "broker does not report producers";
/// After a broker dropped a batched DescribeGroups, at most this many smaller requests (each
/// costs a reconnect) look for the groups it cannot describe; the rest keep the batch's error.
const DESCRIBE_RETRIES_MAX: usize = 32;
/// A request the broker refused by dropping the connection (a whole API, or DescribeGroups of
/// one group) is not sent again before this many scrapes have passed: its remembered error is
/// reported instead, so a broker that always refuses costs no reconnects, and a fixed broker
/// is noticed within this many scrapes.
pub const REFUSED_RETRY_SCRAPES: u64 = 10;

/// A value of one item, or why it is unknown.
type Item<T> = Result<T, String>;

/// Times the stages of one scrape (each kind of request, all brokers together).
struct Stages {
    started: Instant,
    done: StdMutex<Vec<ScrapeStage>>,
}

impl Stages {
    fn new(started: Instant) -> Self {
        Self {
            started,
            done: StdMutex::new(Vec::new()),
        }
    }

    async fn time<T>(&self, name: &'static str, stage: impl std::future::Future<Output = T>) -> T {
        let start = self.started.elapsed();
        let out = stage.await;
        let end = self.started.elapsed();
        self.done.lock().expect("stages lock").push(ScrapeStage {
            name,
            start_ms: start.as_secs_f64() * 1000.0,
            duration_ms: (end - start).as_secs_f64() * 1000.0,
        });
        out
    }

    fn into_vec(self) -> Vec<ScrapeStage> {
        self.done.into_inner().expect("stages lock")
    }
}

/// Scrapes one cluster; keeps the connections between scrapes, and which requests the
/// brokers refused.
#[derive(Debug)]
pub struct Scraper {
    name: String,
    bootstrap: Vec<String>,
    pool: Pool,
    timeout: Duration,
    /// Scrapes started so far: the clock of `refused`.
    scrapes: AtomicU64,
    refused: StdMutex<HashMap<Refusable, Refusal>>,
}

/// A request a broker may refuse by dropping the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Refusable {
    /// DescribeGroups of any group (tansu's sqlite engine).
    DescribeGroups { addr: String },
    /// DescribeGroups naming this group.
    DescribeGroup { addr: String, group: String },
    /// DescribeConfigs naming the configuration keys (tansu answers only "all keys").
    ConfigKeys { addr: String },
}

#[derive(Debug, Clone)]
struct Refusal {
    error: String,
    retry_at_scrape: u64,
}

fn text(s: &StrBytes) -> String {
    s.as_str().to_string()
}

fn name(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn code_error(code: i16, message: Option<&StrBytes>) -> Option<String> {
    (code != 0).then(|| match message {
        Some(m) if !m.is_empty() => format!("{} ({})", error_name(code), m.as_str()),
        _ => error_name(code),
    })
}

/// A broker of the metadata answer.
#[derive(Debug, Clone)]
struct Node {
    id: i32,
    addr: String,
}

/// A partition's earliest and latest offsets and its producers, as its leader answered.
type PartitionAnswers = (Item<i64>, Item<i64>, Item<Vec<ProducerState>>);

/// A partition's topic id and end offset.
type LogMark<'a> = (Option<&'a str>, i64);

/// Record times the previous scrape read, by topic, partition and offset; only for partitions
/// whose topic kept its id and whose log did not go back (a topic made anew reuses offsets).
struct KnownRecordTimes<'a> {
    times: HashMap<(&'a str, i32, i64), EpochMillis>,
}

impl<'a> KnownRecordTimes<'a> {
    fn new(previous: Option<&'a ClusterState>, topics: &[TopicState]) -> Self {
        let mut times = HashMap::new();
        let Some(previous) = previous.filter(|p| p.snapshot.is_some()) else {
            return Self { times };
        };
        // This scrape's topic id and end offset of each partition whose end offset is known.
        let now: HashMap<(&str, i32), LogMark> = topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().filter_map(|p| {
                    let latest = *p.latest.as_ref().ok()?;
                    Some(((t.name.as_str(), p.partition), (t.id.as_deref(), latest)))
                })
            })
            .collect();
        let mut same_log: HashMap<(&str, i32), bool> = HashMap::new();
        for t in &previous.topics {
            for p in &t.partitions {
                let key = (t.name.as_str(), p.partition);
                let kept = match (now.get(&key), &p.latest) {
                    (Some((id, latest)), Ok(before)) => *id == t.id.as_deref() && latest >= before,
                    _ => false,
                };
                same_log.insert(key, kept);
            }
        }
        for group in &previous.groups {
            for c in group.offsets.iter().flatten() {
                let key = (c.topic.as_str(), c.partition);
                if let (Some(time), Some(true)) = (c.record_time_ms, same_log.get(&key)) {
                    times.insert((c.topic.as_str(), c.partition, c.committed), time);
                }
            }
        }
        Self { times }
    }

    fn get(&self, topic: &str, partition: i32, offset: i64) -> Option<EpochMillis> {
        self.times.get(&(topic, partition, offset)).copied()
    }
}

/// What the group chain of a scrape found.
struct GroupChain {
    groups: Vec<GroupState>,
    group_list_errors: Vec<String>,
    commits: HashMap<String, Item<Vec<CommittedOffset>>>,
    descriptions: HashMap<String, Item<GroupDescription>>,
}

impl Scraper {
    pub fn new(name: impl Into<String>, bootstrap: Vec<String>, pool: Pool) -> Self {
        let timeout = pool.options().timeout;
        Self {
            name: name.into(),
            bootstrap,
            pool,
            timeout,
            scrapes: AtomicU64::new(0),
            refused: StdMutex::new(HashMap::new()),
        }
    }

    /// The remembered error of a refused request, unless it is due to be tried again.
    fn refusal(&self, what: &Refusable, scrape: u64) -> Option<String> {
        let refused = self.refused.lock().expect("refused lock");
        let r = refused.get(what)?;
        (scrape < r.retry_at_scrape).then(|| r.error.clone())
    }

    fn was_refused(&self, what: &Refusable) -> bool {
        self.refused
            .lock()
            .expect("refused lock")
            .contains_key(what)
    }

    fn refuse(&self, what: Refusable, scrape: u64, error: String) {
        self.refused.lock().expect("refused lock").insert(
            what,
            Refusal {
                error,
                retry_at_scrape: scrape + REFUSED_RETRY_SCRAPES,
            },
        );
    }

    fn accept(&self, what: &Refusable) {
        self.refused.lock().expect("refused lock").remove(what);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One full scrape. `previous` is kept (marked stale) when no broker answers.
    pub async fn scrape(&self, clock: &dyn Clock, previous: Option<&ClusterState>) -> ClusterState {
        let started = Instant::now();
        let scrape = self.scrapes.fetch_add(1, Ordering::Relaxed);
        let scraped_at_ms = clock.now_millis();
        let stages = Stages::new(started);
        let (metadata, errors) = stages.time("Metadata", self.metadata(previous)).await;
        let Some(metadata) = metadata else {
            let error = format!(
                "cluster {}: no broker answered Metadata: {}",
                self.name,
                errors.join("; ")
            );
            return self.unreachable(previous, scraped_at_ms, started, error, &errors);
        };
        let mut state = self
            .scrape_with_metadata(clock, scrape, &stages, previous, metadata)
            .await;
        state.stages = stages.into_vec();
        state.scraped_at_ms = scraped_at_ms;
        state.data_time_ms = scraped_at_ms;
        state.scrape_duration_ms = started.elapsed().as_millis() as u64;
        state
    }

    fn unreachable(
        &self,
        previous: Option<&ClusterState>,
        scraped_at_ms: EpochMillis,
        started: Instant,
        error: String,
        errors: &[String],
    ) -> ClusterState {
        let mut state = match previous {
            Some(previous) => previous.clone(),
            None => ClusterState {
                name: self.name.clone(),
                scraped_at_ms,
                scrape_duration_ms: 0,
                data_time_ms: 0,
                error: None,
                cluster_id: None,
                controller_id: None,
                brokers: Vec::new(),
                topics: Vec::new(),
                groups: Vec::new(),
                group_list_errors: Vec::new(),
                stages: Vec::new(),
                snapshot: None,
                view: None,
            },
        };
        let reason = errors.first().cloned().unwrap_or_else(|| error.clone());
        for broker in &mut state.brokers {
            broker.up = false;
            broker.error = Some(reason.clone());
        }
        state.scraped_at_ms = scraped_at_ms;
        state.scrape_duration_ms = started.elapsed().as_millis() as u64;
        state.error = Some(error);
        state.snapshot = None;
        state
    }

    /// Metadata from the first broker that answers: the known brokers first, then bootstrap.
    async fn metadata(
        &self,
        previous: Option<&ClusterState>,
    ) -> (Option<MetadataResponse>, Vec<String>) {
        let mut candidates: Vec<String> = previous
            .map(|p| {
                p.brokers
                    .iter()
                    .map(|b| format!("{}:{}", b.host, b.port))
                    .collect()
            })
            .unwrap_or_default();
        for addr in &self.bootstrap {
            if !candidates.contains(addr) {
                candidates.push(addr.clone());
            }
        }
        let mut request = MetadataRequest::default();
        request.topics = None;
        request.allow_auto_topic_creation = false;
        let mut errors = Vec::new();
        for addr in candidates {
            match self.pool.request(&addr, METADATA_MAX, &request).await {
                Ok(response) => return (Some(response), errors),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (None, errors)
    }

    async fn scrape_with_metadata(
        &self,
        clock: &dyn Clock,
        scrape: u64,
        stages: &Stages,
        previous: Option<&ClusterState>,
        metadata: MetadataResponse,
    ) -> ClusterState {
        let nodes: Vec<Node> = metadata
            .brokers
            .iter()
            .map(|b| Node {
                id: b.node_id.0,
                addr: format!("{}:{}", b.host.as_str(), b.port),
            })
            .collect();
        let addr_of: HashMap<i32, String> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();

        // Topics and partitions from Metadata; offsets and producers are filled in below.
        let mut topics: Vec<TopicState> = metadata
            .topics
            .iter()
            .filter_map(|t| {
                let name = text(t.name.as_ref()?);
                let mut partitions: Vec<PartitionState> = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let leader = (p.leader_id.0 >= 0).then_some(p.leader_id.0);
                        PartitionState {
                            partition: p.partition_index,
                            leader,
                            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                            offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
                            offline: leader.is_none(),
                            under_replicated: p.isr_nodes.len() < p.replica_nodes.len(),
                            error: code_error(p.error_code, None),
                            earliest: Err("not read".to_string()),
                            latest: Err("not read".to_string()),
                            producers: Err("not read".to_string()),
                        }
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some(TopicState {
                    name,
                    id: (!t.topic_id.is_nil()).then(|| t.topic_id.to_string()),
                    internal: t.is_internal,
                    error: code_error(t.error_code, None),
                    config: Err("not read".to_string()),
                    partitions,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));

        // Partitions by leader; a partition without a reachable leader gets its reason now.
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for topic in &mut topics {
            for p in &mut topic.partitions {
                match p.leader {
                    Some(leader) if addr_of.contains_key(&leader) => by_leader
                        .entry(leader)
                        .or_default()
                        .push((topic.name.clone(), p.partition)),
                    Some(leader) => {
                        let reason = format!("leader {leader} is not in the broker list");
                        p.earliest = Err(reason.clone());
                        p.latest = Err(reason.clone());
                        p.producers = Err(reason);
                    }
                    None => {
                        let reason = "partition has no leader (offline)".to_string();
                        p.earliest = Err(reason.clone());
                        p.latest = Err(reason.clone());
                        p.producers = Err(reason);
                    }
                }
            }
        }

        // Topic configs change rarely: the ones the previous scrape read are kept (same topic id)
        // and all are read again every few scrapes; new topics are read at once.
        let mut known_configs: HashMap<&str, TopicConfig> = HashMap::new();
        if let Some(previous) = previous.filter(|_| !scrape.is_multiple_of(CONFIG_REFRESH_SCRAPES))
        {
            let ids: HashMap<&str, Option<&str>> = topics
                .iter()
                .map(|t| (t.name.as_str(), t.id.as_deref()))
                .collect();
            for t in &previous.topics {
                if let (Ok(config), Some(id)) = (&t.config, ids.get(t.name.as_str()))
                    && *id == t.id.as_deref()
                {
                    known_configs.insert(t.name.as_str(), config.clone());
                }
            }
        }
        let topic_names: Vec<String> = topics
            .iter()
            .filter(|t| !known_configs.contains_key(t.name.as_str()))
            .map(|t| t.name.clone())
            .collect();
        let config_broker = metadata.controller_id.0;
        let config_addr = addr_of
            .get(&config_broker)
            .or_else(|| nodes.first().map(|n| &n.addr))
            .cloned();

        // Everything that needs only the metadata at once: the group chain (ListGroups,
        // FindCoordinator, then OffsetFetch and DescribeGroups) runs beside the offsets,
        // configs and producers. Requests a broker may refuse by dropping the connection go on
        // lanes of their own, so they cannot fail the others in flight.
        let (pings, offsets, configs, producers, group_chain) = futures::join!(
            stages.time(
                "connect",
                join_all(
                    nodes
                        .iter()
                        .map(|n| async move { (n.id, self.pool.get(&n.addr).await.map(|_| ())) })
                )
            ),
            stages.time("ListOffsets", async {
                let result = join_all(
                    by_leader
                        .iter()
                        .map(|(leader, parts)| self.list_offsets(&addr_of[leader], parts)),
                )
                .await;
                (result, clock.now_millis())
            }),
            stages.time(
                "DescribeConfigs",
                self.describe_configs(scrape, config_addr.as_deref(), &topic_names)
            ),
            stages.time(
                "DescribeProducers",
                join_all(
                    by_leader
                        .iter()
                        .map(|(leader, parts)| self.describe_producers(&addr_of[leader], parts))
                )
            ),
            self.group_chain(scrape, stages, &nodes, &addr_of, config_addr.as_deref()),
        );
        let GroupChain {
            mut groups,
            group_list_errors,
            mut commits,
            mut descriptions,
        } = group_chain;

        let brokers: Vec<BrokerState> = metadata
            .brokers
            .iter()
            .map(|b| {
                let ping = pings.iter().find(|(id, _)| *id == b.node_id.0);
                let error = match ping {
                    Some((_, Err(e))) => Some(e.to_string()),
                    _ => None,
                };
                BrokerState {
                    id: b.node_id.0,
                    host: text(&b.host),
                    port: b.port,
                    rack: b.rack.as_ref().map(text),
                    up: error.is_none(),
                    error,
                }
            })
            .collect();

        // The answers per leader are in the order of its partitions in `by_leader`.
        let (offsets, offsets_time_ms) = offsets;
        let mut answered: HashMap<(&str, i32), PartitionAnswers> = HashMap::new();
        for (((_, parts), (earliest, latest)), producers) in
            by_leader.iter().zip(offsets).zip(producers)
        {
            for ((((topic, partition), earliest), latest), producers) in
                parts.iter().zip(earliest).zip(latest).zip(producers)
            {
                answered.insert((topic.as_str(), *partition), (earliest, latest, producers));
            }
        }
        let (configs, config_error) = match configs {
            Ok(map) => (map, None),
            Err(e) => (HashMap::new(), Some(e)),
        };
        for topic in &mut topics {
            topic.config = match known_configs.remove(topic.name.as_str()) {
                Some(known) => Ok(known),
                None => match (&config_error, configs.get(&topic.name)) {
                    (Some(e), _) => Err(e.clone()),
                    (None, Some(result)) => result.clone(),
                    (None, None) => Err("the broker did not describe this topic".to_string()),
                },
            };
            for p in &mut topic.partitions {
                if let Some((earliest, latest, producers)) =
                    answered.remove(&(topic.name.as_str(), p.partition))
                {
                    p.earliest = earliest;
                    p.latest = latest;
                    p.producers = producers;
                }
            }
        }

        // Timestamps of the records at lagging committed offsets, per leader. The record at an
        // offset keeps its timestamp, so one the previous scrape read is not fetched again
        // (a stalled group's commit stays put), unless its topic was made anew since.
        let known = KnownRecordTimes::new(previous, &topics);
        let partitions: HashMap<(&str, i32), &PartitionState> = topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.as_str(), p.partition), p))
            })
            .collect();
        let mut wanted: BTreeMap<i32, BTreeMap<(String, i32), BTreeSet<i64>>> = BTreeMap::new();
        for offsets in commits.values_mut().flatten() {
            for c in offsets.iter_mut() {
                let Some(p) = partitions.get(&(c.topic.as_str(), c.partition)) else {
                    c.record_time_error =
                        Some("not fetched: the partition is not in the metadata".to_string());
                    continue;
                };
                let (earliest, latest) = match (&p.earliest, &p.latest) {
                    (Ok(earliest), Ok(latest)) => (*earliest, *latest),
                    (Err(e), _) | (_, Err(e)) => {
                        c.record_time_error = Some(format!(
                            "not fetched: the partition's offsets are unknown this scrape ({e})"
                        ));
                        continue;
                    }
                };
                if c.committed >= latest {
                    continue; // not lagging
                }
                if c.committed < earliest {
                    c.record_time_error = Some(format!(
                        "the record at offset {} is gone (the log starts at {earliest})",
                        c.committed
                    ));
                    continue;
                }
                if let Some(time) = known.get(&c.topic, c.partition, c.committed) {
                    c.record_time_ms = Some(time);
                    continue;
                }
                if let Some(leader) = p.leader {
                    wanted
                        .entry(leader)
                        .or_default()
                        .entry((c.topic.clone(), c.partition))
                        .or_default()
                        .insert(c.committed);
                }
            }
        }
        drop(partitions);
        let mut times: HashMap<String, HashMap<(i32, i64), Item<EpochMillis>>> = HashMap::new();
        let fetched = stages
            .time(
                "Fetch",
                join_all(
                    wanted
                        .iter()
                        .filter_map(|(leader, parts)| Some((addr_of.get(leader)?, parts)))
                        .map(|(addr, parts)| self.record_times(addr, parts)),
                ),
            )
            .await;
        for ((topic, partition, offset), time) in fetched.into_iter().flatten() {
            times
                .entry(topic)
                .or_default()
                .insert((partition, offset), time);
        }
        for offsets in commits.values_mut().flatten() {
            for c in offsets.iter_mut() {
                let time = times
                    .get(c.topic.as_str())
                    .and_then(|t| t.get(&(c.partition, c.committed)));
                match time {
                    Some(Ok(t)) => c.record_time_ms = Some(*t),
                    Some(Err(e)) => c.record_time_error = Some(e.clone()),
                    None => {}
                }
            }
        }

        for group in &mut groups {
            if let Some(d) = descriptions.remove(&group.name) {
                group.description = d;
            } else if let Err(e) = &group.coordinator {
                group.description = Err(e.clone());
            }
            match commits.remove(&group.name) {
                Some(c) => group.offsets = c,
                None => {
                    if let Err(e) = &group.coordinator {
                        group.offsets = Err(e.clone());
                    }
                }
            }
        }

        let snapshot = build_snapshot(offsets_time_ms, &topics, &groups);
        ClusterState {
            name: self.name.clone(),
            scraped_at_ms: 0,
            scrape_duration_ms: 0,
            data_time_ms: 0,
            error: None,
            cluster_id: metadata.cluster_id.as_ref().map(text),
            controller_id: (metadata.controller_id.0 >= 0).then_some(metadata.controller_id.0),
            brokers,
            topics,
            groups,
            group_list_errors,
            stages: Vec::new(),
            snapshot: Some(snapshot),
            // Filled by the watcher's analyzer.
            view: None,
        }
    }

    /// The groups every broker lists, their coordinators, then together their committed offsets
    /// and their descriptions.
    async fn group_chain(
        &self,
        scrape: u64,
        stages: &Stages,
        nodes: &[Node],
        addr_of: &HashMap<i32, String>,
        config_addr: Option<&str>,
    ) -> GroupChain {
        let listed = stages
            .time(
                "ListGroups",
                join_all(nodes.iter().map(|n| self.list_groups(n))),
            )
            .await;
        // The union of what every broker listed.
        let mut group_list_errors = Vec::new();
        let mut listed_groups: BTreeMap<String, (i32, String)> = BTreeMap::new();
        for result in listed {
            match result {
                Ok(groups) => listed_groups.extend(groups),
                Err(e) => group_list_errors.push(e),
            }
        }
        let group_names: Vec<String> = listed_groups.keys().cloned().collect();
        let coordinators = stages
            .time(
                "FindCoordinator",
                self.find_coordinators(config_addr, &group_names),
            )
            .await;
        let groups: Vec<GroupState> = listed_groups
            .iter()
            .map(|(group, (listed_by, protocol_type))| {
                // ListGroups on a broker lists the groups it coordinates: the fallback answer.
                let coordinator = match coordinators.get(group) {
                    Some(Ok(id)) if addr_of.contains_key(id) => Ok(*id),
                    _ if addr_of.contains_key(listed_by) => Ok(*listed_by),
                    Some(Ok(id)) => Err(format!("coordinator {id} is not in the broker list")),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err("no coordinator found".to_string()),
                };
                GroupState {
                    name: group.clone(),
                    coordinator,
                    protocol_type: protocol_type.clone(),
                    description: Err("not described".to_string()),
                    offsets: Err("not read".to_string()),
                }
            })
            .collect();
        let mut by_coordinator: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for group in &groups {
            if let Ok(id) = group.coordinator {
                by_coordinator
                    .entry(id)
                    .or_default()
                    .push(group.name.clone());
            }
        }
        let (fetched, described) = futures::join!(
            stages.time(
                "OffsetFetch",
                join_all(
                    by_coordinator
                        .iter()
                        .map(|(id, names)| self.offset_fetch(&addr_of[id], names)),
                )
            ),
            stages.time(
                "DescribeGroups",
                join_all(
                    by_coordinator
                        .iter()
                        .map(|(id, names)| self.describe_groups(scrape, &addr_of[id], names)),
                )
            ),
        );
        GroupChain {
            groups,
            group_list_errors,
            commits: fetched.into_iter().flatten().collect(),
            descriptions: described.into_iter().flatten().collect(),
        }
    }

    /// Earliest and latest offsets of the partitions one broker leads: two requests (a
    /// partition may appear once per request), sent together.
    async fn list_offsets(
        &self,
        addr: &str,
        parts: &[(String, i32)],
    ) -> (Vec<Item<i64>>, Vec<Item<i64>>) {
        let (earliest, latest) = futures::join!(
            self.list_offsets_at(addr, Lane::Side, parts, -2),
            self.list_offsets_at(addr, Lane::Main, parts, -1)
        );
        (earliest, latest)
    }

    async fn list_offsets_at(
        &self,
        addr: &str,
        lane: Lane,
        parts: &[(String, i32)],
        timestamp: i64,
    ) -> Vec<Item<i64>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in parts {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let mut request = ListOffsetsRequest::default();
        request.replica_id = (-1).into();
        request.timeout_ms = self.timeout.as_millis() as i32;
        request.topics = by_topic
            .iter()
            .map(|(topic, partitions)| {
                let mut t = ListOffsetsTopic::default();
                t.name = TopicName(name(topic));
                t.partitions = partitions
                    .iter()
                    .map(|p| {
                        let mut lp = ListOffsetsPartition::default();
                        lp.partition_index = *p;
                        lp.current_leader_epoch = -1;
                        lp.timestamp = timestamp;
                        lp
                    })
                    .collect();
                t
            })
            .collect();
        let fail_all = |reason: String| vec![Err(reason); parts.len()];
        match self
            .pool
            .request_on(addr, lane, LIST_OFFSETS_MAX, &request)
            .await
        {
            Err(e) => fail_all(e.to_string()),
            Ok(response) => {
                let mut out: HashMap<(String, i32), Result<i64, String>> = HashMap::new();
                for t in &response.topics {
                    for p in &t.partitions {
                        let value = match code_error(p.error_code, None) {
                            Some(e) => Err(format!("ListOffsets: {e}")),
                            None => Ok(p.offset),
                        };
                        out.insert((text(&t.name.0), p.partition_index), value);
                    }
                }
                parts
                    .iter()
                    .map(|k| {
                        out.remove(k).unwrap_or_else(|| {
                            Err(
                                "the broker left this partition out of its ListOffsets answer"
                                    .to_string(),
                            )
                        })
                    })
                    .collect()
            }
        }
    }

    /// The monitoring-relevant configs of every topic, in one request.
    async fn describe_configs(
        &self,
        scrape: u64,
        addr: Option<&str>,
        topics: &[String],
    ) -> Result<HashMap<String, Result<TopicConfig, String>>, String> {
        if topics.is_empty() {
            return Ok(HashMap::new());
        }
        let addr = addr.ok_or("no broker to ask for topic configs")?;
        let request = |keys: Option<Vec<StrBytes>>| {
            let mut request = DescribeConfigsRequest::default();
            request.resources = topics
                .iter()
                .map(|t| {
                    let mut r = DescribeConfigsResource::default();
                    r.resource_type = 2; // TOPIC
                    r.resource_name = name(t);
                    r.configuration_keys = keys.clone();
                    r
                })
                .collect();
            request
        };
        // tansu 0.6 drops the connection when asked for named keys; all keys it answers.
        // Once refused, all keys are asked for (no reconnect per scrape) until the retry.
        let refusable = Refusable::ConfigKeys {
            addr: addr.to_string(),
        };
        let all_keys = || async {
            self.pool
                .request_on(addr, Lane::Configs, DESCRIBE_CONFIGS_MAX, &request(None))
                .await
        };
        let response = if self.refusal(&refusable, scrape).is_some() {
            all_keys().await.map_err(|e| e.to_string())?
        } else {
            let keys = Some(CONFIG_KEYS.iter().map(|k| name(k)).collect());
            match self
                .pool
                .request_on(addr, Lane::Configs, DESCRIBE_CONFIGS_MAX, &request(keys))
                .await
            {
                Err(e @ KafkaError::Disconnected { .. }) => {
                    self.refuse(refusable, scrape, e.to_string());
                    all_keys().await.map_err(|e| e.to_string())?
                }
                Ok(response) => {
                    self.accept(&refusable);
                    response
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        Ok(response
            .results
            .iter()
            .map(|r| {
                let value = match code_error(r.error_code, r.error_message.as_ref()) {
                    Some(e) => Err(format!("DescribeConfigs: {e}")),
                    None => {
                        let get = |key: &str| {
                            r.configs
                                .iter()
                                .find(|c| c.name.as_str() == key)
                                .and_then(|c| c.value.as_ref().map(text))
                        };
                        Ok(TopicConfig {
                            cleanup_policy: get("cleanup.policy"),
                            retention_ms: get("retention.ms").and_then(|v| v.parse().ok()),
                            retention_bytes: get("retention.bytes").and_then(|v| v.parse().ok()),
                            min_insync_replicas: get("min.insync.replicas")
                                .and_then(|v| v.parse().ok()),
                        })
                    }
                };
                (text(&r.resource_name), value)
            })
            .collect())
    }

    /// The groups one broker coordinates: name → (that broker, protocol type).
    async fn list_groups(&self, node: &Node) -> Result<Vec<(String, (i32, String))>, String> {
        let response = self
            .pool
            .request_on(
                &node.addr,
                Lane::Groups,
                LIST_GROUPS_MAX,
                &ListGroupsRequest::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(e) = code_error(response.error_code, None) {
            return Err(format!("ListGroups on broker {}: {e}", node.id));
        }
        Ok(response
            .groups
            .iter()
            .map(|g| (text(&g.group_id.0), (node.id, text(&g.protocol_type))))
            .collect())
    }

    /// Group → coordinator id. One batched request on v4+, else one per group (in parallel).
    async fn find_coordinators(
        &self,
        addr: Option<&str>,
        groups: &[String],
    ) -> HashMap<String, Result<i32, String>> {
        let fail_all = |reason: String| {
            groups
                .iter()
                .map(|g| (g.clone(), Err(reason.clone())))
                .collect()
        };
        if groups.is_empty() {
            return HashMap::new();
        }
        let Some(addr) = addr else {
            return fail_all("no broker to ask for coordinators".to_string());
        };
        let connection = match self.pool.get_on(addr, Lane::Groups).await {
            Ok(c) => c,
            Err(e) => return fail_all(e.to_string()),
        };
        let version =
            match connection.require_version::<FindCoordinatorRequest>(FIND_COORDINATOR_MAX) {
                Ok(v) => v,
                Err(e) => return fail_all(e.to_string()),
            };
        if version >= 4 {
            let mut request = FindCoordinatorRequest::default();
            request.key_type = 0;
            request.coordinator_keys = groups.iter().map(|g| name(g)).collect();
            return match connection.send(&request, version).await {
                Err(e) => fail_all(e.to_string()),
                Ok(response) => {
                    let mut out: HashMap<String, Result<i32, String>> = response
                        .coordinators
                        .iter()
                        .map(|c| {
                            let v = match code_error(c.error_code, c.error_message.as_ref()) {
                                Some(e) => Err(format!("FindCoordinator: {e}")),
                                None => Ok(c.node_id.0),
                            };
                            (text(&c.key), v)
                        })
                        .collect();
                    for g in groups {
                        out.entry(g.clone()).or_insert_with(|| {
                            Err("the broker left this group out of FindCoordinator".to_string())
                        });
                    }
                    out
                }
            };
        }
        futures::stream::iter(groups.iter().cloned())
            .map(|group| {
                let connection = connection.clone();
                async move {
                    let mut request = FindCoordinatorRequest::default();
                    request.key = name(&group);
                    let v = match connection.send(&request, version).await {
                        Err(e) => Err(e.to_string()),
                        Ok(r) => match code_error(r.error_code, r.error_message.as_ref()) {
                            Some(e) => Err(format!("FindCoordinator: {e}")),
                            None => Ok(r.node_id.0),
                        },
                    };
                    (group, v)
                }
            })
            .buffer_unordered(PER_GROUP_CONCURRENCY)
            .collect()
            .await
    }

    /// Committed offsets of the groups one broker coordinates: one request on v8+, else one
    /// per group (in parallel).
    async fn offset_fetch(
        &self,
        addr: &str,
        groups: &[String],
    ) -> Vec<(String, Result<Vec<CommittedOffset>, String>)> {
        let fail_all = |reason: String| {
            groups
                .iter()
                .map(|g| (g.clone(), Err(reason.clone())))
                .collect()
        };
        let connection = match self.pool.get_on(addr, Lane::Groups).await {
            Ok(c) => c,
            Err(e) => return fail_all(e.to_string()),
        };
        // v1 cannot ask for "all topics"; v2+ can (topics = null).
        let version = match connection.version::<OffsetFetchRequest>(OFFSET_FETCH_MAX) {
            Some(v) if v >= 2 => v,
            _ => {
                return fail_all(
                    KafkaError::Unsupported {
                        api: "OffsetFetch v2+".to_string(),
                        addr: addr.to_string(),
                    }
                    .to_string(),
                );
            }
        };
        if version >= 8 {
            let mut request = OffsetFetchRequest::default();
            request.groups = groups
                .iter()
                .map(|g| {
                    let mut r = OffsetFetchRequestGroup::default();
                    r.group_id = GroupId(name(g));
                    r.topics = None;
                    r
                })
                .collect();
            return match connection.send(&request, version).await {
                Err(e) => fail_all(e.to_string()),
                Ok(response) => {
                    let mut out: HashMap<String, Result<Vec<CommittedOffset>, String>> = response
                        .groups
                        .iter()
                        .map(|g| {
                            let v = match code_error(g.error_code, None) {
                                Some(e) => Err(format!("OffsetFetch: {e}")),
                                None => Ok(g
                                    .topics
                                    .iter()
                                    .flat_map(|t| {
                                        t.partitions.iter().filter_map(move |p| {
                                            committed(
                                                &t.name.0,
                                                p.partition_index,
                                                p.committed_offset,
                                                p.error_code,
                                                p.metadata.as_ref(),
                                            )
                                        })
                                    })
                                    .collect()),
                            };
                            (text(&g.group_id.0), v)
                        })
                        .collect();
                    groups
                        .iter()
                        .map(|g| {
                            let v = out.remove(g).unwrap_or_else(|| {
                                Err("the broker left this group out of OffsetFetch".to_string())
                            });
                            (g.clone(), v)
                        })
                        .collect()
                }
            };
        }
        futures::stream::iter(groups.iter().cloned())
            .map(|group| {
                let connection = connection.clone();
                async move {
                    let mut request = OffsetFetchRequest::default();
                    request.group_id = GroupId(name(&group));
                    request.topics = None;
                    let v = match connection.send(&request, version).await {
                        Err(e) => Err(e.to_string()),
                        Ok(r) => match code_error(r.error_code, None) {
                            Some(e) => Err(format!("OffsetFetch: {e}")),
                            None => Ok(r
                                .topics
                                .iter()
                                .flat_map(|t| {
                                    t.partitions.iter().filter_map(move |p| {
                                        committed(
                                            &t.name.0,
                                            p.partition_index,
                                            p.committed_offset,
                                            p.error_code,
                                            p.metadata.as_ref(),
                                        )
                                    })
                                })
                                .collect()),
                        },
                    };
                    (group, v)
                }
            })
            .buffer_unordered(PER_GROUP_CONCURRENCY)
            .collect()
            .await
    }

    /// Timestamps of the records at the given offsets, from the partitions' leader: one Fetch
    /// per round, round k holding each partition's k-th wanted offset.
    async fn record_times(
        &self,
        addr: &str,
        parts: &BTreeMap<(String, i32), BTreeSet<i64>>,
    ) -> Vec<((String, i32, i64), Result<EpochMillis, String>)> {
        let rounds = parts.values().map(BTreeSet::len).max().unwrap_or(0);
        let requests = (0..rounds).map(|round| {
            let wanted: Vec<(&(String, i32), i64)> = parts
                .iter()
                .filter_map(|(k, offsets)| Some((k, *offsets.iter().nth(round)?)))
                .collect();
            async move { self.fetch_round(addr, &wanted).await }
        });
        let mut results: Vec<_> = join_all(requests).await.into_iter().flatten().collect();
        // A batch bigger than the per-partition limit comes whole only to a partition asked
        // for first: ask again for those alone (rare, so few requests).
        let retries = results
            .iter()
            .enumerate()
            .filter(|(_, (_, r))| matches!(r, Err(e) if e.incomplete))
            .map(|(i, ((t, p, o), _))| {
                let key = (t.clone(), *p);
                let offset = *o;
                async move {
                    let wanted = [(&key, offset)];
                    let answer = self.fetch_round(addr, &wanted).await;
                    (i, answer.into_iter().next().map(|(_, r)| r))
                }
            });
        for (i, answer) in join_all(retries).await {
            if let Some(answer) = answer {
                results[i].1 = answer;
            }
        }
        results
            .into_iter()
            .map(|(k, r)| (k, r.map_err(|e| e.message)))
            .collect()
    }

    async fn fetch_round(
        &self,
        addr: &str,
        wanted: &[(&(String, i32), i64)],
    ) -> Vec<((String, i32, i64), Result<EpochMillis, NoRecordTime>)> {
        let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for ((topic, partition), offset) in wanted {
            by_topic
                .entry(topic)
                .or_default()
                .push((*partition, *offset));
        }
        let mut request = FetchRequest::default();
        request.replica_id = (-1).into();
        request.max_wait_ms = 0;
        request.min_bytes = 0;
        request.max_bytes = FETCH_PARTITION_BYTES.saturating_mul(wanted.len().max(1) as i32);
        request.isolation_level = 0;
        request.session_id = 0;
        request.session_epoch = -1;
        request.topics = by_topic
            .iter()
            .map(|(topic, partitions)| {
                let mut t = FetchTopic::default();
                t.topic = TopicName(name(topic));
                t.partitions = partitions
                    .iter()
                    .map(|(p, offset)| {
                        let mut fp = FetchPartition::default();
                        fp.partition = *p;
                        fp.fetch_offset = *offset;
                        fp.partition_max_bytes = FETCH_PARTITION_BYTES;
                        fp
                    })
                    .collect();
                t
            })
            .collect();
        let keys = || {
            wanted
                .iter()
                .map(|((t, p), o)| (t.clone(), *p, *o))
                .collect::<Vec<_>>()
        };
        let response = match self.pool.request(addr, FETCH_MAX, &request).await {
            Ok(r) => r,
            Err(e) => {
                let reason =
                    NoRecordTime::from(format!("Fetch of the record at the committed offset: {e}"));
                return keys()
                    .into_iter()
                    .map(|k| (k, Err(reason.clone())))
                    .collect();
            }
        };
        if let Some(e) = code_error(response.error_code, None) {
            let reason = NoRecordTime::from(format!("Fetch: {e}"));
            return keys()
                .into_iter()
                .map(|k| (k, Err(reason.clone())))
                .collect();
        }
        let alone = wanted.len() == 1;
        // Thousands of partitions per answer: look the offsets up, not scan for them.
        let offsets: HashMap<(&str, i32), i64> = wanted
            .iter()
            .map(|((t, p), o)| ((t.as_str(), *p), *o))
            .collect();
        let mut out: HashMap<(String, i32), Result<EpochMillis, NoRecordTime>> = HashMap::new();
        for t in &response.responses {
            for p in &t.partitions {
                let Some(&offset) = offsets.get(&(t.topic.0.as_str(), p.partition_index)) else {
                    continue;
                };
                let key = (text(&t.topic.0), p.partition_index);
                let value = match code_error(p.error_code, None) {
                    Some(e) if p.error_code == 1 => Err(NoRecordTime::from(format!(
                        "the record at offset {offset} is gone ({e}); the log starts at {}",
                        p.log_start_offset
                    ))),
                    Some(e) => Err(NoRecordTime::from(format!("Fetch: {e}"))),
                    None => record_time(p.records.as_ref(), offset).map_err(|mut e| {
                        // Asked alone, the broker returns the whole first batch: no retry.
                        e.incomplete &= !alone;
                        e
                    }),
                };
                out.insert(key, value);
            }
        }
        keys()
            .into_iter()
            .map(|(t, p, o)| {
                let v = out.remove(&(t.clone(), p)).unwrap_or_else(|| {
                    Err(NoRecordTime::from(
                        "the broker left this partition out of its Fetch answer".to_string(),
                    ))
                });
                ((t, p, o), v)
            })
            .collect()
    }

    /// Members and assignments of the groups one broker coordinates, in one request.
    ///
    /// A broker may drop the connection over DescribeGroups: for one group it cannot describe
    /// (which fails the whole batch) or for every group (tansu's sqlite engine). Then two
    /// groups are asked for alone: if both drop too, the broker refuses the API, and every
    /// group gets that error without another request until the retry is due
    /// (`REFUSED_RETRY_SCRAPES`); otherwise the rest is split in halves to find the groups it
    /// refuses, which are then left out of the batch until their own retry.
    async fn describe_groups(
        &self,
        scrape: u64,
        addr: &str,
        groups: &[String],
    ) -> Vec<(String, Result<GroupDescription, String>)> {
        let fail = |groups: &[String], reason: &str| -> Vec<_> {
            groups
                .iter()
                .map(|g| (g.clone(), Err(reason.to_string())))
                .collect()
        };
        let api = Refusable::DescribeGroups {
            addr: addr.to_string(),
        };
        if let Some(error) = self.refusal(&api, scrape) {
            return fail(groups, &error);
        }
        let retrying_api = self.was_refused(&api);
        let one = |group: &str| Refusable::DescribeGroup {
            addr: addr.to_string(),
            group: group.to_string(),
        };
        let mut out = Vec::with_capacity(groups.len());
        let mut ask = Vec::with_capacity(groups.len());
        for group in groups {
            match self.refusal(&one(group), scrape) {
                Some(error) => out.push((group.clone(), Err(error))),
                None => ask.push(group.clone()),
            }
        }
        if ask.is_empty() {
            return out;
        }
        let refused_api = |e: &KafkaError| {
            format!(
                "DescribeGroups: {e} (the broker drops every DescribeGroups tried; asked again \
                 every {REFUSED_RETRY_SCRAPES} scrapes)"
            )
        };
        let refused_group = |e: &KafkaError| {
            format!(
                "DescribeGroups: {e} (the broker drops the connection when this group is \
                 named; asked again every {REFUSED_RETRY_SCRAPES} scrapes)"
            )
        };
        let batch_error = match self.describe_batch(addr, &ask).await {
            Ok(described) => {
                self.accept(&api);
                for group in &ask {
                    self.accept(&one(group));
                }
                out.extend(described);
                return out;
            }
            Err(e @ KafkaError::Disconnected { .. }) => e,
            Err(e) => {
                out.extend(fail(&ask, &format!("DescribeGroups: {e}")));
                return out;
            }
        };
        if ask.len() == 1 {
            self.refuse(one(&ask[0]), scrape, refused_group(&batch_error));
            out.extend(fail(&ask, &refused_group(&batch_error)));
            return out;
        }
        if retrying_api {
            // Refused before and still refused: no probing this time.
            let error = refused_api(&batch_error);
            self.refuse(api, scrape, error.clone());
            out.extend(fail(&ask, &error));
            return out;
        }
        // Two groups alone first, then halves of the rest.
        let mut pending: Vec<Vec<String>> = Vec::new();
        let rest = ask[2..].to_vec();
        if !rest.is_empty() {
            pending.push(rest);
        }
        pending.push(vec![ask[1].clone()]);
        pending.push(vec![ask[0].clone()]);
        let mut tries = 0;
        let mut any_answered = false;
        let mut alone_dropped = 0;
        while let Some(chunk) = pending.pop() {
            if tries == DESCRIBE_RETRIES_MAX {
                out.extend(fail(&chunk, &format!("DescribeGroups: {batch_error}")));
                continue;
            }
            tries += 1;
            match self.describe_batch(addr, &chunk).await {
                Ok(described) => {
                    any_answered = true;
                    for group in &chunk {
                        self.accept(&one(group));
                    }
                    out.extend(described);
                }
                Err(e @ KafkaError::Disconnected { .. }) if chunk.len() == 1 => {
                    alone_dropped += 1;
                    if !any_answered && alone_dropped == 2 {
                        // Every group tried alone dropped: the broker refuses the API.
                        let error = refused_api(&e);
                        for (group, result) in &mut out {
                            if ask.contains(group) {
                                self.accept(&one(group));
                                *result = Err(error.clone());
                            }
                        }
                        out.extend(fail(&chunk, &error));
                        for chunk in pending.drain(..) {
                            out.extend(fail(&chunk, &error));
                        }
                        self.refuse(api, scrape, error);
                        return out;
                    }
                    self.refuse(one(&chunk[0]), scrape, refused_group(&e));
                    out.extend(fail(&chunk, &refused_group(&e)));
                }
                Err(KafkaError::Disconnected { .. }) => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    pending.push(b.to_vec());
                    pending.push(a.to_vec());
                }
                Err(e) => out.extend(fail(&chunk, &format!("DescribeGroups: {e}"))),
            }
        }
        out
    }

    async fn describe_batch(
        &self,
        addr: &str,
        groups: &[String],
    ) -> Result<Vec<(String, Result<GroupDescription, String>)>, KafkaError> {
        let mut request = DescribeGroupsRequest::default();
        request.groups = groups.iter().map(|g| GroupId(name(g))).collect();
        let response = self
            .pool
            .request_on(addr, Lane::GroupDescriptions, DESCRIBE_GROUPS_MAX, &request)
            .await?;
        let mut out: HashMap<String, Result<GroupDescription, String>> = response
            .groups
            .iter()
            .map(|g| {
                let v = match code_error(g.error_code, g.error_message.as_ref()) {
                    Some(e) => Err(format!("DescribeGroups: {e}")),
                    None => Ok(GroupDescription {
                        state: text(&g.group_state),
                        protocol_type: text(&g.protocol_type),
                        protocol: text(&g.protocol_data),
                        members: g
                            .members
                            .iter()
                            .map(|m| {
                                let (assignment, assignment_error) =
                                    if g.protocol_type.as_str() == "consumer" {
                                        match decode_assignment(&m.member_assignment) {
                                            Ok(a) => (a, None),
                                            Err(e) => (Vec::new(), Some(e)),
                                        }
                                    } else {
                                        (Vec::new(), None)
                                    };
                                MemberState {
                                    member_id: text(&m.member_id),
                                    group_instance_id: m.group_instance_id.as_ref().map(text),
                                    client_id: text(&m.client_id),
                                    client_host: text(&m.client_host),
                                    assignment,
                                    assignment_error,
                                }
                            })
                            .collect(),
                    }),
                };
                (text(&g.group_id.0), v)
            })
            .collect();
        Ok(groups
            .iter()
            .map(|g| {
                let v = out.remove(g).unwrap_or_else(|| {
                    Err("the broker left this group out of DescribeGroups".to_string())
                });
                (g.clone(), v)
            })
            .collect())
    }

    /// Active producers of the partitions one broker leads, where the broker reports them.
    async fn describe_producers(
        &self,
        addr: &str,
        parts: &[(String, i32)],
    ) -> Vec<Item<Vec<ProducerState>>> {
        let fail_all = |reason: String| vec![Err(reason); parts.len()];
        let connection = match self.pool.get_on(addr, Lane::Producers).await {
            Ok(c) => c,
            Err(e) => return fail_all(e.to_string()),
        };
        if !connection.supports(ApiKey::DescribeProducers) {
            return fail_all(NO_PRODUCERS.to_string());
        }
        let Ok(version) =
            connection.require_version::<DescribeProducersRequest>(DESCRIBE_PRODUCERS_MAX)
        else {
            return fail_all(NO_PRODUCERS.to_string());
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in parts {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let mut request = DescribeProducersRequest::default();
        request.topics = by_topic
            .iter()
            .map(|(topic, partitions)| {
                let mut t = TopicRequest::default();
                t.name = TopicName(name(topic));
                t.partition_indexes = partitions.clone();
                t
            })
            .collect();
        let response = match connection.send(&request, version).await {
            Ok(r) => r,
            Err(e) => return fail_all(format!("DescribeProducers: {e}")),
        };
        let mut out: HashMap<(String, i32), Result<Vec<ProducerState>, String>> = HashMap::new();
        for t in &response.topics {
            for p in &t.partitions {
                let v = match code_error(p.error_code, p.error_message.as_ref()) {
                    Some(e) => Err(format!("DescribeProducers: {e}")),
                    None => Ok(p
                        .active_producers
                        .iter()
                        .map(|s| ProducerState {
                            producer_id: s.producer_id.0,
                            producer_epoch: s.producer_epoch,
                            last_sequence: s.last_sequence,
                            last_timestamp_ms: s.last_timestamp,
                            current_txn_start_offset: (s.current_txn_start_offset >= 0)
                                .then_some(s.current_txn_start_offset),
                        })
                        .collect()),
                };
                out.insert((text(&t.name.0), p.partition_index), v);
            }
        }
        parts
            .iter()
            .map(|k| {
                out.remove(k).unwrap_or_else(|| {
                    Err("the broker left this partition out of DescribeProducers".to_string())
                })
            })
            .collect()
    }
}

fn committed(
    topic: &StrBytes,
    partition: i32,
    offset: i64,
    error_code: i16,
    metadata: Option<&StrBytes>,
) -> Option<CommittedOffset> {
    // -1 means "no commit on this partition"; a partition error leaves it out likewise.
    (offset >= 0 && error_code == 0).then(|| CommittedOffset {
        topic: text(topic),
        partition,
        committed: offset,
        metadata: metadata.map(text).filter(|m| !m.is_empty()),
        record_time_ms: None,
        record_time_error: None,
    })
}

/// Decodes the consumer protocol's assignment bytes: a version, then the assignment.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<AssignedTopic>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.len() < 2 {
        return Err("assignment shorter than its version field".to_string());
    }
    let mut buf = bytes.clone();
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    // Later versions only add fields at the end: read them as the newest we know.
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3))
        .map_err(|e| format!("cannot decode the assignment (version {version}): {e}"))?;
    let mut topics: Vec<AssignedTopic> = assignment
        .assigned_partitions
        .iter()
        .map(|tp| {
            let mut partitions = tp.partitions.clone();
            partitions.sort_unstable();
            AssignedTopic {
                topic: text(&tp.topic.0),
                partitions,
            }
        })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(topics)
}

/// Why a Fetch answer gave no timestamp for the record at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRecordTime {
    pub message: String,
    /// No whole batch holding the offset came back (it exceeds the per-partition limit):
    /// asking for the partition alone gets it.
    pub incomplete: bool,
}

impl From<String> for NoRecordTime {
    fn from(message: String) -> Self {
        Self {
            message,
            incomplete: false,
        }
    }
}

/// The timestamp of the record at `offset` in a Fetch answer's record bytes.
pub fn record_time(records: Option<&Bytes>, offset: i64) -> Result<EpochMillis, NoRecordTime> {
    let mut data = records.cloned().unwrap_or_default();
    // Only whole batches are decoded: the answer may end in a cut one.
    while data.len() >= 12 {
        let batch_len = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let total = 12 + batch_len.max(0) as usize;
        if data.len() < total {
            break;
        }
        let mut batch = data.split_to(total);
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress))
            .map_err(|e| {
                NoRecordTime::from(format!(
                    "cannot decode the record batch holding offset {offset}: {e}"
                ))
            })?;
        if let Some(record) = set.records.iter().find(|r| r.offset >= offset) {
            return if record.offset == offset {
                u64::try_from(record.timestamp).map_err(|_| {
                    NoRecordTime::from(format!("the record at offset {offset} has no timestamp"))
                })
            } else {
                Err(NoRecordTime::from(format!(
                    "the record at offset {offset} is gone (compacted); the next one is at {}",
                    record.offset
                )))
            };
        }
    }
    Err(NoRecordTime {
        message: format!(
            "no whole record batch holding offset {offset} was returned (its batch is larger than the fetch limit)"
        ),
        incomplete: true,
    })
}

/// The records of a batch, decompressed: gzip and snappy by `kafka-protocol`, lz4 (frame
/// format) and zstd in pure Rust here, since `kafka-protocol`'s own lz4 and zstd features build
/// C libraries.
fn decompress(records: &mut Bytes, compression: Compression) -> anyhow::Result<Bytes> {
    use bytes::Buf;
    use kafka_protocol::compression::{Decompressor, Gzip, Snappy};
    use std::io::Read;
    let all = |b: &mut Bytes| Ok(std::mem::take(b));
    let mut out = Vec::new();
    match compression {
        Compression::None => return Ok(std::mem::take(records)),
        Compression::Gzip => return Gzip::decompress(records, all),
        Compression::Snappy => return Snappy::decompress(records, all),
        Compression::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(records.clone().reader()).read_to_end(&mut out)?;
        }
        Compression::Zstd => {
            ruzstd::decoding::StreamingDecoder::new(records.clone().reader())
                .map_err(|e| anyhow::anyhow!("zstd: {e}"))?
                .read_to_end(&mut out)?;
        }
    }
    Ok(Bytes::from(out))
}

fn build_snapshot(
    time_ms: EpochMillis,
    topics: &[TopicState],
    groups: &[GroupState],
) -> OffsetsSnapshot {
    let partitions = topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionOffsets {
                tp: TopicPartition::new(t.name.clone(), p.partition),
                offsets: match (&p.earliest, &p.latest) {
                    (Ok(earliest), Ok(latest)) => Ok(OffsetRange {
                        earliest: *earliest,
                        latest: *latest,
                    }),
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                },
            })
        })
        .collect();
    let commits = groups
        .iter()
        .filter_map(|g| g.offsets.as_ref().ok().map(|o| (g, o)))
        .flat_map(|(g, offsets)| {
            offsets.iter().map(|c| GroupCommit {
                group: g.name.clone(),
                tp: TopicPartition::new(c.topic.clone(), c.partition),
                committed: c.committed,
                record_time_ms: c.record_time_ms,
            })
        })
        .collect();
    OffsetsSnapshot {
        time_ms,
        partitions,
        commits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::protocol::Encodable;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(offsets: &[i64]) -> Bytes {
        compressed_batch(offsets, Compression::None)
    }

    /// A cluster with topic `t` (id `id`, one partition ending at `latest`) and a group
    /// committed at 5 whose record time is 1,000.
    fn scraped(id: &str, latest: i64, with_snapshot: bool) -> ClusterState {
        let partition = PartitionState {
            partition: 0,
            leader: Some(1),
            replicas: vec![1],
            isr: vec![1],
            offline_replicas: vec![],
            offline: false,
            under_replicated: false,
            error: None,
            earliest: Ok(0),
            latest: Ok(latest),
            producers: Err(NO_PRODUCERS.to_string()),
        };
        ClusterState {
            name: "c".into(),
            scraped_at_ms: 1,
            scrape_duration_ms: 1,
            data_time_ms: 1,
            error: None,
            cluster_id: None,
            controller_id: Some(1),
            brokers: vec![],
            topics: vec![TopicState {
                name: "t".into(),
                id: Some(id.into()),
                internal: false,
                error: None,
                config: Err("not read".into()),
                partitions: vec![partition],
            }],
            groups: vec![GroupState {
                name: "g".into(),
                coordinator: Ok(1),
                protocol_type: "consumer".into(),
                description: Err("not described".into()),
                offsets: Ok(vec![CommittedOffset {
                    topic: "t".into(),
                    partition: 0,
                    committed: 5,
                    metadata: None,
                    record_time_ms: Some(1_000),
                    record_time_error: None,
                }]),
            }],
            group_list_errors: vec![],
            stages: vec![],
            snapshot: with_snapshot.then(|| OffsetsSnapshot {
                time_ms: 1,
                partitions: vec![],
                commits: vec![],
            }),
            view: None,
        }
    }

    #[test]
    fn a_record_time_is_reused_only_while_the_topic_and_its_log_are_the_same() {
        let before = scraped("id-1", 10, true);
        let reused = |now: &ClusterState, before: Option<&ClusterState>| {
            KnownRecordTimes::new(before, &now.topics).get("t", 0, 5)
        };
        // Same topic, log grown: the time read before.
        assert_eq!(
            reused(&scraped("id-1", 12, true), Some(&before)),
            Some(1_000)
        );
        assert_eq!(
            reused(&scraped("id-1", 10, true), Some(&before)),
            Some(1_000)
        );
        // Another offset, or no previous scrape: nothing known.
        let known = KnownRecordTimes::new(Some(&before), &scraped("id-1", 12, true).topics);
        assert_eq!(known.get("t", 0, 6), None);
        assert_eq!(reused(&scraped("id-1", 12, true), None), None);
        // The topic made anew (new id), or its log went back: fetched again.
        assert_eq!(reused(&scraped("id-2", 12, true), Some(&before)), None);
        assert_eq!(reused(&scraped("id-1", 9, true), Some(&before)), None);
        // The previous state is a stale copy (no broker answered): not trusted.
        let stale = scraped("id-1", 10, false);
        assert_eq!(reused(&scraped("id-1", 12, true), Some(&stale)), None);
    }

    fn compressed_batch(offsets: &[i64], compression: Compression) -> Bytes {
        let records: Vec<Record> = offsets
            .iter()
            .map(|&offset| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: -1,
                timestamp: 1_000_000 + offset * 10,
                key: None,
                value: Some(Bytes::from_static(b"v")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        match compression {
            Compression::Lz4 | Compression::Zstd => {
                RecordBatchEncoder::encode_with_custom_compression(
                    &mut buf,
                    records.iter(),
                    &options,
                    Some(compress),
                )
            }
            _ => RecordBatchEncoder::encode(&mut buf, records.iter(), &options),
        }
        .unwrap();
        buf.freeze()
    }

    /// lz4 (frame format, as Kafka clients write it) and zstd, for the batches above.
    fn compress(
        records: &mut BytesMut,
        out: &mut BytesMut,
        compression: Compression,
    ) -> anyhow::Result<()> {
        use std::io::Write;
        match compression {
            Compression::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(records)?;
                out.put_slice(&encoder.finish()?);
            }
            Compression::Zstd => out.put_slice(&ruzstd::encoding::compress_to_vec(
                &records[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            )),
            other => anyhow::bail!("not a codec of this test: {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn record_time_is_read_from_compressed_batches_of_every_codec() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut data = BytesMut::new();
            data.put(compressed_batch(&[0, 1, 2], compression));
            data.put(compressed_batch(&[3, 4, 5], compression));
            let data = data.freeze();
            assert_eq!(
                record_time(Some(&data), 4),
                Ok(1_000_040),
                "{compression:?}"
            );
            assert_eq!(
                record_time(Some(&data), 0),
                Ok(1_000_000),
                "{compression:?}"
            );
        }
    }

    #[test]
    fn record_time_is_the_base_timestamp_plus_the_records_delta() {
        let data = batch(&[10, 11, 12, 13]);
        assert_eq!(record_time(Some(&data), 12), Ok(1_000_120));
        assert_eq!(record_time(Some(&data), 10), Ok(1_000_100));
    }

    #[test]
    fn record_time_reads_past_earlier_batches_and_ignores_a_cut_last_one() {
        let mut data = BytesMut::new();
        data.put(batch(&[0, 1]));
        data.put(batch(&[2, 3]));
        let cut = batch(&[4, 5]);
        data.put(cut.slice(..cut.len() - 3));
        let data = data.freeze();
        assert_eq!(record_time(Some(&data), 3), Ok(1_000_030));
        let missing = record_time(Some(&data), 5).unwrap_err();
        assert!(missing.incomplete);
        assert!(
            missing.message.contains("no whole record batch"),
            "{missing:?}"
        );
    }

    #[test]
    fn a_compacted_away_record_is_reported_with_the_next_offset() {
        let data = batch(&[20, 25]);
        let gone = record_time(Some(&data), 22).unwrap_err();
        assert!(!gone.incomplete);
        assert!(
            gone.message
                .contains("gone (compacted); the next one is at 25"),
            "{gone:?}"
        );
        assert!(record_time(None, 1).unwrap_err().incomplete);
    }

    #[test]
    fn consumer_assignments_decode_sorted_by_topic_and_partition() {
        let mut assignment = ConsumerProtocolAssignment::default();
        for (topic, partitions) in [("b", vec![3, 1]), ("a", vec![0])] {
            let mut tp = Assigned::default();
            tp.topic = TopicName(name(topic));
            tp.partitions = partitions;
            assignment.assigned_partitions.push(tp);
        }
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        assignment.encode(&mut buf, 3).unwrap();
        let decoded = decode_assignment(&buf.freeze()).unwrap();
        assert_eq!(
            decoded,
            vec![
                AssignedTopic {
                    topic: "a".into(),
                    partitions: vec![0]
                },
                AssignedTopic {
                    topic: "b".into(),
                    partitions: vec![1, 3]
                },
            ]
        );
        assert_eq!(decode_assignment(&Bytes::new()), Ok(vec![]));
        assert!(decode_assignment(&Bytes::from_static(&[0, 1, 0])).is_err());
    }
}

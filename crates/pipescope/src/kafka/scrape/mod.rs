//! One scrape of one cluster, batched per broker: Metadata; then at once ListOffsets (earliest
//! and latest, grouped by leader, on two connections), DescribeConfigs, DescribeProducers and
//! the group chain — ListGroups, FindCoordinator (batched on v4+), then together OffsetFetch
//! (many groups per request on v8+) and DescribeGroups; last, Fetch of the record at each
//! lagging committed offset. Each stage's timing is kept on the result.
//!
//! Nothing here fails the whole scrape except reaching no broker at all: every other failure is
//! kept on the item it concerns.
//!
//! [`Scraper::scrape`] is the sequence of phases; each stage lives in its own file:
//! - `metadata.rs`: Metadata, the brokers, the topics and where each partition's requests go;
//! - `offsets.rs`: ListOffsets and DescribeProducers, per partition leader;
//! - `configs.rs`: DescribeConfigs, and the configs kept between scrapes;
//! - `groups.rs`: the group chain — ListGroups, FindCoordinator, OffsetFetch;
//! - `offsets_topic.rs`: committed offsets read from `__consumer_offsets` instead (the
//!   `committed_offsets` setting);
//! - `members.rs`: DescribeGroups, and finding the groups a broker refuses to describe;
//! - `records.rs`: Fetch of the records at lagging committed offsets, their decompression and
//!   timestamps (which positions to fetch: `pipescope_core::kafka::record_time`);
//! - `refusals.rs`: the requests a broker refused by dropping the connection;
//! - `timing.rs`: the timing of each stage.

mod configs;
mod groups;
pub(crate) mod members;
mod metadata;
mod offsets;
mod offsets_topic;
mod records;
mod refusals;
mod timing;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use kafka_protocol::messages::MetadataResponse;
use kafka_protocol::protocol::StrBytes;
use pipescope_core::{Clock, EpochMillis};

use super::conn::{Pool, error_name};
use super::state::{ClusterReading, ClusterState, ProducerState, TopicConfig};
use crate::config::CommittedOffsetsMode;
use configs::ConfigCache;
use groups::GroupChain;
use metadata::{Layout, Node};
use refusals::Refusals;
use timing::StageTimer;

pub use configs::CONFIG_REFRESH_SCRAPES;
pub use members::decode_assignment;
pub use offsets_topic::AUTO_OFFSETS_TOPIC_GROUPS;
pub use pipescope_core::kafka::record_batch::{NoRecordTime, record_time};
pub use refusals::REFUSED_RETRY_SCRAPES;

/// A value of one item, or why it is unknown.
type Item<T> = Result<T, String>;

/// Scrapes one cluster; keeps the connections between scrapes, and which requests the
/// brokers refused.
#[derive(Debug)]
pub struct Scraper {
    name: String,
    bootstrap: Vec<String>,
    pool: Pool,
    timeout: Duration,
    /// Scrapes started so far: the clock of `refusals` and of the config refresh.
    scrapes: AtomicU64,
    refusals: Refusals,
    committed_offsets: CommittedOffsetsMode,
    /// Reads `__consumer_offsets` while `committed_offsets` wants it.
    offsets_reader: Mutex<Option<offsets_topic::OffsetsTopicReader>>,
}

/// What the requests that need only the metadata answered, all sent at once.
struct Answers {
    /// Whether each broker could be connected to, by id.
    pings: Vec<(i32, Item<()>)>,
    /// Earliest and latest offsets, per leader in the order of `Layout::by_leader`.
    offsets: Vec<offsets::LeaderOffsets>,
    /// When the offsets were read: the time of the snapshot.
    offsets_time_ms: EpochMillis,
    configs: Item<HashMap<String, Item<TopicConfig>>>,
    /// Producers, per leader in the order of `Layout::by_leader`.
    producers: Vec<Vec<Item<Vec<ProducerState>>>>,
    groups: GroupChain,
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
            refusals: Refusals::default(),
            committed_offsets: CommittedOffsetsMode::default(),
            offsets_reader: Mutex::new(None),
        }
    }

    /// Where committed offsets come from (`auto` by default).
    pub fn with_committed_offsets(mut self, mode: CommittedOffsetsMode) -> Self {
        self.committed_offsets = mode;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One full scrape. `previous` (the last scrape's state) lends what did not change: the
    /// brokers to ask first, topic configs, record times. It is kept (marked stale) when no
    /// broker answers.
    pub async fn scrape(&self, clock: &dyn Clock, previous: Option<&ClusterState>) -> ClusterState {
        let started = Instant::now();
        let scrape = self.scrapes.fetch_add(1, Ordering::Relaxed);
        let scraped_at_ms = clock.now_millis();
        let stages = StageTimer::new(started);
        let (metadata, errors) = stages.time("Metadata", self.metadata(previous)).await;
        let Some(metadata) = metadata else {
            let error = format!(
                "cluster {}: no broker answered Metadata: {}",
                self.name,
                errors.join("; ")
            );
            let reason = errors.first().cloned().unwrap_or_else(|| error.clone());
            let duration_ms = started.elapsed().as_millis() as u64;
            return ClusterState::unreachable(
                &self.name,
                previous,
                scraped_at_ms,
                duration_ms,
                error,
                reason,
            );
        };
        let reading = self
            .read_cluster(clock, scrape, &stages, previous, metadata)
            .await;
        ClusterState::read(&self.name, stages.finish(scraped_at_ms), reading)
    }

    /// Everything a scrape reads once Metadata answered, phase by phase. The answer is dropped
    /// once read: a big cluster's is tens of MB.
    async fn read_cluster(
        &self,
        clock: &dyn Clock,
        scrape: u64,
        stages: &StageTimer,
        previous: Option<&ClusterState>,
        metadata: MetadataResponse,
    ) -> ClusterReading {
        let mut topics = metadata::topics(&metadata);
        let layout = Layout::new(&metadata, &mut topics);
        let mut brokers = metadata::brokers(&metadata);
        let cluster_id = metadata.cluster_id.as_ref().map(text);
        let controller_id = (metadata.controller_id.0 >= 0).then_some(metadata.controller_id.0);
        drop(metadata);
        let mut configs = ConfigCache::new(previous, scrape, &topics);
        let answers = self
            .ask_at_once(clock, scrape, stages, &layout, &configs.to_read(&topics))
            .await;
        metadata::mark_unreachable(&mut brokers, &answers.pings);
        offsets::fill(
            &mut topics,
            &layout.by_leader,
            answers.offsets,
            answers.producers,
        );
        configs.fill(&mut topics, answers.configs);
        let committed_offsets = answers.groups.committed_offsets.clone();
        let (mut groups, group_list_errors) = answers.groups.into_groups();
        self.read_record_times(stages, previous, &layout.addr_of, &topics, &mut groups)
            .await;
        ClusterReading {
            cluster_id,
            controller_id,
            brokers,
            topics,
            groups,
            group_list_errors,
            offsets_time_ms: answers.offsets_time_ms,
            committed_offsets,
        }
    }

    /// Phase: everything that needs only the metadata, at once. The group chain (ListGroups,
    /// FindCoordinator, then OffsetFetch and DescribeGroups) runs beside the offsets, configs
    /// and producers. Requests a broker may refuse by dropping the connection go on lanes of
    /// their own, so they cannot fail the others in flight.
    async fn ask_at_once(
        &self,
        clock: &dyn Clock,
        scrape: u64,
        stages: &StageTimer,
        layout: &Layout,
        config_topics: &[String],
    ) -> Answers {
        let (pings, (offsets, offsets_time_ms), configs, producers, groups) = futures::join!(
            stages.time("connect", self.connect_all(&layout.nodes)),
            stages.time("ListOffsets", async {
                let offsets = self.list_offsets_by_leader(layout).await;
                (offsets, clock.now_millis())
            }),
            stages.time(
                "DescribeConfigs",
                self.describe_configs(scrape, layout.admin_addr.as_deref(), config_topics)
            ),
            stages.time("DescribeProducers", self.producers_by_leader(layout)),
            self.group_chain(scrape, stages, layout),
        );
        Answers {
            pings,
            offsets,
            offsets_time_ms,
            configs,
            producers,
            groups,
        }
    }

    /// A connection to every broker (kept for the requests that follow): which answered.
    async fn connect_all(&self, nodes: &[Node]) -> Vec<(i32, Item<()>)> {
        join_all(nodes.iter().map(|n| async move {
            let connected = self.pool.get(&n.addr).await.map(|_| ());
            (n.id, connected.map_err(|e| e.to_string()))
        }))
        .await
    }
}

fn text(s: &StrBytes) -> String {
    s.as_str().to_string()
}

/// Items grouped by topic, topics in name order: requests name each topic once.
fn by_topic<'a, T>(items: impl IntoIterator<Item = (&'a str, T)>) -> BTreeMap<&'a str, Vec<T>> {
    let mut by_topic: BTreeMap<&str, Vec<T>> = BTreeMap::new();
    for (topic, item) in items {
        by_topic.entry(topic).or_default().push(item);
    }
    by_topic
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

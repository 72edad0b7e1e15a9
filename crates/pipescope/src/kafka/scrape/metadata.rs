//! Metadata: the brokers, the topics and their partitions, and where each request goes.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

use super::{Item, Scraper, code_error, text};
use crate::kafka::state::{ClusterState, KafkaBrokerState, PartitionState, TopicState};

const METADATA_MAX: i16 = 12;

/// A broker of the metadata answer.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub id: i32,
    pub addr: String,
}

/// Where the requests of a scrape go, from the Metadata answer.
pub(super) struct Layout {
    pub nodes: Vec<Node>,
    pub addr_of: HashMap<i32, String>,
    /// The partitions of each leader in the broker list (by topic name and partition).
    pub by_leader: BTreeMap<i32, Vec<(String, i32)>>,
    /// Where topic configs and group coordinators are asked: the controller, else the first
    /// broker listed.
    pub admin_addr: Option<String>,
}

impl Layout {
    /// The layout of `metadata`. A partition without a reachable leader gets its reason now,
    /// on `topics`.
    pub fn new(metadata: &MetadataResponse, topics: &mut [TopicState]) -> Self {
        let nodes: Vec<Node> = metadata
            .brokers
            .iter()
            .map(|b| Node {
                id: b.node_id.0,
                addr: format!("{}:{}", b.host.as_str(), b.port),
            })
            .collect();
        let addr_of: HashMap<i32, String> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
        let by_leader = by_leader(topics, &addr_of);
        let admin_addr = addr_of
            .get(&metadata.controller_id.0)
            .or_else(|| nodes.first().map(|n| &n.addr))
            .cloned();
        Self {
            nodes,
            addr_of,
            by_leader,
            admin_addr,
        }
    }
}

/// Partitions by leader; a partition without a reachable leader gets its reason instead.
fn by_leader(
    topics: &mut [TopicState],
    addr_of: &HashMap<i32, String>,
) -> BTreeMap<i32, Vec<(String, i32)>> {
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for topic in topics {
        for p in &mut topic.partitions {
            let reason = match p.leader {
                Some(leader) if addr_of.contains_key(&leader) => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((topic.name.clone(), p.partition));
                    continue;
                }
                Some(leader) => format!("leader {leader} is not in the broker list"),
                None => "partition has no leader (offline)".to_string(),
            };
            p.earliest = Err(reason.clone());
            p.latest = Err(reason.clone());
            p.producers = Err(reason);
        }
    }
    by_leader
}

/// Topics and partitions from Metadata, sorted; offsets, producers and configs are "not read"
/// until their phases fill them in.
pub(super) fn topics(metadata: &MetadataResponse) -> Vec<TopicState> {
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
    topics
}

/// The brokers of the metadata answer, all up until [`mark_unreachable`] says otherwise.
pub(super) fn brokers(metadata: &MetadataResponse) -> Vec<KafkaBrokerState> {
    metadata
        .brokers
        .iter()
        .map(|b| KafkaBrokerState {
            id: b.node_id.0,
            host: text(&b.host),
            port: b.port,
            rack: b.rack.as_ref().map(text),
            up: true,
            error: None,
        })
        .collect()
}

/// Marks down the brokers that could not be connected to (`pings`: broker id → connected).
pub(super) fn mark_unreachable(brokers: &mut [KafkaBrokerState], pings: &[(i32, Item<()>)]) {
    for b in brokers {
        if let Some((_, Err(e))) = pings.iter().find(|(id, _)| *id == b.id) {
            b.up = false;
            b.error = Some(e.clone());
        }
    }
}

impl Scraper {
    /// Metadata from the first broker that answers: the known brokers first, then bootstrap.
    pub(super) async fn metadata(
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
}

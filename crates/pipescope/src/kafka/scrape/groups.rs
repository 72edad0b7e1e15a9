//! The group chain: ListGroups on every broker, FindCoordinator, then together OffsetFetch
//! (committed offsets, here) and DescribeGroups (members and assignments: `members.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use futures::future::join_all;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, ListGroupsRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::metadata::{Layout, Node};
use super::timing::StageTimer;
use super::{Item, Scraper, code_error, name, text};
use crate::kafka::conn::{KafkaError, Lane};
use crate::kafka::state::{CommittedOffset, CommittedOffsetsSource, GroupDescription, GroupState};

/// Highest versions asked for. Past these the requests change meaning (OffsetFetch v10 names
/// topics by id), so they are capped where the code below was written for.
const LIST_GROUPS_MAX: i16 = 4;
const FIND_COORDINATOR_MAX: i16 = 6;
const OFFSET_FETCH_MAX: i16 = 9;
/// At most this many requests of one kind in flight when the broker needs one per group.
const PER_GROUP_CONCURRENCY: usize = 32;

/// What the group chain of a scrape found.
pub(super) struct GroupChain {
    groups: Vec<GroupState>,
    group_list_errors: Vec<String>,
    commits: HashMap<String, Item<Vec<CommittedOffset>>>,
    descriptions: HashMap<String, Item<GroupDescription>>,
    pub committed_offsets: CommittedOffsetsSource,
}

impl GroupChain {
    /// The groups with their descriptions and committed offsets (or why they are unknown: a
    /// group without a coordinator gets that reason), and why the group list is incomplete.
    pub fn into_groups(mut self) -> (Vec<GroupState>, Vec<String>) {
        for group in &mut self.groups {
            if let Some(d) = self.descriptions.remove(&group.name) {
                group.description = d;
            } else if let Err(e) = &group.coordinator {
                group.description = Err(e.clone());
            }
            match self.commits.remove(&group.name) {
                Some(c) => group.offsets = c,
                None => {
                    if let Err(e) = &group.coordinator {
                        group.offsets = Err(e.clone());
                    }
                }
            }
        }
        (self.groups, self.group_list_errors)
    }
}

/// Every group gets the same reason.
pub(super) fn fail_all<T>(groups: &[String], reason: &str) -> Vec<(String, Item<T>)> {
    groups
        .iter()
        .map(|g| (g.clone(), Err(reason.to_string())))
        .collect()
}

/// The answer for every group asked for, in their order; a group the broker left out gets
/// that reason.
pub(super) fn in_order<T>(
    groups: &[String],
    mut answered: HashMap<String, Item<T>>,
    api: &str,
) -> Vec<(String, Item<T>)> {
    groups
        .iter()
        .map(|g| {
            let v = answered
                .remove(g)
                .unwrap_or_else(|| Err(format!("the broker left this group out of {api}")));
            (g.clone(), v)
        })
        .collect()
}

impl Scraper {
    /// Phase: the groups every broker lists, their coordinators, then together their committed
    /// offsets and their descriptions.
    pub(super) async fn group_chain(
        &self,
        scrape: u64,
        stages: &StageTimer,
        layout: &Layout,
    ) -> GroupChain {
        let listed = stages
            .time(
                "ListGroups",
                join_all(layout.nodes.iter().map(|n| self.list_groups(n))),
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
                self.find_coordinators(layout.admin_addr.as_deref(), &group_names),
            )
            .await;
        let groups = with_coordinators(&listed_groups, &coordinators, &layout.addr_of);
        let mut by_coordinator: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for group in &groups {
            if let Ok(id) = group.coordinator {
                by_coordinator
                    .entry(id)
                    .or_default()
                    .push(group.name.clone());
            }
        }
        let (from_offsets_topic, committed_offsets) =
            self.commits_from_offsets_topic(layout, &group_names);
        let ask = from_offsets_topic.is_none();
        let addr_of = &layout.addr_of;
        let (fetched, described) = futures::join!(
            stages.time(
                "OffsetFetch",
                join_all(
                    by_coordinator
                        .iter()
                        .filter(|_| ask)
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
            commits: from_offsets_topic.unwrap_or_else(|| fetched.into_iter().flatten().collect()),
            descriptions: described.into_iter().flatten().collect(),
            committed_offsets,
        }
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
    ) -> HashMap<String, Item<i32>> {
        let fail = |reason: String| fail_all(groups, &reason).into_iter().collect();
        if groups.is_empty() {
            return HashMap::new();
        }
        let Some(addr) = addr else {
            return fail("no broker to ask for coordinators".to_string());
        };
        let connection = match self.pool.get_on(addr, Lane::Groups).await {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let version =
            match connection.require_version::<FindCoordinatorRequest>(FIND_COORDINATOR_MAX) {
                Ok(v) => v,
                Err(e) => return fail(e.to_string()),
            };
        if version >= 4 {
            let mut request = FindCoordinatorRequest::default();
            request.key_type = 0;
            request.coordinator_keys = groups.iter().map(|g| name(g)).collect();
            return match connection.send(&request, version).await {
                Err(e) => fail(e.to_string()),
                Ok(response) => {
                    let mut out: HashMap<String, Item<i32>> = response
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
    ) -> Vec<(String, Item<Vec<CommittedOffset>>)> {
        let connection = match self.pool.get_on(addr, Lane::Groups).await {
            Ok(c) => c,
            Err(e) => return fail_all(groups, &e.to_string()),
        };
        // v1 cannot ask for "all topics"; v2+ can (topics = null).
        let version = match connection.version::<OffsetFetchRequest>(OFFSET_FETCH_MAX) {
            Some(v) if v >= 2 => v,
            _ => {
                let unsupported = KafkaError::Unsupported {
                    api: "OffsetFetch v2+".to_string(),
                    addr: addr.to_string(),
                };
                return fail_all(groups, &unsupported.to_string());
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
                Err(e) => fail_all(groups, &e.to_string()),
                Ok(response) => {
                    let answered = response
                        .groups
                        .iter()
                        .map(|g| (text(&g.group_id.0), commits_of(g.error_code, &g.topics)))
                        .collect();
                    in_order(groups, answered, "OffsetFetch")
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
                        Ok(r) => commits_of(r.error_code, &r.topics),
                    };
                    (group, v)
                }
            })
            .buffer_unordered(PER_GROUP_CONCURRENCY)
            .collect()
            .await
    }
}

/// The groups listed (name → (listing broker, protocol type)) with their coordinators.
/// ListGroups on a broker lists the groups it coordinates: the fallback answer.
fn with_coordinators(
    listed: &BTreeMap<String, (i32, String)>,
    coordinators: &HashMap<String, Item<i32>>,
    addr_of: &HashMap<i32, String>,
) -> Vec<GroupState> {
    listed
        .iter()
        .map(|(group, (listed_by, protocol_type))| {
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
        .collect()
}

/// A topic of an OffsetFetch answer, in either of its shapes: per group (v8+) or for the one
/// group asked (before).
trait FetchedTopic {
    fn name(&self) -> &StrBytes;
    /// Its partitions: (index, committed offset, error code, metadata).
    fn partitions(&self) -> impl Iterator<Item = (i32, i64, i16, Option<&StrBytes>)>;
}

impl FetchedTopic for OffsetFetchResponseTopics {
    fn name(&self) -> &StrBytes {
        &self.name.0
    }
    fn partitions(&self) -> impl Iterator<Item = (i32, i64, i16, Option<&StrBytes>)> {
        self.partitions
            .iter()
            .map(|p: &OffsetFetchResponsePartitions| {
                let metadata = p.metadata.as_ref();
                (
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                    metadata,
                )
            })
    }
}

impl FetchedTopic for OffsetFetchResponseTopic {
    fn name(&self) -> &StrBytes {
        &self.name.0
    }
    fn partitions(&self) -> impl Iterator<Item = (i32, i64, i16, Option<&StrBytes>)> {
        self.partitions
            .iter()
            .map(|p: &OffsetFetchResponsePartition| {
                let metadata = p.metadata.as_ref();
                (
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                    metadata,
                )
            })
    }
}

/// The committed offsets of one group in an OffsetFetch answer, or the group's error.
/// -1 means "no commit on this partition"; a partition error leaves it out likewise.
fn commits_of<T: FetchedTopic>(error_code: i16, topics: &[T]) -> Item<Vec<CommittedOffset>> {
    if let Some(e) = code_error(error_code, None) {
        return Err(format!("OffsetFetch: {e}"));
    }
    // Sized up front: a grown list would keep up to twice its length for the whole scrape,
    // and a big cluster holds hundreds of thousands of commits.
    let mut commits = Vec::with_capacity(topics.iter().map(|t| t.partitions().count()).sum());
    commits.extend(topics.iter().flat_map(|t| {
        let topic: Arc<str> = text(t.name()).into();
        t.partitions()
            .filter(|&(_, offset, error_code, _)| offset >= 0 && error_code == 0)
            .map(move |(partition, offset, _, metadata)| CommittedOffset {
                topic: Arc::clone(&topic),
                partition,
                committed: offset,
                metadata: metadata
                    .filter(|m| !m.is_empty())
                    .map(|m| m.as_str().into()),
                record_time_ms: None,
                record_time_error: None,
            })
    }));
    Ok(commits)
}

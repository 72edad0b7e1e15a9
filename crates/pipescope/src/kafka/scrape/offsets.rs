//! ListOffsets (earliest and latest) and DescribeProducers, per partition leader.

use std::collections::BTreeMap;

use futures::future::join_all;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, DescribeProducersRequest, ListOffsetsRequest, TopicName};

use super::metadata::Layout;
use pipescope_core::kafka::FastMap;

use super::{Item, Scraper, by_topic, code_error, name};
use crate::kafka::conn::Lane;
use crate::kafka::state::{ProducerState, TopicState};

/// Highest versions asked for (the code below was written for these).
const LIST_OFFSETS_MAX: i16 = 8;
const DESCRIBE_PRODUCERS_MAX: i16 = 0;

pub(super) const NO_PRODUCERS: &str = "broker does not report producers";

/// The earliest and the latest offsets of the partitions one broker leads, in their order.
pub(super) type LeaderOffsets = (Vec<Item<i64>>, Vec<Item<i64>>);

/// A partition's earliest and latest offsets and its producers, as its leader answered.
type PartitionAnswers = (Item<i64>, Item<i64>, Item<Vec<ProducerState>>);

/// Puts the leaders' answers on the partitions of `topics`. The answers of each leader are in
/// the order of its partitions in `by_leader`.
pub(super) fn fill(
    topics: &mut [TopicState],
    by_leader: &BTreeMap<i32, Vec<(String, i32)>>,
    offsets: Vec<LeaderOffsets>,
    producers: Vec<Vec<Item<Vec<ProducerState>>>>,
) {
    let mut answered: FastMap<(&str, i32), PartitionAnswers> = FastMap::default();
    for (((_, parts), (earliest, latest)), producers) in
        by_leader.iter().zip(offsets).zip(producers)
    {
        for ((((topic, partition), earliest), latest), producers) in
            parts.iter().zip(earliest).zip(latest).zip(producers)
        {
            answered.insert((topic.as_str(), *partition), (earliest, latest, producers));
        }
    }
    for topic in topics {
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
}

impl Scraper {
    /// Earliest and latest offsets of every partition with a leader, from each leader at once.
    pub(super) async fn list_offsets_by_leader(&self, layout: &Layout) -> Vec<LeaderOffsets> {
        join_all(
            layout
                .by_leader
                .iter()
                .map(|(leader, parts)| self.list_offsets(&layout.addr_of[leader], parts)),
        )
        .await
    }

    /// Producers of every partition with a leader, from each leader at once.
    pub(super) async fn producers_by_leader(
        &self,
        layout: &Layout,
    ) -> Vec<Vec<Item<Vec<ProducerState>>>> {
        join_all(
            layout
                .by_leader
                .iter()
                .map(|(leader, parts)| self.describe_producers(&layout.addr_of[leader], parts)),
        )
        .await
    }

    /// Earliest and latest offsets of the partitions one broker leads: two requests (a
    /// partition may appear once per request), sent together.
    async fn list_offsets(&self, addr: &str, parts: &[(String, i32)]) -> LeaderOffsets {
        futures::join!(
            self.list_offsets_at(addr, Lane::Side, parts, -2),
            self.list_offsets_at(addr, Lane::Main, parts, -1)
        )
    }

    async fn list_offsets_at(
        &self,
        addr: &str,
        lane: Lane,
        parts: &[(String, i32)],
        timestamp: i64,
    ) -> Vec<Item<i64>> {
        let request = list_offsets_request(parts, timestamp, self.timeout.as_millis() as i32);
        let response = match self
            .pool
            .request_on(addr, lane, LIST_OFFSETS_MAX, &request)
            .await
        {
            Ok(response) => response,
            Err(e) => return vec![Err(e.to_string()); parts.len()],
        };
        let answers = response.topics.iter().flat_map(|t| {
            t.partitions.iter().map(|p| {
                let value = match code_error(p.error_code, None) {
                    Some(e) => Err(format!("ListOffsets: {e}")),
                    None => Ok(p.offset),
                };
                ((t.name.0.as_str(), p.partition_index), value)
            })
        });
        in_order_of(parts, answers, "its ListOffsets answer")
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
        let request = describe_producers_request(parts);
        let response = match connection.send(&request, version).await {
            Ok(r) => r,
            Err(e) => return fail_all(format!("DescribeProducers: {e}")),
        };
        let answers = response.topics.iter().flat_map(|t| {
            t.partitions.iter().map(|p| {
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
                ((t.name.0.as_str(), p.partition_index), v)
            })
        });
        in_order_of(parts, answers, "DescribeProducers")
    }
}

/// A broker's answers for `parts`, in their order, found by place (a leader answers for
/// thousands of partitions); a partition it left out gets that reason.
fn in_order_of<'a, T>(
    parts: &[(String, i32)],
    answers: impl Iterator<Item = ((&'a str, i32), Item<T>)>,
    answer: &str,
) -> Vec<Item<T>> {
    let place: FastMap<(&str, i32), usize> = parts
        .iter()
        .enumerate()
        .map(|(i, (topic, partition))| ((topic.as_str(), *partition), i))
        .collect();
    let mut out: Vec<Option<Item<T>>> = std::iter::repeat_with(|| None).take(parts.len()).collect();
    for (key, value) in answers {
        if let Some(&i) = place.get(&key) {
            out[i] = Some(value);
        }
    }
    out.into_iter()
        .map(|value| {
            value.unwrap_or_else(|| Err(format!("the broker left this partition out of {answer}")))
        })
        .collect()
}

/// The ListOffsets entry asking `timestamp`'s offset (latest, earliest) of `partitions` of `topic`.
/// The ListOffsets request for `parts` at `timestamp` (-2 earliest, -1 latest). The requests
/// are made apart from their awaits, so that their grouping by topic is not kept while the
/// answer is waited for (a big cluster's leader leads partitions of thousands of topics).
fn list_offsets_request(
    parts: &[(String, i32)],
    timestamp: i64,
    timeout_ms: i32,
) -> ListOffsetsRequest {
    let by_topic = partitions_by_topic(parts);
    let mut request = ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    request.timeout_ms = timeout_ms;
    request.topics = by_topic
        .iter()
        .map(|(topic, partitions)| list_offsets_topic(topic, partitions, timestamp))
        .collect();
    request
}

/// The DescribeProducers request for `parts`.
fn describe_producers_request(parts: &[(String, i32)]) -> DescribeProducersRequest {
    let mut request = DescribeProducersRequest::default();
    request.topics = partitions_by_topic(parts)
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = TopicRequest::default();
            t.name = TopicName(name(topic));
            t.partition_indexes = partitions;
            t
        })
        .collect();
    request
}

/// The partition numbers of `parts` by topic.
fn partitions_by_topic(parts: &[(String, i32)]) -> BTreeMap<&str, Vec<i32>> {
    by_topic(
        parts
            .iter()
            .map(|(topic, partition)| (topic.as_str(), *partition)),
    )
}

pub(super) fn list_offsets_topic(
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> ListOffsetsTopic {
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
}

//! DescribeGroups: the members of each group and their assignments, and finding the groups (or
//! the whole API) a broker refuses by dropping the connection.

use bytes::Bytes;
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::Decodable;

use super::groups::{fail_all, in_order};
use super::refusals::{REFUSED_RETRY_SCRAPES, Refusable};
use super::{Item, Scraper, code_error, name, text};
use crate::kafka::conn::{KafkaError, Lane};
use crate::kafka::state::{AssignedTopic, GroupDescription, MemberState};

/// Highest version asked for (the code below was written for it).
const DESCRIBE_GROUPS_MAX: i16 = 5;
/// After a broker dropped a batched DescribeGroups, at most this many smaller requests (each
/// costs a reconnect) look for the groups it cannot describe; the rest keep the batch's error.
const DESCRIBE_RETRIES_MAX: usize = 32;

impl Scraper {
    /// Members and assignments of the groups one broker coordinates, in one request.
    ///
    /// A broker may drop the connection over DescribeGroups: for one group it cannot describe
    /// (which fails the whole batch) or for every group (tansu's sqlite engine). A lone group is
    /// asked for once more before it is blamed. Otherwise two groups are asked for alone: if both drop too, the broker refuses the API, and every
    /// group gets that error without another request until the retry is due
    /// (`REFUSED_RETRY_SCRAPES`); otherwise the rest is split in halves to find the groups it
    /// refuses, which are then left out of the batch until their own retry.
    pub(super) async fn describe_groups(
        &self,
        scrape: u64,
        addr: &str,
        groups: &[String],
    ) -> Vec<(String, Item<GroupDescription>)> {
        let api = Refusable::DescribeGroups {
            addr: addr.to_string(),
        };
        if let Some(error) = self.refusals.refusal(&api, scrape) {
            return fail_all(groups, &error);
        }
        let retrying_api = self.refusals.was_refused(&api);
        let mut out = Vec::with_capacity(groups.len());
        let mut ask = Vec::with_capacity(groups.len());
        for group in groups {
            match self.refusals.refusal(&one_group(addr, group), scrape) {
                Some(error) => out.push((group.clone(), Err(error))),
                None => ask.push(group.clone()),
            }
        }
        if ask.is_empty() {
            return out;
        }
        let batch_error = match self.describe_batch(addr, &ask).await {
            Ok(described) => {
                self.refusals.accept(&api);
                for group in &ask {
                    self.refusals.accept(&one_group(addr, group));
                }
                out.extend(described);
                return out;
            }
            Err(e @ KafkaError::Disconnected { .. }) => e,
            Err(e) => {
                out.extend(fail_all(&ask, &format!("DescribeGroups: {e}")));
                return out;
            }
        };
        if ask.len() == 1 {
            self.describe_lone_group(scrape, addr, ask, &mut out).await;
            return out;
        }
        if retrying_api {
            // Refused before and still refused: no probing this time.
            let error = refused_api(&batch_error);
            self.refusals.refuse(api, scrape, error.clone());
            out.extend(fail_all(&ask, &error));
            return out;
        }
        self.probe_refusals(scrape, addr, ask, batch_error, &mut out)
            .await;
        out
    }

    /// After a request naming only `ask` (one group) was dropped: asks once more on a new
    /// connection, and blames the group only when that drops too. A broker that died or restarted
    /// mid-request dropped it for no fault of the group: asked again, it answers, or cannot be
    /// reached at all.
    async fn describe_lone_group(
        &self,
        scrape: u64,
        addr: &str,
        ask: Vec<String>,
        out: &mut Vec<(String, Item<GroupDescription>)>,
    ) {
        let group = one_group(addr, &ask[0]);
        match self.describe_batch(addr, &ask).await {
            Ok(described) => {
                self.refusals.accept(&group);
                out.extend(described);
            }
            Err(e @ KafkaError::Disconnected { .. }) => {
                self.refusals.refuse(group, scrape, refused_group(&e));
                out.extend(fail_all(&ask, &refused_group(&e)));
            }
            Err(e) => out.extend(fail_all(&ask, &format!("DescribeGroups: {e}"))),
        }
    }

    /// After a batch of `ask` was dropped with `batch_error`: two groups alone first, then
    /// halves of the rest, to find the groups the broker refuses (or that it refuses the API).
    /// Every group of `ask` gets its answer or error on `out`.
    async fn probe_refusals(
        &self,
        scrape: u64,
        addr: &str,
        ask: Vec<String>,
        batch_error: KafkaError,
        out: &mut Vec<(String, Item<GroupDescription>)>,
    ) {
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
                out.extend(fail_all(&chunk, &format!("DescribeGroups: {batch_error}")));
                continue;
            }
            tries += 1;
            match self.describe_batch(addr, &chunk).await {
                Ok(described) => {
                    any_answered = true;
                    for group in &chunk {
                        self.refusals.accept(&one_group(addr, group));
                    }
                    out.extend(described);
                }
                Err(e @ KafkaError::Disconnected { .. }) if chunk.len() == 1 => {
                    alone_dropped += 1;
                    if !any_answered && alone_dropped == 2 {
                        // Every group tried alone dropped: the broker refuses the API.
                        let error = refused_api(&e);
                        for (group, result) in out.iter_mut() {
                            if ask.contains(group) {
                                self.refusals.accept(&one_group(addr, group));
                                *result = Err(error.clone());
                            }
                        }
                        out.extend(fail_all(&chunk, &error));
                        for chunk in pending.drain(..) {
                            out.extend(fail_all(&chunk, &error));
                        }
                        let api = Refusable::DescribeGroups {
                            addr: addr.to_string(),
                        };
                        self.refusals.refuse(api, scrape, error);
                        return;
                    }
                    self.refusals
                        .refuse(one_group(addr, &chunk[0]), scrape, refused_group(&e));
                    out.extend(fail_all(&chunk, &refused_group(&e)));
                }
                Err(KafkaError::Disconnected { .. }) => {
                    let (a, b) = chunk.split_at(chunk.len() / 2);
                    pending.push(b.to_vec());
                    pending.push(a.to_vec());
                }
                Err(e) => out.extend(fail_all(&chunk, &format!("DescribeGroups: {e}"))),
            }
        }
    }

    /// One DescribeGroups request; only a failure of the whole request is an `Err`.
    async fn describe_batch(
        &self,
        addr: &str,
        groups: &[String],
    ) -> Result<Vec<(String, Item<GroupDescription>)>, KafkaError> {
        let mut request = DescribeGroupsRequest::default();
        request.groups = groups.iter().map(|g| GroupId(name(g))).collect();
        let response = self
            .pool
            .request_on(addr, Lane::GroupDescriptions, DESCRIBE_GROUPS_MAX, &request)
            .await?;
        let answered = response
            .groups
            .iter()
            .map(|g| (text(&g.group_id.0), description(g)))
            .collect();
        Ok(in_order(groups, answered, "DescribeGroups"))
    }
}

fn one_group(addr: &str, group: &str) -> Refusable {
    Refusable::DescribeGroup {
        addr: addr.to_string(),
        group: group.to_string(),
    }
}

fn refused_api(e: &KafkaError) -> String {
    format!(
        "DescribeGroups: {e} (the broker drops every DescribeGroups tried; asked again \
         every {REFUSED_RETRY_SCRAPES} scrapes)"
    )
}

fn refused_group(e: &KafkaError) -> String {
    format!(
        "DescribeGroups: {e} (the broker drops the connection when this group is \
         named; asked again every {REFUSED_RETRY_SCRAPES} scrapes)"
    )
}

/// A group of a DescribeGroups answer, with its members' assignments decoded.
fn description(g: &DescribedGroup) -> Item<GroupDescription> {
    if let Some(e) = code_error(g.error_code, g.error_message.as_ref()) {
        return Err(format!("DescribeGroups: {e}"));
    }
    let members = g
        .members
        .iter()
        .map(|m| {
            let (assignment, assignment_error) = if g.protocol_type.as_str() == "consumer" {
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
        .collect();
    Ok(GroupDescription {
        state: text(&g.group_state),
        protocol_type: text(&g.protocol_type),
        protocol: text(&g.protocol_data),
        members,
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as Assigned;
    use kafka_protocol::protocol::Encodable;

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

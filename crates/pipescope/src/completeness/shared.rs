//! A flow shared between monitor instances (`[flows.X] share`, docs/completeness.md "Sharing a
//! flow between monitors"): each Kafka hop is read in a consumer group ([`GroupReader`]), so
//! instances configured alike split its partitions; when a partition moves, the instance that
//! had it hands its streams over through a compacted topic, keyed `<flow>/<hop>/<partition>`,
//! together with the offset it committed; the instance that gets it adopts them only when that
//! offset is the group's committed one (else it starts a fresh base, which is never loss).
//!
//! Eager rebalancing (the `range` assignor): every member gives up all its partitions before
//! any gets new ones, so a hand-over is always written before it is read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipescope_core::completeness::FlowHandover;
use pipescope_core::{Clock, EpochMillis};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::FlowAccount;
use super::kafka::{Positions, Read, RecordSink, librdkafka_settings};
use crate::config::{FlowConfig, KafkaCluster};
use crate::shutdown::Stop;
use crate::sync::lock;

/// Longest wait of one poll: also how soon the reader notices a stop.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Records handed to the flow at most per batch.
const BATCH: usize = 1_000;
/// How long a hand-over may take to be written, acknowledged and committed, or read back.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// A member that stops without leaving (tansu ignores LeaveGroup) is taken over this soon.
const SESSION_TIMEOUT_MS: &str = "6000";

/// A shared reader's request to its flow. The flow first applies everything its readers queued,
/// so a hand-over holds every record read before it.
#[derive(Debug)]
pub enum Control {
    /// Take out hop `hop`'s streams of `partition` (the partition leaves this instance).
    HandOver {
        hop: usize,
        partition: u32,
        reply: oneshot::Sender<FlowHandover>,
    },
    /// Take over what another instance (or this one, before a rebalance) handed over.
    Adopt {
        handover: FlowHandover,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The flow's answer to a [`Control`] request.
pub(super) fn answer(account: &mut FlowAccount, request: Control) {
    match request {
        Control::HandOver {
            hop,
            partition,
            reply,
        } => {
            let Some(&(_, id, _)) = account.hops.get(hop) else {
                return;
            };
            let _ = reply.send(account.flow.hand_over_hop_partition(id, partition));
        }
        Control::Adopt { handover, reply } => {
            let _ = reply.send(account.flow.adopt(handover).map_err(|e| e.to_string()));
        }
    }
}

/// Marks the flow's Kafka hops shared: the edges into them judge only streams read here.
pub(super) fn share_kafka_hops(account: &mut FlowAccount, config: &FlowConfig) {
    for (i, hop) in config.hops.iter().enumerate() {
        if hop.kafka.is_some() {
            let id = account.hops[i].1;
            account.flow.share_hop(id);
        }
    }
}

/// The consumer group Kafka hop `hop` of a shared flow is read in.
pub fn hop_group(group: &str, hop: usize) -> String {
    format!("{group}.{hop}")
}

/// The key of a hop's partition's hand-over record.
pub fn handover_key(flow: &str, hop: usize, partition: u32) -> String {
    format!("{flow}/{hop}/{partition}")
}

/// What a hand-over record holds: the streams, and the offset committed with them (the first
/// offset the streams have not seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoverRecord {
    pub offset: i64,
    pub flow: FlowHandover,
}

/// Whether a partition's hand-over fits where the group resumes: only a hand-over written at
/// the committed offset describes exactly the records before it.
pub fn adoptable(record: Option<&HandoverRecord>, committed: Option<i64>) -> bool {
    matches!((record, committed), (Some(r), Some(c)) if r.offset == c)
}

/// Where a partition the group has no committed offset for starts, given its (low, high)
/// watermarks: at its end when the group is new (no partition committed: the topic's past is
/// not the monitor's to judge, as for an unshared reader), else at its start (a partition added
/// since holds only records written since).
pub fn start_offset(committed: Option<i64>, group_known: bool, (low, high): (i64, i64)) -> i64 {
    match committed {
        Some(offset) => offset,
        None if group_known => low,
        None => high,
    }
}

/// A Kafka hop of a shared flow, read in a consumer group.
#[derive(Debug)]
pub struct GroupReader {
    pub flow: String,
    pub hop: usize,
    pub cluster_name: String,
    pub cluster: KafkaCluster,
    pub topic: String,
    pub group: String,
    pub handover_topic: String,
    pub clock: Arc<dyn Clock>,
    pub control: mpsc::Sender<Control>,
    /// At the stop, the reader hands over what it holds before it ends.
    pub stop: Stop,
}

/// What the reader loop and the rebalance callback (run inside `poll`) share.
struct State<S> {
    sink: S,
    positions: Positions,
    owned: BTreeSet<u32>,
}

struct ShareContext<S> {
    state: Mutex<State<S>>,
    flow: String,
    hop: usize,
    topic: String,
    cluster_name: String,
    cluster: KafkaCluster,
    handover_topic: String,
    control: mpsc::Sender<Control>,
    producer: Option<FutureProducer>,
}

impl<S: RecordSink + Send + 'static> ClientContext for ShareContext<S> {}

impl<S: RecordSink + Send + 'static> ConsumerContext for ShareContext<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions = partitions_of(tpl, &self.topic);
                self.revoke(consumer, &partitions);
                let _ = consumer.unassign();
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::warn!(flow = %self.flow, topic = %self.topic, "rebalance failed ({code})");
                let _ = consumer.unassign();
            }
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<u32> {
    tpl.elements_for_topic(topic)
        .iter()
        .filter_map(|e| u32::try_from(e.partition()).ok())
        .collect()
}

impl<S: RecordSink + Send + 'static> ShareContext<S> {
    fn key(&self, partition: u32) -> String {
        handover_key(&self.flow, self.hop, partition)
    }

    /// Partitions given to this instance: each resumes at the group's committed offset, with
    /// the streams handed over at that offset; see [`start_offset`] for the others.
    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions = partitions_of(tpl, &self.topic);
        let committed: HashMap<u32, i64> = consumer
            .committed_offsets(tpl.clone(), HANDOVER_TIMEOUT)
            .map(|c| {
                c.elements_for_topic(&self.topic)
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((u32::try_from(e.partition()).ok()?, o)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_else(|e| {
                tracing::warn!(flow = %self.flow, topic = %self.topic, "cannot read the group's committed offsets ({e}): partitions start at their end");
                HashMap::new()
            });
        let handovers = self.read_handovers(&partitions);
        let (mut adopted, mut fresh) = (Vec::new(), Vec::new());
        let mut starts = Vec::new();
        let group_known = !committed.is_empty();
        for &p in &partitions {
            let start = match committed.get(&p) {
                Some(&o) => Some(o),
                None => consumer
                    .fetch_watermarks(&self.topic, p as i32, HANDOVER_TIMEOUT)
                    .map(|marks| start_offset(None, group_known, marks))
                    .ok(),
            };
            let record = handovers.get(&self.key(p));
            if adoptable(record, committed.get(&p).copied())
                && let Some(record) = record
            {
                match self.ask(|reply| Control::Adopt {
                    handover: record.flow.clone(),
                    reply,
                }) {
                    Some(Ok(())) => adopted.push(p),
                    Some(Err(e)) => {
                        tracing::warn!(flow = %self.flow, topic = %self.topic, partition = p, "cannot adopt the hand-over ({e}): its streams start a fresh base");
                        fresh.push(p);
                    }
                    None => return,
                }
            } else {
                fresh.push(p);
            }
            let offset = start.map_or(Offset::End, Offset::Offset);
            let _ = tpl.set_partition_offset(&self.topic, p as i32, offset);
            starts.push((p, start));
        }
        if let Err(e) = consumer.assign(tpl) {
            tracing::error!(flow = %self.flow, topic = %self.topic, "cannot take the partitions the group gave ({e})");
        }
        let mut state = lock(&self.state);
        for (p, start) in starts {
            if let Some(start) = start {
                state.positions.start_at(p, start);
            }
            state.owned.insert(p);
        }
        let count = state.owned.len() as u32;
        state.sink.status(true, count, None);
        state.sink.flush();
        tracing::info!(flow = %self.flow, topic = %self.topic, ?adopted, ?fresh, "shared flow: partitions assigned (adopted: streams handed over; fresh: a new base)");
    }

    /// Partitions leaving this instance: the flow takes in every record read, hands over their
    /// streams, and each is written (acknowledged) with the offset then committed.
    fn revoke(&self, consumer: &BaseConsumer<Self>, partitions: &[u32]) {
        let mut state = lock(&self.state);
        let leaving: Vec<u32> = partitions
            .iter()
            .copied()
            .filter(|p| state.owned.remove(p))
            .collect();
        if leaving.is_empty() {
            return;
        }
        if !state.sink.flush() {
            return;
        }
        let mut commits = TopicPartitionList::new();
        let mut written = Vec::new();
        for &p in &leaving {
            let Some(offset) = state.positions.next(p as i32) else {
                continue;
            };
            // The flow is gone: commit nothing, so the next owner reads these records again.
            let Some(handover) = self.ask(|reply| Control::HandOver {
                hop: self.hop,
                partition: p,
                reply,
            }) else {
                return;
            };
            if self.write(
                p,
                &HandoverRecord {
                    offset,
                    flow: handover,
                },
            ) {
                written.push(p);
            }
            let _ = commits.add_partition_offset(&self.topic, p as i32, Offset::Offset(offset));
        }
        if commits.count() > 0
            && let Err(e) = consumer.commit(&commits, CommitMode::Sync)
        {
            tracing::warn!(flow = %self.flow, topic = %self.topic, "cannot commit the offsets of the partitions leaving ({e}): the next owner reads from the last commit, with a fresh base");
        }
        let count = state.owned.len() as u32;
        state.sink.status(true, count, None);
        state.sink.flush();
        tracing::info!(flow = %self.flow, topic = %self.topic, ?leaving, handed_over = ?written, "shared flow: partitions revoked");
    }

    /// A request to the flow, answered; `None` when the flow is gone.
    fn ask<T>(&self, request: impl FnOnce(oneshot::Sender<T>) -> Control) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.control.blocking_send(request(reply)).ok()?;
        answer.blocking_recv().ok()
    }

    /// Writes one hand-over and waits for its acknowledgement; false when it failed.
    fn write(&self, partition: u32, record: &HandoverRecord) -> bool {
        let Some(producer) = &self.producer else {
            return false;
        };
        let value = match serde_json::to_vec(record) {
            Ok(v) => v,
            Err(_) => return false,
        };
        let key = self.key(partition);
        let sent = futures::executor::block_on(
            producer.send(
                FutureRecord::to(&self.handover_topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value),
                HANDOVER_TIMEOUT,
            ),
        );
        if let Err((e, _)) = &sent {
            tracing::warn!(flow = %self.flow, topic = %self.topic, partition, "cannot write the hand-over to {:?} ({e}): the next owner starts a fresh base — can this client write that topic?", self.handover_topic);
        }
        sent.is_ok()
    }

    /// The latest hand-over of each of `partitions` (of this hop): the topic read from its
    /// start to its end. Only their keys are kept, whatever else the topic holds.
    fn read_handovers(&self, partitions: &[u32]) -> HashMap<String, HandoverRecord> {
        let wanted: BTreeSet<String> = partitions.iter().map(|&p| self.key(p)).collect();
        let mut latest = HashMap::new();
        let mut read = || -> Result<(), String> {
            let reader = super::kafka::consumer(&self.cluster, "pipescope-handover-reader")?;
            let (low, high) = reader
                .fetch_watermarks(&self.handover_topic, 0, HANDOVER_TIMEOUT)
                .map_err(|e| e.to_string())?;
            if high <= low {
                return Ok(());
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&self.handover_topic, 0, Offset::Offset(low))
                .map_err(|e| e.to_string())?;
            reader.assign(&tpl).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + HANDOVER_TIMEOUT;
            while Instant::now() < deadline {
                let Some(Ok(m)) = reader.poll(POLL_WAIT) else {
                    continue;
                };
                let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
                if let Some(key) = key.filter(|k| wanted.contains(*k)) {
                    match m.payload().map(serde_json::from_slice::<HandoverRecord>) {
                        Some(Ok(record)) => {
                            latest.insert(key.to_string(), record);
                        }
                        // A tombstone, or a record this version cannot read: no hand-over.
                        _ => {
                            latest.remove(key);
                        }
                    }
                }
                if m.offset() + 1 >= high {
                    return Ok(());
                }
            }
            Err(format!("not read to its end within {HANDOVER_TIMEOUT:?}"))
        };
        if let Err(e) = read() {
            tracing::warn!(flow = %self.flow, topic = %self.topic, "cannot read the hand-overs in {:?} on Kafka cluster {} ({e}): the partitions start a fresh base", self.handover_topic, self.cluster_name);
        }
        latest
    }
}

/// Creates the compacted hand-over topic when missing (one partition).
fn ensure_handover_topic(
    cluster_name: &str,
    cluster: &KafkaCluster,
    topic: &str,
) -> Result<(), String> {
    let mut config = ClientConfig::new();
    for (k, v) in librdkafka_settings(cluster) {
        config.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| {
        format!("cannot make a Kafka admin client for cluster {cluster_name} ({e})")
    })?;
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), HANDOVER_TIMEOUT)
        .map_err(|e| format!("cannot read the metadata of Kafka cluster {cluster_name} ({e})"))?;
    let exists = metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    if exists {
        return Ok(());
    }
    let replication = metadata.brokers().len().clamp(1, 3) as i32;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact");
    let results = futures::executor::block_on(admin.create_topics([&new], &AdminOptions::new()))
        .map_err(|e| e.to_string())?;
    for r in results {
        if let Err((_, code)) = r
            && code != RDKafkaErrorCode::TopicAlreadyExists
        {
            return Err(code.to_string());
        }
    }
    tracing::info!(cluster = %cluster_name, topic, "created the compacted hand-over topic of shared flows");
    Ok(())
}

impl GroupReader {
    /// Reads until the sink closes or the stop; runs on its own thread (librdkafka blocks). At
    /// the stop it hands over every partition it holds and commits, then leaves the group.
    pub fn run<S: RecordSink + Send + 'static>(self, sink: S) {
        if let Err(e) =
            ensure_handover_topic(&self.cluster_name, &self.cluster, &self.handover_topic)
        {
            tracing::warn!(flow = %self.flow, cluster = %self.cluster_name, "cannot create the hand-over topic {:?} ({e}): moving partitions start a fresh base — create it (compacted, 1 partition) or allow this client to", self.handover_topic);
        }
        let mut config = ClientConfig::new();
        for (key, value) in librdkafka_settings(&self.cluster) {
            config.set(key, value);
        }
        let producer = config
            .clone()
            .set("acks", "all")
            .set("linger.ms", "0")
            .set(
                "message.timeout.ms",
                HANDOVER_TIMEOUT.as_millis().to_string(),
            )
            .create::<FutureProducer>()
            .map_err(
                |e| tracing::warn!(flow = %self.flow, "cannot make the hand-over producer ({e})"),
            )
            .ok();
        config
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Eager: every member gives its partitions up (and hands over) before any gets new ones.
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", SESSION_TIMEOUT_MS)
            .set("heartbeat.interval.ms", "1000");
        let context = ShareContext {
            state: Mutex::new(State {
                sink,
                positions: Positions::default(),
                owned: BTreeSet::new(),
            }),
            flow: self.flow.clone(),
            hop: self.hop,
            topic: self.topic.clone(),
            cluster_name: self.cluster_name.clone(),
            cluster: self.cluster.clone(),
            handover_topic: self.handover_topic.clone(),
            control: self.control.clone(),
            producer,
        };
        let consumer: BaseConsumer<ShareContext<S>> = match config.create_with_context(context) {
            Ok(c) => c,
            Err(e) => {
                let message = format!(
                    "cannot make a Kafka reader for cluster {} ({e}) — check kafka.{}",
                    self.cluster_name, self.cluster_name
                );
                // The sink went with the context: the flow sees the reader end.
                tracing::error!(flow = %self.flow, topic = %self.topic, "{message}");
                return;
            }
        };
        if let Err(e) = consumer.subscribe(&[&self.topic]) {
            let message = format!(
                "cannot join consumer group {:?} for topic {:?} on Kafka cluster {} ({e}) — is the cluster reachable?",
                self.group, self.topic, self.cluster_name
            );
            let mut state = lock(&consumer.context().state);
            tracing::error!(flow = %self.flow, topic = %self.topic, "{message}");
            state.sink.status(false, 0, Some(message));
            state.sink.flush();
            return;
        }
        tracing::info!(flow = %self.flow, cluster = %self.cluster_name, topic = %self.topic, group = %self.group, handover_topic = %self.handover_topic, "reading traces in a consumer group shared with other monitors");
        let mut in_batch = 0usize;
        while !self.stop.is_stopped() {
            // Never hold the state across poll: the rebalance callback takes it there.
            let polled = consumer.poll(if in_batch == 0 {
                POLL_WAIT
            } else {
                Duration::ZERO
            });
            let mut state = lock(&consumer.context().state);
            match polled {
                Some(Ok(message)) => {
                    let now: EpochMillis = self.clock.now_millis();
                    if let Ok(partition) = u32::try_from(message.partition())
                        && state.owned.contains(&partition)
                    {
                        match state.positions.read(partition, message.offset()) {
                            Read::Next => state.sink.record(&message, partition, now),
                            Read::AfterSkip => {
                                state.sink.skipped(partition);
                                state.sink.record(&message, partition, now);
                            }
                            Read::Again => {}
                        }
                    }
                    in_batch += 1;
                    if state.sink.full() || in_batch >= BATCH {
                        in_batch = 0;
                        if !state.sink.flush() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(flow = %self.flow, topic = %self.topic, "Kafka reader: {e}");
                }
                None => {
                    in_batch = 0;
                    if !state.sink.flush() || !state.sink.open() {
                        return;
                    }
                }
            }
        }
        // Stopping: hand over now, while the flow still answers (closing the consumer revokes
        // again, with nothing left to hand over).
        let owned: Vec<u32> = lock(&consumer.context().state)
            .owned
            .iter()
            .copied()
            .collect();
        consumer.context().revoke(&consumer, &owned);
        consumer.unsubscribe();
        tracing::info!(flow = %self.flow, topic = %self.topic, "left the shared flow's group; its partitions were handed over");
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{flow_config, traced};
    use super::*;

    fn ask<T>(account: &mut FlowAccount, request: impl FnOnce(oneshot::Sender<T>) -> Control) -> T {
        let (reply, mut answer) = oneshot::channel();
        super::answer(account, request(reply));
        answer.try_recv().unwrap()
    }

    #[test]
    fn a_kafka_hop_s_partition_moves_between_accounts_with_its_edge_streams() {
        let config = flow_config();
        let (mut one, mut two) = (
            FlowAccount::new("m", &config, 1_000),
            FlowAccount::new("m", &config, 1_000),
        );
        share_kafka_hops(&mut one, &config);
        share_kafka_hops(&mut two, &config);
        for a in [&mut one, &mut two] {
            for seq in 0..10 {
                a.apply(traced(0, None, "machine/a", seq, 2_000 + seq));
                a.apply(traced(0, None, "machine/b", seq, 2_000 + seq));
            }
        }
        // One reads partition 0 (machine/a) up to 6, two reads partition 1 (machine/b).
        for seq in 0..7 {
            one.apply(traced(1, Some(0), "machine/a", seq, 2_010 + seq));
        }
        for seq in 0..10 {
            two.apply(traced(1, Some(1), "machine/b", seq, 2_010 + seq));
        }
        let moved = ask(&mut one, |reply| Control::HandOver {
            hop: 1,
            partition: 0,
            reply,
        });
        assert_eq!((moved.hops[1].len(), moved.edges[0].len()), (1, 1));
        let adopted = ask(&mut two, |reply| Control::Adopt {
            handover: moved,
            reply,
        });
        assert_eq!(adopted, Ok(()));
        for seq in 7..10 {
            two.apply(traced(1, Some(0), "machine/a", seq, 2_020 + seq));
        }
        one.tick(60_000);
        two.tick(60_000);
        let (v1, v2) = (one.view(60_000), two.view(60_000));
        let counts = |v: &super::super::FlowView| {
            let (h, e) = (
                &v.hops[1].figures.total.counters,
                &v.edges[0].figures.total.counters,
            );
            (h.records, h.lost, e.matched, e.lost)
        };
        assert_eq!(counts(&v1), (7, 0, 7, 0));
        assert_eq!(counts(&v2), (13, 0, 13, 0));
    }

    #[test]
    fn a_hand_over_is_adopted_only_at_the_offset_the_group_committed() {
        let record = HandoverRecord {
            offset: 120,
            flow: FlowHandover::default(),
        };
        assert!(adoptable(Some(&record), Some(120)));
        // Written, but the commit after it failed: the group resumes earlier.
        assert!(!adoptable(Some(&record), Some(100)));
        // An older hand-over, the group has moved past it (an instance died after committing).
        assert!(!adoptable(Some(&record), Some(150)));
        assert!(!adoptable(None, Some(120)));
        assert!(!adoptable(Some(&record), None));
        let wire = serde_json::to_vec(&record).unwrap();
        assert_eq!(
            serde_json::from_slice::<HandoverRecord>(&wire).unwrap(),
            record
        );
        assert_eq!(handover_key("machines", 1, 3), "machines/1/3");
        assert_eq!(start_offset(Some(7), false, (0, 10)), 7);
        assert_eq!(
            start_offset(None, false, (2, 10)),
            10,
            "a new group starts at the end"
        );
        assert_eq!(
            start_offset(None, true, (2, 10)),
            2,
            "a partition added since: its start"
        );
        assert_eq!(
            hop_group("pipescope-flow-machines", 1),
            "pipescope-flow-machines.1"
        );
    }
}
